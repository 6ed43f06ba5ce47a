//! ELICITATION: a server asking the user, through the client, for passwords, tokens, API keys,
//! private keys, card numbers, identity numbers or one-time codes in a form (`elicitation/create`).
//! The spec forbids form-mode elicitation of sensitive information (it belongs in URL mode, where
//! the user types it into the service's own page), so such a request is declined on the user's
//! behalf: the watchdog answers the server `{"action":"decline"}` and the client never sees it.
//!
//! A form whose fields cannot carry a secret (a yes/no, a choice, a number) is left alone even when
//! its message mentions a password ("reset your password?").

use super::text::Normalized;
use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::jsonrpc::Kind;
use crate::policy::{Action, Policy};
use serde_json::{json, Value};

pub const ELICITATION: &str = "ELICITATION";
pub const ELICITATION_CREATE: &str = "elicitation/create";

/// Field names (lower case, separators removed) that ask for a secret; `=` means the whole name.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "=pwd",
    "passphrase",
    "passcode",
    "=pin",
    "cardpin",
    "apikey",
    "apitoken",
    "accesstoken",
    "authtoken",
    "secret",
    "privatekey",
    "sshkey",
    "seedphrase",
    "recoveryphrase",
    "mnemonic",
    "cardnumber",
    "creditcard",
    "ccnumber",
    "=cc",
    "cvv",
    "cvc",
    "securitycode",
    "=ssn",
    "socialsecurity",
    "=otp",
    "otpcode",
    "totp",
    "2fa",
    "mfacode",
    "twofactor",
    "verificationcode",
    "authcode",
    "bankaccount",
    "routingnumber",
    "=iban",
];

/// Phrases (normalized) that ask for a secret in a field's title or description or the message.
const SECRET_PHRASES: &[&str] = &[
    "password",
    "passphrase",
    "passcode",
    "api key",
    "api token",
    "access token",
    "auth token",
    "personal access token",
    "secret key",
    "client secret",
    "private key",
    "ssh key",
    "seed phrase",
    "recovery phrase",
    "mnemonic phrase",
    "credit card",
    "card number",
    "security code",
    "social security",
    "two-factor",
    "two factor",
    "one-time code",
    "one-time password",
    "one time password",
    "verification code",
    "mfa code",
    "authenticator code",
    "bank account number",
    "routing number",
];

/// Short phrases matched as whole words only.
const SECRET_WORDS: &[&str] = &["cvv", "cvc", "ssn", "otp", "2fa", "iban", "pin"];

pub struct Elicitation;

impl Inspector for Elicitation {
    fn name(&self) -> &'static str {
        ELICITATION
    }

    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool {
        meta.direction == Direction::ServerToClient
            && meta.kind == Kind::Request
            && meta.method == Some(ELICITATION_CREATE)
            && policy.action_for(ELICITATION, Severity::High) != Action::Off
    }

    fn inspect(&self, s: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let server = s.meta.server;
        let Some(params) = s.json().and_then(|v| v.get("params")) else {
            return;
        };
        // URL mode is where the spec sends sensitive input: the user enters it on the service's page.
        if params.get("mode").and_then(Value::as_str) == Some("url") {
            return;
        }
        let Some(what) = asks_for_secret(params) else {
            return;
        };
        let decline = policy.action_for(ELICITATION, Severity::High) >= Action::Strip;
        let (taken, fate) = if decline {
            (
                ActionTaken::Blocked,
                "declined on the user's behalf; the client never saw it",
            )
        } else {
            (ActionTaken::Alerted, "relayed (policy)")
        };
        let evidence = serde_json::to_vec(params).unwrap_or_default();
        findings.alert(
            Alert::new(
                ELICITATION,
                "sensitive data request",
                Severity::High,
                taken,
                format!(
                    "server `{server}` asked the user for {what} in an elicitation form; {fate}"
                ),
            )
            .evidence(&evidence),
        );
        if decline {
            findings.answer(json!({"action": "decline"}));
        }
    }
}

