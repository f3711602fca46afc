//! Events: what a user did with an item.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{validate_id, Timestamp, ValidationError};

/// Largest accepted event value (a purchase amount, dwell seconds, a rating).
pub const MAX_EVENT_VALUE: f64 = 1e12;

/// One user action: a click, a purchase, an impression, a dislike.
///
/// `request_id` ties the action to the recommendation response that showed the
/// item (for attribution and analytics); `scene` names the placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Who acted.
    pub user_id: String,
    /// On what.
    pub item_id: String,
    /// The event type, one of the configured positive, negative or impression types.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Strength of the action (amount, dwell seconds, rating); finite and ≥ 0.
    #[serde(default = "default_value")]
    pub value: f64,
    /// When it happened; defaults to the time it was received.
    #[serde(default = "Timestamp::now")]
    pub timestamp: Timestamp,
    /// The recommendation response this action follows from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The placement (scene) where the item was shown, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene: Option<String>,
    /// Where the item was shown in that response, 0 for the first place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// What produced the item: set by the server from `request_id` when the
    /// event arrives through the API (a value sent there is replaced), kept by
    /// `tephra export` and `tephra import` so that analytics survive a reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
}

/// What produced a recommended item: filled in by the server at ingestion from
/// the response named by the event's `request_id`, so that analytics can split
/// clicks by recall source and experiment variant, and so that the join survives
/// a restart (it is stored with the event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    /// The recall source that ranked the item highest (`collaborative`,
    /// `popular`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The experiment the response was part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The experiment variant the user was assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Attribution {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        self.source.is_none() && self.experiment.is_none() && self.variant.is_none()
    }
}

/// Largest accepted `position`: no response is deeper than this.
pub const MAX_POSITION: u32 = 100_000;

/// How far ahead of this server's clock an event's time may lie: clients'
/// clocks drift, but an event dated days ahead would dominate time-decayed
/// trending counts until that day came.
pub const MAX_CLOCK_SKEW_MS: i64 = 3_600_000;

fn default_value() -> f64 {
    1.0
}

impl Event {
    /// Checks ids, the value and the type (against the configured types) and
    /// returns the type's kind.
    pub fn validate(&self, types: &EventTypes) -> Result<EventKind, ValidationError> {
        validate_id("user_id", &self.user_id)?;
        validate_id("item_id", &self.item_id)?;
        if !self.value.is_finite() || self.value < 0.0 || self.value > MAX_EVENT_VALUE {
            return Err(ValidationError::field(
                "invalid_value",
                "value",
                format!(
                    "value must be a finite number between 0 and {MAX_EVENT_VALUE:e}, got {}",
                    self.value
                ),
            ));
        }
        let latest = Timestamp::now().0.saturating_add(MAX_CLOCK_SKEW_MS);
        if self.timestamp.0 > latest {
            return Err(ValidationError::field(
                "invalid_value",
                "timestamp",
                format!(
                    "timestamp {} lies in the future (more than an hour ahead of this server's \
                     clock); send the time the action happened, or leave it out to use the \
                     time of receipt",
                    self.timestamp
                ),
            ));
        }
        if let Some(r) = &self.request_id {
            validate_id("request_id", r)?;
        }
        if let Some(s) = &self.scene {
            validate_id("scene", s)?;
        }
        if self.position.is_some_and(|p| p > MAX_POSITION) {
            return Err(ValidationError::field(
                "invalid_value",
                "position",
                format!("position must be between 0 and {MAX_POSITION} (0 is the first place)"),
            ));
        }
        types.classify(&self.event_type).ok_or_else(|| {
            ValidationError::field(
                "unknown_event_type",
                "type",
                format!(
                    "unknown event type `{}`; configured types are {} (see [events] in the configuration)",
                    self.event_type.escape_debug(),
                    types.all().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

/// What an event type means to the recommender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The user liked the item: counts for popularity, trending and learning.
    Positive,
    /// The user rejected the item: it is not recommended to them again.
    Negative,
    /// The item was shown; neither good nor bad by itself.
    Impression,
}

/// The configured event types and their meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EventTypes {
    /// Types that express interest.
    pub positive: Vec<String>,
    /// Types that express rejection.
    pub negative: Vec<String>,
    /// Types that record an item being shown.
    pub impression: Vec<String>,
}

impl Default for EventTypes {
    fn default() -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Self {
            positive: owned(&["click", "like", "share", "purchase", "read"]),
            negative: owned(&["dislike"]),
            impression: owned(&["impression"]),
        }
    }
}

impl EventTypes {
    /// The kind of `event_type`, or `None` if it is not configured.
    pub fn classify(&self, event_type: &str) -> Option<EventKind> {
        let has = |v: &[String]| v.iter().any(|t| t == event_type);
        if has(&self.positive) {
            Some(EventKind::Positive)
        } else if has(&self.negative) {
            Some(EventKind::Negative)
        } else if has(&self.impression) {
            Some(EventKind::Impression)
        } else {
            None
        }
    }

    /// Every configured type name.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.positive
            .iter()
            .chain(&self.negative)
            .chain(&self.impression)
            .map(String::as_str)
    }

    /// Checks that type names are valid and that no type has two meanings.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut seen = std::collections::HashSet::new();
        for t in self.all() {
            validate_id("events", t)?;
            if !seen.insert(t) {
                return Err(ValidationError::field(
                    "invalid_config",
                    "events",
                    format!("event type `{t}` is listed twice; give each type one meaning"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_and_classification() {
        let types = EventTypes::default();
        let e = event(r#"{"user_id":"u","item_id":"i","type":"click"}"#);
        assert_eq!(e.value, 1.0);
        assert_eq!(e.validate(&types), Ok(EventKind::Positive));
        assert_eq!(types.classify("dislike"), Some(EventKind::Negative));
        assert_eq!(types.classify("impression"), Some(EventKind::Impression));
    }

    #[test]
    fn bad_values_and_types_are_refused() {
        let types = EventTypes::default();
        let mut e = event(r#"{"user_id":"u","item_id":"i","type":"teleport"}"#);
        let err = e.validate(&types).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("unknown_event_type", Some("type"))
        );
        e.event_type = "click".into();
        for bad in [f64::NAN, f64::INFINITY, -1.0, 1e13] {
            e.value = bad;
            assert_eq!(
                e.validate(&types).unwrap_err().field.as_deref(),
                Some("value")
            );
        }
        e.value = 2.0;
        e.user_id = "a\tb".into();
        assert_eq!(
            e.validate(&types).unwrap_err().field.as_deref(),
            Some("user_id")
        );
    }

    #[test]
    fn times_far_ahead_of_the_clock_are_refused_but_small_skew_is_not() {
        let types = EventTypes::default();
        let mut e = event(r#"{"user_id":"u","item_id":"i","type":"click"}"#);
        e.timestamp = Timestamp(Timestamp::now().0 + 10 * 60_000);
        assert_eq!(e.validate(&types), Ok(EventKind::Positive));
        e.timestamp = Timestamp(Timestamp::now().0 + 2 * MAX_CLOCK_SKEW_MS);
        let err = e.validate(&types).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("timestamp"));
        assert!(err.message.contains("future"), "{}", err.message);
        e.timestamp = Timestamp(0);
        assert_eq!(e.validate(&types), Ok(EventKind::Positive));
    }

    #[test]
    fn duplicate_type_config_is_refused() {
        let mut types = EventTypes::default();
        types.negative.push("click".into());
        assert!(types.validate().is_err());
        assert!(EventTypes::default().validate().is_ok());
    }
}
