//! How an embedded store is opened: its durability mode and, for tests, a switch
//! that makes the disk fail on demand.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tephra_core::ValidationError;

/// When a write to an [`EmbeddedStore`](crate::EmbeddedStore) is acknowledged,
/// and so what a crash can take away.
///
/// Whatever the mode, a batch is all or nothing, `seq` numbers and dense indices
/// are never reused, and a disk failure never leaves part of a batch behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A write is acknowledged only after the commit holding it has been fsynced.
    ///
    /// Writes that arrive together share one commit and one fsync (group
    /// commit), so a lone writer pays one fsync per batch and a busy store far
    /// less per batch. An acknowledged write survives a process crash, a kernel
    /// panic and a power cut, as far as the disk honours fsync. A write refused
    /// with [`StoreError::Io`](crate::StoreError::Io) was not stored, with the
    /// one exception no database can rule out: when fsync itself fails, the
    /// kernel may have written the data anyway, and the batch can then turn up
    /// when the store reopens its file (it logs an error when it sees that). This
    /// is the default, because it is the only mode in which "acknowledged" means
    /// "on disk".
    #[default]
    Immediate,
    /// A write is acknowledged once its commit is visible to readers, without
    /// fsync; a durable (fsynced) commit follows within `interval`.
    ///
    /// Commits use redb's non-durable commit: the new pages stay in the
    /// process's memory (redb's write buffer) and the file's header keeps naming
    /// the last durable commit. So a crash of the *process*, not only of the
    /// machine, loses every write acknowledged since the last durable commit: at
    /// most about `interval` of writes, plus the time the durable commit takes.
    /// What remains is always a consistent prefix of the acknowledged writes
    /// (every batch whole, `seq` numbers without gaps). In exchange a write costs
    /// no fsync, which multiplies the rate of small writes.
    ///
    /// The writer makes a durable commit as soon as the oldest write not yet on
    /// disk is `interval` old (the next group commit is made durable, or an
    /// empty one is made if the store is idle), whenever an import commits, and
    /// when the store is closed (the last handle dropped). If a durable commit
    /// fails, the writes acknowledged since the last one are not given up: the
    /// writer keeps a copy of them and, once it has reopened the file, writes
    /// them again with the same `seq` numbers and indices. Until then reads of
    /// records and events show the file's last durable commit (counts and id
    /// maps still include them), and those writes are lost if the process ends
    /// (a drop or a crash) before the disk works again.
    ///
    /// `interval` must be greater than zero.
    Periodic {
        /// Longest time an acknowledged write may stay only in memory.
        interval: Duration,
    },
}

/// Default page cache of one store file: 64 MiB. The server answers from its
/// live state, so the store's cache only speeds up writes and the few routes
/// that read the store; redb's own default (1 GiB per file) would make every
/// tenant's memory grow with its file long after warm-up.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How to open an [`EmbeddedStore`](crate::EmbeddedStore); `Default` gives what
/// [`EmbeddedStore::open`](crate::EmbeddedStore::open) uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// When writes are acknowledged; see [`Durability`].
    pub durability: Durability,
    /// Makes the store's disk fail on demand, to test how Tephra copes; `None`
    /// (the default) opens the file the ordinary way.
    pub faults: Option<FaultSwitch>,
    /// Most memory the file's page cache may hold, in bytes.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            faults: None,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl StoreOptions {
    /// Refuses settings that cannot work, naming the field to fix.
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        if let Durability::Periodic { interval } = self.durability {
            if interval.is_zero() {
                return Err(ValidationError::field(
                    "invalid_value",
                    "durability.interval",
                    "the interval between durable commits must be greater than zero; \
                     use Durability::Immediate to fsync every write",
                ));
            }
        }
        Ok(())
    }
}

/// What a [`FaultSwitch`] makes the disk do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultMode {
    /// The disk works.
    #[default]
    Off,
    /// Every write to the file (and every resize) fails with an I/O error
    /// (`EIO`), like a failing disk.
    FailWrites,
    /// Every write to the file (and every resize) fails with
    /// [`std::io::ErrorKind::StorageFull`] and the message of a real `ENOSPC`
    /// ("No space left on device").
    DiskFull,
    /// Writes seem to succeed but fsync fails (`EIO`), and what was written
    /// since the last successful fsync is lost, as when the kernel drops dirty
    /// pages after a writeback error.
    FailSync,
}

impl FaultMode {
    const ALL: [FaultMode; 4] = [Self::Off, Self::FailWrites, Self::DiskFull, Self::FailSync];

    fn from_u8(value: u8) -> Self {
        Self::ALL
            .get(usize::from(value))
            .copied()
            .unwrap_or(Self::Off)
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::FailWrites => 1,
            Self::DiskFull => 2,
            Self::FailSync => 3,
        }
    }
}

/// Makes the disk of a store fail on demand, to prove that the store stays
/// consistent through I/O errors (see [`StoreOptions::faults`]).
///
/// Cheap to clone; every clone flips the same switch, so a test keeps one and
/// hands another to the store. The switch takes effect at the next disk access.
/// A store opened with a switch goes through a wrapper of redb's file backend
/// that holds written data in memory until fsync (as the kernel's page cache
/// does), so that [`FaultMode::FailSync`] can lose it; it is meant for tests, not
/// for serving.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch {
    mode: Arc<AtomicU8>,
}

impl FaultSwitch {
    /// A switch in [`FaultMode::Off`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the disk behave as `mode` says from now on.
    pub fn set(&self, mode: FaultMode) {
        self.mode.store(mode.to_u8(), Ordering::SeqCst);
    }

    /// What the disk does now.
    pub fn mode(&self) -> FaultMode {
        FaultMode::from_u8(self.mode.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_clones_share_the_mode() {
        let switch = FaultSwitch::new();
        let other = switch.clone();
        assert_eq!(other.mode(), FaultMode::Off);
        for mode in FaultMode::ALL {
            switch.set(mode);
            assert_eq!(other.mode(), mode);
        }
    }

    #[test]
    fn zero_interval_is_refused() {
        let options = StoreOptions {
            durability: Durability::Periodic {
                interval: Duration::ZERO,
            },
            faults: None,
            ..StoreOptions::default()
        };
        let e = options.validate().expect_err("zero interval");
        assert_eq!(e.field.as_deref(), Some("durability.interval"));
        assert!(StoreOptions::default().validate().is_ok());
    }
}
