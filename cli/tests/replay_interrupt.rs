//! Ctrl-C in the middle of `bmon replay`, against tansu: the replay stops reading, writes the
//! report of what it read so far marked incomplete, and exits non-zero.
//!
//! The range holds enough lines (written by `bmon produce` from a Core-style log) that the
//! replay is still reading when its first progress line comes, a second in; SIGINT is sent
//! then. That it was mid-way is checked from the progress line (read below total), not assumed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_report::Report;
use bmon_testbed::{TestBed, poll_until};
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TOPIC: &str = "bmon.node.log";
const LINES: usize = 150_000;

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

#[test]
fn ctrl_c_writes_what_was_read_marked_incomplete() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let from_s = now_us() / 1_000_000;
    let log = bed.dir().join("debug.log");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        let stamp = bmon_logparse::time::format_us(now_us());
        for i in 0..LINES {
            writeln!(f, "{stamp} [net] received: ping ({i}) peer=0").unwrap();
        }
    }
    let _producer = start_producer(&bed, "node-a", "core", &log, &brokers);
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let on_broker = || (0..6).map(|p| c.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).unwrap().1).sum::<i64>();
    poll_until("the lines on the broker", Duration::from_secs(300), Duration::from_millis(200), || {
        (on_broker() >= LINES as i64).then_some(())
    })
    .unwrap();
    let to_s = now_us() / 1_000_000 + 1;

    let config = bed.dir().join("replay.toml");
    std::fs::write(&config, format!("[kafka]\nbrokers = \"{brokers}\"\n")).unwrap();
    let out = bed.dir().join("interrupted.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bmon"))
        .args(["replay", "--config", config.to_str().unwrap(), "--processors", "logparse"])
        .args(["--from", &format!("@{from_s}"), "--to", &format!("@{to_s}"), "--out", out.to_str().unwrap()])
        .current_dir(repo_root())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let first = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the replay ended before any progress: {seen}");
        seen.push_str(&line);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if v["progress"] == TOPIC {
            break v;
        }
    };
    let (read, total) = (first["read"].as_u64().unwrap(), first["total"].as_u64().unwrap());
    assert_eq!(first["done"], false, "{first}");
    assert!(read < total, "the replay must still be reading when interrupted: {first}");
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let exit = poll_until("the replay to exit", Duration::from_secs(60), Duration::from_millis(50), || {
        child.try_wait().unwrap()
    })
    .unwrap();
    assert!(!exit.success(), "an interrupted replay exits non-zero: {rest}");
    assert!(rest.contains("interrupted"), "and says so: {rest}");

    let r: Report = serde_json::from_str(&std::fs::read_to_string(&out).expect(&rest)).unwrap();
    assert!(!r.header.complete, "the report is marked incomplete");
    let got = r.header.records_read.get(TOPIC).copied().unwrap_or(0);
    assert!(got >= read && got < total, "it holds what was read before the signal: {got} of {total} ({read} at it)");
    assert_eq!(total, LINES as u64, "the range held every line");
    let last = rest.lines().rev().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    assert_eq!(last.as_ref().map(|v| v["done"].clone()), Some(serde_json::json!(true)), "{rest}");
    eprintln!("interrupted at {got} of {total} records ({read} at the first progress line)");
}
