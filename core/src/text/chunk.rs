//! Chunking: LangChain's `RecursiveCharacterTextSplitter`, with exact source
//! offsets and token-aware sizes.
//!
//! The text is split by the first separator that occurs (paragraph `\n\n`,
//! then line `\n`, sentence `. `, word ` `, and finally characters); pieces
//! still longer than the chunk size are split again with the next separator.
//! Neighbouring pieces are then merged up to the chunk size, and each new
//! chunk starts with up to `overlap` units of the previous one. Pieces are
//! byte ranges of the original text (the separator stays with the piece it
//! starts), so every chunk is an exact slice and `start` is its true offset.

use serde::{Deserialize, Serialize};

use super::loaders::Document;
use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// What chunk sizes count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitUnit {
    /// Unicode characters.
    Chars,
    /// Tokens of the embedder's tokenizer (special tokens not counted).
    Tokens,
}

/// Chunker settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkOptions {
    /// Largest chunk, in `unit`s.
    pub size: usize,
    /// How much of the previous chunk a chunk repeats, in `unit`s.
    pub overlap: usize,
    /// Characters or tokens.
    pub unit: SplitUnit,
    /// Separators, coarsest first; the empty string means "between characters".
    pub separators: Vec<String>,
}

impl Default for ChunkOptions {
    /// 512 tokens with 64 of overlap.
    fn default() -> Self {
        ChunkOptions {
            size: 512,
            overlap: 64,
            unit: SplitUnit::Tokens,
            separators: ["\n\n", "\n", ". ", " ", ""].map(String::from).to_vec(),
        }
    }
}

/// One retrieval unit, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// The text (an exact slice of the segment's text).
    pub text: String,
    /// The document's source.
    pub source: String,
    /// Page (PDF).
    pub page: Option<u32>,
    /// Heading path (HTML, Markdown).
    pub headings: Vec<String>,
    /// Index of the segment in the document.
    pub segment: usize,
    /// Byte offset of the chunk in the segment's text (`add_start_index`).
    pub start: usize,
    /// For small-to-big children: index of the parent chunk.
    pub parent: Option<usize>,
}

/// A splitter bound to its options and, for token sizes, a tokenizer.
pub struct Splitter<'t> {
    opts: ChunkOptions,
    tokenizer: Option<&'t Tokenizer>,
}

impl<'t> Splitter<'t> {
    /// Checks the options (overlap smaller than size; a tokenizer for token units).
    pub fn new(opts: ChunkOptions, tokenizer: Option<&'t Tokenizer>) -> Result<Self> {
        if opts.size == 0 || opts.overlap >= opts.size {
            return Err(Error::Input(format!(
                "chunk overlap {} must be smaller than the chunk size {}",
                opts.overlap, opts.size
            )));
        }
        if opts.unit == SplitUnit::Tokens && tokenizer.is_none() {
            return Err(Error::Input("token-sized chunks need a tokenizer".into()));
        }
        Ok(Splitter { opts, tokenizer })
    }

    fn len(&self, s: &str) -> Result<usize> {
        match (self.opts.unit, self.tokenizer) {
            (SplitUnit::Tokens, Some(t)) => Ok(t.encode(s, false)?.ids.len()),
            _ => Ok(s.chars().count()),
        }
    }

    /// Byte ranges of `text`'s chunks.
    pub fn split_ranges(&self, text: &str) -> Result<Vec<std::ops::Range<usize>>> {
        self.split(text, 0..text.len(), 0, 0)
    }

