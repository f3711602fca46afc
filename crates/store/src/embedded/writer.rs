//! The single writer thread: group commit, durability modes, and recovery from
//! disk failures.
//!
//! Every write of an embedded store goes through one thread. It takes every request
//! waiting in its queue, applies them all in one write transaction, commits once,
//! and then answers each caller. Under load, many callers share one commit; alone,
//! a caller pays exactly one. redb allows a single writer at a time anyway, so the
//! thread costs no parallelism.
//!
//! Pure validation happens in the caller's task before the request is queued, so
//! one caller's bad input never fails another caller's write. A storage failure
//! fails every request of the group (nothing of the group is stored).
//!
//! An import session takes over the thread: while it is open, other writes wait in
//! the queue and run after it ends.
//!
//! Durability: in [`Durability::Immediate`] mode every commit is fsynced before
//! its callers are answered. In [`Durability::Periodic`] mode commits are
//! non-durable (redb keeps them in memory) and the writer keeps a copy of the
//! operations they applied (`unsynced`) until a durable commit covers them: the
//! first group commit once the oldest of them is `interval` old, or an empty
//! commit when the queue stays idle that long, or an import's commit, or the
//! shutdown. Each durable commit in this mode also counts itself in the file
//! (`tables::DURABLE_COMMITS_KEY`).
//!
//! Disk failures: after an I/O error redb refuses every later operation on the
//! same handle (`StorageError::PreviousIo`), including reads of pages it has not
//! cached, until the handle is dropped and the file reopened; on disk, the file
//! still holds its last durable commit. So when a group fails, the writer first
//! checks the handle with an empty durable commit; if that fails too, the handle
//! is poisoned and the store is *broken*:
//! - the poisoned handle is closed and readers get a read-only view of the file
//!   (`backend::open_view`), which shows its last durable commit; while the
//!   writer swaps handles, readers wait for the new one (`Shared::db`) rather
//!   than fail;
//! - every later write (or import) first tries to reopen the file: unless a
//!   test write beside the file still fails (`backend::probe_disk`), it drops the
//!   view, opens the file as at startup, reloads the in-memory index from it
//!   (`tables::init`, as `open_file` does), writes the operations of `unsynced`
//!   again in one durable commit (they get the same `seq` numbers and indices,
//!   since they are applied in the same order to the same state), and carries on;
//!   if the reopen fails, the write is refused and readers get the view back.
//!
//! If the durable commit that failed reached the disk after all (a real fsync can
//! fail after the data was written), the count of durable commits in the file
//! says so, and `unsynced` is not written twice. A difference between the index
//! reloaded from the file and the one in memory is logged as an error.
//!
//! Each handle is closed before the next one opens, and each takes the file
//! lock, so the file stays locked (but for those instants) while it is broken.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use redb::Database;
use tokio::sync::{mpsc, oneshot};

use super::backend;
use super::import::{self, ImportEnd, ImportLink};
use super::options::Durability;
use super::state::Index;
use super::tables::{self, DbResultExt};
use super::txn::{is_op_level, Changes, Op, Outcome};
use super::Shared;
use crate::{Result, StoreError};

/// Requests waiting for the writer; beyond this, callers wait to enqueue.
const QUEUE_CAPACITY: usize = 1024;
/// Most requests grouped into one transaction, to bound the latency of the first.
const MAX_GROUP: usize = 256;
/// What to do about a failed write, appended to its error.
const ADVICE: &str = "check that the disk has free space and works (see the system log); \
                      writes resume by themselves once it accepts them again";

/// Where a caller's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// A message to the writer thread.
pub(crate) enum Request {
    /// Apply one operation in the next group commit.
    Write(Op, Reply<Outcome>),
    /// Start an import session; answered with the session's channel.
    BeginImport(Reply<ImportLink>),
}

