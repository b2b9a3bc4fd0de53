//! `cairn tokenize`: ids, tokens and offsets of a text.

use std::path::Path;

use cairn_core::tokenizer::Tokenizer;

use super::args::DEFAULT_EMBEDDER;
use crate::cache::resolve_model;
use crate::error::Result;

/// Arguments of `cairn tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name or path of a directory with tokenizer.json (or the tokenizer.json itself).
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
    let bytes = crate::embed::read_tokenizer_json(&file)?;
    let tok = Tokenizer::from_bytes(&bytes, &file.display().to_string())?;
    let enc = tok.encode(&a.text, !a.no_special)?;
    println!(
        "{}",
        serde_json::json!({ "ids": enc.ids, "tokens": enc.tokens, "offsets": enc.offsets })
    );
    Ok(())
}
