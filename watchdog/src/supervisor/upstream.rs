//! The Upstream actor: one per configured server. It runs the server's process (one "life" at a
//! time), frames its stdout for the session, relays its stderr, tracks its process tree, restarts it
//! after a crash and replays the client's `initialize` so the client's session survives.

use super::process_tree::{ProcessTree, ProcessTrees};
use super::restart::{RestartDecision, RestartPolicy};
use super::spawn::spawn_server;
use super::terminate::{kill_tree, terminate_tree};
use crate::alert::rules::SUPERVISION;
use crate::alert::{ActionTaken, Alert, AlertSink, RaiseAlert, Severity};
use crate::config::{Server, Settings};
use crate::fsmon::monitor::{FsMonitor, Quarantine, UnwatchTree, WatchTree};
use crate::fsmon::WatchScope;
use crate::jsonrpc::{frame_stream, Frame, Id, Kind, Message, Parsed};
use crate::mcp::methods::{INITIALIZE, INITIALIZED};
use crate::proxy::session::{UpstreamEvent, UpstreamEventKind};
use crate::proxy::stdio::{spawn_line_writer, widen_pipe};
use crate::sandbox::scope::{RUNTIME_WRITE_DIRS, RUNTIME_WRITE_FILES};
use crate::sandbox::sensitive::{real_path, SensitiveSet};
use crate::sandbox::{first_unavailable_notice, Confinement, LandlockState, SCOPE_L4};
use actix::prelude::*;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Messages held while a server restarts; beyond this they are refused.
const MAX_QUEUED: usize = 4096;
/// After the process exits, how long its stdout may still deliver before it is declared down
/// (a grandchild can hold the pipe open forever).
const STDOUT_LINGER: Duration = Duration::from_millis(200);
/// How often the process tree is rescanned.
const TREE_REFRESH: Duration = Duration::from_secs(1);
/// Longest stderr line relayed; the rest of a longer line is cut.
const MAX_STDERR_LINE: usize = 16 * 1024;

/// A message for the server.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ToServer(pub Message);

/// Stop for good: close the server's input, give it `grace`, then terminate its tree.
#[derive(Message)]
#[rtype(result = "Option<ExitStatus>")]
pub struct StopServer {
    pub grace: Duration,
}

/// The server stopped for good on its own (exited cleanly, or failed too often).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpstreamFinished {
    pub upstream: usize,
    pub status: Option<ExitStatus>,
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Running,
    /// Restarted; waiting for the answer to the replayed `initialize`.
    Replaying(Id),
    Backoff,
    Failed,
    Stopping,
    Stopped,
}

struct Life {
    generation: u64,
    tree: ProcessTree,
    stdin: Option<mpsc::Sender<Bytes>>,
    exited: Option<Option<ExitStatus>>,
    stdout_done: bool,
    /// Held for the life: owns the server's private temp dir, removed when the life ends.
    _confinement: Confinement,
}

/// One line of the current life's stdout, or its end (`None`).
struct StdoutItem {
    generation: u64,
    item: Option<std::io::Result<Frame>>,
}

pub struct Upstream {
    index: usize,
    name: Arc<str>,
    server: Server,
    max_frame: usize,
    shutdown_grace: Duration,
    session: Recipient<UpstreamEvent>,
    supervisor: Recipient<UpstreamFinished>,
    alerts: Addr<AlertSink>,
    trees: ProcessTrees,
    restart: RestartPolicy,
    generation: u64,
    life: Option<Life>,
    phase: Phase,
    queue: VecDeque<Message>,
    init: Option<Message>,
    initialized: Option<Message>,
    last_status: Option<ExitStatus>,
    stop_waiters: Vec<oneshot::Sender<Option<ExitStatus>>>,
    fs: Option<Addr<FsMonitor>>,
    strict: bool,
    /// Killed by strict mode: never restarted.
    quarantined: bool,
}

