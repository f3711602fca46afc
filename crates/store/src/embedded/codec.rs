//! How records are laid out on disk.
//!
//! Items and users are stored as JSON because their attributes are arbitrary JSON
//! values, which a non-self-describing format cannot hold. They go through private
//! record structs rather than the API types so that the file format does not change
//! when the HTTP representation does (times are stored as integer milliseconds, not
//! as RFC 3339 text, so any `Timestamp` value round-trips).
//!
//! Events are the bulk of the data and are read in long scans, so they use a compact
//! binary record (postcard) behind a leading record-version byte, which lets a later
//! version change the layout without rewriting old logs.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tephra_core::{Attribution, Item, Timestamp, User};

use crate::{Result, Seq, StoreError, StoredEvent};

/// Version byte written in front of every event record. Version 1 (read, no
/// longer written) lacked the position and the attribution.
pub(crate) const EVENT_RECORD_VERSION: u8 = 2;

/// An item as stored.
#[derive(Serialize, Deserialize)]
struct ItemRecord<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    categories: Cow<'a, [String]>,
    tags: Cow<'a, [String]>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
    published_at: i64,
    hidden: bool,
    expires_at: Option<i64>,
    attributes: Cow<'a, Map<String, Value>>,
}

/// A user as stored.
#[derive(Serialize, Deserialize)]
struct UserRecord<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    attributes: Cow<'a, Map<String, Value>>,
}

/// An event as stored; the indices replace the external ids.
#[derive(Serialize, Deserialize)]
struct EventRecord<'a> {
    user: u32,
    item: u32,
    event_type: &'a str,
    value: f64,
    timestamp: i64,
    request_id: Option<&'a str>,
    scene: Option<&'a str>,
    position: Option<u32>,
    source: Option<&'a str>,
    experiment: Option<&'a str>,
    variant: Option<&'a str>,
}

/// The version-1 layout: [`EventRecord`] without its last four fields.
#[derive(Deserialize)]
struct EventRecordV1<'a> {
    user: u32,
    item: u32,
    event_type: &'a str,
    value: f64,
    timestamp: i64,
    request_id: Option<&'a str>,
    scene: Option<&'a str>,
}

impl<'a> From<EventRecordV1<'a>> for EventRecord<'a> {
    fn from(r: EventRecordV1<'a>) -> Self {
        EventRecord {
            user: r.user,
            item: r.item,
            event_type: r.event_type,
            value: r.value,
            timestamp: r.timestamp,
            request_id: r.request_id,
            scene: r.scene,
            position: None,
            source: None,
            experiment: None,
            variant: None,
        }
    }
}

/// Encodes an item record.
pub(crate) fn encode_item(item: &Item) -> Result<Vec<u8>> {
    let record = ItemRecord {
        id: item.id.as_str().into(),
        categories: item.categories.as_slice().into(),
        tags: item.tags.as_slice().into(),
        title: item.title.as_str().into(),
        text: item.text.as_str().into(),
        published_at: item.published_at.millis(),
        hidden: item.hidden,
        expires_at: item.expires_at.map(Timestamp::millis),
        attributes: Cow::Borrowed(&item.attributes),
    };
    serde_json::to_vec(&record)
        .map_err(|e| StoreError::Io(format!("encoding item `{}`: {e}", item.id)))
}

/// Decodes an item record.
pub(crate) fn decode_item(bytes: &[u8]) -> Result<Item> {
    let r: ItemRecord<'_> = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("undecodable item record: {e}")))?;
    Ok(Item {
        id: r.id.into_owned(),
        categories: r.categories.into_owned(),
        tags: r.tags.into_owned(),
        title: r.title.into_owned(),
        text: r.text.into_owned(),
        published_at: Timestamp(r.published_at),
        hidden: r.hidden,
        expires_at: r.expires_at.map(Timestamp),
        attributes: r.attributes.into_owned(),
    })
}

