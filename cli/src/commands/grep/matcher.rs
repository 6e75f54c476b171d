//! Pure: what `bmon grep` keeps, how its times are read, and how it prints a hit.

use bmon_schemas::LogLineFact;
use regex::bytes::Regex;

/// One log line that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Node id.
    pub node: String,
    /// Chain name.
    pub network: String,
    /// The node's timestamp (µs since the epoch), else the producer's receive time.
    pub ts_us: i64,
    /// The line (lossy UTF-8).
    pub line: String,
    /// Where it sits in the topic.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// The filters of one search.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The pattern, matched against the line alone.
    pub pattern: Regex,
    /// Whether the pattern may be tried on a record's raw bytes before decoding: not when it is
    /// anchored (`^`, `$`, `\A`, `\z`), since the line sits inside the record.
    pub prefilter: bool,
    /// Only these nodes (empty: all).
    pub nodes: Vec<String>,
    /// Only this network.
    pub network: Option<String>,
    /// Only lines of this log category (`validation`, `net`, …).
    pub category: Option<String>,
    /// Node time range, µs, inclusive.
    pub since_us: i64,
    /// Node time range end, µs, inclusive.
    pub until_us: i64,
}

impl Filter {
    /// Whether a record of node `key` may hold a hit (nodes are the record key, so most
    /// records are passed over without decoding).
    pub fn wants_key(&self, key: Option<&[u8]>) -> bool {
        self.nodes.is_empty() || key.is_some_and(|k| self.nodes.iter().any(|n| n.as_bytes() == k))
    }

    /// Whether the raw record may hold a hit: the pattern (and the network name) must occur
    /// somewhere in its bytes, which is much cheaper than decoding every record.
    pub fn may_match(&self, payload: &[u8]) -> bool {
        (!self.prefilter || self.pattern.is_match(payload))
            && self.network.as_ref().is_none_or(|n| memchr_find(payload, n.as_bytes()))
    }

    /// The hit in a decoded fact, if it is one.
    pub fn hit(&self, fact: &LogLineFact, partition: i32, offset: i64) -> Option<Hit> {
        let env = &fact.envelope;
        if self.network.as_ref().is_some_and(|n| *n != env.network) || !self.pattern.is_match(&fact.line) {
            return None;
        }
        let line = String::from_utf8_lossy(&fact.line).into_owned();
        let header = bmon_logparse::split_line(&line);
        if self.category.as_ref().is_some_and(|c| header.category != Some(c.as_str())) {
            return None;
        }
        let ts_us = header.logged_at_us.unwrap_or(env.received_at_us);
        if ts_us < self.since_us || ts_us > self.until_us {
            return None;
        }
        Some(Hit { node: env.node_id.clone(), network: env.network.clone(), ts_us, line, partition, offset })
    }
}

/// Whether `pattern` can be tried on a whole record's bytes: it holds no anchor.
pub fn prefilter_safe(pattern: &str) -> bool {
    !(pattern.contains('^') || pattern.contains('$') || pattern.contains("\\A") || pattern.contains("\\z"))
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Hits in time order (ties: node, then position in the topic).
pub fn sort(hits: &mut [Hit]) {
    hits.sort_by(|a, b| (a.ts_us, &a.node, a.partition, a.offset).cmp(&(b.ts_us, &b.node, b.partition, b.offset)));
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

/// The text form: `node  timestamp  line`.
pub fn text(hit: &Hit) -> String {
    format!("{}\t{}\t{}", hit.node, format_us(hit.ts_us), hit.line)
}

/// The JSON form, one object per hit.
pub fn json(hit: &Hit) -> String {
    serde_json::json!({
        "node": hit.node,
        "network": hit.network,
        "ts": format_us(hit.ts_us),
        "ts_us": hit.ts_us,
        "line": hit.line,
        "partition": hit.partition,
        "offset": hit.offset,
    })
    .to_string()
}

/// Reads `--since`/`--until`: an ISO-8601 UTC time (`2026-12-02T01:00:00Z`, fractions allowed,
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
    fn anchored_patterns_skip_the_raw_prefilter() {
        assert!(prefilter_safe("UpdateTip.*height=[0-9]+"));
        assert!(!prefilter_safe("^2026-12-02"));
        assert!(!prefilter_safe("accepted$"));
    }

    #[test]
    fn formatted_times_read_back() {
        for us in [0, 1_764_633_723_456_789, 951_782_400_000_001] {
            assert_eq!(parse_time(&format_us(us), 0), Ok(us));
        }
    }
}
