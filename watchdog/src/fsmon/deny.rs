//! Strict mode (root): a permission-class fanotify group that refuses opens of sensitive files by
//! processes of strict trees. Landlock already refuses them to confined servers; this also covers
//! a server that runs unconfined (Landlock unavailable) and every opener the monitor attributes.
//!
//! Every permission event blocks its opener until answered, so the design is answer-first: each
//! event's descriptor is wrapped, as soon as it is read, in a [`Verdict`] that answers FAN_ALLOW and
//! closes the descriptor when dropped unless a decision was written before — whatever happens
//! (an error, a panic, a malformed buffer, shutdown). The decision itself needs only a map lookup
//! and, for strict trees, one readlink; reporting comes after the answer. If the reader thread
//! fails for good it removes its marks and answers what is queued before exiting, so that no open
//! can hang on a group nobody reads.
//!
//! Limits (KERNEL.md §3): the open is refused after O_CREAT created the (empty) file; read opens are
//! refused too (the event does not say read from write); unlink/rename/mkdir/chmod raise no
//! permission events. Marks are inode marks: a directory covers its direct children, so existing
//! subdirectories are marked too (bounded), and a sensitive path that does not exist is covered
//! through its nearest existing ancestor only when it is that ancestor's direct child.

use std::collections::HashSet;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::event::{BackendKind, FsEvent, FsOp, Outcome};
use super::fanotify::{fanotify_init, fanotify_mark, fd_path};
use super::forks::{is_root, ForkTracker};
use super::{EventSender, WatchScope};

/// Directories marked beneath one sensitive directory at most (inode marks cost kernel memory).
const MAX_SUBDIRS: usize = 256;