impl Upstream {
    pub fn new(
        index: usize,
        settings: &Settings,
        session: Recipient<UpstreamEvent>,
        supervisor: Recipient<UpstreamFinished>,
        alerts: Addr<AlertSink>,
        trees: ProcessTrees,
    ) -> Self {
        let server = settings.servers[index].clone();
        Upstream {
            index,
            name: server.name.as_str().into(),
            server,
            max_frame: settings.max_frame,
            shutdown_grace: settings.shutdown_grace,
            session,
            supervisor,
            alerts,
            trees,
            restart: RestartPolicy::new(settings.restart.clone()),
            generation: 0,
            life: None,
            phase: Phase::Stopped,
            queue: VecDeque::new(),
            init: None,
            initialized: None,
            last_status: None,
            stop_waiters: Vec::new(),
            fs: None,
            strict: settings.strict,
            quarantined: false,
        }
    }

    /// Has every life's process tree watched by the filesystem monitor.
    pub fn with_fs_monitor(mut self, monitor: Option<Addr<FsMonitor>>) -> Self {
        self.fs = monitor;
        self
    }

    /// What the filesystem monitor holds this life's tree to.
    fn watch_scope(&self, confinement: &Confinement) -> WatchScope {
        let runtime = RUNTIME_WRITE_DIRS.iter().chain(RUNTIME_WRITE_FILES);
        WatchScope {
            write: self
                .server
                .sandbox
                .scope
                .write
                .iter()
                .cloned()
                .chain(confinement.tmpdir().map(real_path))
                .chain(runtime.map(PathBuf::from))
                .collect(),
            sensitive: SensitiveSet::from_env().paths().to_vec(),
            strict: self.strict,
        }
    }

    fn alert(&self, alert: Alert) {
        self.alerts.do_send(RaiseAlert(alert.server(&*self.name)));
    }

    fn event(&self, event: UpstreamEventKind) {
        self.session.do_send(UpstreamEvent {
            upstream: self.index,
            event,
        });
    }

    fn start_life(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        let generation = self.generation;
        let confinement = match Confinement::prepare(&self.name, &self.server.sandbox) {
            Ok(c) => c,
            Err(e) => {
                // Never run a server less confined than configured: fail this life like a spawn error.
                self.start_failed(
                    generation,
                    std::io::Error::new(e.kind(), format!("server `{}`: sandbox: {e}", self.name)),
                    ctx,
                );
                return;
            }
        };
        if generation == 1 {
            self.report_sandbox(&confinement);
        }
        let mut child = match spawn_server(&self.server.command, &confinement) {
            Ok(child) => child,
            Err(e) => {
                self.start_failed(generation, e, ctx);
                return;
            }
        };
        let tree = ProcessTree::new(child.id().unwrap_or_default());
        self.trees.register(&self.name, tree.clone());
        if let Some(fs) = &self.fs {
            fs.do_send(WatchTree {
                root_pid: tree.root(),
                server: self.name.clone(),
                scope: self.watch_scope(&confinement),
                owner: ctx.address().recipient(),
            });
        }
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        widen_pipe(stdin.as_raw_fd());
        widen_pipe(stdout.as_raw_fd());
        let (stdin_tx, _writer) = spawn_line_writer(stdin);
        let frames = frame_stream(stdout, self.max_frame)
            .map(move |f| StdoutItem {
                generation,
                item: Some(f),
            })
            .chain(futures_util::stream::once(async move {
                StdoutItem {
                    generation,
                    item: None,
                }
            }));
        ctx.add_stream(frames);
        actix::spawn(relay_stderr(
            self.name.clone(),
            child.stderr.take().expect("stderr is piped"),
        ));
        ctx.spawn(
            async move { child.wait().await.ok() }
                .into_actor(self)
                .map(move |status, act, ctx| act.exited(generation, status, ctx)),
        );
        self.life = Some(Life {
            generation,
            tree,
            stdin: Some(stdin_tx),
            exited: None,
            stdout_done: false,
            _confinement: confinement,
        });
        match (&self.init, generation > 1) {
            (Some(init), true) => {
                // Bring the new process to where the client's session was.
                let id = Id::from_string(&format!("mcp-watchdog:replay:{generation}"));
                let replay = init.with_id(&id);
                self.phase = Phase::Replaying(id);
                self.write(replay.raw, ctx);
            }
            _ => {
                self.phase = Phase::Running;
                self.flush_queue(ctx);
                if generation > 1 {
                    self.event(UpstreamEventKind::Up);
                }
            }
        }
    }

