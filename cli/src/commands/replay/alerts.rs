//! The alerts the shipped rules would have fired over a replay, computed by Prometheus itself.
//!
//! While the replay runs, its own metrics (the families the rules read) are sampled every
//! [`STEP_S`] seconds of its clock ([`Sampler`]). At the end the samples are written as
//! OpenMetrics with their timestamps, turned into TSDB blocks by `promtool tsdb
//! create-blocks-from openmetrics`, and served by a throwaway `prometheus` on loopback; each
//! shipped alerting rule's expression (recording rules substituted in) is then queried over the
//! range with `query_range` at the same step, and a series that holds for the rule's `for:` is a
//! firing span. No PromQL is evaluated here.
//!
//! Without `prometheus` and `promtool` (on PATH, or `BMON_PROMETHEUS` / `BMON_PROMTOOL`) the
//! report says the rules were not evaluated, and why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bmon_report::model::{AlertFiring, Alerts};
use serde_norway::Value;

/// The sampling step, s (Prometheus' default scrape interval).
pub const STEP_S: i64 = 15;

/// The shipped rule files, as built into this binary.
const RULES: &[(&str, &str)] = &[
    ("propagation.rules.yml", include_str!("../../../../prometheus/rules/propagation.rules.yml")),
    ("chain.rules.yml", include_str!("../../../../prometheus/rules/chain.rules.yml")),
    ("mempool.rules.yml", include_str!("../../../../prometheus/rules/mempool.rules.yml")),
    ("loki.rules.yml", include_str!("../../../../prometheus/rules/loki.rules.yml")),
];

/// The replay's metrics every [`STEP_S`] of its clock, kept per metric family and series as
/// (time ms, value) pairs: a series' name and labels once, not once per sample.
///
/// [`Sampler::for_rules`] keeps only the families the shipped rules read: no other can change
/// what they find, and each one kept costs `promtool` and Prometheus time at the end.
#[derive(Debug, Default)]
pub struct Sampler {
    /// The families kept (`None`: every one).
    families: Option<std::collections::BTreeSet<String>>,
    next_ms: Option<i64>,
    last_ms: Option<i64>,
    /// Samples taken.
    pub taken: usize,
    /// Family → series (`name{labels}`) → (time ms, value text).
    series: BTreeMap<String, BTreeMap<String, Vec<(i64, String)>>>,
}

impl Sampler {
    /// A sampler of the families the shipped rules (alerting and recording) name.
    pub fn for_rules() -> Sampler {
        Sampler { families: Some(rule_families(RULES)), ..Sampler::default() }
    }

    /// The first and last sample times, ms.
    fn span_ms(&self) -> Option<(i64, i64)> {
        let times = self.series.values().flat_map(|f| f.values()).flat_map(|s| [s.first(), s.last()]).flatten();
        times.fold(None, |span, (t, _)| match span {
            None => Some((*t, *t)),
            Some((lo, hi)) => Some((lo.min(*t), hi.max(*t))),
        })
    }

    /// Takes a sample for each step boundary `now_ms` passed; `render` gives the metrics.
    pub fn observe(&mut self, now_ms: i64, render: impl Fn() -> String) {
        let next = *self.next_ms.get_or_insert(now_ms);
        if now_ms >= next {
            self.add(now_ms, &render());
            self.next_ms = Some(next.max(now_ms - STEP_S * 1000) + STEP_S * 1000);
        }
    }

    /// Adds the last sample at `end_ms`: samples at or after it are dropped first, so times stay
    /// increasing (the event clock can run past the end when a producer's clock is ahead).
    pub fn finish(&mut self, end_ms: i64, text: &str) {
        for lines in self.series.values_mut().flat_map(BTreeMap::values_mut) {
            lines.retain(|(t, _)| *t < end_ms);
        }
        if self.last_ms.is_some_and(|last| last >= end_ms) {
            self.last_ms = None;
        }
        self.add(end_ms, text);
    }

