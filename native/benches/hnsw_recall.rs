//! HNSW (cairn's own, `cairn_core::retrieve::hnsw`) against exact flat search: recall@10, build time and
//! queries per second, on random unit vectors.
//!
//!     cargo bench -p cairn --bench hnsw_recall -- [N] [DIM] [QUERIES]
//!     cargo bench -p cairn --bench hnsw_recall -- FLAT_INDEX.cvec [QUERIES]
//!
//! Defaults: 100,000 × 384 random vectors, 200 queries; comma lists in
//! `CAIRN_HNSW_M` (16), `CAIRN_HNSW_EFC` (ef_construction, 200) and
//! `CAIRN_HNSW_EF` (ef_search, 10,50,100,200,400) pick the grid: one build per
//! (M, ef_construction), every ef_search against it. Random vectors are the
//! hard case for HNSW (no cluster structure). With a flat index file (real
//! embeddings, see bench/scripts/hnsw_recall_real.sh) the last QUERIES vectors are held
//! out as queries and the rest are indexed.

use std::time::Instant;

use cairn_core::retrieve::dense::{
    AnyIndex, Collection, FlatIndex, HnswIndex, HnswParams, VectorIndex, recall_at_k,
};

fn random_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    cairn_core::util::pseudo_random(n * dim, seed)
}

/// `(rows, queries, n, dim, label)` from a flat index file, holding out the last `nq` vectors.
fn from_index(path: &str, nq: usize) -> (Vec<f32>, Vec<f32>, usize, usize, String) {
    let bytes = std::fs::read(path).expect("read index");
    let c = Collection::from_bytes(&bytes, path).expect("parse index");
    let AnyIndex::Flat(flat) = &c.index else {
        panic!("{path} is not a flat index")
    };
    let (total, dim) = (flat.len(), flat.dim());
    let n = total - nq;
    let all: Vec<f32> = (0..total as u32)
        .flat_map(|i| flat.vector(i).expect("row").to_vec())
        .collect();
    let (rows, queries) = all.split_at(n * dim);
    (
        rows.to_vec(),
        queries.to_vec(),
        n,
        dim,
        format!("{} ({})", c.name, path),
    )
}

fn main() {
    let raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (rows, queries, n, dim, label) = if raw.first().is_some_and(|a| a.ends_with(".cvec")) {
        let nq = raw.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
        from_index(&raw[0], nq)
    } else {
        let args: Vec<usize> = raw.iter().filter_map(|a| a.parse().ok()).collect();
        let n = args.first().copied().unwrap_or(100_000);
        let dim = args.get(1).copied().unwrap_or(384);
        let nq = args.get(2).copied().unwrap_or(200);
        (
            random_rows(n, dim, 1),
            random_rows(nq, dim, 2),
            n,
            dim,
            "random vectors".to_string(),
        )
    };
    let nq = queries.len() / dim;
    let payloads = || vec![String::new(); n];
    println!("{label}: {n} indexed, {nq} queries");

    let mut flat = FlatIndex::new(dim);
    flat.add(&rows, payloads()).expect("flat add");
    let t = Instant::now();
    let exact: Vec<_> = queries
        .chunks(dim)
        .map(|q| flat.search(q, 10).expect("flat search"))
        .collect();
    let flat_qps = nq as f64 / t.elapsed().as_secs_f64();

    let list = |var: &str, default: &[usize]| -> Vec<usize> {
        std::env::var(var)
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_else(|| default.to_vec())
    };
    let ms = list("CAIRN_HNSW_M", &[16]);
    let efcs = list("CAIRN_HNSW_EFC", &[200]);
    let efs = list("CAIRN_HNSW_EF", &[10, 50, 100, 200, 400]);
    for &m in &ms {
        for &efc in &efcs {
            let params = HnswParams {
                m,
                ef_construction: efc,
                ef_search: 100,
                seed: 42,
            };
            let mut hnsw = HnswIndex::new(dim, params);
            let t = Instant::now();
            hnsw.add(&rows, payloads()).expect("hnsw add");
            let build = t.elapsed().as_secs_f64();
            for &ef in &efs {
                let t = Instant::now();
                let approx: Vec<_> = queries
                    .chunks(dim)
                    .map(|q| hnsw.search_ef(q, 10, ef).expect("hnsw search"))
                    .collect();
                let qps = nq as f64 / t.elapsed().as_secs_f64();
                let recall = exact
                    .iter()
                    .zip(&approx)
                    .map(|(e, a)| recall_at_k(e, a))
                    .sum::<f32>()
                    / nq as f32;
                println!(
                    "n={n} dim={dim} M={m} ef_construction={efc} ef_search={ef}: recall@10 {recall:.4}, build {build:.1} s, HNSW {qps:.0} q/s vs exact {flat_qps:.0} q/s ({:.1}x)",
                    qps / flat_qps
                );
            }
        }
    }
}
