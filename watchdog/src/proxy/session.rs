//! The Session actor: the client-facing side of the proxy.
//!
//! It reads the client's frames, routes requests to upstreams (remapping ids only where they would
//! collide), fans gateway requests out and merges the answers, relays server→client requests and
//! notifications, and runs the inline inspectors on every message before it moves on.

use super::merge::{self, Merged, Part, PartAnswer};
use super::pending::{Origin, Pending, PendingRequests, ServerRequests};
use super::routing::{self, Directory, FanOut, NameField, Route};
use super::side_thread::SideThread;
use crate::alert::rules::{FRAMING, SESSION, SUPERVISION};
use crate::alert::{ActionTaken, Alert, AlertSink, Direction, RaiseAlert, Severity};
use crate::analyze::semantic::{Held, HoldResult, Semantic};
use crate::analyze::{Analyzers, Glance, Observation};
use crate::inspect::shadow::{DUPLICATE_NAME, SHADOW};
use crate::inspect::{Outcome, Pipeline, Prescan, SubjectMeta};
use crate::jsonrpc::error::{code, error_response};
use crate::jsonrpc::head::read_head;
use crate::jsonrpc::{Frame, Id, Kind, Message, MessageError, Parsed};
use crate::mcp::methods::{shared_name, CANCELLED, TOOLS_CALL};
use crate::mcp::ListMethod;
use crate::supervisor::upstream::{ToServer, Upstream};
use actix::prelude::*;
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The generic text a client gets for a request or response the policy stopped.
const BLOCKED_MESSAGE: &str = "Blocked by mcp-watchdog policy";

/// Something happened on an upstream's side.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpstreamEvent {
    pub upstream: usize,
    pub event: UpstreamEventKind,
}

pub enum UpstreamEventKind {
    Frame(Frame),
    /// The server is (again) ready for traffic.
    Up,
    /// The server exited; `restarting` says whether it will come back.
    Down {
        restarting: bool,
    },
    /// A message the upstream could not deliver (server failed or its queue was full).
    Undelivered(Message),
}

/// The client closed its input.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientClosed;

/// Resolves once no client request is outstanding, or after `timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain {
    pub timeout: Duration,
}

/// Stops writing to the client once everything queued is written.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseClient;

pub struct UpstreamLink {
    pub name: Arc<str>,
    pub prefix: String,
    pub addr: Addr<Upstream>,
}

enum GroupKind {
    Initialize { requested_version: Option<String> },
    List(&'static ListMethod),
    Broadcast,
}

/// A request fanned out to several upstreams, waiting for their parts.
struct Group {
    client_id: Id,
    kind: GroupKind,
    waiting: usize,
    parts: Vec<Part>,
}

/// What the inspectors make of a message on its way.
enum Verdict {
    /// Forward it with the bytes it came with.
    Unchanged,
    /// Forward this rewritten copy.
    Rewritten(Message),
    /// Do not forward it.
    Stopped(Stop),
}

enum Stop {
    /// The requester gets an error (with `message`, or a generic one), or `answer` as a result.
    Blocked {
        message: Option<String>,
        answer: Option<Value>,
    },
    /// The requester gets this `result` in the recipient's name.
    Answered(Bytes),
}

pub struct Session {
    upstreams: Vec<UpstreamLink>,
    prefixes: Vec<String>,
    client_out: Option<mpsc::Sender<Bytes>>,
    client_writer: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pipeline: Arc<Pipeline>,
    alerts: Addr<AlertSink>,
    analyzers: Analyzers,
    /// `[semantic] hold`: tool results wait for the classifier's verdict.
    hold: Option<Addr<Semantic>>,
    supervisor: Recipient<ClientClosed>,
    pending: PendingRequests,
    server_requests: ServerRequests,
    groups: HashMap<u64, Group>,
    directory: Directory,
    next_internal: u64,
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// The observed literals the pipeline found in the last message it passed unchanged, with
    /// where those bytes are: handed to the analyzers if that message is the one observed next.
    last_scan: Option<LastScan>,
    no_literals: Arc<[u32]>,
    /// Shares the parsing and scanning of large frames; None if it could not be started.
    side: Option<SideThread>,
    /// The shared literal scan of the frame just parsed, done alongside its parsing.
    prescan: Option<Prescan>,
}

/// Frames from this size on are parsed and scanned on two threads at once. Waking the side thread
/// took ~20 µs on the development VM; parsing, scanning and checking 32 KiB take more than twice
/// that.
const SPLIT_FRAME_MIN: usize = 32 * 1024;

struct LastScan {
    /// Held, so that no other message can be taken for it.
    message: Bytes,
    literals: Arc<[u32]>,
}

impl LastScan {
    fn of(&self, raw: &[u8]) -> bool {
        std::ptr::eq(self.message.as_ptr(), raw.as_ptr()) && self.message.len() == raw.len()
    }
}

pub struct SessionParts {
    pub upstreams: Vec<UpstreamLink>,
    pub client_out: mpsc::Sender<Bytes>,
    pub client_writer: tokio::task::JoinHandle<std::io::Result<()>>,
    pub pipeline: Arc<Pipeline>,
    pub alerts: Addr<AlertSink>,
    pub analyzers: Analyzers,
    pub hold: Option<Addr<Semantic>>,
    pub supervisor: Recipient<ClientClosed>,
}

impl Session {
    pub fn new(p: SessionParts) -> Self {
        let n = p.upstreams.len();
        Session {
            prefixes: p.upstreams.iter().map(|u| u.prefix.clone()).collect(),
            upstreams: p.upstreams,
            client_out: Some(p.client_out),
            client_writer: Some(p.client_writer),
            pipeline: p.pipeline,
            alerts: p.alerts,
            analyzers: p.analyzers,
            hold: p.hold,
            supervisor: p.supervisor,
            pending: PendingRequests::new(n),
            server_requests: ServerRequests::default(),
            groups: HashMap::new(),
            directory: Directory::default(),
            next_internal: 0,
            drain_waiters: Vec::new(),
            last_scan: None,
            no_literals: Arc::from([]),
            side: SideThread::spawn()
                .inspect_err(|e| tracing::warn!("no side thread for large messages: {e}"))
                .ok(),
            prescan: None,
        }
    }

