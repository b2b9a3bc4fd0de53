//! Inverted-file (IVF) indexes over unit vectors, inner product (= cosine):
//! a k-means coarse quantizer splits the space into `nlist` cells; a search
//! scores the query against the centroids and scans only the `nprobe` closest
//! cells. The cells hold either the vectors themselves (IVF-Flat) or product-
//! quantised residuals (IVF-PQ: `m` sub-quantizers of 256 centroids each, one
//! byte per sub-vector).
//!
//! Follows FAISS (`IndexIVFFlat`, `IndexIVFPQ` with `by_residual`, inner-
//! product metric):
//! - the coarse k-means is spherical (centroids renormalised after each
//!   update), 10 iterations, trained on at most 256 points per centroid drawn
//!   at random; empty cells are refilled by splitting a cell picked with
//!   probability proportional to its size, the two copies nudged apart by
//!   ±1/1024 (FAISS's `split_clusters`);
//! - the PQ is trained on the residuals `x − c(x)` with plain (L2) k-means,
//!   25 iterations, at most 256 × 256 points;
//! - an IVF-PQ score is `q·c + Σⱼ q⁽ʲ⁾·pqⱼ[codeⱼ]`: the per-sub-space tables
//!   are computed once per query (for inner product they do not depend on the
//!   cell).
//!
//! Training and adding are separate: an index is trained once, then rows are
//! added incrementally (each goes to its nearest cell). Adding to an
//! untrained index trains it on the rows being added, which must then number
//! at least `nlist` (and 256 for PQ).

// Cell, code and row indices index the vectors this module built or a load
// validated (`from_parts`: every cell id < nlist, codes and rows sized).
#![allow(clippy::indexing_slicing)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::dot;

/// Centroids per PQ sub-quantizer (8-bit codes).
pub const PQ_KSUB: usize = 256;
/// Training points per centroid kept at most (FAISS's `max_points_per_centroid`).
pub const MAX_POINTS_PER_CENTROID: usize = 256;

/// The most cells an index may have (FAISS's largest common setting, 2^20).
pub const MAX_NLIST: usize = 1 << 20;

/// IVF parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvfParams {
    /// Number of cells (k-means centroids).
    pub nlist: usize,
    /// Cells scanned per query (higher: better recall, slower search).
    pub nprobe: usize,
    /// PQ sub-quantizers; 0 stores the vectors themselves (IVF-Flat). The
    /// dimension must be a multiple of `m`.
    #[serde(default)]
    pub pq_m: usize,
    /// k-means iterations of the coarse quantizer.
    pub niter: usize,
    /// Seed of the training sample and the initial centroids.
    pub seed: u64,
}

impl Default for IvfParams {
    /// 100 cells, 8 probed, IVF-Flat, FAISS's 10 coarse iterations.
    fn default() -> Self {
        Self {
            nlist: 100,
            nprobe: 8,
            pq_m: 0,
            niter: 10,
            seed: 1234,
        }
    }
}

/// `out[i·m + j] = a_i · b_j` for `a` (`n × d`) and `b` (`m × d`), row-major:
/// one matrix product (candle's CPU GEMM, multi-threaded).
pub fn dot_matrix(a: &[f32], b: &[f32], d: usize) -> Result<Vec<f32>> {
    use candle_core::{Device, Tensor};
    if d == 0 || !a.len().is_multiple_of(d) || !b.len().is_multiple_of(d) {
        return Err(Error::Shape {
            op: "dot_matrix",
            detail: format!("{} and {} values are not rows of {d}", a.len(), b.len()),
        });
    }
    let (n, m) = (a.len() / d, b.len() / d);
    if n == 0 || m == 0 {
        return Ok(Vec::new());
    }
    let ta = Tensor::from_slice(a, (n, d), &Device::Cpu)?;
    let tb = Tensor::from_slice(b, (m, d), &Device::Cpu)?;
    Ok(ta.matmul(&tb.t()?)?.flatten_all()?.to_vec1::<f32>()?)
}

/// A small deterministic generator (SplitMix64) for sampling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// The first `k` of a random permutation of `0..n`.
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(k.min(n));
        idx
    }
}

/// How k-means measures closeness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KMeansMetric {
    /// Largest inner product; centroids renormalised to unit length (spherical k-means).
    Spherical,
    /// Smallest squared Euclidean distance.
    L2,
}

