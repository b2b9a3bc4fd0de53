//! Mutation fuzzing of every parser that reads user data, on stable Rust:
//! each target starts from real seed files and runs its parser on mutated
//! copies (bit flips, random bytes, interesting integers at random offsets,
//! truncation, insertion, deletion, duplication, splicing) until its time
//! budget is spent. Any panic fails the test, naming the target and writing
//! the input to the temporary folder; committed crash inputs in
//! `tests/fixtures/fuzz/<target>/` run first as regression tests.
//!
//! CI runs a smoke of `CAIRN_FUZZ_SECS` (default 4) seconds per target;
//! `CAIRN_FUZZ_SECS=1800 cargo nextest run -p cairn-core --test fuzz` is
//! the long run (executions per target are printed).

use std::path::PathBuf;

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::gguf::Gguf;
use cairn_core::formats::tensors::SafeTensors;
use cairn_core::generate::chat_template::{ChatMessage, ChatTemplate};
use cairn_core::models::llama::Llama;
use cairn_core::rag::{Method, RagIndex, SearchOptions};
use cairn_core::retrieve::dense::{AnyIndex, Collection, FlatIndex, VectorIndex};
use cairn_core::testing::fuzz::fuzz as run_fuzz;
use cairn_core::testing::{TinyLlama, tiny_bert, tiny_llama_gguf};
use cairn_core::tokenizer::Tokenizer;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The shared fuzzer ([`cairn_core::testing::fuzz`]) with this workspace's
/// committed crash inputs under `tests/fixtures/fuzz/<target>/`.
fn fuzz(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) {
    run_fuzz(&fixtures().join("fuzz"), name, seeds, target)
}

#[test]
fn fuzz_gguf_and_the_models_and_tokenizers_it_holds() {
    let seed = tiny_llama_gguf(&TinyLlama {
        hidden: 32,
        ffn: 64,
        layers: 1,
        heads: 2,
        kv_heads: 1,
        ..Default::default()
    })
    .unwrap();
    fuzz("gguf", &[seed], |b| {
        if let Ok(g) = Gguf::parse(b, "f.gguf") {
            let _ = cairn_core::tokenizer::Tokenizer::from_gguf(&g.header);
            if let Ok(Some(t)) = ChatTemplate::from_gguf(&g.header) {
                let _ = t.render(&[ChatMessage::new("user", "hi")], true);
            }
            let _ = Llama::load(CpuBackend::new(), &g);
        }
    });
}

#[test]
fn fuzz_safetensors_and_configs() {
    let (config, weights) = tiny_bert(40, 16, 1, 3).unwrap();
    let adapter_dir = fixtures().join("peft_adapter");
    let adapter_cfg = std::fs::read(adapter_dir.join("adapter_config.json")).unwrap();
    let adapter = std::fs::read(adapter_dir.join("adapter_model.safetensors")).unwrap();
    fuzz("safetensors", &[weights.clone(), adapter.clone()], |b| {
        if let Ok(st) = SafeTensors::parse(b, "f.safetensors") {
            for name in st.names() {
                let _ = st.f32(name);
            }
        }
    });
    fuzz("configs", &[config, adapter_cfg.clone()], |b| {
        let _ = cairn_core::models::bert::BertConfig::from_json(b);
        let _ = cairn_core::models::classifier::ClassifierConfig::from_json(b);
        let _ = cairn_core::lora::LoraConfig::from_peft_json(b);
    });
    fuzz("peft_adapter", &[adapter], |b| {
        let _ = cairn_core::lora::Adapter::from_peft(&adapter_cfg, b, 30, |_| (576, 576));
    });
}

#[test]
fn fuzz_tokenizer_json() {
    let seed = br###"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[{"id":0,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":1,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},{"id":2,"content":"[SEP]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[1],"tokens":["[CLS]"]},"[SEP]":{"id":"[SEP]","ids":[2],"tokens":["[SEP]"]}}},"decoder":{"type":"WordPiece","prefix":"##","cleanup":true},"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[UNK]":0,"[CLS]":1,"[SEP]":2,"hello":3,"world":4,"##s":5,"cairn":6}}}"###;
    let t = Tokenizer::from_bytes(seed, "seed.json").unwrap();
    assert_eq!(
        t.encode("hello worlds", true).unwrap().ids,
        vec![1, 3, 4, 5, 2]
    );
    fuzz("tokenizer_json", &[seed.to_vec()], |b| {
        if let Ok(t) = Tokenizer::from_bytes(b, "f.json") {
            let _ = t.encode("Hello cairn worlds, héllo!", true);
        }
    });
}

#[test]
fn fuzz_document_loaders_and_the_chunker() {
    let pdf = std::fs::read(fixtures().join("mini.pdf")).unwrap();
    let html = b"<html><head><title>T</title><script>x<y</script></head><body><h1>One</h1><p>Text &amp; more &#x41; &bogus;</p><h2>Two</h2><pre>a < b</pre><!-- c --></body></html>".to_vec();
    let md = b"# Title\n\nPara one.\n\n## Sub\n```\n# not a heading\n```\ntext with [link](x) and `code`\n".to_vec();
    let splitter = |size| {
        cairn_core::text::chunk::Splitter::new(
            cairn_core::text::chunk::ChunkOptions {
                size,
                overlap: size / 4,
                unit: cairn_core::text::chunk::SplitUnit::Chars,
                ..Default::default()
            },
            None,
        )
        .unwrap()
    };
    let (parent, child) = (splitter(200), splitter(50));
    for (name, seed) in [
        ("pdf", pdf),
        ("html", html),
        ("markdown", md.clone()),
        ("text", md),
    ] {
        let file = match name {
            "pdf" => "f.pdf",
            "html" => "f.html",
            "markdown" => "f.md",
            _ => "f.txt",
        };
        fuzz(&format!("loader_{name}"), &[seed], |b| {
            if let Ok(doc) = cairn_core::text::load(file, b) {
                let _ = cairn_core::text::chunk::small_to_big(&doc, &parent, &child);
            }
        });
    }
}

