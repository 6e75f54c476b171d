//! Durations written as `30s`, `10m`, `12h`, `7d`, `2w`, or `forever`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long records (or a window) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Retention {
    /// A finite duration in milliseconds.
    Millis(i64),
    /// Kept forever (Kafka `retention.ms = -1`).
    Forever,
}

/// A duration string that is not `<n><unit>` or `forever`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration: write <number><unit> with unit ms, s, m, h, d or w (e.g. 7d), or `forever`")]
pub struct ParseRetentionError(pub String);

impl Retention {
    /// The Kafka `retention.ms` value: milliseconds, or -1 for forever.
    pub fn kafka_ms(self) -> i64 {
        match self {
            Retention::Millis(ms) => ms,
            Retention::Forever => -1,
        }
    }
}

impl FromStr for Retention {
    type Err = ParseRetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseRetentionError(s.to_owned());
        let t = s.trim();
        if t == "forever" {
            return Ok(Retention::Forever);
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().map_err(|_| err())?;
        let unit_ms: i64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(err()),
        };
        let ms = n.checked_mul(unit_ms).filter(|ms| *ms > 0).ok_or_else(err)?;
        Ok(Retention::Millis(ms))
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Forever => f.write_str("forever"),
            Retention::Millis(ms) => write!(f, "{ms}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_forever() {
        assert_eq!("7d".parse(), Ok(Retention::Millis(7 * 86_400_000)));
        assert_eq!("10m".parse(), Ok(Retention::Millis(600_000)));
        assert_eq!("250ms".parse(), Ok(Retention::Millis(250)));
        assert_eq!("forever".parse(), Ok(Retention::Forever));
        assert_eq!(Retention::Forever.kafka_ms(), -1);
        assert!(Retention::Millis(1) < Retention::Forever);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "7", "d", "7 days", "-1d", "0s", "99999999999999999999d", "1y"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad:?} parsed");
        }
    }
}
