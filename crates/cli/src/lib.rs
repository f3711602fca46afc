//! The `tephra` command's modules, one per command, as a library: the binary
//! (`main.rs`) is only the entry point, and fuzz targets reach the import
//! parsers through here.

pub mod bench;
pub mod cli;
pub mod config_layers;
pub mod data_dir;
pub mod demo;
pub mod eval_cmd;
pub mod export;
pub mod gen;
pub mod import;
pub mod logging;
pub mod model_spec;
pub mod number;
pub mod sample;
pub mod serve;
pub mod train;
