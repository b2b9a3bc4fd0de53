//! Tokenizers from `tokenizer.json` (WordPiece, BPE, Unigram) via the
//! `tokenizers` crate — the same library as the Python `tokenizers` package, so
//! ids are identical.
//!
//! Padding and truncation stored in the file are switched off on load: some
//! published files (all-MiniLM-L6-v2's among them) pad every input to 128
//! tokens, which silently skews pooled embeddings. Batching code pads on purpose.

mod gguf;
mod stream;
pub mod train;

pub use stream::{TokenStream, byte_level_chars};

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

/// Several texts encoded and padded to a common length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEncoding {
    /// `rows × max_len` ids, padded.
    pub ids: Vec<u32>,
    /// `rows × max_len`: 1 for tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// Unpadded length of each row.
    pub lengths: Vec<usize>,
    /// Padded length.
    pub max_len: usize,
}

/// Pads id sequences to the longest with `pad_id` and builds the attention mask.
pub fn pad_batch(rows: &[&[u32]], pad_id: u32) -> BatchEncoding {
    let max_len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut ids = vec![pad_id; rows.len() * max_len];
    let mut attention_mask = vec![0u32; rows.len() * max_len];
    let rows_out = ids
        .chunks_exact_mut(max_len.max(1))
        .zip(attention_mask.chunks_exact_mut(max_len.max(1)));
    for (r, (out, mask)) in rows.iter().zip(rows_out) {
        for ((o, m), &id) in out.iter_mut().zip(mask.iter_mut()).zip(r.iter()) {
            *o = id;
            *m = 1;
        }
    }
    BatchEncoding {
        ids,
        attention_mask,
        lengths: rows.iter().map(|r| r.len()).collect(),
        max_len,
    }
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

/// Largest `tokenizer.json` accepted. Real ones are under 40 MB (Gemma 3's
/// 262k-token vocabulary is ~33 MB); parsing takes ~16× the file's size in
/// memory (a 1M-merge, 29 MB file: ~460 MB), so the size is bounded first.
pub const MAX_TOKENIZER_BYTES: usize = 128 << 20;

impl Tokenizer {
    /// Parses the bytes of a `tokenizer.json`; `name` (a file name) appears in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        if bytes.len() > MAX_TOKENIZER_BYTES {
            return Err(Error::Tokenizer(format!(
                "{name} is {} MiB; a tokenizer.json of more than {} MiB is refused (real ones are under 40 MiB)",
                bytes.len() >> 20,
                MAX_TOKENIZER_BYTES >> 20
            )));
        }
        // The `tokenizers` crate panics on some malformed files (an
        // `expect` in its decoder deserialisation): natively that panic is
        // this file's error too.
        let mut inner = crate::util::catch_panic(|| tokenizers::Tokenizer::from_bytes(bytes))
            .map_err(|why| {
                Error::Tokenizer(format!(
                    "{name} is not a valid tokenizer.json (the tokenizers library failed on it: {why})"
                ))
            })?
            .map_err(|e| Error::Tokenizer(format!("{name} is not a valid tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("{name}: cannot disable truncation: {e}")))?;
        let t = Self { inner };
        // A template or model that cannot encode a plain text is a broken
        // file: say so now, naming it, rather than at the first use.
        t.encode("a b", true)
            .map_err(|e| Error::Tokenizer(format!("{name} is not a usable tokenizer.json: {e}")))?;
        Ok(t)
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
        let enc = crate::util::catch_panic(|| self.inner.encode(text, add_special_tokens))
            .map_err(|why| {
                Error::Tokenizer(format!("encoding failed: the tokenizer panicked ({why})"))
            })?
            .map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
        Ok(Encoding {
            ids: enc.get_ids().to_vec(),
            tokens: enc.get_tokens().to_vec(),
            attention_mask: enc.get_attention_mask().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
    }

    /// Encodes a sentence pair (`[CLS] a [SEP] b [SEP]` for BERT) as the
    /// tokenizer's pair template does, truncated by its rule (e.g. longest
    /// first): the ids and their token type ids (0 for `a`, 1 for `b`).
    pub fn encode_pair(&self, a: &str, b: &str) -> Result<(Vec<u32>, Vec<u32>)> {
        let enc = crate::util::catch_panic(|| self.inner.encode((a, b), true))
            .map_err(|why| {
                Error::Tokenizer(format!(
                    "encoding a pair failed: the tokenizer panicked ({why})"
                ))
            })?
            .map_err(|e| Error::Tokenizer(format!("encoding a pair failed: {e}")))?;
        Ok((enc.get_ids().to_vec(), enc.get_type_ids().to_vec()))
    }

    /// Encodes several texts and pads them to the longest with `pad_id`
    /// (dynamic padding): `ids` and `attention_mask` are `texts.len() × max_len`, row-major.
    pub fn encode_batch(
        &self,
        texts: &[&str],
        add_special_tokens: bool,
        pad_id: u32,
    ) -> Result<BatchEncoding> {
        let encs = texts
            .iter()
            .map(|t| self.encode(t, add_special_tokens))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<&[u32]> = encs.iter().map(|e| e.ids.as_slice()).collect();
        Ok(pad_batch(&rows, pad_id))
    }

    /// Decodes ids to text; `skip_special_tokens` drops `[CLS]`, `<s>`, ...
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        crate::util::catch_panic(|| self.inner.decode(ids, skip_special_tokens))
            .map_err(|why| {
                Error::Tokenizer(format!("decoding failed: the tokenizer panicked ({why})"))
            })?
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

    /// The token string of an id (as stored in the vocabulary, e.g. `Ġthe`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Whether `id` is a special (added, control) token such as `<|im_end|>`.
    pub fn is_special(&self, id: u32) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }

    /// For every id of the vocabulary, whether it is special (one pass over
    /// the added tokens, where [`Tokenizer::is_special`] reads them per call).
    pub fn special_flags(&self) -> Vec<bool> {
        let mut flags = vec![false; self.vocab_size()];
        for (id, t) in self.inner.get_added_tokens_decoder() {
            if let Some(f) = flags.get_mut(id as usize) {
                *f = t.special;
            }
        }
        flags
    }

    /// The raw bytes each id stands for: for byte-level BPE vocabularies
    /// (GPT-2 style, where every byte is mapped to a printable character), and
    /// for SentencePiece vocabularies with byte fallback (`▁` is a space,
    /// `<0xXX>` is byte XX, any other piece its UTF-8 text). Added tokens
    /// stand for their literal text. Streaming decoders join these bytes and
    /// cut only at UTF-8 character boundaries.
    pub fn byte_level_table(&self) -> Result<Vec<Vec<u8>>> {
        let n = self.vocab_size();
        let added = self.inner.get_added_tokens_decoder();
        if self.inner.token_to_id("<0x0A>").is_some()
            && self.inner.token_to_id("\u{2581}").is_some()
        {
            return Ok((0..n as u32)
                .map(|id| {
                    if let Some(t) = added.get(&id) {
                        return t.content.as_bytes().to_vec();
                    }
                    let tok = self.inner.id_to_token(id).unwrap_or_default();
                    match tok
                        .strip_prefix("<0x")
                        .and_then(|h| h.strip_suffix('>'))
                        .filter(|h| h.len() == 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => vec![b],
                        None => tok.replace('\u{2581}', " ").into_bytes(),
                    }
                })
                .collect());
        }
        let unmap = stream::byte_level_unmap();
        (0..n as u32)
            .map(|id| {
                if let Some(t) = added.get(&id) {
                    return Ok(t.content.as_bytes().to_vec());
                }
                let tok = self.inner.id_to_token(id).unwrap_or_default();
                tok.chars()
                    .map(|c| {
                        unmap.get(&c).copied().ok_or_else(|| {
                            Error::Tokenizer(format!(
                                "token {id} ({tok:?}) is not byte-level BPE: character {c:?} maps to no byte"
                            ))
                        })
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_merges_load_and_an_oversized_file_is_refused() {
        // 1,000 CJK characters and every pair of them: 1,000,000 merges.
        let chars: Vec<char> = (0x4E00u32..0x4E00 + 1000)
            .filter_map(char::from_u32)
            .collect();
        let mut vocab = String::from("{");
        let mut merges = String::from("[");
        let mut id = 0usize;
        for c in &chars {
            vocab.push_str(&format!("\"{c}\":{id},"));
            id += 1;
        }
        for a in &chars {
            for b in &chars {
                vocab.push_str(&format!("\"{a}{b}\":{id},"));
                merges.push_str(&format!("\"{a} {b}\","));
                id += 1;
            }
        }
        vocab.pop();
        merges.pop();
        vocab.push('}');
        merges.push(']');
        let json = format!(
            r#"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{{"type":"Whitespace"}},"post_processor":null,"decoder":null,"model":{{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"vocab":{vocab},"merges":{merges}}}}}"#
        );
        assert!(json.len() > 20 << 20 && json.len() < MAX_TOKENIZER_BYTES);
        let t = Tokenizer::from_bytes(json.as_bytes(), "big.json").unwrap();
        assert_eq!(t.vocab_size(), 1_001_000);
        let e = t.encode("一丁七万", false).unwrap();
        assert_eq!(e.ids, vec![1001, 4007]);
        let huge = vec![b' '; MAX_TOKENIZER_BYTES + 1];
        let err = Tokenizer::from_bytes(&huge, "huge.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("huge.json is 128 MiB; a tokenizer.json of more than 128 MiB is refused"),
            "{err}"
        );
    }

    #[test]
    fn pad_batch_pads_to_the_longest() {
        let b = pad_batch(&[&[1, 2, 3], &[4]], 0);
        assert_eq!(b.max_len, 3);
        assert_eq!(b.ids, vec![1, 2, 3, 4, 0, 0]);
        assert_eq!(b.attention_mask, vec![1, 1, 1, 1, 0, 0]);
        assert_eq!(b.lengths, vec![3, 1]);
        assert_eq!(pad_batch(&[], 0).ids.len(), 0);
    }
}
