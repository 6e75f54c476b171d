//! One realistic example record of every family (and every union branch), for tests, round-trips
//! through a real broker, and demos.

use std::collections::BTreeMap;

use serde_bytes::ByteBuf;

use crate::types::*;

/// An envelope for `node_id` at `offset` in stream `stream`.
pub fn envelope(node_id: &str, stream: &str, offset: i64) -> Envelope {
    Envelope {
        node_id: node_id.to_owned(),
        network: "regtest".to_owned(),
        implementation: NodeImplementation::Core,
        node_version: "v31.99.0".to_owned(),
        received_at_us: 1_764_021_600_123_456 + offset,
        source: SourceSeq { stream: stream.to_owned(), epoch: "dev=2049,ino=131".to_owned(), offset },
    }
}

const HASH: &str = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";

/// A log line fact with a non-UTF-8 byte in it.
pub fn log_line() -> LogLineFact {
    LogLineFact {
        envelope: envelope("core-0", "log", 4096),
        path: "/data/regtest/debug.log".to_owned(),
        line: b"2026-11-24T22:00:00.123456Z [validation] UpdateTip: new best=\xff".to_vec(),
        truncated: false,
        end_offset: 4096 + 63,
        backlog: false,
    }
}

/// ZMQ facts covering every payload branch.
pub fn zmq_facts() -> Vec<ZmqFact> {
    let payloads = vec![
        ("hashblock", ZmqPayload::Hash(ZmqHash { hash: HASH.to_owned() })),
        (
            "rawblock",
            ZmqPayload::RawBlock(ZmqRawBlock { hash: HASH.to_owned(), header: vec![7; 80], size: 285, tx_count: 1 }),
        ),
        ("rawtx", ZmqPayload::RawTx(ZmqRawTx { txid: HASH.to_owned(), size: 191 })),
        (
            "sequence",
            ZmqPayload::Sequence(ZmqSequence {
                hash: HASH.to_owned(),
                label: "A".to_owned(),
                mempool_sequence: Some(12),
            }),
        ),
        ("hashtx", ZmqPayload::Gap(ZmqGap { expected: 5, received: 9, missed: 4 })),
        ("hashtx", ZmqPayload::SequenceReset(ZmqSequenceReset { previous: 41, received: 0 })),
        ("invalidtx", ZmqPayload::Other(ZmqOther { body: vec![0, 1, 2, 255] })),
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, (topic, payload))| ZmqFact {
            envelope: envelope("bsv-0", &format!("zmq:{topic}"), i as i64),
            topic: topic.to_owned(),
            zmq_sequence: if i % 2 == 0 { Some(i as i64) } else { None },
            payload,
        })
        .collect()
}

