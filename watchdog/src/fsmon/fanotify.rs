//! The fanotify backend (root): whole-filesystem marks in FID mode, so every write-like operation on
//! a filesystem holding a scope root, a sensitive location or $HOME reaches us with the writer's
//! pid; [`ForkTracker`] says which tree that pid belongs to even after it exited.
//!
//! Events are dropped as early as possible, cheapest test first: a pid outside every tree (no path
//! resolution at all), then an operation inside the tree's write scope that touches nothing
//! sensitive (counted in [`FanotifyStats::in_scope`]).
//!
//! Raw libc: nix does not parse FID info records (KERNEL.md §3).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::deny::DenyGuard;
use super::event::{BackendKind, FsEvent, FsOp, Outcome};
use super::forks::{is_root, ForkTracker};
use super::{Backend, EventSender, WatchScope};

/// What the filesystem marks ask for: every write-like change, on directories too.
const MASK: u64 = libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;

/// How long a MOVED_FROM waits for its MOVED_TO (they are queued back to back by one rename).
const RENAME_PAIRING: Duration = Duration::from_millis(50);

/// Counters, for `status` and tests.
#[derive(Debug, Default)]
struct Stats {
    reported: AtomicU64,
    in_scope: AtomicU64,
    unwatched: AtomicU64,
    unresolved: AtomicU64,
    lost: AtomicU64,
    overflows: AtomicU64,
}

/// A snapshot of the backend's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanotifyStats {
    /// Events sent to the monitor.
    pub reported: u64,
    /// Dropped: inside the tree's write scope and not sensitive.
    pub in_scope: u64,
    /// Dropped: the writer belongs to no tree.
    pub unwatched: u64,
    /// Dropped: the path could not be resolved (the object was gone).
    pub unresolved: u64,
    /// Dropped: the monitor's channel was full.
    pub lost: u64,
    /// Kernel queue overflows (events lost before we saw them).
    pub overflows: u64,
}

/// The filesystems marked so far: one mark per filesystem, and a descriptor on each to resolve
/// file handles against.
#[derive(Default)]
struct Mounts {
    devs: HashSet<u64>,
    by_fsid: HashMap<[u8; 8], OwnedFd>,
}

struct Shared {
    fan: OwnedFd,
    forks: Arc<ForkTracker>,
    scopes: Mutex<HashMap<u32, WatchScope>>,
    mounts: Mutex<Mounts>,
    stats: Stats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct FanotifyBackend {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    fork_reader: JoinHandle<()>,
    events: EventSender,
    /// Strict mode's permission group, once enabled.
    deny: Option<DenyGuard>,
}

impl FanotifyBackend {
    /// Starts the backend with $HOME marked. Must run inside a tokio runtime. The error says why
    /// fanotify is unusable here (not root, kernel without FID reporting, …).
    pub fn start(events: EventSender) -> Result<FanotifyBackend, String> {
        FanotifyBackend::start_with(events, dirs::home_dir().as_deref())
    }

    /// Starts the backend with `home`'s filesystem marked (tests pass `None` to hear only their
    /// own filesystems).
    pub fn start_with(events: EventSender, home: Option<&Path>) -> Result<FanotifyBackend, String> {
        if !is_root() {
            return Err("fanotify filesystem marks need root".into());
        }
        let fan = fanotify_init(
            libc::FAN_CLASS_NOTIF
                | libc::FAN_CLOEXEC
                | libc::FAN_NONBLOCK
                | libc::FAN_REPORT_DFID_NAME
                | libc::FAN_REPORT_FID,
        )
        .map_err(|e| format!("fanotify_init with FID reporting failed: {e}"))?;
        let forks =
            ForkTracker::open().map_err(|e| format!("netlink proc connector unavailable: {e}"))?;
        let shared = Arc::new(Shared {
            fan,
            forks,
            scopes: Mutex::new(HashMap::new()),
            mounts: Mutex::new(Mounts::default()),
            stats: Stats::default(),
        });
        if let Some(home) = home {
            shared
                .mark_fs(home)
                .map_err(|e| format!("cannot mark {}: {e}", home.display()))?;
        }
        let fork_reader = shared
            .forks
            .spawn_reader()
            .map_err(|e| format!("proc connector: {e}"))?;
        let reader =
            spawn_reader(shared.clone(), events.clone()).map_err(|e| format!("fanotify: {e}"))?;
        Ok(FanotifyBackend {
            shared,
            reader,
            fork_reader,
            events,
            deny: None,
        })
    }

