//! Runs the inspectors over one message and turns their findings into one outcome.

use super::literal_scan::LiteralScan;
use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::policy::Policy;
use bytes::Bytes;
use std::collections::BTreeMap;
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
    to_server: SharedLiterals,
    to_client: SharedLiterals,
}

/// Every inspector's trigger literals for one direction in one automaton: a message is scanned
/// once, not once per inspector (a scan of 64 KiB costs as much as the rest of the fast path).
struct SharedLiterals {
    scan: Option<LiteralScan>,
    /// For each literal, the inspectors (indices) it wakes.
    owners: Vec<Vec<usize>>,
    /// Which inspectors are woken this way.
    users: Vec<bool>,
}

impl SharedLiterals {
    fn new(inspectors: &[Box<dyn Inspector>], direction: Direction) -> Self {
        let mut by_literal: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut users = vec![false; inspectors.len()];
        for (i, inspector) in inspectors.iter().enumerate() {
            let Some(literals) = inspector.literals(direction) else {
                continue;
            };
            users[i] = true;
            for l in literals {
                let owners = by_literal.entry(l.to_ascii_lowercase()).or_default();
                if !owners.contains(&i) {
                    owners.push(i);
                }
            }
        }
        let (literals, owners): (Vec<String>, Vec<Vec<usize>>) = by_literal.into_iter().unzip();
        let scan = (!literals.is_empty()).then(|| LiteralScan::new(&literals));
        SharedLiterals {
            scan,
            owners,
            users,
        }
    }

    /// Which inspectors' literals occur in `raw`.
    fn woken(&self, raw: &[u8]) -> Vec<bool> {
        let mut woken = vec![false; self.users.len()];
        let Some(scan) = &self.scan else {
            return woken;
        };
        let wanted = self.users.iter().filter(|u| **u).count();
        let mut found = 0;
        scan.for_each(raw, |pattern| {
            for &i in &self.owners[pattern] {
                if !woken[i] {
                    woken[i] = true;
                    found += 1;
                }
            }
            found < wanted
        });
        woken
    }
}

impl Pipeline {
    pub fn new(policy: Policy, inspectors: Vec<Box<dyn Inspector>>) -> Self {
        Pipeline {
            to_server: SharedLiterals::new(&inspectors, Direction::ClientToServer),
            to_client: SharedLiterals::new(&inspectors, Direction::ServerToClient),
            inspectors,
            policy,
        }
    }

    /// Adds inspectors after the ones already there (stateful ones the stateless pipeline leaves
    /// out).
    pub fn extend(&mut self, more: Vec<Box<dyn Inspector>>) {
        self.inspectors.extend(more);
        self.to_server = SharedLiterals::new(&self.inspectors, Direction::ClientToServer);
        self.to_client = SharedLiterals::new(&self.inspectors, Direction::ServerToClient);
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
        let shared = match meta.direction {
            Direction::ClientToServer => &self.to_server,
            Direction::ServerToClient => &self.to_client,
        };
        let mut woken: Option<Vec<bool>> = None;
        for (i, inspector) in self.inspectors.iter().enumerate() {
            if !inspector.applies(&meta, &self.policy) {
                continue;
            }
            let concerned = if shared.users[i] {
                woken.get_or_insert_with(|| shared.woken(raw))[i]
                    || inspector.prefilter_beyond_literals(&meta, raw)
            } else {
                inspector.prefilter(&meta, raw)
            };
            if !concerned {
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

    /// Wakes on `needle` (any case) going to the client, or on a raw `!` beyond its literals.
    struct Needle(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Inspector for Needle {
        fn name(&self) -> &'static str {
            "needle"
        }
        fn applies(&self, _: &SubjectMeta<'_>, _: &Policy) -> bool {
            true
        }
        fn prefilter(&self, _: &SubjectMeta<'_>, _: &[u8]) -> bool {
            unreachable!("the shared scan decides for an inspector with literals")
        }
        fn literals(&self, direction: Direction) -> Option<Vec<String>> {
            (direction == Direction::ServerToClient).then(|| vec!["needle".to_string()])
        }
        fn prefilter_beyond_literals(&self, _: &SubjectMeta<'_>, raw: &[u8]) -> bool {
            raw.contains(&b'!')
        }
        fn inspect(&self, _: &mut Subject<'_>, _: &Policy, _: &mut Findings) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn inspectors_with_literals_run_only_when_the_shared_scan_or_their_own_check_wakes_them() {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p = Pipeline::new(Policy::default(), vec![Box::new(Needle(runs.clone()))]);
        let to_client = SubjectMeta {
            direction: Direction::ServerToClient,
            ..meta()
        };
        for (raw, expected) in [
            (&br#"{"id":1,"result":"hay"}"#[..], 0usize),
            (br#"{"id":1,"result":"a NeEdLe here"}"#, 1),
            (br#"{"id":1,"result":"hay!"}"#, 2),
        ] {
            p.inspect(to_client, raw);
            assert_eq!(
                runs.load(std::sync::atomic::Ordering::Relaxed),
                expected,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
