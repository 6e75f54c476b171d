//! The propagation benchmarks' input, shared by `bench_propagation` and `bench_propagation_broker`.

use bmon_schemas::{FactKey, ObjectKind, Observation, ObservationSource, Stage};

/// `objects` objects, each seen by `nodes` nodes in a shuffled order within 2 s; a block every 200
/// objects, the rest transactions; deterministic (a fixed xorshift). One entry per object, its
/// sightings in arrival order.
pub fn observations(objects: usize, nodes: usize) -> Vec<Vec<Observation>> {
    let t0 = 1_800_000_000_000_000i64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..objects)
        .map(|i| {
            let block = i % 200 == 0;
            let hash = format!("{:016x}{:016x}{:016x}{:016x}", rnd(), rnd(), rnd(), rnd());
            let mut order: Vec<usize> = (0..nodes).collect();
            for k in (1..nodes).rev() {
                order.swap(k, (rnd() % (k as u64 + 1)) as usize);
            }
            order
                .into_iter()
                .map(|n| {
                    let at = t0 + i as i64 * 1_000 + (rnd() % 2_000_000) as i64;
                    Observation {
                        hash: hash.clone(),
                        object: if block { ObjectKind::Block } else { ObjectKind::Tx },
                        stage: if block { Stage::Tip } else { Stage::TxAccept },
                        node_id: format!("node-{n}"),
                        network: "main".into(),
                        observed_at_us: at,
                        source: ObservationSource::Log,
                        height: None,
                        fact: FactKey { stream: "log".into(), epoch: "bench".into(), offset: at },
                        received_at_us: Some(at + 2_000),
                        received_late: false,
                    }
                })
                .collect()
        })
        .collect()
}
