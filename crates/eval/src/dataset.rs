//! Interaction logs read from files: who touched what, when, how strongly.
//!
//! Two formats: RecBole "atomic" files such as MovieLens-100K's `ml-100k.inter`
//! (tab-separated, header columns `user_id:token`, `item_id:token`, `rating:float`,
//! `timestamp:float`) and plain CSV logs `user_id,item_id,timestamp[,value]` with
//! an optional header.
//! Both go through one reader that maps columns by header name.
//!
//! Users and items get dense indices in the **sorted order of their ids** (byte
//! order of the UTF-8 strings, which is code-point order). The reference scripts
//! index ids the same way, and the per-user temporal split breaks timestamp
//! ties by item id, so with this numbering "lower item index" and "smaller item id"
//! are the same tie-break.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use tephra_core::{validate_id, IdMap, Timestamp};

use crate::EvalError;

/// One logged interaction, with dense indices into the log's id maps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    /// Dense user index (see [`Log::users`]).
    pub user: u32,
    /// Dense item index (see [`Log::items`]).
    pub item: u32,
    /// When it happened.
    pub time: Timestamp,
    /// Its strength as logged (a rating, a play count); 1.0 when the log has none.
    /// Every row counts as one implicit interaction whatever its value; the value
    /// is kept for models that weight by it.
    pub value: f32,
}

/// An interaction log with its id maps, in file order.
#[derive(Debug, Clone, Default)]
pub struct Log {
    users: IdMap,
    items: IdMap,
    events: Vec<Interaction>,
}

impl Log {
    /// External user ids ↔ dense indices (indices in sorted id order).
    pub fn users(&self) -> &IdMap {
        &self.users
    }

    /// External item ids ↔ dense indices (indices in sorted id order).
    pub fn items(&self) -> &IdMap {
        &self.items
    }

    /// All interactions, in the order they were read.
    pub fn events(&self) -> &[Interaction] {
        &self.events
    }

    /// Number of distinct users.
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    /// Number of distinct items.
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True for a log without interactions.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Reads a log from a file: tab-separated with a header for `.inter` and
    /// `.tsv` files, CSV otherwise.
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let io = |source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let tab = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("inter" | "tsv")
        );
        let reader = BufReader::with_capacity(1 << 20, file);
        let result = if tab {
            Self::read_atomic(reader)
        } else {
            Self::read_csv(reader)
        };
        result.map_err(|e| match e {
            EvalError::Io { source, .. } => io(source),
            other => other,
        })
    }

    /// Reads a RecBole atomic interaction file (`ml-100k.inter`): tab-separated,
    /// a mandatory header of `name:type` columns among which `user_id`,
    /// `item_id` and `timestamp` are required and `rating` is used as the value.
    pub fn read_atomic(reader: impl Read) -> Result<Self, EvalError> {
        read_delimited(reader, b'\t', true)
    }

    /// Reads a CSV log `user_id,item_id,timestamp[,value]`.
    ///
    /// The header is optional: a first row whose third field is not a time is
    /// taken as a header and its names locate the columns (`user_id`, `item_id`,
    /// `timestamp`, and `value`, `rating` or `weight`); without one the columns are
    /// positional. Times are Unix seconds (integer or decimal) or RFC 3339.
    pub fn read_csv(reader: impl Read) -> Result<Self, EvalError> {
        read_delimited(reader, b',', false)
    }

    /// Builds a log from in-memory records `(user id, item id, time, value)`,
    /// validating ids as the import path does.
    pub fn from_records<U: AsRef<str>, I: AsRef<str>>(
        records: impl IntoIterator<Item = (U, I, Timestamp, f32)>,
    ) -> Result<Self, EvalError> {
        let mut builder = LogBuilder::default();
        for (k, (user, item, time, value)) in records.into_iter().enumerate() {
            builder
                .push(user.as_ref(), item.as_ref(), time, value)
                .map_err(|message| EvalError::parse(k as u64 + 1, message))?;
        }
        Ok(builder.finish())
    }
}

/// Which field of a row holds what.
#[derive(Debug, Clone, Copy)]
struct Columns {
    user: usize,
    item: usize,
    time: usize,
    value: Option<usize>,
}

impl Columns {
    const POSITIONAL: Columns = Columns {
        user: 0,
        item: 1,
        time: 2,
        value: Some(3),
    };

