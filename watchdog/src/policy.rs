//! What to do about a finding: per-rule actions, the enforce/monitor mode, and per-server tool lists.

use crate::alert::Severity;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The action a rule is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The rule does not run.
    Off,
    /// Report, change nothing.
    Alert,
    /// Remove the hostile part, forward the rest, report.
    Strip,
    /// Stop the message, answer the requester with an error, report.
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Actions are carried out as configured.
    #[default]
    Enforce,
    /// Every action is reduced to `alert`: nothing is changed or stopped.
    Monitor,
}

pub use crate::rule_defaults::{
    ALERT_BY_DEFAULT, BLOCK_BY_DEFAULT, BLOCK_CRITICAL_BY_DEFAULT, CONFIGURABLE_RULES,
    STRIP_BY_DEFAULT, TOOL_POLICY,
};

/// Every rule a `[rules]` entry can set.
fn configurable() -> impl Iterator<Item = &'static str> + Clone {
    CONFIGURABLE_RULES
        .iter()
        .flat_map(|rules| rules.iter().copied())
}

/// Rules the watchdog raises that `[rules]` does not govern, and why.
const NOT_CONFIGURABLE: &[(&str, &str)] = &[
    ("FRAMING", "the proxy's own framing checks always apply"),
    ("SESSION", "the proxy's own session checks always apply"),
    ("SUPERVISION", "it reports on the servers' processes and always applies"),
    ("INSPECTOR-FAULT", "a message an inspector failed on is always stopped"),
    (
        "SCOPE-L4",
        "writes outside a server's scope are governed by `sandbox`, `strict` and each server's `scope`",
    ),
    ("SEMANTIC", "the classifier is set up in `[semantic]`"),
];

/// Checks a `[rules]` key. A misspelt rule would leave the policy the user meant silently
/// unapplied, so an unknown name is an error that names the closest rule.
pub fn check_rule_name(rule: &str) -> Result<(), String> {
    if configurable().any(|r| r == rule) {
        return Ok(());
    }
    if let Some((_, why)) = NOT_CONFIGURABLE.iter().find(|(r, _)| *r == rule) {
        return Err(format!("rule `{rule}` cannot be set here: {why}"));
    }
    Err(unknown_rule(rule, configurable()))
}

/// The rule an alert filter names (`--rule ssrf`: any case), so that a misspelt one is an error
/// rather than an empty list.
pub fn rule_named(name: &str) -> Result<&'static str, String> {
    every_rule()
        .find(|r| r.eq_ignore_ascii_case(name))
        .ok_or_else(|| unknown_rule(name, every_rule()))
}

/// Every rule an alert can carry.
fn every_rule() -> impl Iterator<Item = &'static str> + Clone {
    configurable().chain(NOT_CONFIGURABLE.iter().map(|&(r, _)| r))
}

/// Says `rule` is none of `known`, naming the one it most likely meant: the same name in another
/// case or with `_` for `-`, or one a couple of letters away.
fn unknown_rule(rule: &str, known: impl Iterator<Item = &'static str> + Clone) -> String {
    let wanted = rule.trim().to_ascii_uppercase().replace('_', "-");
    let hint = known
        .clone()
        .map(|r| (strsim::levenshtein(&wanted, r), r))
        .min()
        .filter(|&(distance, _)| distance <= 2)
        .map(|(_, r)| format!(" (did you mean `{r}`?)"))
        .unwrap_or_default();
    let mut names: Vec<&str> = known.collect();
    names.sort_unstable();
    format!(
        "unknown rule `{rule}`{hint}; the rules are {}",
        names.join(", ")
    )
}

/// The default action of a rule for a finding of `severity`.
fn default_action(rule: &str, severity: Severity) -> Action {
    if BLOCK_BY_DEFAULT.contains(&rule) {
        Action::Block
    } else if STRIP_BY_DEFAULT.contains(&rule) {
        Action::Strip
    } else if BLOCK_CRITICAL_BY_DEFAULT.contains(&rule) {
        if severity >= Severity::Critical {
            Action::Block
        } else {
            Action::Alert
        }
    } else {
        Action::Alert
    }
}

/// Effective policy: consulted by inspectors before they change anything.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub mode: Mode,
    overrides: HashMap<String, Action>,
}

