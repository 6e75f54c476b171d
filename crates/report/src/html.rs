//! The report as one self-contained HTML page: inline CSS and SVG, no script, no fetch.

use std::fmt::Write as _;

use bmon_logparse::time::format_us;

use crate::build::stage_name;
use crate::model::{LagSeries, Report};
use crate::plots::{self, PlotError};

/// Rows a table shows before it points to the JSON for the rest.
pub const MAX_ROWS: usize = 200;

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:1px solid #ccc;margin-top:32px}\
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;font-size:12px;margin:6px 0}\
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}\
.kv td:first-child{font-weight:600;white-space:nowrap}.mono{font-family:ui-monospace,monospace}\
.warn{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px;margin:12px 0}\
.ok{background:#e8f5e9;border:1px solid #8bc34a;padding:8px 12px;margin:12px 0}.muted{color:#777}\
figure{margin:10px 0}svg{max-width:100%;height:auto}";

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(us: i64) -> String {
    format_us(us)
}

fn short(hash: &str) -> String {
    if hash.is_ascii() && hash.len() > 16 {
        format!("{}…{}", &hash[..8], &hash[hash.len() - 8..])
    } else {
        hash.to_owned()
    }
}

/// A table of `rows` under `head`; cells are escaped here.
fn table(out: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">none in the range</p>\n");
        return;
    }
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for row in rows.iter().take(MAX_ROWS) {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if rows.len() > MAX_ROWS {
        let _ = writeln!(out, "<p class=\"muted\">… and {} more rows (see the JSON report)</p>", rows.len() - MAX_ROWS);
    }
}

fn figure(out: &mut String, svg: Result<String, PlotError>) {
    match svg {
        Ok(svg) => {
            out.push_str("<figure>");
            // The SVG's own XML declaration is not allowed inside HTML.
            out.push_str(svg.trim_start_matches(|c| c != '<').split_once("?>").map_or(svg.as_str(), |(_, rest)| rest));
            out.push_str("</figure>\n");
        }
        Err(e) => {
            let _ = writeln!(out, "<p class=\"warn\">{}</p>", escape(&e.to_string()));
        }
    }
}

fn header(out: &mut String, r: &Report) {
    let h = &r.header;
    let _ = writeln!(
        out,
        "<h1>bmon replay report</h1>\n<p class=\"mono\">{} → {} (UTC)</p>",
        escape(&time(h.from_us)),
        escape(&time(h.to_us))
    );
    if h.complete {
        out.push_str("<p class=\"ok\">The whole range was read.</p>\n");
    } else {
        let _ = writeln!(
            out,
            "<p class=\"warn\"><b>Incomplete:</b> the replay was stopped; this report holds what was read up to {}.</p>",
            escape(&time(h.end_us))
        );
    }
    let sum = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
    let kv = [
        ("replay id", h.replay_id.clone()),
        ("processors", h.processors.join(", ")),
        ("added (needed by those chosen)", if h.added.is_empty() { "none".into() } else { h.added.join(", ") }),
        ("nodes", if h.nodes.is_empty() { "all".into() } else { h.nodes.join(", ") }),
        ("network", h.network.clone().unwrap_or_else(|| "all".into())),
        ("records read", format!("{} ({})", sum(&h.records_read), fmt_map(&h.records_read))),
        ("records produced", format!("{} ({})", sum(&h.records_produced), fmt_map(&h.records_produced))),
        ("filtered out", h.filtered.to_string()),
        ("lost to retention while reading", h.lost.to_string()),
        ("rejected (dead letters live)", format!("{} ({})", sum(&h.rejected), fmt_map(&h.rejected))),
        ("duplicates dropped", h.duplicates.to_string()),
        ("late observations", h.late.to_string()),
        ("late mempool views", h.late_views.to_string()),
        (
            "state warm-up",
            format!(
                "from {}{}; {} records produced before the range left out",
                time(h.warmup_from_us),
                if h.warmup_from_us > h.warmup_wanted_from_us {
                    format!(" (wanted {}: cut by retention)", time(h.warmup_wanted_from_us))
                } else {
                    String::new()
                },
                h.warmup_outputs
            ),
        ),
        ("time moved to", time(h.end_us)),
        ("bmon", format!("{} ({})", h.bmon_version, h.git_commit)),
        ("config sha256", if h.config_hash.is_empty() { "defaults".into() } else { h.config_hash.clone() }),
        ("wall time", format!("{:.2} s", h.wall_time_s)),
        ("generated", time(h.generated_at_us)),
    ];
    out.push_str("<table class=\"kv\">");
    for (k, v) in kv {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(&v));
    }
    out.push_str("</table>\n<details><summary>resolved offsets per partition</summary>\n");
    table(
        out,
        &["topic", "partition", "start", "end", "records"],
        h.partitions.iter().map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.start.to_string(),
                p.end.to_string(),
                (p.end - p.start).to_string(),
            ]
        }),
    );
    out.push_str("</details>\n");
}

