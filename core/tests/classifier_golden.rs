//! Sequence classifiers written by transformers' `save_pretrained` load in
//! cairn and give transformers' logits; what cairn exports has the same
//! names, shapes and values. Fixtures: tests/scripts/make_classifier_golden.py.

use std::path::PathBuf;

use cairn_core::backend::Backend;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::safetensors::write_f32;
use cairn_core::formats::tensors::SafeTensors;
use cairn_core::models::classifier::{
    ClassifierConfig, ProblemType, SequenceClassifier, predict_row,
};

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny_cls")
        .join(name)
}

fn golden() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir("golden.json")).unwrap()).unwrap()
}

fn flat_u32(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
        })
        .collect()
}

/// Rows of numbers as one flat f32 vector.
fn flat_f32(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn transformers_classifiers_give_their_logits() {
    let g = golden();
    let (ids, mask) = (flat_u32(&g["ids"]), flat_u32(&g["mask"]));
    let (batch, seq) = (3, ids.len() / 3);
    for (name, problem) in [
        ("bert", ProblemType::SingleLabel),
        ("distilbert", ProblemType::MultiLabel),
    ] {
        let config =
            ClassifierConfig::from_json(&std::fs::read(dir(name).join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config.labels, vec!["alpha", "beta", "gamma"]);
        assert_eq!(config.problem_type, problem);
        let bytes = std::fs::read(dir(name).join("model.safetensors")).unwrap();
        let st = SafeTensors::parse(&bytes, "model.safetensors").unwrap();
        let b = CpuBackend::new();
        let model = SequenceClassifier::load(b.clone(), config.clone(), &st).unwrap();
        let logits =
            pollster::block_on(b.read_f32(&model.forward(&ids, &mask, batch, seq).unwrap()))
                .unwrap();
        let want = flat_f32(&g[name]);
        let worst = max_diff(&want, &logits);
        assert!(
            worst < 1e-4,
            "{name}: logits differ from transformers by {worst}"
        );
        let p = predict_row(&config, &logits[..3]);
        match problem {
            ProblemType::SingleLabel => assert!((p.scores.iter().sum::<f32>() - 1.0).abs() < 1e-6),
            ProblemType::MultiLabel => assert!(p.scores.iter().all(|s| (0.0..=1.0).contains(s))),
        }

        // Export: the same names, shapes and values as the file.
        let exported = pollster::block_on(model.export()).unwrap();
        let names: Vec<&str> = st.names().collect();
        assert_eq!(exported.len(), names.len(), "{name}: {names:?}");
        for (n, shape, values) in &exported {
            let (orig, oshape) = st.f32(n).unwrap();
            assert_eq!(&oshape, shape, "{n}");
            assert_eq!(&orig, values, "{n}");
        }
        let rewritten = write_f32(&exported, &Default::default()).unwrap();
        let again = SafeTensors::parse(&rewritten, "again.safetensors").unwrap();
        assert_eq!(again.names().collect::<Vec<_>>(), names);
    }
}

#[test]
fn sentence_pairs_use_token_types_as_transformers_does() {
    let g = golden();
    let (ids, mask, types) = (
        flat_u32(&g["ids"]),
        flat_u32(&g["mask"]),
        flat_u32(&g["types"]),
    );
    let config =
        ClassifierConfig::from_json(&std::fs::read(dir("bert").join("config.json")).unwrap())
            .unwrap();
    let bytes = std::fs::read(dir("bert").join("model.safetensors")).unwrap();
    let st = SafeTensors::parse(&bytes, "model.safetensors").unwrap();
    let b = CpuBackend::new();
    let model = SequenceClassifier::load(b.clone(), config, &st).unwrap();
    let seq = ids.len() / 3;
    let logits =
        pollster::block_on(b.read_f32(&model.forward_pairs(&ids, &types, &mask, 3, seq).unwrap()))
            .unwrap();
    let want = flat_f32(&g["bert_typed"]);
    let worst = max_diff(&want, &logits);
    assert!(
        worst < 1e-4,
        "typed logits differ from transformers by {worst}"
    );
    // Types matter: without them the logits are far further from transformers'.
    let untyped =
        pollster::block_on(b.read_f32(&model.forward(&ids, &mask, 3, seq).unwrap())).unwrap();
    let off = max_diff(&want, &untyped);
    eprintln!("typed: max |Δ| {worst}; untyped: {off}");
    assert!(
        off > 20.0 * worst,
        "token types change nothing ({off} vs {worst})"
    );
    // A wrong count of types is named.
    let e = model
        .forward_pairs(&ids, &types[1..], &mask, 3, seq)
        .unwrap_err()
        .to_string();
    assert!(e.contains("20 token types for batch 3 × seq 7"), "{e}");
}

#[test]
fn mismatched_classifier_files_are_named_errors() {
    let cfg = std::fs::read(dir("bert").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    // Four labels against a three-row classifier weight.
    v["id2label"]["3"] = "delta".into();
    let config = ClassifierConfig::from_json(v.to_string().as_bytes()).unwrap();
    let bytes = std::fs::read(dir("bert").join("model.safetensors")).unwrap();
    let st = SafeTensors::parse(&bytes, "model.safetensors").unwrap();
    let e = SequenceClassifier::load(CpuBackend::new(), config, &st)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "model.safetensors: tensor 'classifier.weight' has shape [3, 16], the config implies [4, 16]"
    );
    v.as_object_mut().unwrap().remove("id2label");
    let e = ClassifierConfig::from_json(v.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field 'id2label'"), "{e}");
    v["id2label"] = serde_json::json!({"0": "a", "5": "b"});
    let e = ClassifierConfig::from_json(v.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("id2label key '5' is not an id in 0..2"), "{e}");
    v["id2label"] = serde_json::json!({"0": "a", "1": "b"});
    v["problem_type"] = "regression".into();
    let e = ClassifierConfig::from_json(v.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("problem_type 'regression' is not supported"),
        "{e}"
    );
}

#[test]
fn the_gpu_backend_gives_the_same_logits() {
    let Some(gpu) = cairn_core::testing::gpu_backend_or_skip() else {
        return;
    };
    let g = golden();
    let (ids, mask) = (flat_u32(&g["ids"]), flat_u32(&g["mask"]));
    for name in ["bert", "distilbert"] {
        let config =
            ClassifierConfig::from_json(&std::fs::read(dir(name).join("config.json")).unwrap())
                .unwrap();
        let bytes = std::fs::read(dir(name).join("model.safetensors")).unwrap();
        let st = SafeTensors::parse(&bytes, "model.safetensors").unwrap();
        let model = SequenceClassifier::load(gpu.clone(), config, &st).unwrap();
        let logits = pollster::block_on(
            gpu.read_f32(&model.forward(&ids, &mask, 3, ids.len() / 3).unwrap()),
        )
        .unwrap();
        let want = flat_f32(&g[name]);
        let worst = max_diff(&want, &logits);
        assert!(
            worst < 1e-3,
            "{name} on the GPU: logits differ from transformers by {worst}"
        );
    }
}

/// An XLM-RoBERTa cross-encoder (bge-reranker-base's layout) with a Unigram
/// tokenizer: pair ids equal Python `tokenizers`', hidden states and logits
/// equal transformers' (positions counted from pad_token_id + 1), the
/// reranker scores follow the logits, and the export round-trips.
#[test]
fn xlm_roberta_cross_encoder_matches_transformers() {
    use cairn_core::classify::{ClassifierFiles, TextClassifier};
    use cairn_core::retrieve::Reranker;
    let g: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir("xlmr_golden.json")).unwrap()).unwrap();
    let read = |f: &str| std::fs::read(dir("xlmr").join(f)).unwrap();
    let (config, weights, tokenizer) = (
        read("config.json"),
        read("model.safetensors"),
        read("tokenizer.json"),
    );
    let files = ClassifierFiles {
        config: &config,
        weights: &weights,
        tokenizer: &tokenizer,
    };
    let tc = TextClassifier::from_files(CpuBackend::new(), files, None).unwrap();
    let model = tc.model();
    // Positions start at pad_token_id + 1 = 2: 78 of the 80 rows are usable.
    assert_eq!(model.config().encoder.max_tokens(), 78);
    let pairs: Vec<(String, String)> = g["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    let tok = cairn_core::tokenizer::Tokenizer::from_bytes(&tokenizer, "tokenizer.json").unwrap();
    let want_ids: Vec<Vec<u32>> = g["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    for ((a, b), want) in pairs.iter().zip(&want_ids) {
        assert_eq!(&tok.encode_pair(a, b).unwrap().0, want, "{a:?} / {b:?}");
    }
    // Padded batch (pad id 1, right padding), as the golden was computed.
    let width = want_ids.iter().map(Vec::len).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for row in &want_ids {
        ids.extend(
            row.iter()
                .copied()
                .chain(std::iter::repeat_n(1, width - row.len())),
        );
        mask.extend(
            std::iter::repeat_n(1u32, row.len()).chain(std::iter::repeat_n(0, width - row.len())),
        );
    }
    let b = CpuBackend::new();
    let n = want_ids.len();
    let hidden =
        pollster::block_on(b.read_f32(&model.encoder().forward(&ids, &mask, n, width).unwrap()))
            .unwrap();
    let h = 32;
    let mut worst = 0f32;
    for (r, rows) in g["hidden"].as_array().unwrap().iter().enumerate() {
        for (t, v) in rows.as_array().unwrap().iter().enumerate() {
            let got = &hidden[(r * width + t) * h..(r * width + t + 1) * h];
            worst = worst.max(max_diff(&flat_f32(&serde_json::json!([v])), got));
        }
    }
    assert!(worst < 1e-4, "hidden states differ by {worst}");
    let logits =
        pollster::block_on(b.read_f32(&model.forward(&ids, &mask, n, width).unwrap())).unwrap();
    let want_logits: Vec<f32> = g["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let d = max_diff(&want_logits, &logits);
    assert!(
        d < 1e-5,
        "logits differ by {d}: {logits:?} vs {want_logits:?}"
    );
    // One label and no problem_type (as bge-reranker's config): the score is
    // the logit's sigmoid (sentence-transformers' CrossEncoder), not a
    // one-label softmax that would be 1 for every pair.
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let scores: Vec<f32> = tc
        .predict_pairs(&refs)
        .unwrap()
        .into_iter()
        .map(|p| p.scores[0])
        .collect();
    let sigmoid: Vec<f32> = want_logits
        .iter()
        .map(|l| 1.0 / (1.0 + (-l).exp()))
        .collect();
    assert!(
        max_diff(&scores, &sigmoid) < 1e-5,
        "{scores:?} vs {sigmoid:?}"
    );
    let reranked = tc.score(&pairs[0].0, &[pairs[0].1.as_str()]).unwrap();
    assert!((reranked[0] - sigmoid[0]).abs() < 1e-5);
    // Export: the names transformers wrote, with their values.
    let st = SafeTensors::parse(&weights, "model.safetensors").unwrap();
    let exported = pollster::block_on(model.export()).unwrap();
    for (name, shape, values) in &exported {
        let (orig, oshape) = st.f32(name).unwrap();
        assert_eq!(&oshape, shape, "{name}");
        assert_eq!(&orig, values, "{name}");
    }
}
