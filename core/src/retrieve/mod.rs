//! Retrieval: dense vector indexes (exact flat and HNSW) behind one trait, in
//! a documented, versioned file format. BM25, fusion, MMR and reranking join
//! with the RAG issue.

pub mod dense;
