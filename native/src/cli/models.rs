//! `cairn models`: the models cairn knows by name.

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
    Ok(())
}
