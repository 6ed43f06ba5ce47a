//! Text inspection: every string of a message that can carry words to the model or to a server,
//! judged by detector families (one file each, beside this one) on a normalized copy.
//!
//! One [`TextInspector`](inspector::TextInspector) drives all detectors so that a message is parsed,
//! walked and normalized once. Detectors report [`Hit`]s with byte ranges in the *original* string;
//! the inspector asks the policy what to do with each and applies the edits.

pub mod edits;
pub mod inspector;
pub mod normalize;
pub mod sites;

pub use edits::{apply_edits, Edit};
pub use inspector::TextInspector;
pub use normalize::Normalized;
pub use sites::{Role, Site};

use crate::alert::Severity;
use crate::inspect::SubjectMeta;
use std::ops::Range;

/// A string under inspection.
pub struct TextView<'a> {
    pub meta: &'a SubjectMeta<'a>,
    pub site: &'a Site,
    /// The string as it travels (JSON-decoded).
    pub original: &'a str,
    /// The matching copy: see [`Normalized`]. Never sent anywhere.
    pub normalized: &'a Normalized,
}

/// What to put where a hit was, if the policy says strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// Remove the range.
    Remove,
    /// Put this text instead (e.g. `[REDACTED:aws-access-key]`).
    With(String),
    /// Nothing can be cut out: stripping means blocking the message (request-side findings).
    None,
}

/// One finding in one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: &'static str,
    pub class: &'static str,
    pub severity: Severity,
    /// Byte range in [`TextView::original`] that is hostile (the evidence, and what a strip removes).
    pub range: Range<usize>,
    pub replacement: Replacement,
    /// For people: what was found, without repeating a secret.
    pub detail: String,
}

/// Raw checks several detectors share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedCheck {
    /// A disguised word (homoglyphs next to Latin letters, fullwidth or tag characters:
    /// [`crate::inspect::smac5::disguised`]): triggers spelled so as to slip past the literals.
    Disguise,
    /// A request that carries arguments, or a short value ([`crate::inspect::argument::raw_check`]):
    /// what the request-side families read even without a trigger literal.
    RequestArguments,
}

impl SharedCheck {
    pub const ALL: [SharedCheck; 2] = [SharedCheck::Disguise, SharedCheck::RequestArguments];

    /// Over `raw`, which are `message`'s bytes when it is given.
    pub fn run(self, raw: &[u8], message: Option<&crate::inspect::Subject<'_>>) -> bool {
        match self {
            SharedCheck::Disguise => crate::inspect::smac5::disguised(raw),
            SharedCheck::RequestArguments => match message {
                Some(message) => crate::inspect::argument::message_check(message),
                None => crate::inspect::argument::raw_check(raw),
            },
        }
    }
}

pub trait TextDetector: Send + Sync {
    fn name(&self) -> &'static str;

    /// Every rule this detector's hits carry. A detector whose rules the policy all turns `off`
    /// is left out of the pipeline, its trigger literals out of the shared scan.
    fn rules(&self) -> &'static [&'static str];

    /// The one direction this detector judges (`None`: both). Lets each direction's prefilter
    /// carry only the triggers that can matter to it.
    fn direction(&self) -> Option<crate::alert::Direction> {
        None
    }

    /// Literals (ASCII case-insensitive) whose absence from a message's raw bytes proves this
    /// detector has nothing to find there. Include JSON escape spellings (`\u200b`) when a trigger
    /// can travel escaped. An empty list means "use [`TextDetector::raw_check`] only".
    fn triggers(&self) -> &'static [&'static str];

    /// A cheap check over the raw message for what literals cannot express (e.g. a long base64
    /// run). Called only when no trigger matched.
    fn raw_check(&self, _raw: &[u8]) -> bool {
        false
    }

    /// A raw check this detector shares with others (besides its own [`TextDetector::raw_check`]):
    /// the inspector runs each shared check at most once per text, for every detector that asks.
    fn shared_raw_check(&self) -> Option<SharedCheck> {
        None
    }

    /// Whether strings at this site concern this detector (direction, method, role, key).
    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool;

    /// Whether this detector also reads the adjacent text blocks of a tool result's `content[]`
    /// as one text (blocks joined without separator), so that a finding split across blocks is
    /// still found. Only findings that cross a block boundary are taken from that reading; they
    /// are cut back into per-block hits.
    fn reads_joined_blocks(&self) -> bool {
        false
    }

    fn scan(&self, text: &TextView<'_>, hits: &mut Vec<Hit>);
}