    fn start_failed(&mut self, generation: u64, e: std::io::Error, ctx: &mut Context<Self>) {
        self.alert(Alert::new(
            SUPERVISION,
            "server did not start",
            Severity::High,
            ActionTaken::Failed,
            e.to_string(),
        ));
        self.life = None;
        if generation == 1 {
            // A command that cannot start at all will not start on retry: say so now.
            eprintln!("mcp-watchdog: {e}");
            self.stopped_for_good(true);
        } else {
            self.went_down(Some(None), ctx);
        }
    }

    /// Says once, at the first start, how the server is confined and what was left out.
    fn report_sandbox(&self, confinement: &Confinement) {
        let scope = &self.server.sandbox.scope;
        for note in &scope.notes {
            eprintln!("mcp-watchdog: server `{}`: {note}", self.name);
        }
        for missing in &confinement.missing {
            eprintln!(
                "mcp-watchdog: server `{}`: scope {} does not exist; writes there are refused",
                self.name,
                missing.display()
            );
        }
        match confinement.landlock {
            LandlockState::Enforced { abi } => {
                let roots: Vec<String> = scope
                    .write
                    .iter()
                    .map(|p| p.display().to_string())
                    .chain(confinement.tmpdir().map(|p| p.display().to_string()))
                    .collect();
                tracing::info!(
                    "server `{}`: sandboxed (Landlock ABI {abi}, io_uring and 32-bit system calls refused); writes beneath: {}",
                    self.name,
                    roots.join(", ")
                );
            }
            LandlockState::Unavailable => {
                if first_unavailable_notice() {
                    eprintln!(
                        "mcp-watchdog: WARNING: this kernel has no Landlock; servers run without \
                         filesystem confinement"
                    );
                    self.alert(Alert::new(
                        SCOPE_L4,
                        "sandbox unavailable",
                        Severity::Info,
                        ActionTaken::Alerted,
                        "Landlock is not available on this kernel: servers can write anywhere \
                         their user can",
                    ));
                }
            }
            LandlockState::Disabled => {}
        }
    }

