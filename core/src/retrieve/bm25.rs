//! BM25 keyword retrieval (Okapi BM25 with Lucene's non-negative IDF).
//!
//! `score(q, d) = Σ_t idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·|d|/avgdl))`,
//! `idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5))`. Text goes through an
//! [`Analyzer`]: Unicode lowercasing, splitting on anything that is not a
//! letter or digit, and Lucene's English stop words.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Lucene's English stop-word list (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`).
pub const ENGLISH_STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Turns text into index terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analyzer {
    /// Terms dropped from documents and queries.
    pub stop_words: Vec<String>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            stop_words: ENGLISH_STOP_WORDS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Analyzer {
    /// Lowercased alphanumeric runs that are not stop words.
    pub fn terms(&self, text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .filter(|t| !self.stop_words.iter().any(|s| s == t))
            .collect()
    }
}

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    /// Term-frequency saturation (Lucene: 1.2).
    pub k1: f32,
    /// Length normalisation, 0 (none) to 1 (full) (Lucene: 0.75).
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

/// An in-memory inverted index over documents numbered in insertion order.
#[derive(Debug, Clone, Default)]
pub struct Bm25Index {
    params: Bm25Params,
    analyzer: Analyzer,
    /// term → (document, term frequency)
    postings: HashMap<String, Vec<(u32, u32)>>,
    lengths: Vec<u32>,
    total: u64,
}

impl Bm25Index {
    /// An empty index.
    pub fn new(params: Bm25Params, analyzer: Analyzer) -> Self {
        Bm25Index {
            params,
            analyzer,
            ..Default::default()
        }
    }

    /// Adds a document; returns its number.
    pub fn add(&mut self, text: &str) -> u32 {
        let id = self.lengths.len() as u32;
        let terms = self.analyzer.terms(text);
        let mut tf: HashMap<String, u32> = HashMap::new();
        for t in &terms {
            *tf.entry(t.clone()).or_default() += 1;
        }
        for (t, n) in tf {
            self.postings.entry(t).or_default().push((id, n));
        }
        self.lengths.push(terms.len() as u32);
        self.total += terms.len() as u64;
        id
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether no document was added.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Lucene's IDF of a term.
    pub fn idf(&self, term: &str) -> f32 {
        let n = self.lengths.len() as f32;
        let df = self.postings.get(term).map_or(0, Vec::len) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// Scores every document containing a query term; the best `k`, best first
    /// (ties by document number). `allow` filters documents (e.g. removed ones).
    pub fn search(&self, query: &str, k: usize, allow: impl Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let Bm25Params { k1, b } = self.params;
        let avgdl = self.total as f32 / self.lengths.len().max(1) as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in self.analyzer.terms(query) {
            let Some(list) = self.postings.get(&term) else {
                continue;
            };
            let idf = self.idf(&term);
            for &(doc, tf) in list {
                let tf = tf as f32;
                // Postings only name documents this index added (or a load validated).
                let dl = self.lengths.get(doc as usize).copied().unwrap_or(0) as f32;
                *scores.entry(doc).or_default() +=
                    idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl.max(1e-9)));
            }
        }
        let mut out: Vec<(u32, f32)> = scores.into_iter().filter(|(d, _)| allow(*d)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_lowercases_splits_and_drops_stop_words() {
        let a = Analyzer::default();
        assert_eq!(
            a.terms("The R-FAQ: How to install_packages in R 4.2?"),
            vec!["r", "faq", "how", "install", "packages", "r", "4", "2"]
        );
        assert_eq!(a.terms("Ünïcode ÉTÉ"), vec!["ünïcode", "été"]);
    }

    #[test]
    fn scores_match_hand_computed_bm25() {
        let mut ix = Bm25Index::new(Bm25Params::default(), Analyzer::default());
        ix.add("apple banana apple"); // len 3, tf(apple) = 2
        ix.add("banana cherry"); // len 2
        ix.add("cherry cherry cherry date"); // len 4
        // N = 3, avgdl = 3. idf(apple) = ln(1 + (3 − 1 + 0.5)/(1 + 0.5)) = ln(8/3).
        let idf_apple = (8.0f32 / 3.0).ln();
        assert!((ix.idf("apple") - idf_apple).abs() < 1e-6);
        // doc 0: tf 2, dl 3: 2·2.2/(2 + 1.2·(0.25 + 0.75·1)) = 4.4/3.2.
        let want = idf_apple * 4.4 / 3.2;
        let got = ix.search("apples apple", 5, |_| true);
        assert_eq!(got.len(), 1);
        assert!((got[0].1 - want).abs() < 1e-5, "{got:?} vs {want}");
        // "cherry": df 2 → idf ln(1 + 1.5/2.5) = ln 1.6; doc 2 (tf 3, dl 4) beats doc 1 (tf 1, dl 2).
        let idf = 1.6f32.ln();
        let s2 = idf * 3.0 * 2.2 / (3.0 + 1.2 * (0.25 + 0.75 * 4.0 / 3.0));
        let s1 = idf * 2.2 / (1.0 + 1.2 * (0.25 + 0.75 * 2.0 / 3.0));
        let got = ix.search("Cherry", 5, |_| true);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![2, 1]);
        assert!(
            (got[0].1 - s2).abs() < 1e-5 && (got[1].1 - s1).abs() < 1e-5,
            "{got:?}"
        );
        // Filter and k.
        assert_eq!(ix.search("cherry", 5, |d| d != 2).len(), 1);
        assert_eq!(ix.search("cherry banana", 1, |_| true).len(), 1);
        assert!(ix.search("the of", 5, |_| true).is_empty());
    }
}
