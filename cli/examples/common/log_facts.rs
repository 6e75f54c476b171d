//! Log-line facts for benchmarks: real Core line shapes (the shared fixtures) with fresh hashes,
//! stamped now, published to `bmon.node.log` round robin over `NODES` nodes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_logparse::synth::vary;
use bmon_schemas::{Codec, Envelope, LogLineFact, NodeImplementation, SourceSeq};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/bitcoin-core-logs");
/// How many nodes the lines come from.
pub const NODES: usize = 10;

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn shapes() -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt" || e == "log") {
            lines.extend(std::fs::read_to_string(&path).unwrap().lines().filter(|l| l.len() > 40).map(String::from));
        }
    }
    lines
}

/// Publishes `n` lines (round robin over the nodes), stamped now.
pub struct Writer {
    producer: BaseProducer,
    codec: Codec,
    shapes: Vec<String>,
    seed: u64,
    offsets: [i64; NODES],
}

impl Writer {
    pub fn new(brokers: &str) -> Writer {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("compression.type", "lz4")
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .unwrap();
        Writer { producer, codec: Codec::default(), shapes: shapes(), seed: 7, offsets: [0; NODES] }
    }

    pub fn write(&mut self, n: usize) {
        for i in 0..n {
            let node = i % NODES;
            let shape = &self.shapes[(self.seed as usize) % self.shapes.len()];
            let body = vary(shape, &mut self.seed);
            // The node's timestamp: now, with micros, in front of the shape's message.
            let us = now_us();
            let message = body.split_once(' ').map_or(body.as_str(), |(_, m)| m);
            let line = format!("{} {message}", bmon_logparse::time::format_us(us));
            let offset = self.offsets[node];
            self.offsets[node] += line.len() as i64 + 1;
            let fact = LogLineFact {
                envelope: Envelope {
                    node_id: format!("node-{node}"),
                    network: "main".into(),
                    implementation: NodeImplementation::Core,
                    node_version: "v31.99".into(),
                    received_at_us: us,
                    source: SourceSeq { stream: "log".into(), epoch: "bench".into(), offset },
                },
                path: "/bench/debug.log".into(),
                end_offset: offset + line.len() as i64 + 1,
                line: line.into_bytes(),
                truncated: false,
                backlog: false,
            };
            let key = format!("node-{node}");
            let payload = self.codec.encode(&fact).unwrap();
            let p = bmon_kafka::partition_for(key.as_bytes(), 6);
            loop {
                match self.producer.send(BaseRecord::to("bmon.node.log").partition(p).key(&key).payload(&payload)) {
                    Ok(()) => break,
                    Err(_) => {
                        self.producer.poll(Duration::from_millis(10));
                    }
                }
            }
            if i % 1000 == 0 {
                self.producer.poll(Duration::ZERO);
            }
        }
        self.producer.flush(Duration::from_secs(120)).unwrap();
    }
}
