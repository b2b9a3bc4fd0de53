//! `cairn info`: describe a model file or directory.

use std::path::Path;

use crate::cache::resolve_model;
use crate::error::Result;

/// Arguments of `cairn info`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model name or path.
    pub model: String,
}

/// Runs `cairn info`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let path = resolve_model(&a.model, cache)?;
    print!("{}", crate::inspect::describe(&path)?);
    Ok(())
}
