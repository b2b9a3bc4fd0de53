//! Dense vector indexes: exact flat search and HNSW ([`super::hnsw`]),
//! both cosine similarity, behind [`VectorIndex`].
//!
//! # File format (version 2)
//!
//! One collection per file, little-endian:
//!
//! | bytes        | content                                                    |
//! |--------------|------------------------------------------------------------|
//! | 0..8         | magic `CAIRNVEC`                                           |
//! | 8..12        | u32 format version (1)                                     |
//! | 12..16       | u32 length `H` of the JSON header                          |
//! | 16..16+H     | JSON header: `kind` (`flat`/`hnsw`), `dim`, `count`, `metric` (`cosine`), `collection`, `model` (optional), `hnsw` params, `created_by` |
//! | then         | u64 length + JSON array of `count` payload strings (the indexed texts or ids) |
//! | flat         | `count × dim` f32: the unit-normalised vectors, row-major  |
//! | hnsw         | `count × dim` f32 unit vectors, then u64 length + bincode of the graph: per node its neighbour lists per level (u32 row ids), and the entry point with its level |
//!
//! Version 1 differed only in the HNSW section (an `instant-distance` graph);
//! its flat files still load, its HNSW files must be rebuilt.
//!
//! A reader rejects a newer version with a message that says so; the native
//! writer writes to a temporary file and renames it, so a crash never leaves a
//! half-written index in place of a good one.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::pooling::normalize;
use crate::util::dot;

/// Magic bytes of an index file.
pub const MAGIC: &[u8; 8] = b"CAIRNVEC";
/// The newest format version this build reads and the one it writes.
pub const FORMAT_VERSION: u32 = 2;

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
        let mut hits: Vec<Hit> = self
            .data
            .chunks(self.dim)
            .enumerate()
            .map(|(i, v)| Hit {
                id: i as u32,
                score: dot(&q, v),
            })
            .collect();
        let k = k.min(hits.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        hits.select_nth_unstable_by(k - 1, |a, b| {
            b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
        });
        hits.truncate(k);
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok(hits)
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

/// The kind of index a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// [`FlatIndex`].
    Flat,
    /// [`HnswIndex`].
    Hnsw,
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
}

impl AnyIndex {
    fn inner(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn VectorIndex {
        match self {
            AnyIndex::Flat(i) => i,
            AnyIndex::Hnsw(i) => i,
        }
    }

    /// Which kind this is.
    pub fn kind(&self) -> IndexKind {
        match self {
            AnyIndex::Flat(_) => IndexKind::Flat,
            AnyIndex::Hnsw(_) => IndexKind::Hnsw,
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
                AnyIndex::Flat(_) => None,
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
        let vectors = |r: &mut Reader<'_>| -> Result<Vec<f32>> {
            let raw = r.take(header.count * header.dim * 4).ok_or_else(|| {
                err(format!(
                    "file ends inside the {} × {} vectors (truncated?)",
                    header.count, header.dim
                ))
            })?;
            Ok(raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect())
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
        for mut index in [
            AnyIndex::Flat(FlatIndex::new(dim)),
            AnyIndex::Hnsw(HnswIndex::new(dim, HnswParams::default())),
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
        newer[8..12].copy_from_slice(&3u32.to_le_bytes());
        let e = Collection::from_bytes(&newer, "new.cvec")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("index new.cvec: written in index format version 3, newer than the 2"),
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
}
