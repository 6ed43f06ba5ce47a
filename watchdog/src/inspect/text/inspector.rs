//! The one inspector that runs every text detector over every text site of a message.

use super::sites::visit_texts;
use super::{
    apply_edits, Edit, Hit, Normalized, Replacement, Role, SharedCheck, Site, TextDetector,
    TextView,
};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::inspect::{Findings, Inspector, Subject, SubjectMeta};
use crate::jsonrpc::Kind;
use crate::mcp::methods::TOOLS_CALL;
use crate::policy::{Action, Policy};
use aho_corasick::{AhoCorasick, AhoCorasickKind};
use serde_json::Value;
use std::collections::BTreeMap;

/// Rule id for messages whose text is too large to inspect.
pub const INSPECT_LIMIT: &str = "INSPECT-LIMIT";

/// Largest message whose text is inspected (16 MiB); larger ones get an INSPECT-LIMIT alert.
pub const MAX_INSPECTED_BYTES: usize = 16 << 20;

pub struct TextInspector {
    detectors: Vec<Box<dyn TextDetector>>,
    to_server: DirectionSet,
    to_client: DirectionSet,
}

/// The detectors that concern one direction, and the union of their trigger literals (ASCII
/// case-insensitive): traffic one way never pays for the other way's detectors.
struct DirectionSet {
    members: Vec<usize>,
    triggers: AhoCorasick,
    /// For each trigger literal, the detectors (indices into `detectors`) it wakes.
    owners: Vec<Vec<usize>>,
    literals: Vec<String>,
}

impl DirectionSet {
    fn new(detectors: &[Box<dyn TextDetector>], direction: Direction) -> Self {
        let members: Vec<usize> = (0..detectors.len())
            .filter(|&i| detectors[i].direction().is_none_or(|d| d == direction))
            .collect();
        let mut by_literal: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in &members {
            for t in detectors[i].triggers() {
                let owners = by_literal.entry(t.to_ascii_lowercase()).or_default();
                if !owners.contains(&i) {
                    owners.push(i);
                }
            }
        }
        let (literals, owners): (Vec<String>, Vec<Vec<usize>>) = by_literal.into_iter().unzip();
        // The pipeline's shared DFA scans every message; this compact automaton (quick to build, small
        // in memory) only reads the strings of messages that scan woke the inspector for.
        let triggers = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&literals)
            .expect("trigger literals build");
        DirectionSet {
            members,
            triggers,
            owners,
            literals,
        }
    }
}

impl TextInspector {
    pub fn new(detectors: Vec<Box<dyn TextDetector>>) -> Self {
        TextInspector {
            to_server: DirectionSet::new(&detectors, Direction::ClientToServer),
            to_client: DirectionSet::new(&detectors, Direction::ServerToClient),
            detectors,
        }
    }

    fn set(&self, direction: Direction) -> &DirectionSet {
        match direction {
            Direction::ClientToServer => &self.to_server,
            Direction::ServerToClient => &self.to_client,
        }
    }

    fn worth_a_look(&self, set: &DirectionSet, bytes: &[u8]) -> bool {
        set.triggers.is_match(bytes) || self.raw_checks_wake_any(set, bytes, None)
    }

    /// Whether some member's raw check (or a shared check, run at most once) finds something in
    /// `bytes`, which are `message`'s when it is given.
    fn raw_checks_wake_any(
        &self,
        set: &DirectionSet,
        bytes: &[u8],
        message: Option<&Subject<'_>>,
    ) -> bool {
        let checks = RawChecks::new(bytes, message);
        set.members
            .iter()
            .any(|&i| checks.wake(&*self.detectors[i]))
    }

