//! The in-memory backend against the conformance suite.

use std::sync::Arc;

use tephra_store::{MemoryStore, SharedStore};

tephra_store::conformance_tests!(|| async { Arc::new(MemoryStore::new()) as SharedStore });
