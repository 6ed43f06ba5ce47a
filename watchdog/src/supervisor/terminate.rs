//! TEMPORARY minimal version; replaced by the procs branch.
use super::process_tree::ProcessTree;
use std::time::Duration;
#[derive(Debug, Default)]
pub struct TerminationReport {
    pub terminated: usize,
    pub killed: usize,
    pub survivors: Vec<u32>,
}
pub async fn terminate_tree(tree: &ProcessTree, grace: Duration) -> TerminationReport {
    let pg = nix::unistd::Pid::from_raw(-(tree.root() as i32));
    let _ = nix::sys::signal::kill(pg, nix::sys::signal::Signal::SIGTERM);
    tokio::time::sleep(grace.min(Duration::from_millis(200))).await;
    let _ = nix::sys::signal::kill(pg, nix::sys::signal::Signal::SIGKILL);
    TerminationReport::default()
}
