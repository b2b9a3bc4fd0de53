//! Crash-safe and concurrency-safe file writes.
//!
//! Atomic writes: a temporary file in the destination's directory
//! (`.<name>.partial-XXXXXX`), synced, then renamed over the destination. A
//! crash leaves either the old file or the new one, never a half-written
//! one; a temporary file a killed run left behind is removed by the next
//! writer that holds the destination's lock ([`sweep_partials`]).
//!
//! Writer locks: [`WriteLock`] is an advisory exclusive lock on
//! `<file>.lock`, held for a whole read-modify-write cycle, so two writers
//! of one index (two `cairn index` runs, or the service and the CLI) take
//! turns instead of one overwriting the other's update.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn dir_of(dest: &Path) -> &Path {
    dest.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn partial_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.partial-")
}

/// A temporary file next to `dest`, to be filled and then [`persist`]ed.
pub fn temp_beside(dest: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = dir_of(dest);
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    tempfile::Builder::new()
        .prefix(&partial_prefix(dest))
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

/// Removes the temporary files that killed writers of `dest` left beside it;
/// returns how many. Call it only while holding `dest`'s [`WriteLock`] (a
/// live writer's temporary file would otherwise be removed under it).
pub fn sweep_partials(dest: &Path) -> usize {
    let prefix = partial_prefix(dest);
    let Ok(entries) = std::fs::read_dir(dir_of(dest)) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix)
            && std::fs::remove_file(e.path()).is_ok()
        {
            tracing::info!(file = %e.path().display(), "removed a temporary file a killed run left");
            removed += 1;
        }
    }
    removed
}

/// An exclusive advisory lock on `<file>.lock`, released (and the lock file
/// removed) on drop.
#[derive(Debug)]
pub struct WriteLock {
    file: File,
    path: PathBuf,
}

impl WriteLock {
    /// Locks `dest` for writing: waits while another process holds the lock
    /// (saying so once in the log).
    pub fn acquire(dest: &Path) -> Result<WriteLock> {
        let mut path = dest.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        std::fs::create_dir_all(dir_of(dest)).map_err(Error::io("creating", dir_of(dest)))?;
        let mut said = false;
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(Error::io("opening the lock file", &path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !said {
                        tracing::info!(
                            lock = %path.display(),
                            "another writer holds it; waiting for it to finish"
                        );
                        said = true;
                    }
                    file.lock().map_err(Error::io("locking", &path))?;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io("locking", &path)(e));
                }
            }
            // The previous holder removes the lock file before unlocking: a
            // lock taken on a removed (or replaced) file is no lock at all.
            if same_file(&file, &path) {
                return Ok(WriteLock { file, path });
            }
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, _: &Path) -> bool {
    true
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        // Unix: remove the lock file while still holding the lock (waiters
        // notice and retry on a fresh file). Elsewhere an open file cannot be
        // removed, so it stays.
        #[cfg(unix)]
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_waits_and_no_lock_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.cidx");
        let lock = WriteLock::acquire(&dest).unwrap();
        let d2 = dest.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _l = WriteLock::acquire(&d2).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the second writer got the lock while the first held it"
        );
        drop(lock);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        t.join().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn partials_of_one_file_are_swept_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.cidx");
        std::fs::write(dir.path().join(".x.cidx.partial-abc123"), b"half").unwrap();
        std::fs::write(dir.path().join(".y.cidx.partial-abc123"), b"other").unwrap();
        write_atomic(&dest, b"whole").unwrap();
        assert_eq!(sweep_partials(&dest), 1);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".y.cidx.partial-abc123", "x.cidx"]);
    }
}
