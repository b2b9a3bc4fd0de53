//! `cairn train classify`, `cairn classify` and `cairn eval classify` end to
//! end on the real MiniLM with a small two-topic data set: the output
//! directory, resuming, the report, and the errors a user sees.

mod common;

use std::path::Path;

use common::cairn;

const PETS: [&str; 8] = [
    "My cat sleeps on the sofa all afternoon.",
    "The puppy chewed my shoes again.",
    "We adopted a kitten from the shelter.",
    "Dogs need a walk twice a day.",
    "The parrot learned to say hello.",
    "Our hamster runs on its wheel at night.",
    "I bought a new collar for the dog.",
    "The cat chased a mouse in the garden.",
];
const MONEY: [&str; 8] = [
    "The bank raised its interest rates.",
    "I paid off my credit card bill.",
    "Stocks fell sharply on Monday.",
    "She opened a savings account.",
    "The loan has a fixed monthly payment.",
    "Inflation reduced our purchasing power.",
    "He invested his bonus in bonds.",
    "The mortgage rate is three percent.",
];

fn write_jsonl(path: &Path, rows: &[(&str, &str)]) {
    let text: String = rows
        .iter()
        .map(|(t, l)| serde_json::json!({"text": t, "label": l}).to_string() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn trains_resumes_classifies_and_reports() {
    common::model("all-minilm-l6-v2");
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(&str, &str)> = PETS
        .iter()
        .map(|t| (*t, "pets"))
        .chain(MONEY.iter().map(|t| (*t, "money")))
        .collect();
    let (train, val) = (dir.path().join("train.jsonl"), dir.path().join("val.jsonl"));
    write_jsonl(&train, &rows);
    write_jsonl(
        &val,
        &[
            ("A rabbit nibbled the carrots.", "pets"),
            ("The stock market crashed.", "money"),
        ],
    );
    let out = dir.path().join("model");
    let args = |epochs: &str, resume: bool| {
        let mut a = vec![
            "train",
            "classify",
            "--data",
            train.to_str().unwrap(),
            "--val",
            val.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            epochs,
            "--batch-size",
            "8",
            "--lr",
            "1e-4",
            "--max-length",
            "32",
        ];
        if resume {
            a.push("--resume");
        }
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| cairn(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, stdout, err) = run(args("1", false));
    assert!(ok, "{err}");
    assert!(
        stdout.contains("trained 22") && stdout.contains("macro F1"),
        "{stdout}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["epoch"], 1);
    // Resume to 3 epochs: continues at epoch 2. stderr is not a terminal
    // here, so the progress and the epoch summaries go to the log instead of
    // a hidden bar.
    let out2 = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args("3", true))
        .env("CAIRN_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out2.stderr);
    assert!(out2.status.success(), "{err}");
    assert!(
        err.contains("train classify") && err.contains(" steps after "),
        "{err}"
    );
    assert!(
        err.contains("epoch 2: train loss") && err.contains("epoch 3: train loss"),
        "{err}"
    );
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("training_log.json")).unwrap()).unwrap();
    assert_eq!(log["history"].as_array().unwrap().len(), 3);
    assert_eq!(log["history"][0]["epoch"], 1);
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "training_curve.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "BertForSequenceClassification");
    assert_eq!(cfg["label2id"]["pets"], 1);

    let m = out.to_str().unwrap();
    let (ok, stdout, err) = cairn(&[
        "classify",
        "--model",
        m,
        "My dog loves the beach.",
        "Interest on the loan is due.",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["labels"][0], "pets", "{stdout}");
    assert_eq!(v[1]["labels"][0], "money", "{stdout}");
    // The GPU backend (lavapipe in CI) gives the CPU's scores.
    if cairn_core::testing::gpu_backend_or_skip().is_some() {
        let (ok, gout, err) = cairn(&[
            "classify",
            "--backend",
            "gpu",
            "--model",
            m,
            "My dog loves the beach.",
            "Interest on the loan is due.",
        ]);
        assert!(ok, "{err}");
        let g: serde_json::Value = serde_json::from_str(&gout).unwrap();
        for i in 0..2 {
            for l in ["pets", "money"] {
                let (a, b) = (
                    v[i]["scores"][l].as_f64().unwrap(),
                    g[i]["scores"][l].as_f64().unwrap(),
                );
                assert!((a - b).abs() < 1e-3, "{l}: cpu {a} gpu {b}");
            }
        }
    }
    // The report on held-out sentences (none of them trained on).
    let test = dir.path().join("test.jsonl");
    write_jsonl(
        &test,
        &[
            ("Our goldfish swims around its bowl.", "pets"),
            ("The vet vaccinated our two kittens.", "pets"),
            ("My dog barks at the mailman every morning.", "pets"),
            ("The central bank cut interest rates again.", "money"),
            ("I transferred my salary into a savings account.", "money"),
            ("Bond prices rose after the announcement.", "money"),
        ],
    );
    let (ok, stdout, err) = cairn(&[
        "eval",
        "classify",
        "--model",
        m,
        "--data",
        test.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(r["macro_f1"].as_f64().unwrap() >= 0.8, "{stdout}");
    assert_eq!(r["confusion"].as_array().unwrap().len(), 2);
    // The same report from the GPU backend (lavapipe in CI): identical
    // confusion matrix, macro-F1 within float noise.
    let (ok, gpu_out, err) = cairn(&[
        "eval",
        "classify",
        "--model",
        m,
        "--data",
        test.to_str().unwrap(),
        "--json",
        "--backend",
        "gpu",
    ]);
    if ok || cairn_core::testing::gpu_required() {
        assert!(ok, "{err}");
        let g: serde_json::Value = serde_json::from_str(&gpu_out).unwrap();
        assert_eq!(g["confusion"], r["confusion"], "{gpu_out}");
        let (a, b) = (
            r["macro_f1"].as_f64().unwrap(),
            g["macro_f1"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "cpu {a} gpu {b}");
    }

    // The classifier as a router: `ask` searches only the predicted collection.
    let ix = dir.path().join("ix.cidx");
    for (name, texts) in [("pets", &PETS), ("money", &MONEY)] {
        let f = dir.path().join(format!("{name}.txt"));
        std::fs::write(&f, texts.join("\n\n")).unwrap();
        let (ok, _, err) = cairn(&[
            "index",
            f.to_str().unwrap(),
            "--collection",
            name,
            "--index",
            ix.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
    }
    let ask = |q: &str, threshold: &str| {
        let (ok, stdout, err) = cairn(&[
            "ask",
            q,
            "--index",
            ix.to_str().unwrap(),
            "--retrieve-only",
            "--router",
            m,
            "--router-threshold",
            threshold,
        ]);
        assert!(ok, "{err}");
        let hits: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
        let mut c: Vec<String> = hits
            .iter()
            .map(|h| h["collection"].as_str().unwrap().to_string())
            .collect();
        c.sort();
        c.dedup();
        c
    };
    assert_eq!(ask("Where can I adopt a kitten?", "0.5"), vec!["pets"]);
    // Never confident enough: every collection is searched.
    assert_eq!(
        ask("Where can I adopt a kitten?", "1.01"),
        vec!["money", "pets"]
    );

    // Errors name the file and line or label.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"x\", \"label\": \"pets\"}\nnot json\n").unwrap();
    let (ok, _, err) = cairn(&[
        "eval",
        "classify",
        "--model",
        m,
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("bad.jsonl: line 2: invalid JSON"),
        "{err}"
    );
    write_jsonl(&bad, &[("x", "weather")]);
    let (ok, _, err) = cairn(&[
        "eval",
        "classify",
        "--model",
        m,
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("label 'weather', which is not one of"),
        "{err}"
    );
    let (ok, _, err) = cairn(&["classify", "--model", dir.path().to_str().unwrap(), "x"]);
    assert!(!ok && err.contains("config.json"), "{err}");
}

#[test]
fn a_cross_encoder_trains_on_sentence_pairs_and_reranks() {
    use cairn_core::retrieve::Reranker;
    let minilm = common::model("all-minilm-l6-v2");
    // Pairs are encoded with BERT's pair template and token types.
    let tok = cairn_core::tokenizer::Tokenizer::from_bytes(
        &std::fs::read(minilm.join("tokenizer.json")).unwrap(),
        "tokenizer.json",
    )
    .unwrap();
    let (ids, types) = tok.encode_pair("my cat", "the bank").unwrap();
    assert_eq!(ids, vec![101, 2026, 4937, 102, 1996, 2924, 102]);
    assert_eq!(types, vec![0, 0, 0, 0, 1, 1, 1]);

    let dir = tempfile::tempdir().unwrap();
    let queries = [
        ("Which pet needs walks?", "pets"),
        ("What did the kitten do?", "pets"),
        ("Who changed the interest rate?", "money"),
        ("How do I pay my loan?", "money"),
    ];
    let mut rows = String::new();
    for (q, topic) in queries {
        for (passages, t) in [(&PETS, "pets"), (&MONEY, "money")] {
            for p in passages.iter().take(4) {
                let labels: Vec<&str> = if t == topic { vec!["relevant"] } else { vec![] };
                rows += &(serde_json::json!({"text": q, "text_pair": p, "labels": labels})
                    .to_string()
                    + "\n");
            }
        }
    }
    let train = dir.path().join("pairs.jsonl");
    std::fs::write(&train, &rows).unwrap();
    let out = dir.path().join("reranker");
    let (ok, _, err) = cairn(&[
        "train",
        "classify",
        "--multi-label",
        "--data",
        train.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "4",
        "--batch-size",
        "8",
        "--lr",
        "1e-4",
        "--max-length",
        "48",
    ]);
    assert!(ok, "{err}");
    let r = cairn::train::load_classifier(&out, None).unwrap();
    let order = r
        .rerank(
            "Which animal chased something in the garden?",
            &[MONEY[6], PETS[7], MONEY[7]],
            3,
        )
        .unwrap();
    assert_eq!(order[0].0, 1, "{order:?}");
    assert!(order[0].1 > 0.5 && order[2].1 < 0.5, "{order:?}");
    // The report reads pairs too.
    let (ok, stdout, err) = cairn(&[
        "eval",
        "classify",
        "--model",
        out.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("relevant"), "{stdout}");
    // Pairs and single texts do not mix; a classifier with several labels is no reranker.
    std::fs::write(
        &train,
        rows + &serde_json::json!({"text": "alone", "labels": []}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = cairn(&[
        "eval",
        "classify",
        "--model",
        out.to_str().unwrap(),
        "--data",
        train.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("32 of 33 examples have a 'text_pair'"),
        "{err}"
    );
}

#[test]
fn a_listwise_cross_encoder_trains_on_query_groups() {
    use cairn_core::retrieve::Reranker;
    let dir = tempfile::tempdir().unwrap();
    let queries = [
        ("Which pet needs walks?", "pets"),
        ("What did the kitten do?", "pets"),
        ("Which animal talks?", "pets"),
        ("Where does the cat nap?", "pets"),
        ("Who changed the interest rate?", "money"),
        ("How do I pay my loan?", "money"),
        ("What happened to the stock market?", "money"),
        ("Where should I keep my savings?", "money"),
    ];
    let mut rows = String::new();
    for (i, (q, topic)) in queries.iter().enumerate() {
        let (same, other) = if *topic == "pets" {
            (&PETS, &MONEY)
        } else {
            (&MONEY, &PETS)
        };
        // One relevant passage, then three of the other topic.
        rows += &(serde_json::json!({"text": q, "text_pair": same[i % 8], "labels": ["relevant"]})
            .to_string()
            + "\n");
        for k in 0..3 {
            let p = other[(i + k) % 8];
            rows +=
                &(serde_json::json!({"text": q, "text_pair": p, "labels": []}).to_string() + "\n");
        }
    }
    let train = dir.path().join("groups.jsonl");
    std::fs::write(&train, &rows).unwrap();
    // Held-out groups: new questions whose relevant passage was never a
    // relevant one in training (only a negative of the other topic).
    let held_out = [
        ("Which bird can talk?", PETS[4]),
        ("Which pet is busy at night?", PETS[5]),
        ("What did I get for the dog?", PETS[6]),
        ("Did the bank change what it charges?", MONEY[0]),
        ("Did I clear my card debt?", MONEY[1]),
        ("Where did he put his bonus?", MONEY[6]),
    ];
    let mut val_rows = String::new();
    for (i, (q, relevant)) in held_out.iter().enumerate() {
        let other = if PETS.contains(relevant) {
            &MONEY
        } else {
            &PETS
        };
        val_rows += &(serde_json::json!({"text": q, "text_pair": relevant, "labels": ["relevant"]})
            .to_string() + "\n");
        for k in 0..3 {
            let p = other[(i + 2 * k) % 8];
            val_rows +=
                &(serde_json::json!({"text": q, "text_pair": p, "labels": []}).to_string() + "\n");
        }
    }
    let val = dir.path().join("val.jsonl");
    std::fs::write(&val, &val_rows).unwrap();
    let out = dir.path().join("reranker");
    let args = |data: &Path, extra: &[&str]| -> (bool, String, String) {
        let mut a = vec![
            "train",
            "classify",
            "--listwise",
            "--data",
            data.to_str().unwrap(),
            "--val",
            val.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "4",
            "--batch-size",
            "2",
            "--lr",
            "1e-4",
            "--max-length",
            "48",
        ];
        a.extend_from_slice(extra);
        cairn(&a)
    };
    let (ok, stdout, err) = args(&train, &[]);
    assert!(ok, "{err}");
    let mrr: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("validation MRR of the relevant candidate: "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .parse()
        .unwrap();
    assert_eq!(mrr, 1.0, "{stdout}");
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("training_log.json")).unwrap()).unwrap();
    assert_eq!(log["listwise"], true);
    assert_eq!(log["history"].as_array().unwrap().len(), 4);
    assert!(log["history"][3]["val_mrr"].as_f64().is_some(), "{log}");
    // 8 groups, 2 per batch: 4 steps an epoch.
    assert_eq!(log["history"][0]["step"], 4);
    let r = cairn::train::load_classifier(&out, None).unwrap();
    let order = r
        .rerank(
            "Which animal chased something in the garden?",
            &[MONEY[6], PETS[7], MONEY[7]],
            3,
        )
        .unwrap();
    assert_eq!(order[0].0, 1, "{order:?}");

    // `ask` reranks the first stage's hits, or fuses both rankings (RRF, c = 60).
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for (i, t) in PETS.iter().chain(MONEY.iter()).enumerate() {
        std::fs::write(docs.join(format!("{i:02}.txt")), t).unwrap();
    }
    let ix = dir.path().join("ix.cidx");
    let (ok, _, err) = cairn(&[
        "index",
        docs.to_str().unwrap(),
        "--collection",
        "all",
        "--index",
        ix.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let ask = |k: &str, extra: &[&str]| -> Vec<serde_json::Value> {
        let mut a = vec![
            "ask",
            "Which animal chased something in the garden?",
            "--index",
            ix.to_str().unwrap(),
            "--retrieve-only",
            "--candidates",
            "16",
            "--k",
            k,
        ];
        a.extend_from_slice(extra);
        let (ok, stdout, err) = cairn(&a);
        assert!(ok, "{err}");
        serde_json::from_str(&stdout).unwrap()
    };
    let reranker = ["--reranker", out.to_str().unwrap()];
    let fusion = ["--reranker", out.to_str().unwrap(), "--rerank-fusion"];
    for hits in [ask("3", &reranker), ask("3", &fusion)] {
        assert_eq!(hits.len(), 3);
        let top = hits[0]["chunk"]["text"].as_str().unwrap_or_default();
        assert!(PETS.contains(&top), "{hits:?}");
    }
    // Fused scores are Σ 1/(60 + rank) over the two rankings: the first
    // stage's (no reranker) and the reranker's, ranks counted from 1.
    let text = |h: &serde_json::Value| h["chunk"]["text"].as_str().unwrap().to_string();
    let rank_in = |hits: &[serde_json::Value], t: &str| {
        1 + hits.iter().position(|h| text(h) == t).unwrap() as u32
    };
    let (first, reranked) = (ask("16", &[]), ask("16", &reranker));
    assert_eq!(first.len(), 16);
    for h in ask("16", &fusion) {
        let t = text(&h);
        let want = 1.0 / (60.0 + rank_in(&first, &t) as f64)
            + 1.0 / (60.0 + rank_in(&reranked, &t) as f64);
        let got = h["score"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-6, "{t}: fused {got}, want {want}");
    }

    // A group with two relevant passages, and class weights, are refused.
    let two = rows.replacen("\"labels\":[]", "\"labels\":[\"relevant\"]", 1);
    std::fs::write(&train, two).unwrap();
    let (ok, _, err) = args(&train, &[]);
    assert!(!ok);
    assert!(
        err.contains("groups.jsonl") && err.contains("query group 1") && err.contains("2 relevant"),
        "{err}"
    );
    std::fs::write(&train, &rows).unwrap();
    let (ok, _, err) = args(&train, &["--class-weights", "balanced"]);
    assert!(!ok && err.contains("without class weights"), "{err}");
}
