//! `cairn fetch`: download the pinned packages into the cache, verified.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fetch::{Fetcher, Outcome, RegistrySource};
use crate::manifest::PACKAGES;

/// Arguments of `cairn fetch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only these packages (ids: smollm2, minilm, r-manuals, debian-reference, debian-faq).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// Runs `cairn fetch`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    for id in &a.only {
        if !PACKAGES.iter().any(|p| p.id == id) {
            let ids: Vec<&str> = PACKAGES.iter().map(|p| p.id).collect();
            return Err(Error::Usage(format!(
                "--only: unknown package id '{id}' (known: {})",
                ids.join(", ")
            )));
        }
    }
    let selected: Vec<_> = PACKAGES
        .iter()
        .filter(|p| a.only.is_empty() || a.only.iter().any(|o| o == p.id))
        .copied()
        .collect();
    let source = RegistrySource;
    let fetcher = Fetcher::new(cache, &source);
    for (id, outcome) in fetcher.fetch_all(&selected)? {
        match outcome {
            Outcome::Cached => println!("{id:18} cached (sha256 verified)"),
            Outcome::Installed(why) => println!(
                "{id:18} installed {} file(s) into {}",
                why.len(),
                cache.display()
            ),
        }
    }
    Ok(())
}
