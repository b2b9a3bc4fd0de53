//! `cairn perplexity`: how well a decoder predicts a text.

use std::path::{Path, PathBuf};

use super::args::{BackendArgs, DEFAULT_DECODER};
use crate::cache::resolve_model;
use crate::error::{Error, Result};
use crate::generate::load_generator;
use crate::on_backend;

/// Arguments of `cairn perplexity`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Text to score (or use --file).
    #[arg(conflicts_with = "file", required_unless_present = "file")]
    pub text: Option<String>,
    /// Read the text from this file.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Model name or GGUF path.
    #[arg(short, long, default_value = DEFAULT_DECODER)]
    pub model: String,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Window length in tokens (default: the model's context).
    #[arg(long)]
    pub window: Option<usize>,
    /// Window stride in tokens (default: half the window).
    #[arg(long)]
    pub stride: Option<usize>,
}

/// Runs `cairn perplexity`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let text = match (a.text, &a.file) {
        (Some(t), None) => t,
        (None, Some(f)) => std::fs::read_to_string(f).map_err(Error::io("reading", f))?,
        _ => {
            return Err(Error::Usage(
                "give the text as an argument or with --file (not both)".into(),
            ));
        }
    };
    let path = resolve_model(&a.model, cache)?;
    let started = std::time::Instant::now();
    let p = on_backend!(a.backend.pick()?, b => {
        let generator = load_generator(b, &path)?;
        pollster::block_on(generator.perplexity(&text, a.window, a.stride))?
    });
    println!(
        "{}",
        serde_json::json!({
            "perplexity": p.perplexity, "mean_nll": p.mean_nll,
            "tokens": p.tokens, "windows": p.windows,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
