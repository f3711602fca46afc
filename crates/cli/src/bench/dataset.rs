//! Synthetic event logs for the ingestion benchmark: power-law users and items,
//! a mix of event types, times over the last 30 days.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tephra_core::{Event, Timestamp};

use crate::sample::skewed_index;

/// Distinct users in the generated log.
pub const USERS: usize = 10_000;
/// Distinct items in the generated log.
pub const ITEMS: usize = 5_000;

const TYPES: &[(&str, f64)] = &[
    ("impression", 0.4),
    ("click", 0.4),
    ("like", 0.1),
    ("read", 0.08),
    ("dislike", 0.02),
];
const SPAN_MS: i64 = 30 * 24 * 3600 * 1000;

/// An endless, deterministic stream of events.
pub struct EventStream {
    rng: StdRng,
    now: Timestamp,
}

impl EventStream {
    /// Events for `seed`, with times in the 30 days before `now`.
    pub fn new(seed: u64, now: Timestamp) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            now,
        }
    }

    /// The next event.
    pub fn next_event(&mut self) -> Event {
        let user = skewed_index(&mut self.rng, USERS);
        let item = skewed_index(&mut self.rng, ITEMS);
        let mut u: f64 = self.rng.random();
        let mut event_type = TYPES[0].0;
        for (name, share) in TYPES {
            if u < *share {
                event_type = name;
                break;
            }
            u -= share;
        }
        Event {
            user_id: format!("u{user}"),
            item_id: format!("i{item}"),
            event_type: event_type.to_string(),
            value: 1.0,
            timestamp: Timestamp(self.now.0 - self.rng.random_range(0..SPAN_MS)),
            request_id: None,
            scene: None,
            position: None,
            attribution: None,
        }
    }
}

/// Writes `count` events as JSON Lines in the API's schema.
pub fn write_jsonl(path: &Path, count: u64, seed: u64, now: Timestamp) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut events = EventStream::new(seed, now);
    for _ in 0..count {
        serde_json::to_writer(&mut out, &events.next_event())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes `count` events as CSV with a header row (times as Unix seconds).
pub fn write_csv(path: &Path, count: u64, seed: u64, now: Timestamp) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(b"user_id,item_id,type,value,timestamp\n")?;
    let mut events = EventStream::new(seed, now);
    for _ in 0..count {
        let e = events.next_event();
        writeln!(
            out,
            "{},{},{},{},{}",
            e.user_id,
            e.item_id,
            e.event_type,
            e.value,
            e.timestamp.0 / 1000
        )?;
    }
    out.flush()
}

/// `count` events as JSON array bodies of `batch` events each, ready to POST.
pub fn http_bodies(count: u64, batch: usize, seed: u64, now: Timestamp) -> Vec<Vec<u8>> {
    let mut events = EventStream::new(seed, now);
    let mut bodies = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(batch as u64);
        let batch: Vec<Event> = (0..n).map(|_| events.next_event()).collect();
        bodies.push(serde_json::to_vec(&batch).unwrap_or_default());
        left -= n;
    }
    bodies
}

#[cfg(test)]
mod tests {
    use tephra_core::EventTypes;

    use super::*;

    #[test]
    fn events_are_valid_and_deterministic() {
        let now = Timestamp(1_780_000_000_000);
        let mut a = EventStream::new(5, now);
        let mut b = EventStream::new(5, now);
        let types = EventTypes::default();
        for _ in 0..1000 {
            let e = a.next_event();
            e.validate(&types).unwrap();
            assert_eq!(e, b.next_event());
        }
    }

    #[test]
    fn bodies_hold_every_event_once() {
        let bodies = http_bodies(2500, 1000, 1, Timestamp(1_780_000_000_000));
        let sizes: Vec<usize> = bodies
            .iter()
            .map(|b| serde_json::from_slice::<Vec<Event>>(b).unwrap().len())
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
    }
}
