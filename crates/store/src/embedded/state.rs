//! The in-memory part of an embedded store: id maps and counters.
//!
//! They are loaded once at open and then kept in step with the file by the writer
//! thread, so that appending an event needs no B-tree lookup to find its indices and
//! `counts` / `id_maps` need no scan. Changes made inside a transaction are staged
//! and merged only after a successful commit, so a failed or abandoned transaction
//! leaves memory exactly as it was.

use tephra_core::IdMap;

use crate::{IdMaps, StoreCounts, StoreError};

/// What is known about the committed state of the file.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Every id ever assigned, with its index.
    pub ids: IdMaps,
    /// Item records present.
    pub item_records: u64,
    /// User records present.
    pub user_records: u64,
    /// The `seq` the next event gets.
    pub next_seq: u64,
}

impl Index {
    /// Current sizes.
    pub fn counts(&self) -> StoreCounts {
        StoreCounts {
            items: self.item_records,
            users: self.user_records,
            events: self.next_seq,
        }
    }

    /// Applies what a committed transaction did.
    pub fn merge(&mut self, staged: Staged) -> Result<(), StoreError> {
        let mismatch =
            |why: String| StoreError::Corrupt(format!("id maps out of step with the file: {why}"));
        for (id, index) in staged.ids.items.iter() {
            self.ids.items.insert_known(id, index).map_err(mismatch)?;
        }
        for (id, index) in staged.ids.users.iter() {
            self.ids.users.insert_known(id, index).map_err(mismatch)?;
        }
        self.item_records = self.item_records.saturating_add_signed(staged.item_records);
        self.user_records = self.user_records.saturating_add_signed(staged.user_records);
        self.next_seq += staged.events;
        Ok(())
    }
}

/// Ids assigned by a transaction that has not committed yet.
///
/// Every event of an import looks its two ids up here, so this is the hottest
/// structure of a bulk load. A general `HashMap<Box<str>, u32>` chases one pointer
/// per comparison into scattered allocations, which under cache pressure (the
/// B-tree pages being written) costs more than the insert itself. This table keeps
/// 16-byte slots (full hash, index, entry) with open addressing, and the id bytes
/// contiguous in one arena, so a lookup touches two compact arrays.
#[derive(Debug)]
pub(crate) struct StagedIds {
    /// Power-of-two sized; at most half full.
    slots: Vec<Slot>,
    /// Staged ids in insertion order.
    entries: Vec<Entry>,
    /// The bytes of every staged id, back to back.
    arena: Vec<u8>,
    /// Per-process random seed, so that crafted ids cannot force collisions.
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    /// Position in `entries`, or [`Slot::EMPTY`].
    entry: u32,
}

impl Slot {
    const EMPTY: u32 = u32::MAX;
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    len: usize,
    index: u32,
}

impl Default for StagedIds {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            entries: Vec::new(),
            arena: Vec::new(),
            seed: process_seed(),
        }
    }
}

/// A random seed drawn once per process from the standard library's hasher keys.
fn process_seed() -> u64 {
    use std::hash::BuildHasher;
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x7e9e_u64) | 1)
}

/// A fast seeded hash of short byte strings: multiply-rotate over 8-byte words
/// with a final avalanche, so that the low bits (used for slot positions) depend
/// on every byte.
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    // fmix64 from MurmurHash3.
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

impl StagedIds {
    /// The index staged for `id`, if any.
    pub fn get(&self, id: &str) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let hash = hash_bytes(self.seed, id.as_bytes());
        let mask = self.slots.len() - 1;
        let mut pos = hash as usize & mask;
        loop {
            let slot = self.slots[pos];
            if slot.entry == Slot::EMPTY {
                return None;
            }
            if slot.hash == hash {
                let entry = self.entries[slot.entry as usize];
                if &self.arena[entry.start..entry.start + entry.len] == id.as_bytes() {
                    return Some(entry.index);
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Stages a new id at `index`; the caller has checked that `id` is not staged.
    pub fn insert(&mut self, id: &str, index: u32) {
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let hash = hash_bytes(self.seed, id.as_bytes());
        let entry = u32::try_from(self.entries.len()).unwrap_or(Slot::EMPTY - 1);
        self.entries.push(Entry {
            start: self.arena.len(),
            len: id.len(),
            index,
        });
        self.arena.extend_from_slice(id.as_bytes());
        Self::place(&mut self.slots, Slot { hash, entry });
    }

    /// How many ids were staged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every staged id with its index, in the order they were staged.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.entries.iter().map(|e| {
            // The arena only ever receives whole `&str`s, at entry boundaries.
            let id = std::str::from_utf8(&self.arena[e.start..e.start + e.len]).unwrap_or_default();
            (id, e.index)
        })
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(64);
        let mut slots = vec![
            Slot {
                hash: 0,
                entry: Slot::EMPTY
            };
            capacity
        ];
        for slot in self.slots.iter().filter(|s| s.entry != Slot::EMPTY) {
            Self::place(&mut slots, *slot);
        }
        self.slots = slots;
    }

