//! The command line: every subcommand, flag and its help text.
//!
//! Only argument shapes live here; what a command does lives in its own module.
//! Flags are the last configuration layer (see `config_layers`), so the ones that
//! mirror a setting are `Option`s: absent means "keep what file and environment say".

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::export::ExportWhat;
use crate::import::{FileFormat, RecordKind};

/// Tephra: a self-hosted real-time recommendation engine.
#[derive(Debug, Parser)]
#[command(name = "tephra", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (settings as in README's configuration reference).
    #[arg(long, global = true, env = "TEPHRA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory of the embedded store [setting: data_dir; default: data, or data/demo for `demo`].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log line format on stderr (RUST_LOG sets the level).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API from the data directory.
    Serve(ServeArgs),
    /// Load items, users or events from a CSV or JSON Lines file into the data directory (offline).
    Import(ImportArgs),
    /// Write items, users and/or events as JSON Lines, in the API's schema.
    Export(ExportArgs),
    /// A news portal with simulated readers (created on the first run): an A/B
    /// experiment of a popularity feed against the personalized one, its results,
    /// then the server with its dashboard.
    Demo(DemoArgs),
    /// Measure performance.
    Bench(BenchArgs),
    /// Write a synthetic interaction log (power-law popularity, latent topics) as CSV.
    Gen(GenArgs),
    /// Evaluate models offline on a data set with full-ranking metrics.
    Eval(EvalArgs),
    /// Train the configured model on the data directory's events, judge it on a
    /// holdout and save it for `serve` when it is not worse than the saved one (offline).
    Train(TrainArgs),
}

/// `tephra train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model spec to train, e.g. `seq_ease`, `ease:lambda=500`, `ials:factors=64`
    /// [setting: training.model; default: seq_ease].
    #[arg(long, value_name = "SPEC")]
    pub model: Option<String>,

    /// Recency half-life of a history, in events; 0 weighs every event alike
    /// [setting: training.recency_half_life; default 7].
    #[arg(long, value_name = "EVENTS")]
    pub recency_half_life: Option<f32>,
}

/// `tephra serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [setting: server.listen; default 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Require `Authorization: Bearer KEY` on every /v1 route [setting: server.api_key].
    /// Prefer TEPHRA_SERVER__API_KEY: command lines are visible to other local users.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// Keep the data in PostgreSQL instead of the data directory, so that
    /// several nodes can serve it [setting: cluster.store]; needs --cache.
    #[arg(long, value_name = "postgres://…")]
    pub store: Option<String>,

    /// Redis shared by the nodes of a cluster [setting: cluster.cache].
    #[arg(long, value_name = "redis://…")]
    pub cache: Option<String>,
}

/// `tephra import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    pub kind: RecordKind,

    /// The file to read (.csv, .jsonl, .ndjson or .json; otherwise the content decides).
    pub file: PathBuf,

    /// Override the format detected from the extension or the content.
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,

    /// Skip invalid lines (and report them) instead of stopping at the first one.
    #[arg(long)]
    pub skip_invalid: bool,

    /// Records handed to the store at a time (memory use grows with it).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,

    /// Event type for CSV event rows without a `type` column or with an empty one.
    #[arg(long, default_value = "click", value_name = "TYPE")]
    pub event_type: String,
}

/// `tephra export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export; `all` writes items, then users, then events.
    #[arg(value_enum, default_value_t = ExportWhat::All)]
    pub what: ExportWhat,

    /// Output file (default: stdout). With `all`, a directory that receives
    /// items.jsonl, users.jsonl and events.jsonl.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// `tephra demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on [setting: server.listen; default 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Simulated readers (first run of a data directory only).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub readers: usize,

    /// Stories in the catalogue (first run of a data directory only).
    #[arg(long, default_value_t = 600, value_name = "N")]
    pub stories: usize,

    /// Random stories each reader looked at before the demo (their history).
    #[arg(long, default_value_t = 400, value_name = "N")]
    pub history: usize,

    /// Visits of every reader during the experiment (0: serve without simulating).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub rounds: usize,

    /// Stories per feed page.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub feed_size: usize,

    /// Dirichlet concentration of readers' topic taste (small: one or two
    /// favourite topics; large: everyone alike).
    #[arg(long, default_value_t = 0.3, value_name = "ALPHA")]
    pub concentration: f64,

    /// Share of click propensity that comes from a story's general appeal,
    /// whatever the reader's taste.
    #[arg(long, default_value_t = 0.25, value_name = "SHARE")]
    pub appeal_share: f64,

    /// Click probability scale (a few percent).
    #[arg(long, default_value_t = 0.1, value_name = "P")]
    pub base_rate: f64,

    /// Exponent b of the position bias 1/(1+position)^b.
    #[arg(long, default_value_t = 0.5, value_name = "B")]
    pub position_bias: f64,

    /// Click weight per earlier impression of the same story.
    #[arg(long, default_value_t = 0.5, value_name = "F")]
    pub fatigue: f64,

    /// σ of the log-normal noise on every click probability.
    #[arg(long, default_value_t = 0.3, value_name = "SIGMA")]
    pub noise: f64,

    /// Seed of the catalogue, the readers and their clicks.
    #[arg(long, default_value_t = crate::sample::DEMO_SEED)]
    pub seed: u64,

    /// Feeds requested at once during the simulation.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,

    /// Exit after printing the experiment's results instead of serving on.
    #[arg(long)]
    pub exit_after_simulation: bool,
}

