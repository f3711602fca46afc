//! What each recommendation response showed, so that later events naming its
//! `request_id` can be attributed to the scene, recall source and experiment
//! variant that produced their item.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tephra_core::Attribution;

use crate::pipeline::Source;

/// One item of a response: where it was placed and which source produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedItem {
    /// Dense item index.
    pub item: u32,
    /// 0-based place across all pages of the request.
    pub position: u32,
    /// The source that contributed most, or the rule that placed it.
    pub source: Source,
}

/// One response (all pages of a `request_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedRequest {
    /// The scene it was ranked with.
    pub scene: String,
    /// `(experiment, variant)` when the response was part of an experiment.
    pub arm: Option<(String, String)>,
    /// What it answered, in order.
    pub items: Vec<ServedItem>,
    touched: Instant,
}

impl ServedRequest {
    /// The attribution of an event on `item` following this response: source
    /// (when the item was in it), experiment and variant.
    pub fn attribution(&self, item: u32) -> (Attribution, Option<u32>) {
        let served = self.items.iter().find(|s| s.item == item);
        let (experiment, variant) = match &self.arm {
            Some((e, v)) => (Some(e.clone()), Some(v.clone())),
            None => (None, None),
        };
        (
            Attribution {
                source: served.map(|s| s.source.as_str().to_owned()),
                experiment,
                variant,
            },
            served.map(|s| s.position),
        )
    }
}

/// Responses remembered, bounded in number and age; the oldest go first.
pub struct RequestLog {
    max: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, ServedRequest>,
    /// Ids in first-recorded order.
    order: VecDeque<String>,
}

impl RequestLog {
    /// A log of at most `max` responses, each kept for `ttl` after its last page.
    pub fn new(max: usize, ttl: Duration) -> Self {
        Self {
            max: max.max(1),
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Records a page of the response `id`; positions continue after the pages
    /// recorded before.
    pub fn record(
        &self,
        id: &str,
        scene: &str,
        arm: Option<(String, String)>,
        page: impl IntoIterator<Item = (u32, Source)>,
    ) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let is_new = !inner.by_id.contains_key(id);
        let request = inner
            .by_id
            .entry(id.to_owned())
            .or_insert_with(|| ServedRequest {
                scene: scene.to_owned(),
                arm,
                items: Vec::new(),
                touched: now,
            });
        request.touched = now;
        for (item, source) in page {
            let position = request.items.len() as u32;
            request.items.push(ServedItem {
                item,
                position,
                source,
            });
        }
        if is_new {
            inner.order.push_back(id.to_owned());
        }
        while inner.by_id.len() > self.max {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.by_id.remove(&oldest);
        }
        while let Some(oldest) = inner.order.front() {
            let expired = inner
                .by_id
                .get(oldest)
                .is_none_or(|r| now.duration_since(r.touched) >= self.ttl);
            if !expired {
                break;
            }
            let oldest = inner.order.pop_front().expect("front exists");
            inner.by_id.remove(&oldest);
        }
    }

    /// The response `id`, if still remembered.
    pub fn get(&self, id: &str) -> Option<ServedRequest> {
        let inner = self.inner.lock();
        inner
            .by_id
            .get(id)
            .filter(|r| r.touched.elapsed() < self.ttl)
            .cloned()
    }

    /// Attributes an event on `item` (a dense index, if the item is known)
    /// that names the response `id`: the response's scene, the attribution and
    /// the item's position. `None` when the response is not remembered.
    pub fn attribute(
        &self,
        id: &str,
        item: Option<u32>,
    ) -> Option<(String, Attribution, Option<u32>)> {
        let inner = self.inner.lock();
        let request = inner
            .by_id
            .get(id)
            .filter(|r| r.touched.elapsed() < self.ttl)?;
        let (attribution, position) = match item {
            Some(item) => request.attribution(item),
            None => request.attribution(u32::MAX),
        };
        Some((request.scene.clone(), attribution, position))
    }

    /// Responses remembered now.
    pub fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_continue_positions_and_attribute_items() {
        let log = RequestLog::new(10, Duration::from_secs(60));
        let arm = Some(("feed".to_owned(), "b".to_owned()));
        log.record(
            "r1",
            "home",
            arm.clone(),
            [(5, Source::Collaborative), (7, Source::Trending)],
        );
        log.record("r1", "home", None, [(9, Source::Popular)]);
        let r = log.get("r1").unwrap();
        assert_eq!(r.arm, arm);
        let (a, position) = r.attribution(9);
        assert_eq!(position, Some(2));
        assert_eq!(a.source.as_deref(), Some("popular"));
        assert_eq!(a.variant.as_deref(), Some("b"));
        let (a, position) = r.attribution(1234);
        assert_eq!((a.source, position), (None, None));
        assert_eq!(a.experiment.as_deref(), Some("feed"));
    }

    #[test]
    fn oldest_requests_are_forgotten_beyond_the_bound_and_after_the_ttl() {
        let log = RequestLog::new(2, Duration::from_secs(60));
        for id in ["a", "b", "c"] {
            log.record(id, "home", None, [(1, Source::Latest)]);
        }
        assert_eq!(log.len(), 2);
        assert!(log.get("a").is_none());
        assert!(log.get("c").is_some());

        let log = RequestLog::new(10, Duration::ZERO);
        log.record("x", "home", None, [(1, Source::Latest)]);
        assert!(log.get("x").is_none());
    }
}