struct Shared {
    fan: OwnedFd,
    forks: Arc<ForkTracker>,
    strict: Mutex<HashSet<u32>>,
    /// Every tree is strict (the watchdog's own strict mode): no window between a server's first
    /// instruction and its registration.
    strict_all: AtomicBool,
    /// Every tree these spawners start is strict from its fork (a strict proxy of the daemon's).
    strict_spawners: Mutex<HashSet<u32>>,
    /// The sensitive set as a scope (for `is_sensitive`, which also knows the `.git` pattern).
    sensitive: Mutex<WatchScope>,
    marked: Mutex<HashSet<PathBuf>>,
    /// (dev, ino) of the sensitive files marked themselves: refused by whatever name they are
    /// opened (a hard link elsewhere), not only by path.
    files: Mutex<HashSet<(u64, u64)>>,
    events: EventSender,
    denied: AtomicU64,
    dead: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The strict-mode denial group. Dropping it stops the reader; closing the group lets the kernel
/// allow whatever was still pending.
pub struct DenyGuard {
    shared: Arc<Shared>,
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl DenyGuard {
    /// Creates the group and its reader thread (a thread, not a task: answers must not wait for a
    /// busy runtime). `forks` is the tracker the fanotify backend feeds ([`super::fanotify::FanotifyBackend::forks`]).
    pub fn start(forks: Arc<ForkTracker>, events: EventSender) -> Result<DenyGuard, String> {
        if !is_root() {
            return Err("fanotify permission events need root".into());
        }
        let fan = fanotify_init(libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK)
            .map_err(|e| format!("fanotify_init(FAN_CLASS_CONTENT) failed: {e}"))?;
        // SAFETY: plain eventfd(2), checked before being owned.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if stop < 0 {
            return Err(format!("eventfd: {}", io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor we own.
        let stop = unsafe { OwnedFd::from_raw_fd(stop) };
        let shared = Arc::new(Shared {
            fan,
            forks,
            strict: Mutex::new(HashSet::new()),
            strict_all: AtomicBool::new(false),
            strict_spawners: Mutex::new(HashSet::new()),
            sensitive: Mutex::new(WatchScope::default()),
            marked: Mutex::new(HashSet::new()),
            files: Mutex::new(HashSet::new()),
            events,
            denied: AtomicU64::new(0),
            dead: AtomicBool::new(false),
        });
        let (s, stop_fd) = (shared.clone(), stop.as_raw_fd());
        let thread = std::thread::Builder::new()
            .name("fsmon-deny".into())
            .spawn(move || run(&s, stop_fd))
            .map_err(|e| format!("cannot start the denial thread: {e}"))?;
        Ok(DenyGuard {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// Puts permission marks on the sensitive paths (idempotent). Returns how many inodes were
    /// newly marked.
    pub fn protect(&self, sensitive: &[PathBuf]) -> io::Result<usize> {
        if self.shared.dead.load(Ordering::Relaxed) {
            return Err(io::Error::other("the denial reader has stopped"));
        }
        {
            let mut set = lock(&self.shared.sensitive);
            for p in sensitive {
                if !set.sensitive.contains(p) {
                    set.sensitive.push(p.clone());
                }
            }
        }
        let mut targets: Vec<(PathBuf, u64)> = Vec::new();
        let dir_mask = libc::FAN_OPEN_PERM | libc::FAN_EVENT_ON_CHILD | libc::FAN_ONDIR;
        for p in sensitive {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {
                    targets.push((p.clone(), dir_mask));
                    targets.extend(subdirs(p).into_iter().map(|d| (d, dir_mask)));
                }
                Ok(m) => {
                    lock(&self.shared.files).insert((m.dev(), m.ino()));
                    targets.push((p.clone(), libc::FAN_OPEN_PERM));
                }
                // Not there yet: its creation happens in the nearest existing ancestor. Opens of
                // that ancestor's other children are asked about too, and allowed by path.
                Err(_) => {
                    if let Some(a) = p.ancestors().skip(1).find(|a| a.is_dir()) {
                        targets.push((
                            a.to_path_buf(),
                            libc::FAN_OPEN_PERM | libc::FAN_EVENT_ON_CHILD,
                        ));
                    }
                }
            }
        }
        let mut marked = lock(&self.shared.marked);
        let mut count = 0;
        for (path, mask) in targets {
            if marked.contains(&path) {
                continue;
            }
            fanotify_mark(self.shared.fan.as_raw_fd(), libc::FAN_MARK_ADD, mask, &path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            marked.insert(path);
            count += 1;
        }
        Ok(count)
    }

    /// Makes every followed tree strict, from its fork on.
    pub fn set_strict_all(&self) {
        self.shared.strict_all.store(true, Ordering::Relaxed);
    }

    /// Makes every tree `spawner` starts strict from its fork on (or no longer).
    pub fn set_strict_spawner(&self, spawner: u32, strict: bool) {
        let mut set = lock(&self.shared.strict_spawners);
        if strict {
            set.insert(spawner);
        } else {
            set.remove(&spawner);
        }
    }

    /// Whether opens of sensitive files by the tree rooted at `root` are refused.
    pub fn set_strict(&self, root: u32, strict: bool) {
        let mut set = lock(&self.shared.strict);
        if strict {
            set.insert(root);
        } else {
            set.remove(&root);
        }
    }

    /// Opens refused so far.
    pub fn denied(&self) -> u64 {
        self.shared.denied.load(Ordering::Relaxed)
    }
}

/// Strict-mode open denial for a backend without a fork tracker of its own (eBPF): a tracker and
/// the denial group together, fed the same spawners and trees as the backend.
pub struct StrictOpens {
    forks: Arc<ForkTracker>,
    reader: tokio::task::JoinHandle<()>,
    guard: DenyGuard,
}

impl StrictOpens {
    /// Starts following `spawners` (inside a tokio runtime) and the denial group.
    pub fn start(spawners: &[u32], events: EventSender) -> Result<StrictOpens, String> {
        let forks =
            ForkTracker::open().map_err(|e| format!("netlink proc connector unavailable: {e}"))?;
        for s in spawners {
            forks.add_spawner(*s);
        }
        let reader = forks
            .spawn_reader()
            .map_err(|e| format!("proc connector: {e}"))?;
        let guard = DenyGuard::start(forks.clone(), events)?;
        Ok(StrictOpens {
            forks,
            reader,
            guard,
        })
    }

    pub fn add_spawner(&self, spawner: u32) {
        self.forks.add_spawner(spawner);
    }

    pub fn remove_spawner(&self, spawner: u32) {
        self.forks.remove_spawner(spawner);
        self.guard.set_strict_spawner(spawner, false);
    }

    /// Every tree `spawner` starts strict from its fork on, and `sensitive` protected now.
    pub fn strict_from_fork(&self, spawner: u32, sensitive: &[PathBuf]) -> io::Result<()> {
        self.guard.set_strict_spawner(spawner, true);
        self.guard.protect(sensitive).map(drop)
    }

    /// Every tree strict from its fork on, and `sensitive` protected now (before any server runs).
    pub fn strict_everywhere(&self, sensitive: &[PathBuf]) -> io::Result<()> {
        self.guard.set_strict_all();
        self.guard.protect(sensitive).map(drop)
    }

    /// Protects the tree's sensitive set and refuses its opens there when it is strict.
    pub fn watch(&self, root: u32, scope: &WatchScope) -> io::Result<()> {
        self.guard.set_strict(root, scope.strict);
        if scope.strict {
            self.guard.protect(&scope.sensitive)?;
        }
        Ok(())
    }

    pub fn unwatch(&self, root: u32) {
        self.guard.set_strict(root, false);
        self.forks.remove_tree(root);
    }
}

impl Drop for StrictOpens {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Drop for DenyGuard {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes to our eventfd.
        unsafe {
            libc::write(
                self.stop.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            )
        };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Existing directories beneath `dir`, breadth first, at most [`MAX_SUBDIRS`].
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut next = 0;
    let mut current = dir.to_path_buf();
    loop {
        if let Ok(rd) = std::fs::read_dir(&current) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    if out.len() == MAX_SUBDIRS {
                        tracing::warn!(
                            "fsmon: more than {MAX_SUBDIRS} directories beneath {}; deeper ones \
                             are not protected from opens",
                            dir.display()
                        );
                        return out;
                    }
                    out.push(e.path());
                }
            }
        }
        let Some(d) = out.get(next) else {
            return out;
        };
        current = d.clone();
        next += 1;
    }
}

/// One permission event's answer. Answers FAN_ALLOW on drop unless answered, then closes the fd.
struct Verdict {
    fan: RawFd,
    fd: OwnedFd,
    pid: u32,
    answered: bool,
}

impl Verdict {
    fn answer(&mut self, allow: bool) {
        if self.answered {
            return;
        }
        self.answered = true;
        let resp = libc::fanotify_response {
            fd: self.fd.as_raw_fd(),
            response: if allow {
                libc::FAN_ALLOW
            } else {
                libc::FAN_DENY
            },
        };
        loop {
            // SAFETY: writing a complete fanotify_response to the group.
            let n = unsafe {
                libc::write(
                    self.fan,
                    &resp as *const libc::fanotify_response as *const libc::c_void,
                    size_of::<libc::fanotify_response>(),
                )
            };
            if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return;
            }
        }
    }
}

impl Drop for Verdict {
    fn drop(&mut self) {
        self.answer(true);
    }
}

/// Wraps every event of a read buffer in a [`Verdict`] before anything else looks at them.
fn take_events(fan: RawFd, b: &[u8]) -> Vec<Verdict> {
    let meta_len = size_of::<libc::fanotify_event_metadata>();
    let mut out = Vec::new();
    let mut off = 0;
    while off + meta_len <= b.len() {
        // SAFETY: in bounds; read_unaligned has no alignment requirement.
        let m: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(b.as_ptr().add(off) as *const _) };
        if m.fd >= 0 {
            out.push(Verdict {
                fan,
                // SAFETY: the kernel gave us this descriptor; nobody else owns it.
                fd: unsafe { OwnedFd::from_raw_fd(m.fd) },
                pid: u32::try_from(m.pid).unwrap_or(0),
                answered: false,
            });
        }
        let len = m.event_len as usize;
        if m.vers != libc::FANOTIFY_METADATA_VERSION || len < meta_len {
            tracing::error!("fsmon: malformed fanotify permission event");
            break;
        }
        off += len;
    }
    out
}

fn run(shared: &Shared, stop: RawFd) {
    let fan = shared.fan.as_raw_fd();
    let mut buf = vec![0u64; 1024];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: fan,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: polling two valid descriptors.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return give_up(shared, "poll failed");
        }
        if fds[1].revents != 0 {
            return;
        }
        // SAFETY: reading into a buffer we own, of the length given.
        let n = unsafe { libc::read(fan, buf.as_mut_ptr() as *mut libc::c_void, buf.len() * 8) };
        if n < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
                _ => return give_up(shared, "read failed"),
            }
        }
        // SAFETY: the kernel wrote n bytes into buf.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
        let verdicts = take_events(fan, bytes);
        // A panic while deciding must not stop the reader: the verdicts answer on unwind.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide(shared, verdicts)));
        if outcome.is_err() {
            tracing::error!("fsmon: denial decision panicked; the opens were allowed");
        }
    }
}

