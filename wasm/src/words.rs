//! `WordVectors`: word2vec vectors (`cairn train word2vec`, gensim's text
//! format) — nearest words, analogies, similarities.

use wasm_bindgen::prelude::*;

use crate::{js_err, to_js};

/// Word vectors parsed from the word2vec text format.
#[wasm_bindgen]
pub struct WordVectors {
    inner: cairn_core::word2vec::WordVectors,
}

#[derive(serde::Serialize)]
struct Neighbour {
    word: String,
    score: f32,
}

fn neighbours(v: Vec<(String, f32)>) -> Vec<Neighbour> {
    v.into_iter()
        .map(|(word, score)| Neighbour { word, score })
        .collect()
}

#[wasm_bindgen]
impl WordVectors {
    /// Parses the text of a vectors file (a `count dim` line, then `word v1 … vdim` lines).
    #[wasm_bindgen(constructor)]
    pub fn new(text: &str) -> Result<WordVectors, JsError> {
        Ok(WordVectors {
            inner: cairn_core::word2vec::WordVectors::from_text(text, "word vectors")
                .map_err(js_err)?,
        })
    }

    /// Number of words.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.words.len()
    }

    /// Vector dimension.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.inner.dim
    }

    /// The vector of `word` (`undefined` when it is not in the vocabulary).
    pub fn vector(&self, word: &str) -> Option<Vec<f32>> {
        self.inner.vector(word).map(<[f32]>::to_vec)
    }

    /// The `k` nearest words to `word`: `[{ word, score }]`, best first.
    #[wasm_bindgen(js_name = mostSimilar)]
    pub fn most_similar(&self, word: &str, k: usize) -> Result<JsValue, JsError> {
        let v = self.inner.most_similar(&[word], &[], k).map_err(js_err)?;
        to_js(&neighbours(v)).map_err(|e| JsError::new(&format!("{e:?}")))
    }

    /// `a` is to `b` as `c` is to …: the `k` best `[{ word, score }]`.
    pub fn analogy(&self, a: &str, b: &str, c: &str, k: usize) -> Result<JsValue, JsError> {
        let v = self.inner.analogy(a, b, c, k).map_err(js_err)?;
        to_js(&neighbours(v)).map_err(|e| JsError::new(&format!("{e:?}")))
    }

    /// Cosine similarity of two words.
    pub fn similarity(&self, a: &str, b: &str) -> Result<f32, JsError> {
        self.inner.similarity(a, b).map_err(js_err)
    }
}