    /// Locates the columns by header name; a `name:type` header (RecBole) is
    /// matched on the part before the colon.
    fn from_header(names: &[&str], line: u64) -> Result<Self, EvalError> {
        let find = |wanted: &[&str]| {
            names.iter().position(|name| {
                let name = name
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                wanted.contains(&name.as_str())
            })
        };
        let missing = |what: &str| {
            EvalError::parse(
                line,
                format!(
                    "the header has no `{what}` column (found: {}); expected user_id, item_id, timestamp and optionally value",
                    names.join(", ")
                ),
            )
        };
        Ok(Columns {
            user: find(&["user_id", "user"]).ok_or_else(|| missing("user_id"))?,
            item: find(&["item_id", "item"]).ok_or_else(|| missing("item_id"))?,
            time: find(&["timestamp", "time"]).ok_or_else(|| missing("timestamp"))?,
            value: find(&["value", "rating", "weight"]),
        })
    }

    fn required(&self) -> usize {
        self.user.max(self.item).max(self.time) + 1
    }
}

fn read_delimited(
    reader: impl Read,
    delimiter: u8,
    header_required: bool,
) -> Result<Log, EvalError> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(delimiter == b',')
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut builder = LogBuilder::default();
    let mut columns: Option<Columns> = None;
    loop {
        let more = csv.read_byte_record(&mut record).map_err(csv_error)?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        let field = |index: usize| -> Result<&str, EvalError> {
            let bytes = record.get(index).unwrap_or_default();
            std::str::from_utf8(bytes)
                .map_err(|_| EvalError::parse(line, "the line is not valid UTF-8"))
        };
        if record.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let cols = match columns {
            Some(cols) => cols,
            None => {
                let is_header =
                    header_required || record.len() < 3 || Timestamp::parse(field(2)?).is_err();
                if is_header {
                    let names = (0..record.len())
                        .map(field)
                        .collect::<Result<Vec<_>, _>>()?;
                    columns = Some(Columns::from_header(&names, line)?);
                    continue;
                }
                *columns.insert(Columns::POSITIONAL)
            }
        };
        if record.len() < cols.required() {
            return Err(EvalError::parse(
                line,
                format!(
                    "expected at least {} fields, found {}",
                    cols.required(),
                    record.len()
                ),
            ));
        }
        let time = Timestamp::parse(field(cols.time)?).map_err(|m| EvalError::parse(line, m))?;
        let value = match cols.value.filter(|&c| c < record.len()) {
            None => 1.0,
            Some(c) => match field(c)?.trim() {
                "" => 1.0,
                text => parse_value(text).map_err(|m| EvalError::parse(line, m))?,
            },
        };
        builder
            .push(
                field(cols.user)?.trim(),
                field(cols.item)?.trim(),
                time,
                value,
            )
            .map_err(|m| EvalError::parse(line, m))?;
    }
    if header_required && columns.is_none() {
        return Err(EvalError::parse(
            1,
            "the file is empty; expected a header line",
        ));
    }
    Ok(builder.finish())
}

fn parse_value(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("value `{text}` is not a finite number")),
    }
}

fn csv_error(error: csv::Error) -> EvalError {
    let line = error.position().map_or(0, |p| p.line());
    match error.into_kind() {
        csv::ErrorKind::Io(source) => EvalError::Io {
            path: "input".into(),
            source,
        },
        other => EvalError::parse(line, format!("malformed row: {other:?}")),
    }
}

/// Collects interactions with provisional first-seen indices, then renumbers
/// users and items into sorted id order once everything is known.
#[derive(Default)]
struct LogBuilder {
    users: IdMap,
    items: IdMap,
    events: Vec<Interaction>,
}

impl LogBuilder {
    fn push(&mut self, user: &str, item: &str, time: Timestamp, value: f32) -> Result<(), String> {
        validate_id("user_id", user).map_err(|e| e.to_string())?;
        validate_id("item_id", item).map_err(|e| e.to_string())?;
        if !value.is_finite() {
            return Err(format!("value {value} is not a finite number"));
        }
        let (user, _) = self.users.get_or_insert(user);
        let (item, _) = self.items.get_or_insert(item);
        self.events.push(Interaction {
            user,
            item,
            time,
            value,
        });
        Ok(())
    }

