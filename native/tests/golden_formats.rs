//! The real models against reference readers: the SmolLM2 GGUF header against
//! llama.cpp's `gguf` Python reader, and the MiniLM tokenizer against the Python
//! `tokenizers` package on 1,000 varied strings (fixtures made by
//! tests/scripts/make_{gguf,tokenizer}_golden.py).

mod common;

use cairn_core::formats::gguf::Value;
use cairn_core::tokenizer::Tokenizer;
use serde_json::Value as Json;

fn json_of(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::from(s.clone()),
        Value::Bool(b) => Json::from(*b),
        Value::F32(f) => Json::from(format!("{:.9e}", f)),
        Value::F64(f) => Json::from(format!("{:.9e}", f)),
        Value::Array(items) => serde_json::json!({
            "array_len": items.len(),
            "head": items.iter().take(3).map(json_of).collect::<Vec<_>>(),
        }),
        other => match other.as_u64() {
            Some(u) => Json::from(u),
            None => Json::from(other.as_f64().map(|f| f as i64).unwrap_or_default()),
        },
    }
}

fn normalise(v: &Json) -> Json {
    // Floats are compared as 9-significant-digit strings on both sides.
    match v {
        Json::Number(n) if n.is_f64() => {
            Json::from(format!("{:.9e}", n.as_f64().unwrap_or_default() as f32))
        }
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), normalise(v))).collect()),
        Json::Array(a) => Json::Array(a.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

#[test]
fn smollm2_gguf_header_matches_llama_cpp_reader() {
    let path = common::model("smollm2-135m-instruct");
    let header = cairn::inspect::read_gguf(&path).unwrap();
    let golden: Json = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("smollm2_gguf_header.json")).unwrap(),
    )
    .unwrap();

    let tensors = golden["tensors"].as_array().unwrap();
    assert_eq!(header.tensors.len(), tensors.len());
    for (t, g) in header.tensors.iter().zip(tensors) {
        assert_eq!(t.name, g["name"].as_str().unwrap());
        assert_eq!(
            u64::from(t.ggml_type.id()),
            g["type"].as_u64().unwrap(),
            "{}",
            t.name
        );
        let shape: Vec<u64> = g["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.dims, shape, "{}", t.name);
        assert_eq!(
            header.data_offset + t.offset,
            g["offset"].as_u64().unwrap(),
            "{}",
            t.name
        );
    }
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        header.data_offset + header.data_len(),
        file_len,
        "the last tensor ends at the end of the file"
    );

    let meta = golden["metadata"].as_object().unwrap();
    assert_eq!(header.metadata.len(), meta.len());
    for (key, value) in &header.metadata {
        let want = normalise(
            meta.get(key)
                .unwrap_or_else(|| panic!("key {key} not in the reference")),
        );
        assert_eq!(normalise(&json_of(value)), want, "metadata {key}");
    }
}

#[test]
fn minilm_tokenizer_ids_match_python_tokenizers() {
    let dir = common::model("all-minilm-l6-v2");
    let tok = Tokenizer::from_bytes(
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
        "tokenizer.json",
    )
    .unwrap();
    let golden: Json = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("tokenizer_golden.json")).unwrap(),
    )
    .unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1000);
    let ids = |v: &Json| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, true).unwrap().ids,
            ids(&case["ids"]),
            "{text:?}"
        );
        assert_eq!(
            tok.encode(text, false).unwrap().ids,
            ids(&case["ids_no_special"]),
            "{text:?}"
        );
    }
    // The file pads to 128 tokens; loading must switch that off.
    assert_eq!(tok.encode("short", true).unwrap().ids.len(), 3);
}