    fn is_wrap(&self) -> bool {
        self.prefixes.len() == 1 && self.prefixes[0].is_empty()
    }

    fn internal_id(&mut self) -> Id {
        self.next_internal += 1;
        Id::from_string(&format!("mcp-watchdog:{}", self.next_internal))
    }

    fn raise(&self, alerts: Vec<Alert>) {
        for a in alerts {
            self.alerts.do_send(RaiseAlert(a));
        }
    }

    fn observe(
        &mut self,
        upstream: usize,
        direction: Direction,
        kind: Kind,
        method: Option<Arc<str>>,
        raw: &Bytes,
        blocked: bool,
    ) {
        if self.analyzers.is_empty() {
            return;
        }
        let literals = self
            .last_scan
            .take()
            .filter(|s| s.of(raw))
            .map(|s| s.literals);
        let glance = Glance {
            direction,
            kind,
            method: method.as_deref(),
            literals: literals.as_deref(),
        };
        if !self.analyzers.want(&glance) {
            return;
        }
        self.analyzers.observe(Observation {
            at: Instant::now(),
            server: self.upstreams[upstream].name.clone(),
            direction,
            kind,
            method,
            raw: raw.clone(),
            blocked,
            literals,
        });
    }

    /// Parses a frame going in `direction`. A large one is parsed on the side thread (then the
    /// end of it scanned there) while this thread runs the shared literal scan over the rest, for
    /// the inspection that follows.
    fn parse(&mut self, raw: &Bytes, direction: Direction) -> Result<Parsed, MessageError> {
        let Some(side) = self.side.as_ref().filter(|_| raw.len() >= SPLIT_FRAME_MIN) else {
            return Message::parse_frame(raw.clone());
        };
        // The side thread parses the whole frame (cheaper per byte than the scan) from another
        // core's cache: measured on 64 KiB results, scanning 4/5 here was faster than 3/5.
        let split = raw.len() / 5 * 4;
        let pipeline = self.pipeline.clone();
        let frame = raw.clone();
        let (head, (parsed, tail)) = side.join(
            || self.pipeline.prescan(direction, raw, 0..split, false),
            move || {
                let parsed = Message::parse_frame(frame.clone());
                (
                    parsed,
                    pipeline.prescan(direction, &frame, split..frame.len(), true),
                )
            },
        );
        self.prescan = Some(head.merge(tail));
        parsed
    }

    /// Runs the inline inspectors over a message on its way to or from `upstream` and raises
    /// their alerts.
    fn run_inspectors(
        &mut self,
        upstream: usize,
        direction: Direction,
        kind: Kind,
        method: Option<&str>,
        id: Option<&Id>,
        raw: &Bytes,
    ) -> Verdict {
        let name = self.upstreams[upstream].name.clone();
        let meta = SubjectMeta {
            direction,
            server: &name,
            kind,
            method,
            id,
        };
        let prescan = self.prescan.take();
        let inspection = self.pipeline.inspect_prescanned(meta, raw, prescan);
        self.raise(inspection.alerts);
        self.last_scan = match (&inspection.outcome, inspection.observed) {
            (Outcome::Pass, Some(found)) => Some(LastScan {
                message: raw.clone(),
                // Most messages hold none: they share one list, not one allocation each.
                literals: if found.is_empty() {
                    self.no_literals.clone()
                } else {
                    found.into()
                },
            }),
            _ => None,
        };
        match inspection.outcome {
            Outcome::Pass => Verdict::Unchanged,
            Outcome::Rewrite(bytes) => match Message::parse_object(bytes) {
                Ok(m) => Verdict::Rewritten(m),
                // A rewrite is a serialized JSON value; should one ever not be JSON-RPC, the
                // message is stopped, never forwarded unchecked.
                Err(_) => Verdict::Stopped(Stop::Blocked {
                    message: None,
                    answer: None,
                }),
            },
            Outcome::Block {
                message, answer, ..
            } => Verdict::Stopped(Stop::Blocked { message, answer }),
            Outcome::Answer(result) => Verdict::Stopped(Stop::Answered(result)),
        }
    }

