//! The daemon's side: one filesystem backend for every proxy on the machine. Each connection is a
//! proxy; its children are followed from the moment it says hello, its trees are watched once it
//! proves they are its own, their events go back to it alone, and strict trees are killed here.

use super::peer::check_descendant;
use super::protocol::{encode, Reply, Request, PROTOCOL_VERSION};
use crate::fsmon::early::EarlyEvents;
use crate::fsmon::event::{FsEvent, Outcome};
use crate::fsmon::judge::{judge, prevented};
use crate::fsmon::{Backend, WatchScope};
use crate::supervisor::process_tree::ProcessTree;
use crate::supervisor::terminate::kill_tree;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Longest request line; a scope is a few paths.
const MAX_LINE: u64 = 256 * 1024;
/// Replies queued for one proxy; a proxy that does not read loses events, not the daemon.
const REPLY_QUEUE: usize = 4096;

struct Conn {
    pid: u32,
    uid: u32,
    replies: mpsc::Sender<Reply>,
    dropped: u64,
}

struct Root {
    conn: u64,
    scope: WatchScope,
    strict: bool,
    killed: bool,
}

/// Everything the daemon knows, behind one lock (every operation on it is short).
pub struct Daemon {
    backend: Box<dyn Backend>,
    conns: HashMap<u64, Conn>,
    roots: HashMap<u32, Root>,
    early: EarlyEvents,
    next_conn: u64,
}

type Shared = Arc<Mutex<Daemon>>;

impl Daemon {
    pub fn new(backend: Box<dyn Backend>) -> Daemon {
        Daemon {
            backend,
            conns: HashMap::new(),
            roots: HashMap::new(),
            early: EarlyEvents::default(),
            next_conn: 0,
        }
    }

    /// Hands `event` to the proxy that owns its tree (killing a strict tree that breached its
    /// scope first), or holds it until the tree is registered.
    fn route(&mut self, mut event: FsEvent) {
        let Some(root) = self.roots.get_mut(&event.root_pid) else {
            self.early.hold(event, Instant::now());
            return;
        };
        if root.strict
            && !root.killed
            && !prevented(event.outcome)
            && judge(&event, &root.scope).breach.is_some()
        {
            root.killed = true;
            let tree = ProcessTree::new(event.root_pid);
            tokio::spawn(async move { kill_tree(&tree).await });
            event.outcome = Outcome::Killed;
        }
        let conn_id = root.conn;
        if let Some(conn) = self.conns.get_mut(&conn_id) {
            if conn.replies.try_send(Reply::Event { event }).is_err() {
                conn.dropped += 1;
            }
        }
    }

    fn request(&mut self, conn_id: u64, request: Request) -> Option<Reply> {
        let conn = self.conns.get(&conn_id)?;
        let (pid, uid) = (conn.pid, conn.uid);
        match request {
            Request::Hello { .. } => Some(Reply::Refused {
                root_pid: None,
                reason: "hello was already said".into(),
            }),
            Request::Watch {
                root_pid,
                write,
                sensitive,
                strict,
            } => {
                if let Err(reason) = check_descendant(root_pid, pid, uid) {
                    return Some(Reply::Refused {
                        root_pid: Some(root_pid),
                        reason,
                    });
                }
                let scope = WatchScope {
                    write,
                    sensitive,
                    strict,
                };
                if let Err(e) = self.backend.watch(root_pid, &scope) {
                    return Some(Reply::Refused {
                        root_pid: Some(root_pid),
                        reason: format!("the {} backend cannot watch it: {e}", self.backend.kind()),
                    });
                }
                self.roots.insert(
                    root_pid,
                    Root {
                        conn: conn_id,
                        scope,
                        strict,
                        killed: false,
                    },
                );
                if let Some(conn) = self.conns.get(&conn_id) {
                    let _ = conn.replies.try_send(Reply::Watching { root_pid });
                }
                for event in self.early.take(root_pid) {
                    self.route(event);
                }
                None
            }
            Request::Prepare { write, sensitive } => {
                let scope = WatchScope {
                    write,
                    sensitive,
                    strict: false,
                };
                if let Err(e) = self.backend.prepare(&scope) {
                    tracing::warn!("proxy pid {pid}: cannot prepare its paths: {e}");
                }
                None
            }
            Request::StrictFromFork { sensitive } => {
                let error = self.backend.strict_from_fork(pid, &sensitive).err();
                if let Some(e) = &error {
                    tracing::warn!("proxy pid {pid}: no strict mode from the fork: {e}");
                }
                Some(Reply::StrictFromFork { error })
            }
            Request::Unwatch { root_pid } => {
                if self.roots.get(&root_pid).is_some_and(|r| r.conn == conn_id) {
                    self.roots.remove(&root_pid);
                    self.backend.unwatch(root_pid);
                }
                None
            }
        }
    }

