//! The in-memory view of one tenant that recommendations are answered from.
//!
//! Plain synchronous code (no tokio): the HTTP layer holds it behind a lock,
//! rebuilds it from the store at startup and applies every accepted write to it
//! before answering, so that the next request already reflects the write.
//!
//! Rebuilding follows the store's order: [`LiveState::set_id_maps`] first, then
//! [`LiveState::upsert_item`] for every stored item, then
//! [`LiveState::apply_event`] for the whole log. An item id that is in the id
//! maps but was never upserted is a deleted item, and events do not bring it
//! back (the store does not re-create deleted records either).
//!
//! Everything a request filters on is kept as integers per dense item index
//! (flags, expiry in milliseconds, interned category ids), so that ranking the
//! whole catalogue is a linear scan of flat arrays with no string compares and
//! no allocation beyond the returned list and one small bit set.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use tephra_core::{EventKind, EventTypes, IdMap, Item, Timestamp};
use tephra_models::content::{Bm25, ContentIndex, ItemText};
use tephra_models::{Latest, Popularity, Trending};
use tephra_store::{IdMaps, Seq, StoredEvent};

/// What a list request asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// How many items.
    pub n: usize,
    /// How many top items to skip.
    pub offset: usize,
    /// Every one of these categories must be on the item.
    pub categories: Vec<String>,
    /// Item indices never to return.
    pub exclude: HashSet<u32>,
}

/// Milliseconds in an hour, to turn the configured half-life into the rankers' unit.
const MS_PER_HOUR: f64 = 3_600_000.0;

/// In-memory state of one tenant. See the module docs.
pub struct LiveState {
    ids: IdMaps,
    /// Event type names to small integers, so per-user event lists store 4 bytes
    /// per event instead of a string. Configured types are interned first.
    event_types: Interner,
    /// What each interned event type means; `None` for types found in the log
    /// that are no longer configured (they are listed but count for nothing).
    event_kinds: Vec<Option<EventKind>>,
    /// Category names to integers, so category filters are integer compares.
    categories: Interner,
    /// Catalogue metadata by dense item index.
    catalogue: Vec<CatalogueEntry>,
    /// Per-user state by dense user index.
    users: Vec<UserState>,
    popularity: Popularity,
    trending: Trending,
    latest: Latest,
    /// Item texts, for similar items by content; updated with every catalogue write.
    content: ContentIndex,
    /// Positive events applied so far (replays of one event count once per apply).
    positive_events: u64,
    /// Bumped by every catalogue change, so cached heads of `latest` know
    /// when they are stale.
    catalogue_version: u64,
    /// Cached heads of the non-personalized lists, by [`HeadList`].
    heads: Mutex<[Option<Head>; 3]>,
}

/// A non-personalized list whose head [`LiveState::head_top`] caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadList {
    Popular = 0,
    Trending = 1,
    Latest = 2,
}

/// The top items of one list, as computed at `computed`.
struct Head {
    items: Arc<[u32]>,
    computed: Instant,
    version: u64,
}

/// Items kept in a cached head.
pub(crate) const HEAD_LEN: usize = 2048;
/// How long a cached head of popular or trending items is served.
pub(crate) const HEAD_TTL: Duration = Duration::from_millis(500);
/// Catalogues smaller than this are scanned whole instead of cached.
pub(crate) const HEAD_SCAN_BELOW: usize = 50_000;

/// What a request needs to know about an item to decide whether it may be shown.
#[derive(Debug, Clone, Default)]
struct CatalogueEntry {
    /// In the catalogue: upserted (or created by an event) and not deleted since.
    listed: bool,
    hidden: bool,
    /// Expiry in milliseconds; `i64::MAX` when the item never expires.
    expires_at_ms: i64,
    /// Interned category ids, sorted and without duplicates.
    categories: Box<[u32]>,
}

impl CatalogueEntry {
    fn recommendable(&self, now_ms: i64) -> bool {
        self.listed && !self.hidden && self.expires_at_ms > now_ms
    }
}

/// What the state keeps per user.
#[derive(Debug, Clone, Default)]
struct UserState {
    /// Items with a positive or negative event: never recommended to this user.
    interacted: HashSet<u32>,
    /// The user's event log positions, ascending, with the interned event type at
    /// the same position in `event_types` (two arrays: 12 instead of 16 bytes per
    /// event).
    event_seqs: Vec<Seq>,
    event_types: Vec<u32>,
    /// Positive events as `(seq, item, timestamp ms)`, ascending by `seq`: the
    /// ordered history models score (recency weighting needs the order).
    positives: Vec<(Seq, u32, i64)>,
    /// Items shown to the user with how often, in first-shown order (at most
    /// [`MAX_SHOWN`]; the oldest are forgotten first), for impression fatigue.
    shown: Vec<(u32, u16)>,
}

/// Most distinct shown items remembered per user.
pub const MAX_SHOWN: usize = 64;

impl UserState {
    /// Adds an event to the user's list, keeping it ordered by `seq` even when
    /// writes finish out of order; applying the same event twice lists it once.
    fn record_event(&mut self, seq: Seq, event_type: u32) {
        match self.event_seqs.last() {
            Some(&last) if last >= seq => {
                if let Err(pos) = self.event_seqs.binary_search(&seq) {
                    self.event_seqs.insert(pos, seq);
                    self.event_types.insert(pos, event_type);
                }
            }
            _ => {
                self.event_seqs.push(seq);
                self.event_types.push(event_type);
            }
        }
    }

    /// Adds a positive event to the ordered history; a replayed event is kept once.
    /// Counts one impression of `item`.
    fn record_shown(&mut self, item: u32) {
        match self.shown.iter_mut().find(|(i, _)| *i == item) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => {
                if self.shown.len() == MAX_SHOWN {
                    self.shown.drain(..MAX_SHOWN / 4);
                }
                self.shown.push((item, 1));
            }
        }
    }

    fn record_positive(&mut self, seq: Seq, item: u32, at_ms: i64) {
        match self.positives.last() {
            Some(&(last, _, _)) if last >= seq => {
                if let Err(pos) = self.positives.binary_search_by_key(&seq, |p| p.0) {
                    self.positives.insert(pos, (seq, item, at_ms));
                }
            }
            _ => self.positives.push((seq, item, at_ms)),
        }
    }
}

