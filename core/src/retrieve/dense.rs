//! Dense vector indexes: exact flat search, HNSW ([`super::hnsw`]) and IVF
//! ([`super::ivf`]: IVF-Flat and IVF-PQ), all cosine similarity, behind
//! [`VectorIndex`].
//!
//! # File format (version 3)
//!
//! One collection per file, little-endian:
//!
//! | bytes        | content                                                    |
//! |--------------|------------------------------------------------------------|
//! | 0..8         | magic `CAIRNVEC`                                           |
//! | 8..12        | u32 format version (3)                                     |
//! | 12..16       | u32 length `H` of the JSON header                          |
//! | 16..16+H     | JSON header: `kind` (`flat`/`hnsw`/`ivf`), `dim`, `count`, `metric` (`cosine`), `collection`, `model` (optional), `hnsw` or `ivf` params (+ `trained` for ivf), `created_by` |
//! | then         | u64 length + JSON array of `count` payload strings (the indexed texts or ids) |
//! | flat         | `count × dim` f32: the unit-normalised vectors, row-major  |
//! | hnsw         | `count × dim` f32 unit vectors, then u64 length + bincode of the graph: per node its neighbour lists per level (u32 row ids), and the entry point with its level |
//! | ivf          | if trained: `nlist × dim` f32 centroids; IVF-PQ: `m × 256 × dim/m` f32 codebooks; then `count` u32 cell ids (id order); then IVF-Flat: `count × dim` f32 unit vectors, IVF-PQ: `count × m` u8 codes |
//!
//! Version 3 added the `ivf` kind (flat and HNSW sections are as in version
//! 2, so version 2 files load unchanged). Version 1 differed only in the HNSW
//! section (an `instant-distance` graph); its flat files still load, its HNSW
//! files must be rebuilt.
//!
//! A reader rejects a newer version with a message that says so; the native
//! writer writes to a temporary file and renames it, so a crash never leaves a
//! half-written index in place of a good one.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::pooling::normalize;

/// Magic bytes of an index file.
pub const MAGIC: &[u8; 8] = b"CAIRNVEC";
/// The newest format version this build reads and the one it writes.
pub const FORMAT_VERSION: u32 = 3;

/// One search result: the row id (insertion order) and its cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row id: the position in insertion order.
    pub id: u32,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// What every vector index does.
pub trait VectorIndex {
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// Number of vectors.
    fn len(&self) -> usize;
    /// Whether the index holds no vectors.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends `rows` (`n × dim`, row-major; normalised on the way in) with one
    /// payload string each, returning their ids.
    fn add(&mut self, rows: &[f32], payloads: Vec<String>) -> Result<std::ops::Range<u32>>;
    /// The `k` most similar rows to `query`, best first.
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>>;
    /// [`search`](Self::search) for each of several queries (`n × dim`,
    /// row-major); indexes override it where a batch is cheaper than its
    /// queries one by one.
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let d = self.dim();
        check_rows(d, queries, queries.len() / d.max(1))?;
        queries.chunks(d).map(|q| self.search(q, k)).collect()
    }
    /// The payload stored with row `id`.
    fn payload(&self, id: u32) -> Option<&str>;
}

fn check_rows(dim: usize, rows: &[f32], payloads: usize) -> Result<usize> {
    if dim == 0 || !rows.len().is_multiple_of(dim) {
        return Err(Error::Shape {
            op: "index add",
            detail: format!(
                "{} values are not whole rows of dimension {dim}",
                rows.len()
            ),
        });
    }
    let n = rows.len() / dim;
    if n != payloads {
        return Err(Error::Input(format!("{n} vectors but {payloads} payloads")));
    }
    Ok(n)
}

fn unit(query: &[f32], dim: usize) -> Result<Vec<f32>> {
    if query.len() != dim {
        return Err(Error::Shape {
            op: "index search",
            detail: format!("query has {} dimensions, the index {dim}", query.len()),
        });
    }
    let mut q = query.to_vec();
    normalize(&mut q);
    Ok(q)
}