    fn place(slots: &mut [Slot], slot: Slot) {
        let mask = slots.len() - 1;
        let mut pos = slot.hash as usize & mask;
        while slots[pos].entry != Slot::EMPTY {
            pos = (pos + 1) & mask;
        }
        slots[pos] = slot;
    }
}

/// Ids assigned during one transaction, by kind: the committed ones come from the
/// [`Index`], new ones get the next free index and are staged here.
#[derive(Debug, Default)]
pub(crate) struct NewIds {
    /// New item ids.
    pub items: StagedIds,
    /// New user ids.
    pub users: StagedIds,
}

impl NewIds {
    /// The index of item `id`, assigning the next one if it is new; the flag says
    /// whether it was.
    pub fn item(&mut self, committed: &IdMaps, id: &str) -> Result<(u32, bool), StoreError> {
        assign(&committed.items, &mut self.items, id)
    }

    /// The index of user `id`, assigning the next one if it is new.
    pub fn user(&mut self, committed: &IdMaps, id: &str) -> Result<(u32, bool), StoreError> {
        assign(&committed.users, &mut self.users, id)
    }
}

fn assign(committed: &IdMap, staged: &mut StagedIds, id: &str) -> Result<(u32, bool), StoreError> {
    if let Some(index) = committed.get(id).or_else(|| staged.get(id)) {
        return Ok((index, false));
    }
    let index = u32::try_from(committed.len() + staged.len())
        .map_err(|_| StoreError::Io("no dense index left: more than 4 billion ids".into()))?;
    staged.insert(id, index);
    Ok((index, true))
}

/// Everything a transaction changed that the in-memory index must learn on commit.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// New ids.
    pub ids: NewIds,
    /// Change in the number of item records.
    pub item_records: i64,
    /// Change in the number of user records.
    pub user_records: i64,
    /// Events appended.
    pub events: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_ids_find_what_was_staged_and_nothing_else() {
        let mut staged = StagedIds::default();
        assert_eq!(staged.get("a"), None);
        let ids: Vec<String> = (0..5000)
            .map(|i| format!("id-{i}-{}", "é".repeat(i % 7)))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(staged.get(id), None);
            staged.insert(id, i as u32 + 10);
        }
        assert_eq!(staged.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(staged.get(id), Some(i as u32 + 10), "{id}");
        }
        assert_eq!(staged.get("id-5000-"), None);
        assert_eq!(staged.get(""), None);
        let listed: Vec<(String, u32)> = staged.iter().map(|(id, i)| (id.to_owned(), i)).collect();
        assert_eq!(listed.len(), ids.len());
        assert_eq!(listed[42], (ids[42].clone(), 52));
    }

    #[test]
    fn new_ids_continue_after_committed_ones() {
        let mut committed = IdMaps::default();
        committed.items.insert_known("old", 0).unwrap();
        let mut ids = NewIds::default();
        assert_eq!(ids.item(&committed, "old").unwrap(), (0, false));
        assert_eq!(ids.item(&committed, "new").unwrap(), (1, true));
        assert_eq!(ids.item(&committed, "new").unwrap(), (1, false));
        assert_eq!(
            ids.user(&committed, "new").unwrap(),
            (0, true),
            "kinds are numbered separately"
        );
    }

    #[test]
    fn merge_applies_ids_and_counters() {
        let mut index = Index::default();
        let mut staged = Staged::default();
        staged.ids.items.insert("i", 0);
        staged.ids.users.insert("u", 0);
        staged.item_records = 1;
        staged.events = 3;
        index.merge(staged).unwrap();
        assert_eq!(index.ids.items.get("i"), Some(0));
        assert_eq!(
            index.counts(),
            StoreCounts {
                items: 1,
                users: 0,
                events: 3
            }
        );
        let mut conflicting = Staged::default();
        conflicting.ids.items.insert("other", 0);
        assert!(matches!(
            index.merge(conflicting),
            Err(StoreError::Corrupt(_))
        ));
    }
}
