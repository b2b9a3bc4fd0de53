//! The RAG index: named collections of chunked documents, each searchable by
//! BM25 and by dense vectors, alone or together, fused by reciprocal rank.
//!
//! Small-to-big: the indexed units are small *children* (default 128
//! tokens, what the embedder reads best); hits return their *parent* chunk
//! (default 512 tokens) as context for the generator.
//!
//! A collection may carry an inverted-file coarse quantizer
//! ([`CollectionIvf`], `cairn index --ivf-nlist`): dense search then scores
//! only the children in the `nprobe` cells nearest the query instead of every
//! child (the vectors stay exact, so the scores are exact too).
//!
//! File format (`.cidx`), little-endian: magic `CAIRNRAG`, u32 format
//! version (3), u64 body length, the body's sha256 (32 bytes), then the body:
//! the bincode encoding of [`RagIndex`]. Version 2 (the same without a
//! collection's `ivf`) and version 1 files (no length, no checksum) are
//! still read. On load the checksum is verified, decoding is
//! bounded by the body's size (a crafted length cannot make it allocate
//! more), and every stored id is validated (file → chunk, chunk → parent,
//! vector rows), so a damaged file is an error naming it, never a panic or a
//! silently different ranking. BM25 postings are
//! rebuilt on load (they are derived from the chunk texts). Files are
//! updated incrementally: a file whose content hash is unchanged is skipped,
//! a changed one replaces its chunks, a vanished one is removed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::super::retrieve::bm25::{Analyzer, Bm25Index, Bm25Params};
use super::super::retrieve::fusion::{mmr, rrf};
use crate::error::{Error, Result};
use crate::text::Chunk;

/// Magic bytes of a RAG index file.
pub const MAGIC: &[u8; 8] = b"CAIRNRAG";
/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes before the body in a version-2 file: magic, version, length, sha256.
const HEADER_V2: usize = 8 + 4 + 8 + 32;

/// bincode 1's `serialize`/`deserialize` configuration with a bound on what
/// one decode may read (and so allocate).
fn bincode_opts(limit: u64) -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(limit)
}

/// One indexed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Content hash (hex sha256, computed by the caller).
    pub hash: String,
    /// Its parent chunks (indices into the collection's `parents`).
    pub parents: Vec<usize>,
    /// Its child chunks (indices into `children` and rows of `vectors`).
    pub children: Vec<usize>,
    /// Pages loaded (PDF).
    pub pages: usize,
}

/// One file's chunks, ready to index.
#[derive(Debug, Clone, PartialEq)]
pub struct FileChunks {
    /// Source name (path).
    pub source: String,
    /// Content hash (hex sha256).
    pub hash: String,
    /// Pages loaded (PDF).
    pub pages: usize,
    /// Parent chunks (what hits return).
    pub parents: Vec<Chunk>,
    /// Child chunks (what is indexed); `parent` indexes `parents`.
    pub children: Vec<Chunk>,
    /// The children's unit vectors, row-major.
    pub vectors: Vec<f32>,
}

impl RagCollection {
    /// Child `i`'s unit vector (empty when `i` is out of range; loading
    /// validated every stored id against `children`).
    pub fn vector(&self, i: usize, dim: usize) -> &[f32] {
        self.vectors.get(i * dim..(i + 1) * dim).unwrap_or_default()
    }
}

/// A named collection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RagCollection {
    /// Indexed files by source name.
    pub files: BTreeMap<String, FileEntry>,
    /// Parent chunks (`None` once their file is removed).
    pub parents: Vec<Option<Chunk>>,
    /// Child chunks (`None` once removed); `parent` points into `parents`.
    pub children: Vec<Option<Chunk>>,
    /// Unit vectors of the children, `children.len() × dim`, row-major.
    pub vectors: Vec<f32>,
    /// The IVF coarse quantizer of the children, when one was trained.
    pub ivf: Option<CollectionIvf>,
    #[serde(skip)]
    bm25: Option<Bm25Index>,
}

/// An inverted-file coarse quantizer over a collection's children: spherical
/// k-means centroids ([`crate::retrieve::ivf::kmeans`]) and every child's cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionIvf {
    /// Number of cells.
    pub nlist: usize,
    /// Cells a dense search scans.
    pub nprobe: usize,
    /// `nlist × dim` unit centroids.
    pub centroids: Vec<f32>,
    /// The cell of every child slot (removed ones included), `< nlist`.
    pub cells: Vec<u32>,
}

