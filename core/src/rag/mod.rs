//! Retrieval-augmented generation: a persistent hybrid index over document
//! collections ([`index`]) and grounded answering with citations ([`answer`]).

pub mod answer;
pub mod index;
pub mod ingest;

pub use answer::{Answer, AskOptions, build_prompt, parse_citations};
pub use index::{FileChunks, Hit, Method, RagIndex, SearchOptions, rerank, rerank_fused};
pub use ingest::{Ingestor, content_hash};
