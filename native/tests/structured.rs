//! Structured output with the real SmolLM2: every schema of the committed
//! suite (`tests/fixtures/schemas/suite.json`) is generated under its
//! grammar, and Python's `jsonschema` validates every output; the
//! unconstrained baseline's validity is measured beside it (printed). Also
//! `cairn generate --json-schema/--regex/--choice` from the command line.

mod common;

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::generate::json_schema::schema_to_regex;
use cairn_core::generate::{ChatMessage, FinishReason, GenerationConfig, RegexGrammar};
use common::cairn;
use serde_json::{Value, json};

#[test]
fn every_schema_of_the_suite_yields_valid_json_with_smollm2() {
    let g =
        cairn::generate::load_generator(CpuBackend::new(), &common::model("smollm2-135m-instruct"))
            .unwrap();
    let suite: Vec<Value> =
        serde_json::from_slice(&std::fs::read(common::fixture("schemas/suite.json")).unwrap())
            .unwrap();
    assert!(suite.len() >= 40);
    let config = GenerationConfig {
        max_new_tokens: 160,
        ..Default::default()
    };
    let mut rows = Vec::new();
    for case in &suite {
        let prompt = g
            .apply_chat_template(
                &[ChatMessage::new("user", case["prompt"].as_str().unwrap())],
                true,
            )
            .unwrap();
        let grammar = RegexGrammar::new(&schema_to_regex(&case["schema"]).unwrap()).unwrap();
        let mut c = g.grammar_constraint(grammar.clone(), &config);
        let out =
            pollster::block_on(g.generate_constrained_stream(&prompt, &config, &mut c, |_| true))
                .unwrap();
        assert_eq!(
            out.finish_reason,
            FinishReason::Eos,
            "{}: {:?}",
            case["name"],
            out.text
        );
        assert!(
            grammar.is_match(&out.text),
            "{}: {}",
            case["name"],
            out.text
        );
        let baseline = pollster::block_on(g.generate(&prompt, &config))
            .unwrap()
            .text;
        rows.push(json!({"name": case["name"], "schema": case["schema"], "constrained": out.text, "baseline": baseline}));
    }
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    std::fs::write(&results, serde_json::to_vec_pretty(&rows).unwrap()).unwrap();
    let v = common::python_json("structured/validate.py", &[results.to_str().unwrap()]);
    println!(
        "structured output on {} schemas: constrained {} valid, unconstrained baseline {} valid",
        v["total"], v["constrained_valid"], v["baseline_valid"]
    );
    assert_eq!(
        v["constrained_valid"],
        v["total"],
        "{v}\n{}",
        serde_json::to_string_pretty(&rows).unwrap()
    );
}

#[test]
fn the_cli_holds_output_to_a_schema_a_regex_or_a_choice() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("person.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0}}, "required": ["name", "age"], "additionalProperties": false}"#,
    )
    .unwrap();
    let (ok, out, err) = cairn(&[
        "generate",
        "--chat",
        "Describe Alice, aged 30, as JSON.",
        "--json-schema",
        schema.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["name"].is_string() && v["age"].is_u64(), "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2);
    let (ok, out, err) = cairn(&[
        "generate",
        "--chat",
        "Is Paris in France? Answer yes or no.",
        "--choice",
        "yes,no",
    ]);
    assert!(ok, "{err}");
    assert!(["yes", "no"].contains(&out.trim()), "{out}");
    let (ok, out, err) = cairn(&[
        "generate",
        "--chat",
        "What year did WW2 end?",
        "--regex",
        "[0-9]{4}",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.trim().len() == 4 && out.trim().chars().all(|c| c.is_ascii_digit()),
        "{out}"
    );
    // Errors name the problem; two formats at once are a usage error.
    std::fs::write(&schema, r#"{"type": "object", "patternProperties": {}}"#).unwrap();
    let (ok, _, err) = cairn(&["generate", "x", "--json-schema", schema.to_str().unwrap()]);
    assert!(
        !ok && err.contains("'patternProperties' is not supported"),
        "{err}"
    );
    let (ok, _, err) = cairn(&["generate", "x", "--regex", "("]);
    assert!(!ok && err.contains("cannot be compiled"), "{err}");
    let (ok, _, err) = cairn(&["generate", "x", "--regex", "a", "--choice", "a,b"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

/// The whole suite on a tiny random Llama (byte-level vocabulary, sampled):
/// a model with no idea of JSON walks odd corners of every grammar. Every
/// output that ends (EOS) must validate with `jsonschema`; every output cut
/// by the token limit must still be a prefix the grammar allows.
#[test]
fn every_schema_of_the_suite_holds_on_a_tiny_random_model() {
    use cairn_core::formats::gguf::Gguf;
    use cairn_core::generate::Generator;
    use cairn_core::testing::{TinyLlama, tiny_llama_gguf};
    let bytes = tiny_llama_gguf(&TinyLlama {
        context: 2048,
        ..TinyLlama::default()
    })
    .unwrap();
    let g = Generator::from_gguf(
        CpuBackend::new(),
        &Gguf::parse(&bytes, "tiny.gguf").unwrap(),
    )
    .unwrap();
    let suite: Vec<Value> =
        serde_json::from_slice(&std::fs::read(common::fixture("schemas/suite.json")).unwrap())
            .unwrap();
    let mut rows = Vec::new();
    let mut cut = 0;
    for case in &suite {
        let grammar = RegexGrammar::new(&schema_to_regex(&case["schema"]).unwrap()).unwrap();
        let prompt = g
            .apply_chat_template(
                &[ChatMessage::new("user", case["prompt"].as_str().unwrap())],
                true,
            )
            .unwrap();
        for seed in 1..=4u64 {
            // top_k 5 keeps the walk short and checks that top-k runs after
            // the grammar (it chooses among allowed tokens, never none).
            let config = GenerationConfig {
                max_new_tokens: 1500,
                do_sample: true,
                temperature: 1.0,
                top_k: 5,
                seed,
                ..Default::default()
            };
            let mut c = g.grammar_constraint(grammar.clone(), &config);
            let out =
                pollster::block_on(
                    g.generate_constrained_stream(&prompt, &config, &mut c, |_| true),
                )
                .unwrap();
            if out.finish_reason == FinishReason::Eos {
                assert!(
                    grammar.is_match(&out.text),
                    "{}: {:?}",
                    case["name"],
                    out.text
                );
                rows.push(json!({"name": case["name"], "schema": case["schema"], "constrained": out.text}));
            } else {
                assert_eq!(out.finish_reason, FinishReason::Length);
                assert!(
                    grammar.is_prefix(&out.text),
                    "{}: {:?}",
                    case["name"],
                    out.text
                );
                cut += 1;
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    std::fs::write(&results, serde_json::to_vec_pretty(&rows).unwrap()).unwrap();
    let v = common::python_json("structured/validate.py", &[results.to_str().unwrap()]);
    println!(
        "tiny random model: {} finished outputs, {} valid; {cut} cut at 1500 tokens",
        v["total"], v["constrained_valid"]
    );
    assert_eq!(
        v["constrained_valid"],
        v["total"],
        "{v}\n{}",
        serde_json::to_string_pretty(&rows).unwrap()
    );
    let names: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    println!(
        "schemas with a finished output: {}/{}",
        names.len(),
        suite.len()
    );
    // 31/40 with these seeds; the rest are unbounded strings and arrays a
    // random walk rarely closes within the limit (their prefixes are checked).
    assert!(names.len() >= 25, "{names:?}");
}