    fn hello(&mut self, pid: u32, uid: u32, replies: mpsc::Sender<Reply>) -> Result<u64, String> {
        self.backend
            .add_spawner(pid)
            .map_err(|e| format!("cannot follow pid {pid}'s children: {e}"))?;
        let id = self.next_conn;
        self.next_conn += 1;
        let _ = replies.try_send(Reply::Welcome {
            backend: self.backend.describe(),
        });
        self.conns.insert(
            id,
            Conn {
                pid,
                uid,
                replies,
                dropped: 0,
            },
        );
        Ok(id)
    }

    fn goodbye(&mut self, conn_id: u64) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        let roots: Vec<u32> = self
            .roots
            .iter()
            .filter(|(_, r)| r.conn == conn_id)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in roots {
            self.roots.remove(&pid);
            self.backend.unwatch(pid);
        }
        self.backend.remove_spawner(conn.pid);
        if conn.dropped > 0 {
            tracing::warn!(
                "proxy pid {} did not read {} events in time",
                conn.pid,
                conn.dropped
            );
        }
    }
}

/// Serves proxies on `listener` until the process ends; `events` is the backend's output.
pub async fn serve(listener: UnixListener, daemon: Daemon, mut events: mpsc::Receiver<FsEvent>) {
    let shared: Shared = Arc::new(Mutex::new(daemon));
    let router = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => router.lock().expect("daemon state").route(event),
                    None => return,
                },
                _ = tick.tick() => {
                    router.lock().expect("daemon state").early.expire(Instant::now());
                }
            }
        }
    });
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, shared.clone()));
            }
            Err(e) => {
                tracing::warn!("daemon socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(stream: UnixStream, shared: Shared) {
    let (pid, uid) = match stream.peer_cred() {
        Ok(c) => match c.pid() {
            Some(pid) if pid > 0 => (pid as u32, c.uid()),
            _ => return,
        },
        Err(_) => return,
    };
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Reply>(REPLY_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if write.write_all(&encode(&reply)).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read);
    let mut conn_id = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) if line.last() != Some(&b'\n') => {
                let _ = tx
                    .send(Reply::Refused {
                        root_pid: None,
                        reason: "request line too long".into(),
                    })
                    .await;
                break;
            }
            Ok(_) => {}
        }
        let request: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx
                    .send(Reply::Refused {
                        root_pid: None,
                        reason: format!("not a request: {e}"),
                    })
                    .await;
                continue;
            }
        };
        let reply = match (conn_id, request) {
            (None, Request::Hello { version }) if version == PROTOCOL_VERSION => {
                match shared
                    .lock()
                    .expect("daemon state")
                    .hello(pid, uid, tx.clone())
                {
                    Ok(id) => {
                        conn_id = Some(id);
                        None
                    }
                    Err(reason) => Some(Reply::Refused {
                        root_pid: None,
                        reason,
                    }),
                }
            }
            (None, Request::Hello { version }) => Some(Reply::Refused {
                root_pid: None,
                reason: format!(
                    "protocol version {version}; this daemon speaks {PROTOCOL_VERSION}"
                ),
            }),
            (None, _) => Some(Reply::Refused {
                root_pid: None,
                reason: "say hello first".into(),
            }),
            (Some(id), request) => shared.lock().expect("daemon state").request(id, request),
        };
        if let Some(reply) = reply {
            if tx.send(reply).await.is_err() {
                break;
            }
        }
    }
    if let Some(id) = conn_id {
        shared.lock().expect("daemon state").goodbye(id);
    }
    drop(tx);
    let _ = writer.await;
}

