//! One module per subcommand group.

pub mod demo;
pub mod parse_log;
pub mod process;
pub mod produce;
pub mod testbed;
pub mod topology;