/// Starts the writer thread for `shared`. It stops when every sender is dropped,
/// after making every acknowledged write durable.
///
/// `durable_commits` is the count recorded in the file (used in periodic mode).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    durability: Durability,
    durable_commits: u64,
) -> Result<(mpsc::Sender<Request>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let (interval, clock) = match durability {
        Durability::Immediate => (None, None),
        Durability::Periodic { interval } => {
            let clock = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| StoreError::Io(format!("starting the store writer's timer: {e}")))?;
            (Some(interval), Some(clock))
        }
    };
    let writer = Writer {
        shared,
        interval,
        clock,
        unsynced: Vec::new(),
        unsynced_since: None,
        durable_commits,
        broken: None,
    };
    let handle = std::thread::Builder::new()
        .name("tephra-store-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::Io(format!("starting the store's writer thread: {e}")))?;
    Ok((tx, handle))
}

/// The state of the writer thread.
struct Writer {
    shared: Arc<Shared>,
    /// The longest time a write may stay only in memory: `Some` in periodic mode.
    interval: Option<Duration>,
    /// Wakes the thread when a durable commit is due (periodic mode).
    clock: Option<tokio::runtime::Runtime>,
    /// Operations acknowledged but not yet durable, in commit order (periodic
    /// mode); written again after a reopen of the file.
    unsynced: Vec<Op>,
    /// When the oldest of `unsynced` was acknowledged.
    unsynced_since: Option<Instant>,
    /// Durable commits counted in the file (periodic mode).
    durable_commits: u64,
    /// Set while the file cannot be written.
    broken: Option<Broken>,
}

/// Why the store cannot write, since when.
struct Broken {
    /// The failure that poisoned redb's handle.
    cause: String,
    /// Why the last attempt to reopen the file failed, if one was made.
    reopen: Option<String>,
    /// When the store broke or the last reopen was tried.
    last_attempt: Instant,
}

