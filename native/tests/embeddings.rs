//! Sentence embeddings against an independent float64 numpy forward pass
//! (tests/scripts/make_embedding_golden.py): the real all-MiniLM-L6-v2, and a
//! tiny DistilBERT whose checkpoint this test writes from a fixed formula.

mod common;

use std::path::Path;

use cairn::embed::load_embedder;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::embedder::{EmbedderOptions, cosine_similarity};
use serde_json::Value as Json;

fn json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Json) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn floats(v: &Json) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn minilm_matches_the_numpy_reference() {
    let golden = json(&common::fixture("minilm_embeddings.json"));
    let sentences = strings(&golden["sentences"]);
    assert!(sentences.len() >= 20);
    let embedder = load_embedder(
        CpuBackend::new(),
        &common::model("all-minilm-l6-v2"),
        &EmbedderOptions::default(),
    )
    .unwrap();
    assert_eq!(embedder.dim(), 384);
    assert_eq!(
        embedder.max_length(),
        256,
        "sentence_bert_config.json caps inputs at 256 tokens"
    );

    // One batch with lengths from 3 to 70 tokens: padding and masking are exercised.
    let emb = embedder.encode(&sentences, true).unwrap();
    for (i, s) in sentences.iter().enumerate() {
        let ids: Vec<u32> = golden["ids"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            embedder.tokenizer().encode(s, true).unwrap().ids,
            ids,
            "{s}"
        );
        let want = floats(&golden["embeddings"][i]);
        let cos = cosine_similarity(emb.row(i), &want);
        assert!(cos >= 0.9999, "{s:?}: cosine to the reference {cos}");
        let max_abs = emb
            .row(i)
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max_abs < 1e-4, "{s:?}: max abs difference {max_abs}");
    }
    // The reference's cosines to 4 decimals, and the seed's examples.
    for i in 0..sentences.len() {
        for j in 0..sentences.len() {
            let want = golden["cosine"][i][j].as_f64().unwrap() as f32;
            let got = cosine_similarity(emb.row(i), emb.row(j));
            assert!(
                (got - want).abs() < 5e-5,
                "cos({i},{j}) = {got}, reference {want}"
            );
        }
    }
    let ml_ai = cosine_similarity(emb.row(0), emb.row(1));
    let ml_hiking = cosine_similarity(emb.row(0), emb.row(2));
    assert!(
        ml_ai > 0.6 && ml_hiking < 0.15,
        "ML~AI {ml_ai}, ML~hiking {ml_hiking}"
    );

    // Batch composition does not change a sentence's vector.
    for i in [0, 7, 21] {
        let alone = embedder.encode(&[sentences[i]], true).unwrap();
        assert!(cosine_similarity(alone.row(0), emb.row(i)) > 0.99999);
    }
}

