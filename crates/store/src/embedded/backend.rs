//! Opening the store file with redb, and the two storage backends that wrap
//! redb's file backend:
//!
//! - [`FaultBackend`], used only when a [`FaultSwitch`] is given: it fails writes
//!   or fsyncs on demand, so that tests can prove the store survives I/O errors;
//! - [`ViewBackend`], a read-only view of the file for the time the file cannot
//!   be written (see `writer`): redb must write the header even to open a file
//!   for reading after a failure, so the view keeps every write in memory. It
//!   holds the file lock like any handle, so the file stays locked meanwhile.
//!
//! Both keep unsynced writes in a [`Shadow`] of 4 KiB blocks over the file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use redb::backends::FileBackend;
use redb::{BackendError, Database, DatabaseError, StorageBackend};

use super::options::{FaultMode, FaultSwitch};
use super::tables;
use crate::{Result, StoreError};

/// Opens (or creates) the store file at `path` for reading and writing, through
/// a [`FaultBackend`] if `faults` is given.
///
/// Fails with [`StoreError::Locked`] if the file is open elsewhere (the fault
/// backend passes redb's file locks through, so this holds with it too).
pub(crate) fn open_database(
    path: &Path,
    faults: Option<&FaultSwitch>,
    cache_bytes: usize,
) -> Result<Database> {
    let opened = match faults {
        None => Database::builder().set_cache_size(cache_bytes).create(path),
        Some(switch) => open_file(path, true).and_then(|file| {
            Database::builder()
                .set_cache_size(cache_bytes)
                .create_with_backend(FaultBackend::new(FileBackend::new(file)?, switch.clone())?)
        }),
    };
    opened.map_err(|e| match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.display().to_string()),
        e => tables::db_error(&format!("opening {}", path.display()))(e.into()),
    })
}

/// Opens the store file at `path` as a read-only view: the state of its last
/// durable commit, whatever redb needs to write to open it kept in memory.
///
/// The view locks the file like any handle (the lock needs a writable
/// descriptor, but nothing is ever written through it); fails with
/// [`StoreError::Locked`] if the file is open elsewhere.
pub(crate) fn open_view(path: &Path) -> Result<Database> {
    open_file(path, false)
        .and_then(|file| {
            Database::builder().create_with_backend(ViewBackend::new(FileBackend::new(file)?)?)
        })
        .map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(path.display().to_string()),
            e => tables::db_error(&format!("opening a read-only view of {}", path.display()))(
                e.into(),
            ),
        })
}

/// Checks that the disk holding the store file at `path` accepts writes: writes
/// and fsyncs a small file beside it, then removes it. With a fault switch that
/// is on, fails as the switch says, since the store file is on the same disk.
///
/// Reopening the store file after a failure costs a recovery of the file (reading
/// all of it) and the loss of the read-only view meanwhile, so the writer checks
/// this first, and a store whose disk is still failing stays cheap to retry.
pub(crate) fn probe_disk(path: &Path, faults: Option<&FaultSwitch>) -> Result<()> {
    let mut probe_name = path.file_name().unwrap_or_default().to_owned();
    probe_name.push(".probe");
    let probe = path.with_file_name(probe_name);
    let injected = match faults.map(FaultSwitch::mode) {
        Some(FaultMode::FailWrites) | Some(FaultMode::FailSync) => Some(eio()),
        Some(FaultMode::DiskFull) => Some(enospc()),
        Some(FaultMode::Off) | None => None,
    };
    let written = match injected {
        Some(e) => Err(e),
        None => std::fs::write(&probe, [0u8; 4096])
            .and_then(|()| File::open(&probe))
            .and_then(|file| file.sync_all()),
    };
    // Best effort: a leftover probe file is harmless and overwritten next time.
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| {
        StoreError::Io(format!(
            "the disk still refuses writes (test write to {}: {e})",
            probe.display()
        ))
    })
}

/// Opens the file for reading and writing, creating it if `create` says so.
fn open_file(path: &Path, create: bool) -> Result<File, DatabaseError> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)?)
}

/// Size of the blocks a [`Shadow`] tracks.
const BLOCK: u64 = 4096;

/// Writes not yet in the file, over the file's content: what the kernel's page
/// cache holds between two fsyncs.
#[derive(Debug)]
struct Shadow {
    /// Written blocks, whole, by block number.
    blocks: HashMap<u64, Box<[u8]>>,
    /// Length of the storage as redb sees it.
    len: u64,
    /// Bytes of the file from here on read as zeros (the storage was shrunk
    /// below them since the last flush).
    file_valid: u64,
    /// Length of the file itself.
    file_len: u64,
}

impl Shadow {
    fn new(len: u64) -> Self {
        Self {
            blocks: HashMap::new(),
            len,
            file_valid: len,
            file_len: len,
        }
    }

    /// Whether nothing awaits a flush.
    fn is_clean(&self) -> bool {
        self.blocks.is_empty() && self.file_valid == self.file_len && self.len == self.file_len
    }

