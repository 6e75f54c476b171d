//! Parser throughput on a mainnet-like log: every Core fixture's line shapes, cycled with fresh
//! hashes. Run: `cargo bench -p bmon-logparse --bench parse`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use bmon_logparse::Parser;
use bmon_logparse::synth::mainnet_like;
use bmon_schemas::NodeImplementation;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LINES: usize = 100_000;

fn shapes() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("core-") && name.ends_with(".log") {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            lines.extend(text.lines().map(String::from));
        }
    }
    lines
}

fn parse(c: &mut Criterion) {
    let lines = mainnet_like(&shapes(), LINES);
    let parser = Parser::new(NodeImplementation::Core);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("mainnet_like_100k_lines", |b| {
        let mut events = Vec::with_capacity(4);
        b.iter(|| {
            let mut n = 0usize;
            for line in &lines {
                events.clear();
                parser.parse_line(black_box(line), &mut events);
                n += events.len();
            }
            n
        });
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
