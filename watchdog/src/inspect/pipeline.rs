//! Runs the inspectors over one message and turns their findings into one outcome.

use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Severity};
use crate::policy::Policy;
use bytes::Bytes;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Forward the original bytes.
    Pass,
    /// Forward these bytes instead (same id, same shape).
    Rewrite(Bytes),
    /// Do not forward; the requester gets a JSON-RPC error with `message`, or a generic one.
    Block {
        reason: String,
        message: Option<String>,
        /// Answer the requester with this result instead of an error. Honoured for server→client
        /// requests (the server gets the result); elsewhere the message is simply stopped.
        answer: Option<serde_json::Value>,
    },
    /// Do not forward; answer the requester with this JSON-RPC `result` (a request only).
    Answer(Bytes),
}

#[derive(Debug)]
pub struct Inspection {
    pub outcome: Outcome,
    pub alerts: Vec<Alert>,
}

/// Rule id for an inspector that failed: its message is stopped (fail closed).
pub const INSPECTOR_FAULT: &str = "INSPECTOR-FAULT";

pub struct Pipeline {
    inspectors: Vec<Box<dyn Inspector>>,
    policy: Policy,
}

impl Pipeline {
    pub fn new(policy: Policy, inspectors: Vec<Box<dyn Inspector>>) -> Self {
        Pipeline { inspectors, policy }
    }

    /// Adds inspectors after the ones already there (stateful ones the stateless pipeline leaves
    /// out).
    pub fn extend(&mut self, more: Vec<Box<dyn Inspector>>) {
        self.inspectors.extend(more);
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Held-back messages now due, from every inspector.
    pub fn take_due(&self, now: std::time::Instant) -> Vec<super::Deferred> {
        self.inspectors
            .iter()
            .flat_map(|i| i.take_due(now))
            .collect()
    }

    pub fn inspect(&self, meta: SubjectMeta<'_>, raw: &[u8]) -> Inspection {
        let mut subject = Subject::new(meta, raw);
        let mut findings = Findings::default();
        for inspector in &self.inspectors {
            if !inspector.applies(&meta, &self.policy) || !inspector.prefilter(&meta, raw) {
                continue;
            }
            let ran = catch_unwind(AssertUnwindSafe(|| {
                inspector.inspect(&mut subject, &self.policy, &mut findings)
            }));
            if ran.is_err() {
                findings.alert(Alert::new(
                    INSPECTOR_FAULT,
                    "inspector failure",
                    Severity::High,
                    ActionTaken::Blocked,
                    format!(
                        "inspector {} failed; the message was stopped",
                        inspector.name()
                    ),
                ));
                findings.block(format!("inspector {} failed", inspector.name()));
            }
        }
        let alerts = findings
            .alerts
            .into_iter()
            .map(|a| fill_context(a, &meta))
            .collect();
        let outcome = if let Some(reason) = findings.block {
            Outcome::Block {
                reason,
                message: findings.block_message,
                answer: findings.answer,
            }
        } else if let Some(result) = findings.answer {
            Outcome::Answer(Bytes::from(
                serde_json::to_vec(&result).expect("JSON values serialize"),
            ))
        } else if subject.changed() {
            let value = subject.into_value().expect("changed implies parsed");
            Outcome::Rewrite(Bytes::from(
                serde_json::to_vec(&value).expect("JSON values serialize"),
            ))
        } else {
            Outcome::Pass
        };
        Inspection { outcome, alerts }
    }
}

fn fill_context(mut alert: Alert, meta: &SubjectMeta<'_>) -> Alert {
    alert.server.get_or_insert_with(|| meta.server.to_owned());
    alert.direction.get_or_insert(meta.direction);
    if alert.method.is_none() {
        alert.method = meta.method.map(str::to_owned);
    }
    if alert.jsonrpc_id.is_none() {
        alert.jsonrpc_id = meta.id.map(|i| i.as_str().to_owned());
    }
    alert
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Direction;
    use crate::jsonrpc::Kind;

    struct Panics;
    impl Inspector for Panics {
        fn name(&self) -> &'static str {
            "panics"
        }
        fn applies(&self, _: &SubjectMeta<'_>, _: &Policy) -> bool {
            true
        }
        fn inspect(&self, _: &mut Subject<'_>, _: &Policy, _: &mut Findings) {
            panic!("boom")
        }
    }

    struct Uppercases;
    impl Inspector for Uppercases {
        fn name(&self) -> &'static str {
            "uppercases"
        }
        fn applies(&self, _: &SubjectMeta<'_>, _: &Policy) -> bool {
            true
        }
        fn prefilter(&self, _meta: &SubjectMeta<'_>, raw: &[u8]) -> bool {
            memchr::memmem::find(raw, b"shout").is_some()
        }
        fn inspect(&self, s: &mut Subject<'_>, _: &Policy, _: &mut Findings) {
            let v = s.json_mut().unwrap();
            let t = v["params"]["t"].as_str().unwrap().to_uppercase();
            v["params"]["t"] = t.into();
        }
    }

    fn meta() -> SubjectMeta<'static> {
        SubjectMeta {
            direction: Direction::ClientToServer,
            server: "s",
            kind: Kind::Request,
            method: Some("m"),
            id: None,
        }
    }

    #[test]
    fn a_failing_inspector_blocks_its_message() {
        let p = Pipeline::new(Policy::default(), vec![Box::new(Panics)]);
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let i = p.inspect(meta(), br#"{"id":1,"method":"m"}"#);
        std::panic::set_hook(prev);
        assert!(matches!(i.outcome, Outcome::Block { .. }));
        assert_eq!(i.alerts[0].rule, INSPECTOR_FAULT);
        assert_eq!(i.alerts[0].server.as_deref(), Some("s"));
    }

    #[test]
    fn untouched_messages_pass_and_changed_ones_are_rewritten() {
        let p = Pipeline::new(Policy::default(), vec![Box::new(Uppercases)]);
        let clean = br#"{"id":1,"method":"m","params":{"t":"quiet"}}"#;
        assert_eq!(p.inspect(meta(), clean).outcome, Outcome::Pass);
        let loud = br#"{"id":1,"method":"m","params":{"t":"shout"}}"#;
        assert_eq!(
            p.inspect(meta(), loud).outcome,
            Outcome::Rewrite(Bytes::from_static(
                br#"{"id":1,"method":"m","params":{"t":"SHOUT"}}"#
            ))
        );
    }
}
