//! Offline evaluation: datasets, splits, full-ranking metrics and the harness
//! that runs any recommender through them.
//!
//! The standard protocol (per-user temporal 80/20 split, full ranking with the
//! user's training items excluded, Recall@20 over min(20, |test|), binary NDCG@10)
//! is implemented to match the reference script exactly, so that figures compare
//! one to one: same split tie-breaks (time, then item id), same half-to-even
//! rounding of the test size, same metric definitions.
//!
//! Typical use:
//! ```no_run
//! use tephra_eval::{evaluate, EvalError, EvalOptions, Log, Protocol, Sequences};
//! use tephra_models::Recommender;
//!
//! fn report(fit: impl Fn(&tephra_core::Interactions) -> Box<dyn Recommender>) -> Result<(), EvalError> {
//!     let log = Log::open(std::path::Path::new("ml-100k.inter"))?;
//!     let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
//!     let model = fit(&split.train.to_matrix()?);
//!     let metrics = evaluate(model.as_ref(), &split, &EvalOptions::default())?;
//!     println!("NDCG@10 {:.4}", metrics.at_k(10).map_or(0.0, |m| m.ndcg));
//!     Ok(())
//! }
//! ```

pub mod dataset;
pub mod error;
pub mod harness;
pub mod metrics;
pub mod split;
pub mod stats;

pub use dataset::{Interaction, Log};
pub use error::EvalError;
pub use harness::{evaluate, evaluate_with, weighted_history, EvalOptions, HistoryWeighting};
pub use metrics::{Metrics, MetricsAtK};
pub use split::{Protocol, Sequences, Split, Step};
