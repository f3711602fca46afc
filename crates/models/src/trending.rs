//! Trending: positive events counted with exponential time decay.
//!
//! Each item keeps a decayed counter (`score · 2^(−Δt / half_life) + 1` per
//! positive event, see [`tephra_core::DecayedCounter`]). Comparing two counters
//! means decaying both to the same `now`, which would cost one `exp2` per item
//! per request. Instead each item also keeps a *rank key*
//!
//! ```text
//! key = log2(score) + t_last / half_life
//! ```
//!
//! Its value decayed to any common `now` is `2^(key − now / half_life)`, a
//! monotone function of `key`, so ordering by key is ordering by decayed value
//! at every `now` (at or after the items' last events). The key changes only when
//! an event arrives (one `log2` per event); a request ranks by key and computes
//! the displayed decayed value only for the items it returns.

use tephra_core::decay::decay_factor;
use tephra_core::Timestamp;

use crate::topk::top_k;

/// Below this `log2` of the decayed value (about 1,000 half-lives without an
/// event) an item no longer counts as trending at all.
///
/// A floor in key space keeps the "is it trending" test monotone in the key, so
/// that pagination stays consistent, and keeps every listed value well above
/// the point where `f64` underflows to 0.
pub const MIN_LOG2_VALUE: f64 = -1000.0;

/// One item's decayed count, as of its latest event.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counter {
    score: f64,
    t_last: i64,
}

/// Time-decayed positive-event counts per item, indexed by dense item index.
#[derive(Debug, Clone)]
pub struct Trending {
    /// Half-life in milliseconds; `f64::INFINITY` means no decay.
    half_life_ms: f64,
    counters: Vec<Counter>,
    /// `log2(score) + t_last / half_life`; `-inf` for items without events.
    /// Kept apart from `counters` so that a ranking pass scans 8 bytes per item.
    rank_keys: Vec<f64>,
}

impl Trending {
    /// Counters halving every `half_life_ms` milliseconds. A half-life that is
    /// not a positive number means "no decay", as in [`decay_factor`].
    pub fn new(half_life_ms: f64) -> Self {
        let half_life_ms = if half_life_ms > 0.0 {
            half_life_ms
        } else {
            f64::INFINITY
        };
        Self {
            half_life_ms,
            counters: Vec::new(),
            rank_keys: Vec::new(),
        }
    }

    /// The half-life in milliseconds (`f64::INFINITY` when nothing decays).
    pub fn half_life_ms(&self) -> f64 {
        self.half_life_ms
    }

    /// Counts one positive event for `item` at time `t` (weight 1, as in
    /// [`crate::Popularity`]).
    ///
    /// Events may arrive out of order: a late event is decayed to the counter's
    /// latest time instead of rewinding it, exactly like
    /// [`tephra_core::DecayedCounter::add`].
    pub fn record(&mut self, item: u32, t: Timestamp) {
        let slot = item as usize;
        if slot >= self.counters.len() {
            self.counters.resize(
                slot + 1,
                Counter {
                    score: 0.0,
                    t_last: 0,
                },
            );
            self.rank_keys.resize(slot + 1, f64::NEG_INFINITY);
        }
        let c = &mut self.counters[slot];
        let t = t.millis();
        if c.score == 0.0 {
            *c = Counter {
                score: 1.0,
                t_last: t,
            };
        } else if t >= c.t_last {
            c.score = c.score * decay_factor(t - c.t_last, self.half_life_ms) + 1.0;
            c.t_last = t;
        } else {
            c.score += decay_factor(c.t_last - t, self.half_life_ms);
        }
        self.rank_keys[slot] = c.score.log2() + c.t_last as f64 / self.half_life_ms;
    }

    /// The decayed count of `item` at `now` (0 if it never had an event). A
    /// counter whose latest event lies after `now` is not extrapolated upwards.
    pub fn value_at(&self, item: u32, now: Timestamp) -> f64 {
        match self.counters.get(item as usize) {
            Some(c) if now.millis() > c.t_last => {
                c.score * decay_factor(now.millis() - c.t_last, self.half_life_ms)
            }
            Some(c) => c.score,
            None => 0.0,
        }
    }

    /// The smallest rank key that still counts as trending at `now`.
    fn key_floor(&self, now: Timestamp) -> f64 {
        now.millis() as f64 / self.half_life_ms + MIN_LOG2_VALUE
    }

    /// Whether `item` is trending at `now`: it had positive events and their
    /// decayed value is above `2^MIN_LOG2_VALUE`.
    pub fn is_trending(&self, item: u32, now: Timestamp) -> bool {
        self.rank_keys
            .get(item as usize)
            .is_some_and(|&k| k > self.key_floor(now))
    }

