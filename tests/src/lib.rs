//! Shared helpers for the end-to-end tests: where the built binaries are, and a harness that drives a
//! running watchdog (see `harness`).

pub mod harness;

use std::path::PathBuf;

/// The directory cargo put this test's binaries in (`target/<profile>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a binary built in this workspace, with a clear message when it was not built.
pub fn workspace_bin(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} not found; run `cargo test --workspace` (the watchdog package's own integration tests make cargo build it)",
        path.display()
    );
    path
}

/// The `mcp-watchdog` binary under test.
pub fn watchdog_bin() -> PathBuf {
    workspace_bin("mcp-watchdog")
}

/// The scripted fake MCP server used by the end-to-end tests.
pub fn fake_upstream_bin() -> PathBuf {
    workspace_bin("fake-upstream")
}
