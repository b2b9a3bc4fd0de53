//! Atomic file writes: a temporary file in the destination's directory,
//! synced, then renamed over the destination. A crash leaves either the old
//! file or the new one, never a half-written one.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// A temporary file next to `dest`, to be filled and then [`persist`]ed.
pub fn temp_beside(dest: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(Error::io("creating a temporary file in", dir))
}

/// Syncs `tmp` and renames it to `dest`.
pub fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .map_err(Error::io("syncing", tmp.path()))?;
    tmp.persist(dest)
        .map_err(|e| Error::io("renaming into", dest)(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes)
        .map_err(Error::io("writing", tmp.path()))?;
    persist(tmp, path)
}
