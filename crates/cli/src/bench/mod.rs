//! `tephra bench`: performance measurements that print figures and never fail
//! on them. Shared machines are noisy, so every figure is the median of several
//! runs, and HTTP figures come with the server's own `/healthz` as a ceiling.

pub mod accuracy;
pub mod analytics;
pub mod cluster;
pub mod crash;
mod dataset;
pub mod ingest;
mod load;
mod process_stats;
pub mod serve;
mod server_process;
pub mod soak;
mod stats;
