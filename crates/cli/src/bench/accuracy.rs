//! `tephra bench accuracy`: the accuracy of what `/v1/recommend` actually
//! serves, on the standard protocol.
//!
//! Offline evaluation (`tephra eval`) measures a model; this measures the
//! product. The data set's training part (standard per-user temporal split) is
//! written as an events CSV, then the real commands run as separate processes:
//! `tephra import events` into a fresh data directory, `tephra train`, and
//! `tephra serve`. Every test user's `/v1/recommend/{user}?n=K` answer is then
//! fetched over HTTP and scored against the held-out items with the same
//! metric code as `tephra eval` (full ranking: the server ranks the whole
//! catalogue and excludes what the user has seen).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt};
use tephra_core::Timestamp;
use tephra_eval::metrics::Accumulator;
use tephra_eval::{Log, Protocol, Sequences};

use super::load;
use super::server_process::{without_tephra_settings, ServerProcess};
use crate::cli::AccuracyBenchArgs;
use crate::eval_cmd::resolve_dataset;

/// The cutoffs reported.
const KS: [usize; 2] = [10, 20];

/// Runs the benchmark and prints the figures.
pub async fn run(args: &AccuracyBenchArgs) -> anyhow::Result<()> {
    let path = resolve_dataset(&args.dataset)?;
    let log = Log::open(&path).with_context(|| format!("cannot load {}", path.display()))?;
    let split = Protocol::STANDARD.split(&Sequences::from_log(&log))?;
    println!(
        "data set {}: {} users, {} items, {} interactions; standard protocol, {} test users",
        path.display(),
        log.n_users(),
        log.n_items(),
        log.len(),
        split.n_test_users()
    );
    let work = tempfile::tempdir().context("cannot create a work directory")?;
    let events = work.path().join("train.csv");
    let written = write_training_events(&log, &split.train, &events)?;
    let data_dir = work.path().join("data");

    let started = Instant::now();
    let mut import = tephra(&data_dir);
    import.args(["import", "events"]).arg(&events);
    run_step("tephra import events", import)?;
    println!(
        "imported {written} training events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut train = tephra(&data_dir);
    train.arg("train");
    if let Some(model) = &args.model {
        train.args(["--model", model]);
    }
    let report = run_step("tephra train", train)?;
    print!("{report}");
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let connections = usize::try_from(args.connections)?;
    let client = load::client(connections)?;
    let server = ServerProcess::start(&data_dir, &work.path().join("server.log"), &client).await?;
    let started = Instant::now();
    let users: Vec<u32> = split.test_users().collect();
    let base = Arc::new(server.base_url().to_owned());
    let n = KS.iter().copied().max().unwrap_or(20);
    let answers: Vec<(u32, Vec<String>, usize)> = stream::iter(users)
        .map(|user| {
            let (client, base) = (client.clone(), base.clone());
            let id = log.users().id(user).unwrap_or_default().to_owned();
            async move {
                let url = recommend_url(&base, &id, n)?;
                let body: serde_json::Value = client
                    .get(url.clone())
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .with_context(|| format!("GET {url}"))?
                    .json()
                    .await
                    .with_context(|| format!("GET {url}: not JSON"))?;
                let items = body["items"].as_array().cloned().unwrap_or_default();
                let from_model = items
                    .iter()
                    .filter(|i| i["source"] == "collaborative")
                    .count();
                let ids = items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned))
                    .collect();
                anyhow::Ok((user, ids, from_model))
            }
        })
        .buffer_unordered(connections)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let elapsed = started.elapsed();
    drop(server);

    let popularity = split.train.item_popularity();
    let mut accumulator = Accumulator::new(&KS, log.n_items());
    let (mut served, mut from_model) = (0usize, 0usize);
    for (user, ids, model_items) in &answers {
        let ranked: Vec<u32> = ids.iter().filter_map(|id| log.items().get(id)).collect();
        served += ranked.len();
        from_model += model_items;
        accumulator.add(&ranked, &split.test[*user as usize], &popularity);
    }
    let metrics = accumulator.finish();
    println!(
        "served {} recommendation lists over HTTP in {:.1} s ({:.0} per second), {:.1}% of items from the model",
        answers.len(),
        elapsed.as_secs_f64(),
        answers.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        100.0 * from_model as f64 / served.max(1) as f64
    );
    for k in KS {
        if let Some(m) = metrics.at_k(k) {
            println!(
                "served @{k:<2}  NDCG {:.4}  Recall {:.4}  Precision {:.4}  HitRate {:.4}",
                m.ndcg, m.recall, m.precision, m.hit_rate
            );
        }
    }
    let ndcg = metrics.at_k(10).map_or(0.0, |m| m.ndcg);
    let recall = metrics.at_k(20).map_or(0.0, |m| m.recall);
    println!(
        "served NDCG@10 {ndcg:.4} / Recall@20 {recall:.4}; best peer figure (PRODUCT.md, recency-weighted EASE) 0.246 / 0.282: ratio {:.3} / {:.3}",
        ndcg / 0.246,
        recall / 0.282
    );
    Ok(())
}