/// Nearest centroid of every row: `(index, score)` where score is the inner
/// product (spherical) or the squared distance (L2).
pub fn assign(
    data: &[f32],
    centroids: &[f32],
    d: usize,
    metric: KMeansMetric,
) -> Result<Vec<(u32, f32)>> {
    let k = centroids.len() / d.max(1);
    let norms: Vec<f32> = centroids.chunks(d).map(|c| dot(c, c)).collect();
    let mut out = Vec::with_capacity(data.len() / d.max(1));
    // Blocks keep the score matrix small.
    for block in data.chunks(d * 4096) {
        let scores = dot_matrix(block, centroids, d)?;
        for (row, s) in block.chunks(d).zip(scores.chunks(k)) {
            let best = match metric {
                KMeansMetric::Spherical => {
                    s.iter()
                        .enumerate()
                        .fold((0usize, f32::NEG_INFINITY), |b, (j, &v)| {
                            if v > b.1 { (j, v) } else { b }
                        })
                }
                KMeansMetric::L2 => {
                    // ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²
                    let xx = dot(row, row);
                    s.iter().zip(&norms).enumerate().fold(
                        (0usize, f32::INFINITY),
                        |b, (j, (&v, &cc))| {
                            let dist = xx - 2.0 * v + cc;
                            if dist < b.1 { (j, dist) } else { b }
                        },
                    )
                }
            };
            out.push((best.0 as u32, best.1));
        }
    }
    Ok(out)
}

/// k-means on `data` (`n × d`, row-major): `k` centroids after `niter`
/// iterations, initialised with `k` distinct rows drawn with `seed`. Empty
/// clusters are refilled by splitting a large one (FAISS's rule). Needs
/// `n ≥ k`.
pub fn kmeans(
    data: &[f32],
    d: usize,
    k: usize,
    niter: usize,
    metric: KMeansMetric,
    seed: u64,
) -> Result<Vec<f32>> {
    if d == 0 || !data.len().is_multiple_of(d) {
        return Err(Error::Shape {
            op: "k-means",
            detail: format!("{} values are not rows of dimension {d}", data.len()),
        });
    }
    let n = data.len() / d;
    if k == 0 || n < k {
        return Err(Error::Input(format!(
            "k-means needs at least as many training vectors as centroids: {n} vectors for {k} centroids"
        )));
    }
    let mut rng = Rng(seed);
    let mut centroids: Vec<f32> = rng
        .sample(n, k)
        .into_iter()
        .flat_map(|i| data[i * d..(i + 1) * d].iter().copied())
        .collect();
    for _ in 0..niter {
        let a = assign(data, &centroids, d, metric)?;
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for (row, &(c, _)) in data.chunks(d).zip(&a) {
            let c = c as usize;
            counts[c] += 1;
            for (s, &x) in sums[c * d..(c + 1) * d].iter_mut().zip(row) {
                *s += x as f64;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                let inv = 1.0 / counts[c] as f64;
                for (dst, &s) in centroids[c * d..(c + 1) * d]
                    .iter_mut()
                    .zip(&sums[c * d..(c + 1) * d])
                {
                    *dst = (s * inv) as f32;
                }
            }
        }
        split_empty(&mut centroids, &mut counts, d, n, &mut rng);
        if metric == KMeansMetric::Spherical {
            centroids
                .chunks_mut(d)
                .for_each(crate::models::pooling::normalize);
        }
    }
    Ok(centroids)
}

/// FAISS's `split_clusters`: each empty cluster takes a copy of a cluster
/// chosen with probability ∝ (size − 1), and the two are moved ±1/1024 apart
/// (alternating signs per dimension), sharing its points.
fn split_empty(centroids: &mut [f32], counts: &mut [usize], d: usize, n: usize, rng: &mut Rng) {
    const EPS: f32 = 1.0 / 1024.0;
    let k = counts.len();
    for ci in 0..k {
        if counts[ci] != 0 {
            continue;
        }
        if n <= k {
            return;
        }
        let cj = loop {
            let p = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * (n - k) as f64;
            let mut acc = 0f64;
            let mut found = None;
            for (j, &c) in counts.iter().enumerate() {
                acc += c.saturating_sub(1) as f64;
                if acc > p {
                    found = Some(j);
                    break;
                }
            }
            if let Some(j) = found {
                break j;
            }
            if acc == 0.0 {
                return;
            }
        };
        let src: Vec<f32> = centroids[cj * d..(cj + 1) * d].to_vec();
        for j in 0..d {
            let (a, b) = if j % 2 == 0 {
                (1.0 + EPS, 1.0 - EPS)
            } else {
                (1.0 - EPS, 1.0 + EPS)
            };
            centroids[ci * d + j] = src[j] * a;
            centroids[cj * d + j] = src[j] * b;
        }
        counts[ci] = counts[cj] / 2;
        counts[cj] -= counts[ci];
    }
}

/// Product quantizer: `m` codebooks of [`PQ_KSUB`] centroids over `d/m`-wide sub-vectors.
#[derive(Debug, Clone)]
pub struct ProductQuantizer {
    /// Sub-quantizers.
    pub m: usize,
    /// Sub-vector width (`dim / m`).
    pub dsub: usize,
    /// `m × 256 × dsub` centroids, row-major.
    pub codebooks: Vec<f32>,
    /// The codebooks coordinate-major, built on first search.
    transposed: std::sync::OnceLock<Vec<f32>>,
    /// Squared norms of the centroids, built on first encode.
    norms: std::sync::OnceLock<Vec<f32>>,
}