/// `tephra bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub which: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Offline import rate, HTTP ingestion rate, and /v1/popular latency against /healthz.
    Ingest(IngestBenchArgs),
    /// Accuracy of what /v1/recommend serves after `tephra import` + `tephra train`
    /// (standard protocol, every test user asked over HTTP).
    Accuracy(AccuracyBenchArgs),
    /// Analytics API latency over a large synthetic event log (default 10
    /// million events), and the startup time to rebuild the aggregates.
    Analytics(AnalyticsBenchArgs),
    /// A long run of mixed reads and writes at a fixed rate: throughput,
    /// latency, errors and resident memory over time.
    Soak(SoakBenchArgs),
    /// Crash safety: SIGKILL the server at random moments during sustained
    /// ingestion, restart it, and check that no acknowledged event was lost
    /// (fails if one was).
    Crash(CrashBenchArgs),
    /// Cluster mode on this machine: ingestion into PostgreSQL through one
    /// node, /v1/recommend throughput with one node and with two, and the CPU
    /// of each process (needs PostgreSQL and Redis).
    Cluster(ClusterBenchArgs),
    /// Real-time serving at scale: /v1/recommend latency, throughput and server
    /// CPU per request against /healthz, memory, and how fast an event shows in
    /// the next recommendation.
    Serve(ServeBenchArgs),
}

/// `tephra bench serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeBenchArgs {
    /// Users in the generated log (`tephra gen`).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub users: u64,

    /// Items in the generated log.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub items: u64,

    /// Events in the generated log.
    #[arg(long, default_value_t = 50_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,

    /// Model spec for `tephra train`, served from its snapshot.
    #[arg(long, default_value = "ials", value_name = "SPEC")]
    pub model: String,

    /// Concurrent keep-alive connections during the load.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub connections: u64,

    /// Measured seconds of load per endpoint and run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,

    /// Seconds of unmeasured load before each measurement.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_seconds: u64,

    /// Requests per second of the fixed-rate measurement, whose latency is
    /// what the latency targets judge (a saturated closed loop only measures
    /// its own queue: latency = connections / throughput).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: u64,

    /// Runs, each /v1/recommend then /healthz; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,

    /// Users whose top item is clicked to see whether the next list drops it.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub freshness_samples: u64,

    /// Worker threads of the load generator (it shares the machine with the server).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub client_threads: u64,

    /// Seed of the users asked for.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Folder for the generated log and the data directory, reused by later runs.
    #[arg(long, default_value = ".cache", value_name = "DIR")]
    pub cache_dir: PathBuf,

    /// Import and train again even when the cached data directory holds a model.
    #[arg(long)]
    pub fresh: bool,
}

/// `tephra bench accuracy`.
#[derive(Debug, Args, Clone)]
pub struct AccuracyBenchArgs {
    /// `movielens-100k` (fetched by scripts/fetch-movielens.sh) or a
    /// `user_id,item_id,timestamp` CSV file.
    #[arg(long, default_value = "movielens-100k")]
    pub dataset: String,

    /// Model spec for `tephra train` (default: the configured default, seq_ease).
    #[arg(long, value_name = "SPEC")]
    pub model: Option<String>,

    /// Concurrent HTTP connections asking for recommendations.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub connections: u64,
}

/// `tephra bench soak`.
#[derive(Debug, Args, Clone)]
pub struct SoakBenchArgs {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,

    /// Requests per second (60% recommendations with their impressions and a
    /// click posted back, 25% event batches of 20, 10% lists, 5% analytics).
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,

    /// Seconds between progress lines.
    #[arg(long, default_value_t = 60)]
    pub report_secs: u64,

    /// Minutes after which memory should stay flat (the growth is reported
    /// from there).
    #[arg(long, default_value_t = 2.0)]
    pub warmup_minutes: f64,

    /// Events posted before the run, as the server's history.
    #[arg(long, default_value_t = 200_000)]
    pub history: u64,

    /// Most requests outstanding at once; beyond it a request counts as an error.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,

