//! Sentence-embedding throughput of all-MiniLM-L6-v2 on the CPU backend.
//! Run through `bench/scripts/embed_throughput.py`, which measures onnxruntime in the
//! same run and prints the ratio; alone:
//!
//!     cargo bench -p cairn --bench embed_throughput -- TEXTS_FILE BATCH [BATCH...]
//!
//! Prints one JSON line per batch size: `{"batch": B, "sentences_per_s": X, "texts": N}`.

use std::time::Instant;

use cairn::cache::{cache_dir, resolve_model};
use cairn::embed::load_embedder;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::embedder::EmbedderOptions;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(file) = args.first() else {
        eprintln!("usage: embed_throughput TEXTS_FILE BATCH [BATCH...]");
        std::process::exit(2);
    };
    let body = std::fs::read_to_string(file).expect("read texts");
    let texts: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    let dir =
        resolve_model("all-minilm-l6-v2", &cache_dir(None)).expect("model (run `cairn fetch`)");
    for b in args[1..].iter().filter_map(|b| b.parse::<usize>().ok()) {
        let options = EmbedderOptions {
            batch_size: b,
            ..Default::default()
        };
        let embedder = load_embedder(CpuBackend::new(), &dir, &options).expect("load");
        let _ = embedder
            .encode(&texts[..texts.len().min(b * 2)], true)
            .expect("warm-up");
        let t = Instant::now();
        let e = embedder.encode(&texts, true).expect("encode");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(e.rows, texts.len());
        println!(
            "{{\"batch\": {b}, \"sentences_per_s\": {:.2}, \"texts\": {}}}",
            texts.len() as f64 / secs,
            texts.len()
        );
    }
}
