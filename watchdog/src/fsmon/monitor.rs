//! The FsMonitor actor: receives attributed events from the active backend, judges them against the
//! tree's scope, raises SCOPE-L4 alerts and, in strict mode, has the offending server killed.
//!
//! A backend follows a server's tree from fork, so its first events can arrive before the Upstream
//! actor has registered the root pid (spawn returns after exec): such events wait a moment for
//! their tree instead of being lost.

use super::early::EarlyEvents;
use super::event::{FsEvent, FsOp, Outcome};
use super::judge::{judge, prevented, Breach, Judgement};
use super::{Backend, WatchScope};
use crate::alert::{ActionTaken, Alert, FsRecord, RaiseAlert, Severity};
use crate::sandbox::sensitive::real_path;
use crate::sandbox::SCOPE_L4;
use actix::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// A tree's events may still be queued when its root is reaped.
const UNWATCH_DELAY: Duration = Duration::from_secs(2);

/// Asks a server's owner (its Upstream actor) to kill its tree and not restart it.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Quarantine {
    pub reason: String,
}

/// Start judging the tree rooted at `root_pid`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchTree {
    pub root_pid: u32,
    pub server: Arc<str>,
    pub scope: WatchScope,
    pub owner: Recipient<Quarantine>,
}

/// The tree's root was reaped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnwatchTree {
    pub root_pid: u32,
}

struct Watched {
    server: Arc<str>,
    scope: WatchScope,
    strict: bool,
    owner: Recipient<Quarantine>,
    quarantined: bool,
}

pub struct FsMonitor {
    backend: Option<Box<dyn Backend>>,
    events: Option<mpsc::Receiver<FsEvent>>,
    alerts: Recipient<RaiseAlert>,
    trees: HashMap<u32, Watched>,
    early: EarlyEvents,
    /// The watchdog's own state and config: it writes there itself (audit log, pins), so an
    /// unattributed change there says nothing about a server.
    own: Vec<PathBuf>,
    /// The always-sensitive set, for events no backend could attribute (known before any tree).
    sensitive: WatchScope,
}

impl FsMonitor {
    /// `backend` delivers into the sender paired with `events`; `None` runs without a backend
    /// (nothing arrives, registration is still accepted). `sensitive` is the always-sensitive set
    /// unattributed events are judged against.
    pub fn new(
        backend: Option<Box<dyn Backend>>,
        events: mpsc::Receiver<FsEvent>,
        alerts: Recipient<RaiseAlert>,
        sensitive: &[PathBuf],
    ) -> FsMonitor {
        FsMonitor {
            backend,
            events: Some(events),
            alerts,
            trees: HashMap::new(),
            early: EarlyEvents::default(),
            own: [dirs::state_dir(), dirs::config_dir()]
                .into_iter()
                .flatten()
                .map(|d| real_path(&d.join("mcp-watchdog")))
                .collect(),
            sensitive: WatchScope {
                sensitive: sensitive.to_vec(),
                ..WatchScope::default()
            },
        }
    }

    fn consider(&mut self, event: FsEvent) {
        if event.root_pid == 0 {
            self.unattributed(event);
            return;
        }
        if !self.trees.contains_key(&event.root_pid) {
            self.early.hold(event, Instant::now());
            return;
        }
        let tree = &self.trees[&event.root_pid];
        let judgement = judge(&event, &tree.scope);
        let Some(breach) = judgement.breach.clone() else {
            return;
        };
        let quarantine = tree.strict && !prevented(event.outcome) && !tree.quarantined;
        let server = tree.server.clone();
        let alert = scope_alert(&event, &judgement, &breach, quarantine).server(&*server);
        self.raise(alert);
        if quarantine {
            let tree = self.trees.get_mut(&event.root_pid).expect("present");
            tree.quarantined = true;
            tree.owner.do_send(Quarantine {
                reason: format!(
                    "strict mode: {} {} by pid {} ({})",
                    event.op,
                    judgement.path.display(),
                    event.pid,
                    event.comm
                ),
            });
        }
    }