/// The tiny index as bytes.
fn small_index() -> Vec<u8> {
    cairn_core::testing::tiny_rag_index().to_bytes().unwrap()
}

/// Every search method (with MMR) on a loaded index; widths a query could
/// not have (an index of another width is refused by `read_index` before
/// search) are skipped.
fn search_all(b: &[u8]) {
    if let Ok(mut ix) = RagIndex::from_bytes(b, "f.cidx")
        && ix.dim <= 1 << 16
    {
        let dim = ix.dim;
        for method in [Method::Hybrid, Method::Bm25, Method::Dense] {
            let _ = ix.search(
                "cats run",
                &vec![0.5; dim],
                &SearchOptions {
                    method,
                    mmr_lambda: Some(0.5),
                    ..Default::default()
                },
            );
        }
    }
}

#[test]
fn fuzz_index_files() {
    fuzz("cidx", &[small_index()], search_all);
    // Structure-aware: mutate the body and give it a valid header (length
    // and sha256), so the decoder and the id validation see the mutations.
    let whole = small_index();
    fuzz("cidx_body", &[whole[52..].to_vec()], |body| {
        use sha2::Digest;
        let mut b = whole[..12].to_vec();
        b.extend((body.len() as u64).to_le_bytes());
        b.extend(sha2::Sha256::digest(body));
        b.extend_from_slice(body);
        search_all(&b);
    });
    let mut flat = FlatIndex::new(3);
    flat.add(
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        vec!["x".into(), "y".into()],
    )
    .unwrap();
    let c = Collection {
        name: "v".into(),
        model: Some("m".into()),
        index: AnyIndex::Flat(flat),
    };
    let mut seeds = vec![c.to_bytes().unwrap()];
    let mut hnsw = cairn_core::retrieve::dense::HnswIndex::new(3, Default::default());
    hnsw.add(
        &(0..60)
            .map(|i| ((i * 7 % 11) as f32) - 5.0)
            .collect::<Vec<_>>(),
        (0..20).map(|i| format!("p{i}")).collect(),
    )
    .unwrap();
    seeds.push(
        Collection {
            name: "h".into(),
            model: None,
            index: AnyIndex::Hnsw(hnsw),
        }
        .to_bytes()
        .unwrap(),
    );
    fuzz("cvec", &seeds, |b| {
        if let Ok(c) = Collection::from_bytes(b, "f.cvec")
            && c.index.dim() <= 1 << 16
        {
            let q = vec![0.5; c.index.dim()];
            if let Ok(hits) = c.index.search(&q, 5) {
                for h in hits {
                    let _ = c.index.payload(h.id);
                }
            }
        }
    });
}

#[test]
fn fuzz_chat_templates() {
    let seed = b"{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] | trim + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}".to_vec();
    fuzz("chat_template", &[seed], |b| {
        if let Ok(src) = std::str::from_utf8(b)
            && let Ok(t) = ChatTemplate::new(src, "<s>", "</s>")
        {
            let _ = t.render(
                &[
                    ChatMessage::new("user", "hi"),
                    ChatMessage::new("assistant", "yo"),
                ],
                true,
            );
        }
    });
}

#[test]
fn fuzz_json_schemas() {
    // The schema suite's schemas (JSON text) → the regex compiler → the DFA.
    let suite: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(fixtures().join("schemas/suite.json")).unwrap())
            .unwrap();
    let seeds: Vec<Vec<u8>> = suite
        .iter()
        .map(|c| c["schema"].to_string().into_bytes())
        .collect();
    fuzz("json_schema", &seeds, |b| {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) else {
            return;
        };
        if let Ok(p) = cairn_core::generate::json_schema::schema_to_regex(&v)
            && p.len() < 20_000
            && let Ok(g) = cairn_core::generate::RegexGrammar::new(&p)
        {
            let _ = g.is_prefix("{\"a\": 1");
        }
    });
}

#[test]
fn fuzz_tool_calls_and_the_calculator() {
    let calls: Vec<Vec<u8>> = [
        "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"17.5% of 2,340 + sqrt(144)\"}}\n</tool_call>",
        "Let me check.\n<tool_call>{\"name\":\"a\",\"arguments\":\"{\\\"x\\\": [1, 2]}\"}</tool_call>\n<tool_call>\n{\"name\": \"b\", \"parameters\": {}}",
        "Thought: x\n<tool_call>\n{\"name\": \"s\", \"arguments\": {\"q\": \"</tool_call>\"}}\n</tool_call>",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("tool_calls", &calls, |b| {
        if let Ok(s) = std::str::from_utf8(b) {
            let _ = cairn_core::agent::tools::parse_tool_calls(s);
        }
    });
    let exprs: Vec<Vec<u8>> = [
        "17.5% of 2,340 + sqrt(144)",
        "round(3.14159, 2) * max(1, 2, 3) - log(8, 2) ^ -2 % 7!",
        "-(2^100 * 99999999999999999999) / 1e-30 + cbrt(-27) + floor(-1.5) + ceil(2.5)",
        "√(1/3) × 12 ÷ 4 − 5 mod 3 + pi*e/tau + sin(1)+asin(0.5)",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("calculator", &exprs, |b| {
        if let Ok(s) = std::str::from_utf8(b)
            && let Ok(n) = cairn_core::agent::calculator::evaluate(s)
        {
            let _ = n.to_string();
        }
    });
}
