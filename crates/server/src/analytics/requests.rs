//! What each recommendation response showed, so that later events naming its
//! `request_id` can be attributed to the scene, recall source and experiment
//! variant that produced their item.
//!
//! The log holds many responses (`analytics.max_tracked_requests`), so each is
//! kept compact: the request id as the 128-bit UUID the server issued, scene
//! and variant names shared between responses, and per item only its index and
//! source (its position is its place in the list).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tephra_core::Attribution;

use crate::pipeline::Source;

/// One item of a response: which source produced it (its position is its
/// index in [`ServedRequest::items`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedItem {
    /// Dense item index.
    pub item: u32,
    /// The source that contributed most, or the rule that placed it.
    pub source: Source,
}

/// Most items one response remembers (as many as a pagination session
/// serves); later pages are not attributed.
pub const MAX_ITEMS: usize = crate::pipeline::session::MAX_SESSION_ITEMS;

/// One response (all pages of a `request_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedRequest {
    /// A hash of the user it answered ([`owner_hash`]), `None` for requests
    /// without a user: only that user's events are attributed to it.
    pub owner: Option<u64>,
    /// The position of its first item (the first page's `offset`).
    pub first_position: u32,
    /// The scene it was ranked with.
    pub scene: Arc<str>,
    /// `(experiment, variant)` when the response was part of an experiment.
    pub arm: Option<(Arc<str>, Arc<str>)>,
    /// What it answered, in order, across its pages.
    pub items: Vec<ServedItem>,
    touched: Instant,
}

impl ServedRequest {
    /// The attribution of an event on `item` following this response: source
    /// (when the item was in it), experiment and variant; and the item's
    /// position.
    pub fn attribution(&self, item: Option<u32>) -> (Attribution, Option<u32>) {
        let served = item.and_then(|item| self.items.iter().position(|s| s.item == item));
        let (experiment, variant) = match &self.arm {
            Some((e, v)) => (Some(e.to_string()), Some(v.to_string())),
            None => (None, None),
        };
        (
            Attribution {
                source: served.map(|i| self.items[i].source.as_str().to_owned()),
                experiment,
                variant,
            },
            served.map(|i| self.first_position.saturating_add(i as u32)),
        )
    }
}

