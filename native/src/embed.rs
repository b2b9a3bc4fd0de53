//! Loading embedders from model directories, and writing embeddings as JSON or NPY.

use std::path::Path;

use cairn_core::backend::Backend;
use cairn_core::embedder::{Embedder, EmbedderOptions, Embeddings, ModelFiles};

use crate::error::{Error, Result};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io("reading", path))
}

/// Reads a `tokenizer.json`, refusing one over
/// [`cairn_core::tokenizer::MAX_TOKENIZER_BYTES`] before reading it.
pub fn read_tokenizer_json(path: &Path) -> Result<Vec<u8>> {
    let max = cairn_core::tokenizer::MAX_TOKENIZER_BYTES;
    let len = std::fs::metadata(path)
        .map_err(Error::io("reading", path))?
        .len();
    if len > max as u64 {
        return Err(cairn_core::Error::Tokenizer(format!(
            "{} is {} MiB; a tokenizer.json of more than {} MiB is refused (real ones are under 40 MiB)",
            path.display(),
            len >> 20,
            max >> 20
        ))
        .into());
    }
    read(path)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path)(e)),
    }
}

/// Loads a sentence-transformers / Hugging Face encoder directory
/// (`config.json`, `model.safetensors`, `tokenizer.json`, optional
/// `1_Pooling/config.json` and `sentence_bert_config.json`). Errors name the file.
pub fn load_embedder<B: Backend>(
    backend: B,
    dir: &Path,
    options: &EmbedderOptions,
) -> Result<Embedder<B>> {
    if !dir.is_dir() {
        return Err(Error::Model(format!(
            "{} is not a model directory (config.json + model.safetensors + tokenizer.json)",
            dir.display()
        )));
    }
    let config = read(&dir.join("config.json"))?;
    let weights = read(&dir.join("model.safetensors"))?;
    let tokenizer = read_tokenizer_json(&dir.join("tokenizer.json"))?;
    let pooling = read_optional(&dir.join("1_Pooling/config.json"))?;
    let sentence_bert = read_optional(&dir.join("sentence_bert_config.json"))?;
    let files = ModelFiles {
        config: &config,
        weights: &weights,
        tokenizer: &tokenizer,
        pooling: pooling.as_deref(),
        sentence_bert: sentence_bert.as_deref(),
    };
    Embedder::from_files(backend, files, options)
        .map_err(|e| Error::Model(format!("{}: {e}", dir.display())))
}

/// Serialises embeddings as a NumPy `.npy` (format 1.0, little-endian f32, shape `(rows, dim)`).
pub fn to_npy(e: &Embeddings) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        e.rows, e.dim
    );
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in '\n'.
    let unpadded = 10 + dict.len() + 1;
    let header = format!(
        "{dict}{}\n",
        " ".repeat(unpadded.next_multiple_of(64) - unpadded)
    );
    let mut out = Vec::with_capacity(10 + header.len() + e.data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &e.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_exact() {
        let e = Embeddings {
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            rows: 2,
            dim: 3,
        };
        let b = to_npy(&e);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(
            header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
                && header.ends_with('\n')
        );
        assert_eq!(b.len(), 10 + hlen + 24);
        assert_eq!(&b[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
    }
}