impl CollectionIvf {
    /// Which cells a query scans: the `nprobe` with the largest inner product.
    fn probes(&self, query: &[f32], dim: usize) -> Vec<bool> {
        let scores: Vec<f32> = self
            .centroids
            .chunks(dim.max(1))
            .map(|c| crate::util::dot(query, c))
            .collect();
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| {
            scores
                .get(b)
                .unwrap_or(&0.0)
                .total_cmp(scores.get(a).unwrap_or(&0.0))
                .then(a.cmp(&b))
        });
        let mut on = vec![false; scores.len()];
        for &c in order.iter().take(self.nprobe.max(1)) {
            if let Some(slot) = on.get_mut(c) {
                *slot = true;
            }
        }
        on
    }
}

/// The version-2 layout of a collection (no `ivf`), read and converted.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct RagCollectionV2 {
    files: BTreeMap<String, FileEntry>,
    parents: Vec<Option<Chunk>>,
    children: Vec<Option<Chunk>>,
    vectors: Vec<f32>,
}

/// The version-2 layout of the index.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct RagIndexV2 {
    embedder: String,
    dim: usize,
    collections: BTreeMap<String, RagCollectionV2>,
}

impl From<RagIndexV2> for RagIndex {
    fn from(v: RagIndexV2) -> Self {
        RagIndex {
            embedder: v.embedder,
            dim: v.dim,
            collections: v
                .collections
                .into_iter()
                .map(|(name, c)| {
                    (
                        name,
                        RagCollection {
                            files: c.files,
                            parents: c.parents,
                            children: c.children,
                            vectors: c.vectors,
                            ivf: None,
                            bm25: None,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl RagCollection {
    fn bm25(&mut self) -> &Bm25Index {
        let children = &self.children;
        self.bm25.get_or_insert_with(|| {
            let mut ix = Bm25Index::new(Bm25Params::default(), Analyzer::default());
            for c in children {
                ix.add(c.as_ref().map_or("", |c| c.text.as_str()));
            }
            ix
        })
    }

    /// Live (not removed) child chunks.
    pub fn live_children(&self) -> usize {
        self.children.iter().filter(|c| c.is_some()).count()
    }
}

/// How to retrieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Keywords only.
    Bm25,
    /// Embeddings only.
    Dense,
    /// Both, fused by weighted reciprocal rank.
    Hybrid,
}

/// Retrieval settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOptions {
    /// Retrieval method.
    pub method: Method,
    /// Candidates each retriever contributes before fusion (default 20).
    pub candidates: usize,
    /// Results returned (default 5).
    pub k: usize,
    /// RRF weights of BM25 and dense lists.
    pub weights: (f32, f32),
    /// RRF constant (60).
    pub rrf_c: f32,
    /// MMR λ over the fused candidates (`None` = no diversification).
    pub mmr_lambda: Option<f32>,
    /// Collections to search (empty = all).
    pub collections: Vec<String>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            method: Method::Hybrid,
            candidates: 20,
            k: 5,
            weights: (1.0, 1.0),
            rrf_c: 60.0,
            mmr_lambda: None,
            collections: Vec::new(),
        }
    }
}

/// One retrieved passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Collection it came from.
    pub collection: String,
    /// The parent chunk (the context passage).
    pub chunk: Chunk,
    /// The child chunk that matched.
    pub matched: Chunk,
    /// Fused score (higher is better).
    pub score: f32,
    /// Cosine similarity of the matched child to the query (dense evidence).
    pub cosine: f32,
    /// BM25 score of the matched child (keyword evidence; 0 if none).
    pub bm25: f32,
}

/// The whole index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RagIndex {
    /// The embedder the vectors come from (queries must use the same).
    pub embedder: String,
    /// Vector dimension.
    pub dim: usize,
    /// Collections by name.
    pub collections: BTreeMap<String, RagCollection>,
}

impl RagIndex {
    /// An empty index for vectors of `dim` from `embedder`.
    pub fn new(embedder: &str, dim: usize) -> Self {
        RagIndex {
            embedder: embedder.into(),
            dim,
            collections: BTreeMap::new(),
        }
    }

    /// Whether `source` in `collection` is indexed with this content hash.
    pub fn is_current(&self, collection: &str, source: &str, hash: &str) -> bool {
        self.collections
            .get(collection)
            .and_then(|c| c.files.get(source))
            .is_some_and(|f| f.hash == hash)
    }

