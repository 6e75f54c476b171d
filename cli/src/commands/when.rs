//! Time arguments (`--since`, `--from`, `--around`, …), shared by the commands that take them.

pub use bmon_logparse::time::format_us;

/// Reads a time argument: an ISO-8601 UTC time (`2026-12-02T01:00:00Z`, fractions allowed,
/// as node logs print them), `@SECONDS` since the epoch, or a span ago (`90s`, `15m`, `2h`,
/// `7d`). Returns µs since the epoch.
pub fn parse_time(s: &str, now_us: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some(secs) = s.strip_prefix('@') {
        return secs
            .parse::<i64>()
            .ok()
            .and_then(|v| v.checked_mul(1_000_000))
            .ok_or_else(|| format!("`{s}`: not @SECONDS"));
    }
    if let Some(stamp) = bmon_logparse::parse_stamp(s.as_bytes())
        && stamp.len == s.len()
    {
        return Ok(stamp.micros);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| format!("`{s}`: not a time (2026-12-02T01:00:00Z, @SECONDS or 15m)"))?;
    let unit_us = match unit {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(format!("`{s}`: unit must be s, m, h or d")),
    };
    n.checked_mul(unit_us).map(|d| now_us - d).ok_or_else(|| format!("`{s}`: too far back"))
}

/// Now, µs since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_each_form() {
        let now = 1_800_000_000_000_000;
        assert_eq!(parse_time("@1700000000", now), Ok(1_700_000_000_000_000));
        assert_eq!(parse_time("15m", now), Ok(now - 900_000_000));
        assert_eq!(parse_time("2026-12-02T01:02:03.5Z", now).map(format_us), Ok("2026-12-02T01:02:03.500000Z".into()));
        assert!(parse_time("soon", now).is_err());
        assert!(parse_time("5y", now).is_err());
        assert!(parse_time("@99999999999999999", now).is_err());
        assert!(parse_time("9999999999999999d", now).is_err());
    }

    #[test]
    fn formatted_times_read_back() {
        for us in [0, 1_764_633_723_456_789, 951_782_400_000_001] {
            assert_eq!(parse_time(&format_us(us), 0), Ok(us));
        }
    }
}
