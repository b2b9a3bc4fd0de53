//! Fuzzing the options objects of the npm API (`generate`, `search`, `ask`,
//! `new Agent`) with the shared stable-Rust fuzzer
//! ([`cairn_core::testing::fuzz`]): mutated JSON from real calls goes through
//! the same parsers the wasm build runs after turning the JS value into
//! JSON. Any panic fails; every input must give options or a named error.
//!
//! `CAIRN_FUZZ_SECS=600 cargo nextest run -p cairn-wasm --test fuzz_options`
//! is the long run (executions are printed).

use std::path::PathBuf;

use cairn_core::agent::Agent;
use cairn_core::testing::fuzz::fuzz;
use cairn_core::util::Rng;
use cairn_wasm::options;
use serde_json::{Map, Value, json};

fn regressions() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fuzz")
}

/// Seeds: option objects as the demo page, the docs and the tests pass them.
fn seeds() -> Vec<Vec<u8>> {
    let weather = json!({"name": "weather", "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                       "required": ["city"]}});
    [
        json!({}),
        json!({"maxNewTokens": 64, "doSample": true, "temperature": 0.7, "topK": 40, "topP": 0.9,
               "seed": 7, "stop": ["\n\n"], "repetitionPenalty": 1.1}),
        json!({"numBeams": 3, "lengthPenalty": 2.0, "earlyStopping": true, "noRepeatNgramSize": 2,
               "eosTokenIds": [2, 7], "maxNewTokens": 16}),
        json!({"jsonSchema": {"type": "object", "properties": {"name": {"type": "string"},
               "age": {"type": "integer", "minimum": 0, "maximum": 150}}, "required": ["name"]},
               "maxNewTokens": 48}),
        json!({"regex": "[0-9]{1,3}(\\.[0-9]+)?", "maxNewTokens": 8}),
        json!({"choice": ["positive", "negative", "neutral"]}),
        json!({"method": "hybrid", "k": 5, "candidates": 20, "mmrLambda": 0.7,
               "collections": ["debian", "r-manuals"], "weights": [1.0, 1.0]}),
        json!({"method": "bm25", "k": 3, "candidates": 3, "minCosine": 0.35, "context": "passage",
               "maxNewTokens": 256, "temperature": 0}),
        json!({"answer": "quote", "k": 4, "context": "matched"}),
        json!({"tools": [weather], "options": {"maxSteps": 4, "maxStepTokens": 128,
               "examples": false, "constrained": true, "maxNewTokens": 64}}),
        json!({"tools": [{"name": "calculator"}, {"name": "search", "description": "search the docs",
               "parameters": {"type": "object", "properties": {"query": {"type": "string"},
               "k": {"type": "integer", "minimum": 1, "maximum": 10},
               "mode": {"enum": ["fast", "full"]}}}}], "options": {}}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).unwrap())
    .collect()
}

/// Every parser on one input; errors are fine, panics are not.
fn parse_all(bytes: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let Value::Object(o) = v else {
        return;
    };
    let _ = options::generate(o.clone());
    let _ = options::search(o.clone());
    let _ = options::ask(o.clone());
    let (tools, opts) = match (o.get("tools"), o.get("options")) {
        (Some(t), Some(Value::Object(opts))) => (t.clone(), opts.clone()),
        (Some(t), _) => (t.clone(), Map::new()),
        _ => (json!([]), o),
    };
    if let Ok((tools, opts)) = options::agent(tools, opts) {
        let _ = Agent::new(tools, "What is the weather in Paris?", opts);
    }
}

/// Values a mutation writes into an options tree: wrong types, edges of
/// numbers, long strings, deep nesting, the option names themselves.
fn interesting(rng: &mut Rng) -> Value {
    const KEYS: [&str; 16] = [
        "maxNewTokens",
        "numBeams",
        "topK",
        "topP",
        "temperature",
        "k",
        "candidates",
        "mmrLambda",
        "weights",
        "stop",
        "eosTokenIds",
        "jsonSchema",
        "choice",
        "regex",
        "maxSteps",
        "parameters",
    ];
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(u64::MAX),
        5 => json!(i64::MIN),
        6 => json!(1e308),
        7 => json!(-0.5),
        8 => json!(""),
        9 => json!("x".repeat(1 + rng.below(5000))),
        10 => json!([]),
        11 => json!({}),
        12 => {
            let mut v = json!(1);
            for _ in 0..rng.below(200) {
                v = json!([v]);
            }
            v
        }
        _ => json!(KEYS[rng.below(KEYS.len())]),
    }
}

/// Replaces, inserts or deletes at a random node of `v`.
fn mutate_tree(v: &mut Value, rng: &mut Rng) {
    match v {
        Value::Object(m) if !m.is_empty() && rng.below(4) != 0 => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            match rng.below(4) {
                0 => {
                    m.remove(k);
                }
                1 => {
                    m.insert(k.clone(), interesting(rng));
                }
                _ => mutate_tree(m.get_mut(k).unwrap(), rng),
            }
        }
        Value::Array(a) if !a.is_empty() && rng.below(4) != 0 => {
            let i = rng.below(a.len());
            if rng.below(3) == 0 {
                a[i] = interesting(rng);
            } else {
                mutate_tree(&mut a[i], rng);
            }
        }
        Value::Object(m) => {
            let Value::String(k) = interesting(&mut Rng::new(rng.next_u64() | 1)) else {
                m.insert("maxNewTokens".into(), interesting(rng));
                return;
            };
            m.insert(k, interesting(rng));
        }
        _ => *v = interesting(rng),
    }
}

