//! Helpers shared by the integration tests: running `bmon`, reading topics back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bmon_schemas::{Codec, LogLineFact, Record, RpcSnapshotFact, ZmqFact};
use bmon_testbed::{Managed, PromQuery, TestBed, poll_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The repository root.
pub fn repo_root() -> PathBuf {
    // At run time: a test binary cached from another checkout must read this one's files.
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("..")
}

/// Runs `bmon` with `args` in the repo root: (success, stdout, stderr).
pub fn bmon(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmon")).args(args).current_dir(repo_root()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GETs `url` with a 2 s timeout: (status, body).
pub fn http_get(url: &str) -> Option<(i32, String)> {
    let r = minreq::get(url).with_timeout(2).send().ok()?;
    Some((r.status_code, r.as_str().unwrap_or_default().to_owned()))
}

/// Applies topology.yaml to the bed's broker with replication factor 1.
pub fn apply_topology(brokers: &str) {
    let (ok, out, err) = bmon(&["topology", "apply", "--brokers", brokers, "--replication-factor", "1"]);
    assert!(ok, "apply failed: {err}\n{out}");
}

/// Applies the topology file `path` to the bed's broker with replication factor 1.
pub fn apply_topology_file(brokers: &str, path: &Path) {
    let file = path.to_str().unwrap();
    let (ok, out, err) =
        bmon(&["topology", "apply", "--brokers", brokers, "--replication-factor", "1", "--file", file]);
    assert!(ok, "apply failed: {err}\n{out}");
}

/// Writes a copy of topology.yaml, changed by `edit`, to `dir/topology.yaml` (its schema_dir
/// made absolute) and returns its path.
pub fn write_topology(dir: &Path, edit: impl FnOnce(&mut bmon_topology::Topology)) -> PathBuf {
    let mut t = bmon_topology::Topology::load(repo_root().join("topology.yaml")).unwrap();
    t.schema_dir = repo_root().join("schemas/avro");
    edit(&mut t);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("topology.yaml");
    std::fs::write(&path, t.to_yaml()).unwrap();
    bmon_topology::Topology::load(&path).unwrap();
    path
}

/// Writes a producer config for `node_id` following `log` and starts `bmon produce` on it.
pub fn start_producer(bed: &TestBed, node_id: &str, implementation: &str, log: &Path, brokers: &str) -> Managed {
    let section = format!("[log]\npath = \"{}\"\npoll_ms = 50\n", log.display());
    start_producer_with(bed, node_id, implementation, &section, brokers)
}

/// Starts `bmon produce` for `node_id` with the given source sections (TOML).
pub fn start_producer_with(
    bed: &TestBed,
    node_id: &str,
    implementation: &str,
    sources: &str,
    brokers: &str,
) -> Managed {
    start_producer_bin(&[env!("CARGO_BIN_EXE_bmon"), "produce"], bed, node_id, implementation, sources, brokers)
}

/// [`start_producer_with`], run by `program` (the executable and its leading arguments): `bmon
/// produce` or the slim `bmon-producer`.
pub fn start_producer_bin(
    program: &[&str],
    bed: &TestBed,
    node_id: &str,
    implementation: &str,
    sources: &str,
    brokers: &str,
) -> Managed {
    start_producer_on("regtest", program, bed, node_id, implementation, sources, brokers, None)
}

/// `bmon produce` for a node of `network` with the given source sections (TOML).
pub fn start_producer_in(
    network: &str,
    bed: &TestBed,
    node_id: &str,
    implementation: &str,
    sources: &str,
    brokers: &str,
) -> Managed {
    let program = [env!("CARGO_BIN_EXE_bmon"), "produce"];
    start_producer_on(network, &program, bed, node_id, implementation, sources, brokers, None)
}

/// [`start_producer_bin`] for a node of `network`, with the topology file `topology` (default:
/// the built-in one).
#[allow(clippy::too_many_arguments)]
pub fn start_producer_on(
    network: &str,
    program: &[&str],
    bed: &TestBed,
    node_id: &str,
    implementation: &str,
    sources: &str,
    brokers: &str,
    topology: Option<&Path>,
) -> Managed {
    let state = bed.dir().join(format!("producer-{node_id}"));
    std::fs::create_dir_all(&state).unwrap();
    let config = state.join("node.toml");
    // Tests run many producers at once: let the OS pick the metrics port unless the test chose one.
    let service = if sources.contains("[service]") { "" } else { "[service]\nlisten = \"127.0.0.1:0\"\n" };
    let sources = format!("{sources}{service}");
    std::fs::write(
        &config,
        format!(
            "{}[node]\nid = \"{node_id}\"\nnetwork = \"{network}\"\nimplementation = \"{implementation}\"\n\
             {sources}[kafka]\nbrokers = \"{brokers}\"\n[state]\ndir = \"{}\"\n",
            topology.map(|t| format!("topology = \"{}\"\n", t.display())).unwrap_or_default(),
            state.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(program[0]);
    cmd.args(&program[1..]).args(["--config", config.to_str().unwrap()]).env("RUST_LOG", "info");
    Managed::spawn(&format!("producer-{node_id}"), cmd, &bed.pid_dir(), &state.join("producer.log")).unwrap()
}

/// Reads one topic from the beginning of every partition and keeps what it has read.
pub struct TopicReader<T = LogLineFact> {
    consumer: BaseConsumer,
    codec: Codec,
    topic: String,
    /// The next offset to read, per partition.
    next: Vec<i64>,
    /// Every record read so far, in partition order.
    pub facts: Vec<T>,
    /// The record key of each of `facts`.
    pub keys: Vec<Vec<u8>>,
    /// The partition each of `facts` was read from.
    pub partitions: Vec<i32>,
    /// Records of other schema families on the topic, skipped.
    pub other_families: usize,
}

/// Facts that carry an envelope.
pub trait HasNode {
    /// The node id.
    fn node_id(&self) -> &str;
}

impl HasNode for LogLineFact {
    fn node_id(&self) -> &str {
        &self.envelope.node_id
    }
}

impl HasNode for RpcSnapshotFact {
    fn node_id(&self) -> &str {
        &self.envelope.node_id
    }
}

impl HasNode for ZmqFact {
    fn node_id(&self) -> &str {
        &self.envelope.node_id
    }
}

impl HasNode for bmon_schemas::Observation {
    fn node_id(&self) -> &str {
        &self.node_id
    }
}

impl HasNode for bmon_schemas::PropagationSummary {
    fn node_id(&self) -> &str {
        &self.first_node
    }
}

impl HasNode for bmon_schemas::PropagationAnomaly {
    fn node_id(&self) -> &str {
        &self.first_node
    }
}

/// Chain events name their node.
macro_rules! chain_event_nodes {
    ($($t:ty),*) => {$(
        impl HasNode for $t {
            fn node_id(&self) -> &str {
                &self.node_id
            }
        }
    )*};
}
chain_event_nodes!(
    bmon_schemas::ChainReorg,
    bmon_schemas::SelfishMiningSuspect,
    bmon_schemas::StaleTip,
    bmon_schemas::ChainInvalidBlock,
    bmon_schemas::NodeLagging,
    bmon_schemas::Inflation,
    bmon_schemas::MempoolRejectionSpike,
    bmon_schemas::MempoolEmpty,
    bmon_schemas::MempoolDivergence,
    bmon_schemas::TemplateDivergence
);

/// A conflict is of a transaction: its first refusing node.
impl HasNode for bmon_schemas::MempoolConflict {
    fn node_id(&self) -> &str {
        self.refused_by.first().map_or("", |r| r.node_id.as_str())
    }
}

/// A divergence is of a network: its first refusing node.
impl HasNode for bmon_schemas::PolicyDivergence {
    fn node_id(&self) -> &str {
        self.rejected_by.first().map_or("", |r| r.node_id.as_str())
    }
}

/// A comparison is of a network: its slowest node.
impl HasNode for bmon_schemas::BlockConnectComparison {
    fn node_id(&self) -> &str {
        &self.slowest_node
    }
}

impl HasNode for bmon_schemas::ChainSplit {
    fn node_id(&self) -> &str {
        &self.network
    }
}

impl HasNode for bmon_schemas::DeadLetter {
    fn node_id(&self) -> &str {
        &self.processor
    }
}

impl HasNode for bmon_schemas::NodeEvent {
    fn node_id(&self) -> &str {
        &self.envelope.node_id
    }
}

/// Writes a processor config (`extra` is appended TOML) and starts `bmon process <which>` on it,
/// serving metrics on `port` (0: any).
pub fn start_processor(bed: &TestBed, which: &str, instance: &str, extra: &str, brokers: &str, port: u16) -> Managed {
    start_processor_on(bed, which, instance, extra, brokers, port, &repo_root().join("topology.yaml"))
}

/// [`start_processor`] on the topology file `topology`.
pub fn start_processor_on(
    bed: &TestBed,
    which: &str,
    instance: &str,
    extra: &str,
    brokers: &str,
    port: u16,
    topology: &Path,
) -> Managed {
    let dir = bed.dir().join(format!("{which}-{instance}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("processor.toml");
    std::fs::write(
        &config,
        format!(
            "topology = \"{}\"\n[kafka]\nbrokers = \"{brokers}\"\n[service]\nlisten = \"127.0.0.1:{port}\"\n\
             [runtime]\nsession_timeout_ms = 6000\n{extra}",
            topology.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bmon"));
    cmd.args(["process", which, "--config", config.to_str().unwrap()]).env("RUST_LOG", "info");
    Managed::spawn(&format!("{which}-{instance}"), cmd, &bed.pid_dir(), &dir.join("process.log")).unwrap()
}

impl<T: Record + HasNode> TopicReader<T> {
    /// A reader of `topic` (with `partitions` partitions) on `brokers`.
    pub fn new(brokers: &str, topic: &str, partitions: i32) -> TopicReader<T> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "test-reader")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        TopicReader {
            consumer,
            codec: Codec::default(),
            topic: topic.to_owned(),
            next: vec![0; partitions as usize],
            facts: Vec::new(),
            keys: Vec::new(),
            partitions: Vec::new(),
            other_families: 0,
        }
    }

    /// Reads until `done(facts)` holds or `timeout` passes; returns whether it held.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&[T]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(&self.facts) {
                return true;
            }
            self.poll_one();
        }
        done(&self.facts)
    }

    /// Reads every partition up to the high watermark it has when called, so that a check over
    /// all the records (which partitions they are in, say) sees every one written before it.
    /// Panics if that takes longer than `timeout`, the watermark requests included.
    pub fn drain(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut ends = Vec::with_capacity(self.next.len());
        for (p, next) in self.next.iter_mut().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            let (low, high) = self.consumer.fetch_watermarks(&self.topic, p as i32, left).unwrap();
            // What lies below the low watermark is gone (retention), so it cannot be waited for.
            *next = (*next).max(low);
            ends.push(high);
        }
        while self.next.iter().zip(&ends).any(|(n, e)| n < e) {
            assert!(Instant::now() < deadline, "{} read to {:?}, not to {ends:?}", self.topic, self.next);
            self.poll_one();
        }
    }

    /// Waits up to 200 ms for one record and keeps it if it is a `T`.
    fn poll_one(&mut self) {
        let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(200)) else { return };
        self.next[m.partition() as usize] = m.offset() + 1;
        let payload = m.payload().unwrap();
        // A topic may carry several families (bmon.events: summaries and anomalies): keep T's,
        // and count the others. Bytes of no known schema fail the test.
        let family = &self.codec.writer_version(payload).expect("a record of a known schema").family;
        if family != T::FAMILY {
            self.other_families += 1;
            return;
        }
        let fact: T = self.codec.decode(payload).expect("a fact that decodes");
        self.facts.push(fact);
        self.keys.push(m.key().unwrap_or_default().to_vec());
        self.partitions.push(m.partition());
    }

    /// The facts of one node, in order.
    pub fn of(&self, node_id: &str) -> Vec<&T> {
        self.facts.iter().filter(|f| f.node_id() == node_id).collect()
    }
}

/// The lines of a file (split on `\n`; a final unterminated line counts).
pub fn file_lines(path: &PathBuf) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(|l| l.to_vec()).collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Asserts that `facts` are exactly `lines`, once each, in order, with offsets tiling the file.
pub fn assert_exactly_once(facts: &[&LogLineFact], lines: &[Vec<u8>], what: &str) {
    let got: Vec<&[u8]> = facts.iter().map(|f| f.line.as_slice()).collect();
    let want: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
    assert_eq!(got.len(), want.len(), "{what}: {} facts for {} lines", got.len(), want.len());
    assert!(got == want, "{what}: line contents or order differ");
    let mut keys: Vec<String> = facts.iter().map(|f| f.envelope.dedup_key()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), facts.len(), "{what}: duplicate envelope keys");
    // Within one file epoch each line starts where the one before it ended: no hole.
    for w in facts.windows(2) {
        if w[0].envelope.source.epoch == w[1].envelope.source.epoch {
            assert_eq!(w[1].envelope.source.offset, w[0].end_offset, "{what}: a hole or overlap in the byte offsets");
        }
    }
}