/// Every user's positive events, copied out of the live state so that a model
/// can be trained without holding the state's lock.
#[derive(Debug, Clone, Default)]
pub struct PositiveEvents {
    /// Items known when the copy was taken (dense indices are below this).
    pub n_items: usize,
    /// Per dense user index, `(item, timestamp ms)` in the order the events were
    /// logged.
    pub per_user: Vec<Vec<(u32, i64)>>,
}

impl PositiveEvents {
    /// Number of events in the copy.
    pub fn len(&self) -> usize {
        self.per_user.iter().map(Vec::len).sum()
    }

    /// Whether there is no event at all.
    pub fn is_empty(&self) -> bool {
        self.per_user.iter().all(Vec::is_empty)
    }
}

/// Strings to dense `u32` ids, for labels with few distinct values.
#[derive(Debug, Clone, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The id of `name`, assigning the next one if it is new; the flag says whether it was new.
    fn intern(&mut self, name: &str) -> (u32, bool) {
        if let Some(&id) = self.ids.get(name) {
            return (id, false);
        }
        // More than u32::MAX distinct labels cannot fit in memory anyway.
        let id = self.ids.len() as u32;
        self.ids.insert(name.into(), id);
        (id, true)
    }
}

/// Item indices a request must skip: excluded by the request, already seen by
/// the user, or already placed by an earlier source of the fallback chain.
///
/// A bit set over the catalogue (12.5 KB for 100,000 items) makes the
/// per-candidate test one load and a mask, where a hash set would hash every
/// item of the catalogue.
struct Blocked {
    words: Vec<u64>,
}

impl Blocked {
    fn new(items: usize) -> Self {
        Self {
            words: vec![0; items.div_ceil(64)],
        }
    }

    /// Blocks `item`; items outside the catalogue are never candidates anyway.
    fn insert(&mut self, item: u32) {
        if let Some(word) = self.words.get_mut(item as usize / 64) {
            *word |= 1 << (item % 64);
        }
    }

    fn contains(&self, item: u32) -> bool {
        self.words
            .get(item as usize / 64)
            .is_some_and(|w| w & (1 << (item % 64)) != 0)
    }
}

/// The "may this item be shown" test of one request.
pub(crate) struct Filter<'a> {
    catalogue: &'a [CatalogueEntry],
    now_ms: i64,
    /// Interned ids of the requested categories; all must be on the item.
    categories: Vec<u32>,
    blocked: Option<Blocked>,
}

impl Filter<'_> {
    /// Whether `item` may be shown.
    pub(crate) fn allows(&self, item: u32) -> bool {
        let Some(entry) = self.catalogue.get(item as usize) else {
            return false;
        };
        entry.recommendable(self.now_ms)
            && self.categories.iter().all(|c| entry.categories.contains(c))
            && !self.blocked.as_ref().is_some_and(|b| b.contains(item))
    }

    /// Never allow `item` from now on.
    pub(crate) fn block(&mut self, item: u32) {
        let catalogue_len = self.catalogue.len();
        self.blocked
            .get_or_insert_with(|| Blocked::new(catalogue_len))
            .insert(item);
    }
}

