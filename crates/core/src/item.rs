//! Catalogue items.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{validate_id, Timestamp, ValidationError};

/// Most categories or tags one item may carry.
pub const MAX_LABELS: usize = 100;
/// Longest category or tag, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Longest title, in bytes.
pub const MAX_TITLE_BYTES: usize = 4 * 1024;
/// Longest text body, in bytes.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Largest attributes object, in bytes of JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// Something that can be recommended: a product, an article, a video.
///
/// Categories drive filters and diversity; title, text and tags feed content
/// similarity; `hidden` and `expires_at` let the catalogue withdraw an item from
/// recommendations without deleting its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// External id, 1–256 bytes of UTF-8 without control characters.
    pub id: String,
    /// Categories, used by `category` filters (all requested ones must match).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Title or headline.
    #[serde(default)]
    pub title: String,
    /// Body text or description.
    #[serde(default)]
    pub text: String,
    /// When the item was published; defaults to the time it was first stored.
    #[serde(default = "Timestamp::now")]
    pub published_at: Timestamp,
    /// A hidden item is kept with its history but never recommended.
    #[serde(default)]
    pub hidden: bool,
    /// After this time the item is no longer recommended.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Any other attributes, as a JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

impl Item {
    /// A bare item with only an id, as created when an event names an item the
    /// catalogue has not seen yet.
    pub fn placeholder(id: impl Into<String>, now: Timestamp) -> Self {
        Self {
            id: id.into(),
            categories: Vec::new(),
            tags: Vec::new(),
            title: String::new(),
            text: String::new(),
            published_at: now,
            hidden: false,
            expires_at: None,
            attributes: Map::new(),
        }
    }

    /// Checks every field against the limits, naming the first bad one.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("id", &self.id)?;
        validate_labels("categories", &self.categories)?;
        validate_labels("tags", &self.tags)?;
        validate_len("title", &self.title, MAX_TITLE_BYTES)?;
        validate_len("text", &self.text, MAX_TEXT_BYTES)?;
        validate_attributes(&self.attributes)
    }

    /// Whether the item may be recommended at time `now`.
    pub fn is_recommendable(&self, now: Timestamp) -> bool {
        !self.hidden && self.expires_at.is_none_or(|t| t > now)
    }

    /// Applies a partial update, then validates the result.
    pub fn apply(&mut self, patch: ItemPatch) -> Result<(), ValidationError> {
        if let Some(v) = patch.categories {
            self.categories = v;
        }
        if let Some(v) = patch.tags {
            self.tags = v;
        }
        if let Some(v) = patch.title {
            self.title = v;
        }
        if let Some(v) = patch.text {
            self.text = v;
        }
        if let Some(v) = patch.published_at {
            self.published_at = v;
        }
        if let Some(v) = patch.hidden {
            self.hidden = v;
        }
        if let Some(v) = patch.expires_at {
            self.expires_at = v;
        }
        if let Some(attrs) = patch.attributes {
            merge_attributes(&mut self.attributes, attrs);
        }
        self.validate()
    }
}

/// A partial update of an item: absent fields stay as they are.
///
/// `expires_at: null` clears the expiry; in `attributes`, keys are merged into the
/// existing object and a key set to `null` is removed (JSON Merge Patch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    /// New categories, replacing the old list.
    pub categories: Option<Vec<String>>,
    /// New tags, replacing the old list.
    pub tags: Option<Vec<String>>,
    /// New title.
    pub title: Option<String>,
    /// New text.
    pub text: Option<String>,
    /// New publish time.
    pub published_at: Option<Timestamp>,
    /// Hide or unhide.
    pub hidden: Option<bool>,
    /// New expiry; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<Option<Timestamp>>,
    /// Attributes to merge; a `null` value removes the key.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

/// Distinguishes a missing field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// JSON Merge Patch of one attributes object into another.
pub(crate) fn merge_attributes(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

pub(crate) fn validate_attributes(attrs: &Map<String, Value>) -> Result<(), ValidationError> {
    let size = serde_json::to_vec(attrs)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_ATTRIBUTES_BYTES {
        return Err(ValidationError::field(
            "too_large",
            "attributes",
            format!("attributes take {size} bytes of JSON; the limit is {MAX_ATTRIBUTES_BYTES}"),
        ));
    }
    Ok(())
}

fn validate_len(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.len() > max {
        return Err(ValidationError::field(
            "too_large",
            field,
            format!("{field} is {} bytes long; the limit is {max}", value.len()),
        ));
    }
    Ok(())
}

fn validate_labels(field: &str, labels: &[String]) -> Result<(), ValidationError> {
    if labels.len() > MAX_LABELS {
        return Err(ValidationError::field(
            "too_large",
            field,
            format!("{} {field} given; the limit is {MAX_LABELS}", labels.len()),
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        let path = format!("{field}[{i}]");
        if label.is_empty() || label.len() > MAX_LABEL_BYTES || label.chars().any(char::is_control)
        {
            return Err(ValidationError::field(
                "invalid_label",
                path,
                format!(
                    "each entry of {field} must be 1–{MAX_LABEL_BYTES} bytes without control characters"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> Result<Item, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let it = item(r#"{"id":"a"}"#).unwrap();
        assert!(it.categories.is_empty() && !it.hidden && it.expires_at.is_none());
        assert!(it.validate().is_ok());
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        assert!(item(r#"{"id":"a","categoires":["x"]}"#)
            .unwrap_err()
            .to_string()
            .contains("categoires"));
        assert!(item(r#"{"id":"a","hidden":"yes"}"#).is_err());
        assert!(item(r#"{"id":"a","attributes":[1]}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let mut it = item(r#"{"id":"a","categories":["ok",""]}"#).unwrap();
        assert_eq!(
            it.validate().unwrap_err().field.as_deref(),
            Some("categories[1]")
        );
        it.categories.clear();
        it.title = "x".repeat(MAX_TITLE_BYTES + 1);
        assert_eq!(it.validate().unwrap_err().field.as_deref(), Some("title"));
    }

    #[test]
    fn recommendable_respects_hidden_and_expiry() {
        let mut it = Item::placeholder("a", Timestamp(0));
        assert!(it.is_recommendable(Timestamp(10)));
        it.expires_at = Some(Timestamp(10));
        assert!(!it.is_recommendable(Timestamp(10)));
        assert!(it.is_recommendable(Timestamp(9)));
        it.hidden = true;
        assert!(!it.is_recommendable(Timestamp(9)));
    }

    #[test]
    fn patch_merges_attributes_and_clears_expiry() {
        let mut it =
            item(r#"{"id":"a","expires_at":"2030-01-01T00:00:00Z","attributes":{"k":1,"j":2}}"#)
                .unwrap();
        let patch: ItemPatch = serde_json::from_str(
            r#"{"expires_at":null,"attributes":{"k":null,"n":3},"hidden":true}"#,
        )
        .unwrap();
        it.apply(patch).unwrap();
        assert!(it.expires_at.is_none() && it.hidden);
        assert_eq!(
            serde_json::Value::Object(it.attributes),
            serde_json::json!({"j":2,"n":3})
        );
        let untouched: ItemPatch = serde_json::from_str("{}").unwrap();
        assert!(untouched.expires_at.is_none());
    }
}
