//! A fork tracker fed by the kernel (netlink proc connector, root only), so that a process that
//! forked, wrote and exited before anyone looked at /proc is still known to belong to its tree.
//!
//! Every child a registered *spawner* forks becomes the root of a tree; every process a member
//! forks joins its parent's tree. An exited member keeps its mapping for [`EXIT_GRACE`], because
//! fanotify may still hold events it caused. Readers that meet an unknown pid call
//! [`ForkTracker::root_of`], which drains the connector first: the fork event of a process is
//! queued before the process runs, hence before any file event it causes.
//!
//! When the connector socket overflows (ENOBUFS) events are lost for good; the tracker says so
//! and rebuilds what it can from /proc (exited processes are then unknowable).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

/// How long an exited process stays attributable: long enough for fanotify's queue to drain
/// under load, short enough that a recycled pid is unlikely to be met in the meantime (a fork
/// event for the recycled pid overwrites the stale entry anyway).
pub const EXIT_GRACE: Duration = Duration::from_secs(10);

/// `struct cb_id` + `struct cn_msg` from linux/connector.h (libc does not define them).
#[repr(C)]
#[derive(Clone, Copy)]
struct CnMsg {
    idx: u32,
    val: u32,
    seq: u32,
    ack: u32,
    len: u16,
    flags: u16,
}

/// Offsets inside `struct proc_event` (linux/cn_proc.h): `what`, `cpu`, `timestamp_ns` (8-aligned),
/// then the union whose fork/exec/exit members start with pid/tgid pairs.
const EV_WHAT: usize = 0;
const EV_DATA: usize = 16;

#[derive(Debug, Clone)]
struct Entry {
    root: u32,
    exited: Option<Instant>,
    /// Command name and executable, read from /proc when the process exec'd (or inherited from
    /// its parent at fork): a short-lived process is gone before its file events are read.
    identity: Option<Identity>,
}

/// What a process was called and ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub comm: String,
    pub exe: Option<std::path::PathBuf>,
}

impl Identity {
    /// Read from /proc; `None` once the process is gone.
    fn read(pid: u32) -> Option<Identity> {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(Identity {
            comm: comm.trim_end_matches('\n').to_owned(),
            exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
        })
    }
}

#[derive(Debug, Default)]
struct State {
    spawners: HashSet<u32>,
    members: HashMap<u32, Entry>,
    /// The spawner each root was forked by.
    spawner_of_root: HashMap<u32, u32>,
    /// Exits in arrival order, to expire mappings without scanning them all.
    exits: VecDeque<(Instant, u32)>,
    overflows: u64,
}

/// What one drained proc-connector event means to the trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcEvent {
    Fork { parent_tgid: u32, child_tgid: u32 },
    Exec { tgid: u32 },
    Exit { tgid: u32 },
}

