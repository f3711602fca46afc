//! Turning validated events into ready-to-insert records: ids resolved to dense
//! indices and records encoded, without touching the file.
//!
//! Kept apart from the tables so that an import session can do this work in the
//! importer's task, in parallel with the writer thread inserting the previous
//! batch; group commits do the same work on the writer thread.

use tephra_core::{Event, Timestamp};

use super::codec::{self, EventFields};
use super::state::NewIds;
use crate::{IdMaps, Result, Seq, StoredEvent};

/// A batch of events ready to be written: encoded records in order, plus the ids
/// they introduced (which need id-map rows and placeholder records).
#[derive(Debug, Default)]
pub(crate) struct EncodedEvents {
    /// The records, back to back.
    bytes: Vec<u8>,
    /// End offset of each record in `bytes`.
    ends: Vec<usize>,
    /// Users first named by this batch: index and id.
    pub new_users: Vec<(u32, String)>,
    /// Items first named by this batch: index, id, and the time of the event
    /// that named them (the placeholder's `published_at`).
    pub new_items: Vec<(u32, String, Timestamp)>,
}

impl EncodedEvents {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The encoded records, in order.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

/// Resolves and encodes validated `events`. With `first_seq`, also returns the
/// events as they will be stored (for callers that answer with them).
pub(crate) fn resolve_events(
    events: Vec<Event>,
    committed: &IdMaps,
    ids: &mut NewIds,
    first_seq: Option<Seq>,
) -> Result<(EncodedEvents, Vec<StoredEvent>)> {
    let mut encoded = EncodedEvents {
        bytes: Vec::with_capacity(events.len() * 24),
        ends: Vec::with_capacity(events.len()),
        ..EncodedEvents::default()
    };
    let mut stored = Vec::with_capacity(if first_seq.is_some() { events.len() } else { 0 });
    let mut record = Vec::with_capacity(64);
    for (offset, e) in events.into_iter().enumerate() {
        let (user, new_user) = ids.user(committed, &e.user_id)?;
        let (item, new_item) = ids.item(committed, &e.item_id)?;
        codec::encode_event(
            &EventFields {
                user,
                item,
                event_type: &e.event_type,
                value: e.value,
                timestamp: e.timestamp,
                request_id: e.request_id.as_deref(),
                scene: e.scene.as_deref(),
                position: e.position,
                attribution: e.attribution.as_ref(),
            },
            &mut record,
        )?;
        encoded.bytes.extend_from_slice(&record);
        encoded.ends.push(encoded.bytes.len());
        if new_user {
            encoded.new_users.push((user, e.user_id.clone()));
        }
        if new_item {
            encoded
                .new_items
                .push((item, e.item_id.clone(), e.timestamp));
        }
        if let Some(first) = first_seq {
            stored.push(StoredEvent::from_event(
                first + offset as u64,
                user,
                item,
                e,
            ));
        }
    }
    Ok((encoded, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, item: &str) -> Event {
        Event {
            user_id: user.into(),
            item_id: item.into(),
            event_type: "click".into(),
            value: 1.0,
            timestamp: Timestamp(5),
            request_id: None,
            scene: None,
            position: None,
            attribution: None,
        }
    }

    #[test]
    fn resolves_new_ids_once_and_encodes_in_order() {
        let mut committed = IdMaps::default();
        committed.users.insert_known("known", 0).unwrap();
        let mut ids = NewIds::default();
        let events = vec![event("known", "a"), event("new", "a"), event("new", "b")];
        let (encoded, stored) = resolve_events(events, &committed, &mut ids, Some(10)).unwrap();
        assert_eq!(encoded.len(), 3);
        assert_eq!(encoded.new_users, [(1, "new".to_owned())]);
        assert_eq!(
            encoded.new_items,
            [
                (0, "a".to_owned(), Timestamp(5)),
                (1, "b".to_owned(), Timestamp(5))
            ]
        );
        let decoded: Vec<StoredEvent> = encoded
            .records()
            .enumerate()
            .map(|(i, r)| codec::decode_event(10 + i as u64, r).unwrap())
            .collect();
        assert_eq!(decoded, stored);
        assert_eq!(
            stored
                .iter()
                .map(|e| (e.seq, e.user, e.item))
                .collect::<Vec<_>>(),
            [(10, 0, 0), (11, 1, 0), (12, 1, 1)]
        );
    }
}
