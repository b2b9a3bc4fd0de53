//! Retrieval: dense vector indexes (exact flat, HNSW, IVF-Flat/IVF-PQ) behind one trait, in
//! a documented, versioned file format; BM25 keyword search; reciprocal rank
//! fusion and MMR; the [`Reranker`] interface.

pub mod bm25;
pub mod dense;
pub mod fusion;
pub mod hnsw;
pub mod ivf;

/// Re-scores retrieved passages against a query (a cross-encoder, or any
/// model that reads query and passage together). Higher is more relevant.
pub trait Reranker {
    /// One score per passage, in the order given.
    fn score(&self, query: &str, passages: &[&str]) -> crate::Result<Vec<f32>>;

    /// Indices of `passages` sorted by score, best first, at most `k`.
    fn rerank(&self, query: &str, passages: &[&str], k: usize) -> crate::Result<Vec<(usize, f32)>> {
        let scores = self.score(query, passages)?;
        if scores.len() != passages.len() {
            return Err(crate::Error::Input(format!(
                "reranker returned {} scores for {} passages",
                scores.len(),
                passages.len()
            )));
        }
        let mut order: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        order.truncate(k);
        Ok(order)
    }
}
