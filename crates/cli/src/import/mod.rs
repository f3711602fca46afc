//! `tephra import`: bulk-loading a CSV or JSON Lines file into a data directory.
//!
//! The file is streamed: a reader thread parses and validates lines and hands
//! batches to the store's import session through a small bounded channel, so
//! memory stays flat whatever the file size and parsing overlaps with writing.
//! The session commits once at the end: a bad line (without `--skip-invalid`), a
//! read error or a store error drops it, and nothing of the file is stored.

pub mod csv_rows;
mod format;
pub mod jsonl;
mod records;
mod skipped;

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tephra_core::{Event, EventTypes, Item, User, ValidationError};
use tephra_server::Config;
use tephra_store::{ImportSession, Store, StoreCounts};
use tokio::sync::mpsc;

use crate::cli::ImportArgs;
use crate::data_dir;
use crate::number::{grouped, grouped_f64};

pub use format::FileFormat;
pub use records::{Record, RecordKind};
pub use skipped::SkippedLines;

/// One line of an import file: its number (1-based, counting blank lines) and
/// the record it holds, or why it was refused.
#[derive(Debug)]
pub struct Line {
    /// Line number in the file.
    pub number: u64,
    /// The parsed record, or the reason the line is invalid.
    pub record: Result<Record, ValidationError>,
}

/// A reader of one file format.
pub trait RecordSource {
    /// The next non-blank line; `Ok(None)` at the end of the file. An `Err` is a
    /// failure to read the file at all (not a bad line) and ends the import.
    fn next_line(&mut self) -> anyhow::Result<Option<Line>>;
    /// Bytes consumed so far, for the progress bar.
    fn bytes_read(&self) -> u64;
}

/// How to import one file.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What the file holds.
    pub kind: RecordKind,
    /// The format, or `None` to detect it.
    pub format: Option<FileFormat>,
    /// Skip invalid lines instead of stopping at the first one.
    pub skip_invalid: bool,
    /// Records per batch handed to the store.
    pub batch_size: usize,
    /// Event type for CSV rows that give none.
    pub default_event_type: String,
    /// The configured event types events are checked against.
    pub event_types: EventTypes,
    /// Show a progress bar (only ever drawn on a terminal).
    pub show_progress: bool,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The format read.
    pub format: FileFormat,
    /// Records handed to the store.
    pub imported: u64,
    /// Lines skipped by `--skip-invalid`.
    pub skipped: SkippedLines,
    /// Wall time from opening the file to the durable commit.
    pub elapsed: Duration,
    /// Store sizes after the commit.
    pub counts: StoreCounts,
}