    fn add(&mut self, t_ms: i64, text: &str) {
        if self.last_ms.is_some_and(|last| t_ms <= last) {
            return;
        }
        self.last_ms = Some(t_ms);
        self.taken += 1;
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let family = &series[..series.find('{').unwrap_or(series.len())];
            if self.families.as_ref().is_some_and(|f| !f.contains(family)) {
                continue;
            }
            let by_series = match self.series.get_mut(family) {
                Some(m) => m,
                None => self.series.entry(family.to_owned()).or_default(),
            };
            match by_series.get_mut(series) {
                Some(v) => v.push((t_ms, value.to_owned())),
                None => {
                    by_series.insert(series.to_owned(), vec![(t_ms, value.to_owned())]);
                }
            }
        }
    }

    /// OpenMetrics text of the samples: each family's lines together, each series in time
    /// order, timestamps in seconds with exact milliseconds.
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        for by_series in self.series.values() {
            for (series, points) in by_series {
                for (t, v) in points {
                    out.push_str(&format!("{series} {v} {}.{:03}\n", t.div_euclid(1000), t.rem_euclid(1000)));
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// An alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Its name.
    pub name: String,
    /// Its expression, recording rules substituted.
    pub expr: String,
    /// Its `for:`, s.
    pub for_s: i64,
}

/// Every name a rule of `files` (YAML text) could read a metric by: the identifiers of its
/// expressions (a superset: function and label names come too, and match no family).
fn rule_families(files: &[(&str, &str)]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (_, text) in files {
        let Ok(rules) = rules_of(text) else { continue };
        for rule in &rules {
            let expr = rule.get("expr").and_then(Value::as_str).unwrap_or_default();
            let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
            names.extend(expr.split(|c: char| !ident(c)).filter(|w| !w.is_empty()).map(str::to_owned));
        }
    }
    names
}

/// Every rule of a Prometheus rule file (YAML text), recording and alerting, group by group.
fn rules_of(text: &str) -> Result<Vec<Value>, serde_norway::Error> {
    let doc: Value = serde_norway::from_str(text)?;
    let groups = doc.get("groups").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
    Ok(groups.iter().filter_map(|g| g.get("rules").and_then(Value::as_sequence)).flatten().cloned().collect())
}

/// A Prometheus duration (`5m`, `1h30m`, `90s`) in seconds.
fn duration_s(s: &str) -> Option<i64> {
    let mut total = 0;
    let mut n = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            n.push(c);
            continue;
        }
        let v: i64 = n.parse().ok()?;
        n.clear();
        total += v * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
    }
    n.is_empty().then_some(total)
}

/// The alerting rules of `files` (YAML text), with each recording rule's expression put in
/// place of its name where it is used as a bare selector. A rule using a recording rule with
/// label matchers or a range cannot be rewritten so and is returned in the second list.
pub fn alert_rules(files: &[(&str, &str)]) -> anyhow::Result<(Vec<AlertRule>, Vec<String>)> {
    let mut records: Vec<(String, String)> = Vec::new();
    let mut alerts = Vec::new();
    for (name, text) in files {
        for rule in &rules_of(text).with_context(|| format!("reading {name}"))? {
            let expr = rule.get("expr").and_then(Value::as_str).unwrap_or_default().trim().to_owned();
            if let Some(record) = rule.get("record").and_then(Value::as_str) {
                records.push((record.to_owned(), expr));
            } else if let Some(alert) = rule.get("alert").and_then(Value::as_str) {
                let for_s = match rule.get("for") {
                    None => Some(0),
                    Some(v) => v.as_str().map_or_else(|| v.as_i64(), duration_s),
                };
                let for_s = for_s.ok_or_else(|| anyhow!("{name}: {alert}: bad `for`"))?;
                alerts.push(AlertRule { name: alert.to_owned(), expr, for_s });
            }
        }
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for mut rule in alerts {
        let mut ok = true;
        for (record, expr) in &records {
            let mut rewritten = String::new();
            let mut rest = rule.expr.as_str();
            while let Some(i) = rest.find(record.as_str()) {
                let after = &rest[i + record.len()..];
                let bare_before =
                    rest[..i].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
                let next = after.trim_start().chars().next();
                let ident_after = after.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                if !bare_before || ident_after {
                    rewritten.push_str(&rest[..i + record.len()]);
                } else if matches!(next, Some('{' | '[')) {
                    ok = false;
                    rewritten.push_str(&rest[..i + record.len()]);
                } else {
                    rewritten.push_str(&rest[..i]);
                    rewritten.push('(');
                    rewritten.push_str(expr);
                    rewritten.push(')');
                }
                rest = after;
            }
            rewritten.push_str(rest);
            rule.expr = rewritten;
        }
        if ok { out.push(rule) } else { skipped.push(rule.name) }
    }
    Ok((out, skipped))
}

/// Firing spans of one series' true steps (`times`, s, sorted) for a rule held `for_s`.
pub fn firing_spans(times: &[i64], for_s: i64, step_s: i64) -> Vec<(i64, i64)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < times.len() {
        let start = times[i];
        let mut j = i;
        while j + 1 < times.len() && times[j + 1] - times[j] <= step_s {
            j += 1;
        }
        let fires_at = start + for_s;
        if times[j] >= fires_at {
            spans.push((fires_at, times[j]));
        }
        i = j + 1;
    }
    spans
}