#[test]
fn every_block_type_dequantizes_bit_exactly_like_gguf_py() {
    use cairn_core::formats::gguf::GgmlType;
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::fixture("quant_dequant_golden.json")).unwrap(),
    )
    .unwrap();
    let types = golden["types"].as_object().unwrap();
    assert_eq!(types.len(), 12);
    for name in types.keys() {
        let ty = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
        let (bytes, want) = block_case(&golden, name);
        let got = cairn_core::quant::dequantize(ty, &bytes, want.len(), name).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let differing: Vec<usize> = (0..want.len())
            .filter(|&i| got[i].to_bits() != want[i].to_bits())
            .collect();
        assert!(
            differing.is_empty(),
            "{name}: {} of {} values differ, first at {}: {} vs {}",
            differing.len(),
            want.len(),
            differing[0],
            got[differing[0]],
            want[differing[0]]
        );
    }
}

#[test]
fn qwen2_and_llama3_pre_tokenizers_from_gguf_match_python_tokenizers() {
    use cairn_core::formats::gguf::{self, Header};
    let golden: Json = serde_json::from_slice(
        &std::fs::read(common::fixture("bpe_pretokenizer_golden.json")).unwrap(),
    )
    .unwrap();
    for pre in ["qwen2", "llama-bpe"] {
        let t = &golden["tokenizers"][pre];
        let strings = |v: &Json| -> Vec<Value> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| Value::String(s.as_str().unwrap().into()))
                .collect()
        };
        let tokens = strings(&t["tokens"]);
        let n = tokens.len();
        let meta = vec![
            (
                "general.architecture".to_string(),
                Value::String("qwen2".into()),
            ),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(strings(&t["merges"])),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(vec![Value::I32(1); n]),
            ),
        ];
        let mut bytes = Vec::new();
        gguf::write(&mut bytes, &meta, &[], 32).unwrap();
        let h = Header::read(&mut bytes.as_slice(), pre).unwrap();
        let tok = Tokenizer::from_gguf(&h).unwrap();
        common::assert_ids_match(&t["cases"], |text| tok.encode(text, false).unwrap().ids);
    }
}

#[test]
fn q4_k_and_q5_0_repack_exactly_into_the_f32_activation_kernels() {
    use cairn_core::formats::gguf::GgmlType;
    use cairn_core::quant::matmul::PackedMatrix;
    let golden: Json = serde_json::from_slice(
        &std::fs::read(common::fixture("quant_dequant_golden.json")).unwrap(),
    )
    .unwrap();
    for (name, ty, rows, cols) in [
        ("Q4_K", GgmlType::Q4K, 2, 512),
        ("Q5_0", GgmlType::Q5_0, 2, 64),
    ] {
        let (bytes, want) = block_case(&golden, name);
        assert_eq!(want.len(), rows * cols);
        assert!(PackedMatrix::supports(ty));
        let m = PackedMatrix::new(ty, &bytes, rows, cols, name).unwrap();
        // The repacked blocks expand to gguf.quants' values bit for bit.
        let got = m.dequantize();
        let differing = (0..want.len())
            .filter(|&i| got[i].to_bits() != want[i].to_bits())
            .count();
        assert_eq!(differing, 0, "{name}: {differing} values differ");
        // The product with f32 activations is the f32 product with those values.
        let x: Vec<f32> = (0..3 * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let y = m.matmul(&x, 3);
        for t in 0..3 {
            for r in 0..rows {
                let exact: f64 = (0..cols)
                    .map(|c| f64::from(x[t * cols + c]) * f64::from(want[r * cols + c]))
                    .sum();
                let scale: f64 = (0..cols)
                    .map(|c| (f64::from(x[t * cols + c]) * f64::from(want[r * cols + c])).abs())
                    .sum();
                let err = (f64::from(y[t * rows + r]) - exact).abs();
                assert!(
                    err <= 1e-5 * scale.max(1.0),
                    "{name} row {r}: {} vs {exact}",
                    y[t * rows + r]
                );
            }
        }
    }
}

/// The bytes and gguf.quants values of one type in quant_dequant_golden.json.
fn block_case(golden: &Json, name: &str) -> (Vec<u8>, Vec<f32>) {
    let case = &golden["types"][name];
    let hex = case["bytes"].as_str().unwrap();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let values = case["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    (bytes, values)
}
