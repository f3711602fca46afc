//! End-to-end tests: the real server on a free port over an embedded store in a
//! temporary directory, spoken to over HTTP.

mod harness;

mod analytics;
mod auth;
mod bad_input;
mod browser;
mod cluster;
mod events;
mod items;
mod lists;
mod model;
mod ops;
mod pipeline;
mod recommend;
mod restart;
mod storage_faults;
mod tenants;
mod users;
