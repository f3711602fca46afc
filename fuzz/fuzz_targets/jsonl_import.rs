//! The JSON Lines import reader: any bytes as an items, users or events file
//! (the first byte picks the kind), read to the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tephra::import::jsonl::JsonLinesSource;
use tephra::import::{RecordKind, RecordSource};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[usize::from(kind) % RecordKind::ALL.len()];
    let mut source = JsonLinesSource::new(file, kind);
    while let Ok(Some(_line)) = source.next_line() {}
});
