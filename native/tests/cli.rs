//! The `cairn` binary end to end: embed, similarity, index + search, and the
//! errors a user sees.

mod common;

use std::process::Command;

fn cairn(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("run cairn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn embed_prints_vectors_and_the_reference_cosine() {
    common::model("all-minilm-l6-v2");
    let (ok, out, err) = cairn(&[
        "embed",
        "Machine learning is transforming industries.",
        "I love hiking",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["dim"], 384);
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    // numpy reference (tests/fixtures/minilm_embeddings.json): 0.027263704
    let cos = v["cosine"][0][1].as_f64().unwrap();
    assert!((cos - 0.027263704).abs() < 5e-5, "{cos}");
    let (ok, out, _) = cairn(&[
        "similarity",
        "Machine learning is transforming industries.",
        "I love hiking",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), "0.0273");
}

#[test]
fn index_then_search_and_bad_index_files() {
    common::model("all-minilm-l6-v2");
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("texts.txt");
    std::fs::write(&texts, "How do I install R packages?\nDebian uses apt for package management.\nThe cat sat on the mat.\n").unwrap();
    let idx = dir.path().join("docs.cvec");
    let idx_s = idx.to_str().unwrap();
    for kind in ["flat", "hnsw"] {
        let _ = std::fs::remove_file(&idx);
        let (ok, out, err) = cairn(&[
            "embed",
            "--file",
            texts.to_str().unwrap(),
            "--index",
            idx_s,
            "--kind",
            kind,
        ]);
        assert!(ok, "{err}");
        assert!(
            out.contains("collection 'docs' now holds 3 vectors"),
            "{out}"
        );
        let (ok, out, err) = cairn(&[
            "search",
            "--index",
            idx_s,
            "-k",
            "2",
            "installing software on Debian",
        ]);
        assert!(ok, "{err}");
        let first = out.lines().next().unwrap();
        assert!(
            first.ends_with("docs#1  Debian uses apt for package management."),
            "{kind}: {out}"
        );
        assert_eq!(out.lines().count(), 2);
    }
    // Adding to an existing index appends.
    let (ok, out, _) = cairn(&["embed", "--index", idx_s, "A feline rested on the rug."]);
    assert!(
        ok && out.contains("now holds 4 vectors (added ids 3..4)"),
        "{out}"
    );

    // A newer format version and a truncated file are clear errors naming the file.
    let bytes = std::fs::read(&idx).unwrap();
    let mut newer = bytes.clone();
    newer[8] = 9;
    std::fs::write(&idx, &newer).unwrap();
    let (ok, _, err) = cairn(&["search", "--index", idx_s, "cat"]);
    assert!(
        !ok && err.contains(&format!("index {idx_s}: written in index format version 9")),
        "{err}"
    );
    std::fs::write(&idx, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = cairn(&["search", "--index", idx_s, "cat"]);
    assert!(!ok && err.contains("truncated"), "{err}");
}
