//! Ending a server's whole process tree: SIGTERM, a grace period, then SIGKILL, leaving no orphan.
//!
//! Signals go to the process group (reaching children born after the last scan) and to every member
//! individually (reaching those that left the group with setsid/setpgid). Members are signalled through
//! a pidfd checked against the member's start time, so a recycled pid never receives the signal.
//!
//! The root is never waited for here: tokio owns that child and the caller awaits `child.wait()`.
//! Zombie members the watchdog inherited as subreaper are reaped (see `ProcessTree::is_running`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::time::{sleep, Instant};

use super::process_tree::{Incarnation, Observed, ProcessTree};

/// How often to look whether the signalled processes are gone.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long SIGKILLed processes get to disappear (a process in uninterruptible sleep may take a while).
const KILL_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminationReport {
    /// Processes that ended during the grace period.
    pub terminated: usize,
    /// Processes that ended only after SIGKILL.
    pub killed: usize,
    /// Processes still running after SIGKILL and the wait (e.g. stuck in the kernel, or not ours to
    /// signal).
    pub survivors: Vec<u32>,
}

/// Terminates every process of the tree; `grace` is how long SIGTERM gets before SIGKILL.
pub async fn terminate_tree(tree: &ProcessTree, grace: Duration) -> TerminationReport {
    refresh(tree);
    let asked = running(tree);
    signal_tree(tree, &asked, Signal::SIGTERM);
    let grace_end = Instant::now() + grace;
    while asked.iter().any(|member| tree.is_running(member)) && Instant::now() < grace_end {
        sleep(POLL_INTERVAL.min(grace_end.saturating_duration_since(Instant::now()))).await;
    }
    let terminated = asked.iter().filter(|m| !tree.is_running(m)).count();
    kill_remaining(tree, terminated).await
}

/// Kills every process of the tree at once, without the SIGTERM a hostile tree could use to react
/// (strict mode).
pub async fn kill_tree(tree: &ProcessTree) -> TerminationReport {
    kill_remaining(tree, 0).await
}

async fn kill_remaining(tree: &ProcessTree, terminated: usize) -> TerminationReport {
    // Rescan on every round: children forked during the grace period, or by a process in the instant
    // before its SIGKILL landed, are found and killed too.
    let mut sentenced: Vec<Incarnation> = Vec::new();
    let kill_end = Instant::now() + KILL_WAIT;
    loop {
        refresh(tree);
        let remaining = running(tree);
        let new: Vec<Incarnation> = remaining
            .iter()
            .filter(|member| !sentenced.contains(member))
            .copied()
            .collect();
        if !new.is_empty() {
            signal_tree(tree, &new, Signal::SIGKILL);
            sentenced.extend(new);
        }
        if remaining.is_empty() || Instant::now() >= kill_end {
            break;
        }
        sleep(POLL_INTERVAL).await;
    }

    let (survivors, killed): (Vec<Incarnation>, Vec<Incarnation>) =
        sentenced.iter().partition(|member| tree.is_running(member));
    let report = TerminationReport {
        terminated,
        killed: killed.len(),
        survivors: survivors.iter().map(|member| member.pid).collect(),
    };
    if !report.survivors.is_empty() {
        tracing::warn!(root = tree.root(), survivors = ?report.survivors, "processes survived SIGKILL");
    }
    report
}

fn refresh(tree: &ProcessTree) {
    // A failed scan still leaves the members known so far, which are signalled anyway.
    if let Err(error) = tree.refresh() {
        tracing::warn!(%error, root = tree.root(), "cannot scan /proc for the process tree");
    }
}

fn running(tree: &ProcessTree) -> Vec<Incarnation> {
    tree.incarnations()
        .into_iter()
        .filter(|member| tree.is_running(member))
        .collect()
}

fn signal_tree(tree: &ProcessTree, members: &[Incarnation], signal: Signal) {
    // An empty group's id may have been recycled by now; only a group that still holds the server's
    // processes is signalled.
    if tree.owns_group() {
        match killpg(Pid::from_raw(tree.pgid()), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => {
                tracing::warn!(%error, pgid = tree.pgid(), ?signal, "cannot signal group")
            }
        }
    }
    for member in members {
        match signal_member(member, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => {
                tracing::warn!(%error, pid = member.pid, ?signal, "cannot signal process")
            }
        }
    }
}

/// Signals the member only if its pid still names it. The pidfd pins the process found at the pid;
/// reading the start time after opening it proves that process is the member.
fn signal_member(member: &Incarnation, signal: Signal) -> Result<(), Errno> {
    let pidfd = match open_pidfd(member.pid) {
        Ok(pidfd) => Some(pidfd),
        // Kernels before 5.3: the start time check below narrows the race, it cannot close it.
        Err(Errno::ENOSYS) => None,
        Err(error) => return Err(error),
    };
    let still_the_member = Observed::read(member.pid).is_some_and(|seen| {
        member
            .start_time
            .is_none_or(|start| start == seen.start_time)
    });
    if !still_the_member {
        return Err(Errno::ESRCH);
    }
    match pidfd {
        Some(pidfd) => {
            // SAFETY: a valid pidfd, a signal number, and no siginfo (the kernel fills in SI_USER).
            let result = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signal as libc::c_int,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            Errno::result(result).map(drop)
        }
        None => kill(Pid::from_raw(member.pid as i32), signal),
    }
}

