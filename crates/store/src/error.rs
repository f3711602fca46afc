//! Storage errors.

use tephra_core::ValidationError;

/// Why a storage operation failed.
///
/// `Invalid` is the caller's fault (a 4xx); everything else is the service's
/// (a 5xx or a refusal to start) and carries enough context to act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input broke a rule; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The data directory is held by another process.
    #[error(
        "the data directory is in use by another Tephra process ({0}); stop it or use its HTTP API"
    )]
    Locked(String),
    /// The files were written by an incompatible version of Tephra.
    #[error("store format version {found} is not supported by this build (it reads version {supported})")]
    UnsupportedVersion {
        /// Version found on disk.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// Stored bytes did not decode: the store is damaged.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The disk or the database engine failed; nothing of the operation was stored.
    #[error("storage failed: {0}")]
    Io(String),
    /// The store was shut down.
    #[error("the store is shut down")]
    Closed,
}