    /// Items at ranks `offset..offset + n` by decayed value at `now` (ties by
    /// item index), among trending items for which `allowed` holds. Scores are
    /// the values decayed to `now`, computed only for the returned items.
    pub fn top(
        &self,
        allowed: impl Fn(u32) -> bool,
        now: Timestamp,
        offset: usize,
        n: usize,
    ) -> Vec<(u32, f64)> {
        let floor = self.key_floor(now);
        let candidates = self
            .rank_keys
            .iter()
            .enumerate()
            .filter(|&(_, &k)| k > floor)
            .map(|(i, &k)| (i as u32, k));
        let mut ranked = top_k(candidates, allowed, offset, n);
        for (item, score) in &mut ranked {
            *score = self.value_at(*item, now);
        }
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tephra_core::DecayedCounter;

    const HOUR: f64 = 3_600_000.0;

    fn ts(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    #[test]
    fn halves_after_one_half_life() {
        let mut t = Trending::new(1000.0);
        t.record(0, ts(1000));
        t.record(0, ts(1000));
        assert!((t.value_at(0, ts(2000)) - 1.0).abs() < 1e-12);
        assert!(
            (t.value_at(0, ts(500)) - 2.0).abs() < 1e-12,
            "no extrapolation into the past"
        );
        assert_eq!(t.value_at(9, ts(2000)), 0.0);
    }

    #[test]
    fn recent_beats_old_even_with_fewer_events() {
        let mut t = Trending::new(HOUR);
        for _ in 0..4 {
            t.record(0, ts(0));
        }
        t.record(1, ts(3 * HOUR as i64)); // item 0 is worth 4/8 = 0.5 then
        let top = t.top(|_| true, ts(3 * HOUR as i64), 0, 10);
        assert_eq!(top.iter().map(|&(i, _)| i).collect::<Vec<_>>(), vec![1, 0]);
        assert!((top[0].1 - 1.0).abs() < 1e-12 && (top[1].1 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn long_silent_items_stop_trending() {
        let mut t = Trending::new(1000.0);
        t.record(3, ts(0));
        assert!(t.is_trending(3, ts(999_000)));
        assert!(!t.is_trending(3, ts(1_001_000)));
        assert!(t.top(|_| true, ts(1_001_000), 0, 5).is_empty());
        assert!(!t.is_trending(4, ts(0)));
    }

    #[test]
    fn non_positive_half_life_means_no_decay() {
        for hl in [0.0, -5.0, f64::NAN] {
            let mut t = Trending::new(hl);
            t.record(0, ts(0));
            t.record(0, ts(1_000_000_000));
            assert_eq!(t.value_at(0, ts(5_000_000_000_000)), 2.0);
            assert!(t.is_trending(0, ts(5_000_000_000_000)));
        }
    }

    #[test]
    fn filter_and_offset() {
        let mut t = Trending::new(HOUR);
        for (item, n) in [(0, 1), (1, 3), (2, 2)] {
            for _ in 0..n {
                t.record(item, ts(0));
            }
        }
        let ids = |v: Vec<(u32, f64)>| v.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(ids(t.top(|_| true, ts(0), 0, 10)), vec![1, 2, 0]);
        assert_eq!(ids(t.top(|i| i != 2, ts(0), 1, 10)), vec![0]);
    }

    proptest! {
        #[test]
        fn values_match_decayed_counter(events in proptest::collection::vec((0u32..5, 0i64..50_000), 1..60), now in 50_000i64..200_000) {
            let hl = 10_000.0;
            let mut t = Trending::new(hl);
            let mut reference = [DecayedCounter::default(); 5];
            for &(item, at) in &events {
                t.record(item, ts(at));
                reference[item as usize].add(1.0, ts(at), hl);
            }
            for item in 0..5u32 {
                let want = reference[item as usize].value_at(ts(now), hl);
                let got = t.value_at(item, ts(now));
                prop_assert!((got - want).abs() <= 1e-9 * want.max(1.0), "item {item}: {got} vs {want}");
            }
        }

        #[test]
        fn key_order_is_value_order(events in proptest::collection::vec((0u32..30, 0i64..100_000), 0..200), later in 0i64..500_000) {
            let mut t = Trending::new(20_000.0);
            for &(item, at) in &events {
                t.record(item, ts(at));
            }
            let now = ts(100_000 + later);
            let top = t.top(|_| true, now, 0, 100);
            let mut with_events: Vec<u32> = events.iter().map(|&(i, _)| i).collect();
            with_events.sort_unstable();
            with_events.dedup();
            prop_assert_eq!(top.len(), with_events.len());
            for pair in top.windows(2) {
                prop_assert!(pair[0].1 >= pair[1].1 * (1.0 - 1e-9), "{pair:?} out of order");
            }
            for &(item, value) in &top {
                prop_assert!(value > 0.0);
                prop_assert_eq!(value, t.value_at(item, now));
            }
        }
    }
}
