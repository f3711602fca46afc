//! Exponential time decay, the basis of trending lists and freshness.

use crate::Timestamp;

/// An exponentially decayed counter: `score · 2^(−Δt / half_life) + w` per event.
///
/// O(1) per event and no scans: the counter keeps its value as of `t_last` and
/// decays lazily. Two counters are compared by decaying both to the same `now`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DecayedCounter {
    score: f64,
    t_last: i64,
}

impl DecayedCounter {
    /// Adds weight `w` at time `t`. Events may arrive out of order: a late event is
    /// decayed to the counter's current time instead of rewinding it.
    pub fn add(&mut self, w: f64, t: Timestamp, half_life_ms: f64) {
        let t = t.millis();
        if t >= self.t_last {
            self.score = self.score * decay_factor(t - self.t_last, half_life_ms) + w;
            self.t_last = t;
        } else {
            self.score += w * decay_factor(self.t_last - t, half_life_ms);
        }
    }

    /// The counter's value decayed to `now`.
    pub fn value_at(&self, now: Timestamp, half_life_ms: f64) -> f64 {
        let dt = now.millis() - self.t_last;
        if dt <= 0 {
            self.score
        } else {
            self.score * decay_factor(dt, half_life_ms)
        }
    }
}

/// `2^(−dt / half_life)`; a non-positive half-life means no decay.
pub fn decay_factor(dt_ms: i64, half_life_ms: f64) -> f64 {
    if half_life_ms <= 0.0 {
        1.0
    } else {
        (-(dt_ms as f64) / half_life_ms).exp2()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_after_one_half_life() {
        let mut c = DecayedCounter::default();
        c.add(8.0, Timestamp(1000), 1000.0);
        assert!((c.value_at(Timestamp(2000), 1000.0) - 4.0).abs() < 1e-9);
        c.add(1.0, Timestamp(3000), 1000.0);
        assert!((c.value_at(Timestamp(3000), 1000.0) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn late_events_do_not_rewind() {
        let mut a = DecayedCounter::default();
        a.add(1.0, Timestamp(2000), 1000.0);
        a.add(1.0, Timestamp(1000), 1000.0);
        let mut b = DecayedCounter::default();
        b.add(1.0, Timestamp(1000), 1000.0);
        b.add(1.0, Timestamp(2000), 1000.0);
        let now = Timestamp(5000);
        assert!((a.value_at(now, 1000.0) - b.value_at(now, 1000.0)).abs() < 1e-9);
    }
}
