//! Hierarchical navigable small-world graph (Malkov & Yashunin, 2018) over
//! unit vectors, distance `1 − cosine`.
//!
//! Follows the paper and hnswlib: a node's level is drawn from
//! `⌊−ln(U)·mL⌋` with `mL = 1/ln(M)`; an insert descends greedily from the
//! entry point through the levels above its own, then at each of its levels
//! searches with `ef_construction` candidates and links to `M` of them picked
//! by the neighbour-selection heuristic (algorithm 4: a candidate is kept only
//! if it is closer to the new node than to every neighbour already kept),
//! `2·M` on level 0. A neighbour whose list overflows is pruned with the same
//! heuristic. Inserts run in parallel (rayon) with one lock per neighbour
//! list, as hnswlib does; search descends greedily, then keeps `ef`
//! candidates on level 0.
//!
//! Vectors are stored once, row-major, in insertion order; ids are row
//! numbers.

// Node ids index `links` and `data` throughout: they are ids this code
// inserted, or links a load checked (`from_parts`: every link < n, every
// node has a level, the entry point's level exists).
#![allow(clippy::indexing_slicing)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::RwLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::util::dot;

/// HNSW parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node on levels above 0 (`M`); level 0 keeps `2·M`.
    #[serde(default = "default_m")]
    pub m: usize,
    /// Candidate list size while building (higher: better graph, slower build).
    pub ef_construction: usize,
    /// Candidate list size while searching (higher: better recall, slower
    /// search); a search for `k` results uses at least `k`.
    pub ef_search: usize,
    /// Seed of the level assignment, for reproducible level structure.
    pub seed: u64,
}

fn default_m() -> usize {
    16
}

impl Default for HnswParams {
    /// hnswlib's usual choice: `M = 16`, `ef_construction = 200`, `ef_search = 100`.
    fn default() -> Self {
        Self {
            m: default_m(),
            ef_construction: 200,
            ef_search: 100,
            seed: 42,
        }
    }
}

/// A (distance, id) pair ordered by distance, then id.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// A bitset of visited nodes.
struct Visited(Vec<u64>);

impl Visited {
    fn new(n: usize) -> Self {
        Visited(vec![0; n.div_ceil(64)])
    }
    /// Marks `i`; true when it was not marked before.
    fn insert(&mut self, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        let fresh = self.0[w] & b == 0;
        self.0[w] |= b;
        fresh
    }
}

/// The graph and its vectors.
#[derive(Debug)]
pub struct Hnsw {
    dim: usize,
    params: HnswParams,
    data: Vec<f32>,
    /// `links[node][level]`: the node's neighbours on that level.
    links: Vec<Vec<RwLock<Vec<u32>>>>,
    /// Entry point and the top level.
    entry: Option<(u32, usize)>,
}

/// The graph without locks, for serialisation.
#[derive(Debug, Serialize, Deserialize)]
pub struct GraphData {
    /// `links[node][level]`.
    pub links: Vec<Vec<Vec<u32>>>,
    /// Entry point and top level.
    pub entry: Option<(u32, usize)>,
}

