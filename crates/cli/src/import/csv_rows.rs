//! Reading CSV import files: a header row names the columns, one record per row.
//!
//! Columns follow the API's field names. Lists (`categories`, `tags`) are
//! separated by `|`; `attributes` holds a JSON object; empty cells take the
//! field's default.

use std::io::Read;

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use tephra_core::{Event, Item, Timestamp, User, ValidationError};

use super::records::{Record, RecordKind};
use super::{Line, RecordSource};

/// Columns of an items file; only `id` is required.
pub const ITEM_COLUMNS: &[&str] = &[
    "id",
    "categories",
    "tags",
    "title",
    "text",
    "published_at",
    "hidden",
    "expires_at",
    "attributes",
];
/// Columns of a users file; only `id` is required.
pub const USER_COLUMNS: &[&str] = &["id", "attributes"];
/// Columns of an events file; `user_id` and `item_id` are required.
pub const EVENT_COLUMNS: &[&str] = &[
    "user_id",
    "item_id",
    "type",
    "value",
    "timestamp",
    "request_id",
    "scene",
];

/// Separator of list entries inside one cell.
pub const LIST_SEPARATOR: char = '|';

fn columns_of(kind: RecordKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        RecordKind::Items => (ITEM_COLUMNS, &["id"]),
        RecordKind::Users => (USER_COLUMNS, &["id"]),
        RecordKind::Events => (EVENT_COLUMNS, &["user_id", "item_id"]),
    }
}

/// Streams records out of a CSV file.
pub struct CsvSource<R> {
    reader: csv::Reader<R>,
    kind: RecordKind,
    /// For each known column (in the order of the kind's column list), its
    /// position in the file.
    positions: Vec<Option<usize>>,
    width: usize,
    row: csv::ByteRecord,
    default_event_type: String,
}

impl<R: Read> CsvSource<R> {
    /// Reads the header row and checks it: unknown or repeated columns and missing
    /// required ones are refused before any row is read.
    pub fn new(input: R, kind: RecordKind, default_event_type: &str) -> anyhow::Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let header = reader
            .byte_headers()
            .context("cannot read the CSV header row")?
            .clone();
        let (known, required) = columns_of(kind);
        let mut positions = vec![None; known.len()];
        for (pos, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw)
                .map_err(|_| anyhow::anyhow!("line 1: the header row is not valid UTF-8"))?
                .trim()
                .trim_start_matches('\u{feff}');
            let Some(slot) = known.iter().position(|k| k.eq_ignore_ascii_case(name)) else {
                bail!(
                    "line 1: unknown column `{name}`; {} files have the columns {}",
                    kind.noun(),
                    known.join(", ")
                );
            };
            if positions[slot].replace(pos).is_some() {
                bail!("line 1: column `{name}` appears twice");
            }
        }
        for name in required {
            if positions[known.iter().position(|k| k == name).unwrap_or(0)].is_none() {
                bail!(
                    "line 1: the required column `{name}` is missing (the header row has {})",
                    header_text(&header)
                );
            }
        }
        Ok(Self {
            reader,
            kind,
            positions,
            width: header.len(),
            row: csv::ByteRecord::new(),
            default_event_type: default_event_type.to_string(),
        })
    }

    fn record(&self) -> Result<Record, ValidationError> {
        if self.row.len() != self.width {
            return Err(ValidationError {
                code: "invalid_csv",
                field: None,
                message: format!(
                    "the row has {} fields but the header has {}",
                    self.row.len(),
                    self.width
                ),
            });
        }
        let cells = Cells { source: self };
        match self.kind {
            RecordKind::Items => cells.item().map(Record::Item),
            RecordKind::Users => cells.user().map(Record::User),
            RecordKind::Events => cells.event().map(Record::Event),
        }
    }
}

impl<R: Read> RecordSource for CsvSource<R> {
    fn next_line(&mut self) -> anyhow::Result<Option<Line>> {
        match self.reader.read_byte_record(&mut self.row) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let number = self.row.position().map_or(0, |p| p.line());
                Ok(Some(Line {
                    number,
                    record: self.record(),
                }))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => {
                    Err(anyhow::Error::new(e).context("cannot read the CSV file"))
                }
                _ => {
                    let number = e.position().map_or(0, |p| p.line());
                    let error = ValidationError {
                        code: "invalid_csv",
                        field: None,
                        message: e.to_string(),
                    };
                    Ok(Some(Line {
                        number,
                        record: Err(error),
                    }))
                }
            },
        }
    }

    fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }
}

fn header_text(header: &csv::ByteRecord) -> String {
    let names: Vec<_> = header.iter().map(String::from_utf8_lossy).collect();
    if names.is_empty() {
        "no columns".into()
    } else {
        format!("columns {}", names.join(", "))
    }
}

/// Typed access to the cells of the current row.
struct Cells<'a, R> {
    source: &'a CsvSource<R>,
}

