//! Which node software wrote a log, from its own lines.

use bmon_schemas::NodeImplementation;

use crate::prefix::split_line;

/// Guesses the implementation from a sample of lines: the start-up banner decides; without one,
/// BSV's `txn= ` forms and its space-separated timestamps; otherwise Core.
pub fn detect<'a>(lines: impl IntoIterator<Item = &'a str>) -> NodeImplementation {
    let mut bsv_hints = 0usize;
    let mut core_hints = 0usize;
    for line in lines {
        let h = split_line(line);
        let m = h.message;
        if m.starts_with("Bitcoin SV version") {
            return NodeImplementation::Bsv;
        }
        if m.starts_with("Litecoin Core") && m.contains(" version ") {
            return NodeImplementation::Litecoin;
        }
        if m.starts_with("Bitcoin Core version") || m.starts_with("Bitcoin version") {
            return NodeImplementation::Core;
        }
        if m.contains("standard txn= ") || h.thread.is_some_and(|t| t.ends_with("-HTTPServer")) {
            bsv_hints += 1;
        }
        if line.as_bytes().get(10) == Some(&b'T') {
            core_hints += 1;
        }
    }
    if bsv_hints > core_hints { NodeImplementation::Bsv } else { NodeImplementation::Core }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_decide() {
        assert_eq!(detect(["2026-11-25 00:57:09 [main] Bitcoin SV version v1.0.13-dev"]), NodeImplementation::Bsv);
        assert_eq!(
            detect(["x", "2026-11-25T01:00:35.181546Z [init] Litecoin Core version v0.21.2.1-gfce5d (release build)"]),
            NodeImplementation::Litecoin
        );
        assert_eq!(
            detect(["2019-08-12T04:01:44Z [msghand] received: inv (289 bytes) peer=4476"]),
            NodeImplementation::Core
        );
        assert_eq!(
            detect(["2026-11-25 00:57:14 [worker1-L-TxnValidatorPool] p2p: standard txn= ab rejected x (code 258)"]),
            NodeImplementation::Bsv
        );
    }
}