fn decide(shared: &Shared, verdicts: Vec<Verdict>) {
    for mut v in verdicts {
        let root = shared.forks.root_of(v.pid).filter(|r| {
            shared.strict_all.load(Ordering::Relaxed)
                || lock(&shared.strict).contains(r)
                || shared
                    .forks
                    .spawner_of(*r)
                    .is_some_and(|s| lock(&shared.strict_spawners).contains(&s))
        });
        let Some(root) = root else {
            v.answer(true);
            continue;
        };
        let path = fd_path(v.fd.as_raw_fd());
        let deny = path
            .as_deref()
            .is_some_and(|p| lock(&shared.sensitive).is_sensitive(p))
            || inode_of(v.fd.as_raw_fd()).is_some_and(|i| lock(&shared.files).contains(&i));
        let pid = v.pid;
        v.answer(!deny);
        drop(v);
        if deny {
            shared.denied.fetch_add(1, Ordering::Relaxed);
            report(shared, root, pid, path);
        }
    }
}

fn inode_of(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: stat is plain data, filled by fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

fn report(shared: &Shared, root: u32, pid: u32, path: Option<PathBuf>) {
    let (comm, exe) = shared.forks.name_of(pid);
    let ev = FsEvent {
        root_pid: root,
        pid,
        tid: 0,
        comm,
        exe,
        op: FsOp::Open,
        path: path.unwrap_or_default(),
        path2: None,
        outcome: Outcome::Denied,
        backend: BackendKind::Fanotify,
    };
    if shared.events.try_send(ev).is_err() {
        tracing::warn!("fsmon: a denied open could not be reported (monitor busy or gone)");
    }
}

/// The reader cannot go on: remove every mark so no new open waits on us, allow what is queued.
fn give_up(shared: &Shared, why: &str) {
    shared.dead.store(true, Ordering::Relaxed);
    tracing::error!(
        "fsmon: strict-mode denial stopped ({why}: {}); sensitive opens are no longer refused",
        io::Error::last_os_error()
    );
    let fan = shared.fan.as_raw_fd();
    // SAFETY: flushing this group's inode marks; the path argument is unused.
    unsafe {
        libc::fanotify_mark(
            fan,
            libc::FAN_MARK_FLUSH,
            0,
            libc::AT_FDCWD,
            std::ptr::null(),
        )
    };
    let mut buf = vec![0u64; 1024];
    loop {
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(fan, buf.as_mut_ptr() as *mut libc::c_void, buf.len() * 8) };
        if n <= 0 {
            return;
        }
        // SAFETY: the kernel wrote n bytes into buf.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
        drop(take_events(fan, bytes)); // each answers FAN_ALLOW on drop
    }
}

