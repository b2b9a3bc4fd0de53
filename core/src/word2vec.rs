//! Word2Vec (Mikolov et al., 2013): skip-gram and CBOW with negative
//! sampling, trained as word2vec.c and gensim do, and the word vectors it
//! produces — nearest neighbours, analogies, the word2vec text format.
//!
//! Training follows gensim 4's defaults and rules:
//! - the vocabulary keeps words seen at least `min_count` times, most
//!   frequent first (ties in first-seen order);
//! - frequent words are down-sampled: a word of count `c` is kept with
//!   probability `(√(c / (s·N)) + 1) · s·N / c` (`s` = `sample`, `N` = total
//!   words), as gensim computes it;
//! - the context of each position is a window of `b` words each side, `b`
//!   drawn uniformly from 1..=`window` (word2vec.c's "reduced window");
//! - negatives are drawn from the unigram distribution raised to 0.75 (a
//!   draw that hits the centre word is skipped, not redrawn);
//! - the input vectors start uniform in `±1/dim` (gensim 4), the output vectors at 0;
//! - the learning rate decays linearly from `alpha` to `min_alpha` over all
//!   epochs' words;
//! - a positive or negative whose score `v·u` is already beyond ±6 is not
//!   updated (gensim's `MAX_EXP` rule);
//! - skip-gram trains each (context word → centre word) pair; CBOW the mean
//!   of the context vectors → centre word, the error added back to each
//!   context vector undivided (word2vec.c, gensim's `cbow_mean=1`).
//!
//! One step on one example (input vector `v`, the positive output `u₀`,
//! negatives `u₁…u_k`) is gradient descent on
//! `L = −log σ(v·u₀) − Σᵢ log σ(−v·uᵢ)` ([`sgns_loss`]), checked against
//! finite differences in the tests.
//!
//! Threads split each epoch's sentences and update the shared matrices
//! without locks ("Hogwild!", Recht et al. 2011), as word2vec.c and gensim
//! do; with one thread a seeded run is exactly reproducible.

// Word ids index the matrices this module sized (`vocab × dim`); sentence
// positions stay inside their sentence.
#![allow(clippy::indexing_slicing)]

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Skip-gram or CBOW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Predict the centre word from each context word.
    SkipGram,
    /// Predict the centre word from the mean of its context.
    Cbow,
}

/// Training settings (gensim's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Word2VecConfig {
    /// Skip-gram or CBOW (gensim `sg`).
    pub architecture: Architecture,
    /// Vector dimension (`vector_size`, 100).
    pub dim: usize,
    /// Maximum context distance each side (`window`, 5).
    pub window: usize,
    /// Words seen fewer times are dropped (`min_count`, 5).
    pub min_count: u64,
    /// Down-sampling threshold of frequent words (`sample`, 1e-3; 0 disables).
    pub sample: f64,
    /// Negative samples per positive (`negative`, 5).
    pub negative: usize,
    /// Starting learning rate (`alpha`, 0.025).
    pub alpha: f32,
    /// Final learning rate (`min_alpha`, 0.0001).
    pub min_alpha: f32,
    /// Passes over the corpus (`epochs`, 5).
    pub epochs: usize,
    /// Worker threads (`workers`, 3).
    pub threads: usize,
    /// Random seed (`seed`, 1).
    pub seed: u64,
}

impl Default for Word2VecConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::SkipGram,
            dim: 100,
            window: 5,
            min_count: 5,
            sample: 1e-3,
            negative: 5,
            alpha: 0.025,
            min_alpha: 0.0001,
            epochs: 5,
            threads: 3,
            seed: 1,
        }
    }
}

/// Learned word vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct WordVectors {
    /// Words, most frequent first.
    pub words: Vec<String>,
    /// Corpus count of each word.
    pub counts: Vec<u64>,
    /// Vector dimension.
    pub dim: usize,
    /// `words.len() × dim` vectors, row-major.
    pub vectors: Vec<f32>,
    index: HashMap<String, usize>,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainStats {
    /// Words in the vocabulary.
    pub vocab: usize,
    /// Corpus words (all, before `min_count` and down-sampling).
    pub corpus_words: u64,
    /// Words trained on (after down-sampling), all epochs.
    pub trained_words: u64,
    /// Wall-clock seconds of the training passes.
    pub seconds: f64,
}