/// Encodes a user record.
pub(crate) fn encode_user(user: &User) -> Result<Vec<u8>> {
    let record = UserRecord {
        id: user.id.as_str().into(),
        attributes: Cow::Borrowed(&user.attributes),
    };
    serde_json::to_vec(&record)
        .map_err(|e| StoreError::Io(format!("encoding user `{}`: {e}", user.id)))
}

/// Decodes a user record.
pub(crate) fn decode_user(bytes: &[u8]) -> Result<User> {
    let r: UserRecord<'_> = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("undecodable user record: {e}")))?;
    Ok(User {
        id: r.id.into_owned(),
        attributes: r.attributes.into_owned(),
    })
}

/// The fields of an event record, borrowed from the caller.
pub(crate) struct EventFields<'a> {
    /// Dense user index.
    pub user: u32,
    /// Dense item index.
    pub item: u32,
    /// Event type.
    pub event_type: &'a str,
    /// Event value.
    pub value: f64,
    /// When it happened.
    pub timestamp: Timestamp,
    /// Originating recommendation request.
    pub request_id: Option<&'a str>,
    /// Placement.
    pub scene: Option<&'a str>,
    /// Place in the response.
    pub position: Option<u32>,
    /// What produced the item.
    pub attribution: Option<&'a Attribution>,
}

/// Encodes an event into `buf` (cleared first), so that a long import reuses one
/// allocation.
pub(crate) fn encode_event(fields: &EventFields<'_>, buf: &mut Vec<u8>) -> Result<()> {
    let record = EventRecord {
        user: fields.user,
        item: fields.item,
        event_type: fields.event_type,
        value: fields.value,
        timestamp: fields.timestamp.millis(),
        request_id: fields.request_id,
        scene: fields.scene,
        position: fields.position,
        source: fields.attribution.and_then(|a| a.source.as_deref()),
        experiment: fields.attribution.and_then(|a| a.experiment.as_deref()),
        variant: fields.attribution.and_then(|a| a.variant.as_deref()),
    };
    buf.clear();
    buf.push(EVENT_RECORD_VERSION);
    let out = postcard::to_extend(&record, std::mem::take(buf))
        .map_err(|e| StoreError::Io(format!("encoding an event: {e}")))?;
    *buf = out;
    Ok(())
}