/// Writes every training step as a `click` event, in time order (a user's
/// steps keep their protocol order), timestamps as RFC 3339. Returns the count.
fn write_training_events(log: &Log, train: &Sequences, path: &Path) -> anyhow::Result<usize> {
    let mut rows: Vec<(i64, u32, usize, u32)> = Vec::with_capacity(train.n_steps());
    for (user, steps) in train.users().iter().enumerate() {
        for (k, step) in steps.iter().enumerate() {
            rows.push((step.time.0, user as u32, k, step.item));
        }
    }
    rows.sort_unstable();
    let mut out = csv::Writer::from_path(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    out.write_record(["user_id", "item_id", "type", "timestamp"])?;
    for &(time, user, _, item) in &rows {
        let (Some(user), Some(item)) = (log.users().id(user), log.items().id(item)) else {
            bail!("a training step names an index without an id");
        };
        out.write_record([user, item, "click", &Timestamp(time).to_string()])?;
    }
    out.flush()?;
    Ok(rows.len())
}

/// `BASE/v1/recommend/{user}?n=N`, the user id percent-encoded as a path
/// segment.
pub(super) fn recommend_url(base: &str, user: &str, n: usize) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(base).with_context(|| format!("bad base URL {base}"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base} cannot take a path"))?
        .extend(["v1", "recommend", user]);
    url.query_pairs_mut().append_pair("n", &n.to_string());
    Ok(url)
}

/// This binary with `--data-dir`, without the caller's `TEPHRA_*` settings (the
/// benchmark measures the defaults).
pub(super) fn tephra(data_dir: &Path) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "tephra".into());
    let mut command = Command::new(exe);
    command.arg("--data-dir").arg(data_dir);
    without_tephra_settings(&mut command);
    command
}

/// Runs one command to completion; its standard output, or an error with both
/// of its outputs.
pub(super) fn run_step(name: &str, mut command: Command) -> anyhow::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{name}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "`{name}` failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_escaped_in_the_url() {
        let url = |id: &str| {
            recommend_url("http://127.0.0.1:9", id, 20)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            url("u 1/é"),
            "http://127.0.0.1:9/v1/recommend/u%201%2F%C3%A9?n=20"
        );
        assert_eq!(
            url("A-z_0.~"),
            "http://127.0.0.1:9/v1/recommend/A-z_0.~?n=20"
        );
    }

    #[test]
    fn training_events_are_written_as_csv_in_time_order() {
        let at = |s: i64| Timestamp(s * 1000);
        let log = Log::from_records([
            ("u,1", "i\"2", at(20), 1.0),
            ("u,1", "i3", at(10), 1.0),
            ("u,1", "i4", at(30), 1.0),
            ("u,1", "i5", at(40), 1.0),
            ("u,1", "i6", at(50), 1.0),
            ("v", "i3", at(15), 1.0),
            ("v", "i\"2", at(16), 1.0),
        ])
        .unwrap();
        let split = Protocol::STANDARD
            .split(&Sequences::from_log(&log))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.csv");
        let written = write_training_events(&log, &split.train, &path).unwrap();
        assert_eq!(written, split.train.n_steps());
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), written);
        let times: Vec<Timestamp> = rows
            .iter()
            .map(|r| Timestamp::parse(&r[3]).unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(rows.iter().all(|r| &r[2] == "click"));
        assert!(
            rows.iter().any(|r| &r[0] == "u,1" && &r[1] == "i\"2"),
            "{rows:?}"
        );
    }
}
