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

/// Tokenizes `texts` for an encoder: truncated to `max_length` (the
/// tokenizer is built with truncation), in length-sorted batches of
/// `batch_size`; yields (indices into `texts`, padded batch).
pub fn length_sorted_batches(
    tokenizer: &Tokenizer,
    texts: &[&str],
    batch_size: usize,
    pad_id: u32,
) -> Result<Vec<(Vec<usize>, crate::tokenizer::BatchEncoding)>> {
    let encoded = texts
        .iter()
        .map(|t| Ok(tokenizer.encode(t, true)?.ids))
        .collect::<Result<Vec<_>>>()?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].len()));
    order
        .chunks(batch_size.max(1))
        .map(|chunk| {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            let padded = pad_batch(&rows, pad_id);
            if padded.max_len == 0 {
                return Err(Error::Input("the texts encode to zero tokens".into()));
            }
            Ok((chunk.to_vec(), padded))
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
        let max = config.encoder.max_position_embeddings;
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
        let b = self.model.encoder().backend();
        let mut out = vec![None; texts.len()];
        let n = self.labels().len();
        for (idx, batch) in
            length_sorted_batches(&self.tokenizer, texts, self.batch_size, self.pad_id)?
        {
            let logits =
                self.model
                    .forward(&batch.ids, &batch.attention_mask, idx.len(), batch.max_len)?;
            let host = b.read_f32(&logits).await?;
            for (row, &i) in idx.iter().enumerate() {
                out[i] = Some(predict_row(
                    self.model.config(),
                    &host[row * n..(row + 1) * n],
                ));
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
}
