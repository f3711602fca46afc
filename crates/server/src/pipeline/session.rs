//! Pagination sessions: the items already answered under one `request_id`, so
//! that the next page never repeats one of them even when the ranking changed
//! in between (the user clicked, a model was swapped).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Sessions kept at most; the oldest are forgotten first.
pub const MAX_SESSIONS: usize = 100_000;
/// How long a session can be continued after its last page.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// Most items one session remembers (deeper pages are refused).
pub const MAX_SESSION_ITEMS: usize = 10_000;

/// Who a session belongs to and what it has shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The route and user or item it was opened for; a continuation must match.
    pub owner: String,
    /// The scene it ranks with.
    pub scene: String,
    /// Items answered so far, as dense indices.
    pub served: Vec<u32>,
    touched: Instant,
}

/// All open sessions, bounded in number and age.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Session>,
    /// Ids in the order they were last touched (may hold stale duplicates).
    order: VecDeque<(Instant, String)>,
}

impl Sessions {
    /// The session `id`, if it is open and not expired.
    pub fn get(&self, id: &str) -> Option<Session> {
        let inner = self.inner.lock();
        inner
            .by_id
            .get(id)
            .filter(|s| s.touched.elapsed() < SESSION_TTL)
            .cloned()
    }

    /// Opens or extends session `id`: `served` items are added to what it has
    /// shown (without duplicates).
    pub fn record(&self, id: &str, owner: &str, scene: &str, served: &[u32]) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let session = inner.by_id.entry(id.to_owned()).or_insert_with(|| Session {
            owner: owner.to_owned(),
            scene: scene.to_owned(),
            served: Vec::new(),
            touched: now,
        });
        let known: HashSet<u32> = session.served.iter().copied().collect();
        session
            .served
            .extend(served.iter().filter(|i| !known.contains(i)));
        session.served.truncate(MAX_SESSION_ITEMS);
        session.touched = now;
        inner.order.push_back((now, id.to_owned()));
        // Forget expired sessions and, above the bound, the least recently used.
        while let Some((touched, oldest)) = inner.order.front().cloned() {
            let current = inner.by_id.get(&oldest).map(|s| s.touched);
            if current != Some(touched) {
                inner.order.pop_front(); // a stale entry: touched again since
                continue;
            }
            if inner.by_id.len() > MAX_SESSIONS || touched.elapsed() >= SESSION_TTL {
                inner.by_id.remove(&oldest);
                inner.order.pop_front();
                continue;
            }
            break;
        }
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_accumulate_served_items_without_duplicates() {
        let sessions = Sessions::default();
        assert!(sessions.get("a").is_none());
        sessions.record("a", "user:u", "home", &[1, 2, 3]);
        sessions.record("a", "user:u", "home", &[3, 4]);
        let s = sessions.get("a").unwrap();
        assert_eq!(s.served, vec![1, 2, 3, 4]);
        assert_eq!((s.owner.as_str(), s.scene.as_str()), ("user:u", "home"));
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn the_bound_forgets_the_least_recently_used() {
        let sessions = Sessions::default();
        for i in 0..MAX_SESSIONS + 10 {
            sessions.record(&i.to_string(), "o", "home", &[i as u32]);
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get("0").is_none());
        assert!(sessions.get(&(MAX_SESSIONS + 9).to_string()).is_some());
    }
}
