//! The `cairn` binary end to end: embed, similarity, index + search, and the
//! errors a user sees.

mod common;

use common::cairn;
use std::process::Command;

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
    for kind in ["flat", "hnsw", "ivf"] {
        let _ = std::fs::remove_file(&idx);
        let (ok, out, err) = cairn(&[
            "embed",
            "--file",
            texts.to_str().unwrap(),
            "--index",
            idx_s,
            "--kind",
            kind,
            // IVF: two cells (trained on these three texts), both scanned.
            "--nlist",
            "2",
            "--nprobe",
            "2",
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
    // One IVF cell scanned of two: the query's own cell still holds its best match.
    let (ok, out, err) = cairn(&[
        "search",
        "--index",
        idx_s,
        "--nprobe",
        "1",
        "-k",
        "1",
        "installing software on Debian",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.trim_end()
            .ends_with("docs#1  Debian uses apt for package management."),
        "{out}"
    );
    // Too few texts to train the cells is a clear error, and nothing is written.
    let ivf_small = dir.path().join("small.cvec");
    let (ok, _, err) = cairn(&[
        "embed",
        "--index",
        ivf_small.to_str().unwrap(),
        "--kind",
        "ivf",
        "--nlist",
        "5",
        "one",
        "two",
    ]);
    assert!(
        !ok && err.contains("IVF training needs at least nlist = 5 vectors, got 2"),
        "{err}"
    );
    assert!(!ivf_small.exists());
    // Adding to an existing index appends (to the IVF's cells, trained before).
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

fn cairn_stdin(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cairn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn chat_answers_from_stdin_and_every_generate_flag_reaches_the_decoder() {
    common::model("smollm2-135m-instruct");
    // Two turns, non-interactively: the second sees the first in its history.
    let (ok, out, err) = cairn_stdin(
        &["chat", "--max-new-tokens", "24"],
        "What is the capital of France?\nAnd of Germany?\n",
    );
    assert!(ok, "{err}");
    let answers: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(answers[0].contains("Paris"), "{out}");
    assert!(answers.len() >= 2, "{out}");
    assert!(out.contains("Berlin"), "{out}");

    let run = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--chat",
            "Write one sentence about the sea.",
            "--max-new-tokens",
            "16",
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = cairn(&args);
        assert!(ok, "{extra:?}: {err}");
        out
    };
    let greedy = run(&[]);
    assert_eq!(run(&[]), greedy, "greedy decoding is deterministic");
    // Each flag reaches the decoder: the CLI prints what the library's
    // `generate` (checked token by token against transformers in
    // decoder.rs) gives for the same settings.
    let g = cairn::generate::load_generator(
        cairn_core::backend::cpu::CpuBackend::new(),
        &common::model("smollm2-135m-instruct"),
    )
    .unwrap();
    let prompt = g
        .apply_chat_template(
            &[cairn_core::generate::ChatMessage::new(
                "user",
                "Write one sentence about the sea.",
            )],
            true,
        )
        .unwrap();
    let library = |cfg: cairn_core::generate::GenerationConfig| {
        let cfg = cairn_core::generate::GenerationConfig {
            max_new_tokens: 16,
            ..cfg
        };
        let out = cairn_core::backend::block_on_ready(g.generate(&prompt, &cfg)).unwrap();
        out.text + "\n"
    };
    use cairn_core::generate::GenerationConfig as Cfg;
    assert_eq!(greedy, library(Cfg::default()));
    let flags: [(&[&str], Cfg); 5] = [
        (
            &["--sample", "--seed", "1", "--temperature", "1.5"],
            Cfg {
                do_sample: true,
                seed: 1,
                temperature: 1.5,
                ..Cfg::default()
            },
        ),
        (
            &["--sample", "--seed", "3", "--top-k", "0", "--top-p", "0.9"],
            Cfg {
                do_sample: true,
                seed: 3,
                top_k: 0,
                top_p: 0.9,
                ..Cfg::default()
            },
        ),
        (
            &["--num-beams", "3", "--length-penalty", "2"],
            Cfg {
                num_beams: 3,
                length_penalty: 2.0,
                ..Cfg::default()
            },
        ),
        (
            &["--repetition-penalty", "1.8"],
            Cfg {
                repetition_penalty: 1.8,
                ..Cfg::default()
            },
        ),
        (
            &["--no-repeat-ngram-size", "2", "--num-beams", "2"],
            Cfg {
                no_repeat_ngram_size: 2,
                num_beams: 2,
                ..Cfg::default()
            },
        ),
    ];
    for (args, cfg) in flags {
        let want = library(cfg);
        assert_ne!(
            want, greedy,
            "{args:?}: pick settings that change the output"
        );
        assert_eq!(run(args), want, "{args:?}");
    }
    // --temperature 0 is greedy even with --sample (llama.cpp's convention).
    assert_eq!(run(&["--sample", "--temperature", "0"]), greedy);
    let stopped = run(&["--stop", " "]);
    assert!(!stopped.trim().contains(' '), "{stopped:?}");
    assert!(
        greedy.starts_with(stopped.trim_end()),
        "{stopped:?} vs {greedy:?}"
    );

    // Invalid values are named errors.
    for (flag, value, want) in [
        ("--top-p", "0", "top_p: must be in (0, 1]"),
        (
            "--temperature",
            "-1",
            "temperature: must be a strictly positive number",
        ),
    ] {
        let (ok, _, err) = cairn(&["generate", "x", "--sample", flag, value]);
        assert!(!ok && err.contains(want), "{flag} {value}: {err}");
    }
    let (ok, _, err) = cairn(&["generate", &"word ".repeat(9000), "--max-new-tokens", "4"]);
    assert!(
        !ok && err.contains("but the model's context is 8192"),
        "{err}"
    );
}

#[test]
fn quantize_and_perplexity_commands() {
    let src = common::model("smollm2-135m-instruct");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q4_0.gguf");
    let (ok, _, err) = cairn(&[
        "quantize",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "q5_k",
    ]);
    assert!(
        !ok && err.contains("unknown quantization type 'q5_k'"),
        "{err}"
    );
    let (ok, stdout, err) = cairn(&[
        "quantize",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--type",
        "q4_0",
        "--allow-requantize",
    ]);
    assert!(ok, "{err}");
    // 210 matrices + the Q8_0 token embedding; the 61 norms stay F32.
    assert!(stdout.contains("211 tensors in Q4_0, 61 kept"), "{stdout}");
    let (ok, stdout, err) = cairn(&[
        "perplexity",
        "--model",
        out.to_str().unwrap(),
        "The capital of France is Paris. The capital of Germany is Berlin.",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let ppl = v["perplexity"].as_f64().unwrap();
    assert!(ppl > 1.0 && ppl < 100.0, "{v}");
    // A truncated model file is a clear error.
    let bytes = std::fs::read(&out).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = cairn(&["generate", "--model", cut.to_str().unwrap(), "hi"]);
    assert!(!ok && err.contains("file is truncated"), "{err}");
}

#[test]
fn generate_on_the_gpu_backend_streams_the_cpu_text() {
    let args = |backend: &'static str| {
        // A short raw prompt: lavapipe runs the kernels at ~0.1 GFLOP/s.
        vec![
            "generate",
            "The capital of France is",
            "--max-new-tokens",
            "4",
            "--backend",
            backend,
        ]
    };
    let (ok, cpu, err) = cairn(&args("cpu"));
    assert!(ok, "{err}");
    assert!(!cpu.trim().is_empty(), "{cpu}");
    let (ok, gpu, err) = cairn(&args("gpu"));
    if !ok && !cairn_core::testing::gpu_required() {
        eprintln!("SKIPPED (no GPU backend): {err}");
        return;
    }
    assert!(ok, "{err}");
    assert_eq!(gpu, cpu);
    // auto never picks a software adapter: lavapipe here means the CPU, said in the log.
    let (ok, auto, err) = cairn(&args("auto"));
    assert!(ok, "{err}");
    assert_eq!(auto, cpu);
    assert!(
        err.contains("using the CPU backend") || err.contains("GPU backend"),
        "{err}"
    );
    let (ok, _, err) = cairn(&args("tpu"));
    assert!(
        !ok && err.contains("invalid value 'tpu' for '--backend <BACKEND>'")
            && err.contains("[possible values: cpu, gpu, auto]"),
        "{err}"
    );
}

#[test]
fn embed_on_the_gpu_backend_matches_the_cpu() {
    let texts = [
        "Machine learning is transforming industries.",
        "I love hiking",
    ];
    let run = |backend| {
        let (ok, out, err) = cairn(&["embed", texts[0], texts[1], "--backend", backend]);
        (ok, out, err)
    };
    let (ok, cpu, err) = run("cpu");
    assert!(ok, "{err}");
    let (ok, gpu, err) = run("gpu");
    if !ok && !cairn_core::testing::gpu_required() {
        eprintln!("SKIPPED (no GPU backend): {err}");
        return;
    }
    assert!(ok, "{err}");
    let parse = |s: &str| -> (Vec<Vec<f32>>, f64) {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let rows = serde_json::from_value(v["embeddings"].clone()).unwrap();
        (rows, v["cosine"][0][1].as_f64().unwrap())
    };
    let ((rc, cc), (rg, cg)) = (parse(&cpu), parse(&gpu));
    assert!(
        (cc - 0.027263704).abs() < 1e-4 && (cg - cc).abs() < 1e-4,
        "{cc} {cg}"
    );
    for (a, b) in rc.iter().zip(&rg) {
        assert_eq!(a.len(), 384);
        assert!(cairn_core::embedder::cosine_similarity(a, b) >= 0.9999);
    }
}

#[test]
fn no_gpu_adapter_is_a_clear_error_and_auto_falls_back_to_the_cpu() {
    // WGPU_BACKEND=gl: a backend this build does not include, so wgpu finds no adapter.
    let run = |backend: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["embed", "hi", "--backend", backend])
            .env("CAIRN_LOG", "warn")
            .env("WGPU_BACKEND", "gl")
            .output()
            .expect("run cairn");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run("gpu");
    assert!(!ok);
    assert!(
        err.contains("no GPU adapter available (found: no adapters on any backend)"),
        "{err}"
    );
    let (ok, out, err) = run("auto");
    assert!(ok, "{err}");
    assert!(out.contains("\"dim\":384"), "{out}");
    assert!(
        err.contains("no usable GPU; using the CPU backend"),
        "{err}"
    );
}

/// Runs cairn and returns (exit code, stdout, stderr).
fn cairn_code(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_2_runtime_errors_exit_1() {
    for (args, want) in [
        (
            &["ask", "--method", "nope", "q"][..],
            "invalid value 'nope' for '--method <METHOD>'",
        ),
        (
            &["embed", "--backend", "tpu", "x"][..],
            "invalid value 'tpu' for '--backend <BACKEND>'",
        ),
        (
            &["fetch", "--only", "nope"][..],
            "--only: unknown package id 'nope'",
        ),
        (
            &["quantize", "--model", "m.gguf", "--type", "q3_x"][..],
            "unknown quantization type 'q3_x'",
        ),
        (
            &["quantize", "--model", "m.gguf"][..],
            "the argument --output is required",
        ),
        (
            &["perplexity", "text", "--file", "f.txt"][..],
            "cannot be used with",
        ),
        (&["embed"][..], "no texts to embed"),
        (&["eval", "retrieval"][..], "--set <SET>"),
    ] {
        let (code, _, err) = cairn_code(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, _, err) = cairn_code(&["info", "/no/such/model.gguf"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/no/such/model.gguf"), "{err}");
}

#[test]
fn temperature_zero_is_greedy_and_old_spellings_still_work() {
    common::model("smollm2-135m-instruct");
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "The capital of France is",
            "--max-new-tokens",
            "6",
        ];
        args.extend_from_slice(extra);
        cairn_code(&args)
    };
    let (code, greedy, _) = generate(&[]);
    assert_eq!(code, 0);
    for extra in [
        &["--temperature", "0"][..],
        &["--sample", "--temperature", "0"][..],
    ] {
        let (code, out, err) = generate(extra);
        assert_eq!(code, 0, "{extra:?}: {err}");
        assert_eq!(out, greedy, "{extra:?}");
        assert!(!err.contains("decoding greedily"), "{extra:?}: {err}");
    }
    // A temperature without --sample still warns that it does nothing.
    let (_, out, err) = generate(&["--temperature", "0.7"]);
    assert_eq!(out, greedy);
    assert!(err.contains("only apply with --sample"), "{err}");

    // `embed --index` / `search --index` (now --vectors) and `eval-retrieval`
    // (now `eval retrieval`) work, with a deprecation warning.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v.cvec");
    let f = f.to_str().unwrap();
    let (code, _, err) = cairn_code(&["embed", "--index", f, "A cat sat on the mat."]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("embed --index is deprecated") && err.contains("--vectors"),
        "{err}"
    );
    let (code, out, err) = cairn_code(&["search", "--index", f, "feline"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("A cat sat on the mat."), "{out}");
    let (code, out, _) = cairn_code(&["search", "--vectors", f, "feline"]);
    assert_eq!(code, 0);
    assert!(out.contains("A cat sat on the mat."), "{out}");
    let (code, _, err) = cairn_code(&["eval-retrieval", "--set", "/no/such/set.json"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("`cairn eval-retrieval` is deprecated"),
        "{err}"
    );
    assert!(err.contains("/no/such/set.json"), "{err}");
}

#[test]
fn info_refuses_a_truncated_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}"#;
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json.as_bytes());
    bytes.extend([0u8; 64]);
    let whole = dir.path().join("whole.safetensors");
    std::fs::write(&whole, &bytes).unwrap();
    let (code, out, err) = cairn_code(&["info", whole.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 tensors (1 × F32), 0.0 M parameters"),
        "{out}"
    );
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let (code, _, err) = cairn_code(&["info", cut.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cut.safetensors: truncated safetensors file") && err.contains("need"),
        "{err}"
    );
}

#[test]
fn an_oversized_tokenizer_json_is_refused_before_it_is_read() {
    // A sparse 200 MiB file: refused by its size, never read into memory.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let (ok, _, err) = cairn(&["tokenize", "-m", path.to_str().unwrap(), "hello"]);
    assert!(!ok);
    assert!(
        err.contains("tokenizer.json is 200 MiB; a tokenizer.json of more than 128 MiB is refused"),
        "{err}"
    );
}
