//! Which processes belong to which server: a server's process tree, followed through /proc.
//!
//! A tree is the server's direct child (the root) and everything seen descending from it. Membership is
//! sticky: a member whose parent exits is reparented (to the watchdog, a subreaper, or to init) and stays
//! a member, because it was seen before. A process that double-forks away before any scan saw it is still
//! adopted if it stayed in the server's process group. Pids are recycled, so each member is remembered
//! with its start time: a pid whose start time changed is another process.
//!
//! A zombie no longer runs and has no children; it counts as gone. Zombies of members that were
//! reparented to the watchdog are reaped here, or nobody would (tokio reaps only the root).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// A member as last seen by [`ProcessTree::refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
}

/// A pid together with the start time that tells this process apart from a later one reusing the pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incarnation {
    pub(crate) pid: u32,
    /// Clock ticks after boot; `None` only for a root that was already gone when the tree was created.
    pub(crate) start_time: Option<u64>,
}

/// One process as seen in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observed {
    pub(crate) ppid: u32,
    pub(crate) pgrp: i32,
    pub(crate) comm: String,
    pub(crate) start_time: u64,
    /// Zombie or dead: it has exited but may not be reaped yet.
    pub(crate) ended: bool,
}

impl Observed {
    /// None when the process does not exist (any more). Reading /proc races with exits by nature.
    pub(crate) fn read(pid: u32) -> Option<Observed> {
        let stat = procfs::process::Process::new(pid as i32)
            .and_then(|process| process.stat())
            .ok()?;
        Some(Observed {
            ppid: u32::try_from(stat.ppid).unwrap_or(0),
            pgrp: stat.pgrp,
            comm: stat.comm,
            start_time: stat.starttime,
            ended: matches!(stat.state, 'Z' | 'X' | 'x'),
        })
    }

    fn is(&self, incarnation: &Incarnation) -> bool {
        incarnation
            .start_time
            .is_none_or(|start| start == self.start_time)
    }
}

/// Every process in /proc at one moment (modulo the processes that came and went while reading).
#[derive(Debug, Default)]
pub(crate) struct Scan {
    processes: HashMap<u32, Observed>,
}

impl Scan {
    pub(crate) fn take() -> io::Result<Scan> {
        let all = procfs::process::all_processes().map_err(io::Error::other)?;
        let processes = all
            // A process that exits between readdir and reading its stat is simply not in the scan.
            .filter_map(Result::ok)
            .filter_map(|process| {
                let pid = u32::try_from(process.pid()).ok()?;
                Some((pid, Observed::read(pid)?))
            })
            .collect();
        Ok(Scan { processes })
    }

    #[cfg(test)]
    pub(crate) fn from_processes(processes: impl IntoIterator<Item = (u32, Observed)>) -> Scan {
        Scan {
            processes: processes.into_iter().collect(),
        }
    }
}

#[derive(Debug)]
struct MemberState {
    ppid: u32,
    pgrp: i32,
    comm: String,
    start_time: Option<u64>,
}

#[derive(Debug)]
struct TreeState {
    root: u32,
    root_start_time: Option<u64>,
    members: HashMap<u32, MemberState>,
}

/// The processes of one server. Cheap to clone; clones share the same membership.
#[derive(Debug, Clone)]
pub struct ProcessTree {
    state: Arc<Mutex<TreeState>>,
}

impl ProcessTree {
    /// `root_pid` is the server's direct child, which leads its own process group (pgid == pid).
    /// Call this right after spawning, while the child cannot have been reaped yet.
    pub fn new(root_pid: u32) -> ProcessTree {
        let seen = Observed::read(root_pid);
        let root = MemberState {
            ppid: seen.as_ref().map_or(0, |s| s.ppid),
            pgrp: root_pid as i32,
            comm: seen.as_ref().map_or_else(String::new, |s| s.comm.clone()),
            start_time: seen.as_ref().map(|s| s.start_time),
        };
        ProcessTree {
            state: Arc::new(Mutex::new(TreeState {
                root: root_pid,
                root_start_time: root.start_time,
                members: HashMap::from([(root_pid, root)]),
            })),
        }
    }

    pub fn root(&self) -> u32 {
        self.lock().root
    }

    /// The server's process group, which the root created and leads.
    pub fn pgid(&self) -> i32 {
        self.lock().root as i32
    }