    // ---- output -------------------------------------------------------------------------

    fn send_to_client(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        let Some(tx) = &self.client_out else { return };
        match tx.try_send(bytes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(bytes)) => {
                // Back-pressure: stop reading anything until the client catches up; order holds.
                let tx = tx.clone();
                ctx.wait(
                    async move {
                        let _ = tx.send(bytes).await;
                    }
                    .into_actor(self),
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn reply_error(&mut self, client_id: &Id, code: i64, message: &str, ctx: &mut Context<Self>) {
        self.send_to_client(error_response(Some(client_id), code, message), ctx);
    }

    fn to_upstream(&self, upstream: usize, msg: Message) {
        self.upstreams[upstream].addr.do_send(ToServer(msg));
    }

    /// Answers whoever waits for a request that will not be answered by its upstream.
    fn fail_origin(
        &mut self,
        origin: Origin,
        upstream: usize,
        code: i64,
        message: &str,
        ctx: &mut Context<Self>,
    ) {
        match origin {
            Origin::Client(client_id) => self.reply_error(&client_id, code, message, ctx),
            Origin::Part { group } => {
                let error = serde_json::json!({"code": code, "message": message});
                self.part_done(
                    group,
                    Part {
                        upstream,
                        answer: PartAnswer::Error(error),
                    },
                    ctx,
                );
            }
        }
    }

    /// Answers whoever waits for a request with a `result` the watchdog gives in the server's name.
    fn answer_origin(
        &mut self,
        origin: Origin,
        upstream: usize,
        result: &[u8],
        ctx: &mut Context<Self>,
    ) {
        match origin {
            Origin::Client(client_id) => {
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
                    client_id.as_str(),
                    String::from_utf8_lossy(result)
                );
                self.send_to_client(Bytes::from(body), ctx);
            }
            Origin::Part { group } => {
                let answer = serde_json::from_slice(result).map_or_else(
                    |_| PartAnswer::Error(serde_json::json!({"code": code::INTERNAL_ERROR, "message": "Internal error"})),
                    PartAnswer::Result,
                );
                self.part_done(group, Part { upstream, answer }, ctx);
            }
        }
    }

    // ---- client → server ---------------------------------------------------------------

    fn on_client_message(&mut self, m: Message, ctx: &mut Context<Self>) {
        match m.kind {
            Kind::Request => self.client_request(m, ctx),
            Kind::Notification => self.client_notification(m, ctx),
            Kind::Result | Kind::Error => self.client_response(m, ctx),
        }
    }

    fn client_invalid(&mut self, raw: &[u8], error: MessageError, ctx: &mut Context<Self>) {
        self.raise(vec![Alert::new(
            FRAMING,
            "invalid client message",
            Severity::Low,
            ActionTaken::Dropped,
            format!("client sent a frame that is {error}"),
        )
        .direction(Direction::ClientToServer)
        .evidence(raw)]);
        let code = if matches!(error, MessageError::NotJsonRpc(_)) {
            code::INVALID_REQUEST
        } else {
            code::PARSE_ERROR
        };
        let text = if code == code::PARSE_ERROR {
            "Parse error"
        } else {
            "Invalid Request"
        };
        self.send_to_client(error_response(None, code, text), ctx);
    }

    fn client_oversize(&mut self, len: u64, head: Bytes, ctx: &mut Context<Self>) {
        let h = read_head(&head);
        self.raise(vec![Alert::new(
            FRAMING,
            "oversize frame",
            Severity::Medium,
            ActionTaken::Dropped,
            format!("client frame of {len} bytes exceeds the frame limit; skipped"),
        )
        .direction(Direction::ClientToServer)
        .method(h.method.as_deref())
        .jsonrpc_id(h.id.as_deref())
        .evidence(&head)]);
        if let (Some(id), Some(_)) = (h.id, h.method) {
            self.reply_error(&Id(id.into()), code::REJECTED, "Request too large", ctx);
        }
    }

    fn client_request(&mut self, m: Message, ctx: &mut Context<Self>) {
        let method = m.method_name().unwrap_or_else(|| shared_name(""));
        let client_id = m.id.clone().expect("requests have ids");
        let whole: Option<Value> = if self.is_wrap() {
            None
        } else {
            serde_json::from_slice(&m.raw).ok()
        };
        let params = whole.as_ref().and_then(|v| v.get("params"));
        match routing::route(&method, params, &self.prefixes, &self.directory) {
            Route::Reject { code, message } => self.reply_error(&client_id, code, &message, ctx),
            Route::One { upstream, rename } => {
                let msg = match (rename, whole) {
                    (Some((field, local)), Some(mut v)) => {
                        let slot = match field {
                            NameField::Name => v.pointer_mut("/params/name"),
                            NameField::RefName => v.pointer_mut("/params/ref/name"),
                        };
                        if let Some(slot) = slot {
                            *slot = Value::String(local);
                        }
                        reencode(&v).unwrap_or(m)
                    }
                    _ => m,
                };
                self.send_request(upstream, msg, Origin::Client(client_id), method, ctx);
            }
            Route::FanOut(kind) => self.fan_out(m, whole, client_id, method, kind, ctx),
        }
    }

    fn send_request(
        &mut self,
        upstream: usize,
        msg: Message,
        origin: Origin,
        method: Arc<str>,
        ctx: &mut Context<Self>,
    ) {
        if self.pending.is_full(upstream) {
            self.raise(vec![Alert::new(
                SESSION,
                "too many requests in flight",
                Severity::Medium,
                ActionTaken::Blocked,
                "the upstream has too many requests outstanding",
            )
            .server(&*self.upstreams[upstream].name)
            .method(Some(&method))]);
            self.fail_origin(
                origin,
                upstream,
                code::UPSTREAM_UNAVAILABLE,
                "Too many requests in flight",
                ctx,
            );
            return;
        }
        let upstream_id = match &origin {
            Origin::Client(cid) if !self.pending.in_use(upstream, cid) => cid.clone(),
            _ => self.internal_id(),
        };
        let mut msg = if msg.id.as_ref() != Some(&upstream_id) {
            msg.with_id(&upstream_id)
        } else {
            msg
        };
        let verdict = self.run_inspectors(
            upstream,
            Direction::ClientToServer,
            Kind::Request,
            Some(&method),
            Some(&upstream_id),
            &msg.raw,
        );
        match verdict {
            Verdict::Unchanged => {}
            Verdict::Rewritten(rewritten) => msg = rewritten,
            Verdict::Stopped(Stop::Blocked { message, .. }) => {
                self.observe(
                    upstream,
                    Direction::ClientToServer,
                    Kind::Request,
                    Some(method.clone()),
                    &msg.raw,
                    true,
                );
                let message = message.as_deref().unwrap_or(BLOCKED_MESSAGE);
                self.fail_origin(origin, upstream, code::BLOCKED, message, ctx);
                return;
            }
            Verdict::Stopped(Stop::Answered(result)) => {
                self.observe(
                    upstream,
                    Direction::ClientToServer,
                    Kind::Request,
                    Some(method.clone()),
                    &msg.raw,
                    true,
                );
                self.answer_origin(origin, upstream, &result, ctx);
                return;
            }
        }
        self.observe(
            upstream,
            Direction::ClientToServer,
            Kind::Request,
            Some(method.clone()),
            &msg.raw,
            false,
        );
        self.pending
            .insert(upstream, upstream_id, Pending { origin, method });
        self.to_upstream(upstream, msg);
    }

    fn fan_out(
        &mut self,
        m: Message,
        whole: Option<Value>,
        client_id: Id,
        method: Arc<str>,
        kind: FanOut,
        ctx: &mut Context<Self>,
    ) {
        let all = || {
            (0..self.upstreams.len())
                .map(|i| (i, m.clone()))
                .collect::<Vec<_>>()
        };
        let (group_kind, targets) = match kind {
            FanOut::Initialize => {
                let requested_version = whole
                    .as_ref()
                    .and_then(|v| v.pointer("/params/protocolVersion"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (GroupKind::Initialize { requested_version }, all())
            }
            FanOut::Broadcast => (GroupKind::Broadcast, all()),
            FanOut::List {
                list,
                cursors: None,
            } => (GroupKind::List(list), all()),
            FanOut::List {
                list,
                cursors: Some(cursors),
            } => {
                let mut targets = Vec::new();
                for (upstream, cursor) in cursors
                    .into_iter()
                    .filter(|(u, _)| *u < self.upstreams.len())
                {
                    let Some(mut v) = whole.clone() else { continue };
                    v["params"]["cursor"] = Value::String(cursor);
                    if let Some(msg) = reencode(&v) {
                        targets.push((upstream, msg));
                    }
                }
                (GroupKind::List(list), targets)
            }
        };
        let group = self.next_internal;
        self.next_internal += 1;
        self.groups.insert(
            group,
            Group {
                client_id,
                kind: group_kind,
                waiting: targets.len(),
                parts: Vec::new(),
            },
        );
        if targets.is_empty() {
            self.finish_group(group, ctx);
            return;
        }
        for (upstream, msg) in targets {
            self.send_request(upstream, msg, Origin::Part { group }, method.clone(), ctx);
        }
    }

    fn part_done(&mut self, group: u64, part: Part, ctx: &mut Context<Self>) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        g.parts.push(part);
        g.waiting = g.waiting.saturating_sub(1);
        if g.waiting == 0 {
            self.finish_group(group, ctx);
        }
    }

    fn finish_group(&mut self, group: u64, ctx: &mut Context<Self>) {
        let Some(g) = self.groups.remove(&group) else {
            return;
        };
        let names: Vec<String> = self.upstreams.iter().map(|u| u.name.to_string()).collect();
        let merged = match &g.kind {
            GroupKind::Initialize { requested_version } => {
                merge::merge_initialize(&g.parts, &names, requested_version.as_deref())
            }
            GroupKind::Broadcast => merge::merge_broadcast(&g.parts),
            GroupKind::List(list) => {
                let (merged, duplicates) =
                    merge::merge_list(list, &g.parts, &self.prefixes, &mut self.directory);
                for name in duplicates {
                    self.raise(vec![Alert::new(
                        SHADOW,
                        DUPLICATE_NAME,
                        Severity::High,
                        ActionTaken::Stripped,
                        format!("`{name}` is offered by two servers; the first one keeps it, the other's is withheld"),
                    )
                    .method(Some(list.method))
                    .evidence(name.as_bytes())]);
                }
                merged
            }
        };
        let id = g.client_id.as_str();
        let body = match merged {
            Merged::Result(v) => format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{v}}}"#),
            Merged::Error(e) => format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{e}}}"#),
        };
        self.send_to_client(Bytes::from(body), ctx);
        self.check_drained();
    }

