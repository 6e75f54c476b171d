//! Pure parser from node `debug.log` lines to typed node events.
//!
//! It does no I/O: one line (plus the node's implementation) in, zero or more
//! [`EventBody`] values out. It understands Bitcoin Core 0.10 to v31 (old `YYYY-MM-DD HH:MM:SS`
//! and ISO `…Z` timestamps, with or without microseconds; `[thread]`, `[category]`,
//! `[category:level]` and `-logsourcelocations` prefixes), BSV 1.0.13 and Litecoin 0.21. A line no
//! rule matches becomes [`EventBody::Unknown`] with its category, so new lines stay visible; an
//! empty line gives no event. It never panics, whatever the bytes.
//!
//! ```
//! use bmon_logparse::{Parser, kind};
//! use bmon_schemas::NodeImplementation;
//!
//! let parser = Parser::new(NodeImplementation::Core);
//! let mut events = Vec::new();
//! let line = "2023-05-16T05:49:52.202998Z [msghand] Saw new header \
//!     hash=00000000000000000004b2aea48da395156297a536ca62c2c53d25e14225f72a height=789959";
//! let header = parser.parse_line(line, &mut events);
//! assert_eq!(header.logged_at_us, Some(1_684_216_192_202_998));
//! assert_eq!(kind(&events[0]), "header_seen");
//! ```

mod detect;
mod json;
mod prefix;
mod rules;
pub mod scan;
pub mod synth;
pub mod time;

pub use bmon_schemas::EventBody;
pub use detect::detect;
pub use json::event_json;
pub use prefix::{LineHeader, split_line};
pub use time::{Stamp, parse_stamp};

use bmon_schemas::{NodeImplementation, Unknown};

/// A line parser for one node's log.
#[derive(Debug, Clone, Copy)]
pub struct Parser {
    implementation: NodeImplementation,
}

impl Parser {
    /// A parser for logs of `implementation` (`Unknown` tries every implementation's rules).
    pub fn new(implementation: NodeImplementation) -> Parser {
        Parser { implementation }
    }

    /// The implementation this parser reads.
    pub fn implementation(&self) -> NodeImplementation {
        self.implementation
    }

    /// Parses one line (without its newline), appending its events to `out`; returns the line's
    /// prefix. A line no rule matches appends one [`EventBody::Unknown`].
    pub fn parse_line<'a>(&self, line: &'a str, out: &mut Vec<EventBody>) -> LineHeader<'a> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let header = split_line(line);
        if !rules::apply(self.implementation, header.message, out) && !header.message.trim().is_empty() {
            out.push(EventBody::Unknown(Unknown {
                category: header.category.map(str::to_owned),
                message: header.message.to_owned(),
            }));
        }
        header
    }
}

/// The snake_case kind of an event, as `bmon parse-log` prints it.
pub fn kind(event: &EventBody) -> &'static str {
    match event {
        EventBody::UpdateTip(_) => "update_tip",
        EventBody::HeaderSeen(_) => "header_seen",
        EventBody::BlockReceived(_) => "block_received",
        EventBody::CompactBlockReconstructed(_) => "compact_block_reconstructed",
        EventBody::ConnectBlockTimings(_) => "connect_block_timings",
        EventBody::BlockConnected(_) => "block_connected",
        EventBody::BlockDisconnected(_) => "block_disconnected",
        EventBody::InvalidBlock(_) => "invalid_block",
        EventBody::BlockDownloadTimeout(_) => "block_download_timeout",
        EventBody::MempoolAccept(_) => "mempool_accept",
        EventBody::MempoolReject(_) => "mempool_reject",
        EventBody::PeerConnected(_) => "peer_connected",
        EventBody::PeerDisconnected(_) => "peer_disconnected",
        EventBody::NodeStart(_) => "node_start",
        EventBody::Unknown(_) => "unknown",
        EventBody::ChainTips(_) => "chain_tips",
        EventBody::RpcCall(_) => "rpc_call",
    }
}