    /// Chunks of `range`: pieces cut at the first separator present are
    /// merged up to the size; a piece that alone is too long is chunked
    /// recursively with the finer separators (as LangChain does, so chunk
    /// boundaries prefer coarse separators). The first `skip` bytes (the
    /// separator this range starts with) are never cut.
    fn split(
        &self,
        text: &str,
        range: std::ops::Range<usize>,
        sep_from: usize,
        skip: usize,
    ) -> Result<Vec<std::ops::Range<usize>>> {
        let seps = self.opts.separators.get(sep_from..).unwrap_or_default();
        let slice = &text[range.clone()];
        let body = &slice[skip..];
        let (si, sep) = match seps
            .iter()
            .enumerate()
            .find(|(_, s)| s.is_empty() || body.contains(s.as_str()))
        {
            Some((i, s)) => (sep_from + i, s.as_str()),
            None => (self.opts.separators.len(), ""),
        };
        // Cut before every occurrence of the separator (it starts the next piece).
        let mut cuts: Vec<usize> = if sep.is_empty() {
            slice.char_indices().map(|(i, _)| i).skip(1).collect()
        } else {
            slice
                .match_indices(sep)
                .map(|(i, _)| i)
                .filter(|&i| i > 0)
                .collect()
        };
        cuts.push(slice.len());
        let mut start = 0;
        let mut chunks = Vec::new();
        let mut good = Vec::new();
        for cut in cuts {
            if cut <= start {
                continue;
            }
            let r = range.start + start..range.start + cut;
            let n = self.len(&text[r.clone()])?;
            if n > self.opts.size && !sep.is_empty() {
                chunks.extend(self.merge(&good));
                good.clear();
                let lead = if start == 0 { skip } else { sep.len() };
                chunks.extend(self.split(text, r, si + 1, lead)?);
            } else {
                good.push((r, n));
            }
            start = cut;
        }
        chunks.extend(self.merge(&good));
        Ok(chunks)
    }

    /// Merges consecutive pieces up to the size, with overlap.
    fn merge(&self, pieces: &[(std::ops::Range<usize>, usize)]) -> Vec<std::ops::Range<usize>> {
        let (size, overlap) = (self.opts.size, self.opts.overlap);
        let mut out = Vec::new();
        let mut window: std::collections::VecDeque<(std::ops::Range<usize>, usize)> =
            Default::default();
        let mut total = 0;
        for (r, n) in pieces {
            if total + n > size
                && let (Some(first), Some(last)) = (window.front(), window.back())
            {
                out.push(first.0.start..last.0.end);
                // Keep a tail of at most `overlap` units that leaves room for the new piece.
                while total > overlap || total + n > size {
                    let Some((_, m)) = window.pop_front() else {
                        break;
                    };
                    total -= m;
                }
            }
            window.push_back((r.clone(), *n));
            total += n;
        }
        if let (Some(first), Some(last)) = (window.front(), window.back()) {
            out.push(first.0.start..last.0.end);
        }
        out
    }

    /// Chunks every segment of a document; chunks never cross segments (pages).
    pub fn chunk(&self, doc: &Document) -> Result<Vec<Chunk>> {
        let mut out = Vec::new();
        for (si, seg) in doc.segments.iter().enumerate() {
            for r in self.split_ranges(&seg.text)? {
                let Some((text, start)) = trimmed(&seg.text, r) else {
                    continue;
                };
                out.push(Chunk {
                    text: text.to_string(),
                    source: doc.source.clone(),
                    page: seg.page,
                    headings: seg.headings.clone(),
                    segment: si,
                    start,
                    parent: None,
                });
            }
        }
        Ok(out)
    }
}

/// `text[r]` without surrounding whitespace and the byte offset where that
/// trimmed text starts in `text`; `None` when nothing is left.
fn trimmed(text: &str, r: std::ops::Range<usize>) -> Option<(&str, usize)> {
    let slice = &text[r.clone()];
    let body = slice.trim();
    (!body.is_empty()).then(|| (body, r.start + slice.len() - slice.trim_start().len()))
}