    /// Scans /proc once and brings membership up to date.
    pub fn refresh(&self) -> io::Result<()> {
        self.refresh_from(&Scan::take()?);
        Ok(())
    }

    pub(crate) fn refresh_from(&self, scan: &Scan) {
        let mut state = self.lock();
        let state = &mut *state;
        let root = state.root;
        let pgid = root as i32;

        state.members.retain(|&pid, member| {
            let Some(seen) = scan.processes.get(&pid) else {
                return false;
            };
            let incarnation = Incarnation {
                pid,
                start_time: member.start_time,
            };
            if !seen.is(&incarnation) {
                return false;
            }
            if seen.ended {
                reap_if_orphan(pid, seen, root);
                return false;
            }
            *member = MemberState {
                ppid: seen.ppid,
                pgrp: seen.pgrp,
                comm: seen.comm.clone(),
                start_time: Some(seen.start_time),
            };
            true
        });

        // A process group id cannot be recycled while anything is in the group; the leader (even as a
        // zombie) or a known member in it proves the group is still the server's.
        let leader_present = scan
            .processes
            .get(&root)
            .is_some_and(|seen| state.root_start_time == Some(seen.start_time));
        let owns_group = leader_present || state.members.values().any(|m| m.pgrp == pgid);

        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut frontier: VecDeque<u32> = state.members.keys().copied().collect();
        for (&pid, seen) in &scan.processes {
            if seen.ended {
                continue;
            }
            children.entry(seen.ppid).or_default().push(pid);
            if owns_group && seen.pgrp == pgid && !state.members.contains_key(&pid) {
                state.members.insert(pid, MemberState::from(seen));
                frontier.push_back(pid);
            }
        }
        while let Some(parent) = frontier.pop_front() {
            for &child in children.get(&parent).into_iter().flatten() {
                if let Entry::Vacant(entry) = state.members.entry(child) {
                    entry.insert(MemberState::from(&scan.processes[&child]));
                    frontier.push_back(child);
                }
            }
        }
    }

    pub fn members(&self) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .lock()
            .members
            .iter()
            .map(|(&pid, member)| Member {
                pid,
                ppid: member.ppid,
                comm: member.comm.clone(),
            })
            .collect();
        members.sort_by_key(|member| member.pid);
        members
    }

    /// Membership as of the last refresh; does not scan.
    pub fn contains(&self, pid: u32) -> bool {
        self.lock().members.contains_key(&pid)
    }

    /// True when no live process was left at the last refresh.
    pub fn is_empty(&self) -> bool {
        self.lock().members.is_empty()
    }

    pub(crate) fn incarnations(&self) -> Vec<Incarnation> {
        self.lock()
            .members
            .iter()
            .map(|(&pid, member)| Incarnation {
                pid,
                start_time: member.start_time,
            })
            .collect()
    }

    /// Whether this incarnation still runs, read afresh from /proc. Reaps it if it is a zombie the
    /// watchdog inherited.
    pub(crate) fn is_running(&self, incarnation: &Incarnation) -> bool {
        match Observed::read(incarnation.pid) {
            Some(seen) if seen.is(incarnation) => {
                if seen.ended {
                    reap_if_orphan(incarnation.pid, &seen, self.root());
                }
                !seen.ended
            }
            _ => false,
        }
    }

    /// Whether signalling the process group can only reach this server's processes, read afresh.
    pub(crate) fn owns_group(&self) -> bool {
        let state = self.lock();
        let pgid = state.root as i32;
        let leader_present = Observed::read(state.root)
            .is_some_and(|seen| state.root_start_time == Some(seen.start_time));
        leader_present
            || state.members.iter().any(|(&pid, member)| {
                Observed::read(pid).is_some_and(|seen| {
                    seen.pgrp == pgid && member.start_time == Some(seen.start_time)
                })
            })
    }

    fn lock(&self) -> MutexGuard<'_, TreeState> {
        // The state stays consistent across a panic elsewhere: every update is a whole-field write.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<&Observed> for MemberState {
    fn from(seen: &Observed) -> MemberState {
        MemberState {
            ppid: seen.ppid,
            pgrp: seen.pgrp,
            comm: seen.comm.clone(),
            start_time: Some(seen.start_time),
        }
    }
}

