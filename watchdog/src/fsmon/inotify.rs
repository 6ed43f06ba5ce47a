//! The unprivileged backend: inotify watches over every scope root (recursively, following new
//! subdirectories) and over the sensitive locations that exist (a file through its parent).
//!
//! inotify says what changed, never who changed it. Attribution is by place: a change inside a
//! scope is reported with that scope's root, since Landlock lets only the confined tree (and the
//! user) write there; a change to a sensitive location outside every scope is reported with
//! `root_pid` 0, unattributed, for the monitor to judge. pid is always 0.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use super::event::{BackendKind, FsEvent, FsOp, Outcome};
use super::{Backend, EventSender, WatchScope};

/// Watches at most, across all scopes (the kernel's per-user default is 8192 on older kernels).
pub const DEFAULT_MAX_WATCHES: usize = 8192;

const RENAME_PAIRING: Duration = Duration::from_millis(50);

fn mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DONT_FOLLOW
        | WatchMask::EXCL_UNLINK
}

struct Dir {
    path: PathBuf,
    /// Scope roots and sensitive directories: new subdirectories are watched too. A sensitive
    /// file's parent is not.
    recursive: bool,
}

struct State {
    watches: Watches,
    scopes: HashMap<u32, WatchScope>,
    dirs: HashMap<WatchDescriptor, Dir>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
    max: usize,
    limit_hit: bool,
    lost: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct InotifyBackend {
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl InotifyBackend {
    /// Starts the reader (inside a tokio runtime). Needs no privilege.
    pub fn start(events: EventSender) -> Result<InotifyBackend, String> {
        InotifyBackend::with_limit(events, DEFAULT_MAX_WATCHES)
    }

    /// As [`InotifyBackend::start`], with at most `max` watches.
    pub fn with_limit(events: EventSender, max: usize) -> Result<InotifyBackend, String> {
        let inotify = Inotify::init().map_err(|e| format!("inotify_init: {e}"))?;
        let stream = inotify
            .into_event_stream(vec![0u8; 64 * 1024])
            .map_err(|e| format!("inotify: {e}"))?;
        let state = Arc::new(Mutex::new(State {
            watches: stream.watches(),
            scopes: HashMap::new(),
            dirs: HashMap::new(),
            by_path: HashMap::new(),
            max,
            limit_hit: false,
            lost: 0,
        }));
        let task = tokio::spawn(read_loop(stream, state.clone(), events));
        Ok(InotifyBackend { state, task })
    }

    /// Watches in place.
    pub fn watch_count(&self) -> usize {
        lock(&self.state).dirs.len()
    }

    /// Whether the watch limit stopped a directory from being watched.
    pub fn limit_hit(&self) -> bool {
        lock(&self.state).limit_hit
    }
}

impl Drop for InotifyBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend for InotifyBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Inotify
    }

    /// Nothing to follow: inotify attributes by place.
    fn add_spawner(&mut self, _spawner: u32) -> io::Result<()> {
        Ok(())
    }