    /// Removes a file's chunks (their slots stay, emptied, so ids are stable).
    pub fn remove_file(&mut self, collection: &str, source: &str) -> bool {
        let Some(c) = self.collections.get_mut(collection) else {
            return false;
        };
        let Some(f) = c.files.remove(source) else {
            return false;
        };
        for p in f.parents {
            if let Some(slot) = c.parents.get_mut(p) {
                *slot = None;
            }
        }
        for ch in f.children {
            if let Some(slot) = c.children.get_mut(ch) {
                *slot = None;
            }
        }
        c.bm25 = None;
        true
    }

    /// Adds (or replaces) a file in `collection`.
    pub fn add_file(&mut self, collection: &str, file: FileChunks) -> Result<()> {
        let FileChunks {
            source,
            hash,
            pages,
            parents,
            children,
            vectors,
        } = file;
        let (source, hash) = (source.as_str(), hash.as_str());
        if vectors.len() != children.len() * self.dim {
            return Err(Error::Shape {
                op: "rag index add",
                detail: format!(
                    "{source}: {} values for {} chunks of dimension {}",
                    vectors.len(),
                    children.len(),
                    self.dim
                ),
            });
        }
        self.remove_file(collection, source);
        let c = self.collections.entry(collection.to_string()).or_default();
        let base_p = c.parents.len();
        let base_c = c.children.len();
        let n_par = parents.len();
        c.parents.extend(parents.into_iter().map(Some));
        let mut child_ids = Vec::with_capacity(children.len());
        for mut ch in children {
            let p = ch
                .parent
                .ok_or_else(|| Error::Input(format!("{source}: child chunk without a parent")))?;
            if p >= n_par {
                return Err(Error::Input(format!(
                    "{source}: child points at parent {p} of {n_par}"
                )));
            }
            ch.parent = Some(base_p + p);
            child_ids.push(c.children.len());
            c.children.push(Some(ch));
        }
        c.vectors.extend_from_slice(&vectors);
        if let Some(ivf) = &mut c.ivf {
            let cells = crate::retrieve::ivf::assign(
                &vectors,
                &ivf.centroids,
                self.dim,
                crate::retrieve::ivf::KMeansMetric::Spherical,
            )?;
            ivf.cells.extend(cells.into_iter().map(|(cell, _)| cell));
        }
        c.bm25 = None;
        c.files.insert(
            source.to_string(),
            FileEntry {
                hash: hash.to_string(),
                parents: (base_p..base_p + n_par).collect(),
                children: (base_c..c.children.len()).collect(),
                pages,
            },
        );
        Ok(())
    }

    /// Trains (or retrains) `collection`'s IVF coarse quantizer on its live
    /// children: `nlist` spherical k-means cells (FAISS's rules: 10
    /// iterations, at most 256 training vectors per cell), `nprobe` scanned
    /// per query; every child slot is assigned its cell, and files added
    /// later are assigned as they come. `nlist = 0` removes the quantizer
    /// (exact search over every child again).
    pub fn build_ivf(&mut self, collection: &str, nlist: usize, nprobe: usize) -> Result<()> {
        use crate::retrieve::ivf::{
            KMeansMetric, MAX_NLIST, MAX_POINTS_PER_CENTROID, assign, kmeans,
        };
        let dim = self.dim;
        let c = self
            .collections
            .get_mut(collection)
            .ok_or_else(|| Error::Input(format!("no collection '{collection}' in the index")))?;
        if nlist == 0 {
            c.ivf = None;
            return Ok(());
        }
        if nlist > MAX_NLIST || nprobe == 0 {
            return Err(Error::Input(format!(
                "IVF needs 1 ≤ nlist ≤ {MAX_NLIST} and nprobe ≥ 1 (got nlist {nlist}, nprobe {nprobe})"
            )));
        }
        let live: Vec<usize> = (0..c.children.len())
            .filter(|&i| c.children.get(i).is_some_and(Option::is_some))
            .collect();
        if live.len() < nlist {
            return Err(Error::Input(format!(
                "collection '{collection}' has {} chunks, fewer than the {nlist} IVF cells asked for; lower --ivf-nlist",
                live.len()
            )));
        }
        // Evenly spaced live rows when there are more than k-means needs.
        let cap = nlist.saturating_mul(MAX_POINTS_PER_CENTROID);
        let step = live.len().div_ceil(cap).max(1);
        let sample: Vec<f32> = live
            .iter()
            .step_by(step)
            .flat_map(|&i| c.vector(i, dim).iter().copied())
            .collect();
        let centroids = kmeans(&sample, dim, nlist, 10, KMeansMetric::Spherical, 1234)?;
        let cells = assign(&c.vectors, &centroids, dim, KMeansMetric::Spherical)?
            .into_iter()
            .map(|(cell, _)| cell)
            .collect();
        c.ivf = Some(CollectionIvf {
            nlist,
            nprobe: nprobe.min(nlist),
            centroids,
            cells,
        });
        Ok(())
    }

