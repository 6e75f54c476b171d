//! Small, allocation-free scanners over message text.

/// A 64-digit lowercase or uppercase hex string at the start of `s`, returned lowercased only if
/// already lowercase (node logs print lowercase).
pub fn hash_at(s: &str) -> Option<&str> {
    let h = s.get(..64)?;
    if h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) { Some(h) } else { None }
}

/// The value of `key=` in `s` (the key at the start or after a space, `(` or `,`), up to the next
/// space, `,` or `)`.
pub fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = s[from..].find(key) {
        let at = from + i;
        let boundary = at == 0 || matches!(s.as_bytes()[at - 1], b' ' | b'(' | b',');
        let after = at + key.len();
        if boundary && s.as_bytes().get(after) == Some(&b'=') {
            let v = &s[after + 1..];
            let end = v.find([' ', ',', ')']).unwrap_or(v.len());
            return Some(&v[..end]);
        }
        from = after;
    }
    None
}

/// Leading ASCII digits of `s` (with an optional `-`) as an integer.
pub fn int_prefix(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, start) = if b.first() == Some(&b'-') { (true, 1) } else { (false, 0) };
    let end = b[start..].iter().position(|c| !c.is_ascii_digit()).map_or(b.len(), |p| start + p);
    if end == start || end - start > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in &b[start..end] {
        v = v * 10 + i64::from(c - b'0');
    }
    Some(if neg { -v } else { v })
}

/// An integer field: `key=123`.
pub fn int_field(s: &str, key: &str) -> Option<i64> {
    field(s, key).and_then(int_prefix)
}

/// A hash field: `key=<64 hex>`.
pub fn hash_field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    field(s, key).and_then(hash_at)
}

/// A decimal number of milliseconds (`34.40`, `0.01`, `12`) at the start of `s` followed by `ms`,
/// in whole microseconds, with the rest of `s`.
pub fn millis_to_micros(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    let int_end = b.iter().position(|c| !c.is_ascii_digit()).unwrap_or(b.len());
    if int_end == 0 || int_end > 15 {
        return None;
    }
    let whole = int_prefix(&s[..int_end])?;
    let mut frac_us = 0i64;
    let mut end = int_end;
    if b.get(end) == Some(&b'.') {
        let start = end + 1;
        end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            if end - start < 3 {
                frac_us = frac_us * 10 + i64::from(b[end] - b'0');
            }
            end += 1;
        }
        let taken = (end - start).min(3);
        frac_us *= 10i64.pow(3 - taken as u32);
    }
    let rest = s[end..].strip_prefix("ms")?;
    Some((whole * 1000 + frac_us, rest))
}

/// A non-negative float at the start of `s` (digits, optional fraction).
pub fn float_prefix(s: &str) -> Option<f64> {
    let end = s.bytes().position(|c| !(c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'-')).unwrap_or(s.len());
    s[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "00000000000000000010e1543aa317eb5e34148afda9b9da10edbdd9cb8a1c8d";

    #[test]
    fn fields() {
        let s = format!("new best={H} height=589733 version=0x20c00000 peer=12, x");
        assert_eq!(hash_field(&s, "best"), Some(H));
        assert_eq!(int_field(&s, "height"), Some(589_733));
        assert_eq!(int_field(&s, "peer"), Some(12));
        assert_eq!(field("block hash=abc block height=3", "height"), Some("3"));
        assert_eq!(field("fork block hash=x", "ork"), None);
        assert_eq!(field("xpeer=1 peer=2", "peer"), Some("2"));
    }

    #[test]
    fn millis() {
        assert_eq!(millis_to_micros("34.40ms (x)"), Some((34_400, " (x)")));
        assert_eq!(millis_to_micros("0.01ms"), Some((10, "")));
        assert_eq!(millis_to_micros("12ms"), Some((12_000, "")));
        assert_eq!(millis_to_micros("1.23456ms"), Some((1_234, "")));
        assert_eq!(millis_to_micros("infms"), None);
        assert_eq!(millis_to_micros("3.5s"), None);
    }

    #[test]
    fn ints() {
        assert_eq!(int_prefix("-5x"), Some(-5));
        assert_eq!(int_prefix("x"), None);
        assert_eq!(int_prefix("9999999999999999999999"), None);
    }
}
