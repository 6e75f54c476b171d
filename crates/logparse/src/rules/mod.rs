//! Message rules: one message in, zero or more events out.

pub mod chain;
pub mod mempool;
pub mod peers;

use bmon_schemas::{EventBody, NodeImplementation};

/// Applies every rule that can match `msg` (dispatching on its first byte, so most lines are
/// tried against one or two rules). Returns whether any event was produced.
pub fn apply(implementation: NodeImplementation, msg: &str, out: &mut Vec<EventBody>) -> bool {
    let before = out.len();
    let trimmed = msg.trim_start();
    let single = match trimmed.as_bytes().first() {
        None => return false,
        Some(b'-') => {
            chain::timing(trimmed, out);
            None
        }
        Some(b'U') => chain::update_tip(msg),
        Some(b'S') => chain::header_seen(msg).or_else(|| chain::compact_reconstructed(msg)),
        Some(b'r') => chain::block_received(msg),
        Some(b'B') => chain::block_connected(msg).or_else(|| peers::node_start(msg)),
        Some(b'L') => peers::node_start(msg),
        Some(b'E') => chain::invalid_block(msg).or_else(|| mempool::validation_accept(msg)),
        Some(b'I') | Some(b'C') => chain::invalid_block(msg),
        Some(b'G') => chain::bsv_compact_block(msg),
        Some(b'P') => chain::invalid_block(msg).or_else(|| chain::bsv_rollback(msg)),
        Some(b'T') => {
            if chain::download_timeout(msg, out) {
                None
            } else {
                peers::rpc_call(msg)
            }
        }
        Some(b'A') => mempool::core_accept(msg),
        Some(b'N') => peers::connected(msg),
        Some(c) if c.is_ascii_hexdigit() => mempool::core_reject(msg),
        Some(_) => None,
    };
    if let Some(event) = single {
        out.push(event);
    }
    let bsv_rules = !matches!(implementation, NodeImplementation::Core | NodeImplementation::Litecoin);
    if out.len() == before
        && bsv_rules
        && let Some(e) = mempool::bsv_txn(msg)
    {
        out.push(e);
    }
    if out.len() == before
        && let Some(e) = peers::disconnected(msg)
    {
        out.push(e);
    }
    out.len() > before
}