    fn watch(&mut self, root_pid: u32, scope: &WatchScope) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.scopes.insert(root_pid, scope.clone());
        for root in &scope.write {
            st.add_tree(root)?;
        }
        for s in &scope.sensitive {
            match std::fs::symlink_metadata(s) {
                Ok(m) if m.is_dir() => {
                    st.add_tree(s)?;
                }
                Ok(_) => {
                    if let Some(parent) = s.parent() {
                        st.add(parent, false)?;
                    }
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Watches the sensitive set now, as nobody's (root 0): a change there is reported even
    /// before the first server is registered.
    fn prepare(&mut self, scope: &WatchScope) -> io::Result<()> {
        let sensitive_only = WatchScope {
            sensitive: scope.sensitive.clone(),
            ..WatchScope::default()
        };
        self.watch(0, &sensitive_only)
    }

    fn unwatch(&mut self, root_pid: u32) {
        let mut st = lock(&self.state);
        st.scopes.remove(&root_pid);
        // Drop the watches no remaining scope or sensitive location needs.
        let keep: Vec<PathBuf> = st
            .scopes
            .values()
            .flat_map(|s| s.write.iter().chain(&s.sensitive))
            .cloned()
            .collect();
        let stale: Vec<WatchDescriptor> = st
            .dirs
            .iter()
            .filter(|(_, d)| {
                !keep
                    .iter()
                    .any(|k| d.path.starts_with(k) || k.parent() == Some(d.path.as_path()))
            })
            .map(|(wd, _)| wd.clone())
            .collect();
        for wd in stale {
            if let Some(d) = st.dirs.remove(&wd) {
                st.by_path.remove(&d.path);
            }
            let _ = st.watches.remove(wd);
        }
    }
}

impl State {
    /// Watches `dir`. False when the limit stopped it.
    fn add(&mut self, dir: &Path, recursive: bool) -> io::Result<bool> {
        if let Some(wd) = self.by_path.get(dir) {
            if recursive {
                if let Some(d) = self.dirs.get_mut(wd) {
                    d.recursive = true;
                }
            }
            return Ok(true);
        }
        if self.dirs.len() >= self.max {
            self.hit_limit(dir);
            return Ok(false);
        }
        let wd = match self.watches.add(dir, mask()) {
            Ok(wd) => wd,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                self.hit_limit(dir);
                return Ok(false);
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        };
        self.by_path.insert(dir.to_path_buf(), wd.clone());
        self.dirs.insert(
            wd,
            Dir {
                path: dir.to_path_buf(),
                recursive,
            },
        );
        Ok(true)
    }

    fn hit_limit(&mut self, dir: &Path) {
        if !self.limit_hit {
            tracing::warn!(
                "fsmon: inotify watch limit reached ({} watches, or fs.inotify.max_user_watches); \
                 changes beneath {} and any further new directory are not seen (run the daemon \
                 as root for fanotify, or raise the limit)",
                self.max,
                dir.display()
            );
        }
        self.limit_hit = true;
    }

    /// Watches `root` and every directory beneath it. Returns the directories newly watched.
    fn add_tree(&mut self, root: &Path) -> io::Result<Vec<PathBuf>> {
        let mut added = Vec::new();
        let mut queue = vec![root.to_path_buf()];
        while let Some(dir) = queue.pop() {
            let new = !self.by_path.contains_key(&dir);
            if !self.add(&dir, true)? {
                break;
            }
            if new {
                added.push(dir.clone());
            }
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        queue.push(e.path());
                    }
                }
            }
        }
        Ok(added)
    }

    /// The tree `path` belongs to by place: the scope with the longest root holding it, else 0
    /// when it is sensitive for some scope. None: nobody's business.
    fn attribute(&self, path: &Path) -> Option<u32> {
        let best = self
            .scopes
            .iter()
            .flat_map(|(&root, s)| {
                s.write
                    .iter()
                    .filter(|w| path.starts_with(w))
                    .map(move |w| (w.as_os_str().len(), root))
            })
            .max();
        if let Some((_, root)) = best {
            return Some(root);
        }
        self.scopes
            .values()
            .any(|s| s.is_sensitive(path))
            .then_some(0)
    }
}

struct Pending {
    cookie: u32,
    from: PathBuf,
}

