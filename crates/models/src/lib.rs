//! Recommenders.
//!
//! For now the non-personalized rankings that answer `/v1/popular`,
//! `/v1/trending` and `/v1/latest` and back the recommendation fallback chain:
//! [`Popularity`] (all-time positive events), [`Trending`] (time-decayed
//! positive events) and [`Latest`] (publish time), plus the [`topk`] selection
//! they share.
//!
//! Plain synchronous code with no I/O: each ranker is a flat array indexed by
//! dense item index, updated one event at a time. Rankers know nothing about the
//! catalogue or users; every ranking call takes an `allowed: Fn(u32) -> bool`
//! filter, so the caller decides which items may be shown (hidden, expired,
//! category, already seen) and the ranking code stays reusable.

pub mod blend;
pub mod bpr;
pub mod content;
pub mod ease;
pub mod error;
pub mod ials;
pub mod itemknn;
pub mod latest;
pub mod most_popular;
pub mod popularity;
pub mod rank;
pub mod recency;
pub mod recommender;
pub mod registry;
pub mod retrieval;
pub mod rp3beta;
pub mod seq_ease;
pub mod similarity;
pub mod snapshot;
pub mod topk;
pub mod trending;

pub use error::ModelError;
pub use latest::Latest;
pub use popularity::Popularity;
pub use recency::{weighted_history, HistoryWeighting};
pub use recommender::{History, Recommender};
pub use registry::{default_serving, fit, ModelSpec, ServingConfig, TrainedModel, TrainingData};
pub use topk::{top_k, TopK};
pub use trending::Trending;