/// Decodes the event stored at `seq`.
pub(crate) fn decode_event(seq: Seq, bytes: &[u8]) -> Result<StoredEvent> {
    let corrupt = |why: String| StoreError::Corrupt(format!("event {seq}: {why}"));
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    let undecodable = |e: postcard::Error| corrupt(format!("undecodable record: {e}"));
    let (r, rest): (EventRecord<'_>, &[u8]) = match version {
        1 => {
            let (r, rest): (EventRecordV1<'_>, &[u8]) =
                postcard::take_from_bytes(body).map_err(undecodable)?;
            (r.into(), rest)
        }
        EVENT_RECORD_VERSION => postcard::take_from_bytes(body).map_err(undecodable)?,
        _ => {
            return Err(corrupt(format!(
                "record version {version} is unknown (this build reads versions 1 to {EVENT_RECORD_VERSION})"
            )))
        }
    };
    if !rest.is_empty() {
        return Err(corrupt(format!("{} unexpected trailing bytes", rest.len())));
    }
    Ok(StoredEvent {
        seq,
        user: r.user,
        item: r.item,
        event_type: r.event_type.to_owned(),
        value: r.value,
        timestamp: Timestamp(r.timestamp),
        request_id: r.request_id.map(str::to_owned),
        scene: r.scene.map(str::to_owned),
        position: r.position,
        attribution: attribution(r.source, r.experiment, r.variant),
    })
}

/// The attribution of a record, `None` when it names nothing.
fn attribution(
    source: Option<&str>,
    experiment: Option<&str>,
    variant: Option<&str>,
) -> Option<Attribution> {
    let a = Attribution {
        source: source.map(str::to_owned),
        experiment: experiment.map(str::to_owned),
        variant: variant.map(str::to_owned),
    };
    (!a.is_empty()).then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> EventFields<'static> {
        EventFields {
            user: 7,
            item: 123_456,
            event_type: "purchase",
            value: 19.99,
            timestamp: Timestamp(1_764_400_000_123),
            request_id: Some("req-1"),
            scene: None,
            position: Some(3),
            attribution: Some(&ATTRIBUTION),
        }
    }

    static ATTRIBUTION: Attribution = Attribution {
        source: None,
        experiment: None,
        variant: None,
    };

    #[test]
    fn event_round_trip() {
        let mut buf = vec![0xAA; 3];
        encode_event(&fields(), &mut buf).unwrap();
        assert_eq!(buf[0], EVENT_RECORD_VERSION);
        let e = decode_event(42, &buf).unwrap();
        assert_eq!(
            e,
            StoredEvent {
                seq: 42,
                user: 7,
                item: 123_456,
                event_type: "purchase".into(),
                value: 19.99,
                timestamp: Timestamp(1_764_400_000_123),
                request_id: Some("req-1".into()),
                scene: None,
                position: Some(3),
                attribution: None,
            }
        );
    }

    #[test]
    fn attribution_round_trips_and_version_1_records_still_read() {
        let attribution = Attribution {
            source: Some("collaborative".into()),
            experiment: Some("feed".into()),
            variant: Some("b".into()),
        };
        let mut buf = Vec::new();
        let f = EventFields {
            attribution: Some(&attribution),
            ..fields()
        };
        encode_event(&f, &mut buf).unwrap();
        let e = decode_event(1, &buf).unwrap();
        assert_eq!(e.attribution.as_ref(), Some(&attribution));
        assert_eq!(e.position, Some(3));

        #[derive(Serialize)]
        struct V1<'a> {
            user: u32,
            item: u32,
            event_type: &'a str,
            value: f64,
            timestamp: i64,
            request_id: Option<&'a str>,
            scene: Option<&'a str>,
        }
        let old = V1 {
            user: 1,
            item: 2,
            event_type: "click",
            value: 1.0,
            timestamp: 9,
            request_id: None,
            scene: Some("home"),
        };
        let mut bytes = vec![1u8];
        bytes.extend(postcard::to_stdvec(&old).unwrap());
        let e = decode_event(0, &bytes).unwrap();
        assert_eq!((e.user, e.item, e.scene.as_deref()), (1, 2, Some("home")));
        assert_eq!((e.position, e.attribution), (None, None));
    }

    #[test]
    fn unknown_record_version_is_corrupt() {
        let mut buf = Vec::new();
        encode_event(&fields(), &mut buf).unwrap();
        buf[0] = EVENT_RECORD_VERSION + 1;
        let err = decode_event(5, &buf).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("record version 3")),
            "{err:?}"
        );
    }

    #[test]
    fn damaged_event_records_are_corrupt() {
        let mut buf = Vec::new();
        encode_event(&fields(), &mut buf).unwrap();
        assert!(matches!(decode_event(0, &[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode_event(0, &buf[..buf.len() - 3]),
            Err(StoreError::Corrupt(_))
        ));
        buf.push(0);
        assert!(matches!(decode_event(0, &buf), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn item_and_user_round_trip_any_timestamp() {
        let mut item = Item::placeholder("東京", Timestamp(i64::MAX));
        item.expires_at = Some(Timestamp(-5));
        item.categories = vec!["a".into()];
        item.attributes
            .insert("k".into(), serde_json::json!({"nested": [1, null, "x"]}));
        assert_eq!(decode_item(&encode_item(&item).unwrap()).unwrap(), item);
        let mut user = User::placeholder("u");
        user.attributes.insert("plan".into(), "pro".into());
        assert_eq!(decode_user(&encode_user(&user).unwrap()).unwrap(), user);
        assert!(matches!(decode_item(b"{"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_user(b"[]"), Err(StoreError::Corrupt(_))));
    }
}
