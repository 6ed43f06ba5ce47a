//! The last sweep at shutdown: the watchdog is a child subreaper, so anything a server left behind
//! that escaped its process group and tree tracking ends up as the watchdog's own child.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Direct children of this process, read from /proc.
fn own_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.ppid == me && s.state != 'Z')
        .map(|s| s.pid)
        .collect()
}

/// TERM, then after `grace` KILL, every remaining child; reaps them.
pub async fn sweep_orphans(grace: Duration) {
    let children = own_children();
    if children.is_empty() {
        return;
    }
    tracing::debug!("sweeping {} leftover child processes", children.len());
    for &pid in &children {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !own_children().is_empty() {
        reap(&children);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pid in own_children() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    reap(&children);
}

fn reap(pids: &[i32]) {
    for &pid in pids {
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}