async fn read_loop(
    mut stream: inotify::EventStream<Vec<u8>>,
    state: Arc<Mutex<State>>,
    events: EventSender,
) {
    let mut pending: Option<Pending> = None;
    loop {
        let next = if pending.is_some() {
            match tokio::time::timeout(RENAME_PAIRING, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    if let Some(p) = pending.take() {
                        emit(&state, &events, FsOp::Rename, p.from, None);
                    }
                    continue;
                }
            }
        } else {
            stream.next().await
        };
        let ev = match next {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                tracing::warn!("fsmon: inotify read failed: {e}");
                return;
            }
            None => return,
        };
        if ev.mask.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("fsmon: inotify queue overflowed, filesystem events were lost");
            continue;
        }
        let (path, recursive) = {
            let mut st = lock(&state);
            if ev.mask.contains(EventMask::IGNORED) {
                if let Some(d) = st.dirs.remove(&ev.wd) {
                    st.by_path.remove(&d.path);
                }
                continue;
            }
            let Some(d) = st.dirs.get(&ev.wd) else {
                continue;
            };
            let path = match &ev.name {
                Some(n) if !n.is_empty() => d.path.join(n),
                _ => d.path.clone(),
            };
            (path, d.recursive)
        };
        let is_dir = ev.mask.contains(EventMask::ISDIR);
        if let Some(p) = pending.take() {
            if ev.mask.contains(EventMask::MOVED_TO) && ev.cookie == p.cookie {
                emit(&state, &events, FsOp::Rename, p.from, Some(path.clone()));
                if is_dir && recursive {
                    follow_new_dir(&state, &events, &path);
                }
                continue;
            }
            emit(&state, &events, FsOp::Rename, p.from, None);
        }
        let m = ev.mask;
        if m.contains(EventMask::CREATE) {
            if is_dir {
                emit(&state, &events, FsOp::Mkdir, path.clone(), None);
                if recursive {
                    follow_new_dir(&state, &events, &path);
                }
            } else if let Ok(target) = std::fs::read_link(&path) {
                emit(&state, &events, FsOp::Symlink, path.clone(), Some(target));
            } else {
                emit(&state, &events, FsOp::Create, path.clone(), None);
            }
        }
        if m.contains(EventMask::MOVED_FROM) {
            pending = Some(Pending {
                cookie: ev.cookie,
                from: path.clone(),
            });
        }
        if m.contains(EventMask::MOVED_TO) {
            // The source was outside every watch: something appeared here.
            emit(&state, &events, FsOp::Create, path.clone(), None);
            if is_dir && recursive {
                follow_new_dir(&state, &events, &path);
            }
        }
        if m.intersects(EventMask::MODIFY | EventMask::CLOSE_WRITE) {
            emit(&state, &events, FsOp::OpenWrite, path.clone(), None);
        }
        if m.contains(EventMask::ATTRIB) {
            emit(&state, &events, FsOp::Attrib, path.clone(), None);
        }
        if m.contains(EventMask::DELETE) {
            let op = if is_dir { FsOp::Rmdir } else { FsOp::Unlink };
            emit(&state, &events, op, path, None);
        }
    }
}

/// Watches a directory that just appeared, and reports what was created in it before the watch
/// existed (a `mkdir -p a/b && echo x > a/b/f` can beat us).
fn follow_new_dir(state: &Mutex<State>, events: &EventSender, dir: &Path) {
    let added = match lock(state).add_tree(dir) {
        Ok(added) => added,
        Err(e) => {
            tracing::warn!("fsmon: cannot watch new directory: {e}");
            return;
        }
    };
    for d in added {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let op = if is_dir { FsOp::Mkdir } else { FsOp::Create };
            emit(state, events, op, e.path(), None);
        }
    }
}