    /// Reads `out.len()` bytes at `offset`, from written blocks or else `file`.
    fn read(&self, file: &FileBackend, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let end = offset
            .checked_add(out.len() as u64)
            .filter(|&end| end <= self.len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the storage",
                )
            })?;
        let mut pos = offset;
        while pos < end {
            let block = pos / BLOCK;
            let in_block = (pos % BLOCK) as usize;
            let take = (BLOCK - pos % BLOCK).min(end - pos) as usize;
            let dest = &mut out[(pos - offset) as usize..][..take];
            match self.blocks.get(&block) {
                Some(data) => dest.copy_from_slice(&data[in_block..in_block + take]),
                None => self.read_file(file, pos, dest)?,
            }
            pos += take as u64;
        }
        Ok(())
    }

    /// Reads from the file, zeros past what of it is valid.
    fn read_file(&self, file: &FileBackend, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let valid = self.file_valid.saturating_sub(offset).min(out.len() as u64) as usize;
        out[valid..].fill(0);
        if valid > 0 {
            file.read(offset, &mut out[..valid])?;
        }
        Ok(())
    }

    fn write(&mut self, file: &FileBackend, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write past 2^64"))?;
        let mut pos = offset;
        while pos < end {
            let block = pos / BLOCK;
            let in_block = (pos % BLOCK) as usize;
            let take = (BLOCK - pos % BLOCK).min(end - pos) as usize;
            if !self.blocks.contains_key(&block) {
                let mut fresh = vec![0; BLOCK as usize].into_boxed_slice();
                let start = block * BLOCK;
                let readable = self.len.saturating_sub(start).min(BLOCK) as usize;
                self.read_file(file, start, &mut fresh[..readable])?;
                self.blocks.insert(block, fresh);
            }
            if let Some(data_block) = self.blocks.get_mut(&block) {
                data_block[in_block..in_block + take]
                    .copy_from_slice(&data[(pos - offset) as usize..][..take]);
            }
            pos += take as u64;
        }
        self.len = self.len.max(end);
        Ok(())
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            self.file_valid = self.file_valid.min(len);
            let first_gone = len.div_ceil(BLOCK);
            self.blocks.retain(|&block, _| block < first_gone);
            // The part of the last block past the new end must read as zeros if
            // the storage grows again.
            if let Some(last) = self.blocks.get_mut(&(len / BLOCK)) {
                last[(len % BLOCK) as usize..].fill(0);
            }
        }
        self.len = len;
    }

    /// Writes everything to `file` (without syncing it).
    fn flush(&mut self, file: &FileBackend) -> io::Result<()> {
        if self.is_clean() {
            return Ok(());
        }
        if self.file_valid < self.file_len {
            file.set_len(self.file_valid)?;
        }
        if self.len != self.file_valid {
            file.set_len(self.len)?;
        }
        let mut blocks: Vec<_> = self.blocks.drain().collect();
        blocks.sort_unstable_by_key(|(block, _)| *block);
        for (block, data) in blocks {
            let start = block * BLOCK;
            let len = self.len.saturating_sub(start).min(BLOCK) as usize;
            file.write(start, &data[..len])?;
        }
        self.file_valid = self.len;
        self.file_len = self.len;
        Ok(())
    }

    /// Forgets every write since the last flush.
    fn discard(&mut self, file_len: u64) {
        *self = Self::new(file_len);
    }
}

/// The error a failing disk returns.
fn eio() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(5)
    }
    #[cfg(not(unix))]
    {
        io::Error::other("Input/output error")
    }
}

/// The error a full disk returns.
fn enospc() -> io::Error {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(28)
    }
    #[cfg(not(unix))]
    {
        io::Error::new(io::ErrorKind::StorageFull, "No space left on device")
    }
}

/// redb's file backend, failing on demand as its [`FaultSwitch`] says.
///
/// Writes wait in a [`Shadow`] until `sync_data`, which writes them out and
/// fsyncs, so that a failed fsync can lose them as a real one may. Locks are
/// passed through, so a second open of the file is refused as usual.
#[derive(Debug)]
pub(crate) struct FaultBackend {
    file: FileBackend,
    switch: FaultSwitch,
    shadow: Mutex<Shadow>,
    /// Whether a fault was injected since the last successful fsync: what was
    /// written since then is then dropped at close rather than written out, so
    /// that a half-done commit never reaches the file.
    faulted: AtomicBool,
}

impl FaultBackend {
    fn new(file: FileBackend, switch: FaultSwitch) -> io::Result<Self> {
        let len = file.len()?;
        Ok(Self {
            file,
            switch,
            shadow: Mutex::new(Shadow::new(len)),
            faulted: AtomicBool::new(false),
        })
    }