    fn write(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        let Some(tx) = self.life.as_ref().and_then(|l| l.stdin.clone()) else {
            return;
        };
        match tx.try_send(bytes) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(bytes)) => {
                ctx.wait(
                    async move {
                        let _ = tx.send(bytes).await;
                    }
                    .into_actor(self),
                );
            }
        }
    }

    fn flush_queue(&mut self, ctx: &mut Context<Self>) {
        while let Some(msg) = self.queue.pop_front() {
            self.write(msg.raw, ctx);
        }
    }

    fn refuse_queue(&mut self) {
        for msg in std::mem::take(&mut self.queue) {
            self.event(UpstreamEventKind::Undelivered(msg));
        }
    }

    fn replay_answered(&mut self, answer: Message, ctx: &mut Context<Self>) {
        if answer.kind == Kind::Error {
            self.alert(
                Alert::new(
                    SUPERVISION,
                    "replayed initialize refused",
                    Severity::Medium,
                    ActionTaken::Alerted,
                    "the restarted server answered the replayed initialize with an error",
                )
                .evidence(&answer.raw),
            );
        }
        if let Some(initialized) = self.initialized.clone() {
            self.write(initialized.raw, ctx);
        }
        self.phase = Phase::Running;
        self.flush_queue(ctx);
        self.event(UpstreamEventKind::Up);
    }

    fn exited(&mut self, generation: u64, status: Option<ExitStatus>, ctx: &mut Context<Self>) {
        let Some(life) = self.life.as_mut().filter(|l| l.generation == generation) else {
            return;
        };
        life.exited = Some(status);
        if !life.stdout_done {
            ctx.run_later(STDOUT_LINGER, move |act, ctx| {
                if let Some(life) = act.life.as_mut().filter(|l| l.generation == generation) {
                    life.stdout_done = true;
                    act.maybe_down(ctx);
                }
            });
        }
        self.maybe_down(ctx);
    }

    /// A life is over once its process exited and its stdout is drained (or lingered too long).
    fn maybe_down(&mut self, ctx: &mut Context<Self>) {
        let Some(life) = &self.life else { return };
        let Some(status) = life.exited else { return };
        if !life.stdout_done {
            return;
        }
        let tree = life.tree.clone();
        self.life = None;
        if let Some(fs) = &self.fs {
            fs.do_send(UnwatchTree {
                root_pid: tree.root(),
            });
        }
        self.last_status = status;
        // Whatever the server left running goes with it.
        let grace = if self.phase == Phase::Stopping {
            self.shutdown_grace
        } else {
            Duration::from_millis(500)
        };
        let stopping = self.phase == Phase::Stopping;
        ctx.spawn(
            async move { terminate_tree(&tree, grace).await }
                .into_actor(self)
                .map(move |_report, act, _| {
                    if stopping {
                        act.phase = Phase::Stopped;
                        for w in act.stop_waiters.drain(..) {
                            let _ = w.send(status);
                        }
                    }
                }),
        );
        if !stopping {
            self.went_down(Some(status), ctx);
        }
    }

    /// The server is gone without being asked to stop.
    fn went_down(&mut self, status: Option<Option<ExitStatus>>, ctx: &mut Context<Self>) {
        let status = status.flatten();
        self.last_status = status;
        self.trees.unregister(&self.name);
        let clean = status.is_some_and(|s| s.success());
        if self.quarantined {
            self.alert(Alert::new(
                SUPERVISION,
                "server quarantined",
                Severity::High,
                ActionTaken::Failed,
                "strict mode killed the server for a filesystem breach; it is not restarted",
            ));
            self.stopped_for_good(true);
            return;
        }
        if clean {
            self.alert(Alert::new(
                SUPERVISION,
                "server exited",
                Severity::Info,
                ActionTaken::Alerted,
                "server exited with status 0",
            ));
            self.stopped_for_good(false);
            return;
        }
        let how = describe(status);
        match self.restart.on_crash(Instant::now()) {
            RestartDecision::After(delay) => {
                self.alert(Alert::new(
                    SUPERVISION,
                    "server crashed",
                    Severity::Medium,
                    ActionTaken::Restarted,
                    format!("server {how}; restarting in {} ms", delay.as_millis()),
                ));
                self.phase = Phase::Backoff;
                self.event(UpstreamEventKind::Down { restarting: true });
                ctx.run_later(delay, |act, ctx| {
                    if act.phase == Phase::Backoff {
                        act.start_life(ctx);
                    }
                });
            }
            RestartDecision::GiveUp => {
                self.alert(Alert::new(
                    SUPERVISION,
                    "server failed",
                    Severity::High,
                    ActionTaken::Failed,
                    format!("server {how} and keeps crashing; giving up"),
                ));
                self.stopped_for_good(true);
            }
        }
    }

    fn stopped_for_good(&mut self, failed: bool) {
        self.phase = if failed {
            Phase::Failed
        } else {
            Phase::Stopped
        };
        self.event(UpstreamEventKind::Down { restarting: false });
        self.refuse_queue();
        self.supervisor.do_send(UpstreamFinished {
            upstream: self.index,
            status: self.last_status,
            failed,
        });
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) if s.code().is_some() => {
            format!("exited with status {}", s.code().unwrap_or_default())
        }
        Some(s) => format!("was killed by signal {}", s.signal().unwrap_or_default()),
        None => "could not be started or waited for".into(),
    }
}

/// Copies the server's stderr to ours, one line at a time, prefixed with its name. Control
/// characters are shown escaped: a server must not drive the user's terminal.
async fn relay_stderr(name: Arc<str>, stderr: tokio::process::ChildStderr) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut out = tokio::io::stderr();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_STDERR_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let mut shown = format!("[{name}] ");
        for c in text.trim_end_matches(['\n', '\r']).chars() {
            if c.is_control() && c != '\t' {
                shown.push_str(&c.escape_unicode().to_string());
            } else {
                shown.push(c);
            }
        }
        shown.push('\n');
        if out.write_all(shown.as_bytes()).await.is_err() {
            return;
        }
    }
}

