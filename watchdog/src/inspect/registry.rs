//! Which inspectors and text detectors a proxy runs, in order.

use super::oauth::OAuth;
use super::rug_pull::RugPull;
use super::text::{TextDetector, TextInspector};
use super::token_replay::TokenReplay;
use super::tool_policy::ToolPolicy;
use super::{Inspector, Pipeline};
use crate::config::Settings;
use crate::policy::{Policy, ToolFilter};
use std::collections::HashMap;

/// Every text detector family, one per file under `inspect/`.
pub fn text_detectors() -> Vec<Box<dyn TextDetector>> {
    vec![]
}

/// The inline pipeline for these settings: policy rules first (a denied call is stopped before any
/// other work), then pinned definitions (RUG-PULL), then the text detectors.
pub fn pipeline(settings: &Settings) -> Pipeline {
    let filters = settings
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.tools.clone()))
        .collect();
    let mut p = build(
        settings.policy.clone(),
        filters,
        Some(RugPull::for_settings(settings)),
        OAuth::for_settings(settings),
    );
    p.push(Box::new(TokenReplay::for_settings(settings)));
    p
}

/// The stateless part of the pipeline (no pins): for `scan-text`, benchmarks and fuzzing.
pub fn pipeline_for(policy: Policy, filters: HashMap<String, ToolFilter>) -> Pipeline {
    build(policy, filters, None, OAuth::new(HashMap::new()))
}

fn build(
    policy: Policy,
    filters: HashMap<String, ToolFilter>,
    rug_pull: Option<RugPull>,
    oauth: OAuth,
) -> Pipeline {
    let mut inspectors: Vec<Box<dyn Inspector>> = vec![Box::new(ToolPolicy::new(filters))];
    if let Some(r) = rug_pull {
        inspectors.push(Box::new(r));
    }
    inspectors.push(Box::new(oauth));
    inspectors.push(Box::new(TextInspector::new(text_detectors())));
    Pipeline::new(policy, inspectors)
}
