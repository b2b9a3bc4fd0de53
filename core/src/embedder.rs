//! `Embedder`: sentence embeddings the way sentence-transformers computes them.
//!
//! ```text
//! texts ─► tokenizer (truncate to max_length) ─► batches sorted by length,
//!          padded per batch ─► encoder ─► pooling (masked) ─► readback [n × d]
//!          ─► L2 normalise (optional) ─► Embeddings in input order
//! ```

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::formats::tensors::SafeTensors;
use crate::models::bert::{BertConfig, Encoder};
use crate::models::pooling::{Pooling, normalize};
use crate::tokenizer::{Tokenizer, pad_batch};

/// The files of a sentence-transformers / Hugging Face encoder, as bytes
/// (the platform layer reads them from disk, a URL or browser storage).
#[derive(Debug, Clone, Copy)]
pub struct ModelFiles<'a> {
    /// `config.json`.
    pub config: &'a [u8],
    /// `model.safetensors`.
    pub weights: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer: &'a [u8],
    /// `1_Pooling/config.json`, if the model has one (else mean pooling).
    pub pooling: Option<&'a [u8]>,
    /// `sentence_bert_config.json`, if any (its `max_seq_length` caps inputs).
    pub sentence_bert: Option<&'a [u8]>,
}

/// Options for [`Embedder`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedderOptions {
    /// Pooling; `None` uses the model's `1_Pooling` config, or mean.
    pub pooling: Option<Pooling>,
    /// Longest input in tokens; `None` uses `max_seq_length`, else the model's maximum.
    pub max_length: Option<usize>,
    /// Truncate longer inputs (as sentence-transformers does) instead of failing.
    pub truncate: bool,
    /// Texts per forward pass.
    pub batch_size: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            pooling: None,
            max_length: None,
            truncate: true,
            batch_size: 32,
        }
    }
}

/// `rows × dim` embeddings, row-major, in the order of the input texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The values.
    pub data: Vec<f32>,
    /// Number of texts.
    pub rows: usize,
    /// Dimension of each vector.
    pub dim: usize,
}

impl Embeddings {
    /// The vector of text `i`.
    ///
    /// # Panics
    /// When `i ≥ rows`, as slice indexing does.
    #[allow(clippy::indexing_slicing)] // documented panic, the slice contract
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterates over the vectors.
    pub fn iter(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks(self.dim.max(1))
    }

    /// Matryoshka truncation: keeps the first `dims` components of every
    /// vector, re-normalised when `normalize` (models trained with
    /// MatryoshkaLoss stay useful at their smaller sizes).
    pub fn truncate_dims(&self, dims: usize, normalize_rows: bool) -> Result<Embeddings> {
        if dims == 0 || dims > self.dim {
            return Err(Error::Input(format!(
                "dims must be in 1..={}, got {dims}",
                self.dim
            )));
        }
        let mut data = Vec::with_capacity(self.rows * dims);
        for row in self.iter() {
            let mut head = row.get(..dims).unwrap_or_default().to_vec();
            if normalize_rows {
                normalize(&mut head);
            }
            data.extend_from_slice(&head);
        }
        Ok(Embeddings {
            data,
            rows: self.rows,
            dim: dims,
        })
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Cosine similarities of every row of `a` with every row of `b`: `a.rows × b.rows`, row-major.
pub fn similarity_matrix(a: &Embeddings, b: &Embeddings) -> Vec<f32> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| cosine_similarity(x, y)))
        .collect()
}

/// A sentence embedder: tokenizer + encoder + pooling on backend `B`.
pub struct Embedder<B: Backend> {
    encoder: Encoder<B>,
    tokenizer: Tokenizer,
    pooling: Pooling,
    max_length: usize,
    truncate: bool,
    batch_size: usize,
    pad_id: u32,
}

