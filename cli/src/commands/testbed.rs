//! `bmon testbed up|down`: the local test bed for demos and manual investigation.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bmon_testbed::{Implementation, TestBed, Tools, stop_pid_files};
use clap::{Args, Subcommand};

/// Test bed subcommands.
#[derive(Debug, Subcommand)]
pub enum TestbedCmd {
    /// Start a broker and regtest networks, print their endpoints, run until Ctrl-C, then stop them.
    Up(UpArgs),
    /// Stop every process a test bed on this machine left behind (by PID file).
    Down,
}

/// Arguments of `up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Bitcoin Core v31.99 nodes.
    #[arg(long, default_value_t = 3)]
    core: usize,
    /// BSV v1.0.13 nodes.
    #[arg(long, default_value_t = 2)]
    bsv: usize,
    /// Litecoin Core 0.21 nodes.
    #[arg(long, default_value_t = 1)]
    litecoin: usize,
    /// Mine a block on a rotating node every this many seconds (0: never).
    #[arg(long, default_value_t = 10)]
    mine_every: u64,
}

/// Runs a test bed subcommand.
pub fn run(cmd: TestbedCmd) -> anyhow::Result<()> {
    match cmd {
        TestbedCmd::Up(args) => up(args),
        TestbedCmd::Down => {
            let root = state_root();
            let mut stopped = 0;
            if let Ok(entries) = std::fs::read_dir(root.join("ports")) {
                for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()) {
                    stopped += stop_pid_files(&dir.join("pids")).len();
                }
            }
            println!("stopped {stopped} process(es)");
            Ok(())
        }
    }
}

fn state_root() -> PathBuf {
    Tools::from_env().root.parent().map(|p| p.join("testbed")).unwrap_or_else(|| PathBuf::from("/tmp/bmon-testbed"))
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut bed = TestBed::new().context("claim a port block")?;
    let brokers = bed.broker().context("start tansu")?.bootstrap();
    println!("broker    {brokers}");
    let mut nets = Vec::new();
    for (implementation, n) in
        [(Implementation::Core, args.core), (Implementation::Bsv, args.bsv), (Implementation::Litecoin, args.litecoin)]
    {
        if n == 0 {
            continue;
        }
        let idx = bed
            .start_network(implementation, n)
            .with_context(|| format!("start {n} {} nodes", implementation.as_str()))?;
        for node in bed.network(idx).nodes() {
            println!(
                "{:<9} rpc {} cookie {} log {}{}",
                node.name(),
                node.rpc_url(),
                node.cookie_path().display(),
                node.log_path().display(),
                node.zmq_endpoint().map(|z| format!(" zmq {z}")).unwrap_or_default()
            );
        }
        nets.push(idx);
    }
    println!("dir       {}", bed.dir().display());
    println!("running; Ctrl-C stops everything");
    let rx = super::ctrl_c_channel()?;
    let mut round = 0usize;
    let tick = if args.mine_every == 0 { Duration::from_secs(3600) } else { Duration::from_secs(args.mine_every) };
    while rx.recv_timeout(tick).is_err() {
        if args.mine_every == 0 || nets.is_empty() {
            continue;
        }
        let net = bed.network(nets[round % nets.len()]);
        let i = round % net.nodes().len();
        match net.mine(i, 1) {
            Ok(h) => println!("mined     {} on {}", h[0], net.node(i).name()),
            Err(e) => eprintln!("mining on {} failed: {e}", net.node(i).name()),
        }
        round += 1;
    }
    println!("stopping");
    Ok(())
}
