//! Protection against load: per-key rate limits and admission control.
//!
//! Rate limits keep one client from starving the others: each key has a token
//! bucket, and a request finding it empty is answered 429 with the seconds
//! until a token is back. Admission control keeps the server itself from
//! drowning: CPU-heavy routes run at most `server.max_concurrent_heavy` at a
//! time, and a request that cannot start within `server.admission_wait_ms` is
//! answered 503 with `Retry-After` at once, instead of waiting in a queue that
//! grows until every request times out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tephra_store::RateLimit;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by key id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes a token from `key`'s bucket under `limit`; `Err(wait)` when the
    /// bucket is empty, with the time until the next token.
    pub fn check(&self, key: &str, limit: RateLimit) -> Result<(), Duration> {
        self.check_at(key, limit, Instant::now())
    }

    fn check_at(&self, key: &str, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(limit.burst.max(1));
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }

    /// Forgets `key`'s bucket (the key was revoked or rotated).
    pub fn forget(&self, key: &str) {
        self.buckets.lock().remove(key);
    }
}

/// Whole seconds to put in `Retry-After` for a wait: at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Bounded concurrency for CPU-heavy routes.
#[derive(Debug, Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Admission {
    /// At most `max` heavy requests at once; others wait up to `wait` for a slot.
    pub fn new(max: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
            wait,
        }
    }

    /// A slot, or `None` when none freed up in time (the caller answers 503).
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }
}

/// Whether a `/v1` route is CPU-heavy: recommendations, similar items, training.
pub fn is_heavy(path: &str) -> bool {
    let rest = path.strip_prefix("/v1").unwrap_or(path);
    rest == "/recommend"
        || rest.starts_with("/recommend/")
        || rest
            .strip_prefix("/items/")
            .and_then(|r| r.strip_suffix("/similar"))
            .is_some_and(|id| !id.is_empty())
        || rest == "/admin/train"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::default();
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3,
        };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("k", limit, t0).is_ok());
        }
        let wait = limiter.check_at("k", limit, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        assert!(
            limiter.check_at("other", limit, t0).is_ok(),
            "keys are separate"
        );
        let later = t0 + Duration::from_millis(500);
        assert!(
            limiter.check_at("k", limit, later).is_ok(),
            "one token back"
        );
        assert!(limiter.check_at("k", limit, later).is_err());
        let much_later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.check_at("k", limit, much_later).is_ok());
        }
        assert!(
            limiter.check_at("k", limit, much_later).is_err(),
            "never more than the burst"
        );
        limiter.forget("k");
        assert!(limiter.check_at("k", limit, much_later).is_ok());
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let limiter = RateLimiter::default();
        let off = RateLimit {
            per_second: 0.0,
            burst: 0,
        };
        for _ in 0..1000 {
            assert!(limiter.check("k", off).is_ok());
        }
    }

    #[tokio::test]
    async fn admission_refuses_when_full_and_recovers() {
        let admission = Admission::new(2, Duration::from_millis(20));
        let a = admission.admit().await.expect("first");
        let _b = admission.admit().await.expect("second");
        assert!(admission.admit().await.is_none(), "full");
        drop(a);
        assert!(admission.admit().await.is_some(), "a slot freed");
    }

    #[test]
    fn heavy_routes() {
        for heavy in [
            "/v1/recommend",
            "/v1/recommend/u",
            "/v1/items/a/similar",
            "/v1/admin/train",
        ] {
            assert!(is_heavy(heavy), "{heavy}");
        }
        for light in [
            "/v1/items/a",
            "/v1/events",
            "/v1/popular",
            "/v1/items/similar",
        ] {
            assert!(!is_heavy(light), "{light}");
        }
    }
}
