//! What can go wrong while evaluating, split into the caller's mistakes and ours.

use std::path::PathBuf;

/// Every failure of the evaluation crate.
///
/// The first variants are problems with the input (a malformed log, a bad
/// option) that the user fixes; [`EvalError::Internal`] means the evaluation
/// itself is inconsistent, which is a bug to report.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A dataset file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A line of a dataset is malformed; `line` is 1-based, as editors show it.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An option or argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The model does not fit the data it is evaluated on (e.g. it was trained
    /// on a different item catalogue).
    #[error("model mismatch: {0}")]
    ModelMismatch(String),
    /// An inconsistency inside the evaluation code.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EvalError {
    /// A parse error at a 1-based line.
    pub fn parse(line: u64, message: impl Into<String>) -> Self {
        Self::Parse {
            line,
            message: message.into(),
        }
    }
}
