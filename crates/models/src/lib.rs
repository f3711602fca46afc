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

pub mod ease;
pub mod error;
pub mod latest;
pub mod popularity;
pub mod rank;
pub mod recommender;
pub mod topk;
pub mod trending;

pub use latest::Latest;
pub use popularity::Popularity;
pub use recommender::{History, Recommender};
pub use topk::{top_k, TopK};
pub use trending::Trending;