/// Small-to-big: `parents` chunks (e.g. 512 tokens) are returned for
/// retrieval hits on their `children` (e.g. 128 tokens), which are what gets
/// indexed. Each child's `parent` is the index of its parent in the first list.
pub fn small_to_big(
    doc: &Document,
    parent: &Splitter<'_>,
    child: &Splitter<'_>,
) -> Result<(Vec<Chunk>, Vec<Chunk>)> {
    let parents = parent.chunk(doc)?;
    let mut children = Vec::new();
    for (pi, p) in parents.iter().enumerate() {
        for r in child.split_ranges(&p.text)? {
            let Some((text, start)) = trimmed(&p.text, r) else {
                continue;
            };
            children.push(Chunk {
                text: text.to_string(),
                start: p.start + start,
                parent: Some(pi),
                ..p.clone()
            });
        }
    }
    Ok((parents, children))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::loaders::load_text;

    fn chars(size: usize, overlap: usize) -> Splitter<'static> {
        Splitter::new(
            ChunkOptions {
                size,
                overlap,
                unit: SplitUnit::Chars,
                ..Default::default()
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn splits_at_the_coarsest_separator_that_fits() {
        let text = "Para one is here.\n\nPara two. It has two sentences.\n\nThree";
        let s = chars(40, 0);
        let got: Vec<&str> = s
            .split_ranges(text)
            .unwrap()
            .into_iter()
            .map(|r| &text[r])
            .collect();
        // 17 + 33 > 40 splits; 33 + 7 = 40 still fits, so "Three" joins paragraph two.
        assert_eq!(
            got,
            vec![
                "Para one is here.",
                "\n\nPara two. It has two sentences.\n\nThree"
            ]
        );
        // Smaller: the middle paragraph is cut at its sentence boundary.
        let s = chars(20, 0);
        let got: Vec<&str> = s
            .split_ranges(text)
            .unwrap()
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(
            got,
            vec![
                "Para one is here.",
                "\n\nPara two",
                ". It has two",
                " sentences.",
                "\n\nThree"
            ]
        );
        // Every chunk respects the size and the chunks tile the text.
        for size in [5, 9, 20, 40] {
            let ranges = chars(size, 0).split_ranges(text).unwrap();
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(ranges.last().unwrap().end, text.len());
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            assert!(
                ranges
                    .iter()
                    .all(|r| text[r.clone()].chars().count() <= size)
            );
        }
    }

    #[test]
    fn overlap_repeats_the_tail_of_the_previous_chunk() {
        let text = "aa bb cc dd ee ff gg hh";
        let s = chars(8, 3);
        let got: Vec<&str> = s
            .split_ranges(text)
            .unwrap()
            .into_iter()
            .map(|r| &text[r])
            .collect();
        // Pieces are "aa", " bb", " cc", ...: 8 chars hold three, and the 3-char
        // overlap carries the last piece into the next chunk.
        assert_eq!(
            got,
            vec!["aa bb cc", " cc dd", " dd ee", " ee ff", " ff gg", " gg hh"]
        );
        for w in got.windows(2) {
            let prev_tail = &w[0][w[0].len() - 3..];
            assert!(w[1].starts_with(prev_tail), "{w:?}");
        }
        assert!(
            Splitter::new(
                ChunkOptions {
                    size: 4,
                    overlap: 4,
                    ..Default::default()
                },
                None
            )
            .is_err()
        );
    }

    #[test]
    fn start_index_points_at_the_chunk_and_unicode_is_respected() {
        let text = "héllo wörld. ünïcode 🙂 text that goes on and on";
        let d = load_text("t.txt", text);
        let chunks = chars(12, 4).chunk(&d).unwrap();
        for c in &chunks {
            assert_eq!(&text[c.start..c.start + c.text.len()], c.text);
            assert!(c.text.chars().count() <= 12);
        }
        // Character-level fallback for a word longer than the chunk.
        let long = "x".repeat(25);
        let ranges = chars(10, 0).split_ranges(&long).unwrap();
        assert_eq!(ranges.len(), 3);
    }

    #[test]
    fn small_to_big_children_point_at_their_parents() {
        let text = (0..40)
            .map(|i| format!("Sentence number {i} is here."))
            .collect::<Vec<_>>()
            .join(" ");
        let d = load_text("t.txt", &text);
        let (parents, children) = small_to_big(&d, &chars(200, 20), &chars(60, 0)).unwrap();
        assert!(children.len() > parents.len());
        for c in &children {
            let p = &parents[c.parent.unwrap()];
            assert!(p.text.contains(&c.text));
            assert_eq!(&text[c.start..c.start + c.text.len()], c.text);
        }
    }
}