fn fmt_map(m: &std::collections::BTreeMap<String, u64>) -> String {
    m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

fn propagation(out: &mut String, r: &Report) {
    let p = &r.propagation;
    let _ =
        writeln!(out, "<h2>Propagation</h2>\n<p>{} summaries (latest revision per object and stage).</p>", p.summaries);
    let of = |stage: &str| p.lags.iter().filter(|s| s.stage == stage).collect::<Vec<&LagSeries>>();
    figure(out, plots::lag_cdf("block lag per node (tip stage)", &of(&stage_name(bmon_schemas::Stage::Tip))));
    figure(
        out,
        plots::lag_cdf("transaction lag per node (mempool accept)", &of(&stage_name(bmon_schemas::Stage::TxAccept))),
    );
    figure(out, plots::spread(r.header.from_us, r.header.end_us, &p.spread));
    out.push_str("<h3>Slowest blocks</h3>\n");
    let nodes: std::collections::BTreeSet<&String> = p.slowest.iter().flat_map(|b| b.lags_ms.keys()).collect();
    let mut head = vec!["block", "first node", "first seen", "spread ms"];
    head.extend(nodes.iter().map(|n| n.as_str()));
    head.push("missing");
    table(
        out,
        &head,
        p.slowest.iter().map(|b| {
            let mut row =
                vec![short(&b.hash), b.first_node.clone(), time(b.first_seen_us), format!("{:.1}", b.spread_ms)];
            row.extend(nodes.iter().map(|n| b.lags_ms.get(*n).map_or("—".into(), |l| format!("{l:.1}"))));
            row.push(b.missing.join(", "));
            row
        }),
    );
    out.push_str("<h3>Anomalies</h3>\n");
    table(
        out,
        &["object", "stage", "spread ms", "threshold ms", "first node", "last node"],
        p.anomalies.iter().map(|a| {
            vec![
                short(&a.hash),
                stage_name(a.stage),
                format!("{:.1}", a.spread_us as f64 / 1000.0),
                format!("{:.1}", a.threshold_us as f64 / 1000.0),
                a.first_node.clone(),
                a.last_node.clone(),
            ]
        }),
    );
}

fn chain(out: &mut String, r: &Report) {
    let c = &r.chain;
    out.push_str("<h2>Chain</h2>\n");
    figure(out, plots::tips(r.header.from_us, r.header.end_us, c));
    out.push_str("<h3>Reorgs</h3>\n");
    table(
        out,
        &["when", "node", "depth", "old tip", "new tip", "fork height"],
        c.reorgs.iter().map(|e| {
            vec![
                time(e.detected_at_us),
                e.node_id.clone(),
                e.depth.to_string(),
                format!("{} @{}", short(&e.old_tip), e.old_height),
                format!("{} @{}", short(&e.new_tip), e.new_height),
                e.fork_height.to_string(),
            ]
        }),
    );
    out.push_str("<h3>Selfish-mining suspects</h3>\n");
    table(
        out,
        &["node", "depth", "branch", "span ms", "new tip"],
        c.selfish.iter().map(|e| {
            vec![
                e.node_id.clone(),
                e.depth.to_string(),
                e.branch_length.to_string(),
                format!("{:.0}", e.span_us as f64 / 1e3),
                short(&e.new_tip),
            ]
        }),
    );
    out.push_str("<h3>Stale tips</h3>\n");
    table(
        out,
        &["node", "tip", "height", "age s", "limit s"],
        c.stale.iter().map(|e| {
            vec![
                e.node_id.clone(),
                short(&e.hash),
                e.height.to_string(),
                (e.age_us / 1_000_000).to_string(),
                (e.limit_us / 1_000_000).to_string(),
            ]
        }),
    );
    out.push_str("<h3>Invalid blocks</h3>\n");
    table(
        out,
        &["when", "node", "block", "height", "reason", "origin"],
        c.invalid.iter().map(|e| {
            vec![
                time(e.seen_at_us),
                e.node_id.clone(),
                e.hash.as_deref().map_or("—".into(), short),
                e.height.map_or("—".into(), |h| h.to_string()),
                e.reason.clone(),
                e.origin.clone(),
            ]
        }),
    );
    out.push_str("<h3>Lagging spans</h3>\n");
    table(
        out,
        &["when", "node", "state", "behind", "node height", "best height (node)"],
        c.lagging.iter().map(|e| {
            vec![
                time(e.at_us),
                e.node_id.clone(),
                if e.lagging { "lagging".into() } else { "caught up".into() },
                e.blocks_behind.to_string(),
                e.node_height.to_string(),
                format!("{} ({})", e.best_height, e.best_node),
            ]
        }),
    );
    out.push_str("<h3>Chain splits and inflation checks</h3>\n");
    table(
        out,
        &["when", "kind", "detail"],
        c.splits
            .iter()
            .map(|e| {
                vec![
                    time(e.at_us),
                    if e.split { "split".into() } else { "split over".into() },
                    format!("height {}, {} tips", e.height, e.tips.len()),
                ]
            })
            .chain(c.inflation.iter().map(|e| {
                vec![
                    time(e.at_us),
                    format!("inflation ({})", e.check),
                    format!("{}: {} sat over the schedule at height {}", e.node_id, e.excess_sat, e.to_height),
                ]
            })),
    );
}

fn mempool(out: &mut String, r: &Report) {
    let m = &r.mempool;
    out.push_str("<h2>Mempool</h2>\n");
    figure(out, plots::rejections(r.header.from_us, r.header.end_us, &m.rejections));
    figure(out, plots::similarity(r.header.from_us, r.header.end_us, &m.similarity));
    out.push_str("<h3>Rejection spikes</h3>\n");
    table(
        out,
        &["bucket", "node", "reason", "count", "baseline"],
        m.spikes.iter().map(|e| {
            vec![
                time(e.bucket_start_us),
                e.node_id.clone(),
                e.reason.clone(),
                e.count.to_string(),
                format!("{:.1}", e.baseline),
            ]
        }),
    );
    out.push_str("<h3>Policy divergences</h3>\n");
    let verdicts = |v: &[bmon_schemas::NodeVerdict]| {
        v.iter().map(|n| format!("{} ({})", n.node_id, n.reason)).collect::<Vec<_>>().join(", ")
    };
    table(
        out,
        &["first", "tx", "accepted by", "rejected by"],
        m.policy
            .iter()
            .map(|e| vec![time(e.first_at_us), short(&e.txid), verdicts(&e.accepted_by), verdicts(&e.rejected_by)]),
    );
    out.push_str("<h3>Mempool divergences</h3>\n");
    table(
        out,
        &["when", "node", "diverged", "missing", "extra", "conflicts", "similarity"],
        m.divergences.iter().map(|e| {
            vec![
                time(e.at_us),
                e.node_id.clone(),
                e.diverged.to_string(),
                e.missing.to_string(),
                e.extra.to_string(),
                e.conflicts.to_string(),
                format!("{:.3}", e.similarity),
            ]
        }),
    );
    out.push_str("<h3>Template divergences</h3>\n");
    table(
        out,
        &["when", "node", "height", "similarity", "missing", "extra", "fees (median)"],
        m.templates.iter().map(|e| {
            vec![
                time(e.at_us),
                e.node_id.clone(),
                e.height.to_string(),
                format!("{:.3}", e.similarity),
                e.missing.to_string(),
                e.extra.to_string(),
                format!("{} ({})", e.fees, e.median_fees),
            ]
        }),
    );
    out.push_str("<h3>Conflicts and empty mempools</h3>\n");
    table(
        out,
        &["when", "kind", "detail"],
        m.conflicts
            .iter()
            .map(|e| {
                vec![
                    time(e.at_us),
                    "conflict".into(),
                    format!(
                        "{} held by {}; refused by {}",
                        short(&e.txid),
                        e.held_by.join(", "),
                        verdicts(&e.refused_by)
                    ),
                ]
            })
            .chain(m.empty.iter().map(|e| {
                vec![
                    time(e.at_us),
                    if e.empty { "empty".into() } else { "refilled".into() },
                    format!("{} (others hold up to {})", e.node_id, e.others_max_size),
                ]
            })),
    );
}

fn alerts(out: &mut String, r: &Report) {
    out.push_str("<h2>Alerts that would have fired</h2>\n");
    let a = &r.alerts;
    let _ = writeln!(out, "<p class=\"{}\">{}</p>", if a.evaluated { "muted" } else { "warn" }, escape(&a.note));
    if a.evaluated {
        table(
            out,
            &["alert", "labels", "from", "to"],
            a.firing.iter().map(|f| vec![f.alert.clone(), fmt_labels(&f.labels), time(f.from_us), time(f.to_us)]),
        );
    }
}

fn fmt_labels(m: &std::collections::BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect::<Vec<_>>().join(", ")
}

/// The page.
pub fn render(r: &Report) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bmon replay {}</title><style>{CSS}</style></head><body>\n",
        escape(&r.header.replay_id)
    );
    header(&mut out, r);
    propagation(&mut out, r);
    chain(&mut out, r);
    mempool(&mut out, r);
    alerts(&mut out, r);
    out.push_str("<h2>Events by kind</h2>\n");
    table(&mut out, &["kind", "count"], r.events.iter().map(|(k, v)| vec![k.clone(), v.to_string()]));
    out.push_str("</body></html>\n");
    out
}
