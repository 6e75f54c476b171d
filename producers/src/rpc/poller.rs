//! The blocking RPC poll loop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bmon_schemas::{Envelope, RpcErr, RpcOk, RpcOutcome, RpcSnapshotFact, SourceSeq};
use jsonrpc::Client;
use serde_json::Value;

use crate::config::{Implementation, TxOutSetHash};
use crate::fact_sink::FactSink;
use crate::publish::NodeIdentity;
use crate::rpc::mempool::{MempoolEncoder, template_without_data};
use crate::rpc::plan::{Call, METHOD_NOT_FOUND, PollPlan, has_coinstatsindex, txoutset_call};
use crate::stop::Stop;
use crate::telemetry;
use crate::telemetry::label;

/// How to authenticate. Secrets come from files or the environment, never the command line.
#[derive(Debug, Clone)]
pub enum RpcAuth {
    /// The node's `.cookie` file (re-read on every connect: it changes when the node restarts).
    Cookie(PathBuf),
    /// A user and a password read from a file.
    PasswordFile {
        /// User name.
        user: String,
        /// File holding the password.
        file: PathBuf,
    },
    /// A user and a password read from an environment variable.
    PasswordEnv {
        /// User name.
        user: String,
        /// Variable holding the password.
        var: String,
    },
}

/// Settings of the RPC source.
#[derive(Debug, Clone)]
pub struct RpcSettings {
    /// `http://host:port`.
    pub url: String,
    /// Credentials.
    pub auth: RpcAuth,
    /// Time between rounds.
    pub interval: Duration,
    /// Per-call timeout.
    pub timeout: Duration,
    /// A full mempool snapshot every this many rounds, deltas between.
    pub mempool_full_every: u32,
}

/// Why a call failed, in words an operator can act on.
fn describe(e: &jsonrpc::Error) -> (Option<i64>, String) {
    match e {
        jsonrpc::Error::Rpc(r) => (Some(i64::from(r.code)), r.message.clone()),
        other => {
            let text = other.to_string();
            let hint = if text.contains("401") || text.contains("403") {
                "authentication failed: check the cookie file or user and password"
            } else if text.contains("refused") {
                "connection refused: is the node running and is rpcbind/rpcport right?"
            } else if ["timed out", "timeout", "wouldblock"].iter().any(|t| text.to_lowercase().contains(t)) {
                "timed out: the node is slow or busy"
            } else {
                "transport error"
            };
            (None, format!("{hint} ({text})"))
        }
    }
}

fn credentials(auth: &RpcAuth) -> Result<(String, String), String> {
    match auth {
        RpcAuth::Cookie(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read cookie file {}: {e}", path.display()))?;
            let (u, p) =
                text.trim().split_once(':').ok_or_else(|| format!("cookie file {} is malformed", path.display()))?;
            Ok((u.to_owned(), p.to_owned()))
        }
        RpcAuth::PasswordFile { user, file } => std::fs::read_to_string(file)
            .map(|p| (user.clone(), p.trim_end().to_owned()))
            .map_err(|e| format!("cannot read password file {}: {e}", file.display())),
        RpcAuth::PasswordEnv { user, var } => {
            std::env::var(var).map(|p| (user.clone(), p)).map_err(|_| format!("environment variable {var} is not set"))
        }
    }
}