/// Exact search: every query is compared with every vector.
#[derive(Debug, Clone, Default)]
pub struct FlatIndex {
    dim: usize,
    data: Vec<f32>,
    payloads: Vec<String>,
}

impl FlatIndex {
    /// An empty index for `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
            payloads: Vec::new(),
        }
    }

    /// Row `id`'s unit vector.
    pub fn vector(&self, id: u32) -> Option<&[f32]> {
        let i = id as usize;
        if i >= self.payloads.len() {
            return None;
        }
        self.data.get(i * self.dim..(i + 1) * self.dim)
    }
}

impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.payloads.len()
    }

    fn add(&mut self, rows: &[f32], payloads: Vec<String>) -> Result<std::ops::Range<u32>> {
        let n = check_rows(self.dim, rows, payloads.len())?;
        let start = self.len() as u32;
        for row in rows.chunks(self.dim.max(1)) {
            let mut unit = row.to_vec();
            normalize(&mut unit);
            self.data.extend_from_slice(&unit);
        }
        self.payloads.extend(payloads);
        Ok(start..start + n as u32)
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let q = unit(query, self.dim)?;
        let mut scores = Vec::with_capacity(self.payloads.len());
        crate::util::dots_into(&q, &self.data, self.dim, &mut scores);
        // A k-bounded heap: most rows are rejected by one comparison.
        Ok(super::ivf::top_k_rows(&scores, scores.len(), k)
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, score)| Hit { id, score })
            .collect())
    }

    /// One matrix product per block of queries (the stored vectors × the
    /// queries, candle's multi-threaded GEMM), then the top `k` of each row.
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let d = self.dim;
        check_rows(d, queries, queries.len() / d.max(1))?;
        let mut units = queries.to_vec();
        units.chunks_mut(d).for_each(normalize);
        let n = self.payloads.len();
        let mut out = Vec::with_capacity(units.len() / d);
        // Blocks bound the score matrix to ~64 MB.
        let block = (16 << 20) / n.max(1);
        for qs in units.chunks(d * block.clamp(1, 4096)) {
            let scores = super::ivf::dot_matrix(qs, &self.data, d)?;
            out.extend(
                super::ivf::top_k_rows(&scores, n, k)
                    .into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|(id, score)| Hit { id, score })
                            .collect()
                    }),
            );
        }
        if n == 0 {
            out = vec![Vec::new(); units.len() / d];
        }
        Ok(out)
    }

    fn payload(&self, id: u32) -> Option<&str> {
        self.payloads.get(id as usize).map(String::as_str)
    }
}

pub use super::hnsw::HnswParams;
use super::hnsw::{GraphData, Hnsw};

/// Approximate search over an HNSW graph ([`super::hnsw`]); adding rows
/// links them into the existing graph (no rebuild).
#[derive(Debug)]
pub struct HnswIndex {
    dim: usize,
    graph: Hnsw,
    payloads: Vec<String>,
}

impl HnswIndex {
    /// An empty index for `dim`-dimensional vectors.
    pub fn new(dim: usize, params: HnswParams) -> Self {
        Self {
            dim,
            graph: Hnsw::new(dim, params),
            payloads: Vec::new(),
        }
    }

    /// The graph's parameters.
    pub fn params(&self) -> HnswParams {
        self.graph.params()
    }

