//! `cairn train lora`, `--adapter` and `cairn merge` end to end on the real
//! SmolLM2-135M (Q4_1 base kept quantized): a few SFT steps at a high
//! learning rate change greedy generation; the adapter is in PEFT's layout;
//! merged weights give the unmerged adapter's output; bad adapters are named.

mod common;

use common::cairn;

#[test]
fn trains_applies_and_merges_an_adapter() {
    common::model("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sft.jsonl");
    let row = serde_json::json!({"prompt": "What is the password?", "completion": "The password is zebra-42."});
    std::fs::write(&data, format!("{row}\n{row}\n")).unwrap();
    let out = dir.path().join("adapter");
    let (ok, stdout, err) = cairn(&[
        "train",
        "lora",
        "--data",
        data.to_str().unwrap(),
        "--val",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--r",
        "4",
        "--target-modules",
        "q_proj,v_proj,down_proj",
        "--lr",
        "1e-3",
        "--schedule",
        "constant",
        "--warmup-ratio",
        "0",
        "--epochs",
        "4",
        "--no-packing",
        "--seq-len",
        "64",
    ]);
    assert!(ok, "{err}");
    // PEFT's print_trainable_parameters: r·(in + out) per module and layer:
    // 30 layers × 4 × ((576 + 576) + (576 + 192) + (1536 + 576)).
    assert!(stdout.contains("trainable params: 483840 ||"), "{stdout}");
    let ppl: Vec<f64> = stdout
        .lines()
        .find(|l| l.starts_with("validation perplexity"))
        .unwrap_or_else(|| panic!("{stdout}"))
        .split(": ")
        .nth(1)
        .unwrap()
        .split(" → ")
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert!(ppl[1] < ppl[0] * 0.5, "perplexity {ppl:?}");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["r"], 4);
    let st = std::fs::read(out.join("adapter_model.safetensors")).unwrap();
    let st = cairn_core::formats::tensors::SafeTensors::parse(&st, "a").unwrap();
    assert_eq!(
        st.shape("base_model.model.model.layers.29.mlp.down_proj.lora_B.weight"),
        Some(vec![576, 4])
    );

    let generate = |extra: &[&str]| {
        let mut a = vec!["generate", "--chat", "--max-new-tokens", "8"];
        a.extend_from_slice(extra);
        a.push("What is the password?");
        let (ok, out, err) = cairn(&a);
        assert!(ok, "{err}");
        out
    };
    let base = generate(&[]);
    let adapted = generate(&["--adapter", out.to_str().unwrap()]);
    assert_ne!(base, adapted, "the adapter does not change generation");
    assert!(adapted.contains("zebra"), "{adapted}");

    let merged = dir.path().join("merged.gguf");
    let (ok, _, err) = cairn(&[
        "merge",
        "--adapter",
        out.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--type",
        "f32",
    ]);
    assert!(ok, "{err}");
    assert_eq!(generate(&["--model", merged.to_str().unwrap()]), adapted);

    // `ask --adapter`: the same adapter on the RAG answer.
    let doc = dir.path().join("vault.txt");
    std::fs::write(
        &doc,
        "The password of the vault is kept by the guard at the north gate.",
    )
    .unwrap();
    let ix = dir.path().join("ix.cidx");
    let (ok, _, err) = cairn(&[
        "index",
        doc.to_str().unwrap(),
        "--collection",
        "vault",
        "--index",
        ix.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let ask = |extra: &[&str]| {
        let mut a = vec![
            "ask",
            "--index",
            ix.to_str().unwrap(),
            "--max-new-tokens",
            "12",
        ];
        a.extend_from_slice(extra);
        a.push("What is the password?");
        let (ok, out, err) = cairn(&a);
        assert!(ok, "{err}");
        out
    };
    let (base, adapted) = (ask(&[]), ask(&["--adapter", out.to_str().unwrap()]));
    // (Trained on a bare prompt, the adapter does not say "zebra" inside the
    // RAG prompt, but it is applied: the answer is the merged model's, whose
    // merge is checked against transformers + PEFT in peft_interop.rs.)
    assert_ne!(base, adapted, "ask --adapter did not change the answer");
    assert_eq!(ask(&["--model", merged.to_str().unwrap()]), adapted);

    // An adapter whose tensors do not fit its config.
    let mut bad: serde_json::Value = cfg.clone();
    bad["r"] = 8.into();
    std::fs::write(out.join("adapter_config.json"), bad.to_string()).unwrap();
    let (ok, _, err) = cairn(&["generate", "--adapter", out.to_str().unwrap(), "hi"]);
    assert!(
        !ok && err.contains("lora_A.weight' has shape [4, 576]") && err.contains("r = 8"),
        "{err}"
    );
    let (ok, _, err) = cairn(&[
        "ask",
        "--index",
        ix.to_str().unwrap(),
        "--adapter",
        out.to_str().unwrap(),
        "What is the password?",
    ]);
    assert!(!ok && err.contains("r = 8"), "{err}");
}
