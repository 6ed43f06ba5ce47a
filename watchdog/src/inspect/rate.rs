//! RATE-LIMIT and NOTIF-INJECT inline: bursts of tool calls from the client (consent fatigue), and
//! floods of change notifications from a server, coalesced.
//!
//! A flood of `notifications/*/list_changed` (or `resources/updated` for one uri) makes a client
//! re-fetch lists over and over, or buries a changed definition in noise. The first notification of
//! a window goes through, repeats within the window are held, and the last one held is released
//! when the window ends (via [`Inspector::take_due`]), so the client still learns the final state.
//! Progress and every other notification are never touched.

use super::{Deferred, Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::jsonrpc::Kind;
use crate::mcp::methods::TOOLS_CALL;
use crate::policy::{Action, Policy};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const RATE_LIMIT: &str = "RATE-LIMIT";
pub const NOTIF_INJECT: &str = "NOTIF-INJECT";

/// Notifications whose repeats carry no news: only the latest state matters.
pub const COALESCED: &[&str] = &[
    "notifications/tools/list_changed",
    "notifications/resources/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/updated",
];

const RESOURCES_UPDATED: &str = "notifications/resources/updated";

/// The window tool calls are counted over.
const CALL_WINDOW: Duration = Duration::from_secs(10);

/// Flood windows kept at most (keys include server-chosen uris): beyond this, repeats are keyed by
/// method only.
const MAX_FLOODS: usize = 1024;

/// `[rate]` in watchdog.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// More tool calls than this to one server within 10 s are reported.
    pub calls_per_10s: usize,
    /// More than this are refused (0: never).
    pub calls_hard_limit_per_10s: usize,
    /// Repeats of a change notification within this window are coalesced.
    pub list_changed_window_ms: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            calls_per_10s: 30,
            calls_hard_limit_per_10s: 0,
            list_changed_window_ms: 1000,
        }
    }
}

#[derive(Default)]
struct Calls {
    times: VecDeque<Instant>,
    /// What was reported for the current burst: 0 nothing, 1 the burst, 2 the refusals.
    reported: u8,
}

struct Flood {
    server: String,
    started: Instant,
    held: u64,
    last: Option<Bytes>,
    reported: bool,
}

pub struct RateGuard {
    limits: RateLimits,
    window: Duration,
    calls: Mutex<HashMap<String, Calls>>,
    floods: Mutex<HashMap<(String, String), Flood>>,
}

impl RateGuard {
    pub fn new(limits: RateLimits) -> Self {
        RateGuard {
            window: Duration::from_millis(limits.list_changed_window_ms.max(1)),
            limits,
            calls: Mutex::default(),
            floods: Mutex::default(),
        }
    }

    fn tool_call(&self, s: &Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let now = Instant::now();
        let soft = self.limits.calls_per_10s;
        let hard = self.limits.calls_hard_limit_per_10s;
        let cap = soft.max(hard) + 1;
        let mut all = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        // The server's name is copied only the first time: this runs on every call.
        if !all.contains_key(s.meta.server) {
            all.insert(s.meta.server.to_owned(), Calls::default());
        }
        let calls = all.get_mut(s.meta.server).expect("inserted above");
        while calls
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) > CALL_WINDOW)
        {
            calls.times.pop_front();
        }
        calls.times.push_back(now);
        if calls.times.len() > cap {
            calls.times.pop_front();
        }
        let count = calls.times.len();
        let over_hard = hard > 0 && count > hard;
        if count <= soft && !over_hard {
            calls.reported = 0;
            return;
        }
        let severity = if over_hard {
            Severity::Critical
        } else {
            Severity::Medium
        };
        let block = over_hard && policy.action_for(RATE_LIMIT, severity) == Action::Block;
        if block {
            findings.refuse(
                format!("more than {hard} tool calls in 10 s"),
                format!("Blocked by mcp-watchdog: more than {hard} tool calls to this server in 10 seconds; slow down"),
            );
        }
        // One alert when the burst crosses the soft threshold, one more when refusals start.
        let level = if block { 2 } else { 1 };
        if calls.reported >= level {
            return;
        }
        calls.reported = level;
        findings.alert(Alert::new(
            RATE_LIMIT,
            "tool call burst",
            severity,
            if block {
                ActionTaken::Blocked
            } else {
                ActionTaken::Alerted
            },
            if block {
                format!("more than {hard} tool calls to one server within 10 s; further calls are refused until the pace drops")
            } else {
                format!("more than {soft} tool calls to one server within 10 s (consent fatigue?)")
            },
        ));
    }

    fn notification(&self, s: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let method = s.meta.method.unwrap_or_default();
        let server = s.meta.server.to_owned();
        let mut key = method.to_owned();
        if method == RESOURCES_UPDATED {
            if let Some(uri) = s
                .json()
                .and_then(|v| v.pointer("/params/uri"))
                .and_then(|u| u.as_str())
            {
                key.push(' ');
                key.push_str(uri);
            }
        }
        let now = Instant::now();
        let coalesce = policy.action(NOTIF_INJECT) >= Action::Strip;
        let mut floods = self.floods.lock().unwrap_or_else(|e| e.into_inner());
        if floods.len() >= MAX_FLOODS {
            let window = self.window;
            floods.retain(|_, f| f.last.is_some() || now.duration_since(f.started) < window);
            if floods.len() >= MAX_FLOODS {
                key = method.to_owned();
            }
        }
        let flood = match floods.entry((server.clone(), key)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Flood {
                    server,
                    started: now,
                    held: 0,
                    last: None,
                    reported: false,
                });
                return;
            }
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        };
        if now.duration_since(flood.started) >= self.window && flood.last.is_none() {
            // A quiet window ended: this one starts the next.
            flood.started = now;
            flood.reported = false;
            return;
        }
        if !coalesce {
            if !flood.reported {
                flood.reported = true;
                findings.alert(
                    Alert::new(
                        NOTIF_INJECT,
                        "notification flood",
                        Severity::Low,
                        ActionTaken::Alerted,
                        format!("`{method}` repeated within {} ms", self.window.as_millis()),
                    )
                    .evidence(s.raw()),
                );
            }
            return;
        }
        flood.held += 1;
        flood.last = Some(Bytes::copy_from_slice(s.raw()));
        findings.block(format!("`{method}` repeated within the coalescing window"));
    }
}

