//! Helpers shared by the integration tests: fixtures and fetched models.

#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/fixtures/<name>` at the workspace root.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// A fetched model's path. Panics with the command to run when it is missing:
/// these tests use the real models and never fake them.
pub fn model(name: &str) -> PathBuf {
    let cache = cairn::cache::cache_dir(None);
    cairn::cache::resolve_model(name, &cache)
        .unwrap_or_else(|e| panic!("{e}\n(the test command runs `cairn fetch` first)"))
}