/// Grows `v` so that `index` is a valid position.
fn slot<T: Default>(v: &mut Vec<T>, index: u32) -> &mut T {
    let i = index as usize;
    if i >= v.len() {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

/// Registers an `(id, index)` pair assigned by the store. A conflict means the
/// store and this state disagree; it is logged (the store stays the truth for
/// indices, which every caller passes explicitly) rather than turned into a
/// failed request.
fn register(map: &mut IdMap, kind: &'static str, id: &str, index: u32) {
    if let Err(conflict) = map.insert_known(id, index) {
        tracing::error!(kind, %conflict, "id map out of step with the store");
    }
}

impl LiveState {
    /// An empty state using these event types and this trending half-life.
    pub fn new(types: EventTypes, trending_half_life_hours: f64) -> Self {
        let mut event_types = Interner::default();
        let mut event_kinds = Vec::new();
        for name in types.all() {
            if event_types.intern(name).1 {
                event_kinds.push(types.classify(name));
            }
        }
        Self {
            ids: IdMaps::default(),
            event_types,
            event_kinds,
            categories: Interner::default(),
            catalogue: Vec::new(),
            users: Vec::new(),
            popularity: Popularity::new(),
            trending: Trending::new(trending_half_life_hours * MS_PER_HOUR),
            latest: Latest::new(),
            content: ContentIndex::new(Bm25::default()),
            positive_events: 0,
            catalogue_version: 0,
            heads: Mutex::new([None, None, None]),
        }
    }

    /// Installs the id maps loaded from the store (at startup).
    pub fn set_id_maps(&mut self, maps: IdMaps) {
        if self.ids.items.is_empty() && self.ids.users.is_empty() {
            self.ids = maps;
            return;
        }
        for (index, id) in maps.items.iter() {
            register(&mut self.ids.items, "item", id, index);
        }
        for (index, id) in maps.users.iter() {
            register(&mut self.ids.users, "user", id, index);
        }
    }

    /// Records a user index assigned by the store.
    pub fn register_user(&mut self, id: &str, index: u32) {
        register(&mut self.ids.users, "user", id, index);
    }

    /// Adds or replaces an item's catalogue entry (categories, hidden, expiry,
    /// publish time) and registers its id.
    pub fn upsert_item(&mut self, index: u32, item: &Item) {
        register(&mut self.ids.items, "item", &item.id, index);
        let mut categories: Vec<u32> = item
            .categories
            .iter()
            .map(|c| self.categories.intern(c).0)
            .collect();
        categories.sort_unstable();
        categories.dedup();
        *slot(&mut self.catalogue, index) = CatalogueEntry {
            listed: true,
            hidden: item.hidden,
            expires_at_ms: item.expires_at.map_or(i64::MAX, Timestamp::millis),
            categories: categories.into_boxed_slice(),
        };
        self.latest.set(index, item.published_at);
        self.catalogue_version += 1;
        self.content.upsert(
            index,
            &ItemText {
                title: &item.title,
                text: &item.text,
                tags: &item.tags,
                categories: &item.categories,
            },
        );
    }

    /// Removes an item from every list (its events stay counted in history).
    pub fn delete_item(&mut self, index: u32) {
        if let Some(entry) = self.catalogue.get_mut(index as usize) {
            entry.listed = false;
        }
        self.latest.remove(index);
        self.content.remove(index);
        self.catalogue_version += 1;
    }

    /// Applies a stored event: registers unseen ids (with placeholder catalogue
    /// entries for new items), updates popularity, trending, the user's seen and
    /// negative sets and the user's event list.
    pub fn apply_event(&mut self, user_id: &str, item_id: &str, event: &StoredEvent) {
        register(&mut self.ids.users, "user", user_id, event.user);
        let item = event.item;
        if self.ids.items.get(item_id).is_none() {
            // First sight of this item: the store has just created a placeholder
            // record for it, so the catalogue gets the same (visible, no
            // categories, published when the event happened). A known id
            // without a catalogue entry was deleted and stays deleted.
            register(&mut self.ids.items, "item", item_id, item);
            self.upsert_item(item, &Item::placeholder(item_id, event.timestamp));
        }

        let (type_id, new_type) = self.event_types.intern(&event.event_type);
        if new_type {
            // A type from the log that the configuration no longer lists: the event
            // stays visible in the user's history but counts for nothing.
            self.event_kinds.push(None);
        }
        let kind = self.event_kinds.get(type_id as usize).copied().flatten();

        let user = slot(&mut self.users, event.user);
        match kind {
            Some(EventKind::Positive) => {
                self.popularity.record(item);
                self.trending.record(item, event.timestamp);
                user.interacted.insert(item);
                user.record_positive(event.seq, item, event.timestamp.millis());
                self.positive_events += 1;
            }
            Some(EventKind::Negative) => {
                user.interacted.insert(item);
            }
            Some(EventKind::Impression) => user.record_shown(item),
            None => {}
        }
        user.record_event(event.seq, type_id);
    }

    /// Dense index of an item id.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.ids.items.get(id)
    }

    /// Item id of a dense index.
    pub fn item_id(&self, index: u32) -> Option<&str> {
        self.ids.items.id(index)
    }

    /// Dense index of a user id.
    pub fn user_index(&self, id: &str) -> Option<u32> {
        self.ids.users.get(id)
    }

    /// User id of a dense index.
    pub fn user_id(&self, index: u32) -> Option<&str> {
        self.ids.users.id(index)
    }

    /// Whether the item exists in the catalogue (not deleted).
    pub fn has_item(&self, index: u32) -> bool {
        self.catalogue.get(index as usize).is_some_and(|e| e.listed)
    }

    /// The user's events, newest first, optionally only of one type.
    pub fn user_event_seqs(&self, user: u32, limit: usize, event_type: Option<&str>) -> Vec<Seq> {
        let Some(state) = self.users.get(user as usize) else {
            return Vec::new();
        };
        let wanted = match event_type {
            Some(name) => match self.event_types.get(name) {
                Some(id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        state
            .event_seqs
            .iter()
            .zip(&state.event_types)
            .rev()
            .filter(|&(_, &t)| wanted.is_none_or(|w| w == t))
            .take(limit)
            .map(|(&seq, _)| seq)
            .collect()
    }

    /// The request's filter, or `None` when a requested category is on no item at
    /// all (then nothing can match).
    fn filter(&self, q: &ListQuery, now: Timestamp) -> Option<Filter<'_>> {
        let mut categories = Vec::with_capacity(q.categories.len());
        for name in &q.categories {
            categories.push(self.categories.get(name)?);
        }
        let mut filter = Filter {
            catalogue: &self.catalogue,
            now_ms: now.millis(),
            categories,
            blocked: None,
        };
        for &item in &q.exclude {
            filter.block(item);
        }
        Some(filter)
    }

    /// Most popular recommendable items, `(item, positive events)`.
    pub fn popular(&self, q: &ListQuery, now: Timestamp) -> Vec<(u32, f64)> {
        let Some(filter) = self.filter(q, now) else {
            return Vec::new();
        };
        self.popularity.top(|i| filter.allows(i), q.offset, q.n)
    }

    /// Trending recommendable items, `(item, events decayed to now)`.
    pub fn trending(&self, q: &ListQuery, now: Timestamp) -> Vec<(u32, f64)> {
        let Some(filter) = self.filter(q, now) else {
            return Vec::new();
        };
        self.trending.top(|i| filter.allows(i), now, q.offset, q.n)
    }

    /// Most recently published recommendable items, `(item, publish time in
    /// Unix seconds)`.
    pub fn latest(&self, q: &ListQuery, now: Timestamp) -> Vec<(u32, f64)> {
        let Some(filter) = self.filter(q, now) else {
            return Vec::new();
        };
        self.latest.top(|i| filter.allows(i), q.offset, q.n)
    }

    /// The best `n` items of a non-personalized list that `allow` accepts,
    /// with the list's scores (as [`LiveState::popular`] and friends).
    ///
    /// Small catalogues are scanned whole. Large ones keep the top
    /// [`HEAD_LEN`] items of each list, recomputed at most every
    /// [`HEAD_TTL`] (and for `latest` after every catalogue change), and filter
    /// that head per request; a request the head cannot satisfy scans the whole
    /// list. So a request costs O(head) instead of O(catalogue).
    pub(crate) fn head_top(
        &self,
        list: HeadList,
        allow: &dyn Fn(u32) -> bool,
        n: usize,
        now: Timestamp,
    ) -> Vec<(u32, f64)> {
        if n == 0 {
            return Vec::new();
        }
        let scan = || match list {
            HeadList::Popular => self.popularity.top(allow, 0, n),
            HeadList::Trending => self.trending.top(allow, now, 0, n),
            HeadList::Latest => self.latest.top(allow, 0, n),
        };
        if self.catalogue.len() < HEAD_SCAN_BELOW {
            return scan();
        }
        let head = self.head(list, now);
        let mut out = Vec::with_capacity(n);
        for &item in head.iter() {
            if allow(item) {
                out.push((item, self.list_score(list, item, now)));
                if out.len() == n {
                    return out;
                }
            }
        }
        if head.len() < HEAD_LEN {
            // The head is the whole list: nothing else could qualify.
            return out;
        }
        scan()
    }

    fn list_score(&self, list: HeadList, item: u32, now: Timestamp) -> f64 {
        match list {
            HeadList::Popular => f64::from(self.popularity.count(item)),
            HeadList::Trending => self.trending.value_at(item, now),
            HeadList::Latest => self
                .latest
                .published_at(item)
                .map_or(0.0, |t| t.millis() as f64 / 1000.0),
        }
    }

    /// Recomputes every cached head of a large catalogue (the server does it
    /// in the background every [`HEAD_TTL`], off the request path).
    pub fn refresh_heads(&self, now: Timestamp) {
        if self.catalogue.len() < HEAD_SCAN_BELOW {
            return;
        }
        for list in [HeadList::Popular, HeadList::Trending, HeadList::Latest] {
            self.compute_head(list, now);
        }
    }

    /// The cached head of `list`. A head of `latest` older than the last
    /// catalogue change is recomputed at once (a new item must be listed);
    /// the others are refreshed by [`LiveState::refresh_heads`], and only
    /// recomputed here when missing or much older than [`HEAD_TTL`] (no
    /// refresher running).
    fn head(&self, list: HeadList, now: Timestamp) -> Arc<[u32]> {
        let slot = list as usize;
        let fresh = |h: &Head| {
            h.computed.elapsed() < 4 * HEAD_TTL
                && (list != HeadList::Latest || h.version == self.catalogue_version)
        };
        if let Some(head) = self.heads.lock()[slot].as_ref().filter(|h| fresh(h)) {
            return head.items.clone();
        }
        self.compute_head(list, now)
    }

    fn compute_head(&self, list: HeadList, now: Timestamp) -> Arc<[u32]> {
        let slot = list as usize;
        let listed = |i: u32| {
            self.catalogue
                .get(i as usize)
                .is_some_and(|e| e.recommendable(now.millis()))
        };
        let items: Arc<[u32]> = match list {
            HeadList::Popular => self.popularity.top(listed, 0, HEAD_LEN),
            HeadList::Trending => self.trending.top(listed, now, 0, HEAD_LEN),
            HeadList::Latest => self.latest.top(listed, 0, HEAD_LEN),
        }
        .into_iter()
        .map(|(i, _)| i)
        .collect();
        self.heads.lock()[slot] = Some(Head {
            items: items.clone(),
            computed: Instant::now(),
            version: self.catalogue_version,
        });
        items
    }

    /// The filter of a recommendation request: recommendable items with every
    /// category of `categories`, minus `blocked`; `None` when a category is on
    /// no item at all (nothing can match).
    pub(crate) fn request_filter(
        &self,
        categories: &[String],
        blocked: impl IntoIterator<Item = u32>,
        now: Timestamp,
    ) -> Option<Filter<'_>> {
        let mut filter = self.filter(
            &ListQuery {
                categories: categories.to_vec(),
                ..ListQuery::default()
            },
            now,
        )?;
        for item in blocked {
            filter.block(item);
        }
        Some(filter)
    }

    /// Items shown to the user before, with how often.
    pub(crate) fn shown(&self, user: u32) -> &[(u32, u16)] {
        self.users
            .get(user as usize)
            .map_or(&[][..], |u| &u.shown[..])
    }

    /// Items the user had a positive or negative event with (never recommended).
    pub(crate) fn interacted(&self, user: u32) -> impl Iterator<Item = u32> + '_ {
        self.users
            .get(user as usize)
            .into_iter()
            .flat_map(|u| u.interacted.iter().copied())
    }

    /// Interned category ids of an item (sorted), empty for unknown items.
    pub(crate) fn item_categories(&self, item: u32) -> &[u32] {
        self.catalogue
            .get(item as usize)
            .map_or(&[], |e| &e.categories)
    }

    /// When the item was published.
    pub(crate) fn published_at(&self, item: u32) -> Option<Timestamp> {
        self.latest.published_at(item)
    }

    /// The items' texts, for content similarity.
    pub(crate) fn content(&self) -> &ContentIndex {
        &self.content
    }

    /// The user's positive events as `(item, timestamp ms)`, oldest first: the
    /// history a model scores (empty for an unknown user).
    pub fn user_history(&self, user: u32) -> Vec<(u32, i64)> {
        self.users.get(user as usize).map_or_else(Vec::new, |u| {
            u.positives
                .iter()
                .map(|&(_, item, at)| (item, at))
                .collect()
        })
    }

    /// Positive events applied since the state was created; training compares it
    /// with the count at its last run to decide whether enough is new.
    pub fn positive_event_count(&self) -> u64 {
        self.positive_events
    }

    /// Number of dense item indices in use (deleted items included).
    pub fn n_items(&self) -> usize {
        self.catalogue.len().max(self.ids.items.len())
    }

    /// A fingerprint (`fnv1a64:` + 16 hex digits) of the ids of items
    /// `0..n_items` in index order. A saved model scores item indices; the
    /// fingerprint it is saved with proves that those indices still name the
    /// same items when it is loaded.
    pub fn item_fingerprint(&self, n_items: usize) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for index in 0..n_items {
            // Ids cannot contain NUL, so it separates them unambiguously; an
            // index without an id hashes as a lone 0x01.
            match self.item_id(index as u32) {
                Some(id) => eat(id.as_bytes()),
                None => eat(&[1]),
            }
            eat(&[0]);
        }
        format!("fnv1a64:{hash:016x}")
    }

    /// Copies every user's positive events, for training off the lock. Compact
    /// (12 bytes per event), so the copy is quick even for millions of events.
    pub fn positive_events(&self) -> PositiveEvents {
        PositiveEvents {
            n_items: self.n_items(),
            per_user: self
                .users
                .iter()
                .map(|u| {
                    u.positives
                        .iter()
                        .map(|&(_, item, at)| (item, at))
                        .collect()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::Fixture;
    use super::*;
    use crate::pipeline::Source;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn shown_items_are_counted_and_the_oldest_forgotten() {
        let mut user = UserState::default();
        user.record_shown(1);
        user.record_shown(1);
        assert_eq!(user.shown, [(1, 2)]);
        for item in 100..100 + MAX_SHOWN as u32 {
            user.record_shown(item);
        }
        assert!(user.shown.len() <= MAX_SHOWN);
        assert!(user.shown.iter().all(|&(item, _)| item != 1));
        assert_eq!(user.shown.last(), Some(&(99 + MAX_SHOWN as u32, 1)));
    }

    fn at_hours(h: i64) -> Timestamp {
        Timestamp(h * HOUR)
    }

    fn item(id: &str, published_hours: i64) -> Item {
        Item::placeholder(id, at_hours(published_hours))
    }

    fn query(n: usize) -> ListQuery {
        ListQuery {
            n,
            ..ListQuery::default()
        }
    }

    impl Fixture {
        /// The home scene's pipeline without a model, as `/v1/recommend` runs it.
        fn recommend(
            &self,
            user: Option<u32>,
            q: &ListQuery,
            now: Timestamp,
        ) -> Vec<crate::pipeline::Ranked> {
            let history = user.map_or_else(Vec::new, |u| self.live.user_history(u));
            let mut blocked: Vec<u32> = q.exclude.iter().copied().collect();
            if let Some(u) = user {
                blocked.extend(self.live.interacted(u));
            }
            let request = crate::pipeline::Request {
                history: &history,
                blocked,
                context_item: None,
                candidates: &[],
                categories: &q.categories,
                pinned: Vec::new(),
                n: q.n,
                offset: q.offset,
                now,
                seed: 0,
                shown: &[],
            };
            let scene = crate::pipeline::scene::Scene::home();
            let ranker = crate::pipeline::BlendRanker::for_scene(&scene);
            crate::pipeline::run(&self.live, None, &scene, &ranker, &request)
        }

        /// The ids returned by every list and by `recommend` for an unknown user.
        fn every_list(&self, q: &ListQuery, now: Timestamp) -> [Vec<&str>; 4] {
            let mut lists = [
                self.ids(&self.live.popular(q, now)),
                self.ids(&self.live.trending(q, now)),
                self.ids(&self.live.latest(q, now)),
                self.ids(&self.recommend(None, q, now)),
            ];
            for list in &mut lists {
                list.sort_unstable();
            }
            lists
        }
    }

    #[test]
    fn hidden_expired_deleted_and_excluded_items_are_never_returned() {
        let now = at_hours(100);
        let mut f = Fixture::new(24.0);
        f.upsert(item("ok", 1));
        f.upsert(Item {
            hidden: true,
            ..item("hidden", 1)
        });
        f.upsert(Item {
            expires_at: Some(at_hours(99)),
            ..item("expired", 1)
        });
        f.upsert(Item {
            expires_at: Some(now),
            ..item("expires-now", 1)
        });
        f.upsert(Item {
            expires_at: Some(at_hours(101)),
            ..item("expires-later", 1)
        });
        f.upsert(item("deleted", 1));
        f.delete("deleted");
        f.upsert(item("excluded", 1));
        for id in [
            "ok",
            "hidden",
            "expired",
            "expires-now",
            "expires-later",
            "deleted",
            "excluded",
        ] {
            f.event("u", id, "click", at_hours(99));
        }
        let q = ListQuery {
            exclude: [f.index("excluded")].into(),
            ..query(50)
        };
        for list in f.every_list(&q, now) {
            assert_eq!(list, ["expires-later", "ok"]);
        }
        // Without the exclusion the excluded item is back, the others are not.
        for list in f.every_list(&query(50), now) {
            assert_eq!(list, ["excluded", "expires-later", "ok"]);
        }
        assert!(!f.live.has_item(f.index("deleted")));
        assert!(f.live.has_item(f.index("hidden")));
    }

    #[test]
    fn every_requested_category_must_match() {
        let now = at_hours(10);
        let mut f = Fixture::new(24.0);
        let with = |id: &str, cats: &[&str]| Item {
            categories: cats.iter().map(|c| c.to_string()).collect(),
            ..item(id, 1)
        };
        f.upsert(with("xy", &["x", "y"]));
        f.upsert(with("x", &["x"]));
        f.upsert(with("y", &["y", "y"]));
        f.upsert(with("none", &[]));
        for id in ["xy", "x", "y", "none"] {
            f.event("u", id, "like", at_hours(5));
        }
        let cats = |c: &[&str]| ListQuery {
            categories: c.iter().map(|c| c.to_string()).collect(),
            ..query(50)
        };
        for list in f.every_list(&cats(&["x"]), now) {
            assert_eq!(list, ["x", "xy"]);
        }
        for list in f.every_list(&cats(&["y", "x"]), now) {
            assert_eq!(list, ["xy"]);
        }
        for list in f.every_list(&cats(&["x", "unknown"]), now) {
            assert!(list.is_empty());
        }
        for list in f.every_list(&cats(&[]), now) {
            assert_eq!(list.len(), 4);
        }
        // Re-categorising an item takes effect at once.
        f.upsert(with("none", &["x"]));
        assert_eq!(f.every_list(&cats(&["x"]), now)[3], ["none", "x", "xy"]);
    }

    #[test]
    fn recommend_blends_trending_popular_and_latest() {
        // Half-life one hour; `old` had its events 2,000 half-lives ago.
        let now = at_hours(2000);
        let mut f = Fixture::new(1.0);
        f.upsert(item("hot", 0));
        f.upsert(item("warm", 0));
        f.upsert(item("old", 0));
        f.upsert(item("fresh", 1999));
        f.upsert(item("stale", 1));
        f.event("a", "hot", "click", at_hours(1999));
        f.event("b", "hot", "click", at_hours(1999));
        f.event("a", "warm", "click", at_hours(1998));
        for user in ["a", "b", "c", "d", "e"] {
            f.event(user, "old", "click", at_hours(0));
        }

        // The home scene weighs trending 0.1, popular 0.05 and latest 0.02:
        // trending and popular relative to their best, latest by rank.
        let recs = f.recommend(None, &query(10), now);
        assert_eq!(f.ids(&recs), ["hot", "old", "warm", "fresh", "stale"]);
        let sources: Vec<Source> = recs.iter().map(|s| s.source).collect();
        use Source::*;
        assert_eq!(sources, [Trending, Popular, Trending, Latest, Latest]);
        let expected = [
            0.1 + 0.05 * 0.4 + 0.02 * 0.6,
            0.05 + 0.02 * 0.2,
            0.1 * 0.25 + 0.05 * 0.2 + 0.02 * 0.4,
            0.02,
            0.02 * 0.8,
        ];
        for (r, e) in recs.iter().zip(expected) {
            assert!((r.score - e).abs() < 1e-6, "{recs:?}");
        }

        assert_eq!(
            f.ids(&f.live.popular(&query(10), now)),
            ["old", "hot", "warm"]
        );
        assert_eq!(f.live.popular(&query(10), now)[0].1, 5.0);
        assert_eq!(f.ids(&f.live.trending(&query(10), now)), ["hot", "warm"]);
        assert_eq!(
            f.ids(&f.live.latest(&query(10), now)),
            ["fresh", "stale", "hot", "warm", "old"]
        );
    }

    #[test]
    fn positive_and_negative_events_exclude_but_impressions_do_not() {
        let now = at_hours(10);
        let mut f = Fixture::new(24.0);
        for id in ["clicked", "disliked", "shown", "other"] {
            f.upsert(item(id, 1));
        }
        f.event("u", "clicked", "click", at_hours(5));
        f.event("u", "disliked", "dislike", at_hours(5));
        f.event("u", "shown", "impression", at_hours(5));
        let mut recs = f.ids(&f.recommend(f.user("u"), &query(10), now));
        recs.sort_unstable();
        assert_eq!(recs, ["other", "shown"]);
        // Only positive events count for the lists.
        assert_eq!(f.ids(&f.live.popular(&query(10), now)), ["clicked"]);
        assert_eq!(f.ids(&f.live.trending(&query(10), now)), ["clicked"]);
        // Someone else still gets everything.
        f.event("v", "other", "impression", at_hours(5));
        assert_eq!(f.recommend(f.user("v"), &query(10), now).len(), 4);
    }

    #[test]
    fn indices_may_arrive_out_of_order() {
        let mut live = LiveState::new(EventTypes::default(), 24.0);
        live.upsert_item(5, &item("five", 1));
        live.upsert_item(2, &item("two", 1));
        live.register_user("u3", 3);
        let event = |seq, user, item| StoredEvent {
            seq,
            user,
            item,
            event_type: "click".into(),
            value: 1.0,
            timestamp: at_hours(2),
            request_id: None,
            scene: None,
            position: None,
            attribution: None,
        };
        live.apply_event("u7", "seven", &event(1, 7, 7));
        live.apply_event("u1", "six", &event(0, 1, 6));
        live.apply_event("u3", "five", &event(2, 3, 5));
        assert_eq!(
            (
                live.item_index("five"),
                live.item_index("two"),
                live.item_index("seven")
            ),
            (Some(5), Some(2), Some(7))
        );
        assert_eq!(
            (live.item_id(6), live.item_id(4), live.item_id(99)),
            (Some("six"), None, None)
        );
        assert_eq!(
            (
                live.user_index("u7"),
                live.user_index("u1"),
                live.user_id(3)
            ),
            (Some(7), Some(1), Some("u3"))
        );
        assert_eq!(live.user_id(2), None);
        assert!(live.has_item(6) && live.has_item(7) && !live.has_item(4) && !live.has_item(100));
        assert_eq!(live.user_event_seqs(3, 10, None), [2]);
        assert!(live.user_event_seqs(2, 10, None).is_empty());
        let popular: Vec<u32> = live
            .popular(&query(10), at_hours(3))
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(popular, [5, 6, 7]);
    }

    #[test]
    fn user_events_newest_first_with_type_filter() {
        let mut live = LiveState::new(EventTypes::default(), 24.0);
        let event = |seq, event_type: &str| StoredEvent {
            seq,
            user: 0,
            item: 0,
            event_type: event_type.into(),
            value: 1.0,
            timestamp: at_hours(1),
            request_id: None,
            scene: None,
            position: None,
            attribution: None,
        };
        // Writes finishing out of order, one applied twice, one of a type that
        // is no longer configured.
        for (seq, t) in [
            (0, "click"),
            (1, "impression"),
            (4, "click"),
            (2, "dislike"),
            (4, "click"),
            (3, "view"),
        ] {
            live.apply_event("u", "i", &event(seq, t));
        }
        assert_eq!(live.user_event_seqs(0, 100, None), [4, 3, 2, 1, 0]);
        assert_eq!(live.user_event_seqs(0, 2, None), [4, 3]);
        assert_eq!(live.user_event_seqs(0, 100, Some("click")), [4, 0]);
        assert_eq!(live.user_event_seqs(0, 1, Some("click")), [4]);
        assert_eq!(live.user_event_seqs(0, 100, Some("view")), [3]);
        assert!(live.user_event_seqs(0, 100, Some("purchase")).is_empty());
        assert!(live.user_event_seqs(0, 100, Some("teleport")).is_empty());
        assert!(live.user_event_seqs(0, 0, None).is_empty());
        assert!(live.user_event_seqs(1, 100, None).is_empty());
        // The duplicate was listed once but counted like any applied event.
        assert_eq!(live.popular(&query(5), at_hours(2))[0].1, 3.0);
    }

    #[test]
    fn events_do_not_resurrect_deleted_items_but_upserts_do() {
        let now = at_hours(10);
        let mut f = Fixture::new(24.0);
        f.upsert(item("gone", 1));
        f.event("u", "gone", "click", at_hours(2));
        f.delete("gone");
        let seq = f.event("u", "gone", "click", at_hours(3));
        assert!(!f.live.has_item(f.index("gone")));
        assert_eq!(f.live.user_event_seqs(0, 10, None), [seq, 0]);
        for list in f.every_list(&query(10), now) {
            assert!(list.is_empty());
        }
        f.upsert(item("gone", 4));
        assert!(f.live.has_item(f.index("gone")));
        let popular = f.live.popular(&query(10), now);
        assert_eq!(
            (f.ids(&popular), popular[0].1),
            (vec!["gone"], 2.0),
            "history was kept"
        );
    }

    #[test]
    fn events_for_unseen_items_create_placeholders() {
        let now = at_hours(10);
        let mut f = Fixture::new(24.0);
        f.event("u", "new", "impression", at_hours(3));
        assert!(f.live.has_item(f.index("new")));
        let latest = f.live.latest(&query(10), now);
        assert_eq!(f.ids(&latest), ["new"]);
        assert_eq!(latest[0].1, (3 * HOUR) as f64 / 1000.0);
        // A later upsert replaces the placeholder.
        f.upsert(Item {
            hidden: true,
            ..item("new", 1)
        });
        assert!(f.live.latest(&query(10), now).is_empty());
    }

    #[test]
    fn replay_after_restart_keeps_deleted_items_deleted() {
        let mut maps = IdMaps::default();
        maps.items.insert_known("kept", 0).unwrap();
        maps.items.insert_known("deleted", 1).unwrap();
        maps.users.insert_known("u", 0).unwrap();
        let mut live = LiveState::new(EventTypes::default(), 24.0);
        live.set_id_maps(maps);
        live.upsert_item(0, &item("kept", 1));
        for (seq, item) in [(0, 0), (1, 1)] {
            let e = StoredEvent {
                seq,
                user: 0,
                item,
                event_type: "click".into(),
                value: 1.0,
                timestamp: at_hours(2),
                request_id: None,
                scene: None,
                position: None,
                attribution: None,
            };
            live.apply_event("u", live.item_id(item).unwrap().to_owned().as_str(), &e);
        }
        assert!(live.has_item(0) && !live.has_item(1));
        assert_eq!(live.user_event_seqs(0, 10, None), [1, 0]);
        let popular: Vec<u32> = live
            .popular(&query(10), at_hours(3))
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(popular, [0]);
        // Merging maps into a non-empty state keeps what it had.
        let mut more = IdMaps::default();
        more.users.insert_known("w", 4).unwrap();
        live.set_id_maps(more);
        assert_eq!(
            (live.user_index("w"), live.user_index("u")),
            (Some(4), Some(0))
        );
    }

    /// One catalogue item of a random scenario.
    #[derive(Debug, Clone)]
    struct Spec {
        upserted: bool,
        deleted: bool,
        hidden: bool,
        /// Expiry relative to `now`, in hours.
        expires_in: Option<i64>,
        categories: u8,
        published_hours: i64,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            any::<bool>(),
            any::<bool>(),
            proptest::bool::weighted(0.2),
            proptest::option::weighted(0.3, -2i64..3),
            0u8..4,
            0i64..100,
        )
            .prop_map(
                |(upserted, deleted, hidden, expires_in, categories, published_hours)| Spec {
                    upserted: upserted || deleted,
                    deleted,
                    hidden,
                    expires_in,
                    categories,
                    published_hours,
                },
            )
    }

    const TYPES: [&str; 4] = ["click", "dislike", "impression", "like"];
    const CATEGORIES: [&str; 2] = ["a", "b"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn recommend_never_returns_forbidden_items_or_repeats(
            specs in proptest::collection::vec(spec(), 1..12),
            events in proptest::collection::vec((0u8..4, 0u8..14, 0usize..4, 0i64..100), 0..60),
            split in 0usize..60,
            wanted_categories in 0u8..4,
            excluded in any::<u16>(),
            user in proptest::option::of(0u8..5),
            page in 1usize..6,
        ) {
            let now = at_hours(100);
            // A short half-life, so that old events fall out of trending into popular.
            let mut f = Fixture::new(0.01);
            let item_id = |i: u8| format!("i{i}");
            let spec_of = |i: u8| specs.get(usize::from(i));
            for (i, s) in specs.iter().enumerate() {
                if s.upserted {
                    let it = Item {
                        hidden: s.hidden,
                        expires_at: s.expires_in.map(|h| at_hours(100 + h)),
                        categories: CATEGORIES.iter().enumerate().filter(|(b, _)| s.categories & (1 << b) != 0).map(|(_, c)| c.to_string()).collect(),
                        ..item(&item_id(i as u8), s.published_hours)
                    };
                    f.upsert(it);
                }
            }
            let split = split.min(events.len());
            for &(u, i, t, h) in &events[..split] {
                f.event(&format!("u{u}"), &item_id(i), TYPES[t], at_hours(h));
            }
            for (i, s) in specs.iter().enumerate() {
                if s.deleted {
                    f.delete(&item_id(i as u8));
                }
            }
            for &(u, i, t, h) in &events[split..] {
                f.event(&format!("u{u}"), &item_id(i), TYPES[t], at_hours(h));
            }

            // The reference: what may be shown, worked out from the scenario alone.
            let user_name = user.map(|u| format!("u{u}"));
            let listed = |i: u8| match spec_of(i) {
                Some(s) if s.upserted => !s.deleted,
                _ => events.iter().any(|e| e.1 == i),
            };
            let interacted = |i: u8| {
                events.iter().any(|&(u, it, t, _)| it == i && user == Some(u) && TYPES[t] != "impression")
            };
            let excluded_item = |i: u8| excluded & (1 << i) != 0;
            let visible = |i: u8| match spec_of(i) {
                Some(s) if s.upserted => {
                    !s.hidden && s.expires_in.is_none_or(|h| h > 0) && s.categories & wanted_categories == wanted_categories
                }
                // Placeholders: visible, no categories, no expiry.
                _ => wanted_categories == 0,
            };
            let listable = |i: u8| listed(i) && visible(i) && !excluded_item(i);
            let allowed = |i: u8| listable(i) && !interacted(i);

            let q = ListQuery {
                n: 1000,
                offset: 0,
                categories: CATEGORIES.iter().enumerate().filter(|(b, _)| wanted_categories & (1 << b) != 0).map(|(_, c)| c.to_string()).collect(),
                exclude: (0..16u8).filter(|&i| excluded_item(i)).filter_map(|i| f.items.get(&item_id(i))).collect(),
            };
            let user_index = user_name.as_deref().and_then(|u| f.user(u));
            let full = f.recommend(user_index, &q, now);

            let mut seen = HashSet::new();
            for s in &full {
                let id = f.live.item_id(s.item).expect("an id");
                prop_assert!(seen.insert(s.item), "{id} repeats");
                let i: u8 = id[1..].parse().expect("a scenario id");
                prop_assert!(allowed(i), "{id} must not be recommended");
            }
            let everything: usize = (0..14u8).filter(|&i| allowed(i)).count();
            prop_assert_eq!(full.len(), everything, "the fill step reaches every allowed item");
            // Pages that block what earlier pages answered (what a request_id
            // session does) never repeat and together cover every allowed item.
            let mut pages: Vec<u32> = Vec::new();
            while pages.len() < everything {
                let mut q = ListQuery { n: page, ..q.clone() };
                q.exclude.extend(pages.iter().copied());
                let next = f.recommend(user_index, &q, now);
                prop_assert!(!next.is_empty());
                for r in next {
                    prop_assert!(!pages.contains(&r.item));
                    pages.push(r.item);
                }
            }

            // The lists agree with the reference too (they know nothing of users).
            let latest = f.live.latest(&q, now);
            prop_assert_eq!(latest.len(), (0..14u8).filter(|&i| listable(i)).count());
            let popular = f.live.popular(&q, now);
            for s in &popular {
                let i: u8 = f.live.item_id(s.0).expect("an id")[1..].parse().expect("a scenario id");
                prop_assert!(listable(i));
                let positives = events.iter().filter(|e| e.1 == i && matches!(TYPES[e.2], "click" | "like")).count();
                prop_assert_eq!(s.1, positives as f64);
            }
            let with_positives = (0..14u8)
                .filter(|&i| listable(i) && events.iter().any(|e| e.1 == i && matches!(TYPES[e.2], "click" | "like")))
                .count();
            prop_assert_eq!(popular.len(), with_positives);
        }
    }
}

/// A live state fed the way the server feeds it, shared by the tests of this
/// module and of the pipeline.
#[cfg(test)]
pub(crate) mod fixture {
    use tephra_core::{EventTypes, IdMap, Item, Timestamp};
    use tephra_store::{Seq, StoredEvent};

    use super::LiveState;

    /// The item of a list entry, whichever list produced it.
    pub(crate) trait ItemOf {
        fn item_of(&self) -> u32;
    }

    impl ItemOf for (u32, f64) {
        fn item_of(&self) -> u32 {
            self.0
        }
    }

    impl ItemOf for crate::pipeline::Ranked {
        fn item_of(&self) -> u32 {
            self.item
        }
    }

    /// A live state fed the way the server feeds it, with indices assigned the way
    /// the store assigns them (next free index on first sight).
    pub(crate) struct Fixture {
        pub(crate) live: LiveState,
        pub(crate) items: IdMap,
        pub(crate) users: IdMap,
        next_seq: Seq,
    }

    impl Fixture {
        pub(crate) fn new(half_life_hours: f64) -> Self {
            Self {
                live: LiveState::new(EventTypes::default(), half_life_hours),
                items: IdMap::new(),
                users: IdMap::new(),
                next_seq: 0,
            }
        }

        pub(crate) fn upsert(&mut self, item: Item) -> u32 {
            let index = self.items.get_or_insert(&item.id).0;
            self.live.upsert_item(index, &item);
            index
        }

        pub(crate) fn delete(&mut self, id: &str) {
            let index = self.items.get(id).expect("deleting a known item");
            self.live.delete_item(index);
        }

        pub(crate) fn event(
            &mut self,
            user: &str,
            item: &str,
            event_type: &str,
            at: Timestamp,
        ) -> Seq {
            let stored = StoredEvent {
                seq: self.next_seq,
                user: self.users.get_or_insert(user).0,
                item: self.items.get_or_insert(item).0,
                event_type: event_type.into(),
                value: 1.0,
                timestamp: at,
                request_id: None,
                scene: None,
                position: None,
                attribution: None,
            };
            self.next_seq += 1;
            self.live.apply_event(user, item, &stored);
            stored.seq
        }

        pub(crate) fn index(&self, id: &str) -> u32 {
            self.items.get(id).expect("a known item")
        }

        pub(crate) fn user(&self, id: &str) -> Option<u32> {
            self.live.user_index(id)
        }

        pub(crate) fn ids<T: ItemOf>(&self, list: &[T]) -> Vec<&str> {
            list.iter()
                .map(|s| {
                    self.live
                        .item_id(s.item_of())
                        .expect("listed items have ids")
                })
                .collect()
        }
    }
}