#[cfg(test)]
mod tests {
    use super::super::fanotify::testutil::Tmpfs;
    use super::*;
    use std::process::Stdio;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::sync::mpsc;

    /// Starts `sh -c script` held on its stdin until released, so it can be registered first.
    fn held(base: &Path, script: &str) -> tokio::process::Child {
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("read _; {script}"))
            .current_dir(base)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    async fn release(mut child: tokio::process::Child) -> (String, String) {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("an opener hung: a permission event went unanswered")
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A strict proxy of the daemon's: its trees are refused before anyone declares them.
    #[tokio::test]
    async fn a_strict_spawners_trees_are_refused_before_they_are_declared() {
        if !is_root() {
            eprintln!("skipped: fanotify permission events need root");
            return;
        }
        let fs = Tmpfs::mount("deny-spawner");
        let base = fs.path.canonicalize().unwrap();
        std::fs::create_dir(base.join("sens")).unwrap();
        std::fs::write(base.join("sens/key"), "k\n").unwrap();
        let forks = ForkTracker::open().expect("proc connector");
        let me = std::process::id();
        forks.add_spawner(me);
        let (tx, _rx) = mpsc::channel(64);
        let deny = DenyGuard::start(forks, tx).expect("deny group");
        deny.protect(&[base.join("sens")]).unwrap();
        let script = "cat sens/key; echo rc=$?";

        deny.set_strict_spawner(me, true);
        let (out, err) = release(held(&base, script)).await;
        assert_eq!(out, "rc=1\n", "{err}");
        assert!(err.contains("Operation not permitted"), "{err}");

        deny.set_strict_spawner(me, false);
        let (out, err) = release(held(&base, script)).await;
        assert_eq!(out, "k\nrc=0\n", "{err}");
    }

    #[tokio::test]
    async fn strict_trees_are_refused_sensitive_opens_and_others_are_not() {
        if !is_root() {
            eprintln!("skipped: fanotify permission events need root");
            return;
        }
        let fs = Tmpfs::mount("deny");
        let base = fs.path.canonicalize().unwrap();
        std::fs::create_dir_all(base.join("sens/sub")).unwrap();
        std::fs::write(base.join("sens/key"), "k\n").unwrap();
        std::fs::write(base.join("sens/sub/deep"), "d\n").unwrap();
        std::fs::write(base.join("secret"), "s\n").unwrap();
        std::fs::write(base.join("plain"), "p\n").unwrap();
        std::fs::create_dir(base.join("elsewhere")).unwrap();
        std::fs::hard_link(base.join("secret"), base.join("elsewhere/alias")).unwrap();
        let script = "cat sens/key; echo rc=$?; cat sens/sub/deep; echo rc=$?; \
                      cat secret; echo rc=$?; cat elsewhere/alias; echo rc=$?; cat plain; echo rc=$?; \
                      echo x > late; echo rc=$?";
        // Exists before the spawner is registered: in no tree.
        let unrelated = held(&base, script);

        let forks = ForkTracker::open().expect("proc connector");
        forks.add_spawner(std::process::id());
        let (tx, mut rx) = mpsc::channel(64);
        let deny = DenyGuard::start(forks, tx).expect("deny group");
        let marked = deny
            .protect(&[base.join("sens"), base.join("secret"), base.join("late")])
            .unwrap();
        assert_eq!(marked, 4, "sens, sens/sub, secret, and the root for late");

        let strict = held(&base, script);
        let lax = held(&base, script);
        let strict_root = strict.id().unwrap();
        deny.set_strict(strict_root, true);

        let t0 = std::time::Instant::now();
        let (out, err) = release(strict).await;
        let strict_ms = t0.elapsed().as_millis();
        eprintln!("strict tree ({strict_ms} ms):\n{out}{err}");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["rc=1", "rc=1", "rc=1", "rc=1", "p", "rc=0", "rc=2"]
        );
        // fanotify's FAN_DENY surfaces as EPERM.
        assert_eq!(err.matches("Operation not permitted").count(), 5, "{err}");
        // O_CREAT created the file before the open was refused.
        assert!(base.join("late").exists());
        assert_eq!(std::fs::read(base.join("late")).unwrap(), b"");

        for child in [lax, unrelated] {
            std::fs::remove_file(base.join("late")).unwrap();
            let (out, err) = release(child).await;
            assert_eq!(
                out.lines().collect::<Vec<_>>(),
                ["k", "rc=0", "d", "rc=0", "s", "rc=0", "s", "rc=0", "p", "rc=0", "rc=0"],
                "{err}"
            );
        }
        // The watchdog's own process is no tree either.
        assert_eq!(std::fs::read(base.join("secret")).unwrap(), b"s\n");

        let mut denied = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            denied.push(ev);
        }
        let paths: Vec<PathBuf> = denied.iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "sens/key",
                "sens/sub/deep",
                "secret",
                "elsewhere/alias",
                "late"
            ]
            .map(|p| base.join(p))
        );
        for e in &denied {
            assert_eq!(
                (e.root_pid, e.op, e.outcome),
                (strict_root, FsOp::Open, Outcome::Denied)
            );
            assert!(e.pid != 0, "{e:?}");
        }
        // `cat` is a child of the root; the redirection is the root shell's own.
        assert_ne!(denied[0].pid, strict_root);
        assert_eq!(denied[4].pid, strict_root);
        assert_eq!(deny.denied(), 5);
        drop(deny);
        // With the group gone, nothing is refused any more.
        assert_eq!(std::fs::read(base.join("sens/key")).unwrap(), b"k\n");
    }
}
