//! The part of a log line before the message: timestamp, `[thread]`, `-logsourcelocations`'
//! `[file:line] [function]`, and `[category]` or `[category:level]`.

use crate::time::parse_stamp;

/// Categories Core (and its forks) print in brackets, plus the level pseudo-categories of
/// unconditional warnings and errors.
const CATEGORIES: &[&str] = &[
    "addrman",
    "all",
    "bench",
    "blockstorage",
    "cmpctblock",
    "coindb",
    "db",
    "error",
    "estimatefee",
    "http",
    "i2p",
    "info",
    "ipc",
    "kernel",
    "leveldb",
    "libevent",
    "lock",
    "mempool",
    "mempoolrej",
    "net",
    "privatebroadcast",
    "proxy",
    "prune",
    "qt",
    "rand",
    "reindex",
    "rpc",
    "scan",
    "selectcoins",
    "tor",
    "txpackages",
    "txreconciliation",
    "util",
    "validation",
    "walletdb",
    "warning",
    "zmq",
];

/// Thread names that are also category names; alone in brackets they are read as the thread.
const THREAD_NAMES_LIKE_CATEGORIES: &[&str] = &["net", "http", "zmq"];

const LEVELS: &[&str] = &["trace", "debug", "info", "warning", "error"];

/// The structured prefix of one line and the message after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineHeader<'a> {
    /// The node's timestamp, µs since the epoch.
    pub logged_at_us: Option<i64>,
    /// `[thread]` (`-logthreadnames`).
    pub thread: Option<&'a str>,
    /// `file:line` (`-logsourcelocations`).
    pub source_location: Option<&'a str>,
    /// The function name that follows a source location.
    pub function: Option<&'a str>,
    /// `category` from `[category]` or `[category:level]`.
    pub category: Option<&'a str>,
    /// `level` from `[category:level]`.
    pub level: Option<&'a str>,
    /// Everything after the prefix.
    pub message: &'a str,
}

/// Longest bracket group taken as a prefix; longer ones are message text.
const MAX_GROUP: usize = 120;

/// The bracket group at the start of `s`, if `s` starts with `[…]` followed by a space or the end.
fn group(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let end = b.iter().take(MAX_GROUP).position(|&c| c == b']')?;
    let content = &s[1..end];
    match b.get(end + 1) {
        None => Some((content, "")),
        Some(b' ') => Some((content, &s[end + 2..])),
        Some(_) => None,
    }
}

fn is_source_location(g: &str) -> bool {
    match g.rsplit_once(':') {
        Some((file, line)) => {
            file.contains('.') && !line.is_empty() && line.bytes().all(|c| c.is_ascii_digit()) && !file.contains(' ')
        }
        None => false,
    }
}

/// `(category, level)` if `g` is `category` or `category:level` with a known category.
fn as_category(g: &str) -> Option<(&str, Option<&str>)> {
    let (cat, level) = match g.split_once(':') {
        Some((c, l)) if LEVELS.contains(&l) => (c, Some(l)),
        Some(_) => return None,
        None => (g, None),
    };
    CATEGORIES.binary_search(&cat).ok().map(|_| (cat, level))
}

