//! The parser never panics: arbitrary bytes, and real fixture lines truncated or garbled at
//! random. A fixed budget of cases per property (`PROPTEST_CASES` overrides it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bmon_logparse::{Parser, detect, event_json};
use bmon_schemas::NodeImplementation;
use proptest::prelude::*;

const IMPLS: [NodeImplementation; 4] =
    [NodeImplementation::Core, NodeImplementation::Bsv, NodeImplementation::Litecoin, NodeImplementation::Unknown];

fn fixture_lines() -> Vec<Vec<u8>> {
    // At run time: a test binary cached from another checkout must read this one's files.
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../tests/fixtures");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let bytes = std::fs::read(&path).unwrap();
            // A sample of each file keeps the strategy small.
            lines.extend(bytes.split(|&b| b == b'\n').step_by(7).map(<[u8]>::to_vec));
        }
    }
    lines
}

fn parse_all(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for implementation in IMPLS {
        let mut events = Vec::new();
        let header = Parser::new(implementation).parse_line(&text, &mut events);
        for e in &events {
            let _ = event_json(1, &header, e);
        }
    }
    let _ = detect([text.as_ref()]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        parse_all(&bytes);
    }

    #[test]
    fn ascii_near_log_syntax(s in "[0-9a-f TZ:.\\-\\[\\]=(),'a-zA-Z]{0,200}") {
        parse_all(s.as_bytes());
        parse_all(format!("2023-05-16T05:49:52.202998Z {s}").as_bytes());
    }

    #[test]
    fn truncated_and_garbled_real_lines(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let lines = LINES.with(Clone::clone);
        let line = &lines[pick.index(lines.len())];
        let truncated = &line[..cut.index(line.len() + 1)];
        parse_all(truncated);
        let mut garbled = line.clone();
        for (at, byte) in flips {
            if !garbled.is_empty() {
                let i = at.index(garbled.len());
                garbled[i] = byte;
            }
        }
        parse_all(&garbled);
    }
}

thread_local! {
    static LINES: Vec<Vec<u8>> = fixture_lines();
}