fn connect(settings: &RpcSettings) -> Result<Client, String> {
    let (user, pass) = credentials(&settings.auth)?;
    let transport = jsonrpc::http::minreq_http::Builder::new()
        .url(&settings.url)
        .map_err(|e| format!("bad RPC url {}: {e}", settings.url))?
        .timeout(settings.timeout)
        .basic_auth(user, Some(pass))
        .build();
    Ok(Client::with_transport(transport))
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Polls until `stop` is set. Each round publishes one fact per call, success or failure.
/// `ready` is set once a call has succeeded.
pub fn run_rpc_source(
    settings: &RpcSettings,
    mut plan: PollPlan,
    node: &NodeIdentity,
    sink: &FactSink,
    stop: &Stop,
    ready: &AtomicBool,
) {
    let session = format!("{}-{}", now_us(), std::process::id());
    let mut client: Option<Client> = None;
    let mut round: i64 = 0;
    let mut backoff = settings.interval;
    let mut mempool = MempoolEncoder::new(settings.mempool_full_every, MAX_FACT_BYTES);
    while !stop.requested() {
        let started = Instant::now();
        if client.is_none() {
            match connect(settings) {
                Ok(c) => client = Some(c),
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "RPC client not ready; retrying"),
            }
        }
        let mut failures = 0;
        let mut reconnect = false;
        if let Some(c) = &client {
            let calls: Vec<Call> = plan.calls().cloned().collect();
            for call in calls {
                let (outcome, result, took) = call_once(c, &call);
                let outcome_label = count(&call, &outcome, took);
                if outcome_label == "ok" {
                    ready.store(true, Ordering::Relaxed);
                }
                if let RpcOutcome::Err(e) = &outcome {
                    if e.code == Some(METHOD_NOT_FOUND) {
                        if plan.mark_missing(call.method) {
                            tracing::info!(method = call.method, "the node has no such RPC; not polling it again");
                        }
                        continue;
                    }
                    failures += 1;
                    tracing::warn!(method = call.method, error = %e.message, "RPC call failed; next round will retry");
                }
                // No answer at all (transport): the rest of the round would fail the same way.
                let unreachable = matches!(&outcome, RpcOutcome::Err(e) if e.code.is_none());
                if let (Some(v), "getnetworkinfo") = (&result, call.method) {
                    let subversion = v.get("subversion").and_then(Value::as_str).unwrap_or_default();
                    if node.version.learn(subversion) {
                        tracing::info!(version = %node.version.get(), "node version learned from getnetworkinfo");
                    }
                }
                for (offset, outcome) in shape(&call, round, outcome, result, &mut mempool) {
                    let fact = snapshot(node, &session, offset, &call, took, outcome);
                    if !sink.send(&fact) {
                        telemetry::DROPPED.with_counter([label("source", "rpc")]).increment(1);
                        if call.method == "getrawmempool" {
                            mempool.lost();
                        }
                    }
                }
                if unreachable {
                    // Reconnect next round, re-reading credentials (the cookie changes when the
                    // node restarts).
                    reconnect = true;
                    break;
                }
            }
        }
        if reconnect {
            client = None;
        }
        round += 1;
        backoff = if failures == 0 && client.is_some() {
            settings.interval
        } else {
            (backoff * 2).min(Duration::from_secs(60))
        };
        if stop.sleep(backoff.saturating_sub(started.elapsed())) {
            break;
        }
    }
}

/// The largest fact the poller publishes for the calls it reshapes (the mempool and the
/// template), bytes.
pub const MAX_FACT_BYTES: usize = 1_000_000;

/// The facts of one call's answer, as (source offset, outcome): one at offset `round`, except
/// getrawmempool, whose facts are numbered by `mempool` (deltas and chunked full snapshots; a
/// failure takes a number too, and the next list goes out in full), and getblocktemplate,
/// published without raw transaction data.
fn shape(
    call: &Call,
    round: i64,
    outcome: RpcOutcome,
    result: Option<Value>,
    mempool: &mut MempoolEncoder,
) -> Vec<(i64, RpcOutcome)> {
    match (call.method, result) {
        ("getrawmempool", Some(v)) => match mempool.encode(&v) {
            Some(facts) => facts.into_iter().map(|(seq, json)| (seq, RpcOutcome::Ok(RpcOk { json }))).collect(),
            None => vec![(mempool.failed(), outcome)],
        },
        ("getrawmempool", None) => vec![(mempool.failed(), outcome)],
        ("getblocktemplate", Some(v)) => {
            vec![(round, RpcOutcome::Ok(RpcOk { json: template_without_data(v).to_string() }))]
        }
        _ => vec![(round, outcome)],
    }
}

/// Counts a call in the metrics; its outcome label.
fn count(call: &Call, outcome: &RpcOutcome, took: Duration) -> &'static str {
    let outcome_label = if matches!(outcome, RpcOutcome::Ok(_)) { "ok" } else { "error" };
    telemetry::RPC_CALLS.with_counter([label("method", call.method), label("outcome", outcome_label)]).increment(1);
    telemetry::RPC_SECONDS.with_histogram([label("method", call.method)]).record(took.as_secs_f64());
    outcome_label
}

