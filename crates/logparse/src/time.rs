//! Log timestamps to microseconds since the Unix epoch, without allocation or time-zone lookup.
//!
//! Forms seen in node logs (all UTC):
//! - `2019-08-12T04:01:44Z` (Core 0.12 and later) and `2023-05-16T05:49:52.202998Z` (`-logtimemicros`);
//! - `2015-03-01 12:00:00` (Core before 0.12, BSV) and `2026-11-25 00:57:14.123456` (BSV with micros).

/// A parsed timestamp: µs since the epoch and how many bytes it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub micros: i64,
    /// Bytes consumed from the start of the input.
    pub len: usize,
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a timestamp at the start of `b`. `None` if `b` does not start with one of the forms.
pub fn parse_stamp(b: &[u8]) -> Option<Stamp> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let iso = match b[10] {
        b'T' => true,
        b' ' => false,
        _ => return None,
    };
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, min, sec) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut len = 19;
    let mut frac_us = 0i64;
    if b.get(len) == Some(&b'.') {
        let start = len + 1;
        let mut end = start;
        while end < b.len() && end - start < 9 && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return None;
        }
        let n = end - start;
        let v = i64::from(digits(b, start, n)?);
        frac_us = match n {
            ..=6 => v * 10i64.pow(6 - n as u32),
            _ => v / 10i64.pow(n as u32 - 6),
        };
        len = end;
    }
    if iso {
        if b.get(len) != Some(&b'Z') {
            return None;
        }
        len += 1;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    Some(Stamp { micros: secs * 1_000_000 + frac_us, len })
}

/// `2026-12-02T01:02:03.456789Z` for µs since the epoch.
pub fn format_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The civil date of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        // 2019-08-12T04:01:44Z is 1565582504 (date -u -d ... +%s).
        let s = parse_stamp(b"2019-08-12T04:01:44Z [msghand]").unwrap();
        assert_eq!(s, Stamp { micros: 1_565_582_504_000_000, len: 20 });
        let s = parse_stamp(b"2023-05-16T05:49:52.202998Z x").unwrap();
        assert_eq!(s, Stamp { micros: 1_684_216_192_202_998, len: 27 });
        let s = parse_stamp(b"2026-11-25 00:57:14 [main]").unwrap();
        assert_eq!(s.len, 19);
        let s2 = parse_stamp(b"2026-11-25 00:57:14.5 [main]").unwrap();
        assert_eq!(s2, Stamp { micros: s.micros + 500_000, len: 21 });
    }

    #[test]
    fn rejects_near_misses() {
        for bad in [
            &b"2019-08-12T04:01:44 [x]"[..],
            b"2019-13-12T04:01:44Z",
            b"2019-08-12X04:01:44Z",
            b"2019-08-12T24:01:44Z",
            b"2019-08-12T04:01:4",
            b"2019-08-12T04:01:44.Z",
            b"abcd-08-12T04:01:44Z",
        ] {
            assert_eq!(parse_stamp(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
