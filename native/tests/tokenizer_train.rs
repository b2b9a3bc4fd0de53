//! Tokenizer training against Python `tokenizers` 0.23.3
//! (tests/fixtures/tokenizer_train_golden.json, made by
//! tests/scripts/make_tokenizer_train_golden.py on
//! tests/fixtures/tokenizer_train_corpus.txt).

mod common;

use cairn_core::tokenizer::train::{TokenizerTrainConfig, train_tokenizer};
use serde_json::Value;

fn golden() -> Value {
    let text = std::fs::read_to_string(common::fixture("tokenizer_train_golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn corpus() -> String {
    std::fs::read_to_string(common::fixture("tokenizer_train_corpus.txt")).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn texts() -> Vec<String> {
    let g: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("tokenizer_golden.json")).unwrap(),
    )
    .unwrap();
    g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn byte_level_bpe_learns_the_reference_vocabulary_and_merges() {
    let g = golden();
    let corpus = corpus();
    let cfg = TokenizerTrainConfig::byte_level_bpe(1000);
    let t = train_tokenizer(corpus.split_inclusive('\n'), &cfg).unwrap();
    let want = strings(&g["bpe_reference"]["tokens"]);
    assert_eq!(t.vocab.len(), 1000);
    for (i, (a, b)) in t.vocab.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "token {i}");
    }
    let merges: Vec<String> = t.merges.iter().map(|(a, b)| format!("{a} {b}")).collect();
    assert_eq!(merges, strings(&g["bpe_reference"]["merges"]));
}

#[test]
fn wordpiece_learns_the_reference_vocabulary() {
    let g = golden();
    let corpus = corpus();
    let t = train_tokenizer(
        corpus.split_inclusive('\n'),
        &TokenizerTrainConfig::wordpiece(1000),
    )
    .unwrap();
    let want = strings(&g["wordpiece_reference"]["tokens"]);
    // Special tokens and the alphabet have the same ids; the `##c` pieces are
    // numbered in a different (reproducible) order, so compare as sets.
    assert_eq!(t.vocab[..5], want[..5]);
    let (mine, theirs): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
        (t.vocab.iter().collect(), want.iter().collect());
    let only_mine: Vec<_> = mine.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&mine).collect();
    assert!(
        only_mine.is_empty() && only_theirs.is_empty(),
        "only cairn: {only_mine:?}; only tokenizers: {only_theirs:?}"
    );
}

#[test]
fn trained_files_load_in_python_tokenizers_with_identical_ids() {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    let corpus = common::fixture("tokenizer_train_corpus.txt");
    let texts = texts();
    assert_eq!(texts.len(), 1000);
    for kind in ["bpe", "wordpiece"] {
        let out = dir.path().join(format!("{kind}.json"));
        let (ok, stdout, err) = common::cairn(&[
            "train",
            "tokenizer",
            "--kind",
            kind,
            "--vocab-size",
            "1000",
            "--min-frequency",
            "2",
            "--output",
            out.to_str().unwrap(),
            corpus.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
        assert!(
            stdout.contains(if kind == "bpe" {
                "1000 tokens (743 merges)"
            } else {
                "1534 tokens"
            }),
            "{stdout}"
        );
        // The ids Python `tokenizers` gave loading this very file (same
        // training, deterministic) are the ids cairn gives.
        let tok = cairn_core::tokenizer::Tokenizer::from_bytes(
            &std::fs::read(&out).unwrap(),
            out.to_str().unwrap(),
        )
        .unwrap();
        let want = g[format!("{kind}_cairn_ids")].as_array().unwrap();
        for (i, (text, ids)) in texts.iter().zip(want).enumerate() {
            let got = tok.encode(text, false).unwrap().ids;
            let want: Vec<u32> = ids
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(got, want, "{kind} string {i}: {text:?}");
        }
    }
    // Bad input: a non-UTF-8 file is named.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"ok\n\xff\xfe\n").unwrap();
    let (ok, _, err) = common::cairn(&[
        "train",
        "tokenizer",
        "--output",
        dir.path().join("x.json").to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("bad.txt: not UTF-8 text (invalid byte at offset 3)"),
        "{err}"
    );
}