/// Binds the socket: stale sockets are replaced, the mode lets any user connect (identity comes
/// from the kernel), the parent directory is created.
pub fn bind(path: &std::path::Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a daemon already listens on {}", path.display()),
            ))
        }
        Err(_) => {
            let _ = std::fs::remove_file(path);
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::client::DaemonBackend;
    use crate::fsmon::event::{BackendKind, FsOp};
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::path::PathBuf;
    use std::process::Command;

    /// Records what the daemon asks of its backend.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Backend for Recorder {
        fn kind(&self) -> crate::fsmon::event::BackendKind {
            BackendKind::Ebpf
        }
        fn add_spawner(&mut self, pid: u32) -> io::Result<()> {
            self.0.lock().unwrap().push(format!("spawner {pid}"));
            Ok(())
        }
        fn watch(&mut self, root: u32, scope: &WatchScope) -> io::Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("watch {root} strict={}", scope.strict));
            Ok(())
        }
        fn unwatch(&mut self, root: u32) {
            self.0.lock().unwrap().push(format!("unwatch {root}"));
        }
        fn remove_spawner(&mut self, pid: u32) {
            self.0.lock().unwrap().push(format!("gone {pid}"));
        }
        /// Arms only a non-empty sensitive set, so that a refusal can be seen too.
        fn strict_from_fork(&mut self, pid: u32, sensitive: &[PathBuf]) -> Result<(), String> {
            if sensitive.is_empty() {
                return Err("nothing to protect".into());
            }
            self.0
                .lock()
                .unwrap()
                .push(format!("strict from fork {pid}"));
            Ok(())
        }
    }

    struct Rig {
        socket: PathBuf,
        _dir: tempfile::TempDir,
        calls: Arc<Mutex<Vec<String>>>,
        inject: mpsc::Sender<FsEvent>,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (inject, events) = mpsc::channel(64);
        let listener = bind(&socket).unwrap();
        let daemon = Daemon::new(Box::new(Recorder(calls.clone())));
        tokio::spawn(serve(listener, daemon, events));
        Rig {
            socket,
            _dir: dir,
            calls,
            inject,
        }
    }

    fn event(root: u32, path: &str) -> FsEvent {
        FsEvent {
            root_pid: root,
            pid: root,
            tid: root,
            comm: "sleep".into(),
            exe: None,
            op: FsOp::OpenWrite,
            path: path.into(),
            path2: None,
            outcome: Outcome::Allowed,
            backend: BackendKind::Ebpf,
        }
    }

    async fn connect(rig: &Rig) -> (DaemonBackend, mpsc::Receiver<FsEvent>) {
        let (tx, rx) = mpsc::channel(64);
        let socket = rig.socket.clone();
        let client = tokio::task::spawn_blocking(move || DaemonBackend::connect(&socket, tx))
            .await
            .unwrap()
            .unwrap();
        (client, rx)
    }

    async fn eventually(what: &str, calls: &Arc<Mutex<Vec<String>>>) {
        for _ in 0..200 {
            if calls.lock().unwrap().iter().any(|c| c == what) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never saw `{what}` in {:?}", calls.lock().unwrap());
    }

    fn scope(strict: bool) -> WatchScope {
        WatchScope {
            write: vec![PathBuf::from("/srv/scope-of-test")],
            sensitive: Vec::new(),
            strict,
        }
    }

    #[tokio::test]
    async fn a_proxy_gets_its_own_trees_events_and_nobody_elses() {
        let rig = rig();
        let (mut client, mut events) = connect(&rig).await;
        assert!(
            client.describe().contains("(ebpf)"),
            "{}",
            client.describe()
        );
        eventually(&format!("spawner {}", std::process::id()), &rig.calls).await;

        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let root = child.id();
        // An event that beats the registration waits for it.
        rig.inject.send(event(root, "/etc/early")).await.unwrap();
        client.watch(root, &scope(false)).unwrap();
        eventually(&format!("watch {root} strict=false"), &rig.calls).await;
        rig.inject
            .send(event(4_000_000, "/etc/stranger"))
            .await
            .unwrap();
        rig.inject.send(event(root, "/etc/late")).await.unwrap();
        let first = events.recv().await.unwrap();
        let second = events.recv().await.unwrap();
        assert_eq!(
            (first.path.to_str(), second.path.to_str()),
            (Some("/etc/early"), Some("/etc/late"))
        );
        assert!(events.try_recv().is_err(), "a stranger's event leaked");

        client.unwatch(root);
        eventually(&format!("unwatch {root}"), &rig.calls).await;
        drop(client);
        eventually(&format!("gone {}", std::process::id()), &rig.calls).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[tokio::test]
    async fn a_strict_proxy_has_its_trees_strict_from_their_fork_before_it_starts_any() {
        let rig = rig();
        let (mut client, _events) = connect(&rig).await;
        let armed = tokio::task::spawn_blocking(move || {
            let armed = client.strict_everywhere(&[PathBuf::from("/home/u/.ssh")]);
            let refused = client.strict_everywhere(&[]);
            (armed, refused)
        })
        .await
        .unwrap();
        // Confirmed before `strict_everywhere` returns: no server starts unarmed.
        assert_eq!(armed.0, Ok(()));
        assert!(
            rig.calls
                .lock()
                .unwrap()
                .contains(&format!("strict from fork {}", std::process::id())),
            "{:?}",
            rig.calls.lock().unwrap()
        );
        let refused = armed.1.unwrap_err();
        assert!(
            refused.contains("only once registered") && refused.contains("nothing to protect"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn strict_trees_are_killed_by_the_daemon_and_the_proxy_is_told() {
        let rig = rig();
        let (mut client, mut events) = connect(&rig).await;
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let root = child.id();
        client.watch(root, &scope(true)).unwrap();
        eventually(&format!("watch {root} strict=true"), &rig.calls).await;
        rig.inject
            .send(event(root, "/srv/scope-of-test/fine"))
            .await
            .unwrap();
        rig.inject.send(event(root, "/etc/passwd")).await.unwrap();
        let fine = events.recv().await.unwrap();
        assert_eq!(fine.outcome, Outcome::Allowed, "in scope: not killed");
        let breach = events.recv().await.unwrap();
        assert_eq!(breach.outcome, Outcome::Killed);
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[tokio::test]
    async fn the_daemon_refuses_pids_the_caller_does_not_own_and_requests_before_hello() {
        let rig = rig();
        let socket = rig.socket.clone();
        let replies = tokio::task::spawn_blocking(move || {
            let stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let mut ask = |line: &str| {
                w.write_all(line.as_bytes()).unwrap();
                let mut reply = String::new();
                r.read_line(&mut reply).unwrap();
                serde_json::from_str::<Reply>(&reply).unwrap()
            };
            vec![
                ask("{\"op\":\"unwatch\",\"root_pid\":1}\n"),
                ask("{\"op\":\"hello\",\"version\":1}\n"),
                ask("{\"op\":\"watch\",\"root_pid\":1,\"write\":[],\"sensitive\":[],\"strict\":true}\n"),
                ask("not json\n"),
            ]
        })
        .await
        .unwrap();
        assert!(
            matches!(&replies[0], Reply::Refused { reason, .. } if reason == "say hello first"),
            "{replies:?}"
        );
        assert!(matches!(&replies[1], Reply::Welcome { .. }), "{replies:?}");
        match &replies[2] {
            Reply::Refused {
                root_pid: Some(1),
                reason,
            } => assert!(
                reason.contains("uid") || reason.contains("does not descend"),
                "{reason}"
            ),
            other => panic!("pid 1 was accepted: {other:?}"),
        }
        assert!(
            matches!(&replies[3], Reply::Refused { reason, .. } if reason.starts_with("not a request"))
        );
        assert!(
            !rig.calls
                .lock()
                .unwrap()
                .iter()
                .any(|c| c.starts_with("watch 1 ")),
            "{:?}",
            rig.calls.lock().unwrap()
        );
    }
}
