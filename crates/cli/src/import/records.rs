//! What one line of an import file becomes, and why a line can be refused.

use clap::ValueEnum;
use serde::de::DeserializeOwned;
use tephra_core::{Event, EventTypes, Item, User, ValidationError};

/// What an import file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordKind {
    /// Catalogue items.
    Items,
    /// Users.
    Users,
    /// Events.
    Events,
}

impl RecordKind {
    /// Every kind, for callers that pick one by number (the fuzz targets).
    pub const ALL: [RecordKind; 3] = [RecordKind::Items, RecordKind::Users, RecordKind::Events];

    /// Plural noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            RecordKind::Items => "items",
            RecordKind::Users => "users",
            RecordKind::Events => "events",
        }
    }

    /// The noun for `count` records: `1 event`, `2 events`.
    pub fn noun_for(self, count: u64) -> &'static str {
        let plural = self.noun();
        if count == 1 {
            &plural[..plural.len() - 1]
        } else {
            plural
        }
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A catalogue item.
    Item(Item),
    /// A user.
    User(User),
    /// An event.
    Event(Event),
}

impl Record {
    /// Applies the same rules as the HTTP API, so that a file that imports would
    /// also have been accepted over HTTP and the other way round.
    pub fn validate(&self, event_types: &EventTypes) -> Result<(), ValidationError> {
        match self {
            Record::Item(item) => item.validate(),
            Record::User(user) => user.validate(),
            Record::Event(event) => event.validate(event_types).map(|_| ()),
        }
    }
}

/// Parses one JSON object of the given kind.
pub fn from_json(kind: RecordKind, text: &str) -> Result<Record, ValidationError> {
    match kind {
        RecordKind::Items => parse_json::<Item>(text).map(Record::Item),
        RecordKind::Users => parse_json::<User>(text).map(Record::User),
        RecordKind::Events => parse_json::<Event>(text).map(Record::Event),
    }
}

/// Plain `serde_json` first (the common, valid case stays fast); only a failure is
/// parsed again with path tracking, to name the field at fault.
fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, ValidationError> {
    serde_json::from_str(text).map_err(|plain_error| {
        let mut de = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => json_rejection(Some(e.path().to_string()), e.into_inner()),
            // Only trailing characters after a valid object are left.
            Ok(_) => json_rejection(None, de.end().err().unwrap_or(plain_error)),
        }
    })
}

fn json_rejection(path: Option<String>, error: serde_json::Error) -> ValidationError {
    let full = error.to_string();
    // serde_json appends " at line L column C"; the line is the record's own
    // (always 1), so only the column is kept.
    let message = match full.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &full[..i], error.column()),
        None => full,
    };
    let code = match error.classify() {
        serde_json::error::Category::Data if message.starts_with("missing field") => {
            "missing_field"
        }
        serde_json::error::Category::Data if message.starts_with("unknown field") => {
            "unknown_field"
        }
        serde_json::error::Category::Data => "invalid_value",
        _ => "invalid_json",
    };
    let field = path.filter(|p| p != "." && !p.is_empty());
    ValidationError {
        code,
        field,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert!(matches!(
            from_json(RecordKind::Items, r#"{"id":"a"}"#),
            Ok(Record::Item(_))
        ));
        assert!(matches!(
            from_json(RecordKind::Users, r#"{"id":"a"}"#),
            Ok(Record::User(_))
        ));
        let e = from_json(
            RecordKind::Events,
            r#"{"user_id":"u","item_id":"i","type":"click"}"#,
        );
        assert!(matches!(e, Ok(Record::Event(_))));
    }

    #[test]
    fn errors_name_the_field() {
        let err = from_json(RecordKind::Items, r#"{"id":"a","hidden":"yes"}"#).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("invalid_value", Some("hidden"))
        );
        assert!(!err.message.contains("at line"), "{}", err.message);
        let err = from_json(RecordKind::Events, r#"{"user_id":"u","type":"click"}"#).unwrap_err();
        assert_eq!(err.code, "missing_field");
        assert!(err.message.contains("item_id"));
        let err = from_json(RecordKind::Users, r#"{"id":"a","nmae":1}"#).unwrap_err();
        assert_eq!(err.code, "unknown_field");
        let err = from_json(RecordKind::Users, r#"{"id":"a""#).unwrap_err();
        assert_eq!(err.code, "invalid_json");
        let err = from_json(RecordKind::Users, r#"{"id":"a"} x"#).unwrap_err();
        assert_eq!(err.code, "invalid_json");
    }

    #[test]
    fn validation_uses_the_configured_event_types() {
        let types = EventTypes::default();
        let Ok(rec) = from_json(
            RecordKind::Events,
            r#"{"user_id":"u","item_id":"i","type":"teleport"}"#,
        ) else {
            panic!("parses")
        };
        assert_eq!(
            rec.validate(&types).unwrap_err().field.as_deref(),
            Some("type")
        );
    }
}