/// An RPC success and an RPC failure.
pub fn rpc_facts() -> Vec<RpcSnapshotFact> {
    let ok =
        RpcOutcome::Ok(RpcOk { json: r#"[{"height":101,"hash":"00","branchlen":0,"status":"active"}]"#.to_owned() });
    let err = RpcOutcome::Err(RpcErr { code: Some(-28), message: "Loading block index…".to_owned() });
    [ok, err]
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| RpcSnapshotFact {
            envelope: envelope("core-1", "rpc:getchaintips", i as i64),
            method: "getchaintips".to_owned(),
            params: "[]".to_owned(),
            duration_us: 850,
            outcome,
        })
        .collect()
}

/// Node events covering every event kind.
pub fn node_events() -> Vec<NodeEvent> {
    let h = || HASH.to_owned();
    let bodies = vec![
        EventBody::UpdateTip(UpdateTip {
            hash: h(),
            height: 101,
            log2_work: Some(7.658211),
            tx_count: Some(102),
            block_time_us: Some(1_764_021_600_000_000),
            progress: Some(1.0),
            cache_mib: Some(0.1),
            cache_txo: Some(101),
            warning: None,
        }),
        EventBody::HeaderSeen(HeaderSeen { hash: h(), height: Some(102), peer: Some(3), compact: true }),
        EventBody::BlockReceived(BlockReceived { hash: h(), peer: Some(3) }),
        EventBody::CompactBlockReconstructed(CompactBlockReconstructed {
            hash: h(),
            prefilled: 1,
            from_mempool: 2500,
            from_extra_pool: Some(3),
            requested: 4,
        }),
        EventBody::ConnectBlockTimings(ConnectBlockTimings {
            stage: "Connect block".to_owned(),
            duration_us: 1090,
            count: None,
        }),
        EventBody::BlockConnected(BlockConnected { hash: Some(h()), height: Some(101) }),
        EventBody::BlockDisconnected(BlockDisconnected { hash: Some(h()), height: Some(101) }),
        EventBody::InvalidBlock(InvalidBlock {
            hash: Some(h()),
            height: None,
            reason: "bad-cb-amount".to_owned(),
            origin: "ConnectBlock".to_owned(),
        }),
        EventBody::BlockDownloadTimeout(BlockDownloadTimeout { hash: Some(h()), peer: Some(9) }),
        EventBody::MempoolAccept(MempoolAccept {
            txid: h(),
            wtxid: Some(h()),
            peer: Some(2),
            pool_size: Some(17),
            pool_bytes: Some(4),
        }),
        EventBody::MempoolReject(MempoolReject {
            txid: h(),
            wtxid: None,
            peer: Some(2),
            reason: "min relay fee not met".to_owned(),
            code: Some(66),
            detail: Some("110 < 141".to_owned()),
            fee_rate: None,
        }),
        EventBody::PeerConnected(PeerConnected {
            peer: 4,
            addr: Some("127.0.0.1:18444".to_owned()),
            version: Some(70016),
            subver: Some("/Satoshi:31.99.0/".to_owned()),
            inbound: false,
            conn_type: Some("manual".to_owned()),
        }),
        EventBody::PeerDisconnected(PeerDisconnected { peer: 4, reason: Some("socket closed".to_owned()) }),
        EventBody::NodeStart(NodeStart { version: "Bitcoin Core version v31.99.0".to_owned() }),
        EventBody::Unknown(Unknown { category: Some("net".to_owned()), message: "something new".to_owned() }),
        EventBody::ChainTips(ChainTips {
            tips: vec![
                ChainTipEntry { hash: h(), height: 101, branchlen: 0, status: "active".to_owned() },
                ChainTipEntry { hash: h(), height: 100, branchlen: 1, status: "valid-fork".to_owned() },
            ],
        }),
        EventBody::RpcCall(RpcCall { method: "invalidateblock".to_owned() }),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, event)| NodeEvent {
            envelope: envelope("core-2", "log", 100 * i as i64),
            index: 0,
            logged_at_us: Some(1_764_021_600_000_000 + i as i64),
            thread: Some("msghand".to_owned()),
            category: None,
            event,
        })
        .collect()
}

/// A block-header observation.
pub fn observation() -> Observation {
    Observation {
        hash: HASH.to_owned(),
        object: ObjectKind::Block,
        stage: Stage::Header,
        node_id: "core-1".to_owned(),
        network: "regtest".to_owned(),
        observed_at_us: 1_764_021_600_200_000,
        source: ObservationSource::Log,
        height: Some(102),
        fact: FactKey { stream: "log".to_owned(), epoch: "dev=2049,ino=131".to_owned(), offset: 777 },
        received_at_us: Some(1_700_000_000_050_000),
        received_late: false,
    }
}

/// A closed propagation window.
pub fn propagation_summary() -> PropagationSummary {
    PropagationSummary {
        hash: HASH.to_owned(),
        object: ObjectKind::Block,
        stage: Stage::Block,
        network: "regtest".to_owned(),
        first_node: "core-0".to_owned(),
        first_seen_us: 1_764_021_600_000_000,
        lags: vec![
            NodeLag {
                node_id: "core-0".to_owned(),
                observed_at_us: 1_764_021_600_000_000,
                lag_us: 0,
                corrected: true,
                late: false,
            },
            NodeLag {
                node_id: "core-1".to_owned(),
                observed_at_us: 1_764_021_600_300_000,
                lag_us: 300_000,
                corrected: true,
                late: false,
            },
        ],
        spread_us: 300_000,
        stddev_us: 150_000.0,
        missing_nodes: vec!["core-2".to_owned()],
        expected_nodes: 3,
        late_count: 0,
        clock_corrected: true,
        close_reason: CloseReason::Timeout,
        closed_at_us: 1_764_022_200_000_000,
        revision: 0,
    }
}

/// A node's chain view.
pub fn node_view() -> NodeView {
    NodeView {
        envelope: envelope("core-0", "rpc:getblockchaininfo", 3),
        method: "getblockchaininfo".to_owned(),
        view_json: r#"{"chain":"regtest","blocks":106}"#.to_owned(),
    }
}