    /// Starts strict mode's permission group (sharing this backend's fork tracker and event
    /// channel) and protects the sensitive set of every tree watched so far and from now on.
    pub fn enable_denial(&mut self) -> Result<(), String> {
        if self.deny.is_some() {
            return Ok(());
        }
        let deny = DenyGuard::start(self.forks(), self.events.clone())?;
        for scope in lock(&self.shared.scopes).values() {
            if let Err(e) = deny.protect(&scope.sensitive) {
                tracing::warn!("fsmon: cannot protect the sensitive set: {e}");
            }
        }
        self.deny = Some(deny);
        Ok(())
    }

    /// Whether the tree rooted at `root` is refused sensitive opens (needs [`Self::enable_denial`];
    /// false without it).
    pub fn set_strict(&self, root: u32, strict: bool) -> bool {
        match &self.deny {
            Some(d) => {
                d.set_strict(root, strict);
                true
            }
            None => false,
        }
    }

    /// Marks the filesystems holding `paths` now. `watch` marks a scope's filesystems too, but only
    /// once the tree runs: a caller that knows the scope before spawning calls this first, so the
    /// server's first writes are not missed.
    pub fn prepare(&self, paths: &[PathBuf]) -> io::Result<()> {
        paths.iter().try_for_each(|p| self.shared.mark_fs(p))
    }

    /// The fork tracker, to share with the strict-mode denial group ([`super::deny`]).
    pub fn forks(&self) -> Arc<ForkTracker> {
        self.shared.forks.clone()
    }