/// The `bmon_…` metric names in `text` (Prometheus exposition or PromQL), histogram and summary
/// series by their base name.
pub fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("bmon_") {
        let start = i + at;
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end =
            text[start..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |e| start + e);
        if !preceded {
            let name = &text[start..end];
            let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            names.insert(base.to_owned());
        }
        i = end;
    }
    names
}

/// Asserts that every `bmon_…` series in `exposition` (a `/metrics` body) is declared in
/// `bmon metrics list`.
pub fn assert_declared(exposition: &str) {
    let (ok, out, err) = bmon(&["metrics", "list", "--json"]);
    assert!(ok, "{err}");
    let declared: std::collections::BTreeSet<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    let series: String = exposition.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    for name in metric_names(&series) {
        assert!(declared.contains(&name), "{name} is exported but not declared in `bmon metrics list`");
    }
}

/// Whether `alert` is pending or firing in Prometheus for `node` (or, for a network alert, the
/// network of that name).
pub fn alert_active(prom: &PromQuery, alert: &str, node: &str) -> Option<String> {
    let q = format!(
        "ALERTS{{alertname=\"{alert}\",node=\"{node}\"}} or ALERTS{{alertname=\"{alert}\",network=\"{node}\",node=\"\"}}"
    );
    let r = prom.query(&q).ok()?;
    r.first().and_then(|s| s["metric"]["alertstate"].as_str().map(str::to_owned))
}