#[test]
fn pooling_options_and_matryoshka() {
    let dir = common::model("all-minilm-l6-v2");
    let texts = [
        "Machine learning is transforming industries.",
        "I love hiking",
    ];
    let mean = load_embedder(CpuBackend::new(), &dir, &EmbedderOptions::default()).unwrap();
    let raw = mean.encode(&texts, false).unwrap();
    let norm = mean.encode(&texts, true).unwrap();
    let n0 = raw.row(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (n0 - 1.0).abs() > 0.01,
        "raw mean-pooled vectors are not unit length"
    );
    assert!(cosine_similarity(raw.row(0), norm.row(0)) > 0.99999);
    let m = norm.truncate_dims(128, true).unwrap();
    assert_eq!((m.rows, m.dim), (2, 128));
    assert!((m.row(1).iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(norm.truncate_dims(0, true).is_err() && norm.truncate_dims(385, true).is_err());

    let cls = load_embedder(
        CpuBackend::new(),
        &dir,
        &EmbedderOptions {
            pooling: Some(cairn_core::models::pooling::Pooling::Cls),
            ..Default::default()
        },
    )
    .unwrap();
    let c = cls.encode(&texts, true).unwrap();
    assert!(
        cosine_similarity(c.row(0), norm.row(0)) < 0.99,
        "CLS pooling differs from mean pooling"
    );
}

#[test]
fn over_long_input_is_truncated_or_rejected() {
    let dir = common::model("all-minilm-l6-v2");
    let long = "word ".repeat(600);
    let t = load_embedder(CpuBackend::new(), &dir, &EmbedderOptions::default()).unwrap();
    assert_eq!(t.encode(&[&long], true).unwrap().rows, 1);
    let strict = load_embedder(
        CpuBackend::new(),
        &dir,
        &EmbedderOptions {
            truncate: false,
            ..Default::default()
        },
    )
    .unwrap();
    let e = strict
        .encode(&["fine", &long], true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("text #1 has 602 tokens, more than the maximum of 256"),
        "{e}"
    );
}

/// Writes a safetensors file (header JSON + little-endian data).
#[test]
fn tiny_distilbert_matches_the_numpy_reference() {
    let golden = json(&common::fixture("tiny_distilbert_embeddings.json"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), golden["config"].to_string()).unwrap();
    std::fs::copy(
        common::model("all-minilm-l6-v2").join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let mut tensors = Vec::new();
    for (k, t) in golden["tensors"].as_array().unwrap().iter().enumerate() {
        let name = t[0].as_str().unwrap().to_string();
        let shape: Vec<usize> = t[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let n: usize = shape.iter().product();
        let ln = name.ends_with("LayerNorm.weight") || name.ends_with("layer_norm.weight");
        let vals = (0..n).map(|i| {
            let v = ((((i as i64 * 7919 + k as i64 * 104729) % 10007) as f64 / 10007.0 - 0.5) * 0.4)
                as f32;
            if ln { v + 1.0 } else { v }
        });
        let (dtype, data): (&str, Vec<u8>) = if name == "embeddings.word_embeddings.weight" {
            (
                "F16",
                vals.flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
            )
        } else {
            ("F32", vals.flat_map(f32::to_le_bytes).collect())
        };
        tensors.push((name, shape, dtype, data));
    }
    common::write_safetensors(&dir.path().join("model.safetensors"), &tensors);

    let embedder =
        load_embedder(CpuBackend::new(), dir.path(), &EmbedderOptions::default()).unwrap();
    let sentences = strings(&golden["sentences"]);
    let emb = embedder.encode(&sentences, true).unwrap();
    for (i, s) in sentences.iter().enumerate() {
        let want = floats(&golden["embeddings"][i]);
        let cos = cosine_similarity(emb.row(i), &want);
        assert!(cos >= 0.9999, "{s:?}: cosine {cos}");
    }
}

#[test]
fn broken_model_files_give_clear_errors() {
    let src = common::model("all-minilm-l6-v2");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let load = || {
        load_embedder(CpuBackend::new(), dir.path(), &EmbedderOptions::default())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };

    // Truncated weights.
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .unwrap();
    let e = load();
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );
    // Garbage weights.
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"definitely not safetensors",
    )
    .unwrap();
    let e = load();
    assert!(e.contains("safetensors model.safetensors"), "{e}");
    std::fs::write(dir.path().join("model.safetensors"), &weights).unwrap();

    // Unsupported architecture.
    let config = std::fs::read_to_string(src.join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"bert\"", "\"gpt2\""),
    )
    .unwrap();
    let e = load();
    assert!(
        e.contains("config.json: model_type 'gpt2' is not supported"),
        "{e}"
    );
    std::fs::write(dir.path().join("config.json"), &config).unwrap();

    // A tokenizer.json that does not parse.
    std::fs::write(dir.path().join("tokenizer.json"), b"{\"version\": 1").unwrap();
    let e = load();
    assert!(
        e.contains("tokenizer.json is not a valid tokenizer.json"),
        "{e}"
    );

    // Missing file.
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let e = load();
    assert!(
        e.contains("tokenizer.json") && e.contains("No such file"),
        "{e}"
    );
}