fn tool(env: &str, name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    which::which(name).ok()
}

/// A series' labels.
type Labels = BTreeMap<String, String>;

/// One `query_range` over `[start_s, end_s]`: each series' labels and the times it held.
fn query_range(url: &str, expr: &str, start_s: i64, end_s: i64) -> anyhow::Result<Vec<(Labels, Vec<i64>)>> {
    let resp = minreq::get(format!("{url}/api/v1/query_range"))
        .with_param("query", expr)
        .with_param("start", start_s.to_string())
        .with_param("end", end_s.to_string())
        .with_param("step", format!("{STEP_S}s"))
        .with_timeout(60)
        .send()?;
    let body: serde_json::Value = serde_json::from_str(resp.as_str()?)?;
    if body["status"] != "success" {
        bail!("{}", body["error"]);
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default();
            let times = series["values"]
                .as_array()
                .map(|v| v.iter().filter_map(|p| p[0].as_f64()).map(|t| t.round() as i64).collect())
                .unwrap_or_default();
            (labels, times)
        })
        .collect())
}

/// Kills the throwaway Prometheus when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The most points Prometheus answers per series in one `query_range` is 11 000; queries are cut
/// into spans of this many steps.
const MAX_STEPS: i64 = 10_000;

/// How long Prometheus carries a series' last sample forward (its default look-back), ms.
const LOOKBACK_MS: i64 = 300_000;

/// Evaluates the shipped rules over `samples` in `[from_ms, to_ms]`, starting each rule's
/// evaluation at `warm_ms` (the warm-up's start), so a condition pending before the range keeps
/// its `for:`; spans are clipped to the range.
pub fn evaluate(samples: &Sampler, warm_ms: i64, from_ms: i64, to_ms: i64) -> Alerts {
    let not = |note: String| Alerts { evaluated: false, note, firing: Vec::new() };
    let (Some(prometheus), Some(promtool)) = (tool("BMON_PROMETHEUS", "prometheus"), tool("BMON_PROMTOOL", "promtool"))
    else {
        return not(
            "Not evaluated: prometheus and promtool were not found (PATH, or BMON_PROMETHEUS and BMON_PROMTOOL)."
                .into(),
        );
    };
    match run(&prometheus, &promtool, samples, warm_ms.min(from_ms), from_ms, to_ms) {
        Ok(alerts) => alerts,
        Err(e) => not(format!("Not evaluated: {e:#}")),
    }
}

