//! Measures the write rate of the embedded store in each durability mode, for
//! one writer appending one event per call and for 16 concurrent writers
//! (ignored by default; run with `cargo test -p tephra-store --release --
//! --ignored --nocapture durability_rate`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tephra_store::conformance::event;
use tephra_store::{Durability, EmbeddedStore, Store, StoreOptions};

const WRITES: usize = 2_000;

async fn rate(durability: Durability, writers: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = StoreOptions {
        durability,
        faults: None,
        ..StoreOptions::default()
    };
    let store = Arc::new(EmbeddedStore::open_with(dir.path(), "bench", options).expect("open"));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..WRITES / writers {
                    store
                        .append_events(vec![event(&format!("u{w}"), &format!("i{}", i % 100))])
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
    let elapsed = started.elapsed();
    assert_eq!(store.counts().await.expect("counts").events, WRITES as u64);
    WRITES as f64 / elapsed.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn durability_rate() {
    let periodic = Durability::Periodic {
        interval: Duration::from_secs(1),
    };
    for writers in [1, 16] {
        for (name, durability) in [
            ("immediate", Durability::Immediate),
            ("periodic 1 s", periodic),
        ] {
            let rate = rate(durability, writers).await;
            println!("{name:>12}, {writers:>2} writers: {rate:>8.0} single-event writes/s");
        }
    }
}
