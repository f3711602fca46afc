//! Points in time, as milliseconds since the Unix epoch.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with millisecond precision (milliseconds since 1970-01-01 UTC).
///
/// In JSON it is written as RFC 3339 (`2026-11-29T08:00:00.000Z`); on input it also
/// accepts a number of Unix seconds, because that is what most event logs hold.
/// Stored as a plain `i64` so that decay arithmetic and sorting are cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Earliest accepted time: 1970-01-01.
const MIN_MILLIS: i64 = 0;
/// Latest accepted time: 9999-12-31, the end of four-digit years.
const MAX_MILLIS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    /// From milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// From whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 text or a number of Unix seconds (integer or decimal).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Self::checked(dt.timestamp_millis());
        }
        if let Ok(secs) = text.parse::<i64>() {
            return Self::checked(secs.saturating_mul(1000));
        }
        if let Ok(secs) = text.parse::<f64>() {
            return Self::from_secs_f64(secs);
        }
        Err(format!(
            "`{text}` is not a time: use RFC 3339 (e.g. 2026-11-29T08:00:00Z) or Unix seconds"
        ))
    }

    fn from_secs_f64(secs: f64) -> Result<Self, String> {
        if !secs.is_finite() {
            return Err("time must be a finite number of Unix seconds".into());
        }
        let ms = secs * 1000.0;
        if !(MIN_MILLIS as f64..=MAX_MILLIS as f64).contains(&ms) {
            return Err(Self::range_message());
        }
        Ok(Self(ms.round() as i64))
    }

    fn checked(ms: i64) -> Result<Self, String> {
        if (MIN_MILLIS..=MAX_MILLIS).contains(&ms) {
            Ok(Self(ms))
        } else {
            Err(Self::range_message())
        }
    }

    fn range_message() -> String {
        "time is out of range: it must lie between 1970-01-01 and 9999-12-31".into()
    }

    /// RFC 3339 text with milliseconds, in UTC.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .map(|dt| dt.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time string or a number of Unix seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Timestamp::checked(v.saturating_mul(1000)).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                let secs = i64::try_from(v).map_err(|_| E::custom(Timestamp::range_message()))?;
                self.visit_i64(secs)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_secs_f64(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339 time, e.g. 2026-11-29T08:00:00Z"))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_seconds() {
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:01Z").unwrap(),
            Timestamp(1000)
        );
        assert_eq!(
            Timestamp::parse("881250949").unwrap(),
            Timestamp(881_250_949_000)
        );
        assert_eq!(Timestamp::parse("1.5").unwrap(), Timestamp(1500));
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("NaN").is_err());
        assert!(Timestamp::parse("-5").is_err());
    }

    #[test]
    fn json_round_trip() {
        let t = Timestamp(1_764_400_000_123);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2025-11-29T07:06:40.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1764400000").unwrap(),
            Timestamp(1_764_400_000_000)
        );
        assert!(serde_json::from_str::<Timestamp>("1e300").is_err());
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }
}