/// Scores beyond ±6 are saturated: gensim (and word2vec.c's table) stop there.
const MAX_EXP: f32 = 6.0;

/// The logistic function.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The negative-sampling loss of one example: input vector `v`, output
/// vectors `outputs` with their labels (1 for the positive, 0 for negatives).
pub fn sgns_loss(v: &[f32], outputs: &[(&[f32], f32)]) -> f32 {
    outputs
        .iter()
        .map(|(u, label)| {
            let s = sigmoid(crate::util::dot(v, u));
            if *label > 0.5 {
                -s.ln()
            } else {
                -(1.0 - s).ln()
            }
        })
        .sum()
}

/// One gradient step on one example: updates each output vector in place
/// and adds the input's step to `neu1e` (applied by the caller, after all
/// outputs, as word2vec.c does). `syn1` holds the output vectors; `targets`
/// are `(row, label)`.
fn sgns_step(v: &[f32], syn1: &mut [f32], targets: &[(usize, f32)], alpha: f32, neu1e: &mut [f32]) {
    let dim = v.len();
    for &(t, label) in targets {
        let Some(u) = syn1.get_mut(t * dim..(t + 1) * dim) else {
            continue;
        };
        let dot = crate::util::dot(v, u);
        // gensim leaves a pair whose score is already saturated (|v·u| ≥ 6) alone.
        if dot.abs() >= MAX_EXP {
            continue;
        }
        let g = (label - sigmoid(dot)) * alpha;
        for ((e, uu), vv) in neu1e.iter_mut().zip(u.iter_mut()).zip(v) {
            *e += g * *uu;
            *uu += g * vv;
        }
    }
}

/// A small fast generator (word2vec.c's LCG), one per thread.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(25_214_903_917).wrapping_add(11);
        self.0
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 16) & 0xFFFF_FFFF) as f64 / 4_294_967_296.0
    }
}

/// Matrices shared by the training threads (Hogwild!). Each thread reads and
/// writes rows without locks; concurrent updates of one row may interleave,
/// which the algorithm tolerates (each f32 store is one aligned write).
struct Shared {
    syn0: std::cell::UnsafeCell<Vec<f32>>,
    syn1: std::cell::UnsafeCell<Vec<f32>>,
}

// SAFETY: see the type's docs — lock-free racy updates are the algorithm
// (word2vec.c, gensim); no thread resizes or frees the vectors while others run.
unsafe impl Sync for Shared {}