/// What waiting for the queue gave.
enum Received {
    Request(Request),
    /// A durable commit (or a reopen) is due.
    Tick,
    Closed,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            let first = match self.receive(&mut rx) {
                Received::Request(request) => request,
                Received::Tick => {
                    self.on_tick();
                    continue;
                }
                Received::Closed => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            let mut writes = Vec::with_capacity(group.len());
            for request in group {
                match request {
                    Request::Write(op, reply) => writes.push((op, reply)),
                    Request::BeginImport(reply) => {
                        // Earlier requests commit first, so the session sees them.
                        self.commit_group(std::mem::take(&mut writes));
                        self.serve_import(reply);
                    }
                }
            }
            self.commit_group(writes);
        }
        self.shut_down();
    }

    /// The next request, or a tick when a durable commit is due first.
    fn receive(&self, rx: &mut mpsc::Receiver<Request>) -> Received {
        let (Some(deadline), Some(clock)) = (self.deadline(), &self.clock) else {
            return rx
                .blocking_recv()
                .map_or(Received::Closed, Received::Request);
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        // The timer must be created inside the runtime, hence the async block.
        match clock.block_on(async { tokio::time::timeout_at(deadline, rx.recv()).await }) {
            Ok(Some(request)) => Received::Request(request),
            Ok(None) => Received::Closed,
            Err(_) => Received::Tick,
        }
    }

    /// When the writes held in memory must be made durable (or, if the store is
    /// broken, when to try again), if any are.
    fn deadline(&self) -> Option<Instant> {
        let interval = self.interval?;
        let since = self.unsynced_since?;
        Some(match &self.broken {
            None => since + interval,
            Some(broken) => broken.last_attempt + interval,
        })
    }

    fn on_tick(&mut self) {
        if self.broken.is_some() {
            // A failure is logged by `recover`; the next tick tries again.
            let _ = self.recover();
        } else {
            self.sync();
        }
    }

    /// Whether the next commit must be durable.
    fn durable_due(&self) -> bool {
        match (self.interval, self.unsynced_since) {
            (None, _) => true,
            (Some(interval), Some(since)) => since.elapsed() >= interval,
            (Some(_), None) => false,
        }
    }

    /// Applies `writes` in one transaction, commits, and answers every caller.
    fn commit_group(&mut self, writes: Vec<(Op, Reply<Outcome>)>) {
        if writes.is_empty() {
            return;
        }
        if let Err(e) = self.ensure_writable() {
            for (_, reply) in writes {
                let _ = reply.send(Err(replicate(&e)));
            }
            return;
        }
        let (ops, replies): (Vec<Op>, Vec<Reply<Outcome>>) = writes.into_iter().unzip();
        let durable = self.durable_due();
        // Periodic mode: keep what a non-durable commit applies until it is durable.
        let copies: Vec<Op> = if durable { Vec::new() } else { ops.clone() };
        let mut results = Vec::with_capacity(ops.len());
        let group = self.apply_and_commit(ops, durable, &mut results);
        match &group {
            Ok(()) if durable => self.synced(),
            Ok(()) => {
                let applied = copies
                    .into_iter()
                    .zip(&results)
                    .filter(|(_, result)| result.is_ok())
                    .map(|(op, _)| op);
                self.unsynced.extend(applied);
                if !self.unsynced.is_empty() {
                    self.unsynced_since.get_or_insert_with(Instant::now);
                }
            }
            Err(StoreError::Io(cause)) => self.fail(cause),
            Err(_) => {}
        }
        let group = group.map_err(|e| write_failed("the write", &e));
        let mut results = results.into_iter();
        for reply in replies {
            let answer = match (results.next(), &group) {
                // A refused operation wrote nothing: its own error is the answer.
                (Some(Err(own)), _) => Err(own),
                (Some(Ok(outcome)), Ok(())) => Ok(outcome),
                (_, Err(failure)) => Err(replicate(failure)),
                (None, Ok(())) => Err(StoreError::Io("the write was not applied".into())),
            };
            // The caller may have gone away; its write stands regardless.
            let _ = reply.send(answer);
        }
    }

    fn apply_and_commit(
        &self,
        ops: Vec<Op>,
        durable: bool,
        results: &mut Vec<Result<Outcome>>,
    ) -> Result<()> {
        let db = self.shared.db()?;
        let mut txn = db.begin_write().ctx("starting a write transaction")?;
        if !durable {
            txn.set_durability(redb::Durability::None)
                .ctx("asking for a non-durable commit")?;
        }
        let staged = {
            let mut changes = Changes::open(&txn, &self.shared.index)?;
            for op in ops {
                match changes.apply(op) {
                    Ok(outcome) => results.push(Ok(outcome)),
                    Err(e) if is_op_level(&e) => results.push(Err(e)),
                    // Dropping the transaction aborts it.
                    Err(e) => return Err(e),
                }
            }
            changes.into_staged()
        };
        if durable && self.interval.is_some() {
            tables::record_durable_commit(&txn, self.durable_commits + 1)?;
        }
        txn.commit().ctx("committing a write transaction")?;
        self.shared.merge(staged)
    }

    /// Runs an import session, unless the store cannot write.
    fn serve_import(&mut self, reply: Reply<ImportLink>) {
        if let Err(e) = self.ensure_writable() {
            let _ = reply.send(Err(e));
            return;
        }
        let count = self.interval.map(|_| self.durable_commits + 1);
        match import::serve(&self.shared, reply, count) {
            // An import commits durably, and so makes every earlier commit durable.
            ImportEnd::Committed => self.synced(),
            ImportEnd::Abandoned => {}
            ImportEnd::Failed(cause) => self.fail(&cause),
        }
    }

    /// An empty durable commit: makes every earlier commit durable.
    fn durable_commit(&self) -> Result<()> {
        let db = self.shared.db()?;
        let txn = db.begin_write().ctx("starting a write transaction")?;
        if self.interval.is_some() {
            tables::record_durable_commit(&txn, self.durable_commits + 1)?;
        }
        txn.commit().ctx("committing to disk")
    }

    /// Makes the writes held in memory durable (periodic mode).
    fn sync(&mut self) {
        match self.durable_commit() {
            Ok(()) => self.synced(),
            Err(e) => {
                tracing::warn!(error = %e, path = %self.shared.path.display(), "the periodic durable commit failed");
                self.fail(&cause(&e));
            }
        }
    }

    /// Notes that a durable commit succeeded.
    fn synced(&mut self) {
        if self.interval.is_some() {
            self.durable_commits += 1;
        }
        self.unsynced.clear();
        self.unsynced_since = None;
    }

    /// Handles a storage failure: if redb's handle no longer works, moves readers
    /// to a read-only view and marks the store broken.
    fn fail(&mut self, cause: &str) {
        if self.broken.is_some() {
            return;
        }
        // Not every failure poisons the handle; an empty durable commit tells.
        if self.durable_commit().is_ok() {
            self.synced();
            return;
        }
        tracing::error!(
            error = cause,
            path = %self.shared.path.display(),
            unsynced_writes = self.unsynced.len(),
            "the store file cannot be written; reads go to a read-only view of it, \
             and the next write will try to reopen it"
        );
        self.broken = Some(Broken {
            cause: cause.to_owned(),
            reopen: None,
            last_attempt: Instant::now(),
        });
        self.open_view();
    }

    /// Closes the handle readers were using and gives them a read-only view of
    /// the file instead. Readers wait meanwhile (see `Shared::db`), so that none
    /// reads through the poisoned handle; if the view cannot be opened, reads
    /// fail until the file is reopened.
    fn open_view(&self) {
        retire(self.shared.swap_db(None));
        match backend::open_view(&self.shared.path) {
            Ok(view) => {
                self.shared.swap_db(Some(Arc::new(view)));
            }
            Err(e) => {
                tracing::error!(error = %e, path = %self.shared.path.display(), "cannot open a read-only view of the store file; reads may fail until it is reopened");
            }
        }
    }

    /// Reopens the file if the store is broken; the error to answer if it stays so.
    fn ensure_writable(&mut self) -> Result<()> {
        if self.broken.is_some() {
            self.recover()
        } else {
            Ok(())
        }
    }

    /// Tries to reopen the file, reload the index and write again what was only
    /// in memory; on failure the store stays broken and readers keep a view.
    fn recover(&mut self) -> Result<()> {
        if let Some(broken) = self.broken.as_mut() {
            broken.last_attempt = Instant::now();
        }
        // Cheap, and keeps the view in place while the disk still fails.
        if let Err(e) = backend::probe_disk(&self.shared.path, self.shared.faults.as_ref()) {
            if let Some(broken) = self.broken.as_mut() {
                broken.reopen = Some(cause(&e));
            }
            return Err(self.broken_error());
        }
        // The view goes first: the file must not change under a handle that
        // reads it, and the view holds the file lock.
        retire(self.shared.swap_db(None));
        let reopened = self.reopen();
        match reopened {
            Ok((db, index, durable_commits)) => {
                self.check_index(&index);
                *self.shared.index.write() = index;
                self.shared.swap_db(Some(Arc::new(db)));
                tracing::info!(
                    path = %self.shared.path.display(),
                    rewritten = self.unsynced.len(),
                    "reopened the store file after a disk failure; writes work again"
                );
                self.durable_commits = durable_commits;
                self.broken = None;
                self.unsynced.clear();
                self.unsynced_since = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %self.shared.path.display(), "the store file still cannot be reopened for writing");
                if let Some(broken) = self.broken.as_mut() {
                    broken.reopen = Some(cause(&e));
                }
                let error = self.broken_error();
                self.open_view();
                Err(error)
            }
        }
    }

    /// Opens the file, loads its index and writes `unsynced` again; returns the
    /// handle, the index and the count of durable commits.
    fn reopen(&self) -> Result<(Database, Index, u64)> {
        let db = backend::open_database(
            &self.shared.path,
            self.shared.faults.as_ref(),
            self.shared.cache_bytes,
        )?;
        let index = tables::init(&db)?;
        if self.unsynced.is_empty() {
            let count = match self.interval {
                Some(_) => tables::durable_commits(&db)?,
                None => self.durable_commits,
            };
            return Ok((db, index, count));
        }
        let found = tables::durable_commits(&db)?;
        if found == self.durable_commits + 1 {
            tracing::warn!(
                path = %self.shared.path.display(),
                "the durable commit reported as failed reached the disk after all; \
                 the writes held in memory are in the file"
            );
            return Ok((db, index, found));
        }
        if found != self.durable_commits {
            tracing::error!(
                path = %self.shared.path.display(),
                expected = self.durable_commits,
                found,
                lost_writes = self.unsynced.len(),
                "the store file is not at the durable commit this process made last; \
                 keeping the file as it is, without the writes held in memory"
            );
            return Ok((db, index, found));
        }
        let index = RwLock::new(index);
        let txn = db
            .begin_write()
            .ctx("starting the transaction that writes again what was only in memory")?;
        let staged = {
            let mut changes = Changes::open(&txn, &index)?;
            for op in self.unsynced.iter().cloned() {
                match changes.apply(op) {
                    Ok(_) => {}
                    // Applied once already, so this cannot happen; if it does, the
                    // index check reports the difference.
                    Err(e) if is_op_level(&e) => {
                        tracing::error!(error = %e, "an acknowledged write was refused when written again")
                    }
                    Err(e) => return Err(e),
                }
            }
            changes.into_staged()
        };
        tables::record_durable_commit(&txn, found + 1)?;
        txn.commit()
            .ctx("committing the writes that were only in memory")?;
        let mut index = index.into_inner();
        index.merge(staged)?;
        Ok((db, index, found + 1))
    }

    /// Logs an error if the index reloaded from the file differs from the one in
    /// memory, which holds exactly what was acknowledged.
    fn check_index(&self, reloaded: &Index) {
        let current = self.shared.index.read();
        let same_ids = |a: &tephra_core::IdMap, b: &tephra_core::IdMap| {
            a.len() == b.len() && a.iter().eq(b.iter())
        };
        if current.counts() != reloaded.counts()
            || !same_ids(&current.ids.items, &reloaded.ids.items)
            || !same_ids(&current.ids.users, &reloaded.ids.users)
        {
            tracing::error!(
                path = %self.shared.path.display(),
                acknowledged = ?current.counts(),
                in_file = ?reloaded.counts(),
                "after reopening, the store file differs from what was acknowledged \
                 (a write reported as failed may have reached the disk when fsync failed); \
                 the file wins"
            );
        }
    }

    /// The error of a write refused because the store is broken.
    fn broken_error(&self) -> StoreError {
        let Some(broken) = &self.broken else {
            return StoreError::Io("internal error: the store is not broken".into());
        };
        let reopen = broken.reopen.as_deref().map_or(String::new(), |why| {
            format!(", and reopening it failed: {why}")
        });
        StoreError::Io(format!(
            "the write failed and nothing of it was stored: the store file {} has been \
             unwritable since a disk failure ({}){reopen}; {ADVICE}",
            self.shared.path.display(),
            broken.cause,
        ))
    }

    /// Makes every acknowledged write durable before the thread ends.
    fn shut_down(&mut self) {
        if self.unsynced.is_empty() {
            return;
        }
        if self.broken.is_none() {
            self.sync();
        }
        if self.broken.is_some() {
            let _ = self.recover();
        }
        if !self.unsynced.is_empty() {
            tracing::error!(
                path = %self.shared.path.display(),
                lost_writes = self.unsynced.len(),
                "the store closes while its file cannot be written: writes acknowledged \
                 since the last durable commit are lost"
            );
        }
    }
}

/// Waits until no reader uses `db` any more, then closes it (releasing the file).
fn retire(db: Option<Arc<Database>>) {
    let Some(mut db) = db else {
        return;
    };
    let started = Instant::now();
    let mut warned = false;
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                drop(db);
                return;
            }
            Err(still_used) => {
                db = still_used;
                if !warned && started.elapsed() > Duration::from_secs(10) {
                    tracing::warn!(
                        "waiting for long reads to finish before reopening the store file"
                    );
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// The message of an error, without the `storage failed:` prefix of `Io`.
pub(crate) fn cause(e: &StoreError) -> String {
    match e {
        StoreError::Io(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The error of a failed `what` ("the write", "the import"): says that nothing
/// was stored, why, and what to do.
pub(crate) fn write_failed(what: &str, e: &StoreError) -> StoreError {
    match e {
        StoreError::Io(m) => StoreError::Io(format!(
            "{what} failed and nothing of it was stored: {m}; {ADVICE}"
        )),
        other => replicate(other),
    }
}

/// The same failure, for each caller of a failed group.
pub(crate) fn replicate(e: &StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Closed => StoreError::Closed,
        StoreError::Io(m) => StoreError::Io(m.clone()),
        other => StoreError::Io(other.to_string()),
    }
}
