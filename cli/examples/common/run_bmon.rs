//! Running the release `bmon` beside a benchmark example on the test bed.

use std::path::PathBuf;

use bmon_testbed::{Managed, TestBed};

/// The `bmon` binary built beside this example (`target/<profile>/bmon`).
pub fn bmon_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("bmon")
}

/// Starts `bmon args…` on the bed with `config` as its config file.
pub fn spawn(bed: &TestBed, name: &str, args: &[&str], config: &str) -> Managed {
    bed.spawn_with_config(name, &bmon_bin(), args, config).unwrap()
}
