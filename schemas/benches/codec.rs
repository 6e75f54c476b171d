//! Codec hot path: encoding and decoding the highest-volume records.

#![allow(missing_docs, clippy::unwrap_used)]

use bmon_schemas::{Codec, LogLineFact, Observation, samples};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn codec(c: &mut Criterion) {
    let codec = Codec::default();
    let line = samples::log_line();
    let obs = samples::observation();
    let line_bytes = codec.encode(&line).unwrap();
    let obs_bytes = codec.encode(&obs).unwrap();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_log_line_fact", |b| b.iter(|| codec.encode(std::hint::black_box(&line)).unwrap()));
    g.bench_function("decode_log_line_fact", |b| {
        b.iter(|| codec.decode::<LogLineFact>(std::hint::black_box(&line_bytes)).unwrap())
    });
    g.bench_function("encode_observation", |b| b.iter(|| codec.encode(std::hint::black_box(&obs)).unwrap()));
    g.bench_function("decode_observation", |b| {
        b.iter(|| codec.decode::<Observation>(std::hint::black_box(&obs_bytes)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