impl ImportReport {
    /// Imported records per second of wall time.
    pub fn records_per_sec(&self) -> f64 {
        self.imported as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Imports `path` into `store` in one import session.
///
/// This is the whole code path of `tephra import` (parsing, validation, batching,
/// commit), which is why the benchmark calls it too.
pub async fn import_file(
    store: &dyn Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let format = match options.format {
        Some(format) => format,
        None => format::detect(path)?,
    };
    let file = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = progress_bar(options.show_progress, size);

    let mut session = store
        .begin_import()
        .await
        .context("cannot start the import")?;
    let (batches, mut received) = mpsc::channel::<Batch>(2);
    let reader = {
        let (options, path, progress) = (options.clone(), path.to_path_buf(), progress.clone());
        tokio::task::spawn_blocking(move || {
            read_file(file, format, &options, &batches, &progress, &path)
        })
    };

    let mut store_error = None;
    while let Some(batch) = received.recv().await {
        if let Err(e) = batch.add_to(session.as_mut()).await {
            store_error = Some(e);
            break;
        }
    }
    drop(received); // stops the reader if the store failed
    let read = reader
        .await
        .context("the file reader stopped unexpectedly")?;
    progress.finish_and_clear();
    if let Some(e) = store_error {
        return Err(
            anyhow::Error::new(e).context("the store refused the import; nothing was imported")
        );
    }
    let read = read?;
    let counts = session
        .commit()
        .await
        .context("cannot commit the import; nothing was imported")?;
    Ok(ImportReport {
        format,
        imported: read.records,
        skipped: read.skipped,
        elapsed: started.elapsed(),
        counts,
    })
}

/// `tephra import`: imports one file into the configured data directory and
/// prints what happened.
pub async fn run(args: &ImportArgs, config: &Config) -> anyhow::Result<()> {
    let store = data_dir::open_store(&config.data_dir)?;
    let options = ImportOptions {
        kind: args.kind,
        format: args.format,
        skip_invalid: args.skip_invalid,
        batch_size: usize::try_from(args.batch_size).unwrap_or(usize::MAX),
        default_event_type: args.event_type.clone(),
        event_types: config.events.clone(),
        show_progress: true,
    };
    let report = import_file(store.as_ref(), &args.file, &options).await?;
    println!(
        "Imported {} {} from {} ({}) in {:.2} s: {} records/s.",
        grouped(report.imported),
        args.kind.noun_for(report.imported),
        args.file.display(),
        report.format.name(),
        report.elapsed.as_secs_f64(),
        grouped_f64(report.records_per_sec())
    );
    if report.skipped.total() > 0 {
        let noun = if report.skipped.total() == 1 {
            "line"
        } else {
            "lines"
        };
        println!(
            "Skipped {} invalid {noun}:",
            grouped(report.skipped.total())
        );
        print!("{}", report.skipped);
    } else {
        println!("Skipped 0 lines.");
    }
    println!(
        "{} now holds {} items, {} users and {} events.",
        config.data_dir.display(),
        grouped(report.counts.items),
        grouped(report.counts.users),
        grouped(report.counts.events)
    );
    Ok(())
}

fn progress_bar(wanted: bool, size: u64) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What the reader thread saw.
struct ReadSummary {
    records: u64,
    skipped: SkippedLines,
}

/// Runs on a blocking thread: parses, validates and batches the whole file.
fn read_file(
    file: File,
    format: FileFormat,
    options: &ImportOptions,
    batches: &mpsc::Sender<Batch>,
    progress: &ProgressBar,
    path: &Path,
) -> anyhow::Result<ReadSummary> {
    let mut source: Box<dyn RecordSource> = match format {
        FileFormat::Jsonl => Box::new(jsonl::JsonLinesSource::new(
            BufReader::with_capacity(256 * 1024, file),
            options.kind,
        )),
        FileFormat::Csv => Box::new(
            csv_rows::CsvSource::new(
                BufReader::with_capacity(256 * 1024, file),
                options.kind,
                &options.default_event_type,
            )
            .with_context(|| format!("`{}`", path.display()))?,
        ),
    };
    let mut summary = ReadSummary {
        records: 0,
        skipped: SkippedLines::default(),
    };
    let mut batch = Batch::new(options.kind, options.batch_size);
    while let Some(line) = source
        .next_line()
        .with_context(|| format!("cannot read `{}`", path.display()))?
    {
        let checked = line
            .record
            .and_then(|r| r.validate(&options.event_types).map(|()| r));
        match checked {
            Ok(record) => {
                batch.push(record);
                summary.records += 1;
            }
            Err(error) if options.skip_invalid => summary.skipped.add(line.number, &error),
            Err(error) => {
                return Err(anyhow!(
                    "line {}: {}\nnothing was imported: fix the line, or pass --skip-invalid to import the valid lines",
                    line.number,
                    skipped::describe(&error)
                ));
            }
        }
        if batch.len() >= options.batch_size {
            let full = std::mem::replace(&mut batch, Batch::new(options.kind, options.batch_size));
            progress.set_position(source.bytes_read());
            batches
                .blocking_send(full)
                .map_err(|_| anyhow!("the import was stopped"))?;
        }
    }
    progress.set_position(source.bytes_read());
    if batch.len() > 0 {
        batches
            .blocking_send(batch)
            .map_err(|_| anyhow!("the import was stopped"))?;
    }
    Ok(summary)
}

/// Records of one kind on their way to the store.
enum Batch {
    Items(Vec<Item>),
    Users(Vec<User>),
    Events(Vec<Event>),
}

impl Batch {
    fn new(kind: RecordKind, capacity: usize) -> Self {
        match kind {
            RecordKind::Items => Batch::Items(Vec::with_capacity(capacity)),
            RecordKind::Users => Batch::Users(Vec::with_capacity(capacity)),
            RecordKind::Events => Batch::Events(Vec::with_capacity(capacity)),
        }
    }

    /// Adds a record; sources only yield records of the kind they were asked for.
    fn push(&mut self, record: Record) {
        match (self, record) {
            (Batch::Items(v), Record::Item(r)) => v.push(r),
            (Batch::Users(v), Record::User(r)) => v.push(r),
            (Batch::Events(v), Record::Event(r)) => v.push(r),
            _ => debug_assert!(false, "a record of another kind reached the batch"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Batch::Items(v) => v.len(),
            Batch::Users(v) => v.len(),
            Batch::Events(v) => v.len(),
        }
    }

    async fn add_to(self, session: &mut dyn ImportSession) -> tephra_store::Result<()> {
        match self {
            Batch::Items(v) => session.add_items(v).await,
            Batch::Users(v) => session.add_users(v).await,
            Batch::Events(v) => session.add_events(v).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use tephra_store::MemoryStore;

    use super::*;

    fn options(kind: RecordKind, skip_invalid: bool) -> ImportOptions {
        ImportOptions {
            kind,
            format: None,
            skip_invalid,
            batch_size: 2,
            default_event_type: "click".into(),
            event_types: EventTypes::default(),
            show_progress: false,
        }
    }

    fn file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        File::create(&path).unwrap().write_all(content).unwrap();
        path
    }

    #[tokio::test]
    async fn imports_jsonl_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "u.jsonl",
            b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n\n{\"id\":\"c\"}\n",
        );
        let store = MemoryStore::new();
        let report = import_file(&store, &path, &options(RecordKind::Users, false))
            .await
            .unwrap();
        assert_eq!(
            (report.imported, report.format, report.counts.users),
            (3, FileFormat::Jsonl, 3)
        );
        assert!(store.get_user("c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn bad_line_commits_nothing_and_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "e.csv",
            b"user_id,item_id,type\nu,i,click\nu,i,click\nu,i,click\n,i,click\nu,i,click\n",
        );
        let store = MemoryStore::new();
        let err = import_file(&store, &path, &options(RecordKind::Events, false))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 5: user_id: "), "{err}");
        assert_eq!(store.counts().await.unwrap(), StoreCounts::default());
    }

    #[tokio::test]
    async fn skip_invalid_imports_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            &dir,
            "e.csv",
            b"user_id,item_id,type\nu,i,click\nu,i,teleport\n,i,\nu,i,like\n",
        );
        let store = MemoryStore::new();
        let report = import_file(&store, &path, &options(RecordKind::Events, true))
            .await
            .unwrap();
        assert_eq!((report.imported, report.skipped.total()), (2, 2));
        assert_eq!(
            report.skipped.counts().collect::<Vec<_>>(),
            [("invalid_id", 1), ("unknown_event_type", 1)]
        );
        assert_eq!(store.counts().await.unwrap().events, 2);
    }
}
