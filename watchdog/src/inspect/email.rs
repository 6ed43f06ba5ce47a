//! EMAIL-INJECT: hidden recipients and forged headers in the arguments of a mail tool.
//!
//! Two checks. A header field (`subject`, `from`, `to`, a display name) whose value carries a line
//! break followed by a header (`\r\nBcc: evil@…`, also percent- or backslash-escaped) adds
//! recipients the user never sees: a text detector. A `bcc` argument whose domains appear nowhere
//! among the visible recipients may be the model copying mail out on someone else's instruction:
//! that needs the sibling arguments, so it is a small inspector of its own.

use super::argument::{self, words};
use super::text::SharedCheck;
use super::text::{Hit, Replacement, Site, TextDetector, TextView};
use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::jsonrpc::Kind;
use crate::mcp::methods::TOOLS_CALL;
use crate::policy::{Action, Policy};
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::LazyLock;

pub const RULE: &str = "EMAIL-INJECT";

const MAX_VALUE: usize = 64 * 1024;

/// Keys that are header fields of a message whatever the tool.
const HEADER_KEYS: &[&str] = &[
    "subject",
    "cc",
    "bcc",
    "sender",
    "recipient",
    "recipients",
    "replyto",
];
/// Keys that are header fields when the tool sends mail.
const MAIL_TOOL_KEYS: &[&str] = &["to", "from", "name", "displayname"];

/// A line break, then a header name and a colon.
static INJECTED_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\r\n]+[ \t]*([a-z][a-z0-9-]{0,40})[ \t]*:").expect("header regex")
});
/// A body that opens with recipient headers (a mailer building raw MIME takes them as headers).
static LEADING_RECIPIENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A[\r\n]+[ \t]*(?:bcc|cc|to)[ \t]*:[^\r\n]*@").expect("body regex")
});

fn is_mail_tool(tool: Option<&str>) -> bool {
    tool.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        [
            "mail", "smtp", "message", "draft", "send", "reply", "forward",
        ]
        .iter()
        .any(|w| t.contains(w))
    })
}

/// The header key a site is, if any (`reply_to` → `replyto`).
fn header_key(site: &Site) -> Option<String> {
    let key = words(site.key.as_deref()?).concat();
    let mail = is_mail_tool(site.tool.as_deref());
    let header =
        HEADER_KEYS.contains(&key.as_str()) || mail && MAIL_TOOL_KEYS.contains(&key.as_str());
    (header || mail && key == "body").then_some(key)
}

/// Line breaks as they can travel inside a value: raw, percent-encoded, backslash-escaped.
fn with_line_breaks(s: &str) -> String {
    let mut s = s.replace("\\r", "\r").replace("\\n", "\n");
    for _ in 0..2 {
        if !s.contains('%') {
            break;
        }
        s = percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned();
    }
    s
}

pub struct HeaderInjection;

impl TextDetector for HeaderInjection {
    fn name(&self) -> &'static str {
        "email-header"
    }

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
    }

    /// Judges what the client sends to servers.
    fn direction(&self) -> Option<crate::alert::Direction> {
        Some(crate::alert::Direction::ClientToServer)
    }

    fn triggers(&self) -> &'static [&'static str] {
        &["bcc", "cc:", "%0a", "%0d"]
    }

    fn shared_raw_check(&self) -> Option<SharedCheck> {
        Some(SharedCheck::RequestArguments)
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        argument::is_request_argument(meta, site) && header_key(site).is_some()
    }

    fn scan(&self, text: &TextView<'_>, hits: &mut Vec<Hit>) {
        if text.normalized.text.len() > MAX_VALUE {
            return;
        }
        let Some(key) = header_key(text.site) else {
            return;
        };
        let s = with_line_breaks(&text.normalized.text);
        let found = if key == "body" {
            LEADING_RECIPIENTS.is_match(&s).then(|| {
                (
                    Severity::High,
                    "body opens with recipient headers".to_string(),
                )
            })
        } else {
            INJECTED_HEADER.captures(&s).map(|c| {
                let header = c[1].to_string();
                if matches!(header.as_str(), "bcc" | "cc" | "to") {
                    (
                        Severity::Critical,
                        format!("line break and `{header}:` injected in `{key}`"),
                    )
                } else {
                    (
                        Severity::High,
                        format!("line break and `{header}:` header injected in `{key}`"),
                    )
                }
            })
        };
        if let Some((severity, detail)) = found {
            hits.push(Hit {
                rule: RULE,
                class: "hidden recipients",
                severity,
                range: 0..text.original.len(),
                replacement: Replacement::None,
                detail,
            });
        }
    }
}

