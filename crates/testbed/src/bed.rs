//! One test bed: a port block, a directory, a broker and node networks.

use std::path::PathBuf;
use std::time::Duration;

use crate::node::NodePorts;
use crate::{Broker, Implementation, Network, Node, PortBlock, Prometheus, TestbedError, Tools, VictoriaLogs};

/// Port plan within a block: 0 broker, 1-7 for services a test starts, 8 VictoriaLogs, 9 Prometheus, nodes from 10 on, 3 ports each.
const BROKER_PORT: u16 = 0;
const VICTORIALOGS_PORT: u16 = 8;
const PROMETHEUS_PORT: u16 = 9;
const FIRST_NODE_PORT: u16 = 10;
const PORTS_PER_NODE: u16 = 3;

/// Real programs for one test run. Everything stops, by PID, when it is dropped.
#[derive(Debug)]
pub struct TestBed {
    tools: Tools,
    networks: Vec<Network>,
    broker: Option<Broker>,
    prometheus: Option<Prometheus>,
    victoria_logs: Option<VictoriaLogs>,
    next_node: u16,
    // Declared last: dropped after the processes above, so the lock outlives them.
    block: PortBlock,
}

impl TestBed {
    /// Claims a port block under `$BMON_CACHE/testbed` (default `~/.cache/bmon/testbed`).
    pub fn new() -> Result<TestBed, TestbedError> {
        let tools = Tools::from_env();
        let state_root =
            tools.root.parent().map(|p| p.join("testbed")).unwrap_or_else(|| PathBuf::from("/tmp/bmon-testbed"));
        let block = PortBlock::acquire(&state_root)?;
        Ok(TestBed {
            tools,
            networks: Vec::new(),
            broker: None,
            prometheus: None,
            victoria_logs: None,
            next_node: 0,
            block,
        })
    }

    /// Stops every node at once (SIGTERM to all, 30 s grace), then the broker and Prometheus.
    /// Stop producers and processors first (with [`crate::stop_all`]): they must not
    /// outlive the broker.
    pub fn shutdown(&mut self) {
        let nodes = self.networks.iter_mut().flat_map(|n| n.nodes_mut().iter_mut()).map(|n| n.process_mut());
        crate::process::stop_all(nodes, std::time::Duration::from_secs(30));
        self.broker = None;
        self.prometheus = None;
        self.victoria_logs = None;
    }

    /// The bed's working directory.
    pub fn dir(&self) -> PathBuf {
        self.block.dir().to_owned()
    }

    /// Starts Prometheus (once) scraping `targets` (`(job, host:port)`) and evaluating
    /// `rule_files`, and returns it.
    pub fn prometheus(
        &mut self,
        targets: &[(String, String)],
        rule_files: &[PathBuf],
    ) -> Result<&Prometheus, TestbedError> {
        let prometheus = match self.prometheus.take() {
            Some(p) => p,
            None => {
                let dir = self.block.dir().join("prometheus");
                let port = self.block.port(PROMETHEUS_PORT);
                Prometheus::start(&dir, port, targets, rule_files, &self.block.pid_dir())?
            }
        };
        Ok(self.prometheus.insert(prometheus))
    }

    /// Starts VictoriaLogs (once, with `extra` flags) and returns it.
    pub fn victoria_logs(&mut self, extra: &[&str]) -> Result<&mut VictoriaLogs, TestbedError> {
        let v = match self.victoria_logs.take() {
            Some(v) => v,
            None => {
                let dir = self.block.dir().join("victoria-logs");
                let port = self.block.port(VICTORIALOGS_PORT);
                VictoriaLogs::start(self.tools.victoria_logs()?, &dir, port, &self.block.pid_dir(), extra)?
            }
        };
        Ok(self.victoria_logs.insert(v))
    }

    /// The `i`th service port (1-7), for processes a test starts itself (exporters, Prometheus).
    ///
    /// # Panics
    /// If `i` is not in 1..=7.
    pub fn service_port(&self, i: u16) -> u16 {
        assert!((1..VICTORIALOGS_PORT).contains(&i), "service port index {i} must be 1-7");
        self.block.port(i)
    }

    /// Writes `config` to `<bed dir>/<name>/config.toml` and starts `program args… --config
    /// <that file>` as a managed process logging to `<bed dir>/<name>/out.log`.
    pub fn spawn_with_config(
        &self,
        name: &str,
        program: &std::path::Path,
        args: &[&str],
        config: &str,
    ) -> Result<crate::Managed, TestbedError> {
        let dir = self.dir().join(name);
        std::fs::create_dir_all(&dir).map_err(TestbedError::io(format!("create {}", dir.display())))?;
        let path = dir.join("config.toml");
        std::fs::write(&path, config).map_err(TestbedError::io(format!("write {}", path.display())))?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).arg("--config").arg(&path).env("RUST_LOG", "warn");
        crate::Managed::spawn(name, cmd, &self.pid_dir(), &dir.join("out.log"))
    }

    /// Where PID files go; a test that spawns its own [`crate::Managed`] processes puts them here.
    pub fn pid_dir(&self) -> PathBuf {
        self.block.pid_dir()
    }

    /// Starts the broker (once) and returns it.
    pub fn broker(&mut self) -> Result<&mut Broker, TestbedError> {
        self.broker_maintained(None)
    }

    /// As [`TestBed::broker`], with tansu applying retention every `maintenance` (its default is
    /// every 10 minutes), so that a test can see records deleted. Only the first call starts it.
    pub fn broker_maintained(&mut self, maintenance: Option<Duration>) -> Result<&mut Broker, TestbedError> {
        let broker = match self.broker.take() {
            Some(b) => b,
            None => {
                let dir = self.block.dir().join("tansu");
                Broker::start(&self.tools, &dir, self.block.port(BROKER_PORT), &self.block.pid_dir(), maintenance)?
            }
        };
        Ok(self.broker.insert(broker))
    }

    /// Starts `n` connected nodes of `implementation`, mines 101 blocks and waits for sync.
    /// Returns the network's index for [`TestBed::network`].
    pub fn start_network(&mut self, implementation: Implementation, n: usize) -> Result<usize, TestbedError> {
        let i = self.start_nodes(implementation, n)?;
        self.networks[i].bootstrap()?;
        Ok(i)
    }

    /// Starts `n` nodes of `implementation` without connecting them or mining: the caller links
    /// them (e.g. through a [`crate::DelayProxy`]) and then calls [`Network::mine_initial`].
    pub fn start_nodes(&mut self, implementation: Implementation, n: usize) -> Result<usize, TestbedError> {
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let slot = FIRST_NODE_PORT + self.next_node * PORTS_PER_NODE;
            self.next_node += 1;
            let ports = NodePorts {
                p2p: self.block.port(slot),
                rpc: self.block.port(slot + 1),
                zmq: self.block.port(slot + 2),
            };
            let name = format!("{}-{i}", implementation.as_str());
            nodes.push(Node::start(
                implementation,
                &name,
                i,
                &self.tools,
                self.block.dir(),
                ports,
                &self.block.pid_dir(),
            )?);
        }
        self.networks.push(Network::new(implementation, nodes));
        Ok(self.networks.len() - 1)
    }

    /// Network `i`.
    ///
    /// # Panics
    /// If `i` was not returned by [`TestBed::start_network`].
    pub fn network(&self, i: usize) -> &Network {
        &self.networks[i]
    }

    /// Mutable network `i`.
    ///
    /// # Panics
    /// If `i` was not returned by [`TestBed::start_network`].
    pub fn network_mut(&mut self, i: usize) -> &mut Network {
        &mut self.networks[i]
    }
}
