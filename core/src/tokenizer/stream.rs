//! Incremental detokenization for streaming: token bytes in, whole UTF-8
//! characters out.
//!
//! A byte-level BPE token can end in the middle of a multi-byte character
//! (an emoji is often split over two or three tokens). Decoding each token on
//! its own would print U+FFFD replacement characters; [`TokenStream`] holds
//! the incomplete tail back until the character is complete.

use std::collections::HashMap;

/// GPT-2's byte → printable-character map: entry `b` is the character that
/// stands for byte `b` in byte-level BPE vocabularies.
pub fn byte_level_chars() -> Vec<char> {
    // Printable bytes map to themselves; the rest go to U+0100 upwards, in order.
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            if printable(b) {
                char::from(b)
            } else {
                // U+0100..U+0143 are all chars; the fallback is unreachable.
                let c = char::from_u32(next).unwrap_or(char::REPLACEMENT_CHARACTER);
                next += 1;
                c
            }
        })
        .collect()
}

/// The inverse of [`byte_level_chars`]: character → byte.
pub(crate) fn byte_level_unmap() -> HashMap<char, u8> {
    byte_level_chars()
        .into_iter()
        .enumerate()
        .map(|(b, c)| (c, b as u8))
        .collect()
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8.
#[derive(Debug, Clone)]
pub struct TokenStream<'a> {
    table: &'a [Vec<u8>],
    skip: &'a [bool],
    pending: Vec<u8>,
}

impl<'a> TokenStream<'a> {
    /// `table[id]` is the bytes of token `id` (see
    /// [`super::Tokenizer::byte_level_table`]); tokens with `skip[id]` set
    /// (special tokens) produce no text.
    pub fn new(table: &'a [Vec<u8>], skip: &'a [bool]) -> Self {
        TokenStream {
            table,
            skip,
            pending: Vec::new(),
        }
    }

    /// Adds one token; returns the text that became complete (maybe empty).
    pub fn push(&mut self, id: u32) -> String {
        let id = id as usize;
        if self.skip.get(id).copied().unwrap_or(false) {
            return String::new();
        }
        if let Some(bytes) = self.table.get(id) {
            self.pending.extend_from_slice(bytes);
        }
        let cut = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid (not merely incomplete) bytes: emit with replacement
            // characters up to the incomplete tail, as a whole-text decode would.
            Err(_) => incomplete_tail_start(&self.pending),
        };
        let out: Vec<u8> = self.pending.drain(..cut).collect();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Flushes what is left at the end of generation (an incomplete character
    /// becomes U+FFFD, as in a whole-text decode).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Where a possibly incomplete UTF-8 sequence at the end of `b` starts.
fn incomplete_tail_start(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let i = b.len() - back;
        let Some(&lead) = b.get(i) else {
            break;
        };
        if lead & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead
        }
        let need = match lead {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if need > back { i } else { b.len() };
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_gpt2s() {
        let m = byte_level_unmap();
        assert_eq!(m.len(), 256);
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'Ċ'], b'\n');
        assert_eq!(m[&'a'], b'a');
        // 0xAD (soft hyphen) is not printable: it is the last remapped byte (U+0100 + 67).
        assert_eq!(m[&'\u{143}'], 0xAD);
    }

    #[test]
    fn multibyte_characters_split_across_tokens_come_out_whole() {
        // "é" = C3 A9, "🙂" = F0 9F 99 82, split at every byte boundary.
        let table = vec![
            b"caf".to_vec(),
            vec![0xC3],
            vec![0xA9, b' '],
            vec![0xF0, 0x9F],
            vec![0x99],
            vec![0x82],
            b"<|im_end|>".to_vec(),
        ];
        let skip = vec![false, false, false, false, false, false, true];
        let mut s = TokenStream::new(&table, &skip);
        let pieces: Vec<String> = [0, 1, 2, 3, 4, 5, 6].iter().map(|&i| s.push(i)).collect();
        assert_eq!(pieces, vec!["caf", "", "é ", "", "", "🙂", ""]);
        assert_eq!(s.finish(), "");
        // A dangling lead byte at the end is flushed as U+FFFD.
        s.push(3);
        assert_eq!(s.finish(), "\u{FFFD}");
        // An invalid byte is replaced at once instead of blocking the stream.
        let table = vec![vec![0xFF, b'a']];
        let mut s = TokenStream::new(&table, &[false]);
        assert_eq!(s.push(0), "\u{FFFD}a");
    }
}
