//! Inline inspectors: pass, rewrite or block a message before it moves on.
//!
//! Each inspector is a pure function of one message, the policy and read-only shared state. The
//! pipeline parses a message only when an interested inspector asks for its JSON, and re-serializes
//! it only when one changed it: a clean message leaves with the bytes it came with.

pub mod elicitation;
pub mod param_inject;
pub mod pipeline;
pub mod registry;
pub mod rug_pull;
pub mod sampling;
pub mod sentences;
pub mod shadow;
pub mod subject;
pub mod text;
pub mod tool_policy;

pub use pipeline::{Inspection, Outcome, Pipeline};
pub use subject::{Findings, Subject, SubjectMeta};

use crate::policy::Policy;

pub trait Inspector: Send + Sync {
    /// Rule id(s) this inspector reports under, for diagnostics.
    fn name(&self) -> &'static str;

    /// Whether this inspector looks at messages like this one at all (direction, kind, method,
    /// server). Cheap: called for every message.
    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool;

    /// A fast look at the raw bytes; `false` means nothing here can concern this inspector.
    fn prefilter(&self, _raw: &[u8]) -> bool {
        true
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings);
}