    pub fn stats(&self) -> FanotifyStats {
        let s = &self.shared.stats;
        FanotifyStats {
            reported: s.reported.load(Ordering::Relaxed),
            in_scope: s.in_scope.load(Ordering::Relaxed),
            unwatched: s.unwatched.load(Ordering::Relaxed),
            unresolved: s.unresolved.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            overflows: s.overflows.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FanotifyBackend {
    fn drop(&mut self) {
        // The permission group first: its thread answers what is pending and stops.
        self.deny = None;
        self.reader.abort();
        self.fork_reader.abort();
    }
}

impl Backend for FanotifyBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fanotify
    }

    fn add_spawner(&mut self, spawner: u32) -> io::Result<()> {
        self.shared.forks.add_spawner(spawner);
        Ok(())
    }

    fn watch(&mut self, root_pid: u32, scope: &WatchScope) -> io::Result<()> {
        lock(&self.shared.scopes).insert(root_pid, scope.clone());
        self.set_strict(root_pid, scope.strict);
        if let Some(deny) = &self.deny {
            if let Err(e) = deny.protect(&scope.sensitive) {
                tracing::warn!("fsmon: cannot protect the sensitive set: {e}");
            }
        }
        let mut first_err = None;
        for p in scope.write.iter().chain(&scope.sensitive) {
            if let Err(e) = self.shared.mark_fs(p) {
                tracing::warn!("fsmon: cannot watch the filesystem of {}: {e}", p.display());
                first_err.get_or_insert(io::Error::new(
                    e.kind(),
                    format!("fanotify mark on {}: {e}", p.display()),
                ));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn unwatch(&mut self, root_pid: u32) {
        lock(&self.shared.scopes).remove(&root_pid);
        self.set_strict(root_pid, false);
        self.shared.forks.remove_tree(root_pid);
    }

    fn remove_spawner(&mut self, spawner: u32) {
        self.shared.forks.remove_spawner(spawner);
        if let Some(deny) = &self.deny {
            deny.set_strict_spawner(spawner, false);
        }
    }

    fn prepare(&mut self, scope: &WatchScope) -> io::Result<()> {
        let paths: Vec<PathBuf> = scope
            .write
            .iter()
            .chain(&scope.sensitive)
            .cloned()
            .collect();
        FanotifyBackend::prepare(self, &paths)
    }

    fn enable_denial(&mut self) -> Result<(), String> {
        FanotifyBackend::enable_denial(self)
    }

    /// Refuses sensitive opens from the fork on; what cannot be refused is killed once the tree's
    /// events are judged (fanotify events come after the operation).
    fn strict_from_fork(&mut self, spawner: u32, sensitive: &[PathBuf]) -> Result<(), String> {
        let deny = self
            .deny
            .as_ref()
            .ok_or("denial is off in this daemon's fanotify backend")?;
        deny.set_strict_spawner(spawner, true);
        deny.protect(sensitive)
            .map(drop)
            .map_err(|e| format!("cannot protect the sensitive set: {e}"))
    }

    fn strict_everywhere(&mut self, sensitive: &[PathBuf]) -> Result<(), String> {
        FanotifyBackend::enable_denial(self)?;
        let deny = self.deny.as_ref().ok_or("the denial group did not start")?;
        deny.set_strict_all();
        deny.protect(sensitive)
            .map(drop)
            .map_err(|e| format!("cannot protect the sensitive set: {e}"))
    }
}

impl Shared {
    /// Marks the filesystem holding `path` (or its nearest existing ancestor), once per filesystem.
    fn mark_fs(&self, path: &Path) -> io::Result<()> {
        let existing = nearest_existing(path)?;
        let dev = std::fs::metadata(&existing)?.dev();
        let mut mounts = lock(&self.mounts);
        if mounts.devs.contains(&dev) {
            return Ok(());
        }
        fanotify_mark(
            self.fan.as_raw_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            MASK,
            &existing,
        )?;
        // open_by_handle_at refuses O_PATH descriptors: open a directory for reading (never the
        // file itself, which may be a sensitive file under a permission mark).
        let dir = if existing.is_dir() {
            existing.as_path()
        } else {
            existing.parent().unwrap_or(Path::new("/"))
        };
        let mount_fd = open_dir(dir)?;
        let fsid = fsid_of(mount_fd.as_raw_fd())?;
        mounts.devs.insert(dev);
        mounts.by_fsid.entry(fsid).or_insert(mount_fd);
        Ok(())
    }

    fn resolve(&self, fid: &Fid) -> Option<PathBuf> {
        let mounts = lock(&self.mounts);
        let mount_fd = mounts.by_fsid.get(&fid.fsid)?;
        resolve_handle(mount_fd.as_raw_fd(), fid)
    }

    /// The event's path: the directory handle plus the entry name, else the object's own handle.
    fn path_of(&self, ev: &RawEvent) -> Option<PathBuf> {
        if let Some((dir, name)) = &ev.dir {
            if let Some(d) = self.resolve(dir) {
                return Some(if name.is_empty() || name.as_bytes() == b"." {
                    d
                } else {
                    d.join(name)
                });
            }
        }
        ev.obj.as_ref().and_then(|o| self.resolve(o))
    }
}

fn nearest_existing(path: &Path) -> io::Result<PathBuf> {
    let mut p = path;
    loop {
        if p.symlink_metadata().is_ok() {
            return Ok(p.to_path_buf());
        }
        p = p
            .parent()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no existing ancestor"))?;
    }
}

pub(crate) fn fanotify_init(flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before being owned.
    let fd = unsafe {
        libc::fanotify_init(
            flags,
            (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn fanotify_mark(
    fan: RawFd,
    flags: libc::c_uint,
    mask: u64,
    path: &Path,
) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: c is a valid NUL-terminated path.
    let rc = unsafe { libc::fanotify_mark(fan, flags, mask, libc::AT_FDCWD, c.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: c is a valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The filesystem id fanotify puts in FID records (statfs f_fsid), as raw bytes.
fn fsid_of(fd: RawFd) -> io::Result<[u8; 8]> {
    // SAFETY: statfs is plain data, filled by fstatfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    if unsafe { libc::fstatfs(fd, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // fsid_t's fields are private in libc; it is two c_ints (8 bytes) on Linux.
    const _: () = assert!(size_of::<libc::fsid_t>() == 8);
    // SAFETY: reading the 8 bytes of a plain-data field.
    Ok(unsafe { std::ptr::read_unaligned(&st.f_fsid as *const libc::fsid_t as *const [u8; 8]) })
}

/// `open_by_handle_at` + the descriptor's path. Needs CAP_DAC_READ_SEARCH.
fn resolve_handle(mount_fd: RawFd, fid: &Fid) -> Option<PathBuf> {
    let header = size_of::<libc::file_handle>();
    // u32 storage: struct file_handle is 4-aligned.
    let mut buf = vec![0u32; (header + fid.handle.len()).div_ceil(4)];
    let fh = buf.as_mut_ptr() as *mut libc::file_handle;
    // SAFETY: buf holds the header plus handle bytes, suitably aligned.
    unsafe {
        (*fh).handle_bytes = fid.handle.len() as libc::c_uint;
        (*fh).handle_type = fid.handle_type;
        std::ptr::copy_nonoverlapping(
            fid.handle.as_ptr(),
            (buf.as_mut_ptr() as *mut u8).add(header),
            fid.handle.len(),
        );
    }
    // SAFETY: fh points to a complete file_handle.
    let fd = unsafe { libc::open_by_handle_at(mount_fd, fh, libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        tracing::debug!("fsmon: open_by_handle_at: {}", io::Error::last_os_error());
        return None;
    }
    // SAFETY: a fresh descriptor we own (closed on drop).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    fd_path(fd.as_raw_fd())
}

/// The path a descriptor of ours refers to.
pub(crate) fn fd_path(fd: RawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// A file handle from an info record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fid {
    fsid: [u8; 8],
    handle_type: i32,
    handle: Vec<u8>,
}

/// One event as read, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEvent {
    mask: u64,
    pid: i32,
    /// The directory and entry name (DFID_NAME / DFID records).
    dir: Option<(Fid, OsString)>,
    /// The object itself (FID record).
    obj: Option<Fid>,
}

fn read_at<T: Copy>(b: &[u8], off: usize) -> Option<T> {
    let end = off.checked_add(size_of::<T>())?;
    if end > b.len() {
        return None;
    }
    // SAFETY: in bounds; read_unaligned has no alignment requirement; T is plain data.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().add(off) as *const T) })
}

/// Parses a read(2) buffer of FID-mode events. Malformed events end the parse (the rest of the
/// buffer cannot be trusted); descriptors carried by events (none in FID mode) are closed.
fn parse_events(b: &[u8]) -> (Vec<RawEvent>, usize) {
    let meta_len = size_of::<libc::fanotify_event_metadata>();
    let mut out = Vec::new();
    let mut overflows = 0;
    let mut off = 0;
    while let Some(m) = read_at::<libc::fanotify_event_metadata>(b, off) {
        let ev_len = m.event_len as usize;
        if m.vers != libc::FANOTIFY_METADATA_VERSION
            || (m.metadata_len as usize) < meta_len
            || ev_len < m.metadata_len as usize
            || off + ev_len > b.len()
        {
            tracing::warn!("fsmon: malformed fanotify event, rest of the buffer skipped");
            break;
        }
        if m.fd >= 0 {
            // SAFETY: the kernel gave us this descriptor; nobody else owns it.
            drop(unsafe { OwnedFd::from_raw_fd(m.fd) });
        }
        if m.mask & libc::FAN_Q_OVERFLOW != 0 {
            overflows += 1;
        } else {
            let mut ev = RawEvent {
                mask: m.mask,
                pid: m.pid,
                dir: None,
                obj: None,
            };
            parse_info(&b[off + m.metadata_len as usize..off + ev_len], &mut ev);
            out.push(ev);
        }
        off += ev_len;
        if ev_len == 0 {
            break;
        }
    }
    (out, overflows)
}

fn parse_info(mut b: &[u8], ev: &mut RawEvent) {
    let hdr_len = size_of::<libc::fanotify_event_info_header>();
    let fid_len = size_of::<libc::fanotify_event_info_fid>();
    let fh_len = size_of::<libc::file_handle>();
    while let Some(h) = read_at::<libc::fanotify_event_info_header>(b, 0) {
        let len = h.len as usize;
        // Records are padded to 4 bytes; anything else means we misread.
        if len < hdr_len || len > b.len() || len % 4 != 0 {
            tracing::warn!("fsmon: malformed fanotify info record");
            return;
        }
        let rec = &b[..len];
        b = &b[len..];
        let kind = h.info_type;
        if !matches!(
            kind,
            libc::FAN_EVENT_INFO_TYPE_FID
                | libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                | libc::FAN_EVENT_INFO_TYPE_DFID
        ) {
            continue;
        }
        let Some(fsid) = read_at::<[u8; 8]>(rec, hdr_len) else {
            continue;
        };
        let (Some(bytes), Some(handle_type)) = (
            read_at::<u32>(rec, fid_len),
            read_at::<i32>(rec, fid_len + 4),
        ) else {
            continue;
        };
        let start = fid_len + fh_len;
        let end = start + bytes as usize;
        if bytes as i32 > libc::MAX_HANDLE_SZ || end > rec.len() {
            continue;
        }
        let fid = Fid {
            fsid,
            handle_type,
            handle: rec[start..end].to_vec(),
        };
        if kind == libc::FAN_EVENT_INFO_TYPE_FID {
            ev.obj = Some(fid);
        } else {
            let name = if kind == libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
                let rest = &rec[end..];
                let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                OsString::from_vec(rest[..n].to_vec())
            } else {
                OsString::new()
            };
            ev.dir = Some((fid, name));
        }
    }
}

/// The operations one event stands for (fanotify merges events on the same object).
fn ops_of(mask: u64) -> Vec<Op> {
    let dir = mask & libc::FAN_ONDIR != 0;
    let mut ops = Vec::new();
    if mask & libc::FAN_CREATE != 0 {
        ops.push(Op::Fs(if dir { FsOp::Mkdir } else { FsOp::Create }));
    }
    if mask & libc::FAN_MOVED_FROM != 0 {
        ops.push(Op::MovedFrom);
    }
    if mask & libc::FAN_MOVED_TO != 0 {
        ops.push(Op::MovedTo);
    }
    if mask & (libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE) != 0 {
        ops.push(Op::Fs(FsOp::OpenWrite));
    }
    if mask & libc::FAN_ATTRIB != 0 {
        ops.push(Op::Fs(FsOp::Attrib));
    }
    if mask & libc::FAN_DELETE != 0 {
        ops.push(Op::Fs(if dir { FsOp::Rmdir } else { FsOp::Unlink }));
    }
    ops
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Fs(FsOp),
    MovedFrom,
    MovedTo,
}

/// A MOVED_FROM waiting for its MOVED_TO.
struct PendingMove {
    root: u32,
    pid: u32,
    from: PathBuf,
}

struct Reader {
    shared: Arc<Shared>,
    events: EventSender,
    pending: Option<PendingMove>,
    closed: bool,
}

fn spawn_reader(shared: Arc<Shared>, events: EventSender) -> io::Result<JoinHandle<()>> {
    struct Fd(Arc<Shared>);
    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.fan.as_raw_fd()
        }
    }
    // SAFETY: the Arc keeps the fanotify descriptor open, unchanged, while the AsyncFd lives.
    let afd = unsafe {
        AsyncFd::register_with_interest(Fd(shared.clone()), tokio::io::Interest::READABLE)?
    };
    let mut reader = Reader {
        shared,
        events,
        pending: None,
        closed: false,
    };
    Ok(tokio::spawn(async move {
        // u64 storage: event metadata is 8-aligned.
        let mut buf = vec![0u64; 8192];
        while !reader.closed {
            let ready = if reader.pending.is_some() {
                match tokio::time::timeout(RENAME_PAIRING, afd.readable()).await {
                    Ok(r) => r,
                    Err(_) => {
                        reader.flush_pending();
                        continue;
                    }
                }
            } else {
                afd.readable().await
            };
            let Ok(mut guard) = ready else {
                return;
            };
            loop {
                let fd = reader.shared.fan.as_raw_fd();
                let cap = buf.len() * 8;
                // SAFETY: reading into a buffer we own, of the length given.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, cap) };
                if n < 0 {
                    let err = io::Error::last_os_error();
                    match err.raw_os_error() {
                        Some(libc::EAGAIN) => {
                            guard.clear_ready();
                            break;
                        }
                        Some(libc::EINTR) => continue,
                        _ => {
                            tracing::warn!("fsmon: fanotify read failed: {err}");
                            return;
                        }
                    }
                }
                // SAFETY: the kernel wrote n bytes into buf.
                let bytes =
                    unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, n as usize) };
                let (evs, overflows) = parse_events(bytes);
                if overflows > 0 {
                    reader
                        .shared
                        .stats
                        .overflows
                        .fetch_add(overflows as u64, Ordering::Relaxed);
                    tracing::warn!("fsmon: fanotify queue overflowed, filesystem events were lost");
                }
                for ev in evs {
                    reader.handle(ev);
                }
            }
        }
    }))
}

impl Reader {
    fn handle(&mut self, ev: RawEvent) {
        let stats = &self.shared.stats;
        let pid = u32::try_from(ev.pid).unwrap_or(0);
        let root = if pid == 0 {
            None
        } else {
            self.shared.forks.root_of(pid)
        };
        let Some(root) = root else {
            stats.unwatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(path) = self.shared.path_of(&ev) else {
            stats.unresolved.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("fsmon: unresolvable fanotify event from pid {pid}");
            return;
        };
        for op in ops_of(ev.mask) {
            match op {
                Op::MovedFrom => {
                    self.flush_pending();
                    self.pending = Some(PendingMove {
                        root,
                        pid,
                        from: path.clone(),
                    });
                }
                Op::MovedTo => match self.pending.take() {
                    Some(p) if p.pid == pid => {
                        self.emit(root, pid, FsOp::Rename, p.from, Some(path.clone()))
                    }
                    other => {
                        self.pending = other;
                        self.flush_pending();
                        // The source was not seen: something appeared at the destination.
                        self.emit(root, pid, FsOp::Create, path.clone(), None);
                    }
                },
                Op::Fs(FsOp::Create) => {
                    // A symlink is created without an open; say what it points to.
                    match std::fs::read_link(&path) {
                        Ok(target) => {
                            self.emit(root, pid, FsOp::Symlink, path.clone(), Some(target))
                        }
                        Err(_) => self.emit(root, pid, FsOp::Create, path.clone(), None),
                    }
                }
                Op::Fs(op) => self.emit(root, pid, op, path.clone(), None),
            }
        }
    }

    fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.emit(p.root, p.pid, FsOp::Rename, p.from, None);
        }
    }

    fn emit(&mut self, root: u32, pid: u32, op: FsOp, path: PathBuf, path2: Option<PathBuf>) {
        let stats = &self.shared.stats;
        if let Some(scope) = lock(&self.shared.scopes).get(&root) {
            // A symlink's target text is not a write; a rename's destination is.
            let dest_ok = op == FsOp::Symlink || path2.as_deref().is_none_or(|p| scope.expects(p));
            if scope.expects(&path) && dest_ok {
                stats.in_scope.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let (comm, exe) = self.shared.forks.name_of(pid);
        let ev = FsEvent {
            root_pid: root,
            pid,
            tid: 0,
            comm,
            exe,
            op,
            path,
            path2,
            outcome: Outcome::Allowed,
            backend: BackendKind::Fanotify,
        };
        match self.events.try_send(ev) {
            Ok(()) => {
                stats.reported.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                let lost = stats.lost.fetch_add(1, Ordering::Relaxed);
                if lost.is_power_of_two() || lost == 0 {
                    tracing::warn!(
                        "fsmon: monitor is not keeping up, {} filesystem events dropped",
                        lost + 1
                    );
                }
            }
            Err(TrySendError::Closed(_)) => self.closed = true,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A private tmpfs per test, so no other process's writes land in it.

    use crate::fsmon::WatchScope;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Built from Default so that a field added to WatchScope does not break every test.
    #[allow(clippy::field_reassign_with_default)]
    pub fn scope_of(write: Vec<PathBuf>, sensitive: Vec<PathBuf>) -> WatchScope {
        let mut s = WatchScope::default();
        s.write = write;
        s.sensitive = sensitive;
        s
    }

    pub struct Tmpfs {
        pub path: PathBuf,
    }

    impl Tmpfs {
        pub fn mount(tag: &str) -> Tmpfs {
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "wd-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: valid NUL-terminated strings.
            let rc = unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    c.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"size=64m,nr_inodes=65536".as_ptr() as *const libc::c_void,
                )
            };
            assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
            Tmpfs { path }
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let c = std::ffi::CString::new(self.path.to_str().unwrap()).unwrap();
            // SAFETY: valid NUL-terminated string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{scope_of, Tmpfs};
    use super::*;
    use std::process::Stdio;
    use tokio::sync::mpsc;

    #[test]
    fn operations_map_from_masks() {
        assert_eq!(ops_of(libc::FAN_CREATE), vec![Op::Fs(FsOp::Create)]);
        assert_eq!(
            ops_of(libc::FAN_CREATE | libc::FAN_ONDIR),
            vec![Op::Fs(FsOp::Mkdir)]
        );
        assert_eq!(
            ops_of(libc::FAN_DELETE | libc::FAN_ONDIR),
            vec![Op::Fs(FsOp::Rmdir)]
        );
        assert_eq!(
            ops_of(libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE),
            vec![Op::Fs(FsOp::OpenWrite)]
        );
        assert_eq!(
            ops_of(libc::FAN_CREATE | libc::FAN_MODIFY),
            vec![Op::Fs(FsOp::Create), Op::Fs(FsOp::OpenWrite)]
        );
        assert_eq!(ops_of(libc::FAN_ATTRIB), vec![Op::Fs(FsOp::Attrib)]);
    }

    fn record(kind: u8, fsid: [u8; 8], handle: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut r = vec![kind, 0, 0, 0];
        r.extend_from_slice(&fsid);
        r.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
        r.extend_from_slice(&1i32.to_ne_bytes());
        r.extend_from_slice(handle);
        if let Some(n) = name {
            r.extend_from_slice(n.as_bytes());
            r.push(0);
        }
        while r.len() % 4 != 0 {
            r.push(0);
        }
        let len = r.len() as u16;
        r[2..4].copy_from_slice(&len.to_ne_bytes());
        r
    }

    fn event(mask: u64, pid: i32, info: &[u8]) -> Vec<u8> {
        let meta = size_of::<libc::fanotify_event_metadata>();
        let mut e = vec![0u8; meta];
        e[0..4].copy_from_slice(&((meta + info.len()) as u32).to_ne_bytes());
        e[4] = libc::FANOTIFY_METADATA_VERSION;
        e[6..8].copy_from_slice(&(meta as u16).to_ne_bytes());
        e[8..16].copy_from_slice(&mask.to_ne_bytes());
        e[16..20].copy_from_slice(&libc::FAN_NOFD.to_ne_bytes());
        e[20..24].copy_from_slice(&pid.to_ne_bytes());
        e.extend_from_slice(info);
        e
    }

    #[test]
    fn info_records_parse_with_bounds_checks() {
        let mut info = record(
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
            [7; 8],
            &[1; 8],
            Some("x.txt"),
        );
        info.extend(record(
            libc::FAN_EVENT_INFO_TYPE_FID,
            [7; 8],
            &[2; 12],
            None,
        ));
        let mut buf = event(libc::FAN_CREATE, 42, &info);
        buf.extend(event(libc::FAN_ATTRIB, 43, &[]));
        let (evs, overflows) = parse_events(&buf);
        assert_eq!(overflows, 0);
        assert_eq!(evs.len(), 2);
        let (dir, name) = evs[0].dir.clone().unwrap();
        assert_eq!((dir.handle, name), (vec![1; 8], OsString::from("x.txt")));
        assert_eq!(evs[0].obj.as_ref().unwrap().handle, vec![2; 12]);
        assert_eq!((evs[1].pid, evs[1].dir.clone()), (43, None));

        // A record claiming more than the event holds is ignored, not read past.
        let mut bad = record(libc::FAN_EVENT_INFO_TYPE_FID, [7; 8], &[2; 12], None);
        bad[2..4].copy_from_slice(&200u16.to_ne_bytes());
        let (evs, _) = parse_events(&event(libc::FAN_MODIFY, 1, &bad));
        assert_eq!(evs[0].obj, None);
        // A truncated event ends the parse.
        let whole = event(libc::FAN_MODIFY, 1, &info);
        assert!(parse_events(&whole[..whole.len() - 4]).0.is_empty());
    }

    /// Collects events until none arrived for a while.
    pub(crate) async fn collect(rx: &mut mpsc::Receiver<FsEvent>) -> Vec<FsEvent> {
        let mut out = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            out.push(ev);
        }
        out
    }

    #[tokio::test]
    async fn out_of_scope_operations_of_a_tree_are_attributed_even_to_short_lived_processes() {
        if !is_root() {
            eprintln!("skipped: fanotify filesystem marks need root");
            return;
        }
        let fs = Tmpfs::mount("fan");
        let base = fs.path.canonicalize().unwrap();
        for d in ["scope", "out", "sens"] {
            std::fs::create_dir(base.join(d)).unwrap();
        }
        // A process that exists before the spawner is registered is not in any tree.
        let mut unrelated = tokio::process::Command::new("sh")
            .arg("-c")
            .arg("read _; echo x > out/unrelated")
            .current_dir(&base)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();

        let (tx, mut rx) = mpsc::channel(1024);
        let mut fan = FanotifyBackend::start_with(tx, None).expect("fanotify");
        fan.add_spawner(std::process::id()).unwrap();
        let scope = scope_of(vec![base.join("scope")], vec![base.join("sens")]);
        let script = "echo hi > scope/inscope.txt; \
            touch out/t; mkdir out/d; mv out/t out/t2; ln -s target out/l; chmod 600 out/t2; \
            rm out/t2; rmdir out/d; sh -c 'echo g > out/g; true'; echo s > sens/key; \
            mkdir -p scope/.git; echo c > scope/.git/config; mv scope/inscope.txt out/moved; true";
        fan.prepare(&scope.write).unwrap();
        // The tree is watched once it exists: the spawner registration covers the gap.
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&base)
            .spawn()
            .unwrap();
        let root = child.id().unwrap();
        fan.watch(root, &scope).unwrap();
        let status = child.wait_with_output().await.unwrap().status;
        assert!(status.success());
        drop(unrelated.stdin.take());
        unrelated.wait().await.unwrap();

        let all = collect(&mut rx).await;
        let evs: Vec<&FsEvent> = all.iter().filter(|e| e.root_pid == root).collect();
        eprintln!(
            "root {root}: {} events of {}, {:?}",
            evs.len(),
            all.len(),
            fan.stats()
        );
        for e in &evs {
            eprintln!(
                "{:>7} {:>7} {:<10} {:<10} {} {:?}",
                e.root_pid,
                e.pid,
                e.comm,
                e.op,
                e.path.display(),
                e.path2
            );
        }
        let find = |op: FsOp, p: &str| {
            *evs.iter()
                .find(|e| e.op == op && e.path == base.join(p))
                .unwrap_or_else(|| panic!("no {op} of {p}"))
        };
        let touch = find(FsOp::Create, "out/t");
        let mkdir = find(FsOp::Mkdir, "out/d");
        let mv = find(FsOp::Rename, "out/t");
        assert_eq!(mv.path2.as_deref(), Some(base.join("out/t2").as_path()));
        let ln = find(FsOp::Symlink, "out/l");
        assert_eq!(ln.path2.as_deref(), Some(Path::new("target")));
        let chmod = find(FsOp::Attrib, "out/t2");
        let rm = find(FsOp::Unlink, "out/t2");
        let rmdir = find(FsOp::Rmdir, "out/d");
        let grandchild = find(FsOp::Create, "out/g");
        find(FsOp::OpenWrite, "out/g");
        let sens = find(FsOp::Create, "sens/key");
        find(FsOp::OpenWrite, "scope/.git/config");
        let out_mv = find(FsOp::Rename, "scope/inscope.txt");
        assert_eq!(
            out_mv.path2.as_deref(),
            Some(base.join("out/moved").as_path())
        );
        // Every short-lived process is its own pid, attributed to the root.
        let pids: Vec<u32> = [touch, mkdir, mv, ln, chmod, rm, rmdir, grandchild]
            .iter()
            .map(|e| e.pid)
            .collect();
        for (i, p) in pids.iter().enumerate() {
            assert!(*p != 0 && *p != root, "{p}");
            assert!(!pids[i + 1..].contains(p), "pids not distinct: {pids:?}");
        }
        assert_eq!(sens.pid, root, "the shell's own redirection");
        assert!(evs.iter().all(|e| e.backend == BackendKind::Fanotify
            && e.outcome == Outcome::Allowed
            && (e.op == FsOp::Rename || e.path != base.join("scope/inscope.txt"))));
        // Nothing from the unrelated process, under any root.
        assert!(all.iter().all(|e| e.path != base.join("out/unrelated")));
        assert!(base.join("out/unrelated").exists());
        let stats = fan.stats();
        assert!(stats.in_scope >= 1, "{stats:?}");
        assert!(stats.unwatched >= 1, "{stats:?}");
        assert_eq!(stats.overflows, 0);
    }

    #[tokio::test]
    async fn strict_mode_through_the_backend_refuses_sensitive_opens() {
        if !is_root() {
            eprintln!("skipped: fanotify needs root");
            return;
        }
        let fs = Tmpfs::mount("fanstrict");
        let base = fs.path.canonicalize().unwrap();
        std::fs::create_dir(base.join("sens")).unwrap();
        std::fs::write(base.join("sens/key"), "k\n").unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        let mut fan = FanotifyBackend::start_with(tx, None).unwrap();
        fan.add_spawner(std::process::id()).unwrap();
        fan.enable_denial().unwrap();
        let scope = scope_of(vec![base.join("scope")], vec![base.join("sens")]);
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg("read _; cat sens/key")
            .current_dir(&base)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let root = child.id().unwrap();
        fan.watch(root, &scope).unwrap();
        assert!(fan.set_strict(root, true));
        let mut child = child;
        drop(child.stdin.take());
        let out = child.wait_with_output().await.unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
        let evs = collect(&mut rx).await;
        assert!(evs.iter().any(|e| e.root_pid == root
            && e.op == FsOp::Open
            && e.outcome == Outcome::Denied
            && e.path == base.join("sens/key")));
        fan.unwatch(root);
        drop(fan);
        assert_eq!(std::fs::read(base.join("sens/key")).unwrap(), b"k\n");
    }
}