impl State {
    fn apply(&mut self, ev: ProcEvent, now: Instant) {
        match ev {
            ProcEvent::Fork {
                parent_tgid,
                child_tgid,
            } => {
                // A new thread has child_tgid == parent_tgid: not a new process.
                if child_tgid == parent_tgid {
                    return;
                }
                let (root, identity) = if self.spawners.contains(&parent_tgid) {
                    self.spawner_of_root.insert(child_tgid, parent_tgid);
                    (Some(child_tgid), None)
                } else {
                    match self.members.get(&parent_tgid) {
                        Some(e) => (Some(e.root), e.identity.clone()),
                        None => (None, None),
                    }
                };
                match root {
                    Some(root) => {
                        self.members.insert(
                            child_tgid,
                            Entry {
                                root,
                                exited: None,
                                identity,
                            },
                        );
                    }
                    // A recycled pid that was a member: not any more.
                    None => {
                        self.members.remove(&child_tgid);
                        self.spawner_of_root.remove(&child_tgid);
                    }
                }
            }
            ProcEvent::Exec { tgid } => {
                if let Some(e) = self.members.get_mut(&tgid) {
                    // Gone already: unknown, not the parent's name it had before exec.
                    e.identity = Identity::read(tgid);
                }
            }
            ProcEvent::Exit { tgid } => {
                if self.spawners.remove(&tgid) {
                    return;
                }
                if let Some(e) = self.members.get_mut(&tgid) {
                    e.exited = Some(now);
                    self.exits.push_back((now, tgid));
                }
            }
        }
        self.expire(now);
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, pid)) = self.exits.front() {
            if now.duration_since(at) < EXIT_GRACE {
                break;
            }
            self.exits.pop_front();
            // Only if it is still that exited process, not a recycled pid forked since.
            if self.members.get(&pid).is_some_and(|e| e.exited == Some(at)) {
                self.members.remove(&pid);
                self.spawner_of_root.remove(&pid);
            }
        }
    }

    /// After lost events: adopts every running descendant of a member or spawner that /proc shows,
    /// and marks members /proc no longer shows as exited.
    fn rescan(&mut self, parents: &HashMap<u32, u32>, now: Instant) {
        for (&pid, e) in self.members.iter_mut() {
            if e.exited.is_none() && !parents.contains_key(&pid) {
                e.exited = Some(now);
                self.exits.push_back((now, pid));
            }
        }
        let mut found: HashMap<u32, Option<u32>> = HashMap::new();
        for &pid in parents.keys() {
            let mut chain = Vec::new();
            let mut cur = pid;
            let root = loop {
                if let Some(r) = found.get(&cur) {
                    break *r;
                }
                if let Some(e) = self.members.get(&cur).filter(|e| e.exited.is_none()) {
                    break Some(e.root);
                }
                let Some(&ppid) = parents.get(&cur) else {
                    break None;
                };
                if self.spawners.contains(&ppid) {
                    // `cur` is a direct child of a spawner: a root.
                    self.spawner_of_root.insert(cur, ppid);
                    found.insert(cur, Some(cur));
                    break Some(cur);
                }
                if ppid <= 1 || chain.len() > 4096 {
                    break None;
                }
                chain.push(cur);
                cur = ppid;
            };
            for p in chain {
                found.insert(p, root);
            }
        }
        for (pid, root) in found {
            if let Some(root) = root {
                self.members.entry(pid).or_insert(Entry {
                    root,
                    exited: None,
                    identity: Identity::read(pid),
                });
            }
        }
    }
}

/// The fork tracker. Shared (`Arc`) between the readers that attribute events.
pub struct ForkTracker {
    sock: OwnedFd,
    state: Mutex<State>,
}

