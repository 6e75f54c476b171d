//! Reading debug.log: line splitting (pure), file following, and durable checkpoints.

pub mod checkpoint;
pub mod follow;
pub mod lines;
pub mod pace;
pub mod stamp;
pub mod watch;

pub use checkpoint::Checkpoint;
pub use follow::{Batch, FileId, Follower, Position};
pub use lines::{Line, LineSplitter};
pub use pace::ReadPacer;
pub use stamp::{Stamp, Wake};
pub use watch::LogWatch;
