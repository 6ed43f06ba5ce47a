//! Which inspectors and text detectors a proxy runs, in order.

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
/// other work), then the text detectors.
pub fn pipeline(settings: &Settings) -> Pipeline {
    pipeline_for(
        settings.policy.clone(),
        settings
            .servers
            .iter()
            .map(|s| (s.name.clone(), s.tools.clone()))
            .collect(),
    )
}

/// The same pipeline from a policy and per-server tool lists alone.
pub fn pipeline_for(policy: Policy, filters: HashMap<String, ToolFilter>) -> Pipeline {
    let inspectors: Vec<Box<dyn Inspector>> = vec![
        Box::new(ToolPolicy::new(filters)),
        Box::new(super::rug_pull::RugPull::for_settings(settings)),
        Box::new(TextInspector::new(text_detectors())),
    ];
    Pipeline::new(policy, inspectors)
}