impl Policy {
    pub fn new(mode: Mode, overrides: HashMap<String, Action>) -> Self {
        Policy { mode, overrides }
    }

    /// The configured action for a finding of `rule` at `severity`, before the mode is applied.
    /// An explicit setting applies to every severity.
    pub fn configured(&self, rule: &str, severity: Severity) -> Action {
        self.overrides
            .get(rule)
            .copied()
            .unwrap_or_else(|| default_action(rule, severity))
    }

    /// Whether the configuration turns `rule` off (nothing it finds is acted on or reported).
    pub fn is_off(&self, rule: &str) -> bool {
        self.overrides.get(rule) == Some(&Action::Off)
    }

    /// The action to carry out for `rule` (at its most severe): in monitor mode nothing beyond an
    /// alert.
    pub fn action(&self, rule: &str) -> Action {
        self.action_for(rule, Severity::Critical)
    }

    /// The action to carry out for a finding of `rule` at `severity`.
    pub fn action_for(&self, rule: &str, severity: Severity) -> Action {
        self.capped(self.configured(rule, severity))
    }

    /// The action for a finding in what the client sends. Nothing can be cut out of a request
    /// without changing what the user asked for, so a response-side rule's default "strip" becomes
    /// the request side's default: block critical findings, alert the rest (DLP for SMAC-6).
    pub fn request_action_for(&self, rule: &str, severity: Severity) -> Action {
        if !self.overrides.contains_key(rule) && STRIP_BY_DEFAULT.contains(&rule) {
            let action = if severity >= Severity::Critical {
                Action::Block
            } else {
                Action::Alert
            };
            return self.capped(action);
        }
        self.action_for(rule, severity)
    }

    fn capped(&self, action: Action) -> Action {
        match (self.mode, action) {
            (_, Action::Off) => Action::Off,
            (Mode::Monitor, _) => Action::Alert,
            (Mode::Enforce, a) => a,
        }
    }
}

/// A server's tool allow and deny lists (glob patterns over the server's own tool names).
///
/// A tool is permitted when it matches the allow list (or the allow list is empty) and matches no
/// deny pattern: deny wins.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    allow: Option<GlobSet>,
    deny: Option<GlobSet>,
}

