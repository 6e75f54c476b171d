//! Health probes and shutdown while the broker is gone.
//!
//! One Core node, its producer, logparse and propagation, each serving `/healthz` and `/readyz`.
//! With the broker stopped:
//! - every probe of every process answers within 100 ms (they read atomics; nothing waits on the
//!   broker);
//! - SIGTERM ends each process within 5 s, exit status 0;
//! - the next start, with the broker back, loses nothing: every block mined before and during
//!   the shutdown gets its tip summary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bmon_schemas::{PropagationSummary, Stage};
use bmon_testbed::{Implementation, Managed, TestBed, poll_until};
use common::*;

/// The pipeline's three processes, with their listener ports.
struct Pipeline {
    procs: Vec<(Managed, u16)>,
}

fn start(bed: &TestBed, brokers: &str, round: u16) -> Pipeline {
    let node = bed.network(0).node(0);
    let ports: Vec<u16> = (0..3).map(|i| bed.service_port(1 + round * 3 + i)).collect();
    let sources = format!(
        "[log]\npath = \"{}\"\npoll_ms = 50\n[service]\nlisten = \"127.0.0.1:{}\"\n",
        node.log_path().display(),
        ports[0]
    );
    let producer = start_producer_with(bed, node.name(), "core", &sources, brokers);
    let logparse = start_processor(bed, "logparse", "0", "", brokers, ports[1]);
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [\"{}\"]\n",
        bed.dir().join("propagation-state").display(),
        node.name()
    );
    let propagation = start_processor(bed, "propagation", "0", &extra, brokers, ports[2]);
    Pipeline { procs: vec![(producer, ports[0]), (logparse, ports[1]), (propagation, ports[2])] }
}

fn tip_summaries(s: &[PropagationSummary]) -> BTreeSet<String> {
    s.iter().filter(|x| x.stage == Stage::Tip).map(|x| x.hash.clone()).collect()
}

#[test]
fn probes_answer_and_sigterm_exits_while_the_broker_is_gone() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    bed.start_network(Implementation::Core, 1).unwrap();
    let mut pipeline = start(&bed, &brokers, 0);
    for (p, port) in &pipeline.procs {
        poll_until(&format!("{} ready", p.name()), Duration::from_secs(90), Duration::from_millis(100), || {
            http_get(&format!("http://127.0.0.1:{port}/readyz")).filter(|(c, _)| *c == 200)
        })
        .unwrap();
    }
    let mut blocks = bed.network(0).mine(0, 2).unwrap();
    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    assert!(reader.read_until(Duration::from_secs(90), |s| blocks.iter().all(|b| tip_summaries(s).contains(b))));

    bed.broker().unwrap().stop();
    blocks.extend(bed.network(0).mine(0, 2).unwrap());
    for (p, port) in &pipeline.procs {
        for path in ["healthz", "readyz"] {
            let t = Instant::now();
            let answer = http_get(&format!("http://127.0.0.1:{port}/{path}"));
            let took = t.elapsed();
            assert!(answer.is_some(), "{} /{path} did not answer during the outage", p.name());
            assert!(took < Duration::from_millis(100), "{} /{path} took {took:?}", p.name());
        }
        let (code, _) = http_get(&format!("http://127.0.0.1:{port}/healthz")).unwrap();
        assert_eq!(code, 200, "{} is not stuck, only waiting for the broker", p.name());
    }
    // Processors first, as an operator's rollout would; each must exit within 5 s.
    for (p, _) in pipeline.procs.iter_mut().rev() {
        let t = Instant::now();
        let status = p.terminate(Duration::from_secs(5));
        let took = t.elapsed();
        let status = status.unwrap_or_else(|| panic!("{} did not exit within 5 s of SIGTERM", p.name()));
        assert!(status.success(), "{} exit status {status}", p.name());
        eprintln!("{} exited {took:?} after SIGTERM with the broker gone", p.name());
    }
    blocks.extend(bed.network(0).mine(0, 1).unwrap());

    bed.broker().unwrap().restart().unwrap();
    let _pipeline = start(&bed, &brokers, 1);
    blocks.extend(bed.network(0).mine(0, 1).unwrap());
    assert!(
        reader.read_until(Duration::from_secs(180), |s| blocks.iter().all(|b| tip_summaries(s).contains(b))),
        "tip summaries missing after the restart: {:?}",
        blocks.iter().filter(|b| !tip_summaries(&reader.facts).contains(*b)).collect::<Vec<_>>()
    );
}