/// Domains of the addresses in a recipient value (string or list, `,`/`;` separated,
/// `Name <a@b>` forms).
fn domains(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            for part in s.split([',', ';']) {
                let addr = part
                    .rsplit('<')
                    .next()
                    .unwrap_or(part)
                    .trim()
                    .trim_end_matches('>');
                if let Some((_, domain)) = addr.rsplit_once('@') {
                    out.insert(domain.trim().trim_end_matches('.').to_ascii_lowercase());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| domains(i, out)),
        Value::Object(map) => map.values().for_each(|i| domains(i, out)),
        _ => {}
    }
}

/// A `bcc` argument to domains that none of the visible recipients or the sender share.
pub struct UnexpectedBcc;

impl Inspector for UnexpectedBcc {
    fn name(&self) -> &'static str {
        "email-bcc"
    }

    fn applies(&self, meta: &SubjectMeta<'_>, _policy: &Policy) -> bool {
        meta.direction == Direction::ClientToServer
            && meta.kind == Kind::Request
            && meta.method == Some(TOOLS_CALL)
    }

    /// Woken by the pipeline's shared scan: a byte-by-byte look of its own cost more than the
    /// rest of a small call's checks together.
    fn literals(&self, direction: Direction) -> Option<Vec<String>> {
        (direction == Direction::ClientToServer).then(|| vec!["bcc".to_owned()])
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let Some(Value::Object(args)) = subject.json().and_then(|m| m.pointer("/params/arguments"))
        else {
            return;
        };
        let mut hidden = BTreeSet::new();
        let mut visible = BTreeSet::new();
        for (key, value) in args {
            match words(key).concat().as_str() {
                "bcc" => domains(value, &mut hidden),
                "to" | "cc" | "from" | "sender" | "replyto" | "recipient" | "recipients" => {
                    domains(value, &mut visible)
                }
                _ => {}
            }
        }
        let foreign: Vec<&String> = hidden.difference(&visible).collect();
        if foreign.is_empty() {
            return;
        }
        let severity = Severity::Medium;
        let taken = match policy.action_for(RULE, severity) {
            Action::Off => return,
            Action::Alert => ActionTaken::Alerted,
            Action::Strip | Action::Block => ActionTaken::Blocked,
        };
        let list = foreign
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        findings.alert(
            Alert::new(
                RULE,
                "hidden recipients",
                severity,
                taken,
                format!("bcc to {list}, a domain none of the visible recipients share"),
            )
            .evidence(list.as_bytes()),
        );
        if taken == ActionTaken::Blocked {
            findings.block(format!("{RULE}: hidden recipients"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::request_testkit::*;
    use crate::inspect::{Outcome, Pipeline};
    use crate::jsonrpc::Id;
    use serde_json::json;

    fn header(tool: &str, args: Value) -> Option<Severity> {
        worst(&hits(Box::new(HeaderInjection), &call(tool, args)), RULE)
    }

    fn bcc_alerts(args: Value) -> Vec<Alert> {
        let raw = serde_json::to_vec(&call("send_email", args)).unwrap();
        let id = Id("7".into());
        let meta = SubjectMeta {
            direction: Direction::ClientToServer,
            server: "s",
            kind: Kind::Request,
            method: Some(TOOLS_CALL),
            id: Some(&id),
        };
        let p = Pipeline::new(Policy::default(), vec![Box::new(UnexpectedBcc)]);
        let i = p.inspect(meta, &raw);
        assert_eq!(
            i.outcome,
            Outcome::Pass,
            "a bcc alone never blocks by default"
        );
        i.alerts
    }

    #[test]
    fn injected_recipient_headers_are_critical() {
        for args in [
            json!({"to": "a@x.com", "subject": "Hi\r\nBcc: evil@y.com"}),
            json!({"to": "a@x.com", "subject": "Hi\nCC: evil@y.com"}),
            json!({"to": "a@x.com%0abcc:evil@y.com", "subject": "Hi"}),
            json!({"to": "a@x.com%0D%0ABcc:%20evil@y.com"}),
            json!({"to": "a@x.com%250abcc:evil@y.com"}),
            json!({"from": "me@x.com\\r\\nBcc: evil@y.com"}),
            json!({"to": "a@x.com", "reply_to": "r@x.com\nTo: evil@y.com"}),
            json!({"to": "a@x.com", "subject": "Hi\r\nB\u{200b}cc: evil@y.com"}),
            json!({"to": "a@x.com", "subject": "Hi\r\n  bcc : evil@y.com"}),
        ] {
            assert_eq!(
                header("send_email", args.clone()),
                Some(Severity::Critical),
                "{args}"
            );
        }
        let (outcome, _) = through_pipeline(
            Box::new(HeaderInjection),
            &call(
                "send_email",
                json!({"to": "a@x.com", "subject": "Hi\r\nBcc: evil@y.com"}),
            ),
        );
        assert!(matches!(outcome, Outcome::Block { .. }));
    }

    #[test]
    fn other_injected_headers_and_leading_body_headers_are_high() {
        assert_eq!(
            header(
                "send_email",
                json!({"subject": "Hi\r\nContent-Type: text/html"})
            ),
            Some(Severity::High)
        );
        assert_eq!(
            header(
                "send_email",
                json!({"to": "a@x.com", "body": "\r\nBcc: evil@y.com\r\n\r\nHello"})
            ),
            Some(Severity::High)
        );
        assert_eq!(
            header("create_ticket", json!({"subject": "Outage\nX-Priority: 1"})),
            Some(Severity::High)
        );
    }

    #[test]
    fn ordinary_mail_passes() {
        for args in [
            json!({"to": "alice@example.com, bob@example.com", "cc": "carol@example.com", "subject": "Lunch: 12:30?"}),
            json!({"to": ["alice@example.com", "bob@partner.org"], "subject": "Re: Fwd: plan"}),
            json!({"to": "Alice <alice@example.com>; Bob <bob@example.com>", "subject": "Agenda"}),
            json!({"to": "a@x.com", "body": "Hi,\n\nCc: finance (forwarded below)\nTo: whom it may concern:\n\n> From: x\n> To: y\n"}),
            json!({"to": "a@x.com", "subject": "Réunion : 東京 🎉", "body": "Voir ci-joint."}),
            json!({"to": "a@x.com", "subject": "Ratio 3:1 and 10:30 meeting"}),
        ] {
            let found = hits(Box::new(HeaderInjection), &call("send_email", args.clone()));
            assert!(found.is_empty(), "{args}: {found:?}");
        }
        // Not a mail tool: a commit message's `to:` lines are its own business.
        let found = hits(
            Box::new(HeaderInjection),
            &call(
                "git_commit",
                json!({"message": "Fix\n\nto: review\ncc: team"}),
            ),
        );
        assert!(found.is_empty());
    }

    #[test]
    fn bcc_to_an_outside_domain_is_medium() {
        let alerts = bcc_alerts(
            json!({"to": "alice@example.com", "bcc": "archive@evil.example", "subject": "Q3"}),
        );
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].severity, Severity::Medium);
        assert_eq!(alerts[0].rule, RULE);
        let alerts = bcc_alerts(
            json!({"to": ["alice@example.com"], "BCC": ["Boss <boss@example.com>", "x@evil.example"]}),
        );
        assert_eq!(alerts.len(), 1);
        // Same domain as a visible recipient or the sender: a normal blind copy.
        assert!(
            bcc_alerts(json!({"to": "alice@example.com", "bcc": "records@example.com"})).is_empty()
        );
        assert!(bcc_alerts(
            json!({"from": "me@corp.example", "to": "x@client.example", "bcc": "crm@corp.example"})
        )
        .is_empty());
        assert!(
            bcc_alerts(json!({"to": "alice@example.com", "subject": "no blind copy"})).is_empty()
        );
    }

    #[test]
    fn everyday_calls_pass() {
        assert_quiet_on_everyday_calls(|| Box::new(HeaderInjection));
        for message in everyday_calls() {
            let raw = serde_json::to_vec(&message).unwrap();
            let id = Id("7".into());
            let method = message["method"].as_str().unwrap().to_string();
            let meta = SubjectMeta {
                direction: Direction::ClientToServer,
                server: "s",
                kind: Kind::Request,
                method: Some(&method),
                id: Some(&id),
            };
            let p = Pipeline::new(Policy::default(), vec![Box::new(UnexpectedBcc)]);
            assert!(p.inspect(meta, &raw).alerts.is_empty(), "{message}");
        }
    }

    #[test]
    fn real_server_traffic_passes() {
        assert_silent_on_real_servers(|| Box::new(HeaderInjection));
    }
}
