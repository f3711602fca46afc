//! Measures the bulk import rate of the embedded store (ignored by default; run
//! with `cargo test -p tephra-store --release -- --ignored --nocapture import_rate`).

use std::time::Instant;

use tephra_core::{Event, Timestamp};
use tephra_store::{EmbeddedStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn import_rate() {
    const EVENTS: usize = 1_000_000;
    const USERS: usize = 10_000;
    const ITEMS: usize = 5_000;
    const BATCH: usize = 10_000;
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(dir.path(), "bench").expect("open store");
    let types = ["click", "like", "purchase", "impression"];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let batches: Vec<Vec<Event>> = (0..EVENTS / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|k| {
                    let r = next();
                    Event {
                        user_id: format!("user-{}", r % USERS as u64),
                        item_id: format!("item-{}", (r >> 20) % ITEMS as u64),
                        event_type: types[(r >> 40) as usize % types.len()].to_owned(),
                        value: 1.0,
                        timestamp: Timestamp(1_700_000_000_000 + (b * BATCH + k) as i64),
                        request_id: None,
                        scene: None,
                        position: None,
                        attribution: None,
                    }
                })
                .collect()
        })
        .collect();

    let started = Instant::now();
    let mut import = store.begin_import().await.expect("begin import");
    for batch in batches {
        import.add_events(batch).await.expect("add events");
    }
    let counts = import.commit().await.expect("commit");
    let elapsed = started.elapsed();
    assert_eq!(counts.events, EVENTS as u64);
    println!(
        "imported {EVENTS} events ({USERS} users, {ITEMS} items) in {:.2} s: {:.0} events/s",
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64()
    );
}