/// Splits `line` into its prefix and message. Lines without a timestamp are all message.
pub fn split_line(line: &str) -> LineHeader<'_> {
    let mut h = LineHeader { message: line, ..LineHeader::default() };
    let Some(stamp) = parse_stamp(line.as_bytes()) else { return h };
    h.logged_at_us = Some(stamp.micros);
    let mut rest = &line[stamp.len..];
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    // Under `setmocktime` Core adds the mock time after the real one: `… (mocktime: <ISO>) `.
    if let Some(after) = rest.strip_prefix("(mocktime: ")
        && let Some(end) = after.find(')')
    {
        rest = &after[end + 1..];
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    // Up to: thread, file:line, function, category.
    let mut groups: [(&str, &str); 4] = [("", ""); 4];
    let mut n = 0;
    let mut cursor = rest;
    while n < groups.len() {
        match group(cursor) {
            Some((g, after)) => {
                groups[n] = (g, after);
                cursor = after;
                n += 1;
            }
            None => break,
        }
    }
    let mut used = 0;
    let source_at = groups[..n].iter().position(|(g, _)| is_source_location(g));
    match source_at {
        Some(i) if i <= 1 => {
            if i == 1 {
                h.thread = Some(groups[0].0);
            }
            h.source_location = Some(groups[i].0);
            used = i + 1;
            if used < n {
                h.function = Some(groups[used].0);
                used += 1;
            }
            if used < n
                && let Some((cat, level)) = as_category(groups[used].0)
            {
                (h.category, h.level) = (Some(cat), level);
                used += 1;
            }
        }
        _ if n >= 2 => {
            h.thread = Some(groups[0].0);
            used = 1;
            if let Some((cat, level)) = as_category(groups[1].0) {
                (h.category, h.level) = (Some(cat), level);
                used = 2;
            }
        }
        _ if n == 1 => {
            let g = groups[0].0;
            match as_category(g) {
                Some((cat, level)) if level.is_some() || !THREAD_NAMES_LIKE_CATEGORIES.contains(&cat) => {
                    (h.category, h.level) = (Some(cat), level);
                }
                _ => h.thread = Some(g),
            }
            used = 1;
        }
        _ => {}
    }
    h.message = if used == 0 { rest } else { groups[used - 1].1 };
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_sorted_for_binary_search() {
        assert!(CATEGORIES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn thread_and_category() {
        let h = split_line("2023-05-16T05:49:52.203009Z [msghand] [net] Saw new cmpctblock header hash=00 peer=46");
        assert_eq!(h.thread, Some("msghand"));
        assert_eq!(h.category, Some("net"));
        assert_eq!(h.message, "Saw new cmpctblock header hash=00 peer=46");
    }

    #[test]
    fn a_mock_time_after_the_stamp_is_skipped() {
        let h = split_line(
            "2026-12-01T19:00:00.123456Z (mocktime: 2026-12-01T17:00:00Z) [msghand] [validation] UpdateTip: x",
        );
        assert_eq!(h.logged_at_us, split_line("2026-12-01T19:00:00.123456Z x").logged_at_us, "the real time");
        assert_eq!((h.thread, h.category, h.message), (Some("msghand"), Some("validation"), "UpdateTip: x"));
    }

    #[test]
    fn source_locations() {
        let h = split_line(
            "2022-10-22T14:22:49.159116Z [init] [util/syscall_sandbox.cpp:925] [SetSyscallSandboxPolicy] [util] Syscall x",
        );
        assert_eq!(h.thread, Some("init"));
        assert_eq!(h.source_location, Some("util/syscall_sandbox.cpp:925"));
        assert_eq!(h.function, Some("SetSyscallSandboxPolicy"));
        assert_eq!(h.category, Some("util"));
        assert_eq!(h.message, "Syscall x");
    }

    #[test]
    fn lone_groups_and_wallet_names() {
        assert_eq!(split_line("2019-08-12T04:01:44Z [net] disconnecting peer=1").thread, Some("net"));
        let h = split_line("2019-08-12T04:01:44Z [mempool:info] x");
        assert_eq!((h.category, h.level, h.message), (Some("mempool"), Some("info"), "x"));
        let h = split_line("2026-11-25T01:00:35Z [httpworker.3] [bmon] Wallet File Version = 10500");
        assert_eq!(
            (h.thread, h.category, h.message),
            (Some("httpworker.3"), None, "[bmon] Wallet File Version = 10500")
        );
        let h = split_line("2026-11-25 00:57:14 [Async RemoveForBlock] - Remove transactions");
        assert_eq!((h.thread, h.message), (Some("Async RemoveForBlock"), "- Remove transactions"));
    }

    #[test]
    fn no_prefix() {
        let h = split_line("2019-07-29T18:34:17Z   - Load block from disk: 0.00ms [23.45s]");
        assert_eq!((h.thread, h.message), (None, "  - Load block from disk: 0.00ms [23.45s]"));
        let h = split_line("# a comment");
        assert_eq!((h.logged_at_us, h.message), (None, "# a comment"));
    }
}