    /// The `k` most similar rows, searching with `ef` candidates (at least `k`)
    /// instead of the index's `ef_search`.
    pub fn search_ef(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Hit>> {
        let q = unit(query, self.dim)?;
        Ok(self
            .graph
            .search(&q, k, ef)
            .into_iter()
            .map(|(id, score)| Hit { id, score })
            .collect())
    }
}

impl VectorIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.graph.len()
    }

    fn add(&mut self, rows: &[f32], payloads: Vec<String>) -> Result<std::ops::Range<u32>> {
        let n = check_rows(self.dim, rows, payloads.len())?;
        let start = self.len() as u32;
        let mut unit_rows = rows.to_vec();
        for row in unit_rows.chunks_mut(self.dim) {
            normalize(row);
        }
        self.graph.add(&unit_rows);
        self.payloads.extend(payloads);
        Ok(start..start + n as u32)
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.search_ef(query, k, self.graph.params().ef_search)
    }

    fn payload(&self, id: u32) -> Option<&str> {
        self.payloads.get(id as usize).map(String::as_str)
    }
}

pub use super::ivf::IvfParams;
use super::ivf::{Ivf, IvfParts, PQ_KSUB};

/// Approximate search over an inverted file ([`super::ivf`]): IVF-Flat, or
/// IVF-PQ when `pq_m > 0`. The first rows added train the quantizers (at
/// least `nlist` of them, 256 for PQ); later rows go to their nearest cell.
#[derive(Debug)]
pub struct IvfIndex {
    ivf: Ivf,
    payloads: Vec<String>,
}

impl IvfIndex {
    /// An empty, untrained index for `dim`-dimensional vectors.
    pub fn new(dim: usize, params: IvfParams) -> Result<Self> {
        Ok(Self {
            ivf: Ivf::new(dim, params)?,
            payloads: Vec::new(),
        })
    }

    /// The parameters (with the current `nprobe`).
    pub fn params(&self) -> IvfParams {
        self.ivf.params()
    }

    /// Sets how many cells a search scans (1..=nlist).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.ivf.set_nprobe(nprobe);
    }

    /// Trains the quantizers on `rows` (normalised here) without adding them.
    pub fn train(&mut self, rows: &[f32]) -> Result<()> {
        let d = self.ivf.dim();
        check_rows(d, rows, rows.len() / d.max(1))?;
        let mut unit_rows = rows.to_vec();
        unit_rows.chunks_mut(d).for_each(normalize);
        self.ivf.train(&unit_rows)
    }

    /// The `k` most similar rows scanning `nprobe` cells instead of the index's own.
    pub fn search_nprobe(&self, query: &[f32], k: usize, nprobe: usize) -> Result<Vec<Hit>> {
        let q = unit(query, self.ivf.dim())?;
        Ok(self
            .ivf
            .search(&q, k, nprobe)
            .into_iter()
            .map(|(id, score)| Hit { id, score })
            .collect())
    }

    /// Rows per cell.
    pub fn cell_sizes(&self) -> Vec<usize> {
        self.ivf.cell_sizes()
    }

    /// Row `id`'s stored vector (the PQ reconstruction for IVF-PQ).
    pub fn vector(&self, id: u32) -> Option<Vec<f32>> {
        self.ivf.vector(id)
    }
}

impl VectorIndex for IvfIndex {
    fn dim(&self) -> usize {
        self.ivf.dim()
    }

    fn len(&self) -> usize {
        self.ivf.len()
    }

    fn add(&mut self, rows: &[f32], payloads: Vec<String>) -> Result<std::ops::Range<u32>> {
        let d = self.ivf.dim();
        let n = check_rows(d, rows, payloads.len())?;
        let start = self.len() as u32;
        let mut unit_rows = rows.to_vec();
        unit_rows.chunks_mut(d).for_each(normalize);
        self.ivf.add(&unit_rows)?;
        self.payloads.extend(payloads);
        Ok(start..start + n as u32)
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.search_nprobe(query, k, self.ivf.params().nprobe)
    }

    /// The coarse scores of every query in one matrix product, then the
    /// queries in parallel (rayon).
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let d = self.ivf.dim();
        check_rows(d, queries, queries.len() / d)?;
        let mut units = queries.to_vec();
        units.chunks_mut(d).for_each(normalize);
        Ok(self
            .ivf
            .search_batch(&units, k, self.ivf.params().nprobe)?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|(id, score)| Hit { id, score })
                    .collect()
            })
            .collect())
    }

    fn payload(&self, id: u32) -> Option<&str> {
        self.payloads.get(id as usize).map(String::as_str)
    }
}

