//! Which inspectors and text detectors a proxy runs, in order.

use super::elicitation::Elicitation;
use super::param_inject::ParamInject;
use super::rug_pull::RugPull;
use super::sampling::Sampling;
use super::shadow::Shadow;
use super::text::{TextDetector, TextInspector};
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
/// other work), then pinned definitions (RUG-PULL), then shadowing, schema poisoning and
/// server-request guards, then the text detectors.
pub fn pipeline(settings: &Settings) -> Pipeline {
    let filters = settings
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.tools.clone()))
        .collect();
    let servers = settings
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.prefix.clone()))
        .collect();
    build(
        settings.policy.clone(),
        filters,
        Some(RugPull::for_settings(settings)),
        servers,
    )
}

/// The stateless part of the pipeline (no pins): for `scan-text`, benchmarks and fuzzing.
pub fn pipeline_for(policy: Policy, filters: HashMap<String, ToolFilter>) -> Pipeline {
    build(policy, filters, None, Vec::new())
}

fn build(
    policy: Policy,
    filters: HashMap<String, ToolFilter>,
    rug_pull: Option<RugPull>,
    servers: Vec<(String, String)>,
) -> Pipeline {
    let mut inspectors: Vec<Box<dyn Inspector>> = vec![Box::new(ToolPolicy::new(filters))];
    if let Some(r) = rug_pull {
        inspectors.push(Box::new(r));
    }
    // List-time and server-request guards: after pinning (a withheld tool is not judged), before
    // the text detectors (which then see the cleaned text).
    inspectors.push(Box::new(Shadow::new(servers)));
    inspectors.push(Box::new(ParamInject));
    inspectors.push(Box::new(Sampling));
    inspectors.push(Box::new(Elicitation));
    inspectors.push(Box::new(TextInspector::new(text_detectors())));
    Pipeline::new(policy, inspectors)
}
