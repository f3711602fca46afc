//! Tephra's data model.
//!
//! This crate is plain synchronous Rust with no I/O: the types every other layer
//! speaks (items, users, events), the validation rules that keep bad input out of
//! the store, the dense integer ids the algorithms index by, and time decay.

pub mod decay;
pub mod error;
pub mod event;
pub mod id;
pub mod item;
pub mod matrix;
pub mod time;
pub mod user;

pub use decay::DecayedCounter;
pub use error::ValidationError;
pub use event::{Attribution, Event, EventKind, EventTypes};
pub use id::{validate_id, IdMap, MAX_ID_BYTES};
pub use item::{Item, ItemPatch};
pub use matrix::{Duplicates, Interactions};
pub use time::Timestamp;
pub use user::{User, UserPatch};
