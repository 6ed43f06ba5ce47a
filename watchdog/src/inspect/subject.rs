//! The message under inspection, parsed lazily, and what inspectors found in it.

use crate::alert::{Alert, Direction};
use crate::jsonrpc::{Id, Kind};
use serde_json::Value;

/// Where a message is and what it is, without its contents.
#[derive(Debug, Clone, Copy)]
pub struct SubjectMeta<'a> {
    pub direction: Direction,
    /// The configured name of the upstream server on the other end.
    pub server: &'a str,
    pub kind: Kind,
    /// The method; for a response, the method of the request it answers.
    pub method: Option<&'a str>,
    pub id: Option<&'a Id>,
}

pub struct Subject<'a> {
    pub meta: SubjectMeta<'a>,
    raw: &'a [u8],
    value: Option<Value>,
    unparsable: bool,
    changed: bool,
}

impl<'a> Subject<'a> {
    pub fn new(meta: SubjectMeta<'a>, raw: &'a [u8]) -> Self {
        Subject {
            meta,
            raw,
            value: None,
            unparsable: false,
            changed: false,
        }
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The message as JSON, parsed on first use.
    pub fn json(&mut self) -> Option<&Value> {
        self.parse();
        self.value.as_ref()
    }

    /// The message as mutable JSON; the message counts as changed from now on.
    pub fn json_mut(&mut self) -> Option<&mut Value> {
        self.parse();
        if self.value.is_some() {
            self.changed = true;
        }
        self.value.as_mut()
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    pub(crate) fn into_value(self) -> Option<Value> {
        self.value
    }

    fn parse(&mut self) {
        if self.value.is_none() && !self.unparsable {
            match serde_json::from_slice(self.raw) {
                Ok(v) => self.value = Some(v),
                Err(_) => self.unparsable = true,
            }
        }
    }
}

/// What the inspectors of one message found, and whether one of them stops it.
#[derive(Debug, Default)]
pub struct Findings {
    pub alerts: Vec<Alert>,
    /// Why the message is stopped (kept internal; the requester sees a generic message).
    pub block: Option<String>,
    /// What the requester is told instead of the generic message, when telling helps the user
    /// act (e.g. which command approves a changed tool).
    pub block_message: Option<String>,
    /// For a stopped request: the result to answer the requester with instead of an error (a
    /// server→client request declined on the user's behalf, e.g. `{"action":"decline"}`).
    pub answer: Option<Value>,
}

impl Findings {
    pub fn alert(&mut self, alert: Alert) {
        self.alerts.push(alert);
    }

    pub fn block(&mut self, reason: impl Into<String>) {
        self.block.get_or_insert_with(|| reason.into());
    }

    /// Answers the request with `result` in the recipient's name; the recipient never sees it
    /// (the first answer stands).
    pub fn answer(&mut self, result: Value) {
        self.answer.get_or_insert(result);
    }

    /// Stops the message and tells the requester `message` (unless another inspector stopped it
    /// first: the first reason stands).
    pub fn refuse(&mut self, reason: impl Into<String>, message: impl Into<String>) {
        if self.block.is_none() {
            self.block = Some(reason.into());
            self.block_message = Some(message.into());
        }
    }

    /// Stops a request and answers the requester with `result` as if its peer had (unless another
    /// inspector stopped it first).
    pub fn answer_instead(&mut self, reason: impl Into<String>, result: Value) {
        if self.block.is_none() {
            self.block = Some(reason.into());
            self.answer = Some(result);
        }
    }
}
