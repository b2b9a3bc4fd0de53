//! Tokenizers from `tokenizer.json` (WordPiece, BPE, Unigram) via the
//! `tokenizers` crate — the same library as the Python `tokenizers` package, so
//! ids are identical.
//!
//! Padding and truncation stored in the file are switched off on load: some
//! published files (all-MiniLM-L6-v2's among them) pad every input to 128
//! tokens, which silently skews pooled embeddings. Batching code pads on purpose.

use crate::error::{Error, Result};

/// One encoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Token strings, as in the vocabulary.
    pub tokens: Vec<String>,
    /// 1 for real tokens (all of them: no padding is added here).
    pub attention_mask: Vec<u32>,
    /// Byte offsets `(start, end)` of each token in the input; special tokens get `(0, 0)`.
    pub offsets: Vec<(usize, usize)>,
}

/// A loaded `tokenizer.json`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// Parses the bytes of a `tokenizer.json`; `name` (a file name) appears in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("{name} is not a valid tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("{name}: cannot disable truncation: {e}")))?;
        Ok(Self { inner })
    }

    /// A copy that truncates every encoding to `max_length` tokens (special
    /// tokens included, as Hugging Face truncation does), or never with `None`.
    pub fn with_truncation(&self, max_length: Option<usize>) -> Result<Self> {
        let mut inner = self.inner.clone();
        let params = max_length.map(|max_length| tokenizers::TruncationParams {
            max_length,
            ..Default::default()
        });
        inner.with_truncation(params).map_err(|e| {
            Error::Tokenizer(format!("cannot set truncation to {max_length:?}: {e}"))
        })?;
        Ok(Self { inner })
    }

    /// The id of a token string (e.g. `[PAD]`), if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes one text; `add_special_tokens` adds e.g. `[CLS]`/`[SEP]`.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Encoding> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            tokens: enc.get_tokens().to_vec(),
            attention_mask: enc.get_attention_mask().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
    }

    /// Decodes ids to text; `skip_special_tokens` drops `[CLS]`, `<s>`, ...
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("decoding failed: {e}")))
    }

    /// Number of tokens `text` encodes to, special tokens included.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text, true)?.ids.len())
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