fn open_pidfd(pid: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new file descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::process_tree::testing::{pid_of, read_labels, spawn_script};
    use crate::supervisor::spawn::become_subreaper;
    use std::os::unix::process::ExitStatusExt;
    use tokio::io::AsyncWriteExt;

    /// Running, as opposed to gone or a zombie.
    fn is_alive(pid: u32) -> bool {
        Observed::read(pid).is_some_and(|seen| !seen.ended)
    }

    #[tokio::test]
    async fn nothing_of_the_tree_survives() {
        let stubborn =
            r#"trap "" TERM; sleep 300 & echo "stubborn_sleep $!"; echo "stubborn $$"; wait; true"#;
        let mut server = spawn_script(
            r#"sleep 300 & echo "sleeper $!"
               sh -c "$1" &
               setsid sleep 300 & echo "detached $!"
               wait"#,
            &[stubborn],
            &["sleeper", "stubborn", "stubborn_sleep", "detached"],
        )
        .await;
        let mut pids: Vec<u32> = server.labels.values().copied().collect();
        pids.push(server.tree.root());

        let report = terminate_tree(&server.tree, Duration::from_millis(300)).await;

        let alive: Vec<u32> = pids.iter().copied().filter(|&pid| is_alive(pid)).collect();
        assert!(alive.is_empty(), "still alive: {alive:?}");
        // Root, sleeper and the detached sleep obey SIGTERM; the stubborn pair ignores it.
        assert_eq!(
            report,
            TerminationReport {
                terminated: 3,
                killed: 2,
                survivors: vec![]
            }
        );
        assert!(server.tree.is_empty());
        // The root was left for tokio to reap, with its real exit status.
        let status = server.child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    }

    #[tokio::test]
    async fn a_reparented_orphan_is_tracked_and_killed() {
        become_subreaper().unwrap();
        let mut server = spawn_script(
            r#"sh -c "$1"; echo reparented; sleep 300; true"#,
            &[r#"sleep 300 & echo "orphan $!"; echo "middle $$"; read go"#],
            &["orphan", "middle"],
        )
        .await;
        let orphan = pid_of(&server.labels, "orphan");
        let tree = server.tree.clone();
        tree.refresh().unwrap();
        assert!(tree.contains(orphan));

        let child = &mut server.child;
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .await
            .unwrap();
        read_labels(child.stdout.as_mut().unwrap(), &["reparented"]).await;
        tree.refresh().unwrap();
        let member = tree.members().into_iter().find(|m| m.pid == orphan);
        assert_eq!(member.map(|m| m.ppid), Some(std::process::id()));

        let report = terminate_tree(&tree, Duration::from_millis(300)).await;
        assert!(report.survivors.is_empty());
        // Killed and reaped: the watchdog, its new parent, leaves no zombie.
        assert_eq!(Observed::read(orphan), None);
    }

    #[tokio::test]
    async fn an_orphan_never_seen_with_its_parent_is_killed() {
        become_subreaper().unwrap();
        let server = spawn_script(
            r#"sh -c 'sleep 300 & echo "orphan $!"'; echo ready; sleep 300; true"#,
            &[],
            &["orphan", "ready"],
        )
        .await;
        let orphan = pid_of(&server.labels, "orphan");
        server.tree.refresh().unwrap();
        assert!(server.tree.contains(orphan));

        terminate_tree(&server.tree, Duration::from_millis(300)).await;
        assert!(!is_alive(orphan));
    }

    #[tokio::test]
    async fn children_forked_during_the_grace_period_are_killed() {
        let mut server = spawn_script(
            r#"trap 'setsid sleep 300 & echo "late $!"' TERM
               echo ready
               while :; do sleep 0.05; done"#,
            &[],
            &["ready"],
        )
        .await;
        let report = terminate_tree(&server.tree, Duration::from_millis(500)).await;
        let child = &mut server.child;
        let late = pid_of(
            &read_labels(child.stdout.as_mut().unwrap(), &["late"]).await,
            "late",
        );
        let survived = is_alive(late);
        if survived {
            // Out of the group and orphaned: the tree's guard cannot find it either.
            let _ = kill(Pid::from_raw(late as i32), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(late as i32), None);
        }
        assert!(!survived, "late child {late} survived");
        assert!(report.killed >= 2, "{report:?}");
        assert!(report.survivors.is_empty());
    }

    #[tokio::test]
    async fn an_ended_tree_needs_no_signal() {
        let mut server = spawn_script("echo ready", &[], &["ready"]).await;
        server.child.wait().await.unwrap();
        let report = terminate_tree(&server.tree, Duration::from_secs(5)).await;
        assert_eq!(report, TerminationReport::default());
    }
}
