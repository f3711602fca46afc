//! `tephra demo`: a personalized news portal with simulated readers.
//!
//! On the first run of a data directory it creates a news catalogue and
//! readers whose history comes from the reader model ([`readers`]). Then it
//! starts the real server, trains a model, and runs an A/B experiment on the
//! `home` feed: a popularity feed (control) against the personalized pipeline,
//! with simulated readers visiting their feed, acknowledging what they were
//! shown and clicking by the model. The dashboard shows it live; at the end
//! the command prints the experiment's results and keeps serving.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tephra_core::Timestamp;
use tephra_server::Config;
use tephra_store::{Store, StoreCounts};
use tokio::net::TcpListener;

use crate::cli::DemoArgs;
use crate::number::grouped;
use crate::sample::{self, SampleSize};
use crate::{data_dir, serve};

pub mod readers;

use readers::{ReaderModel, World};

/// The file in the data directory that records how its readers were made, so
/// that a later run simulates the same readers.
pub const WORLD_FILE: &str = "demo-world.json";

/// How the demo's readers and catalogue were made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorldSettings {
    /// Readers.
    pub readers: usize,
    /// Stories.
    pub stories: usize,
    /// Seed of catalogue, taste, appeal and clicks.
    pub seed: u64,
    /// The time the catalogue's publish times are relative to.
    pub created_at: Timestamp,
    /// The choice model.
    pub model: ReaderModel,
}

impl WorldSettings {
    /// The catalogue, readers and hidden truths these settings make.
    fn world(&self) -> (sample::SampleData, World) {
        let data = sample::generate(
            SampleSize {
                items: self.stories,
                users: self.readers,
            },
            self.seed,
            self.created_at,
        );
        let readers = data.users.iter().map(|u| u.id.clone()).collect();
        let world = World::new(self.model, &data.items, readers, self.seed, self.created_at);
        (data, world)
    }
}

fn reader_model(args: &DemoArgs) -> ReaderModel {
    ReaderModel {
        concentration: args.concentration,
        appeal_share: args.appeal_share,
        base_rate: args.base_rate,
        position_bias: args.position_bias,
        fatigue: args.fatigue,
        noise: args.noise,
    }
}

/// Runs the demo: data on first run, the server, the experiment, the results.
pub async fn run(config: Config, args: &DemoArgs) -> anyhow::Result<()> {
    let model = reader_model(args);
    model.validate().map_err(anyhow::Error::msg)?;
    if args.readers == 0 || args.stories == 0 || args.feed_size == 0 || args.concurrency == 0 {
        bail!("--readers, --stories, --feed-size and --concurrency must be at least 1");
    }
    let store = data_dir::open_store(&config.data_dir)?;
    let counts = store
        .counts()
        .await
        .context("cannot read the data directory")?;
    let world_file = config.data_dir.join(WORLD_FILE);
    let settings = if counts == StoreCounts::default() {
        let settings = WorldSettings {
            readers: args.readers,
            stories: args.stories,
            seed: args.seed,
            created_at: Timestamp::now(),
            model,
        };
        let loaded = create(store.as_ref(), &settings, args.history).await?;
        std::fs::write(&world_file, serde_json::to_vec_pretty(&settings)?)
            .with_context(|| format!("cannot write {}", world_file.display()))?;
        println!(
            "Created a news portal in {}: {} stories, {} readers, {} events of reading history.",
            config.data_dir.display(),
            grouped(loaded.items),
            grouped(loaded.users),
            grouped(loaded.events)
        );
        Some(settings)
    } else {
        println!(
            "Using the data already in {}: {} items, {} users, {} events.",
            config.data_dir.display(),
            grouped(counts.items),
            grouped(counts.users),
            grouped(counts.events)
        );
        read_settings(&world_file, &model)?
    };

    let listen = config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let url = serve::base_url(listener.local_addr()?);
    // The readers use the default tenant's key, or the admin key (which acts
    // on the default tenant without a tenant header).
    let api_key = config
        .server
        .api_key
        .clone()
        .or_else(|| config.server.admin_key.clone());
    // The server opens the directory itself (with its registry of tenants).
    drop(store);
    let tenants = tephra_server::Tenants::open_embedded(config)
        .await
        .context("cannot load the data directory")?;
    let state = tenants.default_state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        tokio::select! {
            () = tephra_server::shutdown_signal() => {}
            _ = stopped => {}
        }
    };
    let mut server = tokio::spawn(tephra_server::serve(listener, tenants, shutdown));
    print_tour(&url, api_key.is_some());

    if state.models().current().is_none() {
        let outcome = state
            .train_now()
            .await
            .map_err(|e| anyhow::anyhow!("cannot train the first model: {e}"))?;
        println!(
            "Trained {} on {} events in {} ms (holdout NDCG@10 {:.3}).",
            outcome.candidate.spec,
            grouped(outcome.n_events as u64),
            outcome.elapsed_ms,
            outcome.candidate_holdout.ndcg_at_10
        );
    }

    match (settings, args.rounds) {
        (Some(settings), rounds) if rounds > 0 => {
            let (_, world) = settings.world();
            let client = Client::new(&url, api_key.as_deref());
            tokio::select! {
                outcome = simulate(&client, &world, args) => {
                    let summary = outcome?;
                    print_results(&summary);
                }
                ended = &mut server => {
                    ended??;
                    return Ok(());
                }
            }
        }
        (None, _) => println!(
            "This data directory has no reader simulation ({WORLD_FILE}); delete it to start afresh."
        ),
        _ => {}
    }
    if args.exit_after_simulation {
        let _ = stop.send(());
        server.await??;
        return Ok(());
    }
    println!("Still serving on {url} (Ctrl-C to stop): {url}/dashboard, {url}/demo");
    server.await??;
    Ok(())
}