fn run(
    prometheus: &Path,
    promtool: &Path,
    samples: &Sampler,
    warm_ms: i64,
    from_ms: i64,
    to_ms: i64,
) -> anyhow::Result<Alerts> {
    let (rules, skipped) = alert_rules(RULES)?;
    let note = |extra: &str| {
        format!(
            "Evaluated by Prometheus over the replay's own metrics, sampled every {STEP_S} s of its clock ({} samples); {} rules{}{extra}.",
            samples.taken,
            rules.len(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(", not {} (a recording rule with matchers)", skipped.join(", "))
            }
        )
    };
    let Some((lo_ms, hi_ms)) = samples.span_ms().filter(|_| samples.taken > 0) else {
        return Ok(Alerts { evaluated: true, note: note(": no metrics, so nothing fired"), firing: Vec::new() });
    };
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("bmon-replay-alerts-").tempdir()?;
    let input = dir.path().join("samples.om");
    std::fs::write(&input, samples.openmetrics())?;
    let data = dir.path().join("data");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .context("running promtool")?;
    if !out.status.success() {
        bail!("promtool tsdb create-blocks-from openmetrics: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "alerts: blocks created");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
    let server = Server(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting prometheus")?,
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !minreq::get(format!("{url}/-/ready")).with_timeout(2).send().is_ok_and(|r| r.status_code == 200) {
        if Instant::now() > deadline {
            bail!("prometheus did not become ready in 60 s");
        }
        std::thread::sleep(Duration::from_millis(100)); // the pace of a readiness probe
    }
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "alerts: prometheus ready");
    let mut firing = Vec::new();
    for rule in &rules {
        let mut times: BTreeMap<BTreeMap<String, String>, Vec<i64>> = BTreeMap::new();
        // Only where there are samples (and Prometheus's 5 min look-back after the last): a
        // range named from the epoch to next year must not be stepped through.
        let (first_s, last_s) =
            (warm_ms.max(lo_ms).div_euclid(1000), to_ms.min(hi_ms.saturating_add(LOOKBACK_MS)).div_euclid(1000));
        let mut start = first_s;
        while start <= last_s {
            let end = (start + (MAX_STEPS - 1) * STEP_S).min(last_s);
            for (labels, t) in query_range(&url, &rule.expr, start, end).with_context(|| rule.name.clone())? {
                times.entry(labels).or_default().extend(t);
            }
            start = end + STEP_S;
        }
        for (labels, t) in times {
            for (start, end) in firing_spans(&t, rule.for_s, STEP_S) {
                if end * 1000 < from_ms {
                    continue;
                }
                firing.push(AlertFiring {
                    alert: rule.name.clone(),
                    labels: labels.clone(),
                    from_us: start.max(from_ms.div_euclid(1000)) * 1_000_000,
                    to_us: end * 1_000_000,
                });
            }
        }
    }
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "alerts: rules queried");
    drop(server);
    firing.sort_by(|a, b| (a.from_us, &a.alert).cmp(&(b.from_us, &b.alert)));
    Ok(Alerts { evaluated: true, note: note(""), firing })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_shipped_rules_read_and_the_recording_rule_is_substituted() {
        let (rules, skipped) = alert_rules(RULES).unwrap();
        assert!(skipped.is_empty());
        assert!(rules.iter().all(|r| !r.expr.contains("bmon:chain_catching_up")));
        let reorg = rules.iter().find(|r| r.name == "BmonChainReorg").unwrap();
        assert!(reorg.expr.contains("(max by (network, node) (bmon_chain_initial_block_download == 1)"));
        assert_eq!(rules.iter().find(|r| r.name == "BmonChainStaleTip").unwrap().for_s, 300);
    }

    #[test]
    fn a_recording_rule_with_matchers_is_not_rewritten() {
        let file = "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: up\n  - alert: X\n    expr: a:b{x=\"1\"} > 0\n  - alert: Y\n    expr: a:bc > 0 or a:b\n";
        let (rules, skipped) = alert_rules(&[("f", file)]).unwrap();
        assert_eq!(skipped, ["X"]);
        assert_eq!(rules[0].expr, "a:bc > 0 or (up)");
    }

    #[test]
    fn durations_and_spans() {
        assert_eq!(duration_s("5m"), Some(300));
        assert_eq!(duration_s("1h30m"), Some(5400));
        assert_eq!(duration_s("5x"), None);
        assert_eq!(firing_spans(&[0, 15, 30, 45, 100, 115], 30, 15), vec![(30, 45)]);
        assert_eq!(firing_spans(&[0, 15, 100], 0, 15), vec![(0, 15), (100, 100)]);
    }

    #[test]
    fn samples_become_openmetrics_grouped_by_family() {
        let mut s = Sampler::default();
        s.observe(1000, || "a 1\na_b 5\nb{x=\"1\"} 2\n".into());
        s.observe(16_001, || "# HELP a\na 3\na_b 6\n".into());
        let om = s.openmetrics();
        assert_eq!(om, "a 1 1.000\na 3 16.001\na_b 5 1.000\na_b 6 16.001\nb{x=\"1\"} 2 1.000\n# EOF\n");
    }

    #[test]
    fn the_rules_sampler_keeps_only_the_families_a_rule_names() {
        let families = rule_families(RULES);
        assert!(families.contains("bmon_propagation_node_lag_seconds_bucket"));
        assert!(families.contains("bmon_chain_reorgs_total"));
        let mut s = Sampler::for_rules();
        s.observe(0, || "bmon_chain_reorgs_total{node=\"a\"} 1\nbmon_logparse_lines_total 9\n".into());
        assert_eq!(s.openmetrics(), "bmon_chain_reorgs_total{node=\"a\"} 1 0.000\n# EOF\n");
    }

    #[test]
    fn the_sampler_takes_one_sample_per_step_and_ends_in_order() {
        let mut s = Sampler::default();
        for t in [0, 5_000, 15_000, 16_000, 29_000, 100_000] {
            s.observe(t, || format!("m {t}"));
        }
        assert_eq!(s.taken, 3, "at 0, 15 000 and 100 000");
        s.finish(90_000, "m 1");
        assert_eq!(
            s.openmetrics(),
            "m 0 0.000\nm 15000 15.000\nm 1 90.000\n# EOF\n",
            "the sample past the end dropped"
        );
    }
}