/// Waits (90 s at most) until `alert` is pending or firing for `node`; its state.
pub fn wait_alert(prom: &PromQuery, alert: &str, node: &str) -> String {
    poll_until(
        &format!("{alert} for {node} in Prometheus"),
        Duration::from_secs(90),
        Duration::from_millis(500),
        || alert_active(prom, alert, node),
    )
    .unwrap()
}

/// The first value of `q` in Prometheus.
pub fn metric(prom: &PromQuery, q: &str) -> Option<f64> {
    let r = prom.query(q).ok()?;
    r.first()?["value"][1].as_str()?.parse().ok()
}

/// A producer's `[log]` (50 ms poll) and `[rpc]` (every second) sections for `node`, and `extra`
/// RPC settings.
pub fn log_and_rpc_sources(node: &bmon_testbed::Node, extra_rpc: &str) -> String {
    format!(
        "[log]\npath = \"{}\"\npoll_ms = 50\n[rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\ninterval_s = 1\n{extra_rpc}",
        node.log_path().display(),
        node.rpc_url(),
        node.cookie_path().display()
    )
}

/// A producer (log and RPC, `extra_rpc` added) for each node of network `net`, and logparse and
/// netviews: the feeds of chain and mempool. Keep what it returns alive.
pub fn start_log_and_rpc_feeds(bed: &TestBed, net: usize, extra_rpc: &str, brokers: &str) -> Vec<Managed> {
    let mut running: Vec<Managed> = bed
        .network(net)
        .nodes()
        .iter()
        .map(|node| start_producer_with(bed, node.name(), "core", &log_and_rpc_sources(node, extra_rpc), brokers))
        .collect();
    running.push(start_processor(bed, "logparse", "0", "", brokers, 0));
    running.push(start_processor(bed, "netviews", "0", "", brokers, 0));
    running
}

/// Starts `bmon process which` with the `[which]` settings `settings` (its state in the bed),
/// serving metrics on the bed's service port 3, and the bed's Prometheus scraping it and
/// evaluating `prometheus/rules/<which>.rules.yml`.
pub fn start_with_prometheus(bed: &mut TestBed, which: &str, settings: &str, brokers: &str) -> (Managed, PromQuery) {
    let port = bed.service_port(3);
    let state = bed.dir().join(format!("{which}-state"));
    let section = format!("[{which}]\n{settings}state_dir = \"{}\"\n", state.display());
    let running = start_processor(bed, which, "0", &section, brokers, port);
    let rules = repo_root().join(format!("prometheus/rules/{which}.rules.yml"));
    let prom = bed.prometheus(&[(which.to_owned(), format!("127.0.0.1:{port}"))], &[rules]).unwrap().client();
    (running, prom)
}
