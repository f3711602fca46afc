//! Validation errors: what the caller sent wrong, and which field to fix.

use std::fmt;

/// A rejected piece of input.
///
/// Carries a stable machine-readable `code`, the `field` at fault (a JSON path such
/// as `categories[2]` or `[3].item_id` once a batch index is prefixed) and a message
/// that tells the caller what to change. The HTTP layer turns it into a 4xx answer
/// and the importer into a line-numbered report, so it must never describe an
/// internal failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Stable code, e.g. `invalid_id`, `invalid_value`, `missing_field`.
    pub code: &'static str,
    /// The offending field, if one can be named.
    pub field: Option<String>,
    /// Human-readable explanation of what to fix.
    pub message: String,
}

impl ValidationError {
    /// An error about one named field.
    pub fn field(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Prefixes the field path with an element index, for errors inside a batch:
    /// `item_id` becomes `[3].item_id`.
    pub fn at_index(mut self, index: usize) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) if f.starts_with('[') => format!("[{index}]{f}"),
            Some(f) => format!("[{index}].{f}"),
            None => format!("[{index}]"),
        });
        self.message = format!("element {index}: {}", self.message);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} (field `{field}`)", self.message),
            None => f.write_str(&self.message),
        }
    }
}