fn emit(
    state: &Mutex<State>,
    events: &EventSender,
    op: FsOp,
    path: PathBuf,
    path2: Option<PathBuf>,
) {
    let root = {
        let st = lock(state);
        let by_dest = path2.as_deref().and_then(|p| st.attribute(p));
        st.attribute(&path).or(by_dest)
    };
    let Some(root_pid) = root else {
        return;
    };
    let ev = FsEvent {
        root_pid,
        pid: 0,
        tid: 0,
        comm: String::new(),
        exe: None,
        op,
        path,
        path2,
        outcome: Outcome::Allowed,
        backend: BackendKind::Inotify,
    };
    match events.try_send(ev) {
        Ok(()) | Err(TrySendError::Closed(_)) => {}
        Err(TrySendError::Full(_)) => {
            let mut st = lock(state);
            st.lost += 1;
            if st.lost.is_power_of_two() {
                tracing::warn!(
                    "fsmon: monitor is not keeping up, {} filesystem events dropped",
                    st.lost
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fanotify::testutil::scope_of;
    use super::*;
    use tokio::sync::mpsc;

    async fn collect(rx: &mut mpsc::Receiver<FsEvent>) -> Vec<FsEvent> {
        let mut out = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            out.push(ev);
        }
        out
    }

    #[tokio::test]
    async fn scope_writes_carry_the_scope_root_and_sensitive_writes_are_unattributed() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        for d in ["scope/old", "sens", "home", "elsewhere"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("home/.npmrc"), "x").unwrap();
        let (tx, mut rx) = mpsc::channel(256);
        let mut ino = InotifyBackend::start(tx).unwrap();
        let scope = scope_of(
            vec![base.join("scope")],
            vec![base.join("sens"), base.join("home/.npmrc")],
        );
        ino.watch(4242, &scope).unwrap();
        assert_eq!(ino.watch_count(), 4, "scope, scope/old, sens, home");

        std::fs::write(base.join("scope/a"), "a").unwrap();
        std::fs::write(base.join("scope/old/b"), "b").unwrap();
        std::fs::create_dir_all(base.join("scope/new/deeper")).unwrap();
        std::fs::write(base.join("scope/new/deeper/c"), "c").unwrap();
        std::fs::rename(base.join("scope/a"), base.join("scope/a2")).unwrap();
        std::fs::write(base.join("sens/key"), "k").unwrap();
        std::fs::write(base.join("home/.npmrc"), "token").unwrap();
        std::fs::write(base.join("home/ordinary"), "o").unwrap();
        std::fs::write(base.join("elsewhere/x"), "x").unwrap();
        // Give the reader a moment to follow scope/new before writing beneath it again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(base.join("scope/new/deeper/d"), "d").unwrap();

        let evs = collect(&mut rx).await;
        for e in &evs {
            eprintln!("{} {} {} {:?}", e.root_pid, e.op, e.path.display(), e.path2);
        }
        let has = |root: u32, op: FsOp, p: &str| {
            evs.iter()
                .any(|e| e.root_pid == root && e.op == op && e.path == base.join(p))
        };
        assert!(has(4242, FsOp::Create, "scope/a"));
        assert!(has(4242, FsOp::OpenWrite, "scope/a"));
        assert!(has(4242, FsOp::OpenWrite, "scope/old/b"));
        assert!(has(4242, FsOp::Mkdir, "scope/new"));
        assert!(
            has(4242, FsOp::Create, "scope/new/deeper/c")
                || has(4242, FsOp::OpenWrite, "scope/new/deeper/c")
        );
        assert!(has(4242, FsOp::OpenWrite, "scope/new/deeper/d"));
        assert!(evs.iter().any(|e| e.op == FsOp::Rename
            && e.path == base.join("scope/a")
            && e.path2.as_deref() == Some(base.join("scope/a2").as_path())));
        assert!(has(0, FsOp::OpenWrite, "sens/key"));
        assert!(has(0, FsOp::OpenWrite, "home/.npmrc"));
        assert!(evs
            .iter()
            .all(|e| e.pid == 0 && e.backend == BackendKind::Inotify));
        assert!(!evs
            .iter()
            .any(|e| e.path.starts_with(base.join("elsewhere"))
                || e.path == base.join("home/ordinary")));

        ino.unwatch(4242);
        assert_eq!(ino.watch_count(), 0);
    }

    #[tokio::test]
    async fn the_watch_limit_is_reported_not_exceeded() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        for d in ["a", "b", "c", "d"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        let (tx, _rx) = mpsc::channel(16);
        let mut ino = InotifyBackend::with_limit(tx, 3).unwrap();
        let scope = scope_of(vec![base.clone()], vec![]);
        ino.watch(1, &scope).unwrap();
        assert_eq!(ino.watch_count(), 3);
        assert!(ino.limit_hit());
    }
}