/// The fact of one call at `offset` of its stream in poller session `session`.
fn snapshot(
    node: &NodeIdentity,
    session: &str,
    offset: i64,
    call: &Call,
    took: Duration,
    outcome: RpcOutcome,
) -> RpcSnapshotFact {
    RpcSnapshotFact {
        envelope: Envelope {
            node_id: node.node_id.clone(),
            network: node.network.clone(),
            implementation: node.implementation,
            node_version: node.version.get(),
            received_at_us: now_us(),
            source: SourceSeq { stream: format!("rpc:{}", call.method), epoch: session.to_owned(), offset },
        },
        method: call.method.to_owned(),
        params: Value::Array(call.params.clone()).to_string(),
        duration_us: took.as_micros() as i64,
        outcome,
    }
}

/// The schedule of gettxoutsetinfo snapshots.
#[derive(Debug, Clone)]
pub struct TxOutSetSchedule {
    /// The node software (its parameters differ).
    pub implementation: Implementation,
    /// Which hash to compute.
    pub hash: TxOutSetHash,
    /// Time between snapshots.
    pub interval: Duration,
}

/// Snapshots gettxoutsetinfo every `schedule.interval` until `stop`, on a connection of its own
/// (`settings.timeout` is this call's), so a slow UTXO scan never delays the other snapshots.
/// Uses the coinstatsindex when the node has a synced one (asked once per connection).
pub fn run_txoutset_source(
    settings: &RpcSettings,
    schedule: &TxOutSetSchedule,
    node: &NodeIdentity,
    sink: &FactSink,
    stop: &Stop,
) {
    let session = format!("{}-{}-txoutset", now_us(), std::process::id());
    let mut client: Option<(Client, bool)> = None;
    let mut round: i64 = 0;
    let mut backoff = schedule.interval;
    while !stop.requested() {
        let started = Instant::now();
        if client.is_none() {
            match connect(settings) {
                Ok(c) => {
                    let info = Call { method: "getindexinfo", params: vec![] };
                    let (_, result, _) = call_once(&c, &info);
                    let indexed = result.as_ref().is_some_and(has_coinstatsindex);
                    client = Some((c, indexed));
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "RPC client not ready; retrying"),
            }
        }
        let mut ok = false;
        if let Some((c, indexed)) = &client {
            let call = txoutset_call(schedule.implementation, schedule.hash, *indexed);
            let (outcome, _, took) = call_once(c, &call);
            ok = count(&call, &outcome, took) == "ok";
            if let RpcOutcome::Err(e) = &outcome {
                tracing::warn!(error = %e.message, "gettxoutsetinfo failed; will retry");
            }
            let unreachable = matches!(&outcome, RpcOutcome::Err(e) if e.code.is_none());
            if !sink.send(&snapshot(node, &session, round, &call, took, outcome)) {
                telemetry::DROPPED.with_counter([label("source", "rpc")]).increment(1);
            }
            if unreachable {
                client = None;
            }
        }
        round += 1;
        backoff =
            if ok { schedule.interval } else { (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(600)) };
        if stop.sleep(backoff.saturating_sub(started.elapsed())) {
            break;
        }
    }
}

/// Makes one call; returns the outcome, the parsed result on success, and how long it took.
fn call_once(client: &Client, call: &Call) -> (RpcOutcome, Option<Value>, Duration) {
    let t0 = Instant::now();
    let params = match serde_json::value::to_raw_value(&call.params) {
        Ok(p) => p,
        Err(e) => {
            return (RpcOutcome::Err(RpcErr { code: None, message: format!("bad params: {e}") }), None, t0.elapsed());
        }
    };
    let request = client.build_request(call.method, Some(&params));
    match client.send_request(request).and_then(|r| r.result::<Value>()) {
        Ok(v) => (RpcOutcome::Ok(RpcOk { json: v.to_string() }), Some(v), t0.elapsed()),
        Err(e) => {
            let (code, message) = describe(&e);
            (RpcOutcome::Err(RpcErr { code, message }), None, t0.elapsed())
        }
    }
}
