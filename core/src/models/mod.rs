//! Model definitions, written once against [`crate::backend::Backend`].
//!
//! - [`bert`]: BERT-family encoders (BERT, MiniLM, DistilBERT) from `config.json`
//!   + safetensors.
//! - [`classifier`]: sequence classification heads (`BertForSequenceClassification`,
//!   `DistilBertForSequenceClassification` layouts), single- and multi-label.
//! - [`llama`]: Llama-family decoders (Llama, SmolLM) from GGUF, with a KV cache.
//! - [`pooling`]: sentence embeddings from token states (mean, CLS, max; L2
//!   normalisation; Matryoshka truncation).

pub mod bert;
pub mod classifier;
pub mod llama;
pub mod pooling;