impl WordVectors {
    /// Vectors from parts (checked: `vectors.len() = words.len() × dim`, no duplicate words).
    pub fn new(
        words: Vec<String>,
        counts: Vec<u64>,
        dim: usize,
        vectors: Vec<f32>,
    ) -> Result<Self> {
        if vectors.len() != words.len() * dim || counts.len() != words.len() {
            return Err(Error::Shape {
                op: "word vectors",
                detail: format!(
                    "{} words, {} counts and {} values for dimension {dim}",
                    words.len(),
                    counts.len(),
                    vectors.len()
                ),
            });
        }
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            if index.insert(w.clone(), i).is_some() {
                return Err(Error::Input(format!("word '{w}' appears twice")));
            }
        }
        Ok(Self {
            words,
            counts,
            dim,
            vectors,
            index,
        })
    }

    /// Trains on `sentences` (each a list of words).
    pub fn train(sentences: &[Vec<String>], cfg: &Word2VecConfig) -> Result<(Self, TrainStats)> {
        if cfg.dim == 0 || cfg.window == 0 || cfg.epochs == 0 {
            return Err(Error::Input(
                "word2vec needs dim, window and epochs of at least 1".into(),
            ));
        }
        // Vocabulary: count, keep ≥ min_count, most frequent first (ties: first seen).
        let mut first: HashMap<&str, (u64, usize)> = HashMap::new();
        let mut corpus_words = 0u64;
        for s in sentences {
            for w in s {
                let n = first.len();
                first.entry(w.as_str()).or_insert((0, n)).0 += 1;
                corpus_words += 1;
            }
        }
        let mut vocab: Vec<(&str, u64, usize)> = first
            .into_iter()
            .filter(|(_, (c, _))| *c >= cfg.min_count)
            .map(|(w, (c, i))| (w, c, i))
            .collect();
        vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        if vocab.is_empty() {
            return Err(Error::Input(format!(
                "no word occurs at least min_count = {} times",
                cfg.min_count
            )));
        }
        let words: Vec<String> = vocab.iter().map(|v| v.0.to_string()).collect();
        let counts: Vec<u64> = vocab.iter().map(|v| v.1).collect();
        let index: HashMap<&str, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, v)| (v.0, i as u32))
            .collect();
        let retained: u64 = counts.iter().sum();
        // Keep probability per word (gensim's formula; sample is a fraction).
        let keep: Vec<f64> = counts
            .iter()
            .map(|&c| {
                if cfg.sample <= 0.0 {
                    return 1.0;
                }
                let t = cfg.sample * retained as f64;
                (((c as f64 / t).sqrt() + 1.0) * t / c as f64).min(1.0)
            })
            .collect();
        // Unigram^0.75 cumulative table for negatives.
        let powered: Vec<f64> = counts.iter().map(|&c| (c as f64).powf(0.75)).collect();
        let total: f64 = powered.iter().sum();
        let mut acc = 0.0;
        let cum: Vec<f64> = powered
            .iter()
            .map(|p| {
                acc += p / total;
                acc
            })
            .collect();
        let draw = |r: f64| cum.partition_point(|&c| c < r).min(cum.len() - 1);
        let (n, dim) = (words.len(), cfg.dim);
        let mut init = Lcg(cfg.seed);
        let syn0: Vec<f32> = (0..n * dim)
            .map(|_| ((init.unit() * 2.0 - 1.0) / dim as f64) as f32)
            .collect();
        let shared = Shared {
            syn0: std::cell::UnsafeCell::new(syn0),
            syn1: std::cell::UnsafeCell::new(vec![0f32; n * dim]),
        };
        let ids: Vec<Vec<u32>> = sentences
            .iter()
            .map(|s| {
                s.iter()
                    .filter_map(|w| index.get(w.as_str()).copied())
                    .collect()
            })
            .collect();
        let total_words = retained * cfg.epochs as u64;
        let progress = std::sync::atomic::AtomicU64::new(0);
        let trained = std::sync::atomic::AtomicU64::new(0);
        let threads = cfg.threads.max(1);
        let started = std::time::Instant::now();
        for epoch in 0..cfg.epochs {
            let work = |part: &[Vec<u32>], t: usize| {
                let (shared, keep, progress, trained, draw) =
                    (&shared, &keep, &progress, &trained, &draw);
                let mut rng = Lcg(cfg.seed ^ (((epoch * threads + t) as u64 + 1) * 0x9E37));
                // SAFETY: Hogwild! (see `Shared`): rows are read and written racily by design.
                let (syn0, syn1) = unsafe { (&mut *shared.syn0.get(), &mut *shared.syn1.get()) };
                let mut neu1 = vec![0f32; dim];
                let mut neu1e = vec![0f32; dim];
                let mut vbuf = vec![0f32; dim];
                let mut targets = Vec::with_capacity(cfg.negative + 1);
                let mut sent = Vec::new();
                for s in part {
                    let done =
                        progress.fetch_add(s.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    let frac = done as f32 / total_words.max(1) as f32;
                    let alpha = (cfg.alpha - (cfg.alpha - cfg.min_alpha) * frac).max(cfg.min_alpha);
                    sent.clear();
                    sent.extend(
                        s.iter()
                            .copied()
                            .filter(|&w| keep[w as usize] >= rng.unit()),
                    );
                    trained.fetch_add(sent.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    for pos in 0..sent.len() {
                        let center = sent[pos] as usize;
                        let b = 1 + (rng.next() % cfg.window as u64) as usize;
                        let lo = pos.saturating_sub(b);
                        let hi = (pos + b + 1).min(sent.len());
                        targets.clear();
                        targets.push((center, 1.0));
                        let fill = |rng: &mut Lcg, targets: &mut Vec<(usize, f32)>| {
                            // `negative` draws; one that hits the centre word is
                            // skipped, not redrawn (gensim's rule).
                            targets.truncate(1);
                            for _ in 0..cfg.negative {
                                let w = draw(rng.unit());
                                if w != center {
                                    targets.push((w, 0.0));
                                }
                            }
                        };
                        match cfg.architecture {
                            Architecture::SkipGram => {
                                for (c, &ctx) in sent.iter().enumerate().take(hi).skip(lo) {
                                    if c == pos {
                                        continue;
                                    }
                                    let ctx = ctx as usize;
                                    fill(&mut rng, &mut targets);
                                    neu1e.iter_mut().for_each(|e| *e = 0.0);
                                    vbuf.copy_from_slice(&syn0[ctx * dim..(ctx + 1) * dim]);
                                    sgns_step(&vbuf, syn1, &targets, alpha, &mut neu1e);
                                    for (x, e) in
                                        syn0[ctx * dim..(ctx + 1) * dim].iter_mut().zip(&neu1e)
                                    {
                                        *x += e;
                                    }
                                }
                            }
                            Architecture::Cbow => {
                                let cnt = hi - lo - 1;
                                if cnt == 0 {
                                    continue;
                                }
                                neu1.iter_mut().for_each(|x| *x = 0.0);
                                for c in (lo..hi).filter(|&c| c != pos) {
                                    let w = sent[c] as usize;
                                    for (a, x) in neu1.iter_mut().zip(&syn0[w * dim..(w + 1) * dim])
                                    {
                                        *a += x;
                                    }
                                }
                                let inv = 1.0 / cnt as f32;
                                neu1.iter_mut().for_each(|x| *x *= inv);
                                fill(&mut rng, &mut targets);
                                neu1e.iter_mut().for_each(|e| *e = 0.0);
                                sgns_step(&neu1, syn1, &targets, alpha, &mut neu1e);
                                for c in (lo..hi).filter(|&c| c != pos) {
                                    let w = sent[c] as usize;
                                    for (x, e) in
                                        syn0[w * dim..(w + 1) * dim].iter_mut().zip(&neu1e)
                                    {
                                        *x += e;
                                    }
                                }
                            }
                        }
                    }
                }
            };
            if threads == 1 {
                work(&ids, 0);
            } else {
                std::thread::scope(|scope| {
                    let per = ids.len().div_ceil(threads);
                    for (t, part) in ids.chunks(per.max(1)).enumerate() {
                        let work = &work;
                        scope.spawn(move || work(part, t));
                    }
                });
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let vectors = shared.syn0.into_inner();
        let stats = TrainStats {
            vocab: n,
            corpus_words,
            trained_words: trained.into_inner(),
            seconds,
        };
        Ok((Self::new(words, counts, dim, vectors)?, stats))
    }

    /// The vector of `word`.
    pub fn vector(&self, word: &str) -> Option<&[f32]> {
        let i = *self.index.get(word)?;
        self.vectors.get(i * self.dim..(i + 1) * self.dim)
    }

    fn unit_rows(&self) -> Vec<f32> {
        let mut u = self.vectors.clone();
        u.chunks_mut(self.dim.max(1))
            .for_each(crate::models::pooling::normalize);
        u
    }

    fn missing(word: &str) -> Error {
        Error::Input(format!("'{word}' is not in the vocabulary"))
    }

    /// Cosine similarity of two words.
    pub fn similarity(&self, a: &str, b: &str) -> Result<f32> {
        let va = self.vector(a).ok_or_else(|| Self::missing(a))?;
        let vb = self.vector(b).ok_or_else(|| Self::missing(b))?;
        let (mut ua, mut ub) = (va.to_vec(), vb.to_vec());
        crate::models::pooling::normalize(&mut ua);
        crate::models::pooling::normalize(&mut ub);
        Ok(crate::util::dot(&ua, &ub))
    }

    /// The `k` words nearest (cosine) to the mean of the unit vectors of
    /// `positive` minus those of `negative` (gensim's `most_similar`), the
    /// query words themselves excluded.
    pub fn most_similar(
        &self,
        positive: &[&str],
        negative: &[&str],
        k: usize,
    ) -> Result<Vec<(String, f32)>> {
        if positive.is_empty() && negative.is_empty() {
            return Err(Error::Input("most_similar needs at least one word".into()));
        }
        let units = self.unit_rows();
        let dim = self.dim;
        let mut q = vec![0f32; dim];
        let mut exclude = Vec::new();
        for (words, sign) in [(positive, 1.0f32), (negative, -1.0)] {
            for w in words.iter() {
                let i = *self.index.get(*w).ok_or_else(|| Self::missing(w))?;
                exclude.push(i);
                for (a, x) in q.iter_mut().zip(&units[i * dim..(i + 1) * dim]) {
                    *a += sign * x;
                }
            }
        }
        crate::models::pooling::normalize(&mut q);
        let mut scored: Vec<(usize, f32)> = units
            .chunks(dim)
            .enumerate()
            .filter(|(i, _)| !exclude.contains(i))
            .map(|(i, v)| (i, crate::util::dot(&q, v)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        Ok(scored
            .into_iter()
            .map(|(i, s)| (self.words[i].clone(), s))
            .collect())
    }

    /// `a` is to `b` as `c` is to …: `most_similar([b, c], [a])`.
    pub fn analogy(&self, a: &str, b: &str, c: &str, k: usize) -> Result<Vec<(String, f32)>> {
        self.most_similar(&[b, c], &[a], k)
    }

    /// The word2vec text format: a `count dim` line, then `word v1 … vdim` per word.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} {}\n", self.words.len(), self.dim);
        for (w, v) in self.words.iter().zip(self.vectors.chunks(self.dim.max(1))) {
            out.push_str(w);
            for x in v {
                out.push(' ');
                out.push_str(&x.to_string());
            }
            out.push('\n');
        }
        out
    }

    /// Parses the word2vec text format (gensim's `save_word2vec_format(binary=False)`);
    /// `file` names it in errors. Counts are unknown there and set to 0.
    pub fn from_text(text: &str, file: &str) -> Result<Self> {
        let err = |line: usize, detail: String| Error::Format {
            format: format!("word vectors {file}"),
            detail: format!("line {line}: {detail}"),
        };
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| err(1, "empty file".into()))?;
        let mut h = header.split_whitespace().map(str::parse::<usize>);
        let (Some(Ok(n)), Some(Ok(dim)), None) = (h.next(), h.next(), h.next()) else {
            return Err(err(
                1,
                format!("expected '<count> <dim>', found {header:?}"),
            ));
        };
        if dim == 0 || dim > 1 << 16 {
            return Err(err(1, format!("dimension {dim} is out of range")));
        }
        let mut words = Vec::new();
        let mut vectors = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let word = parts.next().unwrap_or_default().to_string();
            let before = vectors.len();
            for p in parts {
                vectors.push(
                    p.parse::<f32>()
                        .map_err(|_| err(i + 2, format!("'{p}' is not a number")))?,
                );
            }
            if vectors.len() - before != dim {
                return Err(err(
                    i + 2,
                    format!(
                        "'{word}' has {} values, the header says {dim}",
                        vectors.len() - before
                    ),
                ));
            }
            words.push(word);
        }
        if words.len() != n {
            return Err(err(
                1,
                format!("the header says {n} words, the file holds {}", words.len()),
            ));
        }
        let counts = vec![0; words.len()];
        Self::new(words, counts, dim, vectors).map_err(|e| err(1, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgns_step_is_gradient_descent_on_the_loss() {
        // Tiny vocabulary: 4 output vectors of dim 3, one positive and two negatives.
        let dim = 3;
        let v = [0.3f32, -0.2, 0.5];
        let syn1: Vec<f32> = vec![
            0.1, 0.4, -0.3, -0.2, 0.2, 0.1, 0.5, -0.1, 0.3, 0.0, 0.3, -0.4,
        ];
        let targets = [(2usize, 1.0f32), (0, 0.0), (3, 0.0)];
        let loss = |v: &[f32], syn1: &[f32]| {
            let outs: Vec<(&[f32], f32)> = targets
                .iter()
                .map(|&(t, l)| (&syn1[t * dim..(t + 1) * dim], l))
                .collect();
            sgns_loss(v, &outs) as f64
        };
        let alpha = 1e-3f32;
        let mut s1 = syn1.clone();
        let mut neu1e = vec![0f32; dim];
        sgns_step(&v, &mut s1, &targets, alpha, &mut neu1e);
        // Input gradient: the step on v is neu1e = −α ∂L/∂v.
        let h = 1e-3f32;
        for j in 0..dim {
            let (mut p, mut m) = (v, v);
            p[j] += h;
            m[j] -= h;
            let numeric = (loss(&p, &syn1) - loss(&m, &syn1)) / (2.0 * h as f64);
            let analytic = -neu1e[j] as f64 / alpha as f64;
            assert!(
                (numeric - analytic).abs() < 1e-3,
                "v[{j}]: {numeric} vs {analytic}"
            );
        }
        // Output gradients: each output row moved by −α ∂L/∂u. (Rows are
        // updated one after another, as word2vec.c does; with distinct rows
        // that is exactly the gradient at the start.)
        for &(t, _) in &targets {
            for j in 0..dim {
                let idx = t * dim + j;
                let (mut p, mut m) = (syn1.clone(), syn1.clone());
                p[idx] += h;
                m[idx] -= h;
                let numeric = (loss(&v, &p) - loss(&v, &m)) / (2.0 * h as f64);
                let analytic = -(s1[idx] - syn1[idx]) as f64 / alpha as f64;
                assert!(
                    (numeric - analytic).abs() < 1e-3,
                    "u{t}[{j}]: {numeric} vs {analytic}"
                );
            }
        }
        // A row never drawn is untouched.
        assert_eq!(s1[dim..2 * dim], syn1[dim..2 * dim]);
    }

    #[test]
    fn cbow_step_gradient_matches_for_the_mean_input() {
        // CBOW's input is the mean of the context vectors; dL/dcontext_i = (1/n) dL/dmean,
        // and word2vec.c adds the undivided step to every context row.
        let dim = 2;
        let ctx = [[0.2f32, -0.1], [0.4, 0.3]];
        let mean: Vec<f32> = (0..dim).map(|j| (ctx[0][j] + ctx[1][j]) / 2.0).collect();
        let mut syn1 = vec![0.3f32, -0.2, 0.1, 0.4];
        let targets = [(0usize, 1.0f32), (1, 0.0)];
        let orig = syn1.clone();
        let mut neu1e = vec![0f32; dim];
        let alpha = 1e-3;
        sgns_step(&mean, &mut syn1, &targets, alpha, &mut neu1e);
        let loss = |m: &[f32]| sgns_loss(m, &[(&orig[0..2], 1.0), (&orig[2..4], 0.0)]) as f64;
        for j in 0..dim {
            let h = 1e-3f32;
            let (mut p, mut q) = (mean.clone(), mean.clone());
            p[j] += h;
            q[j] -= h;
            let numeric = (loss(&p) - loss(&q)) / (2.0 * h as f64);
            assert!((numeric + neu1e[j] as f64 / alpha as f64).abs() < 1e-3);
        }
    }

    fn toy_groups() -> [[&'static str; 10]; 2] {
        [
            [
                "cat", "dog", "mouse", "horse", "cow", "sheep", "goat", "pig", "duck", "hen",
            ],
            [
                "car", "bus", "train", "truck", "van", "bike", "boat", "plane", "tram", "taxi",
            ],
        ]
    }

    fn toy_corpus() -> Vec<Vec<String>> {
        // Two topics that never share a sentence: animals and vehicles.
        let mut s = Vec::new();
        let [animals, vehicles] = toy_groups();
        let mut r = Lcg(7);
        for i in 0..3000 {
            let group = if i % 2 == 0 { &animals } else { &vehicles };
            let sent: Vec<String> = (0..8)
                .map(|_| group[(r.next() >> 33) as usize % 10].to_string())
                .collect();
            s.push(sent);
        }
        s
    }

    #[test]
    fn both_architectures_separate_two_topics() {
        for arch in [Architecture::SkipGram, Architecture::Cbow] {
            let cfg = Word2VecConfig {
                architecture: arch,
                dim: 16,
                window: 3,
                min_count: 1,
                sample: 0.0,
                epochs: 3,
                threads: 1,
                ..Word2VecConfig::default()
            };
            let (wv, stats) = WordVectors::train(&toy_corpus(), &cfg).unwrap();
            assert_eq!(stats.vocab, 20);
            assert_eq!(stats.corpus_words, 24_000);
            assert_eq!(
                stats.trained_words, 72_000,
                "no down-sampling: every word, every epoch"
            );
            let near = wv.most_similar(&["cat"], &[], 3).unwrap();
            for (w, _) in &near {
                assert!(toy_groups()[0].contains(&w.as_str()), "{arch:?}: {near:?}");
            }
            // Mean cosine within a topic against across topics.
            let groups = toy_groups();
            let (mut within, mut across) = (Vec::new(), Vec::new());
            for (gi, g) in groups.iter().enumerate() {
                for a in g {
                    for b in g.iter().filter(|b| *b != a) {
                        within.push(wv.similarity(a, b).unwrap());
                    }
                    for b in &groups[1 - gi] {
                        across.push(wv.similarity(a, b).unwrap());
                    }
                }
            }
            let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
            let (w, x) = (mean(&within), mean(&across));
            eprintln!("{arch:?}: within {w}, across {x}");
            assert!(w > x + 0.2, "{arch:?}: within {w}, across {x}");
            // Reproducible with one thread.
            let (again, _) = WordVectors::train(&toy_corpus(), &cfg).unwrap();
            assert_eq!(again.vectors, wv.vectors);
        }
    }

    #[test]
    fn a_one_word_vocabulary_trains_without_hanging() {
        // Every negative draw hits the centre word: all skipped.
        let corpus = vec![vec!["a".to_string(); 4]; 3];
        let cfg = Word2VecConfig {
            dim: 4,
            min_count: 1,
            threads: 1,
            ..Word2VecConfig::default()
        };
        let (wv, stats) = WordVectors::train(&corpus, &cfg).unwrap();
        assert_eq!((stats.vocab, wv.words.len()), (1, 1));
        let e = WordVectors::train(
            &corpus,
            &Word2VecConfig {
                min_count: 13,
                ..cfg
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no word occurs at least min_count = 13 times"),
            "{e}"
        );
    }

    #[test]
    fn subsampling_keeps_rare_words_and_drops_frequent_ones() {
        let mut corpus = toy_corpus();
        corpus.push(vec!["rare".to_string(); 5]);
        let cfg = Word2VecConfig {
            dim: 8,
            min_count: 1,
            sample: 1e-3,
            epochs: 1,
            threads: 1,
            ..Word2VecConfig::default()
        };
        let (_, stats) = WordVectors::train(&corpus, &cfg).unwrap();
        // Expected kept words: Σ count·p(count), p = (√(c/(s·N)) + 1)·s·N/c capped at 1.
        let mut counts: HashMap<&str, f64> = HashMap::new();
        corpus
            .iter()
            .flatten()
            .for_each(|w| *counts.entry(w.as_str()).or_default() += 1.0);
        let t = 1e-3 * 24_005.0;
        let want: f64 = counts
            .values()
            .map(|&c| c * (((c / t).sqrt() + 1.0) * t / c).min(1.0))
            .sum();
        // "rare" (5 of 24,005) is always kept; a toy word (~1,200) about 16% of the time.
        assert!(((5.0 / t).sqrt() + 1.0) * t / 5.0 > 1.0);
        let got = stats.trained_words as f64;
        assert!((got - want).abs() < 0.05 * want, "{got} vs {want}");
        assert!(got < 0.2 * 24_005.0);
    }

    #[test]
    fn text_format_round_trips_and_bad_files_are_named() {
        let wv = WordVectors::new(
            vec!["a".into(), "b".into()],
            vec![3, 1],
            2,
            vec![1.0, 0.5, -0.25, 2.0],
        )
        .unwrap();
        let back = WordVectors::from_text(&wv.to_text(), "v.txt").unwrap();
        assert_eq!(back.vectors, wv.vectors);
        assert_eq!(back.words, wv.words);
        let e = WordVectors::from_text("2 2\na 1 2\nb 1\n", "v.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("word vectors v.txt: line 3: 'b' has 1 values, the header says 2"),
            "{e}"
        );
        let e = WordVectors::from_text("x y\n", "v.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = WordVectors::from_text("3 2\na 1 2\n", "v.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the header says 3 words, the file holds 1"),
            "{e}"
        );
        assert!(
            wv.most_similar(&["zzz"], &[], 1)
                .unwrap_err()
                .to_string()
                .contains("'zzz' is not in the vocabulary")
        );
    }

    #[test]
    fn analogy_on_hand_made_vectors() {
        // king − man + woman = queen on exact 2-D vectors.
        let words = ["man", "woman", "king", "queen", "apple"]
            .map(String::from)
            .to_vec();
        let vectors = vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.3, 1.3, -1.0, -0.2];
        let wv = WordVectors::new(words, vec![1; 5], 2, vectors).unwrap();
        let best = wv.analogy("man", "king", "woman", 1).unwrap();
        assert_eq!(best[0].0, "queen");
    }
}
