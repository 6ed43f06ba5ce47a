//! Per-server tool allow/deny lists, enforced in the lists the client sees and at call time.

use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::jsonrpc::Kind;
use crate::mcp::methods::{TOOLS_CALL, TOOLS_LIST};
use crate::policy::{Action, Policy, ToolFilter, TOOL_POLICY};
use std::collections::HashMap;

pub struct ToolPolicy {
    filters: HashMap<String, ToolFilter>,
}

impl ToolPolicy {
    /// `filters`: server name → its lists; servers without lists are not inspected.
    pub fn new(filters: HashMap<String, ToolFilter>) -> Self {
        ToolPolicy {
            filters: filters.into_iter().filter(|(_, f)| !f.is_empty()).collect(),
        }
    }
}

impl Inspector for ToolPolicy {
    fn name(&self) -> &'static str {
        TOOL_POLICY
    }

    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool {
        let is_call = meta.direction == Direction::ClientToServer
            && meta.kind == Kind::Request
            && meta.method == Some(TOOLS_CALL);
        let is_list = meta.direction == Direction::ServerToClient
            && meta.kind == Kind::Result
            && meta.method == Some(TOOLS_LIST);
        (is_call || is_list)
            && policy.action(TOOL_POLICY) != Action::Off
            && self.filters.contains_key(meta.server)
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let filter = &self.filters[subject.meta.server];
        let action = policy.action(TOOL_POLICY);
        if subject.meta.kind == Kind::Request {
            let Some(tool) = subject.request_param("name") else {
                return;
            };
            if filter.permits(&tool) {
                return;
            }
            let taken = if action >= Action::Strip {
                ActionTaken::Blocked
            } else {
                ActionTaken::Alerted
            };
            findings.alert(
                Alert::new(
                    TOOL_POLICY,
                    "tool denied by policy",
                    Severity::Medium,
                    taken,
                    format!("call to denied tool `{tool}`"),
                )
                .evidence(tool.as_bytes()),
            );
            if taken == ActionTaken::Blocked {
                findings.block(format!("tool `{tool}` is denied by policy"));
            }
            return;
        }
        let denied: Vec<String> = subject
            .json()
            .and_then(|v| v.pointer("/result/tools"))
            .and_then(|t| t.as_array())
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.get("name").and_then(|n| n.as_str()))
                    .filter(|name| !filter.permits(name))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if denied.is_empty() {
            return;
        }
        let taken = if action >= Action::Strip {
            ActionTaken::Stripped
        } else {
            ActionTaken::Alerted
        };
        if taken == ActionTaken::Stripped {
            if let Some(tools) = subject
                .json_mut()
                .and_then(|v| v.pointer_mut("/result/tools"))
                .and_then(|t| t.as_array_mut())
            {
                tools.retain(|t| {
                    t.get("name")
                        .and_then(|n| n.as_str())
                        .is_none_or(|n| filter.permits(n))
                });
            }
        }
        let list = denied.join(", ");
        findings.alert(
            Alert::new(
                TOOL_POLICY,
                "tool denied by policy",
                Severity::Info,
                taken,
                format!("denied tools withheld from the list: {list}"),
            )
            .evidence(list.as_bytes()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{Outcome, Pipeline};
    use crate::jsonrpc::Id;
    use crate::policy::Mode;

    fn pipeline(mode: Mode) -> Pipeline {
        let mut f = HashMap::new();
        f.insert(
            "fs".to_string(),
            ToolFilter::new(&[], &["delete_*".into()]).unwrap(),
        );
        Pipeline::new(
            Policy::new(mode, HashMap::new()),
            vec![Box::new(ToolPolicy::new(f))],
        )
    }

    fn meta<'a>(
        server: &'a str,
        dir: Direction,
        kind: Kind,
        method: &'a str,
        id: &'a Id,
    ) -> SubjectMeta<'a> {
        SubjectMeta {
            direction: dir,
            server,
            kind,
            method: Some(method),
            id: Some(id),
        }
    }

    #[test]
    fn denied_call_is_blocked_and_permitted_call_passes() {
        let p = pipeline(Mode::Enforce);
        let id = Id("3".into());
        let m = meta(
            "fs",
            Direction::ClientToServer,
            Kind::Request,
            TOOLS_CALL,
            &id,
        );
        let i = p.inspect(m, br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_all","arguments":{}}}"#);
        assert!(matches!(i.outcome, Outcome::Block { .. }));
        assert_eq!(i.alerts[0].action, ActionTaken::Blocked);
        assert_eq!(i.alerts[0].jsonrpc_id.as_deref(), Some("3"));
        let ok = p.inspect(
            m,
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file"}}"#,
        );
        assert_eq!((ok.outcome, ok.alerts.len()), (Outcome::Pass, 0));
        let other = meta(
            "git",
            Direction::ClientToServer,
            Kind::Request,
            TOOLS_CALL,
            &id,
        );
        let i = p.inspect(
            other,
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_all"}}"#,
        );
        assert_eq!(
            i.outcome,
            Outcome::Pass,
            "lists of one server do not apply to another"
        );
    }

    #[test]
    fn denied_tools_are_withheld_from_lists_and_only_reported_in_monitor_mode() {
        let id = Id("1".into());
        let list = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read_file"},{"name":"delete_all"}],"nextCursor":"c"}}"#;
        let m = meta(
            "fs",
            Direction::ServerToClient,
            Kind::Result,
            TOOLS_LIST,
            &id,
        );
        let i = pipeline(Mode::Enforce).inspect(m, list);
        assert_eq!(
            i.outcome,
            Outcome::Rewrite(bytes::Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read_file"}],"nextCursor":"c"}}"#
            ))
        );
        assert_eq!(i.alerts[0].action, ActionTaken::Stripped);
        let i = pipeline(Mode::Monitor).inspect(m, list);
        assert_eq!(i.outcome, Outcome::Pass);
        assert_eq!(i.alerts[0].action, ActionTaken::Alerted);
        let clean = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read_file"}]}}"#;
        let i = pipeline(Mode::Enforce).inspect(m, clean);
        assert_eq!((i.outcome, i.alerts.len()), (Outcome::Pass, 0));
    }
}