    fn client_notification(&mut self, m: Message, _ctx: &mut Context<Self>) {
        if m.method() == Some(CANCELLED) {
            // Cancel where the request went, under the id that upstream knows it by.
            let Ok(v) = serde_json::from_slice::<Value>(&m.raw) else {
                return;
            };
            let Some(request_id) = v
                .pointer("/params/requestId")
                .map(|r| Id(r.to_string().into()))
            else {
                return;
            };
            for (upstream, upstream_id) in self.pending.routes_of(&request_id).to_vec() {
                let msg = if upstream_id == request_id {
                    m.clone()
                } else {
                    let mut v = v.clone();
                    v["params"]["requestId"] =
                        serde_json::from_str(upstream_id.as_str()).unwrap_or(Value::Null);
                    match reencode(&v) {
                        Some(msg) => msg,
                        None => continue,
                    }
                };
                self.forward_notification(upstream, msg);
            }
            return;
        }
        for upstream in 0..self.upstreams.len() {
            self.forward_notification(upstream, m.clone());
        }
    }

    fn forward_notification(&mut self, upstream: usize, msg: Message) {
        let verdict = self.run_inspectors(
            upstream,
            Direction::ClientToServer,
            Kind::Notification,
            msg.method(),
            None,
            &msg.raw,
        );
        let msg = match verdict {
            Verdict::Unchanged => msg,
            Verdict::Rewritten(m) => m,
            // Nobody waits for an answer to a notification.
            Verdict::Stopped(_) => return,
        };
        self.observe(
            upstream,
            Direction::ClientToServer,
            Kind::Notification,
            msg.method_name(),
            &msg.raw,
            false,
        );
        self.to_upstream(upstream, msg);
    }

