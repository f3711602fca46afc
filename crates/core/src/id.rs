//! External string ids and the dense integer indices the engine uses internally.

use std::collections::HashMap;

use crate::ValidationError;

/// Longest accepted id, in bytes of UTF-8.
pub const MAX_ID_BYTES: usize = 256;

/// Checks an external id: 1–256 bytes of UTF-8 with no control characters.
///
/// Ids end up in URLs, CSV files, log lines and database keys; control characters
/// (newlines, NUL, escape sequences) break every one of those, so they are refused
/// at the door rather than escaped everywhere.
pub fn validate_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::field(
            "invalid_id",
            field,
            "id must not be empty",
        ));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ValidationError::field(
            "invalid_id",
            field,
            format!(
                "id is {} bytes long; the limit is {MAX_ID_BYTES} bytes of UTF-8",
                id.len()
            ),
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(ValidationError::field(
            "invalid_id",
            field,
            format!("id contains the control character U+{:04X}; ids may not contain control characters", c as u32),
        ));
    }
    Ok(())
}

/// A two-way map between external string ids and dense `u32` indices.
///
/// Algorithms index arrays by position, so every item and user gets the next free
/// index on first sight and keeps it forever (indices are never reused, even after
/// a delete), which keeps stored events and trained models valid across restarts.
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    index_of: HashMap<Box<str>, u32>,
    ids: Vec<Box<str>>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// One more than the highest index assigned: the length of arrays indexed by it.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no id was ever assigned.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of `id`, if it was assigned.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index_of.get(id).copied()
    }

    /// The external id at `index` (`None` for an unassigned index).
    pub fn id(&self, index: u32) -> Option<&str> {
        self.ids
            .get(index as usize)
            .map(|s| &**s)
            .filter(|s| !s.is_empty())
    }

    /// Returns the index of `id`, assigning the next one if it is new; the flag
    /// says whether it was new.
    pub fn get_or_insert(&mut self, id: &str) -> (u32, bool) {
        if let Some(&index) = self.index_of.get(id) {
            return (index, false);
        }
        let index = u32::try_from(self.ids.len()).expect("more than u32::MAX ids");
        // Only used by single-writer owners (tests, offline tools); storage-backed
        // maps go through `insert_known`.
        self.ids.push(id.into());
        self.index_of.insert(id.into(), index);
        (index, true)
    }

    /// Registers a known `(id, index)` pair, as read back from storage or as
    /// assigned by it.
    ///
    /// Indices may arrive out of order (two writes finishing in a different order
    /// than they were assigned); a gap is filled later. An index that is already
    /// taken by another id, or an id that already has another index, means storage
    /// and memory disagree, which is reported rather than papered over.
    pub fn insert_known(&mut self, id: &str, index: u32) -> Result<(), String> {
        if let Some(&existing) = self.index_of.get(id) {
            return if existing == index {
                Ok(())
            } else {
                Err(format!(
                    "id `{id}` has index {existing}, storage says {index}"
                ))
            };
        }
        let slot = index as usize;
        if slot >= self.ids.len() {
            self.ids.resize(slot + 1, Box::from(""));
        } else if !self.ids[slot].is_empty() {
            return Err(format!(
                "index {index} belongs to `{}`, storage says `{id}`",
                self.ids[slot]
            ));
        }
        self.ids[slot] = id.into();
        self.index_of.insert(id.into(), index);
        Ok(())
    }

    /// All assigned ids in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.ids
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(i, s)| (i as u32, &**s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        assert!(validate_id("id", "item-42").is_ok());
        assert!(validate_id("id", "東京/ü").is_ok());
        assert!(validate_id("id", &"x".repeat(MAX_ID_BYTES)).is_ok());
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(validate_id("id", "").unwrap_err().code, "invalid_id");
        assert!(validate_id("id", &"x".repeat(MAX_ID_BYTES + 1))
            .unwrap_err()
            .message
            .contains("257"));
        assert!(validate_id("id", "a\nb")
            .unwrap_err()
            .message
            .contains("U+000A"));
        assert!(validate_id("id", "a\u{0}b").is_err());
        assert!(validate_id("id", "a\u{7f}").is_err());
    }

    #[test]
    fn id_map_assigns_dense_stable_indices() {
        let mut m = IdMap::new();
        assert_eq!(m.get_or_insert("a"), (0, true));
        assert_eq!(m.get_or_insert("b"), (1, true));
        assert_eq!(m.get_or_insert("a"), (0, false));
        assert_eq!(m.id(1), Some("b"));
        assert_eq!(m.get("c"), None);
        assert!(m.insert_known("c", 1).is_err());
        assert!(m.insert_known("a", 3).is_err());
        assert!(m.insert_known("e", 4).is_ok());
        assert_eq!(m.id(3), None);
        assert!(m.insert_known("d", 3).is_ok());
        assert!(m.insert_known("d", 3).is_ok());
        assert_eq!(m.len(), 5);
        assert_eq!(
            m.iter().map(|(_, s)| s).collect::<Vec<_>>(),
            ["a", "b", "d", "e"]
        );
    }
}