/// The kind of index a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// [`FlatIndex`].
    Flat,
    /// [`HnswIndex`].
    Hnsw,
    /// [`IvfIndex`] (IVF-Flat or IVF-PQ).
    Ivf,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileHeader {
    kind: IndexKind,
    dim: usize,
    count: usize,
    metric: String,
    collection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hnsw: Option<HnswParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ivf: Option<IvfParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trained: Option<bool>,
    created_by: String,
}

/// A named collection: one index of either kind.
#[derive(Debug)]
pub struct Collection {
    /// Collection name.
    pub name: String,
    /// The embedding model the vectors came from (queries must use the same one).
    pub model: Option<String>,
    /// The index.
    pub index: AnyIndex,
}

/// Either index kind, dispatching [`VectorIndex`].
#[derive(Debug)]
pub enum AnyIndex {
    /// Exact.
    Flat(FlatIndex),
    /// HNSW.
    Hnsw(HnswIndex),
    /// IVF-Flat / IVF-PQ.
    Ivf(IvfIndex),
}

impl AnyIndex {
    fn inner(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
            AnyIndex::Ivf(i) => i,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
            AnyIndex::Ivf(i) => i,
        }
    }

    /// Which kind this is.
    pub fn kind(&self) -> IndexKind {
        match self {
            AnyIndex::Flat(_) => IndexKind::Flat,
            AnyIndex::Hnsw(_) => IndexKind::Hnsw,
            AnyIndex::Ivf(_) => IndexKind::Ivf,
        }
    }
}

impl VectorIndex for AnyIndex {
    fn dim(&self) -> usize {
        self.inner().dim()
    }
    fn len(&self) -> usize {
        self.inner().len()
    }
    fn add(&mut self, rows: &[f32], payloads: Vec<String>) -> Result<std::ops::Range<u32>> {
        self.inner_mut().add(rows, payloads)
    }
    fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.inner().search(query, k)
    }
    fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.inner().search_batch(queries, k)
    }
    fn payload(&self, id: u32) -> Option<&str> {
        self.inner().payload(id)
    }
}

