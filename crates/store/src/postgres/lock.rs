//! Trainer election: at most one node trains a tenant's models at a time.

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{Connection, PgConnection};

use super::Doing;
use crate::Result;

/// Longest time [`TrainerLock::is_held`] waits for the database to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The right to train one tenant's models, held until dropped.
///
/// A PostgreSQL session-level advisory lock, held by a connection of its own
/// that was detached from the pool: dropping the `TrainerLock` closes that
/// connection, which ends the session and so releases the lock (a connection
/// returned to the pool would have kept it). If the process dies, its
/// connection closes and the lock is released the same way, so another node
/// can take over. The trainer should call [`is_held`](Self::is_held) before
/// promoting a model, since a lost connection loses the lock.
pub struct TrainerLock {
    conn: PgConnection,
    tenant: String,
    key: i64,
}

impl std::fmt::Debug for TrainerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainerLock")
            .field("tenant", &self.tenant)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The advisory lock key of `tenant`'s trainer: FNV-1a (64 bits) of
/// `tephra-trainer:<tenant>`, stable across builds and machines since every
/// node must compute the same key.
pub(super) fn trainer_lock_key(tenant: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = b"tephra-trainer:"
        .iter()
        .chain(tenant.as_bytes())
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl TrainerLock {
    /// Takes the lock of `tenant` on a connection detached from `pool`, or
    /// `None` if another session holds it.
    pub(super) async fn try_acquire(pool: &PgPool, tenant: &str) -> Result<Option<Self>> {
        // Detached before locking: if this future is dropped half-way, the
        // connection closes instead of going back to the pool with the lock.
        let mut conn = pool
            .acquire()
            .await
            .doing("taking a connection for the trainer lock")?
            .detach();
        let key = trainer_lock_key(tenant);
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await
            .doing("trying the trainer lock")?;
        if !locked {
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "closing the connection of a trainer lock not taken");
            }
            return Ok(None);
        }
        Ok(Some(Self {
            conn,
            tenant: tenant.to_owned(),
            key,
        }))
    }

    /// The tenant whose trainer this lock elects.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The advisory lock key, for operators looking at `pg_locks` (PostgreSQL
    /// shows it split in `classid`, the high 32 bits, and `objid`).
    pub fn key(&self) -> i64 {
        self.key
    }

    /// Whether the lock is still held: the connection answers and its session
    /// holds the advisory lock. `false` once the connection is lost (the
    /// database restarted, the session was terminated), in which case another
    /// node may already train; drop this lock then.
    pub async fn is_held(&mut self) -> bool {
        let (high, low) = split_key(self.key);
        let check = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
             AND pid = pg_backend_pid() AND granted \
             AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)",
        )
        .bind(high)
        .bind(low)
        .fetch_one(&mut self.conn);
        matches!(
            tokio::time::timeout(CHECK_TIMEOUT, check).await,
            Ok(Ok(true))
        )
    }

    /// Releases the lock and closes its connection politely, waiting for the
    /// database to confirm (dropping the lock releases it too, without
    /// waiting).
    pub async fn release(mut self) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut self.conn)
            .await
            .doing("releasing the trainer lock")?;
        self.conn
            .close()
            .await
            .doing("closing the trainer lock's connection")
    }
}

/// A 64-bit advisory lock key as PostgreSQL shows it in `pg_locks`:
/// `(classid, objid)`, the high and the low 32 bits.
fn split_key(key: i64) -> (i64, i64) {
    let bits = u64::from_ne_bytes(key.to_ne_bytes());
    ((bits >> 32) as i64, (bits & 0xffff_ffff) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        // FNV-1a of "tephra-trainer:default", computed independently.
        let expected = {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in "tephra-trainer:default".bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x100_0000_01b3);
            }
            h as i64
        };
        assert_eq!(trainer_lock_key("default"), expected);
        assert_ne!(trainer_lock_key("a"), trainer_lock_key("b"));
        let (high, low) = split_key(-1);
        assert_eq!((high, low), (0xffff_ffff, 0xffff_ffff));
    }
}