    /// The error of a write, if the switch says writes fail.
    fn write_fault(&self) -> Option<io::Error> {
        let fault = match self.switch.mode() {
            FaultMode::FailWrites => Some(eio()),
            FaultMode::DiskFull => Some(enospc()),
            FaultMode::Off | FaultMode::FailSync => None,
        };
        if fault.is_some() {
            self.faulted.store(true, Ordering::SeqCst);
        }
        fault
    }
}

impl StorageBackend for FaultBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.shadow.lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.shadow.lock().read(&self.file, offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if let Some(e) = self.write_fault() {
            return Err(e);
        }
        self.shadow.lock().set_len(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut shadow = self.shadow.lock();
        let fault = match self.switch.mode() {
            FaultMode::Off => None,
            FaultMode::FailSync => Some(eio()),
            FaultMode::FailWrites | FaultMode::DiskFull => self.write_fault(),
        };
        if let Some(e) = fault {
            self.faulted.store(true, Ordering::SeqCst);
            shadow.discard(self.file.len()?);
            return Err(e);
        }
        shadow.flush(&self.file)?;
        self.file.sync_data()?;
        self.faulted.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(e) = self.write_fault() {
            return Err(e);
        }
        self.shadow.lock().write(&self.file, offset, data)
    }

    fn close(&self) -> io::Result<()> {
        // A clean close has synced everything; what is left reaches the file as
        // the page cache would, unless the disk is failing.
        let flushed = match self.switch.mode() {
            FaultMode::Off if !self.faulted.load(Ordering::SeqCst) => {
                self.shadow.lock().flush(&self.file)
            }
            _ => Ok(()),
        };
        let closed = self.file.close();
        flushed.and(closed)
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// A read-only view of the file: reads come from the file, writes (redb's
/// recovery on open, its header) stay in memory, fsync does nothing; nothing
/// ever calls the file's `write` or `set_len`. Locks are passed through.
#[derive(Debug)]
pub(crate) struct ViewBackend {
    file: FileBackend,
    shadow: Mutex<Shadow>,
}

impl ViewBackend {
    fn new(file: FileBackend) -> io::Result<Self> {
        let len = file.len()?;
        Ok(Self {
            file,
            shadow: Mutex::new(Shadow::new(len)),
        })
    }
}

impl StorageBackend for ViewBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.shadow.lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.shadow.lock().read(&self.file, offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.shadow.lock().set_len(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.shadow.lock().write(&self.file, offset, data)
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(content: &[u8]) -> (FileBackend, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("f");
        std::fs::write(&path, content).expect("write");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        (FileBackend::new(file).expect("backend"), dir)
    }

    fn read(shadow: &Shadow, file: &FileBackend, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0xEE; len];
        shadow.read(file, offset, &mut out).expect("read");
        out
    }

    #[test]
    fn shadow_overlays_writes_and_flushes_them() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (file, _dir) = backend(&content);
        let mut shadow = Shadow::new(content.len() as u64);
        shadow
            .write(&file, 4090, &[1; 10])
            .expect("write across a block edge");
        shadow
            .write(&file, 12_000, &[2; 3])
            .expect("write past the end");
        assert_eq!(shadow.len, 12_003);
        let mut expected = content.clone();
        expected[4090..4100].fill(1);
        expected.resize(12_000, 0);
        expected.extend([2; 3]);
        assert_eq!(read(&shadow, &file, 0, 12_003), expected);
        let mut on_disk = vec![0; content.len()];
        file.read(0, &mut on_disk).expect("file read");
        assert_eq!(on_disk, content, "nothing reaches the file before a flush");
        assert!(
            shadow.read(&file, 12_000, &mut [0; 4]).is_err(),
            "past the end"
        );

        shadow.flush(&file).expect("flush");
        assert!(shadow.is_clean());
        let mut on_disk = vec![0; 12_003];
        file.read(0, &mut on_disk).expect("file read");
        assert_eq!(on_disk, expected);
    }

    #[test]
    fn shadow_shrink_then_grow_reads_zeros() {
        let (file, _dir) = backend(&[7; 9000]);
        let mut shadow = Shadow::new(9000);
        shadow.write(&file, 4100, &[3; 10]).expect("write");
        shadow.set_len(4105);
        shadow.set_len(9000);
        let data = read(&shadow, &file, 4090, 30);
        assert_eq!(&data[..10], &[7; 10]);
        assert_eq!(&data[10..15], &[3; 5]);
        assert!(data[15..].iter().all(|&b| b == 0), "{data:?}");
        shadow.flush(&file).expect("flush");
        assert_eq!(file.len().expect("len"), 9000);
        assert_eq!(read(&Shadow::new(9000), &file, 4090, 30), data);
    }

    #[test]
    fn shadow_discard_forgets_writes() {
        let (file, _dir) = backend(&[7; 100]);
        let mut shadow = Shadow::new(100);
        shadow.write(&file, 0, &[1; 200]).expect("write");
        shadow.discard(100);
        assert_eq!(read(&shadow, &file, 0, 100), vec![7; 100]);
    }
}