    /// Keep the server from retraining during the run (separates the memory
    /// of training runs from the memory of the data).
    #[arg(long)]
    pub no_training: bool,
}

/// `tephra bench cluster`.
#[derive(Debug, Args, Clone)]
pub struct ClusterBenchArgs {
    /// PostgreSQL the nodes keep their data in.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub store: String,

    /// Redis the nodes share.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub cache: String,

    /// Events ingested.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,

    /// Events per request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,

    /// Distinct users.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,

    /// Catalogue size.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub items: u64,

    /// Recommendation requests per phase.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,

    /// Concurrent connections.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=512))]
    pub connections: u64,
}

/// `tephra bench crash`.
#[derive(Debug, Args, Clone)]
pub struct CrashBenchArgs {
    /// Kill-and-restart rounds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,

    /// Concurrent writers, each posting batches as its own user.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub connections: u64,

    /// Events per batch.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,

    /// Shortest time from the server being ready to the kill, in ms.
    #[arg(long, default_value_t = 100)]
    pub min_ms: u64,

    /// Longest time from the server being ready to the kill, in ms.
    #[arg(long, default_value_t = 1500)]
    pub max_ms: u64,

    /// Seed of the kill times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `tephra bench analytics`.
#[derive(Debug, Args, Clone)]
pub struct AnalyticsBenchArgs {
    /// Events in the synthetic log.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,

    /// Distinct users.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,

    /// Distinct items.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub items: u64,

    /// Requests per route per run.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,

    /// Runs; the median of their p99 is reported too.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// `tephra bench ingest`.
#[derive(Debug, Args, Clone)]
pub struct IngestBenchArgs {
    /// Events in the generated import files.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,

    /// Events posted over HTTP per run (in batches of 1,000).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_events: u64,

    /// Concurrent connections posting event batches.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub http_connections: u64,

    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,

    /// Concurrent connections for the latency measurements.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub connections: u64,

    /// Requests per latency measurement (for /v1/popular and for /healthz).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
}

/// `tephra gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Distinct users.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub users: u64,

    /// Distinct items.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub items: u64,

    /// Total events (rows).
    #[arg(long)]
    pub events: u64,

    /// Latent topics that group items and users' tastes.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub topics: u64,

    /// Random seed: the same arguments and seed write the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Output CSV file (`user_id,item_id,timestamp,value`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `tephra eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// `movielens-100k` (see scripts/fetch-movielens.sh) or a log file: CSV
    /// `user_id,item_id,timestamp[,value]`, or a RecBole `.inter` file.
    #[arg(long, value_name = "NAME|FILE")]
    pub dataset: String,

    /// How the test part is held out.
    #[arg(long, value_enum, default_value_t = ProtocolArg::UserTemporal)]
    pub protocol: ProtocolArg,

    /// Models to evaluate, separated by `;`, each `NAME[:PARAM=VALUE,...]`
    /// (e.g. `ease:lambda=250;popularity`). May be repeated.
    #[arg(
        long = "models",
        alias = "model",
        value_name = "SPECS",
        required = true
    )]
    pub models: Vec<String>,

    /// Cutoffs K, comma-separated.
    #[arg(long = "k", value_delimiter = ',', default_values_t = [10usize, 20])]
    pub ks: Vec<usize>,

    /// Tune each model first: try N configurations on a validation split cut
    /// from the training part, keep the best NDCG@10, refit, then test once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub tune: Option<u64>,

    /// How a user's history is weighted when scoring: `plain` or
    /// `recency:HALF_LIFE` (weight 2^(-age/HALF_LIFE), age in events).
    #[arg(long, default_value = "plain", value_name = "WEIGHTING")]
    pub weighting: String,

    /// Seed of the tuning search.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// The evaluation protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Per user, the last 20% of interactions (at least one) are test (the standard protocol).
    UserTemporal,
    /// Per user, the last interaction is test.
    LeaveLastOne,
    /// The last 20% of the whole log in time are test.
    GlobalTemporal,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "tephra",
            "serve",
            "--data-dir",
            "x",
            "--listen",
            "127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("x")));
        let Command::Serve(serve) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(serve.listen, Some(SocketAddr::from(([127, 0, 0, 1], 1))));
    }

    #[test]
    fn import_defaults() {
        let cli = Cli::try_parse_from(["tephra", "import", "events", "e.csv"]).unwrap();
        let Command::Import(args) = cli.command else {
            panic!("expected import")
        };
        assert_eq!(
            (args.kind, args.batch_size, args.event_type.as_str()),
            (RecordKind::Events, 10_000, "click")
        );
        assert!(
            Cli::try_parse_from(["tephra", "import", "events", "e.csv", "--batch-size", "0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["tephra", "import", "things", "e.csv"]).is_err());
    }
}