    /// The detectors whose own triggers (or raw check) occur in `bytes`: a common word that wakes
    /// one family does not make every family read the string.
    fn woken(&self, set: &DirectionSet, bytes: &[u8]) -> Vec<usize> {
        let mut woken: Vec<usize> = Vec::new();
        for m in set.triggers.find_overlapping_iter(bytes) {
            for &i in &set.owners[m.pattern().as_usize()] {
                if !woken.contains(&i) {
                    woken.push(i);
                }
            }
            if woken.len() == set.members.len() {
                return woken;
            }
        }
        let checks = RawChecks::new(bytes, None);
        for &i in &set.members {
            if !woken.contains(&i) && checks.wake(&*self.detectors[i]) {
                woken.push(i);
            }
        }
        woken
    }

    /// Runs the detectors over one message; returns hits per site (for `scan-text` and tests too).
    pub fn scan(&self, message: &Value, meta: &SubjectMeta<'_>) -> Vec<(Site, String, Vec<Hit>)> {
        let mut found = Vec::new();
        let set = self.set(meta.direction);
        visit_texts(message, meta, &mut |site, text| {
            let woken = self.woken(set, text.as_bytes());
            let applicable: Vec<&dyn TextDetector> = woken
                .into_iter()
                .map(|i| self.detectors[i].as_ref())
                .filter(|d| d.applies(meta, site))
                .collect();
            if applicable.is_empty() {
                return;
            }
            let normalized = Normalized::new(text);
            let view = TextView {
                meta,
                site,
                original: text,
                normalized: &normalized,
            };
            let mut hits = Vec::new();
            for d in applicable {
                scan_with(d, &view, &mut hits);
            }
            if !hits.is_empty() {
                found.push((site.clone(), text.to_string(), hits));
            }
        });
        self.scan_joined_blocks(message, meta, &mut found);
        found
    }

    /// The joined reading of adjacent text blocks (see [`TextDetector::reads_joined_blocks`]):
    /// a tag or phrase cut in two by a block boundary is one finding for the model that reads it.
    fn scan_joined_blocks(
        &self,
        message: &Value,
        meta: &SubjectMeta<'_>,
        found: &mut Vec<(Site, String, Vec<Hit>)>,
    ) {
        if meta.direction != Direction::ServerToClient
            || meta.kind != Kind::Result
            || meta.method != Some(TOOLS_CALL)
        {
            return;
        }
        let Some(Value::Array(items)) = message.pointer("/result/content") else {
            return;
        };
        let site = Site {
            role: Role::Content,
            pointer: "/result/content".into(),
            key: Some("content".into()),
            is_key: false,
            tool: None,
        };
        let joiners: Vec<&dyn TextDetector> = self
            .detectors
            .iter()
            .map(|d| d.as_ref())
            .filter(|d| d.reads_joined_blocks() && d.applies(meta, &site))
            .collect();
        if joiners.is_empty() {
            return;
        }
        let mut run: Vec<(usize, &str)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let text = match item.get("type").and_then(Value::as_str) {
                Some("text") => item.get("text").and_then(Value::as_str),
                _ => None,
            };
            match text {
                Some(t) => run.push((i, t)),
                None => {
                    self.scan_run(&run, &joiners, meta, &site, found);
                    run.clear();
                }
            }
        }
        self.scan_run(&run, &joiners, meta, &site, found);
    }

    fn scan_run(
        &self,
        run: &[(usize, &str)],
        joiners: &[&dyn TextDetector],
        meta: &SubjectMeta<'_>,
        site: &Site,
        found: &mut Vec<(Site, String, Vec<Hit>)>,
    ) {
        if run.len() < 2 {
            return;
        }
        let joined: String = run.iter().map(|(_, t)| *t).collect();
        if !self.worth_a_look(self.set(meta.direction), joined.as_bytes()) {
            return;
        }
        let mut starts = Vec::with_capacity(run.len());
        let mut at = 0;
        for (_, t) in run {
            starts.push(at);
            at += t.len();
        }
        let block_of = |offset: usize| starts.partition_point(|&s| s <= offset) - 1;
        let normalized = Normalized::new(&joined);
        let view = TextView {
            meta,
            site,
            original: &joined,
            normalized: &normalized,
        };
        let mut hits = Vec::new();
        for d in joiners {
            scan_with(*d, &view, &mut hits);
        }
        for hit in hits {
            if hit.range.is_empty() {
                continue;
            }
            let (first, last) = (block_of(hit.range.start), block_of(hit.range.end - 1));
            if first == last {
                continue; // the per-block reading has it already
            }
            for k in first..=last {
                let (index, text) = run[k];
                let (start, end) = (starts[k], starts[k] + text.len());
                let piece = hit.range.start.max(start) - start..hit.range.end.min(end) - start;
                if piece.is_empty() {
                    continue;
                }
                let replacement = match (&hit.replacement, k == first) {
                    (Replacement::None, _) => Replacement::None,
                    (r, true) => r.clone(),
                    (_, false) => Replacement::Remove,
                };
                let piece_hit = Hit {
                    range: piece,
                    replacement,
                    detail: format!("{} (split across content blocks)", hit.detail),
                    ..hit.clone()
                };
                let pointer = format!("/result/content/{index}/text");
                match found.iter_mut().find(|(s, _, _)| s.pointer == pointer) {
                    Some((_, _, block_hits)) => block_hits.push(piece_hit),
                    None => found.push((
                        Site {
                            role: Role::Content,
                            pointer,
                            key: Some("text".into()),
                            is_key: false,
                            tool: None,
                        },
                        text.to_string(),
                        vec![piece_hit],
                    )),
                }
            }
        }
    }
}