/// An anomaly of [`propagation_summary`].
pub fn propagation_anomaly() -> PropagationAnomaly {
    let s = propagation_summary();
    PropagationAnomaly {
        hash: s.hash,
        object: s.object,
        stage: s.stage,
        network: s.network,
        revision: s.revision,
        spread_us: s.spread_us,
        threshold_us: 120_000,
        quantile: 0.99,
        first_node: s.first_node,
        last_node: "core-1".to_owned(),
    }
}

/// A depth-2 reorg on core-1.
pub fn chain_reorg() -> ChainReorg {
    ChainReorg {
        node_id: "core-1".to_owned(),
        network: "regtest".to_owned(),
        old_tip: "aa".repeat(32),
        old_height: 105,
        new_tip: "bb".repeat(32),
        new_height: 105,
        fork_height: 103,
        fork_hash: Some("cc".repeat(32)),
        depth: 2,
        disconnected: vec!["dd".repeat(32), "aa".repeat(32)],
        connected: vec!["ee".repeat(32), "bb".repeat(32)],
        source: "log".to_owned(),
        detected_at_us: 1_764_021_600_123_456,
    }
}

/// One of each chain event kind but the reorg.
pub fn chain_events() -> (SelfishMiningSuspect, StaleTip, ChainInvalidBlock, NodeLagging, Inflation) {
    let r = chain_reorg();
    (
        SelfishMiningSuspect {
            node_id: r.node_id.clone(),
            network: r.network.clone(),
            depth: r.depth,
            branch_length: 2,
            winning: r.connected.clone(),
            arrival_gaps_us: vec![1_200],
            span_us: 30_000_000,
            old_tip: r.old_tip.clone(),
            new_tip: r.new_tip.clone(),
        },
        StaleTip {
            node_id: r.node_id.clone(),
            network: r.network.clone(),
            hash: r.new_tip.clone(),
            height: 105,
            block_time_us: 1_764_014_400_000_000,
            age_us: 7_200_000_000,
            limit_us: 5_400_000_000,
        },
        ChainInvalidBlock {
            node_id: r.node_id.clone(),
            network: r.network.clone(),
            hash: Some("ff".repeat(32)),
            height: Some(106),
            reason: "bad-cb-amount".to_owned(),
            origin: "ConnectBlock".to_owned(),
            operator_marked: false,
            seen_at_us: 1_764_021_600_000_001,
        },
        NodeLagging {
            node_id: "core-2".to_owned(),
            network: r.network.clone(),
            lagging: true,
            blocks_behind: 4,
            node_height: 101,
            best_height: 105,
            best_node: "core-0".to_owned(),
            at_us: 1_764_021_600_000_002,
        },
        Inflation {
            node_id: r.node_id,
            network: r.network,
            check: "growth".to_owned(),
            from_height: Some(100),
            to_height: 101,
            total_sat: 505_000_000_001,
            allowed_sat: 505_000_000_000,
            excess_sat: 1,
            at_us: 1_764_021_600_000_003,
        },
    )
}

/// A block connect time, and a comparison of three nodes' times for that block.
pub fn block_connects() -> (BlockConnect, BlockConnectComparison) {
    let hash = "ab".repeat(32);
    let connect = BlockConnect {
        node_id: "core-2".to_owned(),
        network: "regtest".to_owned(),
        hash: hash.clone(),
        height: 105,
        connect_us: 9_000,
        at_us: 1_764_021_600_000_004,
    };
    let node = |n: &str, us: i64| NodeConnect { node_id: n.to_owned(), connect_us: us, ratio: us as f64 / 3_000.0 };
    let comparison = BlockConnectComparison {
        network: "regtest".to_owned(),
        hash,
        height: 105,
        nodes: vec![node("core-2", 9_000), node("core-0", 3_000), node("core-1", 2_500)],
        median_us: 3_000,
        slowest_node: "core-2".to_owned(),
        slowest_us: 9_000,
        ratio: 3.0,
        closed_at_us: 1_764_021_660_000_000,
    };
    (connect, comparison)
}

/// A rejection spike and a mempool-empty event.
pub fn mempool_events() -> (MempoolRejectionSpike, MempoolEmpty) {
    (
        MempoolRejectionSpike {
            node_id: "core-1".to_owned(),
            network: "regtest".to_owned(),
            reason: "txn-mempool-conflict".to_owned(),
            example_reason: "txn-mempool-conflict".to_owned(),
            count: 12,
            baseline: 0.5,
            bucket_us: 60_000_000,
            bucket_start_us: 1_764_021_600_000_000,
        },
        MempoolEmpty {
            node_id: "core-2".to_owned(),
            network: "regtest".to_owned(),
            empty: true,
            since_us: 1_764_021_000_000_000,
            others_max_size: 40,
            at_us: 1_764_021_600_000_000,
        },
    )
}

