//! The little JSON writing the Chrome trace needs (this library has no JSON dependency).

use std::fmt::Write;

/// Appends `s` as a JSON string (quoted, escaped).
pub(super) fn string(out: &mut String, s: &str) {
    out.push_str(&crate::host::record::json_string(s));
}

/// A duration in microseconds, as a JSON number (fractions kept to the nanosecond).
pub(super) fn micros(out: &mut String, d: std::time::Duration) {
    let nanos = d.as_nanos();
    let _ = write!(out, "{}.{:03}", nanos / 1000, nanos % 1000);
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_and_numbers_are_valid_json() {
        let mut out = String::new();
        super::string(&mut out, "a \"q\" \\ \n\u{1} é");
        assert_eq!(out, r#""a \"q\" \\ \n\u0001 é""#);
        let mut n = String::new();
        super::micros(&mut n, std::time::Duration::from_nanos(1_234_567));
        assert_eq!(n, "1234.567");
        let v: serde_json::Value = serde_json::from_str(&format!("[{out},{n}]")).unwrap();
        assert_eq!(v[0], "a \"q\" \\ \n\u{1} é");
        assert_eq!(v[1], 1234.567);
    }
}
