//! Top-k maximum inner product retrieval over item vectors, behind one trait.
//!
//! Factor models (iALS, BPR) score a user by the inner product of the user's
//! vector with every item vector. Up to about a hundred thousand items an
//! exact scan ([`ExactIndex`]) is cheap and always right; beyond that the scan
//! is memory-bound (a million 64-dimensional vectors are 256 MB per query), and
//! an inverted-file index ([`IvfIndex`]) scans only the few k-means cells whose
//! centroids score best. Both answer through [`Retriever`], so the server picks
//! one with [`build`] and never cares which.
//!
//! Scores are always the exact f32 inner products (the IVF index approximates
//! only *which* items are scored), so results of the two indexes can be
//! compared and merged directly. Inputs are assumed free of NaN.

mod best;
mod exact;
mod ivf;
mod kernel;
mod kmeans;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use exact::ExactIndex;
pub use ivf::IvfIndex;

/// Top-k maximum-inner-product search over item vectors.
///
/// The seam between models that produce vectors and the code that serves
/// them: implementations trade exactness for speed, callers see one API.
pub trait Retriever: Send + Sync {
    /// Best `k` items by inner product with `query` (len == dim()), best first,
    /// among items for which `allow(item)` is true. Scores are the exact f32
    /// inner products; ties go to the lower item index.
    ///
    /// `allow` is called at most once per item, and only for items that would
    /// enter the result, so an expensive filter costs little. Panics if
    /// `query.len() != dim()`.
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)>;
    /// Number of item vectors indexed (item indices are 0..len()).
    fn len(&self) -> usize;
    /// Whether no item is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// "exact" or "ivf": reported by /v1/model and benchmarks.
    fn kind(&self) -> &'static str;
    /// Approximate heap bytes held by the index (reported by benchmarks).
    fn memory_bytes(&self) -> usize;
}

/// How retrieval indexes are chosen and built.
///
/// Part of the serving configuration, so that operators can force exact
/// scoring, or trade recall for speed, without a rebuild of the binary.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Catalogues with fewer items than this are scored exactly (default 100_000).
    pub exact_below: usize,
    /// IVF lists; 0 = automatic (about 4·sqrt(n), clamped).
    pub lists: usize,
    /// Lists probed per query; 0 = automatic (tuned so recall@10 >= 0.95 is typical).
    pub probes: usize,
    /// Candidates fetched per requested item before exact re-scoring
    /// (over-fetch factor), e.g. 4. The IVF lists currently store full-precision
    /// vectors, so candidates are already exactly scored and this is only
    /// validated; it takes effect if the lists are ever quantized.
    pub overfetch: usize,
    /// Seed for k-means.
    pub seed: u64,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            exact_below: 100_000,
            lists: 0,
            probes: 0,
            overfetch: 4,
            seed: 42,
        }
    }
}

/// Most IVF lists accepted: beyond this, scoring the centroids alone costs
/// more than scanning the lists.
const MAX_LISTS: usize = 1 << 20;

impl RetrievalConfig {
    /// Checks the values, naming the offending field and the accepted range.
    pub fn validate(&self) -> Result<(), String> {
        if self.lists > MAX_LISTS {
            return Err(format!(
                "retrieval.lists is {} but must be at most {MAX_LISTS} (0 = automatic)",
                self.lists
            ));
        }
        if self.lists > 0 && self.probes > self.lists {
            return Err(format!(
                "retrieval.probes is {} but retrieval.lists is only {}; probes must not exceed lists",
                self.probes, self.lists
            ));
        }
        if self.overfetch == 0 {
            return Err("retrieval.overfetch must be at least 1".to_string());
        }
        Ok(())
    }
}

/// Exact below `config.exact_below` items, IVF at or above.
///
/// The one place that decides, so that the server, the CLI and the benchmarks
/// agree on which index a catalogue gets. `vectors` is row-major `n × dim`.
/// Panics on a ragged array or an invalid configuration (validate it first).
pub fn build(vectors: &[f32], dim: usize, config: &RetrievalConfig) -> Arc<dyn Retriever> {
    if let Err(message) = config.validate() {
        panic!("invalid retrieval configuration: {message}");
    }
    let n = vectors.len().checked_div(dim).unwrap_or(0);
    if n < config.exact_below {
        Arc::new(ExactIndex::new(vectors, dim))
    } else {
        Arc::new(IvfIndex::build(vectors, dim, config))
    }
}