/// A transaction's verdict, and a policy divergence over it.
pub fn policy_events() -> (TxVerdict, PolicyDivergence) {
    let txid = "cd".repeat(32);
    let verdict = |node: &str, reason: &str| NodeVerdict {
        node_id: node.to_owned(),
        node_version: "v31.99.0".to_owned(),
        reason: reason.to_owned(),
    };
    (
        TxVerdict {
            node_id: "core-2".to_owned(),
            network: "regtest".to_owned(),
            node_version: "v31.99.0".to_owned(),
            txid: txid.clone(),
            accepted: false,
            reason: "datacarrier".to_owned(),
            at_us: 1_764_021_600_000_005,
        },
        PolicyDivergence {
            network: "regtest".to_owned(),
            txid,
            accepted_by: vec![verdict("core-0", ""), verdict("core-1", "")],
            rejected_by: vec![verdict("core-2", "datacarrier")],
            first_at_us: 1_764_021_600_000_000,
            closed_at_us: 1_764_021_660_000_000,
        },
    )
}

/// A split between two nodes at height 105.
pub fn chain_split() -> ChainSplit {
    ChainSplit {
        network: "regtest".to_owned(),
        split: true,
        height: 105,
        tips: vec![
            SplitTip { node_id: "core-0".to_owned(), hash: "aa".repeat(32) },
            SplitTip { node_id: "core-2".to_owned(), hash: "bb".repeat(32) },
        ],
        since_us: 1_764_021_600_000_000,
        at_us: 1_764_021_660_000_000,
    }
}

/// A dead letter with headers.
pub fn dead_letter() -> DeadLetter {
    let mut headers = BTreeMap::new();
    headers.insert("traceparent".to_owned(), ByteBuf::from(b"00-abc".to_vec()));
    DeadLetter {
        topic: "bmon.node.log".to_owned(),
        partition: 3,
        offset: 42,
        key: Some(b"core-0".to_vec()),
        payload: vec![0xC3, 0x01, 0xde, 0xad],
        headers,
        reason: "unknown schema fingerprint 0xdeadbeef".to_owned(),
        error_class: "decode".to_owned(),
        processor: "logparse".to_owned(),
        failed_at_us: 1_764_021_600_999_999,
    }
}

/// A conflict marker, a mempool divergence, a conflict and a template divergence.
pub fn divergence_events() -> (TxConflict, MempoolDivergence, MempoolConflict, TemplateDivergence) {
    let txid = "ef".repeat(32);
    (
        TxConflict {
            node_id: "core-1".to_owned(),
            network: "regtest".to_owned(),
            node_version: "v31.99.0".to_owned(),
            txid: txid.clone(),
            reason: "txn-mempool-conflict".to_owned(),
            at_us: 1_764_021_600_000_006,
        },
        MempoolDivergence {
            node_id: "core-2".to_owned(),
            network: "regtest".to_owned(),
            diverged: true,
            missing: 5,
            extra: 0,
            conflicts: 1,
            similarity: 0.9,
            node_size: 45,
            majority_size: 50,
            nodes: 3,
            missing_sample: vec![txid.clone()],
            extra_sample: vec![],
            at_us: 1_764_021_600_000_007,
        },
        MempoolConflict {
            network: "regtest".to_owned(),
            txid: txid.clone(),
            held_by: vec!["core-0".to_owned()],
            refused_by: vec![NodeVerdict {
                node_id: "core-1".to_owned(),
                node_version: "v31.99.0".to_owned(),
                reason: "txn-mempool-conflict".to_owned(),
            }],
            at_us: 1_764_021_600_000_008,
        },
        TemplateDivergence {
            node_id: "core-2".to_owned(),
            network: "regtest".to_owned(),
            previous_block: "ab".repeat(32),
            height: 210,
            nodes: 3,
            similarity: 0.5,
            missing: 4,
            extra: 0,
            missing_sample: vec![txid],
            extra_sample: vec![],
            tx_count: 4,
            median_tx_count: 8,
            fees: 1_000,
            median_fees: 2_000,
            weight: 3_000,
            median_weight: 6_000,
            coinbase_value: 5_000_001_000,
            median_coinbase_value: 5_000_002_000,
            at_us: 1_764_021_600_000_009,
        },
    )
}