impl<R> Cells<'_, R> {
    /// The cell of column `name` ("" when the file has no such column).
    fn text(&self, name: &str) -> Result<&str, ValidationError> {
        let (known, _) = columns_of(self.source.kind);
        let slot = known.iter().position(|k| *k == name);
        let Some(pos) = slot.and_then(|s| self.source.positions[s]) else {
            return Ok("");
        };
        let raw = self.source.row.get(pos).unwrap_or_default();
        std::str::from_utf8(raw).map_err(|e| {
            ValidationError::field(
                "invalid_utf8",
                name,
                format!(
                    "not valid UTF-8 (bad byte at position {} of the cell)",
                    e.valid_up_to() + 1
                ),
            )
        })
    }

    /// The cell, or `None` when it is empty.
    fn optional(&self, name: &str) -> Result<Option<&str>, ValidationError> {
        self.text(name).map(|t| Some(t).filter(|t| !t.is_empty()))
    }

    fn list(&self, name: &str) -> Result<Vec<String>, ValidationError> {
        Ok(match self.optional(name)? {
            Some(t) => t.split(LIST_SEPARATOR).map(str::to_string).collect(),
            None => Vec::new(),
        })
    }

    fn time(&self, name: &str) -> Result<Option<Timestamp>, ValidationError> {
        self.optional(name)?
            .map(|t| {
                Timestamp::parse(t)
                    .map_err(|msg| ValidationError::field("invalid_value", name, msg))
            })
            .transpose()
    }

    fn flag(&self, name: &str) -> Result<bool, ValidationError> {
        match self
            .optional(name)?
            .map(|t| t.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(ValidationError::field(
                "invalid_value",
                name,
                format!("`{other}` is not a boolean: use true or false"),
            )),
        }
    }

    fn attributes(&self) -> Result<Map<String, Value>, ValidationError> {
        let Some(text) = self.optional("attributes")? else {
            return Ok(Map::new());
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ValidationError::field(
                "invalid_value",
                "attributes",
                "attributes must be a JSON object",
            )),
            Err(e) => Err(ValidationError::field(
                "invalid_value",
                "attributes",
                format!("attributes must be a JSON object: {e}"),
            )),
        }
    }

    fn item(&self) -> Result<Item, ValidationError> {
        Ok(Item {
            id: self.text("id")?.to_string(),
            categories: self.list("categories")?,
            tags: self.list("tags")?,
            title: self.text("title")?.to_string(),
            text: self.text("text")?.to_string(),
            published_at: self.time("published_at")?.unwrap_or_else(Timestamp::now),
            hidden: self.flag("hidden")?,
            expires_at: self.time("expires_at")?,
            attributes: self.attributes()?,
        })
    }

    fn user(&self) -> Result<User, ValidationError> {
        Ok(User {
            id: self.text("id")?.to_string(),
            attributes: self.attributes()?,
        })
    }

    fn event(&self) -> Result<Event, ValidationError> {
        let value = match self.optional("value")? {
            None => 1.0,
            Some(t) => t.trim().parse::<f64>().map_err(|_| {
                ValidationError::field("invalid_value", "value", format!("`{t}` is not a number"))
            })?,
        };
        Ok(Event {
            user_id: self.text("user_id")?.to_string(),
            item_id: self.text("item_id")?.to_string(),
            event_type: self
                .optional("type")?
                .unwrap_or(&self.source.default_event_type)
                .to_string(),
            value,
            timestamp: self.time("timestamp")?.unwrap_or_else(Timestamp::now),
            request_id: self.optional("request_id")?.map(str::to_string),
            scene: self.optional("scene")?.map(str::to_string),
            position: None,
            attribution: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str, kind: RecordKind) -> Vec<(u64, Result<Record, ValidationError>)> {
        let mut source = CsvSource::new(input.as_bytes(), kind, "click").unwrap();
        let mut out = Vec::new();
        while let Some(line) = source.next_line().unwrap() {
            out.push((line.number, line.record));
        }
        out
    }

    #[test]
    fn items_with_all_columns() {
        let csv = "id,categories,tags,title,text,published_at,hidden,expires_at,attributes\n\
                   a,cars|ev,new,\"Hello, world\",body,2026-01-01T00:00:00Z,true,1900000000,\"{\"\"k\"\":1}\"\n";
        let out = read(csv, RecordKind::Items);
        let (2, Ok(Record::Item(item))) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(item.categories, ["cars", "ev"]);
        assert_eq!(item.title, "Hello, world");
        assert!(item.hidden);
        assert_eq!(
            item.published_at,
            Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(item.expires_at, Some(Timestamp::from_secs(1_900_000_000)));
        assert_eq!(item.attributes.get("k"), Some(&Value::from(1)));
    }

    #[test]
    fn events_take_defaults_for_empty_and_missing_columns() {
        let out = read(
            "item_id,user_id,value\ni1,u1,\ni2,u2,2.5\n",
            RecordKind::Events,
        );
        let (_, Ok(Record::Event(e))) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (e.event_type.as_str(), e.value, e.user_id.as_str()),
            ("click", 1.0, "u1")
        );
        let (3, Ok(Record::Event(e))) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(e.value, 2.5);
    }

    #[test]
    fn bad_cells_name_their_column() {
        let out = read(
            "user_id,item_id,value,timestamp\nu,i,abc,\nu,i,1,yesterday\nu,i\n",
            RecordKind::Events,
        );
        assert_eq!(
            out[0].1.as_ref().unwrap_err().field.as_deref(),
            Some("value")
        );
        assert_eq!(
            out[1].1.as_ref().unwrap_err().field.as_deref(),
            Some("timestamp")
        );
        assert_eq!(out[2].1.as_ref().unwrap_err().code, "invalid_csv");
        assert_eq!(out.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn bad_utf8_cell_is_a_bad_line() {
        let mut source = CsvSource::new(
            &b"id,attributes\na\xff,\nb,\n"[..],
            RecordKind::Users,
            "click",
        )
        .unwrap();
        let first = source.next_line().unwrap().unwrap();
        assert_eq!(first.record.unwrap_err().code, "invalid_utf8");
        assert!(source.next_line().unwrap().unwrap().record.is_ok());
    }

    #[test]
    fn header_problems_are_refused_up_front() {
        let err = |csv: &str, kind| {
            CsvSource::new(csv.as_bytes(), kind, "click")
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err("id,colour\n", RecordKind::Users).contains("unknown column `colour`"));
        assert!(err("user_id,type\n", RecordKind::Events).contains("`item_id` is missing"));
        assert!(err("id,id\n", RecordKind::Items).contains("twice"));
    }
}
