//! Users: whoever receives recommendations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::item::{merge_attributes, validate_attributes};
use crate::{validate_id, ValidationError};

/// A user of the client's app. Only the id is required; attributes (age band,
/// region, plan, ...) are kept for filters and, later, for learned rankers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// External id, 1–256 bytes of UTF-8 without control characters.
    pub id: String,
    /// Any attributes, as a JSON object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

impl User {
    /// A user with only an id, as created when an event names an unseen user.
    pub fn placeholder(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            attributes: Map::new(),
        }
    }

    /// Checks the id and the attribute size.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_id("id", &self.id)?;
        validate_attributes(&self.attributes)
    }

    /// Applies a partial update, then validates the result.
    pub fn apply(&mut self, patch: UserPatch) -> Result<(), ValidationError> {
        if let Some(attrs) = patch.attributes {
            merge_attributes(&mut self.attributes, attrs);
        }
        self.validate()
    }
}

/// A partial update of a user: attributes are merged, a `null` value removes a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Attributes to merge; a `null` value removes the key.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}
