//! A batch Loki refuses for its content is split until the refused entry stands alone, which
//! is counted and dead-lettered; every other entry reaches the store, and the stream goes on.
//!
//! VictoriaLogs 1.112 refuses no well-formed push (it has no request size limit, and drops
//! over-long lines with a 2xx), and Loki cannot run here. So the sink pushes (as JSON) to a
//! small HTTP front started by this test that applies Loki's `max_line_size` rule (HTTP 400,
//! "line too long", for a request holding a line over 4 KiB) and forwards every other request
//! unchanged to the real VictoriaLogs, relaying its answer. What is asserted is read from the
//! real VictoriaLogs and the real broker: all lines but the long one held once, the long one on
//! `bmon.deadletter` with its offset and reason, and the sink's refusal counter at 1.
//!
//! The lines come from a log file the test writes (Core's line format), so that one of them can
//! be long: no node prints a 6 KiB line on request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;
mod loki;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use bmon_schemas::DeadLetter;
use bmon_testbed::{TestBed, poll_until, stop_all};
use common::*;
use loki::*;

const MAX_LINE: usize = 4096;

/// Serves one HTTP/1.1 request per connection: 400 if a line in the JSON push is too long,
/// else the request forwarded to `target` and its answer relayed.
fn front(listener: TcpListener, target: String) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0usize;
        let mut path = String::new();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            if path.is_empty() {
                path = line.split(' ').nth(1).unwrap_or("/").to_owned();
                continue;
            }
            if let Some((k, v)) = line.split_once(": ") {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k.to_owned(), v.to_owned()));
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            continue;
        }
        let push: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let too_long = push["streams"].as_array().into_iter().flatten().any(|s| {
            s["values"].as_array().into_iter().flatten().any(|v| v[1].as_str().is_some_and(|l| l.len() > MAX_LINE))
        });
        let (status, text) = if too_long {
            (400, format!("max entry size '{MAX_LINE}' bytes exceeded for stream: line too long"))
        } else {
            let mut req = minreq::post(format!("{target}{path}")).with_body(body).with_timeout(30);
            for (k, v) in &headers {
                if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
                    req = req.with_header(k, v);
                }
            }
            match req.send() {
                Ok(r) => (r.status_code, r.as_str().unwrap_or_default().to_owned()),
                Err(e) => (502, e.to_string()),
            }
        };
        let _ =
            write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len());
    }
}

#[test]
fn a_refused_entry_is_dead_lettered_and_the_rest_goes_on() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let vl_url = bed.victoria_logs(&[]).unwrap().url();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let front_url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || front(listener, vl_url));

    // A node's log, written by the test: 300 lines, the 150th far too long for Loki.
    let log = bed.dir().join("writer/debug.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(&log).unwrap();
    let long_at = 149;
    let base = 1_764_633_600_000_000i64; // 2025-12-02T00:00:00Z
    for i in 0..300i64 {
        let text = if i == long_at { format!("huge {}", "x".repeat(6000)) } else { format!("line {i} of the writer") };
        let us = base + i * 1000;
        writeln!(file, "{} [validation] {text}", bmon_logparse_format(us)).unwrap();
    }
    file.flush().unwrap();
    let mut producer = start_producer(&bed, "writer", "core", &log, &brokers);

    let port = bed.service_port(1);
    let state = bed.dir().join("loki-state");
    let section = format!(
        "[loki]\nurl = \"{front_url}\"\npush_path = \"/insert/loki/api/v1/push\"\nformat = \"json\"\nstate_dir = \"{}\"\nbatch_wait_ms = 2000\n",
        state.display()
    );
    let mut sink = start_processor(&bed, "loki", "0", &section, &brokers, port);

    let all = expected(&log, "writer", "regtest", "core");
    let long_line = all[long_at as usize].clone();
    let want = sorted(all.into_iter().filter(|k| *k != long_line).collect());
    let v = bed.victoria_logs(&[]).unwrap();
    let got = wait_held(v, "_stream:{node=\"writer\"}", &want, Duration::from_secs(120));
    let (missing, extra) = diff(&want, &got);
    assert!(got == want, "all lines but the long one, once: missing {missing:?}, extra {extra:?}");

    // The long one is on the dead-letter topic, with its source position and the reason.
    let mut dead = TopicReader::<DeadLetter>::new(&brokers, "bmon.deadletter", 1);
    assert!(
        dead.read_until(Duration::from_secs(60), |d| d.iter().any(|x| x.processor == "loki")),
        "a dead letter from the sink"
    );
    let letters: Vec<&DeadLetter> = dead.facts.iter().filter(|d| d.processor == "loki").collect();
    assert_eq!(letters.len(), 1, "exactly the one refused entry is dead-lettered: {letters:?}");
    let d = letters[0];
    assert_eq!(d.topic, "bmon.node.log");
    assert!(d.reason.contains("too_large") && d.reason.contains("line too long"), "reason: {}", d.reason);
    let entry: serde_json::Value = serde_json::from_slice(&d.payload).unwrap();
    assert_eq!(entry["line"].as_str().unwrap(), long_line.2, "the dead letter carries the refused line");
    let refused = poll_until("the refusal counter", Duration::from_secs(30), Duration::from_millis(200), || {
        let (_, body) = http_get(&format!("http://127.0.0.1:{port}/metrics"))?;
        body.lines()
            .find(|l| l.starts_with("bmon_loki_refused_entries_total{reason=\"too_large\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    })
    .unwrap();
    assert_eq!(refused, 1.0, "one entry refused, counted by reason");

    // The stream goes on: lines written after the refusal arrive too.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(file, "{} [validation] after the refusal", bmon_logparse_format(base + 400_000)).unwrap();
    file.flush().unwrap();
    let all = expected(&log, "writer", "regtest", "core");
    let want = sorted(all.into_iter().filter(|k| *k != long_line).collect());
    let got = wait_held(v, "_stream:{node=\"writer\"}", &want, Duration::from_secs(60));
    assert!(got == want, "a line after the refusal is held too");
    stop_all([&mut producer, &mut sink], Duration::from_secs(10));
}

/// `2025-12-02T00:00:00.001000Z`, as Core prints with -logtimemicros.
fn bmon_logparse_format(us: i64) -> String {
    let secs = us / 1_000_000;
    let rem = secs % 86_400;
    format!("2025-12-02T{:02}:{:02}:{:02}.{:06}Z", rem / 3600, rem % 3600 / 60, rem % 60, us % 1_000_000)
}