    fn finish(mut self) -> Log {
        let (users, user_index) = sorted(&self.users);
        let (items, item_index) = sorted(&self.items);
        for event in &mut self.events {
            event.user = user_index[event.user as usize];
            event.item = item_index[event.item as usize];
        }
        Log {
            users,
            items,
            events: self.events,
        }
    }
}

/// A map with the same ids numbered in sorted order, and old index → new index.
fn sorted(map: &IdMap) -> (IdMap, Vec<u32>) {
    let mut ids: Vec<(u32, &str)> = map.iter().collect();
    ids.sort_unstable_by(|a, b| a.1.cmp(b.1));
    let mut renumbered = IdMap::new();
    let mut new_index = vec![0u32; map.len()];
    for (old, id) in ids {
        let (new, _) = renumbered.get_or_insert(id);
        new_index[old as usize] = new;
    }
    (renumbered, new_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(map: &IdMap) -> Vec<&str> {
        map.iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn reads_recbole_atomic_files_with_sorted_ids() {
        let text = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
                    196\t242\t3\t881250949\n\
                    22\t377\t1\t878887116\n\
                    196\t1014\t5\t881250949.0\n";
        let log = Log::read_atomic(text.as_bytes()).unwrap();
        assert_eq!(ids(log.users()), ["196", "22"]);
        assert_eq!(ids(log.items()), ["1014", "242", "377"]);
        assert_eq!(
            log.events()[0],
            Interaction {
                user: 0,
                item: 1,
                time: Timestamp::from_secs(881250949),
                value: 3.0
            }
        );
        assert_eq!(log.events()[1].user, 1);
        assert_eq!(log.events()[2].item, 0);
        assert_eq!(log.events()[2].time, Timestamp::from_secs(881250949));
    }

    #[test]
    fn reads_csv_with_or_without_header() {
        let with = "user_id,item_id,timestamp,value\nu1,i2,100,2.5\nu0,i1,2026-01-01T00:00:00Z\n";
        let log = Log::read_csv(with.as_bytes()).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log.events()[0].value, 2.5);
        assert_eq!(log.events()[1].value, 1.0);
        assert_eq!(
            log.events()[1].time,
            Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
        );

        let reordered = "timestamp,item_id,user_id\n100,i2,u1\n";
        let log = Log::read_csv(reordered.as_bytes()).unwrap();
        assert_eq!(ids(log.users()), ["u1"]);
        assert_eq!(ids(log.items()), ["i2"]);

        let without = "u1,i2,100\nu0,i1,101,3\n";
        let log = Log::read_csv(without.as_bytes()).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log.events()[1].value, 3.0);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: [(&str, u64, &str); 5] = [
            (
                "user_id,item_id,timestamp\nu1,i1,100\nu2,i2,yesterday\n",
                3,
                "not a time",
            ),
            ("u1,i1,100\nu2,i2\n", 2, "expected at least 3 fields"),
            ("u1,i1,100,abc\n", 1, "not a finite number"),
            ("user,thing,when\n", 1, "no `item_id` column"),
            ("u1,,100\n", 1, "must not be empty"),
        ];
        for (text, line, needle) in cases {
            match Log::read_csv(text.as_bytes()) {
                Err(EvalError::Parse { line: got, message }) => {
                    assert_eq!(got, line, "{text:?}: {message}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a parse error, got {other:?}"),
            }
        }
        let err = Log::read_atomic("".as_bytes()).unwrap_err();
        assert!(matches!(err, EvalError::Parse { line: 1, .. }));
    }

    #[test]
    fn skips_blank_lines() {
        let log = Log::read_csv("u1,i1,100\n\nu1,i2,101\n".as_bytes()).unwrap();
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn from_records_validates_ids() {
        let ok = Log::from_records([("b", "x", Timestamp(1), 1.0), ("a", "x", Timestamp(2), 1.0)])
            .unwrap();
        assert_eq!(ids(ok.users()), ["a", "b"]);
        assert_eq!(ok.events()[0].user, 1);
        let err = Log::from_records([
            ("a", "x", Timestamp(1), 1.0),
            ("a\n", "x", Timestamp(2), 1.0),
        ]);
        assert!(matches!(err, Err(EvalError::Parse { line: 2, .. })));
    }
}
