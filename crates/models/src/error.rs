//! Why training a model can fail.

/// Every failure of model training and loading.
///
/// All variants describe something the operator can act on: a configuration out
/// of range, a catalogue too large for a dense model, degenerate data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A hyper-parameter is out of its valid range.
    #[error("invalid {model} configuration: {message}")]
    InvalidConfig {
        /// The model being configured.
        model: &'static str,
        /// What to change.
        message: String,
    },
    /// A dense model would need more memory than its configured item limit allows.
    #[error(
        "{model} needs a dense {n_items} × {n_items} matrix (about {} MiB while training) \
         but is limited to {max_items} items; raise the limit if the memory is there, \
         or use a sparse model (item-kNN, iALS) for this catalogue",
        bytes_needed / (1024 * 1024)
    )]
    TooManyItems {
        /// The model refusing.
        model: &'static str,
        /// Items in the training data.
        n_items: usize,
        /// The configured limit.
        max_items: usize,
        /// Peak memory the model would need.
        bytes_needed: u64,
    },
    /// A matrix that must be positive definite is not (regularization too
    /// small, or negative interaction weights).
    #[error("{model}: the regularized Gram matrix is not positive definite (pivot {pivot}); increase the regularization or check for negative weights")]
    NotPositiveDefinite {
        /// The model being trained.
        model: &'static str,
        /// First failing pivot (item index).
        pivot: usize,
    },
    /// Stored weights do not have the shape their header claims.
    #[error("{model}: {message}")]
    Shape {
        /// The model being loaded.
        model: &'static str,
        /// What disagrees.
        message: String,
    },
    /// A model specification could not be understood (unknown model kind,
    /// unknown or malformed parameter).
    #[error("invalid model specification: {0}")]
    InvalidSpec(String),
    /// Training data that no model can use (an item outside the catalogue).
    #[error("invalid training data: {0}")]
    InvalidData(String),
    /// A snapshot could not be written or read: missing, damaged, from an
    /// unknown format version, or not matching its own header.
    #[error("snapshot {path}: {message}")]
    Snapshot {
        /// The snapshot file.
        path: String,
        /// What went wrong and what to do.
        message: String,
    },
}
