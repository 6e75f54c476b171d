//! One module per subcommand group.

pub mod testbed;
pub mod topology;
