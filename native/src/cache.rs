//! Where cairn keeps fetched models and documents, and how a `--model`
//! argument (a known name or a plain path) becomes a path.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::MODELS;

/// The environment variable that overrides the cache directory.
pub const CACHE_ENV: &str = "CAIRN_CACHE";

/// The cache directory: `flag`, else `$CAIRN_CACHE`, else `$XDG_CACHE_HOME/cairn`,
/// else `~/.cache/cairn`.
pub fn cache_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(p).join("cairn");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("cairn")
}

/// Resolves `spec`: an existing file or directory is used as it is; a known
/// model name maps into the cache. Anything else is an error that lists the
/// known names.
pub fn resolve_model(spec: &str, cache: &Path) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.exists() {
        return Ok(as_path.to_path_buf());
    }
    match MODELS.iter().find(|m| m.name == spec) {
        Some(m) => {
            let p = cache.join(m.path);
            if p.exists() {
                Ok(p)
            } else {
                Err(Error::Model(format!(
                    "model '{spec}' is not in the cache {} (expected {}); run `cairn fetch --only {}`",
                    cache.display(),
                    p.display(),
                    m.package
                )))
            }
        }
        None => {
            let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
            Err(Error::Model(format!(
                "'{spec}' is neither an existing file or directory nor a known model ({})",
                names.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_and_paths_pass_through() {
        assert_eq!(cache_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_str().unwrap();
        assert_eq!(resolve_model(p, Path::new("/nowhere")).unwrap(), dir.path());
    }

    #[test]
    fn unknown_and_unfetched_models_explain_themselves() {
        let e = resolve_model("no-such-model", Path::new("/nowhere"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("all-minilm-l6-v2"), "{e}");
        let e = resolve_model("all-minilm-l6-v2", Path::new("/nowhere"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cairn fetch --only minilm"), "{e}");
    }
}
