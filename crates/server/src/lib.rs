//! Tephra's HTTP API.
//!
//! A library so that the `tephra` binary, tests and benchmarks start the very
//! same server: [`Tenants::open_embedded`] opens every tenant of a data
//! directory (each an [`AppState`] rebuilt from its store), [`router`] builds
//! the routes, [`serve`] runs them until a shutdown signal.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tephra_server::{serve, shutdown_signal, Config, Tenants};
//! let config = Config::default();
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! let tenants = Tenants::open_embedded(config).await?;
//! serve(listener, tenants, shutdown_signal()).await?;
//! # Ok(()) }
//! ```

pub mod analytics;
pub mod cluster;
pub mod config;
pub mod error;
pub mod experiments;
pub mod fuzzing;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod model_manager;
pub mod openapi;
pub mod pipeline;
pub mod tenants;

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
pub use tenants::Tenants;