    fn client_response(&mut self, m: Message, _ctx: &mut Context<Self>) {
        let Some(client_id) = m.id.clone() else {
            self.raise(vec![Alert::new(
                SESSION,
                "unmatched response",
                Severity::Low,
                ActionTaken::Dropped,
                "client sent a response without an id",
            )
            .direction(Direction::ClientToServer)
            .evidence(&m.raw)]);
            return;
        };
        let Some((upstream, upstream_id)) = self.server_requests.take(&client_id) else {
            if !self.server_requests.was_orphaned(&client_id) {
                self.raise(vec![Alert::new(
                    SESSION,
                    "unmatched response",
                    Severity::Low,
                    ActionTaken::Dropped,
                    "client answered a request no server sent (or answered twice)",
                )
                .direction(Direction::ClientToServer)
                .jsonrpc_id(Some(client_id.as_str()))
                .evidence(&m.raw)]);
            }
            return;
        };
        let msg = if upstream_id != client_id {
            m.with_id(&upstream_id)
        } else {
            m
        };
        let verdict = self.run_inspectors(
            upstream,
            Direction::ClientToServer,
            msg.kind,
            None,
            Some(&upstream_id),
            &msg.raw,
        );
        let msg = match verdict {
            Verdict::Unchanged => msg,
            Verdict::Rewritten(m) => m,
            Verdict::Stopped(_) => Message::parse_object(error_response(
                Some(&upstream_id),
                code::BLOCKED,
                BLOCKED_MESSAGE,
            ))
            .expect("valid error"),
        };
        self.observe(
            upstream,
            Direction::ClientToServer,
            msg.kind,
            None,
            &msg.raw,
            false,
        );
        self.to_upstream(upstream, msg);
    }

    // ---- server → client ---------------------------------------------------------------