impl ProductQuantizer {
    /// Trains on `data` (`n × m·dsub`) with L2 k-means per sub-space.
    pub fn train(data: &[f32], dim: usize, m: usize, seed: u64) -> Result<Self> {
        if m == 0 || !dim.is_multiple_of(m) {
            return Err(Error::Input(format!(
                "PQ needs the dimension to be a multiple of the sub-quantizers: {dim} is not divisible by m = {m}"
            )));
        }
        let n = data.len() / dim.max(1);
        if n < PQ_KSUB {
            return Err(Error::Input(format!(
                "PQ training needs at least {PQ_KSUB} vectors (one per code), got {n}"
            )));
        }
        let dsub = dim / m;
        let keep = Rng(seed ^ 0x5051).sample(n, n.min(PQ_KSUB * MAX_POINTS_PER_CENTROID));
        let books: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|j| {
                let sub: Vec<f32> = keep
                    .iter()
                    .flat_map(|&i| {
                        data[i * dim + j * dsub..i * dim + (j + 1) * dsub]
                            .iter()
                            .copied()
                    })
                    .collect();
                kmeans(
                    &sub,
                    dsub,
                    PQ_KSUB,
                    25,
                    KMeansMetric::L2,
                    seed.wrapping_add(j as u64),
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self::from_codebooks(m, dsub, books.concat()))
    }

    /// A quantizer from trained codebooks (`m × 256 × dsub`).
    pub fn from_codebooks(m: usize, dsub: usize, codebooks: Vec<f32>) -> Self {
        Self {
            m,
            dsub,
            codebooks,
            transposed: std::sync::OnceLock::new(),
            norms: std::sync::OnceLock::new(),
        }
    }

    /// The `m` one-byte codes of `x`: per sub-space the centroid with the
    /// smallest `‖c‖² − 2 x·c` (= the nearest, `‖x‖²` being common).
    pub fn encode(&self, x: &[f32]) -> Vec<u8> {
        let ip = self.ip_table(x);
        let norms = self.norms.get_or_init(|| {
            self.codebooks
                .chunks_exact(self.dsub)
                .map(|c| dot(c, c))
                .collect()
        });
        ip.chunks_exact(PQ_KSUB)
            .zip(norms.chunks_exact(PQ_KSUB))
            .map(|(ip, nn)| {
                let mut best = (0usize, f32::INFINITY);
                for (c, (&v, &n)) in ip.iter().zip(nn).enumerate() {
                    let dist = n - 2.0 * v;
                    if dist < best.1 {
                        best = (c, dist);
                    }
                }
                best.0 as u8
            })
            .collect()
    }

    /// The vector `codes` stand for.
    pub fn decode(&self, codes: &[u8]) -> Vec<f32> {
        codes
            .iter()
            .enumerate()
            .flat_map(|(j, &c)| {
                let at = (j * PQ_KSUB + c as usize) * self.dsub;
                self.codebooks[at..at + self.dsub].iter().copied()
            })
            .collect()
    }

    /// Inner products of each query sub-vector with each centroid: `m × 256`.
    /// Accumulated over the sub-vector's coordinates across all 256
    /// centroids at once (a vectorisable axpy per coordinate).
    fn ip_table(&self, q: &[f32]) -> Vec<f32> {
        let mut t = vec![0f32; self.m * PQ_KSUB];
        let book_t = self.transposed();
        for (j, (tj, bj)) in t
            .chunks_exact_mut(PQ_KSUB)
            .zip(book_t.chunks_exact(PQ_KSUB * self.dsub))
            .enumerate()
        {
            for (&qv, col) in q[j * self.dsub..(j + 1) * self.dsub]
                .iter()
                .zip(bj.chunks_exact(PQ_KSUB))
            {
                for (acc, &c) in tj.iter_mut().zip(col) {
                    *acc += qv * c;
                }
            }
        }
        t
    }

    /// The codebooks laid out `m × dsub × 256` (coordinate-major), cached.
    fn transposed(&self) -> &[f32] {
        self.transposed.get_or_init(|| {
            let mut out = vec![0f32; self.codebooks.len()];
            for j in 0..self.m {
                for c in 0..PQ_KSUB {
                    for t in 0..self.dsub {
                        out[(j * self.dsub + t) * PQ_KSUB + c] =
                            self.codebooks[(j * PQ_KSUB + c) * self.dsub + t];
                    }
                }
            }
            out
        })
    }
}

/// The score of one PQ code: `Σⱼ table[j][code[j]]`.
#[inline]
fn pq_score(table: &[f32], code: &[u8]) -> f32 {
    let mut acc = [0f32; 4];
    let mut chunks = code.chunks_exact(4).zip(table.chunks_exact(4 * PQ_KSUB));
    for (c, t) in chunks.by_ref() {
        for (l, (a, &b)) in acc.iter_mut().zip(c).enumerate() {
            *a += t[l * PQ_KSUB + b as usize];
        }
    }
    let done = code.len() / 4 * 4;
    let tail: f32 = code[done..]
        .iter()
        .enumerate()
        .map(|(l, &b)| table[(done + l) * PQ_KSUB + b as usize])
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// One candidate in a top-k heap (min-heap on score: the root is the worst kept).
#[derive(Clone, Copy)]
struct Cand {
    score: f32,
    id: u32,
}
impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    // Reversed so BinaryHeap's max is the lowest score (ties: the larger id is worse).
    fn cmp(&self, o: &Self) -> Ordering {
        o.score.total_cmp(&self.score).then(self.id.cmp(&o.id))
    }
}

struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }
    #[inline]
    fn push(&mut self, id: u32, score: f32) {
        if self.heap.len() < self.k {
            self.heap.push(Cand { score, id });
        } else if let Some(worst) = self.heap.peek()
            && (score > worst.score || (score == worst.score && id < worst.id))
        {
            self.heap.pop();
            self.heap.push(Cand { score, id });
        }
    }
    fn into_sorted(self) -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = self.heap.into_iter().map(|c| (c.id, c.score)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// The `k` best `(id, score)` of each row of a score matrix (`rows × cols`), best first.
pub fn top_k_rows(scores: &[f32], cols: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
    scores
        .chunks(cols.max(1))
        .map(|row| {
            let mut t = TopK::new(k);
            row.iter()
                .enumerate()
                .for_each(|(i, &s)| t.push(i as u32, s));
            t.into_sorted()
        })
        .collect()
}

/// One cell's rows: their ids and their stored vectors or codes, contiguous.
#[derive(Debug, Clone, Default)]
struct Cell {
    ids: Vec<u32>,
    /// IVF-Flat: `ids.len() × dim` floats.
    vectors: Vec<f32>,
    /// IVF-PQ: `ids.len() × m` codes.
    codes: Vec<u8>,
}

/// The parts of an IVF index as stored on disk (see [`super::dense`]).
#[derive(Debug, Clone, Default)]
pub struct IvfParts {
    /// `nlist × dim` unit centroids (empty while untrained).
    pub centroids: Vec<f32>,
    /// PQ codebooks, `m × 256 × dim/m` (empty for IVF-Flat or untrained).
    pub codebooks: Vec<f32>,
    /// The cell of each row, in id order.
    pub cells: Vec<u32>,
    /// IVF-Flat: every row's unit vector in id order; IVF-PQ: empty.
    pub vectors: Vec<f32>,
    /// IVF-PQ: every row's `m` codes in id order; IVF-Flat: empty.
    pub codes: Vec<u8>,
}

/// An IVF-Flat or IVF-PQ index over unit vectors; ids are insertion order.
#[derive(Debug, Clone)]
pub struct Ivf {
    dim: usize,
    params: IvfParams,
    centroids: Vec<f32>,
    pq: Option<ProductQuantizer>,
    cells: Vec<Cell>,
    /// (cell, position in cell) of every id.
    place: Vec<(u32, u32)>,
}

impl Ivf {
    /// An empty, untrained index. Errors on parameters that cannot work
    /// (`nlist` or `nprobe` 0, a PQ `m` that does not divide `dim`).
    pub fn new(dim: usize, params: IvfParams) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Input("IVF index dimension must be positive".into()));
        }
        if params.nlist > MAX_NLIST {
            return Err(Error::Input(format!(
                "IVF nlist {} is above the supported {MAX_NLIST}",
                params.nlist
            )));
        }
        if params.nlist == 0 || params.nprobe == 0 {
            return Err(Error::Input(format!(
                "IVF needs nlist ≥ 1 and nprobe ≥ 1 (got nlist {}, nprobe {})",
                params.nlist, params.nprobe
            )));
        }
        if params.pq_m > 0 && !dim.is_multiple_of(params.pq_m) {
            return Err(Error::Input(format!(
                "IVF-PQ needs the dimension to be a multiple of m: {dim} is not divisible by {}",
                params.pq_m
            )));
        }
        Ok(Self {
            dim,
            params,
            centroids: Vec::new(),
            pq: None,
            cells: vec![Cell::default(); params.nlist],
            place: Vec::new(),
        })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Parameters.
    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// Sets the number of cells a search scans (clamped to 1..=nlist).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.params.nprobe = nprobe.clamp(1, self.params.nlist);
    }

    /// Whether the quantizers are trained.
    pub fn is_trained(&self) -> bool {
        !self.centroids.is_empty()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.place.len()
    }

    /// Whether no rows are stored.
    pub fn is_empty(&self) -> bool {
        self.place.is_empty()
    }

    /// Rows per cell (for balance diagnostics).
    pub fn cell_sizes(&self) -> Vec<usize> {
        self.cells.iter().map(|c| c.ids.len()).collect()
    }

    /// The coarse centroids (`nlist × dim`; empty while untrained).
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Trains the coarse quantizer (and the PQ on residuals) on unit rows
    /// `data`. An index trains once; training again is an error.
    pub fn train(&mut self, data: &[f32]) -> Result<()> {
        if self.is_trained() {
            return Err(Error::Input("this IVF index is already trained".into()));
        }
        let d = self.dim;
        let n = data.len() / d;
        let nlist = self.params.nlist;
        if n < nlist {
            return Err(Error::Input(format!(
                "IVF training needs at least nlist = {nlist} vectors, got {n}; lower --nlist or add more vectors at once"
            )));
        }
        if self.params.pq_m > 0 && n < PQ_KSUB {
            return Err(Error::Input(format!(
                "IVF-PQ training needs at least {PQ_KSUB} vectors, got {n}"
            )));
        }
        let mut rng = Rng(self.params.seed);
        let max = nlist * MAX_POINTS_PER_CENTROID;
        let sample: Vec<f32> = if n > max {
            rng.sample(n, max)
                .into_iter()
                .flat_map(|i| data[i * d..(i + 1) * d].iter().copied())
                .collect()
        } else {
            data.to_vec()
        };
        let centroids = kmeans(
            &sample,
            d,
            nlist,
            self.params.niter,
            KMeansMetric::Spherical,
            self.params.seed,
        )?;
        if self.params.pq_m > 0 {
            let a = assign(data, &centroids, d, KMeansMetric::Spherical)?;
            let residuals: Vec<f32> = data
                .chunks(d)
                .zip(&a)
                .flat_map(|(x, &(c, _))| {
                    let c = &centroids[c as usize * d..(c as usize + 1) * d];
                    x.iter().zip(c).map(|(a, b)| a - b).collect::<Vec<_>>()
                })
                .collect();
            self.pq = Some(ProductQuantizer::train(
                &residuals,
                d,
                self.params.pq_m,
                self.params.seed,
            )?);
        }
        self.centroids = centroids;
        Ok(())
    }

    /// Adds unit rows (`n × dim`), each to its nearest cell; trains first on
    /// these rows if untrained.
    pub fn add(&mut self, rows: &[f32]) -> Result<()> {
        if !self.is_trained() {
            self.train(rows)?;
        }
        let d = self.dim;
        let a = assign(rows, &self.centroids, d, KMeansMetric::Spherical)?;
        let codes: Vec<Option<Vec<u8>>> = match &self.pq {
            Some(pq) => rows
                .par_chunks(d)
                .zip(a.par_iter())
                .map(|(x, &(c, _))| {
                    let cent = &self.centroids[c as usize * d..(c as usize + 1) * d];
                    let r: Vec<f32> = x.iter().zip(cent).map(|(a, b)| a - b).collect();
                    Some(pq.encode(&r))
                })
                .collect(),
            None => vec![None; a.len()],
        };
        for ((x, &(c, _)), code) in rows.chunks(d).zip(&a).zip(codes) {
            let id = self.place.len() as u32;
            let cell = &mut self.cells[c as usize];
            self.place.push((c, cell.ids.len() as u32));
            cell.ids.push(id);
            match code {
                Some(code) => cell.codes.extend_from_slice(&code),
                None => cell.vectors.extend_from_slice(x),
            }
        }
        Ok(())
    }

    /// Row `id`'s stored vector: exact for IVF-Flat, the PQ reconstruction
    /// (centroid + decoded residual) for IVF-PQ.
    pub fn vector(&self, id: u32) -> Option<Vec<f32>> {
        let &(c, p) = self.place.get(id as usize)?;
        let (c, p, d) = (c as usize, p as usize, self.dim);
        let cell = &self.cells[c];
        match &self.pq {
            None => cell.vectors.get(p * d..(p + 1) * d).map(<[f32]>::to_vec),
            Some(pq) => {
                let r = pq.decode(cell.codes.get(p * pq.m..(p + 1) * pq.m)?);
                Some(
                    self.centroids[c * d..(c + 1) * d]
                        .iter()
                        .zip(r)
                        .map(|(a, b)| a + b)
                        .collect(),
                )
            }
        }
    }

    /// The `k` best `(id, score)` for unit query `q`, scanning `nprobe` cells.
    pub fn search(&self, q: &[f32], k: usize, nprobe: usize) -> Vec<(u32, f32)> {
        if !self.is_trained() || k == 0 || self.is_empty() {
            return Vec::new();
        }
        crate::util::with_avx2(|| {
            let cscores: Vec<f32> = self.centroids.chunks(self.dim).map(|c| dot(q, c)).collect();
            self.search_scored(q, &cscores, k, nprobe)
        })
    }

    /// [`search`](Self::search) for a batch of unit queries (`n × dim`): the
    /// coarse scores of all of them in one matrix product, then the queries
    /// in parallel.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let d = self.dim;
        let n = queries.len() / d;
        if !self.is_trained() || k == 0 || self.is_empty() {
            return Ok(vec![Vec::new(); n]);
        }
        let nlist = self.params.nlist;
        let coarse = dot_matrix(queries, &self.centroids, d)?;
        Ok(queries
            .par_chunks(d)
            .zip(coarse.par_chunks(nlist))
            .map(|(q, cs)| crate::util::with_avx2(|| self.search_scored(q, cs, k, nprobe)))
            .collect())
    }

    /// The scan of a search whose coarse scores (`q·centroid`, one per cell)
    /// are known. Inlined into [`crate::util::with_avx2`] by its callers.
    #[inline(always)]
    fn search_scored(
        &self,
        q: &[f32],
        cscores: &[f32],
        k: usize,
        nprobe: usize,
    ) -> Vec<(u32, f32)> {
        let d = self.dim;
        let nprobe = nprobe.clamp(1, self.params.nlist);
        let mut probes = TopK::new(nprobe);
        cscores
            .iter()
            .enumerate()
            .for_each(|(i, &s)| probes.push(i as u32, s));
        let mut top = TopK::new(k);
        match &self.pq {
            None => {
                let mut scores = Vec::new();
                for (c, _) in probes.into_sorted() {
                    let cell = &self.cells[c as usize];
                    scores.clear();
                    crate::util::dots_into(q, &cell.vectors, d, &mut scores);
                    for (&id, &s) in cell.ids.iter().zip(&scores) {
                        top.push(id, s);
                    }
                }
            }
            Some(pq) => {
                let table = pq.ip_table(q);
                let m = pq.m;
                for (c, base) in probes.into_sorted() {
                    let cell = &self.cells[c as usize];
                    for (&id, code) in cell.ids.iter().zip(cell.codes.chunks_exact(m)) {
                        top.push(id, base + pq_score(&table, code));
                    }
                }
            }
        }
        top.into_sorted()
    }

    /// The stored parts, in id order (for the file format).
    pub fn parts(&self) -> IvfParts {
        let n = self.len();
        let mut parts = IvfParts {
            centroids: self.centroids.clone(),
            codebooks: self
                .pq
                .as_ref()
                .map(|p| p.codebooks.clone())
                .unwrap_or_default(),
            cells: Vec::with_capacity(n),
            ..IvfParts::default()
        };
        for &(c, p) in &self.place {
            parts.cells.push(c);
            let cell = &self.cells[c as usize];
            let p = p as usize;
            match &self.pq {
                None => parts
                    .vectors
                    .extend_from_slice(&cell.vectors[p * self.dim..(p + 1) * self.dim]),
                Some(pq) => parts
                    .codes
                    .extend_from_slice(&cell.codes[p * pq.m..(p + 1) * pq.m]),
            }
        }
        parts
    }

    /// Rebuilds an index from stored parts, checking every size and cell id.
    pub fn from_parts(
        dim: usize,
        params: IvfParams,
        count: usize,
        parts: IvfParts,
    ) -> std::result::Result<Self, String> {
        let mut ivf = Ivf::new(dim, params).map_err(|e| e.to_string())?;
        let trained = !parts.centroids.is_empty();
        if !trained {
            if count > 0 {
                return Err(format!("{count} rows but no centroids"));
            }
            return Ok(ivf);
        }
        if parts.centroids.len() != params.nlist * dim {
            return Err(format!(
                "{} centroid values, expected nlist {} × dim {dim}",
                parts.centroids.len(),
                params.nlist
            ));
        }
        if parts.centroids.iter().any(|v| !v.is_finite()) {
            return Err("a centroid holds a non-finite value".into());
        }
        if params.pq_m > 0 {
            let want = params.pq_m * PQ_KSUB * (dim / params.pq_m);
            if parts.codebooks.len() != want {
                return Err(format!(
                    "{} PQ codebook values, expected {want}",
                    parts.codebooks.len()
                ));
            }
            ivf.pq = Some(ProductQuantizer::from_codebooks(
                params.pq_m,
                dim / params.pq_m,
                parts.codebooks,
            ));
            if parts.codes.len() != count * params.pq_m || !parts.vectors.is_empty() {
                return Err(format!(
                    "{} PQ codes for {count} rows of m = {}",
                    parts.codes.len(),
                    params.pq_m
                ));
            }
        } else if parts.vectors.len() != count * dim || !parts.codes.is_empty() {
            return Err(format!(
                "{} vector values for {count} rows of {dim}",
                parts.vectors.len()
            ));
        }
        if parts.cells.len() != count {
            return Err(format!("{} cell ids for {count} rows", parts.cells.len()));
        }
        ivf.centroids = parts.centroids;
        for (i, &c) in parts.cells.iter().enumerate() {
            if c as usize >= params.nlist {
                return Err(format!(
                    "row {i} is in cell {c}, but there are {} cells",
                    params.nlist
                ));
            }
            let cell = &mut ivf.cells[c as usize];
            ivf.place.push((c, cell.ids.len() as u32));
            cell.ids.push(i as u32);
            match &ivf.pq {
                None => cell
                    .vectors
                    .extend_from_slice(&parts.vectors[i * dim..(i + 1) * dim]),
                Some(pq) => cell
                    .codes
                    .extend_from_slice(&parts.codes[i * pq.m..(i + 1) * pq.m]),
            }
        }
        Ok(ivf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_hand_computed_centroids() {
        // Two clusters on a line: {0, 1, 2} and {10, 11, 12} → 1 and 11.
        let data = [0.0f32, 1.0, 2.0, 10.0, 11.0, 12.0];
        let c = kmeans(&data, 1, 2, 10, KMeansMetric::L2, 7).unwrap();
        let mut c = c.clone();
        c.sort_by(f32::total_cmp);
        assert_eq!(c, vec![1.0, 11.0]);
        // 2-D: four points around (0,0), two around (5,5) → their means.
        let data = [
            0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 5.0, 5.0, 6.0, 6.0,
        ];
        let mut c: Vec<(f32, f32)> = kmeans(&data, 2, 2, 10, KMeansMetric::L2, 3)
            .unwrap()
            .chunks(2)
            .map(|p| (p[0], p[1]))
            .collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(c, vec![(0.5, 0.5), (5.5, 5.5)]);
    }

    #[test]
    fn spherical_kmeans_gives_unit_mean_directions() {
        // Two directions: around +x and around +y.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let data = [1.0f32, 0.0, s, s * 0.0 + 0.1, 0.0, 1.0, 0.1, s];
        let mut rows: Vec<f32> = data.to_vec();
        rows.chunks_mut(2)
            .for_each(crate::models::pooling::normalize);
        let c = kmeans(&rows, 2, 2, 10, KMeansMetric::Spherical, 1).unwrap();
        for p in c.chunks(2) {
            assert!((p[0] * p[0] + p[1] * p[1] - 1.0).abs() < 1e-6);
        }
        // The mean direction of each pair, normalised by hand.
        let want = |a: &[f32], b: &[f32]| {
            let mut m = [a[0] + b[0], a[1] + b[1]];
            crate::models::pooling::normalize(&mut m);
            m
        };
        let (wx, wy) = (
            want(&rows[0..2], &rows[2..4]),
            want(&rows[4..6], &rows[6..8]),
        );
        let mut got: Vec<[f32; 2]> = c.chunks(2).map(|p| [p[0], p[1]]).collect();
        got.sort_by(|a, b| b[0].total_cmp(&a[0]));
        for (g, w) in got.iter().zip([wx, wy]) {
            assert!(
                (g[0] - w[0]).abs() < 1e-6 && (g[1] - w[1]).abs() < 1e-6,
                "{g:?} vs {w:?}"
            );
        }
    }

    #[test]
    fn kmeans_refuses_too_few_points() {
        let e = kmeans(&[1.0, 2.0], 1, 3, 5, KMeansMetric::L2, 1).unwrap_err();
        assert!(e.to_string().contains("2 vectors for 3 centroids"), "{e}");
    }

    #[test]
    fn empty_clusters_are_split() {
        // Eight identical-ish points, four centroids initialised on duplicates:
        // every cluster ends non-empty after splitting.
        let data: Vec<f32> = (0..64)
            .map(|i| (i / 16) as f32 * 100.0 + (i % 16) as f32 * 0.01)
            .collect();
        let c = kmeans(&data, 1, 4, 10, KMeansMetric::L2, 5).unwrap();
        let a = assign(&data, &c, 1, KMeansMetric::L2).unwrap();
        let mut used = [false; 4];
        a.iter().for_each(|&(c, _)| used[c as usize] = true);
        assert!(used.iter().all(|&u| u), "{c:?}");
    }

    fn unit_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut v = crate::util::pseudo_random(n * d, seed);
        v.chunks_mut(d).for_each(crate::models::pooling::normalize);
        v
    }

    fn exact(data: &[f32], q: &[f32], d: usize, k: usize) -> Vec<u32> {
        let s: Vec<f32> = data.chunks(d).map(|r| dot(r, q)).collect();
        top_k_rows(&s, s.len(), k)[0].iter().map(|h| h.0).collect()
    }

    fn recall(ivf: &Ivf, data: &[f32], queries: &[f32], d: usize, nprobe: usize) -> f32 {
        let mut found = 0;
        let mut total = 0;
        for q in queries.chunks(d) {
            let truth = exact(data, q, d, 10);
            let got: Vec<u32> = ivf.search(q, 10, nprobe).into_iter().map(|h| h.0).collect();
            found += truth.iter().filter(|t| got.contains(t)).count();
            total += truth.len();
        }
        found as f32 / total as f32
    }

    /// A seeded mixture: 64 random directions, each point one of them plus noise.
    fn clustered_rows(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let centers = unit_rows(64, d, seed);
        let noise = crate::util::pseudo_random(n * d, seed + 1);
        let mut v: Vec<f32> = (0..n)
            .flat_map(|i| {
                let c = &centers[(i * 7 % 64) * d..(i * 7 % 64 + 1) * d];
                c.iter()
                    .zip(&noise[i * d..(i + 1) * d])
                    .map(|(a, b)| a + 0.75 * b)
                    .collect::<Vec<_>>()
            })
            .collect();
        v.chunks_mut(d).for_each(crate::models::pooling::normalize);
        v
    }

    #[test]
    fn ivf_flat_recall_on_a_seeded_set() {
        let (n, d) = (4000, 32);
        let data = clustered_rows(n + 50, d, 11);
        let (data, queries) = data.split_at(n * d);
        let mut ivf = Ivf::new(
            d,
            IvfParams {
                nlist: 32,
                nprobe: 8,
                ..IvfParams::default()
            },
        )
        .unwrap();
        ivf.add(data).unwrap();
        assert_eq!(ivf.len(), n);
        assert_eq!(ivf.cell_sizes().iter().sum::<usize>(), n);
        let r1 = recall(&ivf, data, queries, d, 1);
        let r4 = recall(&ivf, data, queries, d, 4);
        let r8 = recall(&ivf, data, queries, d, 8);
        let r32 = recall(&ivf, data, queries, d, 32);
        eprintln!("IVF-Flat recall@10: nprobe 1 {r1}, 4 {r4}, 8 {r8}, 32 {r32}");
        // Measured: 0.604, 0.852, 0.944, 1.0.
        assert!(r8 >= 0.9, "nprobe 8 recall {r8}");
        assert!(
            r1 < r4 && r4 < r8,
            "more cells scanned must find more: {r1} {r4} {r8}"
        );
        assert_eq!(r32, 1.0, "probing every cell is exact search");
        // Scores are the exact inner products for IVF-Flat.
        let q = &queries[..d];
        for (id, s) in ivf.search(q, 5, 32) {
            let v = &data[id as usize * d..(id as usize + 1) * d];
            assert!((s - dot(q, v)).abs() < 1e-6);
            assert_eq!(ivf.vector(id).unwrap(), v);
        }
    }

    #[test]
    fn ivf_pq_recall_and_reconstruction() {
        let (n, d) = (4000, 32);
        let data = clustered_rows(n + 50, d, 21);
        let (data, queries) = data.split_at(n * d);
        let mut ivf = Ivf::new(
            d,
            IvfParams {
                nlist: 32,
                nprobe: 8,
                pq_m: 8,
                ..IvfParams::default()
            },
        )
        .unwrap();
        ivf.add(data).unwrap();
        let r8 = recall(&ivf, data, queries, d, 8);
        eprintln!("IVF-PQ m=8 recall@10 at nprobe 8: {r8}");
        // Measured: 0.684.
        assert!(r8 >= 0.6, "IVF-PQ recall {r8}");
        // The score is q·(centroid + decoded residual) = q·reconstruction.
        let q = &queries[..d];
        for (id, s) in ivf.search(q, 5, 8) {
            let rec = ivf.vector(id).unwrap();
            assert!((s - dot(q, &rec)).abs() < 1e-5, "{s} vs {}", dot(q, &rec));
        }
        // Reconstructions are close: mean squared error well under the vectors' own spread.
        let mse: f32 = (0..n as u32)
            .map(|i| {
                let v = &data[i as usize * d..(i as usize + 1) * d];
                ivf.vector(i)
                    .unwrap()
                    .iter()
                    .zip(v)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
            })
            .sum::<f32>()
            / n as f32;
        eprintln!("IVF-PQ reconstruction MSE {mse}");
        assert!(mse < 0.1, "reconstruction error {mse}");
    }

    #[test]
    fn parts_round_trip_and_reject_bad_cells() {
        let d = 8;
        let data = clustered_rows(600, d, 3);
        for m in [0, 4] {
            let params = IvfParams {
                nlist: 8,
                nprobe: 2,
                pq_m: m,
                ..IvfParams::default()
            };
            let mut ivf = Ivf::new(d, params).unwrap();
            ivf.add(&data[..400 * d]).unwrap();
            ivf.add(&data[400 * d..]).unwrap();
            let back = Ivf::from_parts(d, params, 600, ivf.parts()).unwrap();
            let q = &data[..d];
            assert_eq!(back.search(q, 10, 3), ivf.search(q, 10, 3));
            let mut bad = ivf.parts();
            bad.cells[5] = 8;
            let e = Ivf::from_parts(d, params, 600, bad).unwrap_err();
            assert!(e.contains("row 5 is in cell 8"), "{e}");
            let mut short = ivf.parts();
            short.cells.pop();
            assert!(Ivf::from_parts(d, params, 600, short).is_err());
        }
    }

    #[test]
    fn training_needs_enough_rows() {
        let mut ivf = Ivf::new(
            4,
            IvfParams {
                nlist: 10,
                ..IvfParams::default()
            },
        )
        .unwrap();
        let e = ivf.add(&unit_rows(5, 4, 1)).unwrap_err();
        assert!(
            e.to_string().contains("at least nlist = 10 vectors, got 5"),
            "{e}"
        );
        assert!(
            Ivf::new(
                6,
                IvfParams {
                    pq_m: 4,
                    ..IvfParams::default()
                }
            )
            .is_err()
        );
    }
}
