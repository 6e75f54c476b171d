//! Writes a mainnet-like debug.log for timing `bmon parse-log` end to end: the line shapes of
//! every Core fixture in `tests/fixtures`, cycled, with fresh hashes.
//!
//! Run: `cargo run --release -p bmon --example mainnet_log -- /tmp/mainnet.log 1000000`, then
//! `time target/release/bmon parse-log /tmp/mainnet.log > /dev/null`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark helper: fail loudly.

use std::io::{BufWriter, Write};

use bmon_logparse::synth::mainnet_like;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "/tmp/mainnet.log".into());
    let n: usize = args.next().map_or(1_000_000, |s| s.parse().unwrap());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let mut shapes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("core-") && name.ends_with(".log") {
            shapes.extend(String::from_utf8_lossy(&std::fs::read(&p).unwrap()).lines().map(String::from));
        }
    }
    let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in mainnet_like(&shapes, n) {
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    println!("wrote {n} lines to {path}");
}
