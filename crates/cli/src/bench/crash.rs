//! `tephra bench crash`: kills the server with SIGKILL at random moments during
//! sustained ingestion, and checks after each kill that every acknowledged
//! event is in the store and that the store opens cleanly and serves again.
//!
//! Writers post batches of clicks, each writer as its own user, numbering its
//! events 0, 1, 2, … in the event value, so that what is stored can be checked
//! against what was acknowledged exactly: a 2xx answer promises durability, so
//! every value of every acknowledged batch must be there after the kill. Events
//! of batches cut off by the kill may or may not be there (all or nothing per
//! batch, which is checked too).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tephra_store::Store;

use crate::bench::server_process::ServerProcess;
use crate::cli::CrashBenchArgs;
use crate::number::grouped;

/// What the writers sent: per writer, the first value of each batch and its
/// size, and which batches were acknowledged.
#[derive(Default)]
struct Ledger {
    /// Per writer: (first value, batch size, acknowledged).
    batches: HashMap<usize, Vec<(u64, u64, bool)>>,
}

/// The outcome of one round.
struct Round {
    acknowledged: u64,
    stored: u64,
    lost: u64,
    torn: u64,
    reopen: Duration,
}

/// Runs the crash test; fails if any acknowledged event was lost.
pub async fn run(args: &CrashBenchArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let dir = scratch.path().join("data");
    let log = scratch.path().join("server.log");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let next_value: Arc<Vec<Mutex<u64>>> =
        Arc::new((0..args.connections).map(|_| Mutex::new(0)).collect());
    println!(
        "Crash test: {} rounds, {} writers posting batches of {} events, SIGKILL after {}–{} ms.",
        args.rounds, args.connections, args.batch, args.min_ms, args.max_ms
    );
    println!(
        "{:>5} {:>13} {:>13} {:>6} {:>6} {:>10}",
        "round", "acked (total)", "stored", "lost", "torn", "reopen ms"
    );
    let mut total_lost = 0;
    let mut total_torn = 0;
    for round in 1..=args.rounds {
        let server = ServerProcess::start_with(
            &dir,
            &log,
            &client,
            &[("TEPHRA_TRAINING__ENABLED", "false")],
            Duration::from_secs(120),
        )
        .await
        .with_context(|| format!("round {round}: the server did not restart"))?;
        let url = format!("{}/v1/events", server.base_url());
        let writers: Vec<_> = (0..args.connections as usize)
            .map(|w| {
                let (client, url, ledger, next_value) = (
                    client.clone(),
                    url.clone(),
                    Arc::clone(&ledger),
                    Arc::clone(&next_value),
                );
                let batch = args.batch;
                tokio::spawn(
                    async move { write(&client, &url, w, batch, &ledger, &next_value).await },
                )
            })
            .collect();
        let wait = rng.random_range(args.min_ms..=args.max_ms.max(args.min_ms));
        tokio::time::sleep(Duration::from_millis(wait)).await;
        drop(server); // SIGKILL, then reaped
        for writer in writers {
            let _ = writer.await;
        }
        let outcome = check(&dir, &ledger).await?;
        total_lost += outcome.lost;
        total_torn += outcome.torn;
        println!(
            "{round:>5} {:>13} {:>13} {:>6} {:>6} {:>10.1}",
            grouped(outcome.acknowledged),
            grouped(outcome.stored),
            outcome.lost,
            outcome.torn,
            outcome.reopen.as_secs_f64() * 1e3
        );
    }
    if total_lost > 0 || total_torn > 0 {
        bail!(
            "{total_lost} acknowledged events were lost and {total_torn} batches were stored in part"
        );
    }
    println!(
        "No acknowledged event was lost in {} rounds; every batch was stored whole or not at all.",
        args.rounds
    );
    Ok(())
}

/// Posts batches until the server stops answering; records each batch and
/// whether it was acknowledged.
async fn write(
    client: &reqwest::Client,
    url: &str,
    writer: usize,
    batch: u64,
    ledger: &Mutex<Ledger>,
    next_value: &[Mutex<u64>],
) {
    loop {
        let first = {
            let mut next = next_value[writer].lock();
            let first = *next;
            *next += batch;
            first
        };
        let index = {
            let mut ledger = ledger.lock();
            let list = ledger.batches.entry(writer).or_default();
            list.push((first, batch, false));
            list.len() - 1
        };
        let events: Vec<_> = (first..first + batch)
            .map(|v| {
                json!({"user_id": format!("writer-{writer}"), "item_id": format!("item-{}", v % 500),
                       "type": "click", "value": v})
            })
            .collect();
        let answer = client.post(url).json(&events).send().await;
        match answer {
            Ok(response) if response.status().is_success() => {
                ledger
                    .lock()
                    .batches
                    .get_mut(&writer)
                    .expect("listed above")[index]
                    .2 = true;
            }
            _ => return, // killed (or refused): stop this writer
        }
    }
}

/// Opens the store offline (it must open cleanly) and compares what it holds
/// with the ledger.
async fn check(dir: &Path, ledger: &Mutex<Ledger>) -> anyhow::Result<Round> {
    let started = Instant::now();
    let store =
        crate::data_dir::open_store(dir).context("the store does not open after the kill")?;
    let reopen = started.elapsed();
    let maps = store.id_maps().await?;
    let mut stored: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = store.scan_events(from, 100_000).await?;
        for e in &page {
            let user = maps.users.id(e.user).unwrap_or_default().to_owned();
            stored.entry(user).or_default().push(e.value as u64);
        }
        match page.last() {
            Some(last) => from = last.seq + 1,
            None => break,
        }
    }
    drop(store);
    let ledger = ledger.lock();
    let (mut acknowledged, mut lost, mut torn, mut total) = (0, 0, 0, 0);
    for (writer, batches) in &ledger.batches {
        let mut values = stored
            .remove(&format!("writer-{writer}"))
            .unwrap_or_default();
        values.sort_unstable();
        total += values.len() as u64;
        let has = |v: u64| values.binary_search(&v).is_ok();
        for &(first, size, acked) in batches {
            let present = (first..first + size).filter(|&v| has(v)).count() as u64;
            if acked {
                acknowledged += size;
                lost += size - present;
            }
            if present != 0 && present != size {
                torn += 1;
            }
        }
    }
    Ok(Round {
        acknowledged,
        stored: total,
        lost,
        torn,
        reopen,
    })
}