    fn upstream_frame(&mut self, upstream: usize, frame: Frame, ctx: &mut Context<Self>) {
        match frame {
            Frame::Oversize { len, head } => {
                let h = read_head(&head);
                self.raise(vec![Alert::new(
                    FRAMING,
                    "oversize frame",
                    Severity::Medium,
                    ActionTaken::Dropped,
                    format!("server frame of {len} bytes exceeds the frame limit; skipped"),
                )
                .server(&*self.upstreams[upstream].name)
                .direction(Direction::ServerToClient)
                .method(h.method.as_deref())
                .jsonrpc_id(h.id.as_deref())
                .evidence(&head)]);
                if let Some(id) = h.id.filter(|_| h.method.is_none()) {
                    if let Some(p) = self.pending.take(upstream, &Id(id.into())) {
                        self.fail_origin(
                            p.origin,
                            upstream,
                            code::REJECTED,
                            "Response too large",
                            ctx,
                        );
                        self.check_drained();
                    }
                }
            }
            Frame::Line(raw) => match self.parse(&raw, Direction::ServerToClient) {
                Ok(Parsed::Single(m)) => self.on_upstream_message(upstream, m, ctx),
                Ok(Parsed::Batch(items)) => {
                    for item in items {
                        match item {
                            Ok(m) => self.on_upstream_message(upstream, m, ctx),
                            Err((bytes, e)) => self.upstream_invalid(upstream, &bytes, e),
                        }
                    }
                }
                Err(e) => self.upstream_invalid(upstream, &raw, e),
            },
        }
        // A scan nobody took (the frame was dropped uninspected) must not keep the frame alive.
        self.prescan = None;
    }

    fn upstream_invalid(&mut self, upstream: usize, raw: &[u8], error: MessageError) {
        self.raise(vec![Alert::new(
            FRAMING,
            "invalid server output",
            Severity::Medium,
            ActionTaken::Dropped,
            format!("server wrote a line that is {error}; not forwarded"),
        )
        .server(&*self.upstreams[upstream].name)
        .direction(Direction::ServerToClient)
        .evidence(raw)]);
    }

    fn on_upstream_message(&mut self, upstream: usize, m: Message, ctx: &mut Context<Self>) {
        match m.kind {
            Kind::Request => self.server_request(upstream, m, ctx),
            Kind::Notification => self.server_notification(upstream, m, ctx),
            Kind::Result | Kind::Error => self.server_response(upstream, m, ctx),
        }
    }