/// Reaps a zombie member that was reparented to the watchdog. Never the root: tokio owns that child and
/// the caller awaits `child.wait()`; reaping it here would steal its exit status.
fn reap_if_orphan(pid: u32, seen: &Observed, root: u32) {
    if pid != root && seen.ppid == std::process::id() {
        // ECHILD (already reaped) and a not-yet-waitable state are both fine.
        let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
    }
}

/// At most one /proc scan per this interval on behalf of [`ProcessTrees::server_of`] misses.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Registry {
    trees: HashMap<String, ProcessTree>,
    last_refresh: Option<Instant>,
}

/// All servers' process trees, to attribute a pid (a filesystem write, a connection) to a server.
#[derive(Debug, Clone, Default)]
pub struct ProcessTrees {
    registry: Arc<Mutex<Registry>>,
}

impl ProcessTrees {
    pub fn new() -> ProcessTrees {
        ProcessTrees::default()
    }

    /// Replaces any tree already registered under this name (a restarted server).
    pub fn register(&self, server: &str, tree: ProcessTree) {
        self.lock().trees.insert(server.to_string(), tree);
    }

    pub fn unregister(&self, server: &str) {
        self.lock().trees.remove(server);
    }

    /// The server whose tree holds `pid`. An unknown pid may be a child born since the last scan, so a
    /// miss rescans /proc once and looks again (rate-limited). A process that already exited cannot be
    /// attributed this way.
    pub fn server_of(&self, pid: u32) -> Option<String> {
        let mut registry = self.lock();
        if let Some(server) = registry.find(pid) {
            return Some(server);
        }
        if registry
            .last_refresh
            .is_some_and(|last| last.elapsed() < MIN_REFRESH_INTERVAL)
        {
            return None;
        }
        registry.last_refresh = Some(Instant::now());
        // The registry stays locked during the scan so that concurrent misses share it.
        match Scan::take() {
            Ok(scan) => registry
                .trees
                .values()
                .for_each(|tree| tree.refresh_from(&scan)),
            Err(error) => tracing::warn!(%error, "cannot scan /proc to attribute pid {pid}"),
        }
        registry.find(pid)
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registry {
    fn find(&self, pid: u32) -> Option<String> {
        self.trees
            .iter()
            .find(|(_, tree)| tree.contains(pid))
            .map(|(server, _)| server.clone())
    }
}

/// Real process trees for tests, torn down even when a test fails.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::supervisor::spawn::{become_subreaper, spawn_server, ServerCommand};
    use nix::sys::signal::{kill, killpg, SIGKILL};
    use tokio::io::AsyncReadExt;
    use tokio::process::{Child, ChildStdout};

    /// Lines `label pid` (or a bare `label`) printed by a test script, by label.
    pub(crate) type Labels = HashMap<String, u32>;

    pub(crate) fn pid_of(labels: &Labels, label: &str) -> u32 {
        labels[label]
    }

    /// Kills every member of the tree when dropped, so a failing test leaves nothing running.
    pub(crate) struct TreeGuard(pub(crate) ProcessTree);

    impl Drop for TreeGuard {
        fn drop(&mut self) {
            let _ = self.0.refresh();
            if self.0.owns_group() {
                let _ = killpg(Pid::from_raw(self.0.pgid()), SIGKILL);
            }
            let members = self.0.incarnations();
            for member in &members {
                let _ = kill(Pid::from_raw(member.pid as i32), SIGKILL);
            }
            // Wait (and reap the orphans the test process inherited) so no zombie stays behind.
            let deadline = Instant::now() + Duration::from_secs(2);
            while members.iter().any(|m| self.0.is_running(m)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Polls `condition` for up to two seconds; whether it became true.
    pub(crate) async fn eventually(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !condition() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// A server running `sh -c script sh args…`, with the labels it printed before the test went on.
    pub(crate) struct ScriptServer {
        pub(crate) child: Child,
        pub(crate) tree: ProcessTree,
        pub(crate) labels: Labels,
        // Last field: dropped after the child handle, killing whatever the test left running.
        pub(crate) _guard: TreeGuard,
    }

    pub(crate) async fn spawn_script(script: &str, args: &[&str], labels: &[&str]) -> ScriptServer {
        // Orphans must come to the test process, which reaps them, not to an init that may not.
        become_subreaper().unwrap();
        let mut sh_args = vec!["-c".to_string(), script.to_string(), "sh".to_string()];
        sh_args.extend(args.iter().map(|arg| arg.to_string()));
        let mut child = spawn_server(
            &ServerCommand {
                program: "sh".into(),
                args: sh_args,
                env: Vec::new(),
                cwd: None,
            },
            &crate::sandbox::Confinement::none(),
        )
        .unwrap();
        let tree = ProcessTree::new(child.id().unwrap());
        let guard = TreeGuard(tree.clone());
        let labels = read_labels(child.stdout.as_mut().unwrap(), labels).await;
        ScriptServer {
            child,
            tree,
            labels,
            _guard: guard,
        }
    }

    /// Reads lines until every wanted label was printed. Byte by byte, so that nothing printed later
    /// is swallowed by a buffer.
    pub(crate) async fn read_labels(stdout: &mut ChildStdout, wanted: &[&str]) -> Labels {
        let reading = async {
            let mut labels = Labels::new();
            let mut line = Vec::new();
            while !wanted.iter().all(|label| labels.contains_key(*label)) {
                let byte = stdout.read_u8().await.expect("script ended early");
                if byte != b'\n' {
                    line.push(byte);
                    continue;
                }
                let text = String::from_utf8(std::mem::take(&mut line)).unwrap();
                let mut words = text.split_whitespace();
                if let Some(label) = words.next() {
                    let pid = words.next().map_or(0, |pid| pid.parse().unwrap());
                    labels.insert(label.to_string(), pid);
                }
            }
            labels
        };
        tokio::time::timeout(Duration::from_secs(10), reading)
            .await
            .unwrap_or_else(|_| panic!("script did not print all of {wanted:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{eventually, pid_of, read_labels, spawn_script};
    use super::*;
    use std::collections::BTreeSet;
    use tokio::io::AsyncWriteExt;

    fn observed(ppid: u32, pgrp: i32, start_time: u64) -> Observed {
        Observed {
            ppid,
            pgrp,
            comm: "sh".into(),
            start_time,
            ended: false,
        }
    }

    /// A tree rooted at 100 (group 100, started at tick 1) whose root is already in the scan.
    fn tree_in(scan: &Scan) -> ProcessTree {
        let tree = ProcessTree {
            state: Arc::new(Mutex::new(TreeState {
                root: 100,
                root_start_time: Some(1),
                members: HashMap::from([(100, MemberState::from(&observed(1, 100, 1)))]),
            })),
        };
        tree.refresh_from(scan);
        tree
    }

    fn pids(tree: &ProcessTree) -> BTreeSet<u32> {
        tree.members().iter().map(|member| member.pid).collect()
    }

    #[test]
    fn descendants_in_any_pid_order_join_in_one_scan() {
        // Pids wrap around: a grandchild can have a smaller pid than its parent.
        let scan = Scan::from_processes([
            (100, observed(1, 100, 1)),
            (5, observed(300, 7, 4)),
            (300, observed(200, 300, 3)),
            (200, observed(100, 100, 2)),
            (400, observed(1, 400, 5)),
        ]);
        assert_eq!(pids(&tree_in(&scan)), BTreeSet::from([5, 100, 200, 300]));
    }

    #[test]
    fn reparented_members_stay_and_gone_members_are_forgotten() {
        let tree = tree_in(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (200, observed(100, 200, 2)),
            (300, observed(200, 300, 3)),
        ]));
        // 200 exited, 300 was reparented to init and left the group.
        tree.refresh_from(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (300, observed(1, 300, 3)),
        ]));
        assert_eq!(pids(&tree), BTreeSet::from([100, 300]));
        assert_eq!(
            tree.members()[1],
            Member {
                pid: 300,
                ppid: 1,
                comm: "sh".into()
            }
        );
    }

    #[test]
    fn a_reused_pid_is_another_process() {
        let tree = tree_in(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (200, observed(100, 200, 2)),
        ]));
        // 200 exited and an unrelated process got its pid.
        tree.refresh_from(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (200, observed(1, 200, 9)),
        ]));
        assert!(!tree.contains(200));
        // Reused again, this time by a child of the root: a member again.
        tree.refresh_from(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (200, observed(100, 200, 11)),
        ]));
        assert!(tree.contains(200));
    }

    #[test]
    fn unseen_orphans_in_the_server_group_are_adopted() {
        let tree = tree_in(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (200, observed(1, 100, 2)),
            (300, observed(200, 300, 3)),
        ]));
        assert_eq!(pids(&tree), BTreeSet::from([100, 200, 300]));
    }

    #[test]
    fn a_recycled_group_id_adopts_nothing() {
        let tree = tree_in(&Scan::from_processes([(100, observed(1, 100, 1))]));
        // The server is gone; a stranger got pid 100 and leads a new group 100.
        tree.refresh_from(&Scan::from_processes([
            (100, observed(1, 100, 8)),
            (200, observed(1, 100, 9)),
        ]));
        assert!(tree.is_empty());
    }

    #[test]
    fn zombies_are_gone() {
        let mut zombie = observed(100, 100, 2);
        zombie.ended = true;
        let tree = tree_in(&Scan::from_processes([
            (100, observed(1, 100, 1)),
            (200, zombie),
        ]));
        assert_eq!(pids(&tree), BTreeSet::from([100]));
    }

    #[tokio::test]
    async fn refresh_follows_a_real_tree_with_its_ancestry() {
        let stubborn =
            r#"trap "" TERM; sleep 300 & echo "stubborn_sleep $!"; echo "stubborn $$"; wait; true"#;
        let server = spawn_script(
            r#"sleep 300 & echo "sleeper $!"
               sh -c "$1" &
               setsid sleep 300 & echo "detached $!"
               wait"#,
            &[stubborn],
            &["sleeper", "stubborn", "stubborn_sleep", "detached"],
        )
        .await;
        let (tree, labels) = (&server.tree, &server.labels);
        let root = tree.root();
        tree.refresh().unwrap();

        let parent_of = |pid: u32| {
            tree.members()
                .into_iter()
                .find(|member| member.pid == pid)
                .unwrap_or_else(|| panic!("{pid} is not a member: {:?}", tree.members()))
                .ppid
        };
        let stubborn = pid_of(labels, "stubborn");
        assert_eq!(parent_of(pid_of(labels, "sleeper")), root);
        assert_eq!(parent_of(stubborn), root);
        assert_eq!(parent_of(pid_of(labels, "stubborn_sleep")), stubborn);
        assert_eq!(parent_of(pid_of(labels, "detached")), root);
        assert_eq!(tree.members().len(), 5, "{:?}", tree.members());
        let root_member = tree.members().into_iter().find(|m| m.pid == root);
        assert_eq!(root_member.unwrap().comm, "sh");
        // The detached sleep really leaves the server's group: only its ancestry finds it.
        let detached = pid_of(labels, "detached");
        let left_group = || Observed::read(detached).is_some_and(|seen| seen.pgrp != tree.pgid());
        assert!(eventually(left_group).await);
        tree.refresh().unwrap();
        assert!(tree.contains(detached));
    }

    #[tokio::test]
    async fn refresh_survives_processes_vanishing_mid_scan() {
        let server = spawn_script("echo ready; while :; do /bin/true; done", &[], &["ready"]).await;
        for _ in 0..100 {
            server.tree.refresh().unwrap();
            assert!(server.tree.contains(server.tree.root()));
        }
    }

    #[tokio::test]
    async fn server_of_finds_a_grandchild_born_after_registration() {
        let mut server = spawn_script(
            r#"echo ready; read go; sh -c "$1" & wait"#,
            &[r#"sleep 300 & echo "grandchild $!"; wait"#],
            &["ready"],
        )
        .await;
        let trees = ProcessTrees::new();
        trees.register("files", server.tree.clone());
        assert_eq!(
            trees.server_of(server.tree.root()).as_deref(),
            Some("files")
        );

        let child = &mut server.child;
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .await
            .unwrap();
        let labels = read_labels(child.stdout.as_mut().unwrap(), &["grandchild"]).await;
        let grandchild = pid_of(&labels, "grandchild");
        assert!(!server.tree.contains(grandchild));

        let deadline = Instant::now() + Duration::from_secs(2);
        let mut found = trees.server_of(grandchild);
        while found.is_none() && Instant::now() < deadline {
            tokio::time::sleep(MIN_REFRESH_INTERVAL).await;
            found = trees.server_of(grandchild);
        }
        assert_eq!(found.as_deref(), Some("files"));
        trees.unregister("files");
        assert_eq!(trees.server_of(grandchild), None);
    }
}