/// A stable hash of a user id (FNV-1a), to check that an event comes from
/// the user a response answered without keeping the id.
pub fn owner_hash(user_id: &str) -> u64 {
    user_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The key of a response: request ids are UUIDs issued by the server (a
/// client can only continue a session, never open one with its own id), so
/// any other text names no remembered response.
fn key(request_id: &str) -> Option<u128> {
    uuid::Uuid::try_parse(request_id).ok().map(|u| u.as_u128())
}

/// Responses remembered, bounded in number and age; the oldest go first.
pub struct RequestLog {
    max: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<u128, ServedRequest>,
    /// Ids in first-recorded order.
    order: VecDeque<u128>,
    /// Scene, experiment and variant names, shared by the responses.
    names: HashSet<Arc<str>>,
}

impl Inner {
    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(name);
        self.names.insert(Arc::clone(&shared));
        shared
    }
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

    /// Records a page of the response `id` (a server-issued UUID; anything
    /// else is ignored) answered to `user` (none for anonymous requests);
    /// positions start at `offset` and continue after the pages recorded
    /// before.
    pub fn record(
        &self,
        id: &str,
        user: Option<&str>,
        offset: usize,
        (scene, arm): (&str, Option<(&str, &str)>),
        page: impl IntoIterator<Item = (u32, Source)>,
    ) {
        let Some(id) = key(id) else {
            return;
        };
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if !inner.by_id.contains_key(&id) {
            let scene = inner.name(scene);
            let arm = arm.map(|(e, v)| (inner.name(e), inner.name(v)));
            inner.by_id.insert(
                id,
                ServedRequest {
                    owner: user.map(owner_hash),
                    first_position: u32::try_from(offset).unwrap_or(u32::MAX),
                    scene,
                    arm,
                    items: Vec::new(),
                    touched: now,
                },
            );
            inner.order.push_back(id);
        }
        let request = inner.by_id.get_mut(&id).expect("inserted above");
        request.touched = now;
        let room = MAX_ITEMS.saturating_sub(request.items.len());
        request.items.extend(
            page.into_iter()
                .take(room)
                .map(|(item, source)| ServedItem { item, source }),
        );
        while inner.by_id.len() > self.max {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.by_id.remove(&oldest);
        }
        while let Some(&oldest) = inner.order.front() {
            let expired = inner
                .by_id
                .get(&oldest)
                .is_none_or(|r| now.duration_since(r.touched) >= self.ttl);
            if !expired {
                break;
            }
            inner.order.pop_front();
            inner.by_id.remove(&oldest);
        }
    }

    /// The response `id`, if still remembered.
    pub fn get(&self, id: &str) -> Option<ServedRequest> {
        let inner = self.inner.lock();
        inner
            .by_id
            .get(&key(id)?)
            .filter(|r| r.touched.elapsed() < self.ttl)
            .cloned()
    }

    /// Attributes an event of `user` on `item` (a dense index, if the item is
    /// known) that names the response `id`: the response's scene, the
    /// attribution and the item's position. `None` when the response is not
    /// remembered, or answered another user (a shared or leaked request id
    /// must not move anyone into a variant).
    pub fn attribute(
        &self,
        id: &str,
        user: &str,
        item: Option<u32>,
    ) -> Option<(String, Attribution, Option<u32>)> {
        let inner = self.inner.lock();
        let request = inner
            .by_id
            .get(&key(id)?)
            .filter(|r| r.touched.elapsed() < self.ttl)
            .filter(|r| r.owner.is_none_or(|owner| owner == owner_hash(user)))?;
        let (attribution, position) = request.attribution(item);
        Some((request.scene.to_string(), attribution, position))
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

    fn id(n: u128) -> String {
        uuid::Uuid::from_u128(n).to_string()
    }

    #[test]
    fn pages_continue_positions_and_attribute_items() {
        let log = RequestLog::new(10, Duration::from_secs(60));
        let r1 = id(1);
        log.record(
            &r1,
            Some("ann"),
            0,
            ("home", Some(("feed", "b"))),
            [(5, Source::Collaborative), (7, Source::Trending)],
        );
        log.record(&r1, Some("ann"), 0, ("home", None), [(9, Source::Popular)]);
        let r = log.get(&r1).unwrap();
        assert_eq!(
            r.arm.as_ref().map(|(e, v)| (&**e, &**v)),
            Some(("feed", "b"))
        );
        let (a, position) = r.attribution(Some(9));
        assert_eq!(position, Some(2));
        assert_eq!(a.source.as_deref(), Some("popular"));
        assert_eq!(a.variant.as_deref(), Some("b"));
        let (a, position) = r.attribution(Some(1234));
        assert_eq!((a.source, position), (None, None));
        assert_eq!(a.experiment.as_deref(), Some("feed"));
        let (scene, _, position) = log.attribute(&r1, "ann", Some(7)).unwrap();
        assert_eq!((scene.as_str(), position), ("home", Some(1)));
        // Another user's events are not attributed to Ann's response.
        assert!(log.attribute(&r1, "bob", Some(7)).is_none());
        // Ids the server did not issue name nothing.
        log.record("not-a-uuid", None, 0, ("home", None), [(1, Source::Latest)]);
        assert!(log.get("not-a-uuid").is_none());
        assert!(log.attribute("not-a-uuid", "ann", Some(1)).is_none());
        assert_eq!(log.len(), 1);
        // A first page at an offset starts its positions there; an anonymous
        // response attributes anyone's events.
        let r2 = id(2);
        let page = [(3, Source::Latest), (4, Source::Latest)];
        log.record(&r2, None, 20, ("home", None), page);
        let (_, _, position) = log.attribute(&r2, "carol", Some(4)).unwrap();
        assert_eq!(position, Some(21));
    }

    #[test]
    fn oldest_requests_are_forgotten_beyond_the_bound_and_after_the_ttl() {
        let log = RequestLog::new(2, Duration::from_secs(60));
        for n in 1..=3 {
            log.record(&id(n), None, 0, ("home", None), [(1, Source::Latest)]);
        }
        assert_eq!(log.len(), 2);
        assert!(log.get(&id(1)).is_none());
        assert!(log.get(&id(3)).is_some());

        let log = RequestLog::new(10, Duration::ZERO);
        log.record(&id(1), None, 0, ("home", None), [(1, Source::Latest)]);
        assert!(log.get(&id(1)).is_none());
    }

    #[test]
    fn names_are_shared_between_responses() {
        let log = RequestLog::new(10, Duration::from_secs(60));
        let arm = Some(("feed", "a"));
        log.record(&id(1), None, 0, ("home", arm), [(1, Source::Latest)]);
        log.record(&id(2), None, 0, ("home", arm), [(1, Source::Latest)]);
        let (a, b) = (log.get(&id(1)).unwrap(), log.get(&id(2)).unwrap());
        assert!(Arc::ptr_eq(&a.scene, &b.scene));
        assert!(Arc::ptr_eq(&a.arm.unwrap().1, &b.arm.unwrap().1));
    }
}