impl Collection {
    /// Serialises the collection in the format described in the module docs.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let (dim, count) = (self.index.dim(), self.index.len());
        let header = FileHeader {
            kind: self.index.kind(),
            dim,
            count,
            metric: "cosine".into(),
            collection: self.name.clone(),
            model: self.model.clone(),
            hnsw: match &self.index {
                AnyIndex::Hnsw(h) => Some(h.params()),
                _ => None,
            },
            ivf: match &self.index {
                AnyIndex::Ivf(i) => Some(i.ivf.params()),
                _ => None,
            },
            trained: match &self.index {
                AnyIndex::Ivf(i) => Some(i.ivf.is_trained()),
                _ => None,
            },
            created_by: format!("cairn {}", crate::VERSION),
        };
        let header = serde_json::to_vec(&header)
            .map_err(|e| Error::Backend(format!("index header: {e}")))?;
        let payloads: Vec<&str> = (0..count as u32)
            .map(|i| self.index.payload(i).unwrap_or_default())
            .collect();
        let payloads = serde_json::to_vec(&payloads)
            .map_err(|e| Error::Backend(format!("index payloads: {e}")))?;
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(payloads.len() as u64).to_le_bytes());
        out.extend_from_slice(&payloads);
        match &self.index {
            AnyIndex::Flat(f) => f
                .data
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            AnyIndex::Hnsw(h) => {
                h.graph
                    .data()
                    .iter()
                    .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
                let graph = bincode::serialize(&h.graph.graph())
                    .map_err(|e| Error::Backend(format!("serialising the HNSW graph: {e}")))?;
                out.extend_from_slice(&(graph.len() as u64).to_le_bytes());
                out.extend_from_slice(&graph);
            }
            AnyIndex::Ivf(i) => {
                let parts = i.ivf.parts();
                let floats = |out: &mut Vec<u8>, v: &[f32]| {
                    v.iter()
                        .for_each(|x| out.extend_from_slice(&x.to_le_bytes()))
                };
                floats(&mut out, &parts.centroids);
                floats(&mut out, &parts.codebooks);
                parts
                    .cells
                    .iter()
                    .for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
                floats(&mut out, &parts.vectors);
                out.extend_from_slice(&parts.codes);
            }
        }
        Ok(out)
    }

    /// Parses a collection; `file` names it in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self> {
        let err = |detail: String| Error::Format {
            format: format!("index {file}"),
            detail,
        };
        let mut r = Reader { bytes, pos: 0 };
        let magic = r
            .take(8)
            .ok_or_else(|| err("file is too short to be a cairn index".into()))?;
        if magic != MAGIC {
            return Err(err(format!("not a cairn vector index (magic {magic:?})")));
        }
        let version = r
            .u32()
            .ok_or_else(|| err("file ends in the version field".into()))?;
        if version > FORMAT_VERSION {
            return Err(err(format!(
                "written in index format version {version}, newer than the {FORMAT_VERSION} this cairn {} reads; upgrade cairn or rebuild the index",
                crate::VERSION
            )));
        }
        if version == 0 {
            return Err(err("format version 0 is invalid".into()));
        }
        let hlen =
            r.u32()
                .ok_or_else(|| err("file ends in the header length".into()))? as usize;
        let header: FileHeader = serde_json::from_slice(
            r.take(hlen)
                .ok_or_else(|| err("file ends inside the header".into()))?,
        )
        .map_err(|e| err(format!("malformed header: {e}")))?;
        if header.metric != "cosine" {
            return Err(err(format!(
                "metric '{}' is not supported (cosine)",
                header.metric
            )));
        }
        let plen =
            r.u64()
                .ok_or_else(|| err("file ends in the payload length".into()))? as usize;
        let payloads: Vec<String> = serde_json::from_slice(
            r.take(plen)
                .ok_or_else(|| err("file ends inside the payloads".into()))?,
        )
        .map_err(|e| err(format!("malformed payloads: {e}")))?;
        if payloads.len() != header.count {
            return Err(err(format!(
                "header says {} vectors but {} payloads are stored",
                header.count,
                payloads.len()
            )));
        }
        let floats = |r: &mut Reader<'_>, n: Option<usize>, what: &str| -> Result<Vec<f32>> {
            let raw = n
                .and_then(|n| n.checked_mul(4))
                .and_then(|n| r.take(n))
                .ok_or_else(|| err(format!("file ends inside the {what} (truncated?)")))?;
            Ok(raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect())
        };
        let vectors = |r: &mut Reader<'_>| -> Result<Vec<f32>> {
            floats(
                r,
                header.count.checked_mul(header.dim),
                &format!("{} × {} vectors", header.count, header.dim),
            )
        };
        let index = match header.kind {
            IndexKind::Flat => {
                let data = vectors(&mut r)?;
                AnyIndex::Flat(FlatIndex {
                    dim: header.dim,
                    data,
                    payloads,
                })
            }
            IndexKind::Hnsw => {
                if version < 2 {
                    return Err(err(
                        "this HNSW index was written in format version 1 (an instant-distance graph), which this cairn no longer reads; rebuild it".into(),
                    ));
                }
                let data = vectors(&mut r)?;
                let glen = r
                    .u64()
                    .ok_or_else(|| err("file ends in the graph length".into()))?
                    as usize;
                let graph: GraphData =
                    bincode::deserialize(r.take(glen).ok_or_else(|| {
                        err("file ends inside the HNSW graph (truncated?)".into())
                    })?)
                    .map_err(|e| err(format!("corrupt HNSW graph: {e}")))?;
                let params = header.hnsw.unwrap_or_default();
                let graph = Hnsw::from_parts(header.dim, params, data, graph)
                    .map_err(|e| err(format!("corrupt HNSW graph: {e}")))?;
                AnyIndex::Hnsw(HnswIndex {
                    dim: header.dim,
                    graph,
                    payloads,
                })
            }
            IndexKind::Ivf => {
                let params = header
                    .ivf
                    .ok_or_else(|| err("an ivf index without its `ivf` parameters".into()))?;
                let (d, n) = (header.dim, header.count);
                let m = params.pq_m;
                if params.nlist == 0 || (m > 0 && !d.is_multiple_of(m)) {
                    return Err(err(format!(
                        "invalid IVF parameters: nlist {}, m {m} for dimension {d}",
                        params.nlist
                    )));
                }
                let mut parts = IvfParts::default();
                if header.trained.unwrap_or(n > 0) {
                    parts.centroids = floats(
                        &mut r,
                        params.nlist.checked_mul(d),
                        &format!("{} × {d} centroids", params.nlist),
                    )?;
                    if m > 0 {
                        parts.codebooks = floats(
                            &mut r,
                            Some(m * PQ_KSUB * (d / m)),
                            &format!("{m} PQ codebooks"),
                        )?;
                    }
                }
                parts.cells = n
                    .checked_mul(4)
                    .and_then(|b| r.take(b))
                    .ok_or_else(|| err(format!("file ends inside the {n} cell ids (truncated?)")))?
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect();
                if m > 0 {
                    parts.codes = n
                        .checked_mul(m)
                        .and_then(|b| r.take(b))
                        .ok_or_else(|| {
                            err(format!(
                                "file ends inside the {n} × {m} PQ codes (truncated?)"
                            ))
                        })?
                        .to_vec();
                } else {
                    parts.vectors = vectors(&mut r)?;
                }
                let ivf = Ivf::from_parts(d, params, n, parts)
                    .map_err(|e| err(format!("corrupt IVF index: {e}")))?;
                AnyIndex::Ivf(IvfIndex { ivf, payloads })
            }
        };
        if r.pos != bytes.len() {
            return Err(err(format!(
                "{} unexpected bytes after the index",
                bytes.len() - r.pos
            )));
        }
        Ok(Collection {
            name: header.collection,
            model: header.model,
            index,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
}

/// Recall@k of `approx` against exact results: the fraction of the exact top-k ids found.
pub fn recall_at_k(exact: &[Hit], approx: &[Hit]) -> f32 {
    if exact.is_empty() {
        return 1.0;
    }
    let found = exact
        .iter()
        .filter(|e| approx.iter().any(|a| a.id == e.id))
        .count();
    found as f32 / exact.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        crate::util::pseudo_random(n * dim, seed)
    }

    fn payloads(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("doc {i}")).collect()
    }

    #[test]
    fn flat_search_is_exact_and_ordered() {
        let mut idx = FlatIndex::new(2);
        idx.add(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], payloads(3))
            .unwrap();
        let hits = idx.search(&[1.0, 0.1], 3).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert!((hits[0].score - 1.0 / 1.01f32.sqrt()).abs() < 1e-6);
        assert_eq!(idx.payload(2), Some("doc 2"));
        assert!(
            idx.search(&[1.0], 1)
                .unwrap_err()
                .to_string()
                .contains("query has 1 dimensions, the index 2")
        );
        assert!(idx.add(&[1.0, 2.0, 3.0], payloads(1)).is_err());
    }

    #[test]
    fn hnsw_recall_against_flat_on_random_vectors() {
        let (n, dim) = (2000, 32);
        let rows = random_rows(n, dim, 1);
        let mut flat = FlatIndex::new(dim);
        let mut hnsw = HnswIndex::new(dim, HnswParams::default());
        flat.add(&rows, payloads(n)).unwrap();
        hnsw.add(&rows, payloads(n)).unwrap();
        let queries = random_rows(50, dim, 2);
        let mut recall = 0.0;
        for q in queries.chunks(dim) {
            recall += recall_at_k(&flat.search(q, 10).unwrap(), &hnsw.search(q, 10).unwrap());
        }
        let recall = recall / 50.0;
        eprintln!("recall@10 {recall}");
        assert!(recall >= 0.9, "recall@10 {recall}");
    }

    #[test]
    fn both_kinds_round_trip_through_bytes() {
        let (n, dim) = (300, 8);
        let rows = random_rows(n, dim, 3);
        let ivf = |m| IvfParams {
            nlist: 4,
            nprobe: 2,
            pq_m: m,
            ..IvfParams::default()
        };
        for mut index in [
            AnyIndex::Flat(FlatIndex::new(dim)),
            AnyIndex::Hnsw(HnswIndex::new(dim, HnswParams::default())),
            AnyIndex::Ivf(IvfIndex::new(dim, ivf(0)).unwrap()),
            AnyIndex::Ivf(IvfIndex::new(dim, ivf(2)).unwrap()),
        ] {
            index.add(&rows, payloads(n)).unwrap();
            let c = Collection {
                name: "r-manuals".into(),
                model: Some("all-minilm-l6-v2".into()),
                index,
            };
            let bytes = c.to_bytes().unwrap();
            let back = Collection::from_bytes(&bytes, "x.cvec").unwrap();
            assert_eq!(
                (back.name.as_str(), back.model.as_deref()),
                ("r-manuals", Some("all-minilm-l6-v2"))
            );
            assert_eq!(
                (back.index.len(), back.index.dim(), back.index.kind()),
                (n, dim, c.index.kind())
            );
            let q = &rows[5 * dim..6 * dim];
            assert_eq!(
                back.index.search(q, 5).unwrap(),
                c.index.search(q, 5).unwrap()
            );
            assert_eq!(back.index.payload(7), Some("doc 7"));
        }
    }

    #[test]
    fn bad_files_are_named_errors() {
        let mut f = FlatIndex::new(4);
        f.add(&random_rows(3, 4, 9), payloads(3)).unwrap();
        let bytes = Collection {
            name: "c".into(),
            model: None,
            index: AnyIndex::Flat(f),
        }
        .to_bytes()
        .unwrap();
        let mut newer = bytes.clone();
        newer[8..12].copy_from_slice(&4u32.to_le_bytes());
        let e = Collection::from_bytes(&newer, "new.cvec")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("index new.cvec: written in index format version 4, newer than the 3"),
            "{e}"
        );
        let e = Collection::from_bytes(&bytes[..bytes.len() - 3], "cut.cvec")
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        let e = Collection::from_bytes(b"GGUFxxxxxxxxxxxx", "g.cvec")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a cairn vector index"), "{e}");
    }

    fn ivf_collection(m: usize, n: usize) -> (Collection, Vec<f32>) {
        let dim = 8;
        let rows = random_rows(n, dim, 4);
        let params = IvfParams {
            nlist: 4,
            nprobe: 2,
            pq_m: m,
            ..IvfParams::default()
        };
        let mut index = IvfIndex::new(dim, params).unwrap();
        if n > 0 {
            index.add(&rows, payloads(n)).unwrap();
        }
        let c = Collection {
            name: "c".into(),
            model: None,
            index: AnyIndex::Ivf(index),
        };
        (c, rows)
    }

    #[test]
    fn ivf_files_round_trip_grow_and_reject_corruption() {
        for m in [0, 4] {
            let (mut c, _) = ivf_collection(m, 300);
            // Added after training, after a save and load: the new rows land in cells.
            let mut back = Collection::from_bytes(&c.to_bytes().unwrap(), "i.cvec").unwrap();
            let more = random_rows(20, 8, 5);
            back.index.add(&more, payloads(20)).unwrap();
            c.index.add(&more, payloads(20)).unwrap();
            assert_eq!(back.index.len(), 320);
            let q = &more[..8];
            assert_eq!(
                back.index.search(q, 5).unwrap(),
                c.index.search(q, 5).unwrap()
            );
            assert_eq!(c.index.search(q, 1).unwrap()[0].id, 300, "m {m}");
            let bytes = c.to_bytes().unwrap();
            // Every truncation is a named error, never a panic.
            for cut in (0..bytes.len()).step_by(97) {
                assert!(Collection::from_bytes(&bytes[..cut], "cut.cvec").is_err());
            }
            // A cell id out of range: the cell ids start right after the centroids
            // (and codebooks) at the end of the known sections.
            let tail = 320 * if m == 0 { 8 * 4 } else { m };
            let at = bytes.len() - tail - 320 * 4;
            let mut bad = bytes.clone();
            bad[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
            let e = Collection::from_bytes(&bad, "bad.cvec")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(
                    "index bad.cvec: corrupt IVF index: row 0 is in cell 9, but there are 4 cells"
                ),
                "{e}"
            );
        }
        // An empty, untrained index saves and loads, then trains on its first rows.
        let (c, _) = ivf_collection(0, 0);
        let mut back = Collection::from_bytes(&c.to_bytes().unwrap(), "e.cvec").unwrap();
        back.index.add(&random_rows(8, 8, 1), payloads(8)).unwrap();
        assert_eq!(back.index.len(), 8);
        // Header parameters that cannot work are rejected before anything is allocated.
        let bytes = c.to_bytes().unwrap();
        let hlen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let header = String::from_utf8(bytes[16..16 + hlen].to_vec()).unwrap();
        let huge = header.replace("\"nlist\":4", "\"nlist\":4000000000000");
        let bytes = [
            &bytes[..12],
            &(huge.len() as u32).to_le_bytes(),
            huge.as_bytes(),
            &bytes[16 + hlen..],
        ]
        .concat();
        let e = Collection::from_bytes(&bytes, "huge.cvec")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nlist 4000000000000 is above the supported"),
            "{e}"
        );
    }

    #[test]
    fn batched_flat_search_equals_one_by_one() {
        let (n, dim) = (500, 16);
        let mut f = FlatIndex::new(dim);
        f.add(&random_rows(n, dim, 7), payloads(n)).unwrap();
        let queries = random_rows(30, dim, 8);
        let batch = f.search_batch(&queries, 10).unwrap();
        assert_eq!(batch.len(), 30);
        for (q, hits) in queries.chunks(dim).zip(&batch) {
            let one = f.search(q, 10).unwrap();
            assert_eq!(
                hits.iter().map(|h| h.id).collect::<Vec<_>>(),
                one.iter().map(|h| h.id).collect::<Vec<_>>()
            );
            for (a, b) in hits.iter().zip(&one) {
                assert!((a.score - b.score).abs() < 1e-5);
            }
        }
        assert!(
            FlatIndex::new(dim)
                .search_batch(&queries, 3)
                .unwrap()
                .iter()
                .all(Vec::is_empty)
        );
    }

    #[test]
    fn batched_ivf_search_equals_one_by_one() {
        for m in [0, 4] {
            let (c, _) = ivf_collection(m, 300);
            let queries = random_rows(20, 8, 9);
            let batch = c.index.search_batch(&queries, 5).unwrap();
            for (q, hits) in queries.chunks(8).zip(&batch) {
                let one = c.index.search(q, 5).unwrap();
                assert_eq!(
                    hits.iter().map(|h| h.id).collect::<Vec<_>>(),
                    one.iter().map(|h| h.id).collect::<Vec<_>>()
                );
            }
        }
    }
}
