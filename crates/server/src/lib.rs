//! Tephra's HTTP API.
//!
//! A library so that the `tephra` binary, tests and benchmarks start the very
//! same server: [`AppState::open`] rebuilds the live state from a store,
//! [`router`] builds the routes, [`serve`] runs them until a shutdown signal.
//!
//! ```no_run
//! # async fn run(store: tephra_store::SharedStore) -> Result<(), Box<dyn std::error::Error>> {
//! use tephra_server::{serve, shutdown_signal, AppState, Config};
//! let config = Config::default();
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! let state = AppState::open(config, store).await?;
//! serve(listener, state, shutdown_signal()).await?;
//! # Ok(()) }
//! ```

pub mod analytics;
pub mod config;
pub mod error;
pub mod experiments;
pub mod fuzzing;
pub mod live;
pub mod metrics;
pub mod model_manager;
pub mod openapi;
pub mod pipeline;

mod auth;
mod dashboard;
mod docs;
mod extract;
mod router;
mod routes;
mod serve;
mod state;
mod write;

pub use config::Config;
pub use error::{ApiError, ErrorBody, ErrorDetail, ServerError};
pub use router::router;
pub use serve::{serve, shutdown_signal};
pub use state::{snapshot_path, AppState};