/// The settings a data directory was made with; `None` for data not made by
/// the demo. Flags of the choice model that differ are reported, not applied:
/// the readers' history was made with the recorded ones.
fn read_settings(path: &Path, flags: &ReaderModel) -> anyhow::Result<Option<WorldSettings>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let settings: WorldSettings = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is damaged; delete the data directory to start afresh",
            path.display()
        )
    })?;
    if settings.model != *flags {
        println!(
            "Note: the readers of this data directory were made with {:?}; \
             delete the directory to simulate other readers.",
            settings.model
        );
    }
    Ok(Some(settings))
}

/// Imports the catalogue, the readers and their history in one import session.
async fn create(
    store: &dyn Store,
    settings: &WorldSettings,
    history: usize,
) -> anyhow::Result<StoreCounts> {
    let (data, world) = settings.world();
    let published: Vec<Timestamp> = data.items.iter().map(|i| i.published_at).collect();
    let events = world.history(history, settings.seed, settings.created_at, &published);
    let mut session = store
        .begin_import()
        .await
        .context("cannot start importing the demo data")?;
    session
        .add_items(data.items)
        .await
        .context("cannot import the stories")?;
    session
        .add_users(data.users)
        .await
        .context("cannot import the readers")?;
    for chunk in events.chunks(10_000) {
        session
            .add_events(chunk.to_vec())
            .await
            .context("cannot import the reading history")?;
    }
    session
        .commit()
        .await
        .context("cannot commit the demo data")
}

fn print_tour(url: &str, auth: bool) {
    let header = if auth {
        " -H \"Authorization: Bearer $TEPHRA_API_KEY\""
    } else {
        ""
    };
    let user = sample::sample_user_id();
    println!("Tephra demo is listening on {url} (Ctrl-C to stop).");
    println!("  Dashboard:    {url}/dashboard");
    println!("  Reader page:  {url}/demo?reader={user}");
    println!("  API docs:     {url}/docs");
    println!("Try:");
    println!("  curl{header} '{url}/v1/recommend/{user}?n=5&explain=true'");
    println!("  curl{header} '{url}/v1/trending?n=5&category=electric-cars'");
    println!("  curl{header} '{url}/v1/analytics/ctr?by=variant'");
}

/// A small JSON client for the simulation.
struct Client {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
}

impl Client {
    fn new(url: &str, api_key: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            api_key: api_key.map(str::to_owned),
        }
    }

    /// Sends with the API key; the status and the JSON body, whatever the status.
    async fn send_raw(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let builder = match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        };
        let response = builder.send().await.context("the server did not answer")?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Sends with the API key; the JSON body of a success, an error otherwise.
    async fn send(&self, builder: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let (status, body) = self.send_raw(builder).await?;
        if !status.is_success() {
            bail!("the server answered {status}: {body}");
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body))
            .await
    }
}

