//! `cairn models`: the models cairn knows by name, and what it runs.

use std::path::Path;

use crate::error::Result;
use crate::manifest::MODELS;

/// Arguments of `cairn models` (none).
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `cairn models`.
pub fn run(_: Args, cache: &Path) -> Result<()> {
    for m in MODELS {
        let state = if cache.join(m.path).exists() {
            "cached"
        } else {
            "not fetched"
        };
        println!("{:24} {:12} {}", m.name, state, m.description);
    }
    println!();
    println!("Supported (any file of these kinds loads; `cairn info FILE` checks one):");
    for (what, list) in supported() {
        println!("  {what:22} {list}");
    }
    Ok(())
}

/// What cairn runs, one line per kind: architectures, tensor types, tokenizers.
pub fn supported() -> Vec<(&'static str, String)> {
    use cairn_core::formats::gguf::GgmlType;
    use cairn_core::models::llama::{Family, supported_weight_type};
    let types: Vec<&str> = GgmlType::WEIGHT_TYPES
        .into_iter()
        .filter(|t| supported_weight_type(*t))
        .map(GgmlType::name)
        .collect();
    vec![
        (
            "decoders (GGUF)",
            format!(
                "{} (general.architecture)",
                Family::ALL.map(Family::arch).join(", ")
            ),
        ),
        (
            "encoders (safetensors)",
            "bert, distilbert, roberta, xlm-roberta (config.json model_type: BERT, MiniLM, DistilBERT, RoBERTa, XLM-R embedders and cross-encoders)".into(),
        ),
        (
            "GGUF tensor types",
            format!(
                "{} (GPU: Q8_0/Q4_0/Q4_1 kernels, others expanded to dense)",
                types.join(", ")
            ),
        ),
        (
            "GGUF tokenizers",
            "gpt2 byte-level BPE (pre: gpt2, smollm/starcoder, llama-bpe, qwen2), llama SentencePiece BPE".into(),
        ),
        (
            "tokenizer.json",
            "any model the tokenizers library reads (WordPiece, BPE, Unigram)".into(),
        ),
    ]
}
