//! IVF-Flat and IVF-PQ (`cairn_core::retrieve::ivf`) and exact flat search:
//! recall@10, training/adding time and queries per second, on vectors read
//! from raw little-endian f32 files — the same files FAISS reads in
//! `bench/scripts/ivf_vs_faiss.py`, which runs this and prints the ratios.
//!
//!     cargo bench -p cairn --bench ivf_recall -- run BASE.f32 QUERIES.f32 DIM NLIST PQ_M NPROBE[,NPROBE…]
//!     cargo bench -p cairn --bench ivf_recall -- export INDEX.cidx BASE.f32 QUERIES.f32 NQ
//!
//! `export` writes every live chunk vector of a RAG index (`cairn index`),
//! holding out every n/NQ-th one as a query.
//!
//! Output lines are `key=value` pairs, one measurement per line.

use std::time::Instant;

use cairn_core::rag::index::RagIndex;
use cairn_core::retrieve::dense::{FlatIndex, Hit, IvfIndex, IvfParams, VectorIndex, recall_at_k};

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn write_f32(path: &str, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {path}: {e}"));
}

fn export(args: &[String]) {
    let [index, base, queries, nq] = args else {
        panic!("export INDEX.cidx BASE.f32 QUERIES.f32 NQ")
    };
    let nq: usize = nq.parse().expect("NQ");
    let bytes = std::fs::read(index).expect("read index");
    let ix = RagIndex::from_bytes(&bytes, index).expect("parse index");
    let d = ix.dim;
    let mut all = Vec::new();
    for c in ix.collections.values() {
        for (i, child) in c.children.iter().enumerate() {
            if child.is_some() {
                all.extend_from_slice(&c.vectors[i * d..(i + 1) * d]);
            }
        }
    }
    let total = all.len() / d;
    let step = (total / nq.max(1)).max(1);
    let (mut b, mut q) = (Vec::new(), Vec::new());
    for (i, row) in all.chunks(d).enumerate() {
        if i % step == step - 1 && q.len() < nq * d {
            q.extend_from_slice(row);
        } else {
            b.extend_from_slice(row);
        }
    }
    write_f32(base, &b);
    write_f32(queries, &q);
    println!("exported n={} queries={} dim={d}", b.len() / d, q.len() / d);
}

fn ids(h: &[Hit]) -> Vec<u32> {
    h.iter().map(|h| h.id).collect()
}

fn run(args: &[String]) {
    let [base, queries, dim, nlist, pq_m, nprobes] = args else {
        panic!("run BASE.f32 QUERIES.f32 DIM NLIST PQ_M NPROBE[,NPROBE…]")
    };
    let d: usize = dim.parse().expect("DIM");
    let nlist: usize = nlist.parse().expect("NLIST");
    let pq_m: usize = pq_m.parse().expect("PQ_M");
    let nprobes: Vec<usize> = nprobes
        .split(',')
        .map(|p| p.parse().expect("NPROBE"))
        .collect();
    let (xb, xq) = (read_f32(base), read_f32(queries));
    let (n, nq) = (xb.len() / d, xq.len() / d);
    let payloads = || vec![String::new(); n];

    let mut flat = FlatIndex::new(d);
    flat.add(&xb, payloads()).expect("flat add");
    let t = Instant::now();
    let truth: Vec<Vec<Hit>> = xq
        .chunks(d)
        .map(|q| flat.search(q, 10).expect("flat"))
        .collect();
    let one = nq as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let batch = flat.search_batch(&xq, 10).expect("flat batch");
    let batched = nq as f64 / t.elapsed().as_secs_f64();
    let agree = batch
        .iter()
        .zip(&truth)
        .map(|(a, b)| recall_at_k(b, a))
        .sum::<f32>()
        / nq as f32;
    println!(
        "side=cairn index=flat n={n} dim={d} qps_one={one:.1} qps_batch={batched:.1} batch_recall={agree:.4}"
    );

    for m in [0, pq_m] {
        let params = IvfParams {
            nlist,
            nprobe: 1,
            pq_m: m,
            ..IvfParams::default()
        };
        let mut ivf = IvfIndex::new(d, params).expect("params");
        let t = Instant::now();
        ivf.train(&xb).expect("train");
        let train = t.elapsed().as_secs_f64();
        let t = Instant::now();
        ivf.add(&xb, payloads()).expect("add");
        let add = t.elapsed().as_secs_f64();
        let kind = if m == 0 {
            "ivfflat".to_string()
        } else {
            format!("ivfpq{m}")
        };
        for &p in &nprobes {
            ivf.set_nprobe(p);
            let t = Instant::now();
            let got: Vec<Vec<Hit>> = xq
                .chunks(d)
                .map(|q| ivf.search(q, 10).expect("search"))
                .collect();
            let one = nq as f64 / t.elapsed().as_secs_f64();
            let t = Instant::now();
            let batch = ivf.search_batch(&xq, 10).expect("batch");
            let batched = nq as f64 / t.elapsed().as_secs_f64();
            // The batch's coarse scores come from a GEMM: a near-tie between
            // two cells may order differently than the one-by-one dot products.
            let same = batch
                .iter()
                .zip(&got)
                .filter(|(a, b)| ids(a) == ids(b))
                .count();
            let recall = got
                .iter()
                .zip(&truth)
                .map(|(g, e)| recall_at_k(e, g))
                .sum::<f32>()
                / nq as f32;
            println!(
                "side=cairn index={kind} nlist={nlist} nprobe={p} recall10={recall:.4} qps_one={one:.1} qps_batch={batched:.1} train_s={train:.2} add_s={add:.2} batch_same={same}/{nq}"
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.first().map(String::as_str) {
        Some("export") => export(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => eprintln!("usage: ivf_recall run … | export … (see the file's docs)"),
    }
}
