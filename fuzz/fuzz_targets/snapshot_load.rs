//! The model snapshot loader: any bytes as a snapshot file must be refused
//! with an error, never panic or allocate without bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tephra_models::snapshot::load_bytes(Path::new("fuzz.tephra"), data);
});
