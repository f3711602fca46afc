//! The tally of lines skipped by `--skip-invalid`, grouped by reason.

use std::collections::BTreeMap;
use std::fmt;

use tephra_core::ValidationError;

/// How many line numbers to list per reason.
const LINES_SHOWN: usize = 5;

/// Skipped lines by reason (the error code), with the first few line numbers and
/// the first message, so that a user can find and fix them.
#[derive(Debug, Default, Clone)]
pub struct SkippedLines {
    total: u64,
    by_reason: BTreeMap<&'static str, Reason>,
}

#[derive(Debug, Clone)]
struct Reason {
    count: u64,
    first_lines: Vec<u64>,
    example: String,
}

impl SkippedLines {
    /// Counts one skipped line.
    pub fn add(&mut self, line: u64, error: &ValidationError) {
        self.total += 1;
        let reason = self.by_reason.entry(error.code).or_insert_with(|| Reason {
            count: 0,
            first_lines: Vec::new(),
            example: describe(error),
        });
        reason.count += 1;
        if reason.first_lines.len() < LINES_SHOWN {
            reason.first_lines.push(line);
        }
    }

    /// Number of skipped lines.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// `(reason, count)` pairs, by reason.
    #[cfg(test)]
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.by_reason.iter().map(|(code, r)| (*code, r.count))
    }
}

/// `field: message`, or just the message when no field can be named.
pub fn describe(error: &ValidationError) -> String {
    match &error.field {
        Some(field) => format!("{field}: {}", error.message),
        None => error.message.clone(),
    }
}

impl fmt::Display for SkippedLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (code, reason) in &self.by_reason {
            let lines: Vec<String> = reason.first_lines.iter().map(u64::to_string).collect();
            let more = if reason.count > reason.first_lines.len() as u64 {
                ", ..."
            } else {
                ""
            };
            let noun = if reason.count == 1 { "line" } else { "lines" };
            writeln!(
                f,
                "  {code}: {} {noun} ({noun} {}{more}); first: line {}: {}",
                reason.count,
                lines.join(", "),
                reason.first_lines.first().copied().unwrap_or_default(),
                reason.example
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_reason_and_keeps_the_first_lines() {
        let mut s = SkippedLines::default();
        let bad_id = ValidationError::field("invalid_id", "id", "id must not be empty");
        for line in [3, 5, 8, 13, 21, 34, 55] {
            s.add(line, &bad_id);
        }
        s.add(
            9,
            &ValidationError {
                code: "invalid_json",
                field: None,
                message: "EOF".into(),
            },
        );
        assert_eq!(s.total(), 8);
        assert_eq!(
            s.counts().collect::<Vec<_>>(),
            [("invalid_id", 7), ("invalid_json", 1)]
        );
        let text = s.to_string();
        assert!(text.contains("invalid_id: 7 lines (lines 3, 5, 8, 13, 21, ...); first: line 3: id: id must not be empty"));
        assert!(text.contains("invalid_json: 1 line (line 9)"));
    }
}
