//! Integration tests of tephra-store: the conformance suite against every backend,
//! persistence and file handling of the embedded store, the PostgreSQL backend's
//! cluster features, and model-based property tests.

mod durability_rate;
mod embedded;
mod faults;
mod import_rate;
mod memory;
mod model;
mod postgres;
mod registry;
