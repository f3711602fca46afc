//! Integration tests of the models crate: whole models through the public API.

mod snapshot;
