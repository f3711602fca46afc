//! End-to-end tests of the `tephra` binary: each test runs the real executable
//! (and real servers on free ports) on temporary data directories.

mod bench_serve;
mod cluster;
mod commands;
mod config;
mod demo;
mod gen_eval;
mod import_export;
mod serve;
mod shutdown;
mod support;
mod train;
