//! Reading JSON Lines import files: one object per line, blank lines skipped.

use std::io::{self, BufRead, Read};

use tephra_core::ValidationError;

use super::records::{self, RecordKind};
use super::{Line, RecordSource};

/// Longest accepted line. The largest valid record (a 256 KiB text, 64 KiB of
/// attributes, a hundred long labels) stays well below it; the cap keeps a file
/// without newlines from being read into memory whole.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Streams records out of a JSON Lines file, one line at a time.
pub struct JsonLinesSource<R> {
    reader: R,
    kind: RecordKind,
    line: u64,
    bytes_read: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonLinesSource<R> {
    /// Reads records of `kind` from `reader`.
    pub fn new(reader: R, kind: RecordKind) -> Self {
        Self {
            reader,
            kind,
            line: 0,
            bytes_read: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Reads the next line into `buf` (without its newline); `false` at the end.
    /// A line over the limit is consumed to its end and reported as too long.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes_read += n as u64;
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            return Ok(Some(true));
        }
        if self.buf.len() <= MAX_LINE_BYTES {
            return Ok(Some(true)); // last line, without a newline
        }
        // Too long: skip to the end of the line without keeping it.
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.reader.consume(i + 1);
                    self.bytes_read += i as u64 + 1;
                    break;
                }
                None => {
                    let len = chunk.len();
                    self.reader.consume(len);
                    self.bytes_read += len as u64;
                }
            }
        }
        Ok(Some(false))
    }
}

impl<R: BufRead> RecordSource for JsonLinesSource<R> {
    fn next_line(&mut self) -> anyhow::Result<Option<Line>> {
        loop {
            let Some(fits) = self.read_line()? else {
                return Ok(None);
            };
            if !fits {
                let error = ValidationError {
                    code: "line_too_long",
                    field: None,
                    message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                };
                return Ok(Some(Line {
                    number: self.line,
                    record: Err(error),
                }));
            }
            let mut text = self.buf.trim_ascii();
            if self.line == 1 {
                // Some editors start UTF-8 files with a byte order mark.
                text = text
                    .strip_prefix(b"\xEF\xBB\xBF")
                    .unwrap_or(text)
                    .trim_ascii();
            }
            if text.is_empty() {
                continue;
            }
            let record = match std::str::from_utf8(text) {
                Ok(text) => records::from_json(self.kind, text),
                Err(e) => Err(ValidationError {
                    code: "invalid_utf8",
                    field: None,
                    message: format!(
                        "the line is not valid UTF-8 (bad byte at column {})",
                        e.valid_up_to() + 1
                    ),
                }),
            };
            return Ok(Some(Line {
                number: self.line,
                record,
            }));
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::records::Record;

    fn lines(input: &[u8], kind: RecordKind) -> Vec<(u64, Result<Record, &'static str>)> {
        let mut source = JsonLinesSource::new(input, kind);
        let mut out = Vec::new();
        while let Some(line) = source.next_line().unwrap() {
            out.push((line.number, line.record.map_err(|e| e.code)));
        }
        assert_eq!(source.bytes_read(), input.len() as u64);
        out
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let out = lines(
            b"\xEF\xBB\xBF{\"id\":\"a\"}\n\n  \r\n{\"id\":\"b\"}\r\n{\"id\":\"c\"}",
            RecordKind::Users,
        );
        assert_eq!(out.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 4, 5]);
        assert!(out.iter().all(|(_, r)| r.is_ok()));
    }

    #[test]
    fn bad_utf8_is_a_bad_line() {
        let out = lines(
            b"{\"id\":\"a\"}\n{\"id\":\"\xff\"}\n{\"id\":\"c\"}\n",
            RecordKind::Users,
        );
        assert_eq!(out[1], (2, Err("invalid_utf8")));
        assert!(out[2].1.is_ok());
    }

    #[test]
    fn overlong_line_is_a_bad_line_and_reading_goes_on() {
        let mut input = b"{\"id\":\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        input.extend(b"\"}\n{\"id\":\"b\"}\n");
        let out = lines(&input, RecordKind::Users);
        assert_eq!(out[0], (1, Err("line_too_long")));
        assert!(matches!(&out[1], (2, Ok(Record::User(u))) if u.id == "b"));
    }
}
