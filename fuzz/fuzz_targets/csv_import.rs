//! The CSV import reader: any bytes as an items, users or events file (the
//! first byte picks the kind), read to the end or to its first refusal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tephra::import::csv_rows::CsvSource;
use tephra::import::{RecordKind, RecordSource};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[usize::from(kind) % RecordKind::ALL.len()];
    let Ok(mut source) = CsvSource::new(file, kind, "click") else {
        return;
    };
    while let Ok(Some(_line)) = source.next_line() {}
});
