//! Turning one file's bytes into indexable [`FileChunks`]: load (PDF, HTML,
//! Markdown, text), chunk small-to-big (128-token children indexed, their
//! 512-token parents with 64 tokens of overlap returned as context), embed
//! the children. Shared by `cairn index` and the browser's `Index.addFile`,
//! so both build identical indexes from the same file.

use sha2::{Digest, Sha256};

use super::index::FileChunks;
use crate::backend::Backend;
use crate::embedder::Embedder;
use crate::error::Result;
use crate::text::chunk::{ChunkOptions, SplitUnit, Splitter, small_to_big};

/// Children embedded per forward pass.
pub const EMBED_BATCH: usize = 32;

/// Hex sha256 of a file's bytes (the index's content hash).
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The index's chunk settings, in tokens: parents of 512 (overlap 64) and
/// children of 128 (no overlap).
pub fn chunk_options() -> (ChunkOptions, ChunkOptions) {
    let child = ChunkOptions {
        size: 128,
        overlap: 0,
        unit: SplitUnit::Tokens,
        ..Default::default()
    };
    (ChunkOptions::default(), child)
}

/// Chunks and embeds files with one embedder's tokenizer.
pub struct Ingestor<'e, B: Backend> {
    embedder: &'e Embedder<B>,
    parent: Splitter<'e>,
    child: Splitter<'e>,
}

impl<'e, B: Backend> Ingestor<'e, B> {
    /// Parents of 512 tokens (overlap 64) and children of 128 tokens (no
    /// overlap), counted with the embedder's tokenizer.
    pub fn new(embedder: &'e Embedder<B>) -> Result<Self> {
        let tok = embedder.tokenizer();
        let (parent, child) = chunk_options();
        let parent = Splitter::new(parent, Some(tok))?;
        let child = Splitter::new(child, Some(tok))?;
        Ok(Ingestor {
            embedder,
            parent,
            child,
        })
    }

    /// Loads `bytes` (the format chosen by `source`'s extension, see
    /// [`crate::text::load`]), chunks and embeds them. `hash` is the content
    /// hash to record ([`content_hash`] of the bytes). `on_progress(done,
    /// total)` is called after each embedded batch of children and may
    /// return `false` to stop (then the result is an error saying so).
    pub async fn file_chunks(
        &self,
        source: &str,
        bytes: &[u8],
        hash: String,
        mut on_progress: impl FnMut(usize, usize) -> bool,
    ) -> Result<FileChunks> {
        let doc = crate::text::load(source, bytes)?;
        let pages = doc.segments.iter().filter(|s| s.page.is_some()).count();
        let (parents, children) = small_to_big(&doc, &self.parent, &self.child)?;
        let texts: Vec<&str> = children.iter().map(|c| c.text.as_str()).collect();
        let mut vectors = Vec::with_capacity(texts.len() * self.embedder.dim());
        for batch in texts.chunks(EMBED_BATCH) {
            vectors.extend(self.embedder.encode_async(batch, true).await?.data);
            if !on_progress(vectors.len() / self.embedder.dim(), texts.len()) {
                return Err(crate::Error::Input(format!(
                    "{source}: indexing stopped by the caller"
                )));
            }
        }
        Ok(FileChunks {
            source: source.to_string(),
            hash,
            pages,
            parents,
            children,
            vectors,
        })
    }
}
