//! Numbers as people read them in summaries and benchmark tables.

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate rounded to a whole number and grouped: `1234.6` as `1,235`.
pub fn grouped_f64(x: f64) -> String {
    if x.is_finite() && x >= 0.0 {
        grouped(x.round() as u64)
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped_f64(1234.6), "1,235");
        assert_eq!(grouped_f64(f64::NAN), "-");
    }
}