impl ForkTracker {
    /// Subscribes to the proc connector. Needs CAP_NET_ADMIN (root); fails otherwise.
    pub fn open() -> io::Result<Arc<ForkTracker>> {
        // SAFETY: plain socket(2); the result is checked before being owned.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zero is its unspecified state (nl_pid 0: the kernel
        // picks a unique port, so several trackers can coexist in one process).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = libc::CN_IDX_PROC;
        // SAFETY: addr is a valid sockaddr_nl of the length given.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // A larger receive buffer makes ENOBUFS rarer under fork storms (best effort).
        let size: libc::c_int = 4 << 20;
        // SAFETY: setsockopt with a c_int option value.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const libc::c_int as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        send_mcast(sock.as_raw_fd(), libc::PROC_CN_MCAST_LISTEN)?;
        Ok(Arc::new(ForkTracker {
            sock,
            state: Mutex::new(State::default()),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every process `pid` forks from now on becomes the root of a tree.
    pub fn add_spawner(&self, pid: u32) {
        // Forks already queued happened before the registration: apply them first.
        let mut st = self.state();
        let _ = self.drain_locked(&mut st);
        st.spawners.insert(pid);
    }

    /// Stops following new children of `spawner` (it went away; its pid may be reused).
    pub fn remove_spawner(&self, spawner: u32) {
        self.state().spawners.remove(&spawner);
    }

    /// Forgets the tree rooted at `root` (its root was reaped and the tree unwatched).
    pub fn remove_tree(&self, root: u32) {
        let mut st = self.state();
        st.members.retain(|_, e| e.root != root);
        st.spawner_of_root.remove(&root);
    }

    /// The spawner that forked the root `root`, while its tree is followed.
    pub fn spawner_of(&self, root: u32) -> Option<u32> {
        self.state().spawner_of_root.get(&root).copied()
    }

    /// The root of the tree `pid` (a tgid) belongs to, draining pending fork events first when
    /// the pid is unknown or only known as exited (it may be a recycled pid whose fork is queued).
    pub fn root_of(&self, pid: u32) -> Option<u32> {
        let mut st = self.state();
        match st.members.get(&pid) {
            Some(e) if e.exited.is_none() => return Some(e.root),
            _ => {}
        }
        let _ = self.drain_locked(&mut st);
        st.members.get(&pid).map(|e| e.root)
    }

    /// What `pid` is called and runs: read from /proc while it exists, else what it had when it
    /// last exec'd (a short-lived member is gone before its file events are handled).
    pub fn name_of(&self, pid: u32) -> (String, Option<std::path::PathBuf>) {
        Identity::read(pid)
            .or_else(|| self.identity(pid))
            .map_or((String::new(), None), |id| (id.comm, id.exe))
    }

    /// The name and executable `pid` had when it last exec'd, if it is a member.
    pub fn identity(&self, pid: u32) -> Option<Identity> {
        let mut st = self.state();
        // An exec still queued would make the name inherited at fork the wrong one.
        let _ = self.drain_locked(&mut st);
        st.members.get(&pid)?.identity.clone()
    }

    /// How many times events were lost to an overflowing socket.
    pub fn overflows(&self) -> u64 {
        self.state().overflows
    }

    /// Applies every queued event. Returns how many were read.
    pub fn drain(&self) -> io::Result<usize> {
        let mut st = self.state();
        self.drain_locked(&mut st)
    }

    // The lock is held across reading and applying, so that two drainers never apply a child's
    // fork before its parent's.
    fn drain_locked(&self, st: &mut State) -> io::Result<usize> {
        let mut buf = [0u64; 1024];
        let mut count = 0;
        loop {
            // SAFETY: reading into a buffer we own, of the length given.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    size_of::<[u64; 1024]>(),
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(count),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        st.overflows += 1;
                        tracing::warn!(
                            "fsmon: proc connector overflowed, fork events were lost; \
                             rebuilding process trees from /proc (exited processes cannot be \
                             attributed)"
                        );
                        st.rescan(&proc_parents(), Instant::now());
                        continue;
                    }
                    _ => return Err(err),
                }
            }
            // SAFETY: the kernel wrote n bytes into buf.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
            let now = Instant::now();
            for ev in parse_datagram(bytes) {
                st.apply(ev, now);
                count += 1;
            }
        }
    }

    /// Keeps draining on a tokio task whenever the socket is readable, so the socket never fills.
    pub fn spawn_reader(self: &Arc<Self>) -> io::Result<JoinHandle<()>> {
        struct Fd(Arc<ForkTracker>);
        impl AsRawFd for Fd {
            fn as_raw_fd(&self) -> RawFd {
                self.0.sock.as_raw_fd()
            }
        }
        // SAFETY: the Arc keeps the socket open, unchanged, for as long as the AsyncFd lives.
        let afd = unsafe {
            AsyncFd::register_with_interest(Fd(self.clone()), tokio::io::Interest::READABLE)?
        };
        Ok(tokio::spawn(async move {
            loop {
                let Ok(mut guard) = afd.readable().await else {
                    return;
                };
                if let Err(e) = afd.get_ref().0.drain() {
                    tracing::warn!("fsmon: proc connector read failed: {e}");
                }
                guard.clear_ready();
            }
        }))
    }
}

impl Drop for ForkTracker {
    fn drop(&mut self) {
        // The kernel counts listeners; tell it this one is gone.
        let _ = send_mcast(self.sock.as_raw_fd(), libc::PROC_CN_MCAST_IGNORE);
    }
}

fn send_mcast(fd: RawFd, op: libc::proc_cn_mcast_op) -> io::Result<()> {
    const HDR: usize = size_of::<libc::nlmsghdr>();
    const CN: usize = size_of::<CnMsg>();
    let total = HDR + CN + size_of::<u32>();
    let mut msg = vec![0u8; total];
    let hdr = libc::nlmsghdr {
        nlmsg_len: total as u32,
        nlmsg_type: libc::NLMSG_DONE as u16,
        nlmsg_flags: 0,
        nlmsg_seq: 0,
        nlmsg_pid: 0,
    };
    let cn = CnMsg {
        idx: libc::CN_IDX_PROC,
        val: libc::CN_VAL_PROC,
        seq: 0,
        ack: 0,
        len: size_of::<u32>() as u16,
        flags: 0,
    };
    // SAFETY: both are plain repr(C) values written within msg's bounds.
    unsafe {
        std::ptr::write_unaligned(msg.as_mut_ptr() as *mut libc::nlmsghdr, hdr);
        std::ptr::write_unaligned(msg.as_mut_ptr().add(HDR) as *mut CnMsg, cn);
    }
    msg[HDR + CN..].copy_from_slice(&op.to_ne_bytes());
    // SAFETY: sending a buffer we own.
    let n = unsafe { libc::send(fd, msg.as_ptr() as *const libc::c_void, total, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The fork and exit events in one datagram (possibly several netlink messages).
fn parse_datagram(mut b: &[u8]) -> Vec<ProcEvent> {
    const HDR: usize = size_of::<libc::nlmsghdr>();
    const CN: usize = size_of::<CnMsg>();
    let mut out = Vec::new();
    while b.len() >= HDR {
        let Some(len) = u32_at(b, 0).map(|l| l as usize) else {
            break;
        };
        if len < HDR || len > b.len() {
            break;
        }
        let msg = &b[..len];
        let kind = u16::from_ne_bytes([msg[4], msg[5]]);
        if kind == libc::NLMSG_DONE as u16 && msg.len() >= HDR + CN {
            let idx = u32_at(msg, HDR);
            let val = u32_at(msg, HDR + 4);
            let data_len = u16::from_ne_bytes([msg[HDR + 16], msg[HDR + 17]]) as usize;
            let data = &msg[HDR + CN..];
            if idx == Some(libc::CN_IDX_PROC) && val == Some(libc::CN_VAL_PROC) {
                if let Some(ev) = parse_proc_event(&data[..data_len.min(data.len())]) {
                    out.push(ev);
                }
            }
        }
        // Netlink messages are 4-aligned.
        let next = (len + 3) & !3;
        if next >= b.len() {
            break;
        }
        b = &b[next..];
    }
    out
}

fn parse_proc_event(ev: &[u8]) -> Option<ProcEvent> {
    let what = u32_at(ev, EV_WHAT)?;
    if what == libc::PROC_EVENT_FORK {
        // parent_pid, parent_tgid, child_pid, child_tgid
        let parent_tgid = u32_at(ev, EV_DATA + 4)?;
        let child_pid = u32_at(ev, EV_DATA + 8)?;
        let child_tgid = u32_at(ev, EV_DATA + 12)?;
        if child_pid != child_tgid {
            return None; // a thread
        }
        Some(ProcEvent::Fork {
            parent_tgid,
            child_tgid,
        })
    } else if what == libc::PROC_EVENT_EXIT {
        // process_pid, process_tgid: only the thread-group leader's exit ends the process.
        let pid = u32_at(ev, EV_DATA)?;
        let tgid = u32_at(ev, EV_DATA + 4)?;
        (pid == tgid).then_some(ProcEvent::Exit { tgid })
    } else if what == libc::PROC_EVENT_EXEC {
        // process_pid, process_tgid: the tree is unchanged, the name is new.
        let tgid = u32_at(ev, EV_DATA + 4)?;
        Some(ProcEvent::Exec { tgid })
    } else {
        None
    }
}

/// pid → ppid for every process /proc shows now.
fn proc_parents() -> HashMap<u32, u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return HashMap::new();
    };
    all.filter_map(|p| p.ok()?.stat().ok())
        .filter_map(|s| Some((u32::try_from(s.pid).ok()?, u32::try_from(s.ppid).ok()?)))
        .collect()
}

/// Whether this process may use the root-only backends (effective uid 0).
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fork(st: &mut State, parent: u32, child: u32) {
        st.apply(
            ProcEvent::Fork {
                parent_tgid: parent,
                child_tgid: child,
            },
            Instant::now(),
        );
    }

    #[test]
    fn children_of_spawners_are_roots_and_descendants_inherit() {
        let mut st = State::default();
        st.spawners.insert(100);
        fork(&mut st, 100, 200);
        fork(&mut st, 200, 201);
        fork(&mut st, 201, 202);
        fork(&mut st, 100, 300);
        fork(&mut st, 999, 998);
        fork(&mut st, 200, 200); // a thread
        assert_eq!(st.members[&200].root, 200);
        assert_eq!(st.members[&202].root, 200);
        assert_eq!(st.members[&300].root, 300);
        assert!(!st.members.contains_key(&998));
        assert!(!st.members.contains_key(&100));
        assert_eq!(
            (st.spawner_of_root.get(&200), st.spawner_of_root.get(&300)),
            (Some(&100), Some(&100))
        );
        assert_eq!(st.spawner_of_root.len(), 2, "only roots have a spawner");
    }

    #[test]
    fn exited_members_stay_for_the_grace_period_and_recycled_pids_are_reassigned() {
        let mut st = State::default();
        st.spawners.insert(1000);
        fork(&mut st, 1000, 2000);
        fork(&mut st, 2000, 2001);
        let t0 = Instant::now();
        st.apply(ProcEvent::Exit { tgid: 2001 }, t0);
        assert_eq!(st.members[&2001].root, 2000);
        st.expire(t0 + EXIT_GRACE + Duration::from_millis(1));
        assert!(!st.members.contains_key(&2001));
        // Recycled within the grace period by an unrelated process: no longer a member.
        st.apply(ProcEvent::Exit { tgid: 2000 }, t0);
        fork(&mut st, 1, 2000);
        assert!(!st.members.contains_key(&2000));
        assert!(!st.spawner_of_root.contains_key(&2000));
    }

    #[test]
    fn a_rescan_adopts_running_descendants() {
        let mut st = State::default();
        st.spawners.insert(10);
        fork(&mut st, 10, 20);
        let parents: HashMap<u32, u32> =
            [(10, 1), (20, 10), (21, 20), (22, 21), (30, 10), (40, 1)].into();
        st.rescan(&parents, Instant::now());
        assert_eq!(st.members[&22].root, 20);
        assert_eq!(st.members[&30].root, 30);
        assert!(!st.members.contains_key(&40));
        assert_eq!(st.spawner_of_root.get(&30), Some(&10));
    }

    #[test]
    fn datagrams_parse_fork_and_exit() {
        let mut msg = vec![0u8; 16 + 20 + 16 + 24];
        let len = msg.len() as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
        msg[4..6].copy_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg[16..20].copy_from_slice(&libc::CN_IDX_PROC.to_ne_bytes());
        msg[20..24].copy_from_slice(&libc::CN_VAL_PROC.to_ne_bytes());
        msg[32..34].copy_from_slice(&40u16.to_ne_bytes());
        let ev = 36;
        msg[ev..ev + 4].copy_from_slice(&(libc::PROC_EVENT_FORK).to_ne_bytes());
        for (i, v) in [5u32, 5, 7, 7].iter().enumerate() {
            msg[ev + 16 + 4 * i..ev + 20 + 4 * i].copy_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(
            parse_datagram(&msg),
            vec![ProcEvent::Fork {
                parent_tgid: 5,
                child_tgid: 7
            }]
        );
        msg[ev..ev + 4].copy_from_slice(&(libc::PROC_EVENT_EXIT).to_ne_bytes());
        assert_eq!(parse_datagram(&msg), vec![ProcEvent::Exit { tgid: 5 }]);
    }

    #[tokio::test]
    async fn short_lived_grandchildren_are_attributed_after_they_exit() {
        if !is_root() {
            eprintln!("skipped: the proc connector needs root");
            return;
        }
        let forks = ForkTracker::open().expect("proc connector");
        forks.add_spawner(std::process::id());
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg("sh -c 'true'; /bin/true & wait; echo $!")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let root = child.id().unwrap();
        let out = child.wait_with_output().await.unwrap();
        let gc: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        // The grandchild is long gone; its mapping survives the grace period.
        assert_ne!(gc, root);
        assert_eq!(forks.root_of(gc), Some(root));
        assert_eq!(forks.root_of(root), Some(root));
        assert_eq!(forks.root_of(std::process::id()), None);
        assert_eq!(forks.overflows(), 0);
    }
}
