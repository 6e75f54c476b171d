#![allow(clippy::unwrap_used)]

use bmon_schemas::{Codec, EventBody, NodeEvent, PropagationSummary, Stage, samples};

use crate::model::Header;
use crate::{ReportBuilder, html};

fn header() -> Header {
    Header {
        replay_id: "r-1".into(),
        from_us: 1_700_000_000_000_000,
        to_us: 1_700_000_600_000_000,
        ..Header::default()
    }
}

fn tip_event(node: &str, at_us: i64, height: i64) -> NodeEvent {
    let mut e = samples::node_events().into_iter().find(|e| matches!(e.event, EventBody::UpdateTip(_))).unwrap();
    e.envelope.node_id = node.into();
    e.logged_at_us = Some(at_us);
    if let EventBody::UpdateTip(t) = &mut e.event {
        t.height = height;
        t.hash = format!("{height:064x}");
    }
    e
}

/// A builder fed a little of everything the sections show.
fn fed() -> ReportBuilder {
    let codec = Codec::default();
    let mut b = ReportBuilder::new();
    let mut s = samples::propagation_summary();
    s.stage = Stage::Tip;
    s.first_seen_us = header().from_us + 60_000_000;
    b.event(&codec.encode(&s).unwrap());
    let mut amended = s.clone();
    amended.revision += 1;
    amended.late_count = 1;
    amended.spread_us += 5_000;
    b.event(&codec.encode(&amended).unwrap());
    b.event(&codec.encode(&s).unwrap()); // an older revision again changes nothing
    b.event(&codec.encode(&samples::chain_reorg()).unwrap());
    b.event(&codec.encode(&samples::propagation_anomaly()).unwrap());
    let (spike, empty) = samples::mempool_events();
    b.event(&codec.encode(&spike).unwrap());
    b.event(&codec.encode(&empty).unwrap());
    let (_, mempool_div, _, template_div) = samples::divergence_events();
    b.event(&codec.encode(&mempool_div).unwrap());
    b.event(&codec.encode(&template_div).unwrap());
    for (i, node) in ["core-0", "core-1"].iter().enumerate() {
        b.node_event(&codec.encode(&tip_event(node, header().from_us + 1_000_000 * i as i64, 101)).unwrap());
        b.node_event(&codec.encode(&tip_event(node, header().from_us + 90_000_000, 102)).unwrap());
    }
    let (mut verdict, _) = samples::policy_events();
    verdict.accepted = false;
    verdict.at_us = header().from_us + 61_000_000;
    for _ in 0..3 {
        b.verdict(&codec.encode(&verdict).unwrap());
    }
    b.event(b"not a record");
    b
}

#[test]
fn the_builder_keeps_the_latest_revision_and_fills_each_section() {
    let b = fed();
    assert_eq!(b.undecodable(), 1);
    let r = b.finish(header());
    assert_eq!(r.propagation.summaries, 1, "one object and stage");
    let s: PropagationSummary = samples::propagation_summary();
    assert_eq!(r.propagation.slowest[0].spread_ms, (s.spread_us + 5_000) as f64 / 1000.0, "the amended revision");
    assert_eq!(r.header.late, 1);
    assert_eq!(r.propagation.lags.len(), s.lags.len(), "one series per node at the tip stage");
    assert!(r.propagation.lags.iter().all(|l| l.lags_ms.windows(2).all(|w| w[0] <= w[1])), "sorted");
    assert_eq!(r.chain.tips.len(), 4);
    assert_eq!(r.chain.reorgs.len(), 1);
    assert_eq!(r.propagation.anomalies.len(), 1);
    assert_eq!(r.mempool.rejections.len(), 1, "three rejections in one minute, one node, one reason");
    assert_eq!(r.mempool.rejections[0].count, 3);
    assert_eq!(r.mempool.similarity.len(), 2, "a mempool and a template reading");
    assert_eq!(r.events.get("propagation_summary"), Some(&3));
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<crate::Report>(&json).unwrap(), r, "the JSON reads back");
}

#[test]
fn the_page_is_self_contained_and_holds_every_plot() {
    let r = fed().finish(header());
    let page = html::render(&r);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 6, "two lag plots, spread, tips, rejections, similarity");
    for fetch in ["<script", "src=", "href=", "url(", "@import", "http://", "https://"] {
        let around = |i: usize| {
            let start = (0..=i.saturating_sub(40)).rev().find(|k| page.is_char_boundary(*k)).unwrap_or(0);
            let end = ((i + 40).min(page.len())..=page.len()).find(|k| page.is_char_boundary(*k)).unwrap_or(page.len());
            &page[start..end]
        };
        let fetches: Vec<&str> = page.match_indices(fetch).map(|(i, _)| around(i)).collect();
        // SVG elements carry their namespace URI (an identifier, never fetched).
        let real: Vec<&&str> = fetches.iter().filter(|c| !c.contains("xmlns")).collect();
        assert!(real.is_empty(), "{fetch}: {real:?}");
    }
    assert!(page.contains("The whole range was read") || page.contains("Incomplete"));
}

#[test]
fn an_incomplete_empty_report_says_so_and_still_renders() {
    let mut h = header();
    h.complete = false;
    let r = ReportBuilder::new().finish(h);
    let page = html::render(&r);
    assert!(page.contains("Incomplete"));
    assert!(page.contains("no data in the range"));
    assert!(page.contains("none in the range"));
}

#[test]
fn text_from_records_is_escaped() {
    assert_eq!(html::escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
}
