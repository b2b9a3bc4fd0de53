//! `TextClassifier`: texts in, labels and scores out — the transformers
//! `pipeline("text-classification")` of cairn.
//!
//! ```text
//! texts ─► tokenizer (truncate) ─► length-sorted padded batches
//!       ─► SequenceClassifier ─► logits ─► softmax / sigmoid ─► Prediction per text
//! ```

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::formats::tensors::SafeTensors;
use crate::models::classifier::{ClassifierConfig, Prediction, SequenceClassifier, predict_row};
use crate::tokenizer::{Tokenizer, pad_batch};

/// The files of a classification model directory, as bytes.
#[derive(Debug, Clone, Copy)]
pub struct ClassifierFiles<'a> {
    /// `config.json` (with `id2label`).
    pub config: &'a [u8],
    /// `model.safetensors`.
    pub weights: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer: &'a [u8],
}

/// One tokenized input: ids, and token types for a sentence pair.
type Row = (Vec<u32>, Option<Vec<u32>>);

/// A padded batch: (indices into the inputs, ids + mask, padded token types).
type Batch = (
    Vec<usize>,
    crate::tokenizer::BatchEncoding,
    Option<Vec<u32>>,
);

/// Groups tokenized inputs (truncated by the tokenizer) into length-sorted
/// padded batches of `batch_size`.
fn length_sorted_batches(rows: &[Row], batch_size: usize, pad_id: u32) -> Result<Vec<Batch>> {
    let mut order: Vec<(usize, &Row)> = rows.iter().enumerate().collect();
    order.sort_by_key(|(_, r)| std::cmp::Reverse(r.0.len()));
    order
        .chunks(batch_size.max(1))
        .map(|chunk| {
            let ids: Vec<&[u32]> = chunk.iter().map(|(_, r)| r.0.as_slice()).collect();
            let padded = pad_batch(&ids, pad_id);
            if padded.max_len == 0 {
                return Err(Error::Input("the texts encode to zero tokens".into()));
            }
            let paired = chunk.first().is_some_and(|(_, r)| r.1.is_some());
            let types = paired.then(|| {
                let t: Vec<&[u32]> = chunk
                    .iter()
                    .map(|(_, r)| r.1.as_deref().unwrap_or(&[]))
                    .collect();
                pad_batch(&t, 0).ids
            });
            Ok((chunk.iter().map(|(i, _)| *i).collect(), padded, types))
        })
        .collect()
}

/// A text classifier: tokenizer + sequence classification model.
#[derive(Debug)]
pub struct TextClassifier<B: Backend> {
    model: SequenceClassifier<B>,
    tokenizer: Tokenizer,
    pad_id: u32,
    batch_size: usize,
}

impl<B: Backend> TextClassifier<B> {
    /// Loads a classification model directory's files. `max_length`
    /// caps inputs (default: the model's maximum positions).
    pub fn from_files(
        backend: B,
        files: ClassifierFiles<'_>,
        max_length: Option<usize>,
    ) -> Result<Self> {
        let config = ClassifierConfig::from_json(files.config)?;
        let st = SafeTensors::parse(files.weights, "model.safetensors")?;
        let max = config.encoder.max_tokens();
        let model = SequenceClassifier::load(backend, config, &st)?;
        Self::new(model, files.tokenizer, max_length.unwrap_or(max).min(max))
    }

    /// Wraps a loaded model with its `tokenizer.json`.
    pub fn new(model: SequenceClassifier<B>, tokenizer: &[u8], max_length: usize) -> Result<Self> {
        let tokenizer = Tokenizer::from_bytes(tokenizer, "tokenizer.json")?
            .with_truncation(Some(max_length))?;
        let pad_id = tokenizer
            .token_to_id("[PAD]")
            .unwrap_or(model.config().encoder.pad_token_id);
        Ok(Self {
            model,
            tokenizer,
            pad_id,
            batch_size: 32,
        })
    }

    /// The model (labels, configuration).
    pub fn model(&self) -> &SequenceClassifier<B> {
        &self.model
    }

    /// The label names by id.
    pub fn labels(&self) -> &[String] {
        &self.model.config().labels
    }

    /// Scores and predicted labels for each text, in input order.
    pub async fn predict_async(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        let rows = texts
            .iter()
            .map(|t| Ok((self.tokenizer.encode(t, true)?.ids, None)))
            .collect::<Result<Vec<Row>>>()?;
        self.predict_rows(&rows).await
    }

    /// Scores and predicted labels for sentence pairs `(a, b)`, encoded with
    /// token types as the tokenizer's pair template does (a cross-encoder's
    /// (query, passage)).
    pub async fn predict_pairs_async(&self, pairs: &[(&str, &str)]) -> Result<Vec<Prediction>> {
        let rows = pairs
            .iter()
            .map(|(a, b)| {
                let (ids, types) = self.tokenizer.encode_pair(a, b)?;
                Ok((ids, Some(types)))
            })
            .collect::<Result<Vec<Row>>>()?;
        self.predict_rows(&rows).await
    }

    async fn predict_rows(&self, rows: &[Row]) -> Result<Vec<Prediction>> {
        let b = self.model.encoder().backend();
        let mut out = vec![None; rows.len()];
        let n = self.labels().len();
        for (idx, batch, types) in length_sorted_batches(rows, self.batch_size, self.pad_id)? {
            let logits = match &types {
                Some(t) => self.model.forward_pairs(
                    &batch.ids,
                    t,
                    &batch.attention_mask,
                    idx.len(),
                    batch.max_len,
                )?,
                None => self.model.forward(
                    &batch.ids,
                    &batch.attention_mask,
                    idx.len(),
                    batch.max_len,
                )?,
            };
            let host = b.read_f32(&logits).await?;
            if host.len() != idx.len() * n {
                return Err(Error::Shape {
                    op: "classify",
                    detail: format!(
                        "{} logits for {} texts of {n} labels",
                        host.len(),
                        idx.len()
                    ),
                });
            }
            for (&i, logits) in idx.iter().zip(host.chunks_exact(n.max(1))) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(predict_row(self.model.config(), logits));
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

impl TextClassifier<CpuBackend> {
    /// Scores and predicted labels for each text on the CPU.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        crate::backend::block_on_ready(self.predict_async(texts))
    }

    /// Scores and predicted labels for sentence pairs on the CPU.
    pub fn predict_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Prediction>> {
        crate::backend::block_on_ready(self.predict_pairs_async(pairs))
    }
}

/// A cross-encoder reranker: a one-label pair classifier (e.g. trained by
/// `cairn train classify` on `{"text": query, "text_pair": passage,
/// "labels": ["relevant"] or []}`) whose score is the relevance of
/// (query, passage).
impl crate::retrieve::Reranker for TextClassifier<CpuBackend> {
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        if self.labels().len() != 1 {
            return Err(Error::Input(format!(
                "a reranker scores relevance with one label; this classifier has {} ({})",
                self.labels().len(),
                self.labels().join(", ")
            )));
        }
        let pairs: Vec<(&str, &str)> = passages.iter().map(|p| (query, *p)).collect();
        Ok(self
            .predict_pairs(&pairs)?
            .into_iter()
            .map(|p| p.scores.first().copied().unwrap_or(f32::NAN))
            .collect())
    }
}
