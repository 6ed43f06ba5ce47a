//! The one alert model every component raises.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::SystemTime;

/// Which way a message was travelling when it raised the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client → server (requests, notifications and responses the client sends).
    ClientToServer,
    /// Server → client.
    ServerToClient,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What the watchdog actually did about the finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionTaken {
    /// Reported only; the message went on unchanged.
    Alerted,
    /// The hostile part was removed; the rest went on.
    Stripped,
    /// The message was stopped; the requester got a JSON-RPC error.
    Blocked,
    /// The message was discarded (nobody waits for an answer).
    Dropped,
    /// A server process was restarted.
    Restarted,
    /// A server or process tree was killed.
    Killed,
    /// A server was given up on after repeated failures.
    Failed,
}

impl ActionTaken {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionTaken::Alerted => "alerted",
            ActionTaken::Stripped => "stripped",
            ActionTaken::Blocked => "blocked",
            ActionTaken::Dropped => "dropped",
            ActionTaken::Restarted => "restarted",
            ActionTaken::Killed => "killed",
            ActionTaken::Failed => "failed",
        }
    }
}

/// One finding, with the evidence to back it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Seconds since the Unix epoch, with fractions, when the alert was raised.
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    /// Rule id users know, e.g. `SMAC-5`, `TOOL-POLICY`, `FRAMING`.
    pub rule: String,
    /// Attack or fault class within the rule, e.g. `instruction block`, `oversize frame`.
    pub class: String,
    pub severity: Severity,
    pub server: Option<String>,
    pub direction: Option<Direction>,
    pub method: Option<String>,
    /// The JSON-RPC id as it appeared on the wire (raw JSON text).
    pub jsonrpc_id: Option<String>,
    pub action: ActionTaken,
    pub detail: String,
    /// Hex SHA-256 of the offending content.
    pub evidence_sha256: Option<String>,
    /// A short excerpt of the evidence with anything secret-looking masked.
    pub excerpt: Option<String>,
    /// In a repeat summary, how many further identical alerts were folded into this one; 0 otherwise.
    /// Lets stderr and the audit log record a flood without growing per repeat.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u64,
    /// For filesystem alerts (SCOPE-L4): who did what where, as the kernel monitor saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsRecord>,
}

/// The attributed filesystem operation behind a SCOPE-L4 alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRecord {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub operation: String,
    /// Normalized: `..` removed, symbolic links of the existing part resolved.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path2: Option<String>,
    /// allowed, failed (…), denied or killed.
    pub outcome: String,
    pub backend: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Alert {
    /// Starts an alert; fill the optional fields with the builder methods.
    pub fn new(
        rule: impl Into<String>,
        class: impl Into<String>,
        severity: Severity,
        action: ActionTaken,
        detail: impl Into<String>,
    ) -> Self {
        Alert {
            time: SystemTime::now(),
            rule: rule.into(),
            class: class.into(),
            severity,
            server: None,
            direction: None,
            method: None,
            jsonrpc_id: None,
            action,
            detail: detail.into(),
            evidence_sha256: None,
            excerpt: None,
            repeats: 0,
            fs: None,
        }
    }

    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = Some(direction);
        self
    }

    pub fn method(mut self, method: Option<&str>) -> Self {
        self.method = method.map(str::to_owned);
        self
    }

    pub fn fs(mut self, record: FsRecord) -> Self {
        self.fs = Some(record);
        self
    }

    pub fn jsonrpc_id(mut self, id: Option<&str>) -> Self {
        self.jsonrpc_id = id.map(str::to_owned);
        self
    }

    /// Records the evidence: its hash in full, and a short masked excerpt.
    pub fn evidence(mut self, evidence: &[u8]) -> Self {
        self.evidence_sha256 = Some(hex::encode(Sha256::digest(evidence)));
        self.excerpt = Some(crate::alert::excerpt::redacted_excerpt(evidence));
        self
    }
}

mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_micros(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}
