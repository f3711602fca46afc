//! Request handlers, one module per resource.
//!
//! Handlers stay thin: parse (`extract`), call the store or the live state, shape
//! the answer. Each carries its OpenAPI description, collected in `openapi.rs`.

use serde::Serialize;
use utoipa::ToSchema;

pub mod admin;
pub mod analytics;
pub mod events;
pub mod experiments;
pub mod items;
pub mod lists;
pub mod model;
pub mod ops;
pub mod recommend;
pub mod similar;
pub mod users;

/// Answer to a write: how many elements were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Accepted {
    /// Number of elements stored.
    pub accepted: usize,
}
