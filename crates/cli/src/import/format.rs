//! Which format an import file is in.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;

/// The file formats `tephra import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// JSON Lines: one JSON object per line, in the API's schema.
    Jsonl,
}

impl FileFormat {
    /// Name as shown to users.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "CSV",
            FileFormat::Jsonl => "JSON Lines",
        }
    }
}

/// Picks the format: the file extension if it is a known one, otherwise the first
/// non-blank byte (`{` starts a JSON object, anything else is taken as CSV).
pub fn detect(path: &Path) -> anyhow::Result<FileFormat> {
    if let Some(format) = from_extension(path) {
        return Ok(format);
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut head = Vec::with_capacity(4096);
    file.take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(sniff(&head))
}

fn from_extension(path: &Path) -> Option<FileFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(FileFormat::Csv),
        "jsonl" | "ndjson" | "json" => Some(FileFormat::Jsonl),
        _ => None,
    }
}

/// Format from the first bytes of a file: JSON Lines if the first non-blank byte
/// (after an optional UTF-8 byte order mark) opens an object.
pub fn sniff(head: &[u8]) -> FileFormat {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => FileFormat::Jsonl,
        _ => FileFormat::Csv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_decides_first() {
        assert_eq!(from_extension(Path::new("a.CSV")), Some(FileFormat::Csv));
        assert_eq!(
            from_extension(Path::new("a.ndjson")),
            Some(FileFormat::Jsonl)
        );
        assert_eq!(from_extension(Path::new("a.json")), Some(FileFormat::Jsonl));
        assert_eq!(from_extension(Path::new("a.txt")), None);
        assert_eq!(from_extension(Path::new("noext")), None);
    }

    #[test]
    fn content_decides_otherwise() {
        assert_eq!(sniff(b"\n  \n {\"id\":\"a\"}"), FileFormat::Jsonl);
        assert_eq!(sniff(b"\xEF\xBB\xBF{}"), FileFormat::Jsonl);
        assert_eq!(sniff(b"id,title\na,b"), FileFormat::Csv);
        assert_eq!(sniff(b""), FileFormat::Csv);
    }
}
