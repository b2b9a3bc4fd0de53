//! Documents as text: loaders for PDF, HTML, Markdown and plain text, and the
//! chunkers that cut them into retrieval units.
//!
//! - [`loaders`]: bytes → [`Document`] (segments that keep page numbers and
//!   heading paths), pure Rust so the browser can run them too.
//! - [`chunk`]: recursive character splitting (paragraph → line → sentence →
//!   word → character), token-aware sizing, overlap, start offsets, and
//!   small-to-big parent/child chunks.

pub mod chunk;
pub mod loaders;

pub use chunk::{Chunk, ChunkOptions, SplitUnit};
pub use loaders::{Document, Segment, load};
