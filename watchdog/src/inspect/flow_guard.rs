//! FLOW inline: remembers the tokens servers hand out and stops a request that carries a secret
//! from one server to another (the rest of what crosses is reported).
//!
//! Both halves run here, in the session's message order, so there is no race between learning a
//! token from A's output and seeing it in a request to B (see `analyze::flow`). Only built in
//! gateway mode: with one server nothing can cross.

use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::analyze::flow::{FlowMemory, FLOW};
use crate::jsonrpc::Kind;
use crate::mcp::methods::INITIALIZE;
use crate::policy::{Action, Policy};
use std::collections::HashMap;
use std::sync::Arc;

pub struct FlowGuard {
    memory: Arc<FlowMemory>,
    /// Server names as shared `Arc`s, so remembering a token does not allocate its origin.
    names: HashMap<String, Arc<str>>,
}

impl FlowGuard {
    pub fn new(memory: Arc<FlowMemory>, servers: impl IntoIterator<Item = String>) -> Self {
        FlowGuard {
            memory,
            names: servers
                .into_iter()
                .map(|s| {
                    let a: Arc<str> = s.as_str().into();
                    (s, a)
                })
                .collect(),
        }
    }
}

impl Inspector for FlowGuard {
    fn name(&self) -> &'static str {
        FLOW
    }

    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool {
        let output = meta.direction == Direction::ServerToClient
            && meta.kind != Kind::Error
            && meta.method != Some(INITIALIZE);
        let request = meta.direction == Direction::ClientToServer && meta.kind == Kind::Request;
        (output || request) && policy.action(FLOW) != Action::Off
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let server = subject.meta.server;
        if subject.meta.direction == Direction::ServerToClient {
            let name = self
                .names
                .get(server)
                .cloned()
                .unwrap_or_else(|| server.into());
            self.memory.output(&name, subject.raw());
            return;
        }
        for crossing in self.memory.request(server, subject.raw()) {
            let severity = if crossing.kind.is_secret() {
                Severity::Critical
            } else {
                Severity::Medium
            };
            let block = policy.action_for(FLOW, severity) >= Action::Strip;
            let taken = if block {
                ActionTaken::Blocked
            } else {
                ActionTaken::Alerted
            };
            findings.alert(
                Alert::new(
                    FLOW,
                    "cross-server propagation",
                    severity,
                    taken,
                    format!(
                        "a {} first seen in the output of server `{}` is being sent to server `{server}`",
                        crossing.kind.as_str(),
                        crossing.from
                    ),
                )
                .evidence(crossing.text.as_bytes()),
            );
            if block {
                findings.refuse(
                    format!("{} from `{}` sent to `{server}`", crossing.kind.as_str(), crossing.from),
                    format!(
                        "Blocked by mcp-watchdog: this request carries a {} that server `{}` produced; it is not sent to `{server}`",
                        crossing.kind.as_str(),
                        crossing.from
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{Outcome, Pipeline};
    use crate::jsonrpc::Id;
    use crate::policy::Mode;
    use serde_json::json;

    const KEY: &str = "sk-ant-api03-Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hc1Jd5Fg";
    const UUID: &str = "3f2c9a4e-8b1d-4c7a-9e2f-1a2b3c4d5e6f";

    fn pipeline(mode: Mode) -> Pipeline {
        let guard = FlowGuard::new(Arc::default(), ["a".to_string(), "b".to_string()]);
        Pipeline::new(Policy::new(mode, HashMap::new()), vec![Box::new(guard)])
    }

    fn output(p: &Pipeline, server: &str, text: &str) {
        let raw =
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":text}]}})
                .to_string();
        let id = Id::from_string("1");
        let meta = SubjectMeta {
            direction: Direction::ServerToClient,
            server,
            kind: Kind::Result,
            method: Some("tools/call"),
            id: Some(&id),
        };
        assert_eq!(p.inspect(meta, raw.as_bytes()).outcome, Outcome::Pass);
    }

    fn request(p: &Pipeline, server: &str, args: serde_json::Value) -> crate::inspect::Inspection {
        let raw = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","arguments":args}})
            .to_string();
        let meta = SubjectMeta {
            direction: Direction::ClientToServer,
            server,
            kind: Kind::Request,
            method: Some("tools/call"),
            id: None,
        };
        p.inspect(meta, raw.as_bytes())
    }

    #[test]
    fn a_secret_from_a_sent_to_b_is_blocked() {
        let p = pipeline(Mode::Enforce);
        output(&p, "a", &format!("ANTHROPIC_API_KEY={KEY}"));
        let i = request(&p, "b", json!({"body": format!("key: {KEY}")}));
        assert!(
            matches!(i.outcome, Outcome::Block { .. }),
            "{:?}",
            i.outcome
        );
        assert_eq!(i.alerts[0].rule, FLOW);
        assert_eq!(i.alerts[0].severity, Severity::Critical);
        assert!(!i.alerts[0]
            .excerpt
            .as_deref()
            .unwrap_or_default()
            .contains(KEY));
    }

    #[test]
    fn an_id_from_a_sent_to_b_is_reported_not_blocked() {
        let p = pipeline(Mode::Enforce);
        output(&p, "a", &format!("created ticket {UUID}"));
        let i = request(&p, "b", json!({"ticket": UUID}));
        assert_eq!(i.outcome, Outcome::Pass);
        assert_eq!(i.alerts.len(), 1);
        assert_eq!(i.alerts[0].severity, Severity::Medium);
        assert_eq!(i.alerts[0].action, ActionTaken::Alerted);
    }

    #[test]
    fn monitor_mode_only_reports_a_secret_crossing() {
        let p = pipeline(Mode::Monitor);
        output(&p, "a", &format!("key {KEY}"));
        let i = request(&p, "b", json!({"k": KEY}));
        assert_eq!(i.outcome, Outcome::Pass);
        assert_eq!(i.alerts[0].action, ActionTaken::Alerted);
    }

    #[test]
    fn a_secret_going_back_to_its_own_server_passes() {
        let p = pipeline(Mode::Enforce);
        output(&p, "a", &format!("session key {KEY}"));
        let i = request(&p, "a", json!({"k": KEY}));
        assert_eq!(i.outcome, Outcome::Pass);
        assert!(i.alerts.is_empty());
    }

    #[test]
    fn a_key_the_user_gave_first_passes_to_any_server() {
        let p = pipeline(Mode::Enforce);
        assert!(request(&p, "a", json!({"k": KEY})).alerts.is_empty());
        output(&p, "a", &format!("stored {KEY}"));
        let i = request(&p, "b", json!({"k": KEY}));
        assert_eq!(i.outcome, Outcome::Pass);
        assert!(i.alerts.is_empty());
    }

    #[test]
    fn ordinary_values_from_a_to_b_pass_quietly() {
        let p = pipeline(Mode::Enforce);
        output(
            &p,
            "a",
            "repo octocat/Hello-World, /tmp/report.txt, 2026-08-31, 日本語, 🎉",
        );
        let i = request(
            &p,
            "b",
            json!({"repo": "octocat/Hello-World", "path": "/tmp/report.txt", "date": "2026-08-31"}),
        );
        assert_eq!(i.outcome, Outcome::Pass);
        assert!(i.alerts.is_empty());
    }
}