impl Inspector for RateGuard {
    fn name(&self) -> &'static str {
        "RATE-LIMIT/NOTIF-INJECT"
    }

    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool {
        match (meta.direction, meta.kind) {
            (Direction::ClientToServer, Kind::Request) => {
                meta.method == Some(TOOLS_CALL) && policy.action(RATE_LIMIT) != Action::Off
            }
            (Direction::ServerToClient, Kind::Notification) => {
                meta.method.is_some_and(|m| COALESCED.contains(&m))
                    && policy.action(NOTIF_INJECT) != Action::Off
            }
            _ => false,
        }
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        if subject.meta.kind == Kind::Request {
            self.tool_call(subject, policy, findings);
        } else {
            self.notification(subject, policy, findings);
        }
    }

    /// Ends the windows that are over: the last notification held in each is released (and goes
    /// through the pipeline again, opening a new window), with one alert counting the flood.
    fn take_due(&self, now: Instant) -> Vec<Deferred> {
        let mut floods = self.floods.lock().unwrap_or_else(|e| e.into_inner());
        if floods.is_empty() {
            return Vec::new();
        }
        let window = self.window;
        let mut due = Vec::new();
        floods.retain(|(_, key), f| {
            if now.duration_since(f.started) < window {
                return true;
            }
            if let Some(raw) = f.last.take() {
                let method = key.split(' ').next().unwrap_or_default();
                let dropped = f.held.saturating_sub(1);
                let alert = Alert::new(
                    NOTIF_INJECT,
                    "notification flood",
                    Severity::Medium,
                    ActionTaken::Dropped,
                    format!(
                        "{} × `{method}` within {} ms: the first and the last were forwarded, {dropped} repeat(s) dropped",
                        f.held + 1,
                        window.as_millis()
                    ),
                )
                .server(f.server.clone())
                .direction(Direction::ServerToClient)
                .method(Some(method))
                .evidence(&raw);
                due.push(Deferred {
                    server: f.server.clone(),
                    raw,
                    alerts: vec![alert],
                });
            }
            false
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{Outcome, Pipeline};
    use crate::policy::Mode;

    fn guard(limits: RateLimits, mode: Mode) -> Pipeline {
        Pipeline::new(
            Policy::new(mode, HashMap::new()),
            vec![Box::new(RateGuard::new(limits))],
        )
    }

    fn limits(soft: usize, hard: usize, window_ms: u64) -> RateLimits {
        RateLimits {
            calls_per_10s: soft,
            calls_hard_limit_per_10s: hard,
            list_changed_window_ms: window_ms,
        }
    }

    fn notify(p: &Pipeline, server: &str, method: &str, raw: &str) -> crate::inspect::Inspection {
        p.inspect(
            SubjectMeta {
                direction: Direction::ServerToClient,
                server,
                kind: Kind::Notification,
                method: Some(method),
                id: None,
            },
            raw.as_bytes(),
        )
    }

    fn call(p: &Pipeline, server: &str) -> crate::inspect::Inspection {
        p.inspect(
            SubjectMeta {
                direction: Direction::ClientToServer,
                server,
                kind: Kind::Request,
                method: Some(TOOLS_CALL),
                id: None,
            },
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
        )
    }

    const TOOLS_CHANGED: &str = "notifications/tools/list_changed";

    fn changed(n: u32) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"{TOOLS_CHANGED}","params":{{"_meta":{{"n":{n}}}}}}}"#
        )
    }

    #[test]
    fn a_flood_is_coalesced_to_the_first_and_the_last_with_one_alert() {
        let p = guard(limits(30, 0, 50), Mode::Enforce);
        let passed = (0..500)
            .filter(|&n| notify(&p, "s", TOOLS_CHANGED, &changed(n)).outcome == Outcome::Pass)
            .count();
        assert_eq!(passed, 1);
        assert!(p.take_due(Instant::now()).is_empty(), "not due yet");
        let due = p.take_due(Instant::now() + Duration::from_millis(60));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].raw, changed(499).as_bytes());
        assert_eq!(due[0].alerts.len(), 1);
        assert_eq!(due[0].alerts[0].rule, NOTIF_INJECT);
        assert!(
            due[0].alerts[0].detail.contains("498"),
            "{}",
            due[0].alerts[0].detail
        );
        // Released, it goes through again and opens a new window.
        assert_eq!(
            notify(&p, "s", TOOLS_CHANGED, &changed(499)).outcome,
            Outcome::Pass
        );
        assert!(p
            .take_due(Instant::now() + Duration::from_secs(1))
            .is_empty());
    }

    #[test]
    fn resources_updated_is_coalesced_per_uri_and_per_server() {
        let p = guard(limits(30, 0, 10_000), Mode::Enforce);
        let upd = |uri: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","method":"{RESOURCES_UPDATED}","params":{{"uri":"{uri}"}}}}"#
            )
        };
        assert_eq!(
            notify(&p, "s", RESOURCES_UPDATED, &upd("file:///a")).outcome,
            Outcome::Pass
        );
        assert_eq!(
            notify(&p, "s", RESOURCES_UPDATED, &upd("file:///b")).outcome,
            Outcome::Pass
        );
        assert_eq!(
            notify(&p, "t", RESOURCES_UPDATED, &upd("file:///a")).outcome,
            Outcome::Pass
        );
        assert!(matches!(
            notify(&p, "s", RESOURCES_UPDATED, &upd("file:///a")).outcome,
            Outcome::Block { .. }
        ));
    }

    #[test]
    fn notifications_spread_over_time_all_pass_quietly() {
        let p = guard(limits(30, 0, 20), Mode::Enforce);
        for n in 0..4 {
            let i = notify(&p, "s", TOOLS_CHANGED, &changed(n));
            assert_eq!(i.outcome, Outcome::Pass);
            assert!(i.alerts.is_empty());
            std::thread::sleep(Duration::from_millis(30));
            assert!(p.take_due(Instant::now()).is_empty());
        }
    }

    #[test]
    fn progress_and_other_notifications_are_never_coalesced() {
        let p = guard(limits(30, 0, 10_000), Mode::Enforce);
        for n in 0..100 {
            let raw = format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":1,"progress":{n}}}}}"#
            );
            assert_eq!(
                notify(&p, "s", "notifications/progress", &raw).outcome,
                Outcome::Pass
            );
            let raw = format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","data":{n}}}}}"#
            );
            assert_eq!(
                notify(&p, "s", "notifications/message", &raw).outcome,
                Outcome::Pass
            );
        }
        assert!(p
            .take_due(Instant::now() + Duration::from_secs(60))
            .is_empty());
    }

    #[test]
    fn monitor_mode_reports_a_flood_once_and_forwards_everything() {
        let p = guard(limits(30, 0, 10_000), Mode::Monitor);
        let mut alerts = 0;
        for n in 0..50 {
            let i = notify(&p, "s", TOOLS_CHANGED, &changed(n));
            assert_eq!(i.outcome, Outcome::Pass);
            alerts += i.alerts.len();
        }
        assert_eq!(alerts, 1);
    }

    #[test]
    fn a_burst_of_calls_is_reported_once() {
        let p = guard(limits(30, 0, 1000), Mode::Enforce);
        let mut alerts = Vec::new();
        for _ in 0..100 {
            let i = call(&p, "s");
            assert_eq!(i.outcome, Outcome::Pass);
            alerts.extend(i.alerts);
        }
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].rule, RATE_LIMIT);
        assert_eq!(alerts[0].severity, Severity::Medium);
    }

    #[test]
    fn calls_beyond_the_hard_limit_are_refused() {
        let p = guard(limits(5, 10, 1000), Mode::Enforce);
        let mut alerts = Vec::new();
        let outcomes: Vec<bool> = (0..15)
            .map(|_| {
                let i = call(&p, "s");
                alerts.extend(i.alerts);
                matches!(i.outcome, Outcome::Block { .. })
            })
            .collect();
        assert!(outcomes[..10].iter().all(|b| !b));
        assert!(outcomes[10..].iter().all(|b| *b));
        let taken: Vec<ActionTaken> = alerts.iter().map(|a| a.action).collect();
        assert_eq!(taken, [ActionTaken::Alerted, ActionTaken::Blocked]);
        // Another server has its own budget.
        assert_eq!(call(&p, "t").outcome, Outcome::Pass);
    }

    #[test]
    fn a_steady_session_under_the_threshold_stays_quiet() {
        let p = guard(limits(30, 40, 1000), Mode::Enforce);
        for _ in 0..30 {
            let i = call(&p, "s");
            assert_eq!(i.outcome, Outcome::Pass);
            assert!(i.alerts.is_empty());
        }
    }
}