/// What secret the form asks for (for the alert), if it asks for one.
fn asks_for_secret(params: &Value) -> Option<String> {
    let props = params
        .pointer("/requestedSchema/properties")
        .and_then(Value::as_object)?;
    let mut text_fields = 0;
    for (name, prop) in props {
        if !carries_text(prop) {
            continue;
        }
        text_fields += 1;
        if secret_name(name) {
            return Some(format!("a secret (field `{name}`)"));
        }
        let words: String = ["title", "description"]
            .iter()
            .filter_map(|k| prop.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(p) = secret_phrase(&words) {
            return Some(format!("a {p} (field `{name}`)"));
        }
    }
    let message = params.get("message").and_then(Value::as_str)?;
    if text_fields > 0 {
        if let Some(p) = secret_phrase(message) {
            return Some(format!("a {p} (message)"));
        }
    }
    None
}

/// Whether a field can take free text: strings without a fixed set of values.
fn carries_text(prop: &Value) -> bool {
    let fixed = ["enum", "oneOf", "anyOf", "const"]
        .iter()
        .any(|k| prop.get(*k).is_some());
    let typ = prop.get("type").and_then(Value::as_str);
    !fixed
        && matches!(typ, Some("string") | None)
        && !matches!(
            prop.get("format").and_then(Value::as_str),
            Some("date" | "date-time" | "email" | "uri")
        )
}

fn secret_name(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    // Any `…token` field: GitHub, Slack, npm, refresh, session tokens alike.
    squashed.ends_with("token")
        || SECRET_NAMES.iter().any(|n| match n.strip_prefix('=') {
            Some(whole) => squashed == whole,
            None => squashed.contains(n),
        })
}

fn secret_phrase(text: &str) -> Option<&'static str> {
    let t = Normalized::new(text).text;
    if let Some(p) = SECRET_PHRASES.iter().find(|p| t.contains(*p)) {
        return Some(p);
    }
    SECRET_WORDS.iter().copied().find(|w| {
        t.match_indices(w).any(|(at, _)| {
            t[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric())
                && t[at + w.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::{Inspection, Outcome, Pipeline};
    use crate::jsonrpc::Id;
    use crate::policy::Mode;
    use std::collections::HashMap;

    fn inspect(mode: Mode, params: Value) -> Inspection {
        let p = Pipeline::new(
            Policy::new(mode, HashMap::new()),
            vec![Box::new(Elicitation)],
        );
        let raw = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": 3, "method": ELICITATION_CREATE, "params": params}),
        )
        .unwrap();
        let id = Id("3".into());
        p.inspect(
            SubjectMeta {
                direction: Direction::ServerToClient,
                server: "s",
                kind: Kind::Request,
                method: Some(ELICITATION_CREATE),
                id: Some(&id),
            },
            &raw,
        )
    }

    fn form(message: &str, props: Value) -> Value {
        json!({"message": message, "requestedSchema": {"type": "object", "properties": props}})
    }

    #[test]
    fn credential_forms_are_declined_for_the_user() {
        let attacks = [
            form("Sign in", json!({"password": {"type": "string"}})),
            form("Continue", json!({"github_token": {"type": "string"}})),
            form(
                "Setup",
                json!({"key": {"type": "string", "title": "OpenAI API key"}}),
            ),
            form(
                "Verify",
                json!({"code": {"type": "string", "description": "The 6-digit code from your authenticator: 2FA"}}),
            ),
            form(
                "Payment",
                json!({"card_number": {"type": "string"}, "cvv": {"type": "string"}}),
            ),
            form("Identity", json!({"SSN": {"type": "string"}})),
            form(
                "Enter your SSH private key to continue",
                json!({"value": {"type": "string"}}),
            ),
            form(
                "Wallet",
                json!({"words": {"type": "string", "title": "Seed phrase"}}),
            ),
        ];
        for p in attacks {
            let i = inspect(Mode::Enforce, p.clone());
            assert_eq!(
                i.outcome,
                Outcome::Answer(bytes::Bytes::from_static(br#"{"action":"decline"}"#)),
                "{p}"
            );
            assert_eq!(
                (i.alerts[0].rule.as_str(), i.alerts[0].action),
                (ELICITATION, ActionTaken::Blocked)
            );
        }
    }

    #[test]
    fn ordinary_forms_pass() {
        let benign = [
            form(
                "Please provide your GitHub username",
                json!({"username": {"type": "string", "title": "GitHub username"}}),
            ),
            form("What is your name?", json!({"name": {"type": "string"}})),
            form(
                "Pick a date",
                json!({"when": {"type": "string", "format": "date"}}),
            ),
            form(
                "Choose one",
                json!({"size": {"type": "string", "enum": ["s", "m", "l"]}}),
            ),
            form(
                "Do you want to reset your password?",
                json!({"confirm": {"type": "boolean"}}),
            ),
            form(
                "How many tokens may the summary use?",
                json!({"count": {"type": "integer"}}),
            ),
            form(
                "Your contact e-mail",
                json!({"email": {"type": "string", "format": "email"}}),
            ),
            form(
                "Shipping address",
                json!({"street": {"type": "string"}, "pincode_area": {"type": "string", "title": "Postal area"}}),
            ),
        ];
        for p in benign {
            let i = inspect(Mode::Enforce, p.clone());
            assert_eq!((i.outcome, i.alerts.len()), (Outcome::Pass, 0), "{p}");
        }
        // URL mode is the spec's place for secrets.
        let url = json!({"mode": "url", "message": "Enter your API key on the provider's page", "url": "https://example.com/key", "elicitationId": "e1"});
        assert_eq!(inspect(Mode::Enforce, url).outcome, Outcome::Pass);
    }

    #[test]
    fn monitor_mode_relays_with_an_alert() {
        let i = inspect(
            Mode::Monitor,
            form("Sign in", json!({"password": {"type": "string"}})),
        );
        assert_eq!(
            (i.outcome, i.alerts[0].action),
            (Outcome::Pass, ActionTaken::Alerted)
        );
    }
}