impl Inspector for TextInspector {
    fn name(&self) -> &'static str {
        "text"
    }

    fn applies(&self, meta: &SubjectMeta<'_>, _policy: &Policy) -> bool {
        !self.set(meta.direction).members.is_empty()
    }

    fn prefilter(&self, meta: &SubjectMeta<'_>, raw: &[u8]) -> bool {
        self.worth_a_look(self.set(meta.direction), raw)
    }

    fn literals(&self, direction: Direction) -> Option<Vec<String>> {
        Some(self.set(direction).literals.clone())
    }

    fn prefilter_beyond_literals(
        &self,
        direction: Direction,
        raw: &[u8],
        message: Option<&Subject<'_>>,
    ) -> bool {
        self.raw_checks_wake_any(self.set(direction), raw, message)
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let meta = subject.meta;
        if subject.raw().len() > MAX_INSPECTED_BYTES {
            // Normalizing and scanning is linear but not cheap: a message this large is relayed
            // uninspected (or blocked, if the policy says so) rather than stalling every other one.
            let action = policy.action_for(INSPECT_LIMIT, Severity::Medium);
            if action != Action::Off {
                let taken = if action >= Action::Strip {
                    ActionTaken::Blocked
                } else {
                    ActionTaken::Alerted
                };
                findings.alert(Alert::new(
                    INSPECT_LIMIT,
                    "message too large to inspect",
                    Severity::Medium,
                    taken,
                    format!(
                        "a {} byte message exceeds the {} byte text-inspection limit; its text was not inspected",
                        subject.raw().len(),
                        MAX_INSPECTED_BYTES
                    ),
                ));
                if taken == ActionTaken::Blocked {
                    findings.block("too large to inspect");
                }
            }
            return;
        }
        let Some(message) = subject.json() else {
            return;
        };
        let found = self.scan(message, &meta);
        let mut string_edits: Vec<(String, Vec<Edit>)> = Vec::new();
        let mut removed_keys: Vec<String> = Vec::new();
        for (site, text, hits) in found {
            let mut edits = Vec::new();
            // One alert per rule and class in a string, however many places it hit.
            let mut grouped: BTreeMap<(&str, &str), Vec<&Hit>> = BTreeMap::new();
            for hit in &hits {
                grouped.entry((hit.rule, hit.class)).or_default().push(hit);
            }
            for ((rule, class), group) in grouped {
                let severity = group.iter().map(|h| h.severity).max().expect("non-empty");
                let action = match meta.direction {
                    Direction::ClientToServer => policy.request_action_for(rule, severity),
                    Direction::ServerToClient => policy.action_for(rule, severity),
                };
                if action == Action::Off {
                    continue;
                }
                let strippable = group.iter().all(|h| h.replacement != Replacement::None);
                let taken = match action {
                    Action::Alert | Action::Off => ActionTaken::Alerted,
                    Action::Strip if strippable => ActionTaken::Stripped,
                    Action::Strip | Action::Block => ActionTaken::Blocked,
                };
                let evidence: Vec<u8> = group
                    .iter()
                    .flat_map(|h| text.get(h.range.clone()).unwrap_or_default().bytes())
                    .collect();
                let detail = if group.len() == 1 {
                    format!("{} at {}", group[0].detail, site.pointer)
                } else {
                    format!(
                        "{} ({} places) at {}",
                        group[0].detail,
                        group.len(),
                        site.pointer
                    )
                };
                findings
                    .alert(Alert::new(rule, class, severity, taken, detail).evidence(&evidence));
                match taken {
                    ActionTaken::Stripped => {
                        for h in group {
                            let replacement = match &h.replacement {
                                Replacement::With(s) => s.clone(),
                                _ => String::new(),
                            };
                            edits.push(Edit {
                                range: h.range.clone(),
                                replacement,
                            });
                        }
                    }
                    ActionTaken::Blocked => findings.block(format!("{rule}: {class}")),
                    _ => {}
                }
            }
            if edits.is_empty() {
                continue;
            }
            if site.is_key {
                removed_keys.push(site.pointer.clone());
            } else {
                string_edits.push((site.pointer.clone(), edits));
            }
        }
        if findings.block.is_some() || (string_edits.is_empty() && removed_keys.is_empty()) {
            return;
        }
        let Some(message) = subject.json_mut() else {
            return;
        };
        for (pointer, edits) in string_edits {
            if let Some(Value::String(s)) = message.pointer_mut(&pointer) {
                *s = apply_edits(s, edits);
            }
        }
        // A hostile property name goes with its whole property.
        for pointer in removed_keys.iter().rev() {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer has a key");
            let key = key.replace("~1", "/").replace("~0", "~");
            if let Some(Value::Object(map)) = message.pointer_mut(parent) {
                map.shift_remove(&key);
            }
        }
    }
}