impl ToolFilter {
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, globset::Error> {
        Ok(ToolFilter {
            allow: build_set(allow)?,
            deny: build_set(deny)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_none() && self.deny.is_none()
    }

    pub fn permits(&self, tool: &str) -> bool {
        let allowed = self.allow.as_ref().is_none_or(|set| set.is_match(tool));
        let denied = self.deny.as_ref().is_some_and(|set| set.is_match(tool));
        allowed && !denied
    }
}

fn build_set(patterns: &[String]) -> Result<Option<GlobSet>, globset::Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p)?);
    }
    builder.build().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_checked_and_a_misspelling_gets_the_closest_name() {
        assert_eq!(check_rule_name("RUG-PULL"), Ok(()));
        let typo = check_rule_name("RUGPULL").unwrap_err();
        assert!(typo.contains("did you mean `RUG-PULL`"), "{typo}");
        let lower = check_rule_name("smac_1").unwrap_err();
        assert!(lower.contains("did you mean `SMAC-1`"), "{lower}");
        let far = check_rule_name("NOT-A-RULE").unwrap_err();
        assert!(
            !far.contains("did you mean") && far.contains("SSRF, STEGO"),
            "{far}"
        );
        let fixed = check_rule_name("SESSION").unwrap_err();
        assert!(fixed.contains("cannot be set"), "{fixed}");
    }

    #[test]
    fn alert_filters_take_any_rule_an_alert_can_carry_in_any_case() {
        assert_eq!(rule_named("ssrf"), Ok("SSRF"));
        assert_eq!(rule_named("Framing"), Ok("FRAMING"));
        let typo = rule_named("SCOPE-L5").unwrap_err();
        assert!(typo.contains("did you mean `SCOPE-L4`"), "{typo}");
    }

    /// The list must name exactly the rules the policy is asked about, so that no setting is
    /// refused that would work, and none accepted that nothing reads.
    #[test]
    fn the_configurable_rules_are_those_the_inspectors_and_analyzers_consult() {
        use crate::analyze::{drift::DRIFT, flow::FLOW, supply_chain::SUPPLY_CHAIN};
        use crate::inspect::{elicitation::ELICITATION, oauth::OAUTH, param_inject::PARAM_INJECT};
        use crate::inspect::{rate::NOTIF_INJECT, rate::RATE_LIMIT, rug_pull::RUG_PULL};
        use crate::inspect::{sampling::SAMPLING, shadow::SHADOW, token_replay::TOKEN_REPLAY};
        let mut consulted: Vec<&str> = vec![
            TOOL_POLICY,
            RUG_PULL,
            SHADOW,
            PARAM_INJECT,
            SAMPLING,
            ELICITATION,
            OAUTH,
            TOKEN_REPLAY,
            RATE_LIMIT,
            NOTIF_INJECT,
            FLOW,
            DRIFT,
            SUPPLY_CHAIN,
            crate::inspect::text::inspector::INSPECT_LIMIT,
        ];
        for detector in crate::inspect::registry::text_detectors() {
            consulted.extend(detector.rules());
        }
        consulted.sort_unstable();
        consulted.dedup();
        let mut listed: Vec<&str> = configurable().collect();
        listed.sort_unstable();
        assert_eq!(listed, consulted, "each rule in exactly one default list");
        use crate::alert::rules::{FRAMING, SESSION, SUPERVISION};
        for fixed in [
            FRAMING,
            SESSION,
            SUPERVISION,
            crate::inspect::pipeline::INSPECTOR_FAULT,
            crate::sandbox::SCOPE_L4,
            crate::analyze::semantic::SEMANTIC,
        ] {
            assert!(NOT_CONFIGURABLE.iter().any(|(r, _)| *r == fixed), "{fixed}");
        }
    }

    #[test]
    fn monitor_mode_reduces_every_action_to_alert_but_keeps_off() {
        let mut o = HashMap::new();
        o.insert("X".to_string(), Action::Off);
        let p = Policy::new(Mode::Monitor, o);
        assert_eq!(p.action(TOOL_POLICY), Action::Alert);
        assert_eq!(p.action("X"), Action::Off);
        let p = Policy::new(Mode::Enforce, HashMap::new());
        assert_eq!(p.action(TOOL_POLICY), Action::Block);
        assert_eq!(p.action_for("RUG-PULL", Severity::High), Action::Block);
    }

    #[test]
    fn request_rules_block_only_critical_findings_unless_configured() {
        let p = Policy::new(Mode::Enforce, HashMap::new());
        assert_eq!(p.action_for("SSRF", Severity::Critical), Action::Block);
        assert_eq!(p.action_for("SSRF", Severity::High), Action::Alert);
        assert_eq!(p.action_for("SMAC-5", Severity::Low), Action::Strip);
        let mut o = HashMap::new();
        o.insert("SSRF".to_string(), Action::Block);
        assert_eq!(
            Policy::new(Mode::Enforce, o).action_for("SSRF", Severity::Medium),
            Action::Block
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let f = ToolFilter::new(
            &["read_*".into(), "list_*".into()],
            &["read_secret*".into()],
        )
        .unwrap();
        assert!(f.permits("read_file"));
        assert!(f.permits("list_directory"));
        assert!(!f.permits("read_secrets"));
        assert!(!f.permits("write_file"));
        let only_deny = ToolFilter::new(&[], &["delete_*".into()]).unwrap();
        assert!(only_deny.permits("write_file"));
        assert!(!only_deny.permits("delete_everything"));
        assert!(ToolFilter::default().permits("anything"));
    }

    #[test]
    fn secrets_in_requests_block_critical_and_alert_the_rest() {
        let p = Policy::new(Mode::Enforce, HashMap::new());
        assert_eq!(
            p.request_action_for("SMAC-6", Severity::Critical),
            Action::Block
        );
        assert_eq!(
            p.request_action_for("SMAC-6", Severity::High),
            Action::Alert
        );
        assert_eq!(p.action_for("SMAC-6", Severity::High), Action::Strip);
        assert_eq!(
            p.request_action_for("SSRF", Severity::Critical),
            Action::Block
        );
        let mut o = HashMap::new();
        o.insert("SMAC-6".to_string(), Action::Block);
        assert_eq!(
            Policy::new(Mode::Enforce, o).request_action_for("SMAC-6", Severity::Low),
            Action::Block
        );
    }
}