    fn server_request(&mut self, upstream: usize, m: Message, ctx: &mut Context<Self>) {
        let upstream_id = m.id.clone().expect("requests have ids");
        let verdict = self.run_inspectors(
            upstream,
            Direction::ServerToClient,
            Kind::Request,
            m.method(),
            Some(&upstream_id),
            &m.raw,
        );
        let msg = match verdict {
            Verdict::Unchanged => m,
            Verdict::Rewritten(m) => m,
            Verdict::Stopped(Stop::Blocked { answer, .. }) => {
                self.observe(
                    upstream,
                    Direction::ServerToClient,
                    Kind::Request,
                    m.method_name(),
                    &m.raw,
                    true,
                );
                let refusal = match answer {
                    Some(result) => result_response(&upstream_id, &result),
                    None => error_response(Some(&upstream_id), code::BLOCKED, BLOCKED_MESSAGE),
                };
                self.to_upstream(
                    upstream,
                    Message::parse_object(refusal).expect("valid error"),
                );
                return;
            }
            Verdict::Stopped(Stop::Answered(result)) => {
                // Answered in the client's name (e.g. an elicitation declined for the user): the
                // client never sees the request.
                self.observe(
                    upstream,
                    Direction::ServerToClient,
                    Kind::Request,
                    m.method_name(),
                    &m.raw,
                    true,
                );
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
                    upstream_id.as_str(),
                    String::from_utf8_lossy(&result)
                );
                if let Ok(answer) = Message::parse_object(Bytes::from(body)) {
                    self.to_upstream(upstream, answer);
                }
                return;
            }
        };
        // Two servers may use the same id; the second one gets a fresh id toward the client.
        let client_id = if self.server_requests.in_use(&upstream_id) {
            self.internal_id()
        } else {
            upstream_id.clone()
        };
        let msg = if client_id != upstream_id {
            msg.with_id(&client_id)
        } else {
            msg
        };
        self.server_requests
            .insert(client_id, upstream, upstream_id);
        self.observe(
            upstream,
            Direction::ServerToClient,
            Kind::Request,
            msg.method_name(),
            &msg.raw,
            false,
        );
        self.send_to_client(msg.raw, ctx);
    }

    fn server_notification(&mut self, upstream: usize, m: Message, ctx: &mut Context<Self>) {
        let verdict = self.run_inspectors(
            upstream,
            Direction::ServerToClient,
            Kind::Notification,
            m.method(),
            None,
            &m.raw,
        );
        let mut msg = match verdict {
            Verdict::Unchanged => m,
            Verdict::Rewritten(m) => m,
            Verdict::Stopped(_) => {
                self.observe(
                    upstream,
                    Direction::ServerToClient,
                    Kind::Notification,
                    m.method_name(),
                    &m.raw,
                    true,
                );
                return;
            }
        };
        if msg.method() == Some(CANCELLED) {
            // A server cancelling its own request: use the id the client knows it by.
            if let Ok(mut v) = serde_json::from_slice::<Value>(&msg.raw) {
                if let Some(rid) = v
                    .pointer("/params/requestId")
                    .map(|r| Id(r.to_string().into()))
                {
                    if let Some(cid) = self.server_requests.client_id_of(upstream, &rid).cloned() {
                        if cid != rid {
                            v["params"]["requestId"] =
                                serde_json::from_str(cid.as_str()).unwrap_or(Value::Null);
                            if let Some(re) = reencode(&v) {
                                msg = re;
                            }
                        }
                    }
                }
            }
        }
        self.observe(
            upstream,
            Direction::ServerToClient,
            Kind::Notification,
            msg.method_name(),
            &msg.raw,
            false,
        );
        self.send_to_client(msg.raw, ctx);
    }

    fn server_response(&mut self, upstream: usize, m: Message, ctx: &mut Context<Self>) {
        let name = self.upstreams[upstream].name.clone();
        let pending = m.id.as_ref().and_then(|id| self.pending.take(upstream, id));
        let Some(pending) = pending else {
            self.raise(vec![Alert::new(
                SESSION,
                "unsolicited response",
                Severity::High,
                ActionTaken::Dropped,
                "server sent a response to an id the client never sent (or a duplicate)",
            )
            .server(&*name)
            .direction(Direction::ServerToClient)
            .jsonrpc_id(m.id.as_ref().map(Id::as_str))
            .evidence(&m.raw)]);
            return;
        };
        let verdict = self.run_inspectors(
            upstream,
            Direction::ServerToClient,
            m.kind,
            Some(&pending.method),
            m.id.as_ref(),
            &m.raw,
        );
        let forwarded = match verdict {
            Verdict::Unchanged => Some(m),
            Verdict::Rewritten(m) => Some(m),
            // A response answers nothing further: an answer for it means stop it.
            Verdict::Stopped(_) => None,
        };
        let held = forwarded
            .as_ref()
            .filter(|f| f.kind == Kind::Result && &*pending.method == TOOLS_CALL)
            .and_then(|f| Some((self.hold.clone()?, f.raw.clone())));
        if let Some((semantic, raw)) = held {
            // Waiting stops this session's mailbox: nothing overtakes the held result.
            let ask = semantic.send(HoldResult { server: name, raw });
            ctx.wait(ask.into_actor(self).map(move |held, act, ctx| {
                let forwarded = match held {
                    Ok(Held::Block { .. }) => None,
                    // The classifier actor is gone: it was only ever asked, not relied on.
                    Ok(Held::Pass) | Err(_) => forwarded,
                };
                act.deliver_response(upstream, pending, forwarded, ctx);
            }));
            return;
        }
        self.deliver_response(upstream, pending, forwarded, ctx);
    }

    /// Sends a server's (inspected) response on to whoever asked, or the refusal when it was
    /// stopped (`None`).
    fn deliver_response(
        &mut self,
        upstream: usize,
        pending: Pending,
        forwarded: Option<Message>,
        ctx: &mut Context<Self>,
    ) {
        self.observe(
            upstream,
            Direction::ServerToClient,
            forwarded.as_ref().map_or(Kind::Error, |f| f.kind),
            Some(pending.method.clone()),
            forwarded.as_ref().map_or(&Bytes::new(), |f| &f.raw),
            forwarded.is_none(),
        );
        match (pending.origin, forwarded) {
            (Origin::Client(client_id), Some(msg)) => {
                let msg = if msg.id.as_ref() != Some(&client_id) {
                    msg.with_id(&client_id)
                } else {
                    msg
                };
                self.send_to_client(msg.raw, ctx);
            }
            (Origin::Client(client_id), None) => {
                self.reply_error(&client_id, code::BLOCKED, BLOCKED_MESSAGE, ctx)
            }
            (Origin::Part { group }, forwarded) => {
                let answer =
                    match forwarded.and_then(|f| serde_json::from_slice::<Value>(&f.raw).ok()) {
                        Some(mut v) if v.get("result").is_some() => {
                            PartAnswer::Result(v["result"].take())
                        }
                        Some(mut v) => PartAnswer::Error(v["error"].take()),
                        None => PartAnswer::Error(
                            serde_json::json!({"code": code::BLOCKED, "message": BLOCKED_MESSAGE}),
                        ),
                    };
                self.part_done(group, Part { upstream, answer }, ctx);
            }
        }
        self.check_drained();
    }

    fn upstream_down(&mut self, upstream: usize, restarting: bool, ctx: &mut Context<Self>) {
        let message = if restarting {
            "Upstream server exited; it is being restarted"
        } else {
            "Upstream server exited"
        };
        for (_, p) in self.pending.take_all(upstream) {
            self.give_up(p.origin, upstream, message, ctx);
        }
        self.server_requests.orphan_all(upstream);
        self.check_drained();
    }

    fn undelivered(&mut self, upstream: usize, msg: Message, ctx: &mut Context<Self>) {
        if msg.kind != Kind::Request {
            return;
        }
        if let Some(p) = msg
            .id
            .as_ref()
            .and_then(|id| self.pending.take(upstream, id))
        {
            self.give_up(p.origin, upstream, "Upstream server unavailable", ctx);
            self.check_drained();
        }
    }

    /// A request its upstream will never answer: a fan-out part counts as gone, anyone else waiting
    /// gets an "unavailable" error with `message`.
    fn give_up(&mut self, origin: Origin, upstream: usize, message: &str, ctx: &mut Context<Self>) {
        match origin {
            Origin::Part { group } => self.part_done(
                group,
                Part {
                    upstream,
                    answer: PartAnswer::Gone,
                },
                ctx,
            ),
            origin => self.fail_origin(origin, upstream, code::UPSTREAM_UNAVAILABLE, message, ctx),
        }
    }

    /// At shutdown, after the drain timeout: whoever still waits gets an error, not silence.
    fn abandon_pending(&mut self, ctx: &mut Context<Self>) {
        let mut abandoned = 0usize;
        for upstream in 0..self.upstreams.len() {
            for (_, p) in self.pending.take_all(upstream) {
                abandoned += 1;
                self.give_up(
                    p.origin,
                    upstream,
                    "Shutting down: the server did not answer in time",
                    ctx,
                );
            }
        }
        if abandoned > 0 {
            self.raise(vec![Alert::new(SUPERVISION, "requests abandoned at shutdown", Severity::Low, ActionTaken::Dropped, format!("{abandoned} request(s) still unanswered after the drain timeout were answered with errors"))]);
        }
    }

    /// Messages an inspector held back whose time has come go through the pipeline again, as if
    /// the server had just sent them (they are server→client notifications).
    fn release_deferred(&mut self, ctx: &mut Context<Self>) {
        for d in self.pipeline.take_due(Instant::now()) {
            self.raise(d.alerts);
            let Some(upstream) = self.upstreams.iter().position(|u| *u.name == *d.server) else {
                continue;
            };
            if let Ok(m) = Message::parse_object(d.raw) {
                self.on_upstream_message(upstream, m, ctx);
            }
        }
    }

    fn check_drained(&mut self) {
        if !self.drain_waiters.is_empty()
            && self.pending.client_requests_outstanding() == 0
            && self.groups.is_empty()
        {
            for w in self.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

/// A result response to `id` (a server request answered on the client's behalf).
fn result_response(id: &Id, result: &Value) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{}}}"#,
        id.as_str(),
        result
    ))
}