/// What one reader has been shown so far, for fatigue.
#[derive(Default)]
struct ReaderState {
    seen: HashMap<usize, u32>,
}

/// The experiment's name and results, as the server computed them.
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// `GET /v1/experiments/{name}/results`.
    pub results: Value,
    /// Feeds served.
    pub feeds: usize,
    /// Wall time of the simulation.
    pub elapsed: Duration,
}

/// Creates the experiment and lets every reader visit their feed `rounds` times.
async fn simulate(client: &Client, world: &World, args: &DemoArgs) -> anyhow::Result<Summary> {
    let experiment = start_experiment(client).await?;
    println!(
        "Experiment `{experiment}` on the home feed: popularity (control) vs personalized. \
         {} readers visit {} times; watch it on the dashboard.",
        grouped(world.readers.len() as u64),
        args.rounds
    );
    let states: Arc<Vec<Mutex<ReaderState>>> =
        Arc::new((0..world.readers.len()).map(|_| Mutex::default()).collect());
    let visits = (world.readers.len() * args.rounds) as u64;
    let bar = ProgressBar::new(visits).with_style(
        ProgressStyle::with_template("  {bar:40} {pos}/{len} feeds {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let started_at = Timestamp::now();
    let mut order: Vec<usize> = (0..world.readers.len()).collect();
    for round in 0..args.rounds {
        order.shuffle(&mut StdRng::seed_from_u64(args.seed ^ round as u64));
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(order.iter().copied())
            .map(|reader| {
                let states = Arc::clone(&states);
                let bar = bar.clone();
                async move {
                    let seed = args.seed ^ ((round as u64) << 32) ^ reader as u64;
                    // Each round stands for an hour of the portal's day, the
                    // last one ending now, so that charts show the rounds.
                    let at = Timestamp(
                        started_at.millis() - (args.rounds - 1 - round) as i64 * 3_600_000,
                    );
                    let page = (reader, args.feed_size, seed, at);
                    let outcome = visit(client, world, &states[reader], page).await;
                    bar.inc(1);
                    outcome
                }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    }
    bar.finish_and_clear();
    let results = client
        .get(&format!("/v1/experiments/{experiment}/results"))
        .await?;
    Ok(Summary {
        experiment,
        results,
        feeds: visits as usize,
        elapsed: started.elapsed(),
    })
}

/// Stops an experiment still running on `home` from an earlier run and starts
/// a new one with a free name.
async fn start_experiment(client: &Client) -> anyhow::Result<String> {
    let list = client.get("/v1/experiments").await?;
    let existing: Vec<&Value> = list["experiments"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for e in &existing {
        if e["status"] == "running" && e["scene"] == "home" {
            let name = e["name"].as_str().unwrap_or_default();
            client
                .post(&format!("/v1/experiments/{name}/stop"), &json!({}))
                .await?;
        }
    }
    let taken = |name: &str| existing.iter().any(|e| e["name"] == name);
    let names = std::iter::once("news-feed".to_owned())
        .chain((2..).map(|i| format!("news-feed-{i}")))
        .filter(|n| !taken(n));
    // A deleted experiment's name stays taken while its events are stored
    // (the server answers 409): try the next one.
    for name in names.take(1000) {
        let body = json!({
            "name": name,
            "scene": "home",
            "start": true,
            "variants": [
                {"name": "popularity", "weight": 1,
                 "overrides": {"recall": [{"source": "popular", "quota": 200}]}},
                {"name": "personalized", "weight": 1}
            ]
        });
        let builder = client
            .http
            .post(format!("{}/v1/experiments", client.url))
            .json(&body);
        let (status, answer) = client.send_raw(builder).await?;
        match status.as_u16() {
            201 => return Ok(name),
            409 if answer["error"]["field"] == "name" => continue,
            _ => bail!("cannot create the experiment: {status}: {answer}"),
        }
    }
    bail!("no free experiment name among news-feed, news-feed-2, … news-feed-1000")
}

/// One visit: the reader opens their feed, sees it (impressions), clicks by
/// the model; everything is reported with the response's `request_id`, dated
/// `at` (the round's hour).
async fn visit(
    client: &Client,
    world: &World,
    state: &Mutex<ReaderState>,
    (reader, feed_size, seed, at): (usize, usize, u64, Timestamp),
) -> anyhow::Result<()> {
    let reader_id = &world.readers[reader];
    let feed = client
        .get(&format!("/v1/recommend/{reader_id}?n={feed_size}"))
        .await?;
    let request_id = feed["request_id"].as_str().unwrap_or_default().to_owned();
    let shown: Vec<String> = feed["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::with_capacity(shown.len() * 2);
    {
        let mut state = state.lock().expect("reader state lock");
        for (position, id) in shown.iter().enumerate() {
            let Some(story) = world.story_index(id) else {
                continue;
            };
            let event = |event_type: &str, value: f64| {
                json!({"user_id": reader_id, "item_id": id, "type": event_type, "value": value,
                       "request_id": request_id, "position": position, "scene": "home",
                       "timestamp": at})
            };
            events.push(event("impression", 1.0));
            let seen = state.seen.entry(story).or_insert(0);
            let p = world.click_probability(&mut rng, reader, story, position, *seen);
            *seen += 1;
            if rng.random_bool(p) {
                for (event_type, value) in world.after_click(&mut rng, story) {
                    events.push(event(event_type, value));
                }
            }
        }
    }
    if !events.is_empty() {
        client.post("/v1/events", &Value::Array(events)).await?;
    }
    Ok(())
}

fn percent(e: &Value) -> String {
    match (
        e["value"].as_f64(),
        e["ci_low"].as_f64(),
        e["ci_high"].as_f64(),
    ) {
        (Some(v), Some(lo), Some(hi)) => {
            format!("{:.2}% [{:.2}, {:.2}]", 100.0 * v, 100.0 * lo, 100.0 * hi)
        }
        _ => "n/a".to_owned(),
    }
}

/// Prints the experiment's table, the CTR ratio with its interval, and the
/// sample-ratio check.
fn print_results(summary: &Summary) {
    let r = &summary.results;
    println!(
        "\nExperiment `{}`: {} feeds in {:.1} s.",
        summary.experiment,
        grouped(summary.feeds as u64),
        summary.elapsed.as_secs_f64()
    );
    println!(
        "  {:<14} {:>7} {:>12} {:>8}  {:<24} {:<24}",
        "variant", "users", "impressions", "clicks", "CTR [95% CI]", "conversion [95% CI]"
    );
    let variants = r["variants"].as_array().cloned().unwrap_or_default();
    for v in &variants {
        println!(
            "  {:<14} {:>7} {:>12} {:>8}  {:<24} {:<24}",
            v["name"].as_str().unwrap_or("?"),
            grouped(v["users"].as_u64().unwrap_or(0)),
            grouped(v["impressions"].as_u64().unwrap_or(0)),
            grouped(v["clicks"].as_u64().unwrap_or(0)),
            percent(&v["ctr"]),
            percent(&v["conversion"]),
        );
    }
    if let Some(treatment) = variants.get(1) {
        let ratio = &treatment["ctr_ratio"];
        match (ratio["value"].as_f64(), ratio["ci_low"].as_f64(), ratio["ci_high"].as_f64()) {
            (Some(v), Some(lo), Some(hi)) => println!(
                "  CTR ratio personalized / popularity: {v:.2} (95% CI {lo:.2} to {hi:.2}), p = {:.2e}",
                treatment["vs_control"]["ctr"]["p_value"].as_f64().unwrap_or(f64::NAN)
            ),
            _ => println!("  CTR ratio personalized / popularity: not enough data"),
        }
    }
    let srm = &r["srm"];
    if let Some(p) = srm["p_value"].as_f64() {
        println!(
            "  Sample ratio check: users {:?}, p = {p:.3}{}",
            srm["observed"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<_>>())
                .unwrap_or_default(),
            if srm["mismatch"] == true {
                " — MISMATCH: the split is broken"
            } else {
                " (no mismatch)"
            }
        );
    }
}