impl Handler<Quarantine> for Upstream {
    type Result = ();

    /// Strict mode: kill the whole tree now; `went_down` then gives the server up.
    fn handle(&mut self, q: Quarantine, ctx: &mut Context<Self>) {
        if self.quarantined {
            return;
        }
        self.quarantined = true;
        tracing::warn!("server `{}`: {}", self.name, q.reason);
        if let Some(life) = &self.life {
            let tree = life.tree.clone();
            ctx.spawn(
                async move { kill_tree(&tree).await }
                    .into_actor(self)
                    .map(|_, _, _| ()),
            );
        }
    }
}

impl Actor for Upstream {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_life(ctx);
        ctx.run_interval(TREE_REFRESH, |act, _| {
            if let Some(life) = &act.life {
                // A /proc scan takes milliseconds: never on the thread that relays messages.
                let tree = life.tree.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tree.refresh();
                });
            }
        });
    }
}

impl StreamHandler<StdoutItem> for Upstream {
    fn handle(&mut self, out: StdoutItem, ctx: &mut Context<Self>) {
        if out.generation != self.generation {
            return;
        }
        match out.item {
            None => {
                if let Some(life) = &mut self.life {
                    life.stdout_done = true;
                }
                self.maybe_down(ctx);
            }
            Some(Err(e)) => tracing::warn!("reading from server {} failed: {e}", self.name),
            Some(Ok(frame)) => {
                if let (Phase::Replaying(id), Frame::Line(raw)) = (&self.phase, &frame) {
                    if let Ok(Parsed::Single(m)) = Message::parse_frame(raw.clone()) {
                        if m.kind.is_response() && m.id.as_ref() == Some(id) {
                            self.replay_answered(m, ctx);
                            return;
                        }
                    }
                }
                self.event(UpstreamEventKind::Frame(frame));
            }
        }
    }

    /// Every life's stream ends with an explicit marker; the actor outlives its streams.
    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<ToServer> for Upstream {
    type Result = ();

    fn handle(&mut self, ToServer(msg): ToServer, ctx: &mut Context<Self>) {
        match (msg.kind, msg.method()) {
            (Kind::Request, Some(INITIALIZE)) => self.init = Some(msg.clone()),
            (Kind::Notification, Some(INITIALIZED)) => self.initialized = Some(msg.clone()),
            _ => {}
        }
        match self.phase {
            Phase::Running => self.write(msg.raw, ctx),
            Phase::Replaying(_) | Phase::Backoff if self.queue.len() < MAX_QUEUED => {
                self.queue.push_back(msg)
            }
            _ => self.event(UpstreamEventKind::Undelivered(msg)),
        }
    }
}

impl Handler<StopServer> for Upstream {
    type Result = ResponseFuture<Option<ExitStatus>>;

    fn handle(&mut self, stop: StopServer, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.phase != Phase::Stopping && self.life.is_some() {
            self.refuse_queue();
        }
        match (&mut self.life, &self.phase) {
            (_, Phase::Stopping) => self.stop_waiters.push(tx),
            (Some(life), _) => {
                self.phase = Phase::Stopping;
                self.stop_waiters.push(tx);
                // Closing stdin is how MCP asks a stdio server to exit.
                life.stdin = None;
                let generation = life.generation;
                let tree = life.tree.clone();
                ctx.run_later(stop.grace, move |act, ctx| {
                    if act
                        .life
                        .as_ref()
                        .is_some_and(|l| l.generation == generation)
                    {
                        ctx.spawn(
                            async move { terminate_tree(&tree, stop.grace).await }
                                .into_actor(act)
                                .map(|_, _, _| ()),
                        );
                    }
                });
            }
            (None, _) => {
                self.phase = if self.phase == Phase::Failed {
                    Phase::Failed
                } else {
                    Phase::Stopped
                };
                self.refuse_queue();
                let _ = tx.send(self.last_status);
            }
        }
        Box::pin(async move { rx.await.ok().flatten() })
    }
}
