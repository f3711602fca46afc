//! `tephra`: the command-line entry point.
//!
//! Thin glue: parse the command line, layer the configuration, start logging,
//! and hand over to the module of the subcommand. All the real work lives in the
//! library crates (store, server) and in one module per command here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use tephra::cli::{BenchCommand, Cli, Command};
use tephra::config_layers::FlagSettings;
use tephra::{bench, config_layers, demo, eval_cmd, export, gen, import, logging, serve, train};

/// Where `tephra demo` keeps its data unless `--data-dir` says otherwise: apart
/// from the default data directory, so that trying the demo never mixes sample
/// data into real data.
const DEMO_DATA_DIR: &str = "data/demo";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `tephra export | head` closes the pipe early; that is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = FlagSettings {
        data_dir: cli.data_dir.clone(),
        ..FlagSettings::default()
    };
    let file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => {
            flags.listen = args.listen;
            flags.api_key = args.api_key;
            flags.store = args.store;
            flags.cache = args.cache;
            let config = config_layers::load(file, &flags)?;
            logging::init(cli.log_format, "info");
            serve::run(config).await
        }
        Command::Import(args) => {
            let config = config_layers::load(file, &flags)?;
            logging::init(cli.log_format, "warn");
            import::run(&args, &config).await
        }
        Command::Export(args) => {
            let config = config_layers::load(file, &flags)?;
            logging::init(cli.log_format, "warn");
            export::run(&args, &config).await
        }
        Command::Demo(args) => {
            flags.listen = args.listen;
            flags.data_dir = Some(cli.data_dir.unwrap_or_else(|| PathBuf::from(DEMO_DATA_DIR)));
            let config = config_layers::load(file, &flags)?;
            // Request logs would drown the simulation's progress.
            logging::init(cli.log_format, "warn");
            demo::run(config, &args).await
        }
        Command::Bench(args) => {
            logging::init(cli.log_format, "warn");
            match args.which {
                BenchCommand::Ingest(args) => bench::ingest::run(&args).await,
                BenchCommand::Accuracy(args) => bench::accuracy::run(&args).await,
                BenchCommand::Analytics(args) => bench::analytics::run(&args).await,
                BenchCommand::Crash(args) => bench::crash::run(&args).await,
                BenchCommand::Cluster(args) => bench::cluster::run(&args).await,
                BenchCommand::Soak(args) => bench::soak::run(&args).await,
                // Its own runtime, sized for a lean load generator.
                BenchCommand::Serve(args) => {
                    tokio::task::spawn_blocking(move || bench::serve::run(&args)).await?
                }
            }
        }
        // CPU-bound and parallel (rayon): off the async workers.
        Command::Gen(args) => {
            logging::init(cli.log_format, "warn");
            let options = gen::GenOptions {
                users: usize::try_from(args.users)?,
                items: usize::try_from(args.items)?,
                events: args.events,
                topics: usize::try_from(args.topics)?,
                seed: args.seed,
                out: args.out,
                show_progress: true,
            };
            tokio::task::spawn_blocking(move || gen::run(&options)).await?
        }
        Command::Eval(args) => {
            logging::init(cli.log_format, "warn");
            tokio::task::spawn_blocking(move || eval_cmd::run(&args)).await?
        }
        Command::Train(args) => {
            let config = config_layers::load(file, &flags)?;
            logging::init(cli.log_format, "warn");
            train::run(&args, config).await
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
    })
}
