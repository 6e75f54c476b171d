//! One module per subcommand group.

pub mod produce;
pub mod testbed;
pub mod topology;