    /// An event whose writer the backend cannot name (inotify): only a sensitive location is worth
    /// an alert, and it names no server.
    fn unattributed(&mut self, event: FsEvent) {
        if self.own.iter().any(|own| event.path.starts_with(own)) {
            return;
        }
        let judgement = judge(&event, &self.sensitive);
        if let Some(breach @ Breach::Sensitive { .. }) = &judgement.breach {
            let alert = scope_alert(&event, &judgement, breach, false);
            self.raise(alert);
        }
    }

    fn raise(&self, alert: Alert) {
        self.alerts.do_send(RaiseAlert(alert));
    }

    fn expire_early(&mut self) {
        self.early.expire(Instant::now());
    }
}

/// The SCOPE-L4 alert for one breach.
fn scope_alert(event: &FsEvent, j: &Judgement, breach: &Breach, quarantine: bool) -> Alert {
    let (class, severity, where_) = match breach {
        Breach::Sensitive { location } => (
            // Permission events cannot tell a read from a write: an open is only an open.
            if event.op == FsOp::Open {
                "sensitive open"
            } else {
                "sensitive write"
            },
            Severity::Critical,
            format!("sensitive location {}", location.display()),
        ),
        Breach::OutOfScope if prevented(event.outcome) => (
            "write outside scope refused",
            Severity::Medium,
            "outside the server's write scope".to_owned(),
        ),
        Breach::OutOfScope => (
            "write outside scope",
            Severity::High,
            "outside the server's write scope".to_owned(),
        ),
    };
    let (action, outcome) = if quarantine || event.outcome == Outcome::Killed {
        (ActionTaken::Killed, Outcome::Killed)
    } else if prevented(event.outcome) {
        (ActionTaken::Blocked, event.outcome)
    } else {
        (ActionTaken::Alerted, event.outcome)
    };
    let who = if event.pid == 0 {
        "an unknown process".to_owned()
    } else {
        format!("pid {} `{}`", event.pid, event.comm)
    };
    let mut what = format!("{who} {} {}", event.op, j.path.display());
    if let Some(p2) = &j.path2 {
        what.push_str(&format!(" -> {}", p2.display()));
    }
    let detail = format!("{what}: {where_}; {outcome} (seen by {})", event.backend);
    Alert::new(SCOPE_L4, class, severity, action, detail).fs(FsRecord {
        pid: event.pid,
        comm: event.comm.clone(),
        exe: event.exe.as_ref().map(|p| p.display().to_string()),
        operation: event.op.to_string(),
        path: j.path.display().to_string(),
        path2: j.path2.as_ref().map(|p| p.display().to_string()),
        outcome: outcome.to_string(),
        backend: event.backend.to_string(),
    })
}

impl Actor for FsMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(rx) = self.events.take() {
            ctx.add_stream(ReceiverStream::new(rx));
        }
        ctx.run_interval(Duration::from_secs(1), |act, _| act.expire_early());
    }
}