/// `detector`'s hits in `view`. Every test that finds something checks that the detector declares
/// the rule it reports: a rule missing from [`TextDetector::rules`] would let turning the others
/// off silently drop it.
fn scan_with(detector: &dyn TextDetector, view: &TextView<'_>, hits: &mut Vec<Hit>) {
    let before = hits.len();
    detector.scan(view, hits);
    debug_assert!(
        hits[before..]
            .iter()
            .all(|h| detector.rules().contains(&h.rule)),
        "{} reported a rule it does not declare",
        detector.name()
    );
}

/// The detectors' raw checks over one text, each shared check (several detectors ask it, and it
/// reads the whole text) run at most once.
struct RawChecks<'a, 'm> {
    bytes: &'a [u8],
    /// The message `bytes` are, when they are a whole message under inspection.
    message: Option<&'a Subject<'m>>,
    shared: [std::cell::OnceCell<bool>; SharedCheck::ALL.len()],
}

impl<'a, 'm> RawChecks<'a, 'm> {
    fn new(bytes: &'a [u8], message: Option<&'a Subject<'m>>) -> Self {
        RawChecks {
            bytes,
            message,
            shared: Default::default(),
        }
    }

    fn wake(&self, detector: &dyn TextDetector) -> bool {
        detector.raw_check(self.bytes)
            || detector.shared_raw_check().is_some_and(|check| {
                *self.shared[check as usize].get_or_init(|| check.run(self.bytes, self.message))
            })
    }
}