/// A rewritten message, serialized again.
fn reencode(v: &Value) -> Option<Message> {
    Message::parse_object(Bytes::from(serde_json::to_vec(v).ok()?)).ok()
}

/// How often held-back messages (a coalesced flood's last notification) are checked for release.
const DEFERRED_TICK: Duration = Duration::from_millis(100);

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(DEFERRED_TICK, |act, ctx| act.release_deferred(ctx));
    }
}

impl StreamHandler<std::io::Result<Frame>> for Session {
    fn handle(&mut self, item: std::io::Result<Frame>, ctx: &mut Context<Self>) {
        match item {
            Err(e) => tracing::warn!("reading from the client failed: {e}"),
            Ok(Frame::Oversize { len, head }) => self.client_oversize(len, head, ctx),
            Ok(Frame::Line(raw)) => match self.parse(&raw, Direction::ClientToServer) {
                Ok(Parsed::Single(m)) => self.on_client_message(m, ctx),
                Ok(Parsed::Batch(items)) => {
                    for item in items {
                        match item {
                            Ok(m) => self.on_client_message(m, ctx),
                            Err((bytes, e)) => self.client_invalid(&bytes, e, ctx),
                        }
                    }
                }
                Err(e) => self.client_invalid(&raw, e, ctx),
            },
        }
        self.prescan = None;
    }

    /// The client closed its input: the supervisor runs the shutdown (the session lives on to
    /// deliver replies still in flight).
    fn finished(&mut self, _ctx: &mut Context<Self>) {
        self.supervisor.do_send(ClientClosed);
    }
}

impl Handler<UpstreamEvent> for Session {
    type Result = ();

    fn handle(&mut self, ev: UpstreamEvent, ctx: &mut Context<Self>) {
        match ev.event {
            UpstreamEventKind::Frame(frame) => self.upstream_frame(ev.upstream, frame, ctx),
            UpstreamEventKind::Up => {
                tracing::debug!("upstream {} is up", self.upstreams[ev.upstream].name)
            }
            UpstreamEventKind::Down { restarting } => {
                self.upstream_down(ev.upstream, restarting, ctx)
            }
            UpstreamEventKind::Undelivered(msg) => self.undelivered(ev.upstream, msg, ctx),
        }
    }
}

impl Handler<Drain> for Session {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.drain_waiters.push(tx);
        self.check_drained();
        ctx.run_later(msg.timeout, |act, ctx| {
            if !act.drain_waiters.is_empty() {
                act.abandon_pending(ctx);
            }
            for w in act.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        });
        Box::pin(
            async move {
                let _ = rx.await;
            }
            .into_actor(self),
        )
    }
}

impl Handler<CloseClient> for Session {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: CloseClient, _ctx: &mut Context<Self>) -> Self::Result {
        self.client_out = None;
        let writer = self.client_writer.take();
        Box::pin(async move {
            if let Some(w) = writer {
                match w.await {
                    Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                        tracing::warn!("writing to the client failed: {e}")
                    }
                    _ => {}
                }
            }
        })
    }
}