impl StreamHandler<FsEvent> for FsMonitor {
    fn handle(&mut self, event: FsEvent, _ctx: &mut Context<Self>) {
        self.consider(event);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<WatchTree> for FsMonitor {
    type Result = ();

    fn handle(&mut self, w: WatchTree, _ctx: &mut Context<Self>) {
        if let Some(backend) = self.backend.as_mut() {
            if let Err(e) = backend.watch(w.root_pid, &w.scope) {
                tracing::warn!(
                    "server `{}`: {} backend cannot watch pid {}: {e}",
                    w.server,
                    backend.kind(),
                    w.root_pid
                );
            }
        }
        self.trees.insert(
            w.root_pid,
            Watched {
                server: w.server,
                strict: w.scope.strict,
                scope: w.scope,
                owner: w.owner,
                quarantined: false,
            },
        );
        for event in self.early.take(w.root_pid) {
            self.consider(event);
        }
    }
}

impl Handler<UnwatchTree> for FsMonitor {
    type Result = ();

    fn handle(&mut self, u: UnwatchTree, ctx: &mut Context<Self>) {
        ctx.run_later(UNWATCH_DELAY, move |act, _| {
            if let Some(backend) = act.backend.as_mut() {
                backend.unwatch(u.root_pid);
            }
            act.trees.remove(&u.root_pid);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsmon::event::BackendKind;
    use std::path::PathBuf;
    use std::sync::Mutex;

    /// Collects whatever it is sent.
    struct Collect<T: Send + 'static>(Arc<Mutex<Vec<T>>>);

    impl<T: Send + 'static> Actor for Collect<T> {
        type Context = Context<Self>;
    }

    impl Handler<RaiseAlert> for Collect<Alert> {
        type Result = ();
        fn handle(&mut self, m: RaiseAlert, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(m.0);
        }
    }

    impl Handler<Quarantine> for Collect<String> {
        type Result = ();
        fn handle(&mut self, m: Quarantine, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(m.reason);
        }
    }

    /// Records what the monitor asks of its backend.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Backend for Recorder {
        fn kind(&self) -> BackendKind {
            BackendKind::Fanotify
        }
        fn add_spawner(&mut self, spawner: u32) -> std::io::Result<()> {
            self.0.lock().unwrap().push(format!("spawner {spawner}"));
            Ok(())
        }
        fn watch(&mut self, root: u32, scope: &WatchScope) -> std::io::Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("watch {root} {:?}", scope.write));
            Ok(())
        }
        fn unwatch(&mut self, root: u32) {
            self.0.lock().unwrap().push(format!("unwatch {root}"));
        }
    }

    fn event(root: u32, op: FsOp, path: &str, outcome: Outcome) -> FsEvent {
        FsEvent {
            root_pid: root,
            pid: root + 1,
            tid: root + 1,
            comm: "sh".into(),
            exe: Some("/usr/bin/dash".into()),
            op,
            path: path.into(),
            path2: None,
            outcome,
            backend: BackendKind::Fanotify,
        }
    }

    /// Answered once everything queued before it in the monitor's mailbox has been handled.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct RoundTrip;

    impl Handler<RoundTrip> for FsMonitor {
        type Result = ();
        fn handle(&mut self, _: RoundTrip, _: &mut Context<Self>) {}
    }

    struct Rig {
        tx: mpsc::Sender<FsEvent>,
        monitor: Addr<FsMonitor>,
        alerts: Arc<Mutex<Vec<Alert>>>,
        kills: Arc<Mutex<Vec<String>>>,
        backend: Arc<Mutex<Vec<String>>>,
    }

    fn rig() -> Rig {
        let (tx, rx) = mpsc::channel(64);
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let backend = Arc::new(Mutex::new(Vec::new()));
        let sink = Collect::<Alert>(alerts.clone()).start();
        let monitor = FsMonitor::new(
            Some(Box::new(Recorder(backend.clone()))),
            rx,
            sink.recipient(),
            &[PathBuf::from("/home/u/.ssh")],
        )
        .start();
        Rig {
            tx,
            monitor,
            alerts,
            kills: Arc::new(Mutex::new(Vec::new())),
            backend,
        }
    }

    impl Rig {
        async fn watch(&self, root: u32, strict: bool) {
            let owner = Collect::<String>(self.kills.clone()).start();
            self.monitor
                .send(WatchTree {
                    root_pid: root,
                    server: "files".into(),
                    scope: WatchScope {
                        write: vec![PathBuf::from("/srv/project")],
                        sensitive: vec![PathBuf::from("/home/u/.ssh")],
                        strict,
                    },
                    owner: owner.recipient(),
                })
                .await
                .unwrap();
        }

        async fn settle(&self) {
            // Round trips through the monitor's mailbox, so the stream and the collectors catch up.
            for _ in 0..3 {
                self.monitor.send(RoundTrip).await.unwrap();
                tokio::task::yield_now().await;
            }
        }
    }

    #[actix_rt::test]
    async fn in_scope_writes_raise_nothing_and_breaches_carry_who_what_where() {
        let rig = rig();
        rig.watch(100, false).await;
        for e in [
            event(100, FsOp::OpenWrite, "/srv/project/a.txt", Outcome::Allowed),
            event(100, FsOp::OpenWrite, "/etc/cron.d/x", Outcome::Failed(13)),
            event(
                100,
                FsOp::Chmod,
                "/home/u/.ssh/authorized_keys",
                Outcome::Allowed,
            ),
        ] {
            rig.tx.send(e).await.unwrap();
        }
        rig.settle().await;
        let alerts = rig.alerts.lock().unwrap().clone();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(alerts[0].class, "write outside scope refused");
        assert_eq!(alerts[0].action, ActionTaken::Blocked);
        let fs = alerts[0].fs.as_ref().unwrap();
        assert_eq!(fs.path, "/etc/cron.d/x");
        assert_eq!(fs.pid, 101);
        assert_eq!(fs.outcome, "failed (Permission denied)");
        assert_eq!(alerts[1].class, "sensitive write");
        assert_eq!(alerts[1].severity, Severity::Critical);
        assert_eq!(alerts[1].server.as_deref(), Some("files"));
        let fs = alerts[1].fs.as_ref().unwrap();
        assert_eq!(
            (
                fs.operation.as_str(),
                fs.exe.as_deref(),
                fs.backend.as_str()
            ),
            ("chmod", Some("/usr/bin/dash"), "fanotify")
        );
        assert!(rig.kills.lock().unwrap().is_empty(), "not strict: no kill");
        assert_eq!(
            rig.backend.lock().unwrap()[0],
            "watch 100 [\"/srv/project\"]"
        );
    }

    #[actix_rt::test]
    async fn events_that_beat_their_registration_are_judged_once_it_arrives() {
        let rig = rig();
        rig.tx
            .send(event(200, FsOp::Unlink, "/var/tmp/x", Outcome::Allowed))
            .await
            .unwrap();
        rig.settle().await;
        assert!(rig.alerts.lock().unwrap().is_empty());
        rig.watch(200, false).await;
        rig.settle().await;
        let alerts = rig.alerts.lock().unwrap().clone();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].class, "write outside scope");
    }

    #[actix_rt::test]
    async fn strict_mode_quarantines_once_and_never_for_what_was_refused() {
        let rig = rig();
        rig.watch(300, true).await;
        rig.tx
            .send(event(300, FsOp::OpenWrite, "/etc/x", Outcome::Failed(13)))
            .await
            .unwrap();
        rig.settle().await;
        assert!(rig.kills.lock().unwrap().is_empty(), "Landlock refused it");
        for _ in 0..2 {
            rig.tx
                .send(event(300, FsOp::Rename, "/home/u/.ssh/x", Outcome::Allowed))
                .await
                .unwrap();
        }
        rig.settle().await;
        let kills = rig.kills.lock().unwrap().clone();
        assert_eq!(kills.len(), 1, "{kills:?}");
        assert!(kills[0].contains("/home/u/.ssh/x"), "{kills:?}");
        let alerts = rig.alerts.lock().unwrap().clone();
        assert_eq!(alerts[1].action, ActionTaken::Killed);
        assert_eq!(alerts[1].fs.as_ref().unwrap().outcome, "killed");
    }

    #[actix_rt::test]
    async fn unattributed_events_alert_only_for_sensitive_locations() {
        let rig = rig();
        rig.watch(400, false).await;
        rig.tx
            .send(event(0, FsOp::OpenWrite, "/var/tmp/y", Outcome::Allowed))
            .await
            .unwrap();
        rig.tx
            .send(event(
                0,
                FsOp::Create,
                "/home/u/.ssh/new_key",
                Outcome::Allowed,
            ))
            .await
            .unwrap();
        rig.settle().await;
        let alerts = rig.alerts.lock().unwrap().clone();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].server, None);
        assert_eq!(alerts[0].class, "sensitive write");
        assert_eq!(alerts[0].fs.as_ref().unwrap().path, "/home/u/.ssh/new_key");
    }
}