/// Uniform in `(0, 1]` from the seed and node index (splitmix64): the level
/// of node `i` depends only on the seed and `i`.
fn uniform(seed: u64, i: u64) -> f64 {
    let z = crate::util::splitmix64(seed.wrapping_add(i.wrapping_mul(0xBF58_476D_1CE4_E5B9)));
    // (0, 1]: never 0, so ln is finite.
    ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

impl Hnsw {
    /// An empty graph for `dim`-dimensional unit vectors.
    pub fn new(dim: usize, params: HnswParams) -> Self {
        Hnsw {
            dim,
            params: HnswParams {
                m: params.m.max(2),
                ..params
            },
            data: Vec::new(),
            links: Vec::new(),
            entry: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Row `id`'s vector.
    pub fn vector(&self, id: u32) -> &[f32] {
        let i = id as usize;
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All vectors, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    fn dist(&self, q: &[f32], id: u32) -> f32 {
        1.0 - dot(q, self.vector(id))
    }

    fn level_of(&self, id: usize) -> usize {
        let ml = 1.0 / (self.params.m as f64).ln();
        ((-uniform(self.params.seed, id as u64).ln() * ml) as usize).min(30)
    }

    fn max_links(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    fn neighbours(&self, id: u32, level: usize) -> Vec<u32> {
        self.links[id as usize]
            .get(level)
            .map(|l| l.read().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Greedy descent on one level: the closest node reachable from `ep`.
    fn greedy(&self, q: &[f32], mut ep: Near, level: usize) -> Near {
        loop {
            let mut moved = false;
            for n in self.neighbours(ep.1, level) {
                let d = self.dist(q, n);
                if d < ep.0 {
                    ep = Near(d, n);
                    moved = true;
                }
            }
            if !moved {
                return ep;
            }
        }
    }

    /// The `ef` nearest nodes found on `level` from `eps`, nearest first.
    fn search_level(&self, q: &[f32], eps: &[Near], ef: usize, level: usize) -> Vec<Near> {
        let mut visited = Visited::new(self.len());
        let mut candidates: BinaryHeap<std::cmp::Reverse<Near>> = BinaryHeap::new();
        let mut found: BinaryHeap<Near> = BinaryHeap::new();
        for &e in eps {
            if visited.insert(e.1) {
                candidates.push(std::cmp::Reverse(e));
                found.push(e);
            }
        }
        while found.len() > ef {
            found.pop();
        }
        while let Some(std::cmp::Reverse(c)) = candidates.pop() {
            if found.len() >= ef && found.peek().is_some_and(|w| c.0 > w.0) {
                break;
            }
            for n in self.neighbours(c.1, level) {
                if !visited.insert(n) {
                    continue;
                }
                let d = self.dist(q, n);
                if found.len() < ef || found.peek().is_some_and(|w| d < w.0) {
                    candidates.push(std::cmp::Reverse(Near(d, n)));
                    found.push(Near(d, n));
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        found.into_sorted_vec()
    }

    /// Algorithm 4: from `candidates` (nearest first), keep up to `m` that
    /// are each closer to the base than to any already kept.
    fn select(&self, candidates: &[Near], m: usize) -> Vec<u32> {
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        for &c in candidates {
            if kept.len() >= m {
                break;
            }
            let cv = self.vector(c.1);
            if kept.iter().all(|k| 1.0 - dot(cv, self.vector(k.1)) > c.0) {
                kept.push(c);
            }
        }
        kept.into_iter().map(|k| k.1).collect()
    }

    /// Links node `id` (its vector already stored) into the graph.
    fn insert(&self, id: u32, entry: (u32, usize)) {
        let q = self.vector(id);
        let level = self.links[id as usize].len() - 1;
        let (ep_id, top) = entry;
        let mut ep = Near(self.dist(q, ep_id), ep_id);
        for l in (level + 1..=top).rev() {
            ep = self.greedy(q, ep, l);
        }
        let mut eps = vec![ep];
        for l in (0..=level.min(top)).rev() {
            let found = self.search_level(q, &eps, self.params.ef_construction, l);
            let chosen = self.select(&found, self.params.m);
            *self.links[id as usize][l]
                .write()
                .unwrap_or_else(|e| e.into_inner()) = chosen.clone();
            let cap = self.max_links(l);
            for n in chosen {
                let mut list = self.links[n as usize][l]
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                if list.contains(&id) {
                    continue;
                }
                list.push(id);
                if list.len() > cap {
                    let nv = self.vector(n);
                    let mut cands: Vec<Near> = list
                        .iter()
                        .map(|&o| Near(1.0 - dot(nv, self.vector(o)), o))
                        .collect();
                    cands.sort();
                    *list = self.select(&cands, cap);
                }
            }
            eps = found;
        }
    }

    /// Appends unit vectors (`n × dim`, row-major) and links them in.
    pub fn add(&mut self, rows: &[f32]) {
        let start = self.len();
        let n = rows.len() / self.dim;
        self.data.extend_from_slice(rows);
        for i in start..start + n {
            let level = self.level_of(i);
            self.links
                .push((0..=level).map(|_| RwLock::new(Vec::new())).collect());
        }
        let mut next = start;
        if self.entry.is_none() && n > 0 {
            self.entry = Some((start as u32, self.links[start].len() - 1));
            next += 1;
        }
        // Insert in waves: nodes of one wave run in parallel against the
        // entry point fixed at its start; a node that tops the graph becomes
        // the entry point for the next wave. Small first waves let the graph
        // take shape before many threads share it.
        let mut wave = 64;
        while next < start + n {
            let end = (next + wave).min(start + n);
            let entry = self.entry.unwrap_or((next as u32, 0));
            let this = &*self;
            (next..end)
                .into_par_iter()
                .for_each(|i| this.insert(i as u32, entry));
            for i in next..end {
                let level = self.links[i].len() - 1;
                if self.entry.is_none_or(|(_, top)| level > top) {
                    self.entry = Some((i as u32, level));
                }
            }
            next = end;
            wave = (wave * 2).min(4096);
        }
    }

    /// The `k` nearest rows to the unit vector `q` as `(id, cosine)`, best
    /// first, searching with `max(ef, k)` candidates.
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        let Some((ep_id, top)) = self.entry else {
            return Vec::new();
        };
        let mut ep = Near(self.dist(q, ep_id), ep_id);
        for l in (1..=top).rev() {
            ep = self.greedy(q, ep, l);
        }
        self.search_level(q, &[ep], ef.max(k), 0)
            .into_iter()
            .take(k)
            .map(|n| (n.1, 1.0 - n.0))
            .collect()
    }

    /// The graph's links, for saving.
    pub fn graph(&self) -> GraphData {
        GraphData {
            links: self
                .links
                .iter()
                .map(|ls| {
                    ls.iter()
                        .map(|l| l.read().unwrap_or_else(|e| e.into_inner()).clone())
                        .collect()
                })
                .collect(),
            entry: self.entry,
        }
    }

    /// Rebuilds a graph from saved parts, checking that every link and the
    /// entry point name a stored row.
    pub fn from_parts(
        dim: usize,
        params: HnswParams,
        data: Vec<f32>,
        graph: GraphData,
    ) -> std::result::Result<Self, String> {
        let n = graph.links.len();
        if data.len() != n * dim {
            return Err(format!(
                "{} vector values for {n} graph nodes of dimension {dim}",
                data.len()
            ));
        }
        if let Some(bad) = graph
            .links
            .iter()
            .flatten()
            .flatten()
            .find(|&&l| l as usize >= n)
        {
            return Err(format!("a link points to node {bad} of {n}"));
        }
        if graph.links.iter().any(|l| l.is_empty()) {
            return Err("a node has no level".into());
        }
        match graph.entry {
            Some((e, top)) if graph.links.get(e as usize).map(Vec::len) != Some(top + 1) => {
                return Err(format!("entry point {e} (level {top}) is not in the graph"));
            }
            None if n > 0 => return Err("a non-empty graph has no entry point".into()),
            _ => {}
        }
        Ok(Hnsw {
            dim,
            params,
            data,
            links: graph
                .links
                .into_iter()
                .map(|ls| ls.into_iter().map(RwLock::new).collect())
                .collect(),
            entry: graph.entry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::pooling::normalize;

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rows = crate::util::pseudo_random(n * dim, seed);
        rows.chunks_mut(dim).for_each(normalize);
        rows
    }

    fn exact(rows: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
        let mut s: Vec<(f32, u32)> = rows
            .chunks(dim)
            .enumerate()
            .map(|(i, r)| (dot(q, r), i as u32))
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        s.into_iter().take(k).map(|x| x.1).collect()
    }

    fn recall(g: &Hnsw, rows: &[f32], dim: usize, queries: &[f32], ef: usize) -> f32 {
        let mut hit = 0;
        for q in queries.chunks(dim) {
            let truth = exact(rows, dim, q, 10);
            let got: Vec<u32> = g.search(q, 10, ef).into_iter().map(|h| h.0).collect();
            hit += truth.iter().filter(|t| got.contains(t)).count();
        }
        hit as f32 / (10 * queries.len() / dim) as f32
    }

    #[test]
    fn incremental_adds_reach_the_recall_of_one_add() {
        let (n, dim) = (3000, 24);
        let rows = unit_rows(n, dim, 11);
        let queries = unit_rows(40, dim, 12);
        let mut once = Hnsw::new(dim, HnswParams::default());
        once.add(&rows);
        let mut parts = Hnsw::new(dim, HnswParams::default());
        for chunk in rows.chunks(dim * 700) {
            parts.add(chunk);
        }
        assert_eq!((once.len(), parts.len()), (n, n));
        let (r1, r2) = (
            recall(&once, &rows, dim, &queries, 100),
            recall(&parts, &rows, dim, &queries, 100),
        );
        assert!(r1 >= 0.95 && r2 >= 0.95, "recall {r1} / {r2}");
        // Higher ef never finds less on this set; ef = k still finds most.
        assert!(recall(&once, &rows, dim, &queries, 10) >= 0.6);
        // Level-0 degree is bounded by 2·M, upper levels by M.
        let g = once.graph();
        for node in &g.links {
            assert!(node[0].len() <= 32);
            assert!(node[1..].iter().all(|l| l.len() <= 16));
        }
    }

    #[test]
    fn results_are_sorted_exact_for_tiny_sets_and_k_is_capped() {
        let dim = 4;
        let rows = unit_rows(5, dim, 3);
        let mut g = Hnsw::new(dim, HnswParams::default());
        assert!(g.search(&rows[..dim], 3, 10).is_empty());
        g.add(&rows);
        let hits = g.search(&rows[2 * dim..3 * dim], 10, 10);
        assert_eq!(hits.len(), 5);
        assert_eq!(hits[0].0, 2);
        assert!((hits[0].1 - 1.0).abs() < 1e-5);
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1));
        let truth = exact(&rows, dim, &rows[2 * dim..3 * dim], 5);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), truth);
    }

    #[test]
    fn levels_follow_the_seed_and_saved_graphs_are_checked() {
        let dim = 8;
        let rows = unit_rows(500, dim, 5);
        let mut a = Hnsw::new(dim, HnswParams::default());
        let mut b = Hnsw::new(dim, HnswParams::default());
        a.add(&rows);
        b.add(&rows);
        let (ga, gb) = (a.graph(), b.graph());
        let levels = |g: &GraphData| g.links.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(levels(&ga), levels(&gb));
        assert!(
            levels(&ga).iter().any(|&l| l > 1),
            "some node above level 0"
        );
        let back = Hnsw::from_parts(dim, a.params(), a.data().to_vec(), a.graph()).unwrap();
        assert_eq!(
            back.search(&rows[..dim], 5, 50),
            a.search(&rows[..dim], 5, 50)
        );
        let mut bad = a.graph();
        bad.links[3][0].push(9999);
        let e = Hnsw::from_parts(dim, a.params(), a.data().to_vec(), bad).unwrap_err();
        assert!(e.contains("node 9999 of 500"), "{e}");
        let e = Hnsw::from_parts(dim, a.params(), vec![0.0; 7], a.graph()).unwrap_err();
        assert!(e.contains("7 vector values"), "{e}");
    }
}
