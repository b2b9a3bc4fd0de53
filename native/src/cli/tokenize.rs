//! `cairn tokenize`: ids, tokens and offsets of a text.

use std::path::Path;

use cairn_core::tokenizer::Tokenizer;

use super::args::DEFAULT_EMBEDDER;
use crate::cache::resolve_model;
use crate::error::Result;

/// Arguments of `cairn tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name or path: a directory with tokenizer.json, the tokenizer.json
    /// itself, or a GGUF file (its embedded vocabulary).
    #[arg(short, long, default_value = DEFAULT_EMBEDDER)]
    pub model: String,
    /// Do not add special tokens such as [CLS]/[SEP].
    #[arg(long)]
    pub no_special: bool,
    /// The text to tokenize.
    pub text: String,
}

/// Runs `cairn tokenize`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let path = resolve_model(&a.model, cache)?;
    let file = if path.is_dir() {
        path.join("tokenizer.json")
    } else {
        path
    };
    let is_gguf = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    if is_gguf {
        // The header alone holds the vocabulary; BOS is added as the
        // decoder adds it (`tokenizer.ggml.add_bos_token`).
        let h = crate::inspect::read_gguf(&file)?;
        let tok = Tokenizer::from_gguf(&h)?;
        let mut enc = tok.encode(&a.text, false)?;
        let bos = h
            .get("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.as_u64())
            .map(|v| v as u32);
        let add_bos = matches!(
            h.get("tokenizer.ggml.add_bos_token"),
            Some(cairn_core::formats::gguf::Value::Bool(true))
        );
        if let (true, false, Some(bos)) = (add_bos, a.no_special, bos) {
            enc.ids.insert(0, bos);
            enc.tokens
                .insert(0, tok.id_to_token(bos).unwrap_or_default());
            enc.offsets.insert(0, (0, 0));
        }
        print_encoding(&enc);
        return Ok(());
    }
    let bytes = crate::embed::read_tokenizer_json(&file)?;
    let tok = Tokenizer::from_bytes(&bytes, &file.display().to_string())?;
    let enc = tok.encode(&a.text, !a.no_special)?;
    print_encoding(&enc);
    Ok(())
}

fn print_encoding(enc: &cairn_core::tokenizer::Encoding) {
    println!(
        "{}",
        serde_json::json!({ "ids": enc.ids, "tokens": enc.tokens, "offsets": enc.offsets })
    );
}
