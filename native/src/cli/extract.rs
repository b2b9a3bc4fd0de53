//! `cairn extract`: the text a document loader sees.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Arguments of `cairn extract`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A PDF, HTML, Markdown or text file.
    pub file: PathBuf,
}

/// Runs `cairn extract`.
pub fn run(a: Args, _cache: &Path) -> Result<()> {
    let bytes = std::fs::read(&a.file).map_err(Error::io("reading", &a.file))?;
    let doc = cairn_core::text::load(&a.file.display().to_string(), &bytes)?;
    println!("{}", serde_json::to_string(&doc).unwrap_or_default());
    Ok(())
}
