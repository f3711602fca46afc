//! The single writer thread and its group commit.
//!
//! Every write of an embedded store goes through one thread. It takes every request
//! waiting in its queue, applies them all in one write transaction, commits (and so
//! fsyncs) once, and then answers each caller. Under load, many callers share one
//! fsync; alone, a caller pays exactly one. redb allows a single writer at a time
//! anyway, so the thread costs no parallelism.
//!
//! Pure validation happens in the caller's task before the request is queued, so
//! one caller's bad input never fails another caller's write. A storage failure
//! fails every request of the group (nothing of the group is stored).
//!
//! An import session takes over the thread: while it is open, other writes wait in
//! the queue and run after it ends.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::import::{self, ImportLink};
use super::txn::{is_op_level, Changes, Op, Outcome};
use super::Shared;
use crate::{Result, StoreError};

/// Requests waiting for the writer; beyond this, callers wait to enqueue.
const QUEUE_CAPACITY: usize = 1024;
/// Most requests grouped into one transaction, to bound the latency of the first.
const MAX_GROUP: usize = 256;

/// Where a caller's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// A message to the writer thread.
pub(crate) enum Request {
    /// Apply one operation in the next group commit.
    Write(Op, Reply<Outcome>),
    /// Start an import session; answered with the session's channel.
    BeginImport(Reply<ImportLink>),
}

/// Starts the writer thread for `shared`. It stops when every sender is dropped.
pub(crate) fn spawn(shared: Arc<Shared>) -> Result<(mpsc::Sender<Request>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let handle = std::thread::Builder::new()
        .name("tephra-store-writer".into())
        .spawn(move || run(&shared, rx))
        .map_err(|e| StoreError::Io(format!("starting the store's writer thread: {e}")))?;
    Ok((tx, handle))
}

fn run(shared: &Shared, mut rx: mpsc::Receiver<Request>) {
    while let Some(first) = rx.blocking_recv() {
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
                    commit_group(shared, std::mem::take(&mut writes));
                    import::serve(shared, reply);
                }
            }
        }
        commit_group(shared, writes);
    }
}

/// Applies `writes` in one transaction, commits, and answers every caller.
fn commit_group(shared: &Shared, writes: Vec<(Op, Reply<Outcome>)>) {
    if writes.is_empty() {
        return;
    }
    let (ops, replies): (Vec<Op>, Vec<Reply<Outcome>>) = writes.into_iter().unzip();
    let mut results = Vec::with_capacity(ops.len());
    let group = apply_and_commit(shared, ops, &mut results);
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
    shared: &Shared,
    ops: Vec<Op>,
    results: &mut Vec<Result<Outcome>>,
) -> Result<()> {
    use super::tables::DbResultExt;
    let txn = shared
        .db
        .begin_write()
        .ctx("starting a write transaction")?;
    let staged = {
        let mut changes = Changes::open(&txn, &shared.index)?;
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
    txn.commit().ctx("committing a write transaction")?;
    shared.merge(staged)
}

/// The same failure, for each caller of a failed group.
pub(crate) fn replicate(e: &StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Io(other.to_string()),
    }
}
