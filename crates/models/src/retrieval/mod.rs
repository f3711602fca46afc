//! Top-k maximum-inner-product search over item vectors (placeholder: exact).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Top-k maximum-inner-product search over item vectors.
pub trait Retriever: Send + Sync {
    /// Best `k` items by inner product with `query`, best first, among allowed items.
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)>;
    /// Number of item vectors indexed.
    fn len(&self) -> usize;
    /// Whether nothing is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Vector dimension.
    fn dim(&self) -> usize;
    /// "exact" or "ivf".
    fn kind(&self) -> &'static str;
    /// Approximate heap bytes.
    fn memory_bytes(&self) -> usize;
}

/// Retrieval settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Exact below this many items.
    pub exact_below: usize,
    /// IVF lists.
    pub lists: usize,
    /// Lists probed.
    pub probes: usize,
    /// Over-fetch factor.
    pub overfetch: usize,
    /// Seed.
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

impl RetrievalConfig {
    /// Checks values.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Exact scan.
pub struct ExactIndex {
    vectors: Vec<f32>,
    dim: usize,
}

impl ExactIndex {
    /// Copies the vectors.
    pub fn new(vectors: &[f32], dim: usize) -> Self {
        Self {
            vectors: vectors.to_vec(),
            dim,
        }
    }
}

impl Retriever for ExactIndex {
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let scores: Vec<f32> = self
            .vectors
            .chunks_exact(self.dim.max(1))
            .map(|row| row.iter().zip(query).map(|(a, b)| a * b).sum())
            .collect();
        crate::rank::top_n(&scores, k, allow)
    }
    fn len(&self) -> usize {
        self.vectors.len() / self.dim.max(1)
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn kind(&self) -> &'static str {
        "exact"
    }
    fn memory_bytes(&self) -> usize {
        self.vectors.len() * 4
    }
}

/// Exact below `config.exact_below` items, IVF at or above.
pub fn build(vectors: &[f32], dim: usize, _config: &RetrievalConfig) -> Arc<dyn Retriever> {
    Arc::new(ExactIndex::new(vectors, dim))
}
