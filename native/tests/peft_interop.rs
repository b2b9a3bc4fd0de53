//! An adapter written by Hugging Face PEFT loads in cairn and changes the
//! logits as it does in transformers (tests/scripts/make_peft_golden.py): the
//! PEFT tensor names, the q/k row permutation of GGUF files and the α/r
//! scaling all have to be right for this to hold.

mod common;

use cairn_core::backend::Backend;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::models::llama::Logits;

#[test]
fn a_peft_adapter_gives_transformers_logits() {
    let path = common::model("smollm2-135m-instruct");
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::fixture("peft_adapter/golden.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<u32> = golden["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let top: Vec<usize> = golden["top_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let floats = |k: &str| -> Vec<f32> {
        golden[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let mut g = cairn::generate::load_generator(CpuBackend::new(), &path).unwrap();
    let run = |g: &cairn_core::generate::Generator<CpuBackend>| -> Vec<f32> {
        let m = g.model();
        let mut cache = m.new_cache(16).unwrap();
        let l = m.forward(&ids, &mut cache, Logits::Last).unwrap();
        let all = pollster::block_on(m.backend().read_f32(&l)).unwrap();
        top.iter().map(|&i| all[i]).collect()
    };
    let worst = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let base = run(&g);
    let d = worst(&base, &floats("base"));
    eprintln!("base logits vs transformers: max |Δ| {d}");
    assert!(d < 1e-3, "base logits differ from transformers by {d}");
    cairn::lora::apply_adapter(&mut g, &common::fixture("peft_adapter")).unwrap();
    let adapted = run(&g);
    let d = worst(&adapted, &floats("adapted"));
    eprintln!("adapted logits vs transformers + PEFT: max |Δ| {d}");
    assert!(
        d < 1e-3,
        "adapted logits differ from transformers + PEFT by {d}"
    );
    assert!(worst(&adapted, &base) > 1.0, "the adapter changed nothing");

    // `cairn merge`: the adapter folded into F32 weights gives the same
    // logits as transformers + PEFT (PEFT's `merge_and_unload` is exact).
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged.gguf");
    cairn::lora::merge_gguf(
        &path,
        &common::fixture("peft_adapter"),
        &merged,
        Some(cairn_core::formats::gguf::GgmlType::F32),
    )
    .unwrap();
    let m = cairn::generate::load_generator(CpuBackend::new(), &merged).unwrap();
    let d = worst(&run(&m), &floats("adapted"));
    eprintln!("merged F32 logits vs transformers + PEFT: max |Δ| {d}");
    assert!(
        d < 1e-3,
        "merged logits differ from transformers + PEFT by {d}"
    );
}