impl<B: Backend> std::fmt::Debug for Embedder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("encoder", &self.encoder)
            .field("pooling", &self.pooling)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Embedder<B> {
    /// Builds an embedder from a model's files.
    pub fn from_files(
        backend: B,
        files: ModelFiles<'_>,
        options: &EmbedderOptions,
    ) -> Result<Self> {
        let config = BertConfig::from_json(files.config)?;
        let st = SafeTensors::parse(files.weights, "model.safetensors")?;
        let encoder = Encoder::load(backend, config.clone(), &st)?;
        let pooling = match (options.pooling, files.pooling) {
            (Some(p), _) => p,
            (None, Some(bytes)) => Pooling::from_config_json(bytes)?,
            (None, None) => Pooling::Mean,
        };
        let st_max = match files.sentence_bert {
            Some(bytes) => {
                let v: serde_json::Value =
                    serde_json::from_slice(bytes).map_err(|e| Error::Model {
                        file: "sentence_bert_config.json".into(),
                        detail: format!("invalid JSON: {e}"),
                    })?;
                v.get("max_seq_length")
                    .and_then(serde_json::Value::as_u64)
                    .map(|v| v as usize)
            }
            None => None,
        };
        let max_length = options
            .max_length
            .or(st_max)
            .unwrap_or(config.max_tokens())
            .min(config.max_tokens());
        let base = Tokenizer::from_bytes(files.tokenizer, "tokenizer.json")?;
        if base.vocab_size() > config.vocab_size {
            return Err(Error::Model {
                file: "tokenizer.json".into(),
                detail: format!(
                    "vocabulary of {} tokens does not fit the model's {} embeddings",
                    base.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let tokenizer = if options.truncate {
            base.with_truncation(Some(max_length))?
        } else {
            base
        };
        let pad_id = tokenizer
            .token_to_id("[PAD]")
            .unwrap_or(config.pad_token_id);
        Ok(Self {
            encoder,
            tokenizer,
            pooling,
            max_length,
            truncate: options.truncate,
            batch_size: options.batch_size.max(1),
            pad_id,
        })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.encoder.config().hidden_size
    }

    /// Longest input in tokens.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The pooling in use.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Embeds `texts`; with `normalize` every vector has unit length (cosine = dot).
    pub async fn encode_async(&self, texts: &[&str], normalize_rows: bool) -> Result<Embeddings> {
        let dim = self.dim();
        let mut encoded = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let ids = self.tokenizer.encode(text, true)?.ids;
            if ids.len() > self.max_length {
                debug_assert!(!self.truncate);
                return Err(Error::Input(format!(
                    "text #{i} has {} tokens, more than the maximum of {}; enable truncation or shorten it",
                    ids.len(),
                    self.max_length
                )));
            }
            encoded.push(ids);
        }
        // Length-sorted batches waste the least compute on padding.
        let mut order: Vec<(usize, &[u32])> =
            encoded.iter().map(Vec::as_slice).enumerate().collect();
        order.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        let mut data = vec![0f32; texts.len() * dim];
        let b = self.encoder.backend();
        for chunk in order.chunks(self.batch_size.max(1)) {
            let rows: Vec<&[u32]> = chunk.iter().map(|(_, ids)| *ids).collect();
            let padded = pad_batch(&rows, self.pad_id);
            let (batch, seq) = (chunk.len(), padded.max_len);
            if seq == 0 {
                return Err(Error::Input("the texts encode to zero tokens".into()));
            }
            let (ids, mask) = (padded.ids, padded.attention_mask);
            let states = self.encoder.forward(&ids, &mask, batch, seq)?;
            let pooled = self.pooling.pool(b, &states, &mask, batch, seq)?;
            let host = b.read_f32(&pooled).await?;
            if host.len() != chunk.len() * dim {
                return Err(Error::Shape {
                    op: "embed",
                    detail: format!(
                        "{} pooled values for {} texts of {dim}",
                        host.len(),
                        chunk.len()
                    ),
                });
            }
            for (&(i, _), vector) in chunk.iter().zip(host.chunks_exact(dim.max(1))) {
                if let Some(out) = data.get_mut(i * dim..(i + 1) * dim) {
                    out.copy_from_slice(vector);
                    if normalize_rows {
                        normalize(out);
                    }
                }
            }
        }
        Ok(Embeddings {
            data,
            rows: texts.len(),
            dim,
        })
    }
}

impl Embedder<CpuBackend> {
    /// Embeds `texts` on the CPU (see [`Embedder::encode_async`]).
    pub fn encode(&self, texts: &[&str], normalize_rows: bool) -> Result<Embeddings> {
        crate::backend::block_on_ready(self.encode_async(texts, normalize_rows))
    }
}

/// A bi-encoder used as a reranker: passages are re-scored by the cosine of
/// their embedding with the query's. Weaker than a cross-encoder (it never
/// reads query and passage together) but useful to re-order lexical (BM25)
/// candidates, and the stand-in until a cross-encoder is fine-tuned.
impl crate::retrieve::Reranker for Embedder<CpuBackend> {
    fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        let mut texts = vec![query];
        texts.extend_from_slice(passages);
        let e = self.encode(&texts, true)?;
        let mut rows = e.iter();
        let q = rows.next().unwrap_or_default();
        Ok(rows.map(|p| crate::util::dot(q, p)).collect())
    }
}
