//! Inline inspectors: pass, rewrite or block a message before it moves on.
//!
//! Each inspector is a pure function of one message, the policy and read-only shared state. The
//! pipeline parses a message only when an interested inspector asks for its JSON, and re-serializes
//! it only when one changed it: a clean message leaves with the bytes it came with.

pub mod argument;
pub mod argument_strings;
pub mod base64_runs;
pub mod elicitation;
pub mod email;
pub mod entropy;
pub mod escalation;
pub mod exfil;
pub mod flow_guard;
pub mod literal_scan;
pub mod needle;
pub mod oauth;
pub mod param_inject;
pub mod path;
pub mod pipeline;
pub mod rate;
pub mod registry;
#[cfg(test)]
mod request_testkit;
pub mod rug_pull;
pub mod sampling;
pub mod secrets;
pub mod secrets_kinds;
pub mod sentences;
pub mod shadow;
pub mod shell;
pub mod smac1;
pub mod smac2;
pub mod smac5;
pub mod sql;
pub mod ssrf;
pub mod subject;
pub mod text;
pub mod token_replay;
pub mod tool_policy;
pub mod visible_text;
pub mod whitespace_stego;

pub use pipeline::{Inspection, Outcome, Pipeline, Prescan};
pub use subject::{Findings, Subject, SubjectMeta};

use crate::alert::Alert;
use crate::policy::Policy;
use bytes::Bytes;
use std::time::Instant;

/// A server→client message an inspector held back and whose time has come (e.g. the trailing
/// notification of a coalesced flood): the session sends it through the pipeline again.
#[derive(Debug)]
pub struct Deferred {
    pub server: String,
    pub raw: Bytes,
    /// Reported when the message is released (e.g. how many repeats were coalesced).
    pub alerts: Vec<Alert>,
}

pub trait Inspector: Send + Sync {
    /// Rule id(s) this inspector reports under, for diagnostics.
    fn name(&self) -> &'static str;

    /// Whether this inspector looks at messages like this one at all (direction, kind, method,
    /// server). Cheap: called for every message.
    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool;

    /// A fast look at the raw bytes; `false` means nothing here can concern this inspector.
    fn prefilter(&self, _meta: &SubjectMeta<'_>, _raw: &[u8]) -> bool {
        true
    }

    /// Trigger literals (ASCII case-insensitive) for messages going `direction`. An inspector that
    /// has them is woken by the pipeline's one shared scan of each message instead of scanning the
    /// message itself; [`Inspector::prefilter_beyond_literals`] then covers what literals cannot.
    fn literals(&self, _direction: crate::alert::Direction) -> Option<Vec<String>> {
        None
    }

    /// With [`Inspector::literals`]: whether the message concerns this inspector although none of
    /// its literals occur in it. It must be able to judge from the direction and the bytes alone
    /// (`message` None), so that it can run ahead of the inspection, on another thread, like the
    /// literal scan; during the inspection it gets the message, whose quick reads it may share.
    fn prefilter_beyond_literals(
        &self,
        _direction: crate::alert::Direction,
        _raw: &[u8],
        _message: Option<&Subject<'_>>,
    ) -> bool {
        false
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings);

    /// Messages held back earlier that are due at `now`. Inspectors have no timers; the session
    /// asks periodically.
    fn take_due(&self, _now: Instant) -> Vec<Deferred> {
        Vec::new()
    }
}