    /// Serialises the index (format described in the module docs).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        use sha2::Digest;
        let body = bincode::serialize(self)
            .map_err(|e| Error::Input(format!("cannot serialise the RAG index: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_V2 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&sha2::Sha256::digest(&body));
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads an index written by [`RagIndex::to_bytes`] (or a version-1
    /// file); `file` names it in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self> {
        use bincode::Options;
        use sha2::Digest;
        let err = |detail: String| Error::Format {
            format: format!("RAG index {file}"),
            detail,
        };
        let (Some(magic), Some(version)) = (bytes.get(..8), bytes.get(8..12)) else {
            return Err(err("not a cairn RAG index (shorter than its header)".into()));
        };
        if magic != MAGIC {
            return Err(err("not a cairn RAG index (magic is not CAIRNRAG)".into()));
        }
        let version = u32::from_le_bytes(version.try_into().unwrap_or_default());
        let body = match version {
            1 => bytes.get(12..).unwrap_or_default(),
            2 | 3 => {
                let Some(header) = bytes.get(12..HEADER_V2) else {
                    return Err(err("truncated header".into()));
                };
                let (len, sum) = header.split_at(8);
                let len = u64::from_le_bytes(len.try_into().unwrap_or_default());
                let body = bytes.get(HEADER_V2..).unwrap_or_default();
                if len != body.len() as u64 {
                    return Err(err(format!(
                        "corrupt or truncated: the header gives a {len}-byte body, the file holds {}",
                        body.len()
                    )));
                }
                if sha2::Sha256::digest(body).as_slice() != sum {
                    return Err(err(
                        "checksum mismatch: the file is damaged; rebuild it with `cairn index`"
                            .into(),
                    ));
                }
                body
            }
            0 => return Err(err("format version 0 does not exist".into())),
            v => {
                return Err(err(format!(
                    "format version {v} is newer than the {FORMAT_VERSION} this cairn reads; upgrade cairn or rebuild the index"
                )));
            }
        };
        let decode_err = |e: bincode::Error| err(format!("corrupt or truncated ({e})"));
        let ix: RagIndex = if version < 3 {
            bincode_opts(body.len() as u64)
                .deserialize::<RagIndexV2>(body)
                .map_err(decode_err)?
                .into()
        } else {
            bincode_opts(body.len() as u64)
                .deserialize(body)
                .map_err(decode_err)?
        };
        ix.validate().map_err(err)?;
        Ok(ix)
    }

    /// Checks every stored id: vector rows match the chunks, each file's
    /// chunks exist and are live, each live child's parent exists and is live.
    fn validate(&self) -> std::result::Result<(), String> {
        for (name, c) in &self.collections {
            if self
                .dim
                .checked_mul(c.children.len())
                .is_none_or(|n| n != c.vectors.len())
            {
                return Err(format!(
                    "collection '{name}' has {} vector values for {} chunks of dimension {}",
                    c.vectors.len(),
                    c.children.len(),
                    self.dim
                ));
            }
            if let Some(ivf) = &c.ivf {
                if ivf.nlist == 0
                    || ivf.nprobe == 0
                    || self.dim.checked_mul(ivf.nlist) != Some(ivf.centroids.len())
                {
                    return Err(format!(
                        "collection '{name}': IVF with nlist {}, nprobe {} has {} centroid values for dimension {}",
                        ivf.nlist,
                        ivf.nprobe,
                        ivf.centroids.len(),
                        self.dim
                    ));
                }
                if ivf.cells.len() != c.children.len() {
                    return Err(format!(
                        "collection '{name}': IVF assigns {} chunks to cells, the collection has {}",
                        ivf.cells.len(),
                        c.children.len()
                    ));
                }
                if let Some((i, cell)) = ivf
                    .cells
                    .iter()
                    .enumerate()
                    .find(|&(_, &cell)| cell as usize >= ivf.nlist)
                {
                    return Err(format!(
                        "collection '{name}': chunk {i} is in IVF cell {cell} of {}",
                        ivf.nlist
                    ));
                }
            }
            for (source, f) in &c.files {
                if let Some(p) = f
                    .parents
                    .iter()
                    .find(|&&p| c.parents.get(p).is_none_or(Option::is_none))
                {
                    return Err(format!(
                        "collection '{name}': file {source} lists passage {p}, which does not exist (of {})",
                        c.parents.len()
                    ));
                }
                if let Some(ch) = f
                    .children
                    .iter()
                    .find(|&&ch| c.children.get(ch).is_none_or(Option::is_none))
                {
                    return Err(format!(
                        "collection '{name}': file {source} lists chunk {ch}, which does not exist (of {})",
                        c.children.len()
                    ));
                }
            }
            for (i, ch) in c.children.iter().enumerate() {
                let Some(ch) = ch else { continue };
                match ch.parent {
                    Some(p) if c.parents.get(p).is_some_and(Option::is_some) => {}
                    other => {
                        return Err(format!(
                            "collection '{name}': chunk {i} points at passage {other:?}, which does not exist (of {})",
                            c.parents.len()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Retrieves passages for a query (its text for BM25, its unit vector for
    /// dense search; either may be unused depending on the method).
    pub fn search(
        &mut self,
        query: &str,
        query_vec: &[f32],
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        if opts.method != Method::Bm25 && query_vec.len() != self.dim {
            return Err(Error::Shape {
                op: "rag search",
                detail: format!(
                    "query vector has {} values, the index {}",
                    query_vec.len(),
                    self.dim
                ),
            });
        }
        for name in &opts.collections {
            if !self.collections.contains_key(name) {
                let known: Vec<&str> = self.collections.keys().map(String::as_str).collect();
                return Err(Error::Input(format!(
                    "no collection '{name}' in the index (collections: {})",
                    known.join(", ")
                )));
            }
        }
        let dim = self.dim;
        // Candidates from every selected collection: (collection, child id).
        let mut bm25_list: Vec<((String, usize), f32)> = Vec::new();
        let mut dense_list: Vec<((String, usize), f32)> = Vec::new();
        let mut bm25_of: HashMap<(String, usize), f32> = HashMap::new();
        for (name, c) in self.collections.iter_mut() {
            if !opts.collections.is_empty() && !opts.collections.contains(name) {
                continue;
            }
            if opts.method != Method::Dense {
                let live: Vec<bool> = c.children.iter().map(Option::is_some).collect();
                for (d, s) in c.bm25().search(query, opts.candidates, |d| {
                    live.get(d as usize).copied().unwrap_or(false)
                }) {
                    bm25_list.push(((name.clone(), d as usize), s));
                }
            }
            if opts.method != Method::Bm25 {
                let probes = c.ivf.as_ref().map(|ivf| (ivf, ivf.probes(query_vec, dim)));
                let probed = |i: usize| match &probes {
                    None => true,
                    Some((ivf, on)) => ivf
                        .cells
                        .get(i)
                        .and_then(|&cell| on.get(cell as usize))
                        .copied()
                        .unwrap_or(false),
                };
                let mut scored: Vec<(usize, f32)> = c
                    .children
                    .iter()
                    .enumerate()
                    .filter(|&(i, ch)| ch.is_some() && probed(i))
                    .map(|(i, _)| (i, crate::util::dot(query_vec, c.vector(i, dim))))
                    .collect();
                let keep = opts.candidates.min(scored.len());
                if keep > 0 {
                    scored.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
                    scored.truncate(keep);
                }
                dense_list.extend(scored.into_iter().map(|(i, s)| ((name.clone(), i), s)));
            }
        }
        let by_score = |l: &mut Vec<((String, usize), f32)>| {
            l.sort_by(|a, b| b.1.total_cmp(&a.1));
            l.truncate(opts.candidates);
        };
        by_score(&mut bm25_list);
        by_score(&mut dense_list);
        for (k, s) in &bm25_list {
            bm25_of.insert(k.clone(), *s);
        }
        let fused: Vec<((String, usize), f32)> = match opts.method {
            Method::Bm25 => bm25_list,
            Method::Dense => dense_list,
            Method::Hybrid => rrf(
                &[
                    (opts.weights.0, bm25_list.into_iter().map(|x| x.0).collect()),
                    (
                        opts.weights.1,
                        dense_list.into_iter().map(|x| x.0).collect(),
                    ),
                ],
                opts.rrf_c,
            ),
        };
        // Map children to parents, keeping each parent's best child.
        let mut seen = std::collections::HashSet::new();
        let mut hits = Vec::new();
        for ((name, child), score) in fused {
            let Some(c) = self.collections.get(&name) else {
                continue;
            };
            let Some(ch) = c.children.get(child).and_then(Option::as_ref) else {
                continue;
            };
            let Some(p) = ch.parent else { continue };
            if !seen.insert((name.clone(), p)) {
                continue;
            }
            let Some(parent) = c.parents.get(p).and_then(Option::as_ref) else {
                continue;
            };
            let cosine = if query_vec.len() == dim {
                crate::util::dot(query_vec, c.vector(child, dim))
            } else {
                0.0
            };
            hits.push((
                Hit {
                    collection: name.clone(),
                    chunk: parent.clone(),
                    matched: ch.clone(),
                    score,
                    cosine,
                    bm25: bm25_of.get(&(name.clone(), child)).copied().unwrap_or(0.0),
                },
                child,
            ));
        }
        if let Some(lambda) = opts.mmr_lambda.filter(|_| query_vec.len() == dim) {
            let vecs: Vec<&[f32]> = hits
                .iter()
                .map(|(h, child)| {
                    self.collections
                        .get(&h.collection)
                        .map_or(&[][..], |c| c.vector(*child, dim))
                })
                .collect();
            let order = mmr(query_vec, &vecs, opts.k, lambda);
            return Ok(order
                .into_iter()
                .filter_map(|i| hits.get(i).map(|h| h.0.clone()))
                .collect());
        }
        hits.truncate(opts.k);
        Ok(hits.into_iter().map(|(h, _)| h).collect())
    }
}

/// Re-scores `hits` with a cross-encoder on (query, matched chunk) and
/// keeps the best `k`, best first; each hit's `score` becomes the
/// reranker's. (The matched child is what the reranker reads: a passage of
/// the size it was trained on.)
pub fn rerank(
    reranker: &dyn crate::retrieve::Reranker,
    query: &str,
    hits: Vec<Hit>,
    k: usize,
) -> Result<Vec<Hit>> {
    let texts: Vec<&str> = hits.iter().map(|h| h.matched.text.as_str()).collect();
    let order = reranker.rerank(query, &texts, k)?;
    Ok(order
        .into_iter()
        .filter_map(|(i, score)| hits.get(i).map(|h| Hit { score, ..h.clone() }))
        .collect())
}

/// Like [`rerank`], but the final order fuses the first stage's ranking
/// (`hits` as given, best first) with the reranker's by reciprocal rank
/// fusion (equal weights, constant `c`; 60 is the usual): a reranker trained
/// on little data then corrects the first stage without overruling it.
/// Each hit's `score` becomes the fused score.
pub fn rerank_fused(
    reranker: &dyn crate::retrieve::Reranker,
    query: &str,
    hits: Vec<Hit>,
    k: usize,
    c: f32,
) -> Result<Vec<Hit>> {
    let texts: Vec<&str> = hits.iter().map(|h| h.matched.text.as_str()).collect();
    let by_reranker: Vec<usize> = reranker
        .rerank(query, &texts, hits.len())?
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let first: Vec<usize> = (0..hits.len()).collect();
    Ok(rrf(&[(1.0, first), (1.0, by_reranker)], c)
        .into_iter()
        .take(k)
        .filter_map(|(i, score)| hits.get(i).map(|h| Hit { score, ..h.clone() }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores a passage by the number it ends with.
    struct ByNumber;
    impl crate::retrieve::Reranker for ByNumber {
        fn score(&self, _: &str, passages: &[&str]) -> Result<Vec<f32>> {
            Ok(passages
                .iter()
                .map(|p| p.rsplit(' ').next().unwrap_or("0").parse().unwrap_or(0.0))
                .collect())
        }
    }

    fn hits(scores: &[f32]) -> Vec<Hit> {
        scores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let chunk = Chunk {
                    text: format!("passage {s}"),
                    source: format!("doc{i}"),
                    page: None,
                    headings: vec![],
                    segment: i,
                    start: 0,
                    parent: None,
                };
                Hit {
                    collection: "c".into(),
                    chunk: chunk.clone(),
                    matched: chunk,
                    score: 0.0,
                    cosine: 0.0,
                    bm25: 0.0,
                }
            })
            .collect()
    }

    #[test]
    fn fused_reranking_combines_both_rankings() {
        // First stage: doc0, doc1, doc2, doc3; the reranker: doc3, doc1, doc2, doc0.
        let h = hits(&[1.0, 5.0, 2.0, 9.0]);
        let plain = rerank(&ByNumber, "q", h.clone(), 4).unwrap();
        let order: Vec<&str> = plain.iter().map(|h| h.chunk.source.as_str()).collect();
        assert_eq!(order, ["doc3", "doc1", "doc2", "doc0"]);
        assert_eq!(plain[0].score, 9.0);
        // RRF (c = 1): doc0 1/2 + 1/5 = 0.7, doc1 1/3 + 1/3 = 0.667,
        // doc2 1/4 + 1/4 = 0.5, doc3 1/5 + 1/2 = 0.7 (ties keep first-stage order).
        let fused = rerank_fused(&ByNumber, "q", h, 3, 1.0).unwrap();
        let order: Vec<&str> = fused.iter().map(|h| h.chunk.source.as_str()).collect();
        assert_eq!(order, ["doc0", "doc3", "doc1"]);
        assert!((fused[0].score - 0.7).abs() < 1e-6);
        assert!((fused[2].score - 2.0 / 3.0).abs() < 1e-6);
    }

    fn small_index() -> RagIndex {
        crate::testing::tiny_rag_index()
    }

    fn load_err(bytes: &[u8]) -> String {
        RagIndex::from_bytes(bytes, "x.cidx")
            .unwrap_err()
            .to_string()
    }

    /// A current-version file around `body` with a correct length and
    /// checksum, so that only the id validation can refuse it.
    fn v2_file(body: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&sha2::Sha256::digest(body));
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn index_files_round_trip_and_refuse_damage() {
        let ix = small_index();
        let bytes = ix.to_bytes().unwrap();
        assert_eq!(&bytes[8..12], &3u32.to_le_bytes());
        let back = RagIndex::from_bytes(&bytes, "x.cidx").unwrap();
        assert_eq!(back.collections["c"].files, ix.collections["c"].files);
        assert_eq!(back.collections["c"].vectors, ix.collections["c"].vectors);
        // Versions 1 (no length, no checksum) and 2 (no IVF) still load.
        let old = RagIndexV2 {
            embedder: ix.embedder.clone(),
            dim: ix.dim,
            collections: ix
                .collections
                .iter()
                .map(|(n, c)| {
                    (
                        n.clone(),
                        RagCollectionV2 {
                            files: c.files.clone(),
                            parents: c.parents.clone(),
                            children: c.children.clone(),
                            vectors: c.vectors.clone(),
                        },
                    )
                })
                .collect(),
        };
        let old_body = bincode::serialize(&old).unwrap();
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&old_body);
        let mut v2 = v2_file(&old_body);
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        for file in [v1, v2] {
            let back = RagIndex::from_bytes(&file, "x.cidx").unwrap();
            assert_eq!(back.collections["c"].files, ix.collections["c"].files);
            assert_eq!(back.collections["c"].vectors, ix.collections["c"].vectors);
            assert!(back.collections["c"].ivf.is_none());
        }
        // Every flipped byte of the body is caught by the checksum.
        for i in [HEADER_V2, HEADER_V2 + 7, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            let e = load_err(&bad);
            assert!(
                e.contains("x.cidx") && e.contains("checksum mismatch"),
                "{e}"
            );
        }
        let e = load_err(&bytes[..bytes.len() - 3]);
        assert!(e.contains("corrupt or truncated: the header gives"), "{e}");
        assert!(load_err(&bytes[..10]).contains("shorter than its header"));
        assert!(load_err(b"CAIRNRAG\x00\x00\x00\x00").contains("version 0"));
    }

    #[test]
    fn stored_ids_are_validated_on_load() {
        type Damage = fn(&mut RagCollection);
        let cases: [(&str, Damage); 5] = [
            ("lists chunk 9", |c| {
                c.files.get_mut("a").unwrap().children.push(9)
            }),
            ("lists passage 7", |c| {
                c.files.get_mut("a").unwrap().parents.push(7)
            }),
            ("points at passage Some(5)", |c| {
                c.children[1].as_mut().unwrap().parent = Some(5)
            }),
            ("lists passage 0", |c| c.parents[0] = None),
            ("vector values", |c| {
                c.vectors.pop();
            }),
        ];
        for (want, damage) in cases {
            let mut ix = small_index();
            damage(ix.collections.get_mut("c").unwrap());
            let e = load_err(&v2_file(&bincode::serialize(&ix).unwrap()));
            assert!(e.contains("x.cidx") && e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn a_crafted_length_does_not_allocate_it() {
        // The embedder name's length claims 2^60 bytes: an error, not an abort.
        let mut body = (1u64 << 60).to_le_bytes().to_vec();
        body.extend_from_slice(b"tiny");
        let e = load_err(&v2_file(&body));
        assert!(e.contains("corrupt or truncated"), "{e}");
    }

    /// `n` unit vectors in 2-D at angles spread over the half circle.
    fn fan(n: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|i| {
                let a = std::f32::consts::PI * i as f32 / n as f32;
                [a.cos(), a.sin()]
            })
            .collect()
    }

    fn fan_file(source: &str, n: usize) -> FileChunks {
        let chunk = |text: String, parent: Option<usize>| Chunk {
            text,
            source: source.into(),
            page: Some(1),
            headings: vec![],
            segment: 0,
            start: 0,
            parent,
        };
        FileChunks {
            source: source.into(),
            hash: "h".into(),
            pages: 1,
            parents: (0..n).map(|i| chunk(format!("p{i}"), None)).collect(),
            children: (0..n).map(|i| chunk(format!("c{i}"), Some(i))).collect(),
            vectors: fan(n),
        }
    }

    #[test]
    fn ivf_quantizer_narrows_dense_search_and_survives_updates() {
        let mut ix = RagIndex::new("e", 2);
        ix.add_file("c", fan_file("a", 40)).unwrap();
        let opts = SearchOptions {
            method: Method::Dense,
            candidates: 40,
            k: 40,
            ..SearchOptions::default()
        };
        let q = [1.0f32, 0.05];
        let exact = ix.search("", &q, &opts).unwrap();
        assert_eq!(exact.len(), 40);
        // Too few chunks for the cells asked for is a clear error.
        let e = ix.build_ivf("c", 41, 1).unwrap_err().to_string();
        assert!(
            e.contains("has 40 chunks, fewer than the 41 IVF cells"),
            "{e}"
        );
        ix.build_ivf("c", 4, 1).unwrap();
        let ivf = ix.collections["c"].ivf.clone().unwrap();
        assert_eq!((ivf.nlist, ivf.cells.len()), (4, 40));
        // One cell of four: only that cell's chunks, the best still first, scores exact.
        let narrow = ix.search("", &q, &opts).unwrap();
        let best = ivf.cells[0];
        let in_cell = ivf.cells.iter().filter(|&&c| c == best).count();
        assert_eq!(narrow.len(), in_cell);
        assert!(in_cell < 40);
        assert_eq!(narrow[0].chunk, exact[0].chunk);
        assert_eq!(narrow[0].cosine, exact[0].cosine);
        // All cells scanned: the exact ranking.
        ix.collections
            .get_mut("c")
            .unwrap()
            .ivf
            .as_mut()
            .unwrap()
            .nprobe = 4;
        let all = ix.search("", &q, &opts).unwrap();
        assert_eq!(
            all.iter().map(|h| &h.chunk.text).collect::<Vec<_>>(),
            exact.iter().map(|h| &h.chunk.text).collect::<Vec<_>>()
        );
        // A file added later is assigned to the trained cells; the quantizer round-trips.
        ix.add_file("c", fan_file("b", 8)).unwrap();
        assert_eq!(ix.collections["c"].ivf.as_ref().unwrap().cells.len(), 48);
        let back = RagIndex::from_bytes(&ix.to_bytes().unwrap(), "x.cidx").unwrap();
        assert_eq!(back.collections["c"].ivf, ix.collections["c"].ivf);
        // Removing a file keeps the slots (and their cells); search skips them.
        ix.remove_file("c", "a");
        let after = ix.search("", &q, &opts).unwrap();
        assert!(after.iter().all(|h| h.chunk.source == "b"));
        // A damaged cell id is refused on load, naming the chunk.
        let mut bad = ix.clone();
        bad.collections
            .get_mut("c")
            .unwrap()
            .ivf
            .as_mut()
            .unwrap()
            .cells[3] = 4;
        let e = load_err(&v2_file(&bincode::serialize(&bad).unwrap()));
        assert!(e.contains("chunk 3 is in IVF cell 4 of 4"), "{e}");
        // nlist 0 removes the quantizer.
        ix.build_ivf("c", 0, 1).unwrap();
        assert!(ix.collections["c"].ivf.is_none());
    }
}