#[test]
fn fuzz_wasm_options_objects() {
    // Byte mutations (most break the JSON: the parsers' error paths)...
    fuzz(&regressions(), "wasm_options", &seeds(), parse_all);
    // ...and structure-aware ones: the input seeds a generator that edits
    // the seeds' JSON trees, so every input is a well-formed options object.
    let trees: Vec<Value> = seeds()
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    let tree_seeds: Vec<Vec<u8>> = (0u64..8).map(|i| i.to_le_bytes().to_vec()).collect();
    fuzz(&regressions(), "wasm_options_tree", &tree_seeds, |b| {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &x in b {
            h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Rng::new(h);
        let mut v = trees[rng.below(trees.len())].clone();
        for _ in 0..1 + rng.below(4) {
            mutate_tree(&mut v, &mut rng);
        }
        parse_all(&serde_json::to_vec(&v).unwrap());
    });
}

#[test]
fn options_give_named_errors() {
    let obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let e = options::generate(obj(json!({"maxNewTokns": 3}))).unwrap_err();
    assert!(
        e.0.contains("generate: unknown option 'maxNewTokns'"),
        "{e}"
    );
    assert!(e.0.contains("maxNewTokens"), "{e}");
    let e = options::search(obj(json!({"k": 9, "candidates": 4}))).unwrap_err();
    assert_eq!(
        e.0,
        "search: need 1 ≤ k ≤ candidates, got k = 9, candidates = 4"
    );
    let e = options::search(obj(json!({"mmrLambda": 3}))).unwrap_err();
    assert!(e.0.contains("option 'mmrLambda': must be in [0, 1]"), "{e}");
    let e = options::ask(obj(json!({"context": "all"}))).unwrap_err();
    assert!(e.0.starts_with("ask: option 'context'"), "{e}");
    let e = options::generate(obj(json!({"regex": "a", "choice": ["b"]}))).unwrap_err();
    assert_eq!(
        e.0,
        "generate: give at most one of jsonSchema, regex and choice"
    );
    let e = options::agent(json!({"name": "x"}), Map::new()).unwrap_err();
    assert!(e.0.starts_with("agent: tools must be"), "{e}");
    // Good options arrive intact.
    let (s, a, quote) = options::ask(obj(json!({"k": 2, "candidates": 8, "minCosine": 0.5,
        "maxNewTokens": 9, "topK": 3})))
    .unwrap();
    assert!(!quote);
    assert!(options::ask(obj(json!({"answer": "quote"}))).unwrap().2);
    let e = options::ask(obj(json!({"answer": "poem"}))).unwrap_err();
    assert!(e.0.contains("option 'answer': unknown value 'poem'"), "{e}");
    assert_eq!((s.k, s.candidates, a.min_cosine), (2, 8, 0.5));
    assert_eq!((a.generation.max_new_tokens, a.generation.top_k), (9, 3));
    let (g, c) = options::generate(obj(json!({"choice": ["yes", "no"], "seed": 5}))).unwrap();
    assert!(g.is_some());
    assert_eq!(c.seed, 5);
}
