//! Which inspectors and text detectors a proxy runs, in order.

use super::text::{TextDetector, TextInspector};
use super::tool_policy::ToolPolicy;
use super::{Inspector, Pipeline};
use crate::config::Settings;

/// Every text detector family, one per file under `inspect/`.
pub fn text_detectors() -> Vec<Box<dyn TextDetector>> {
    vec![
        Box::new(super::smac1::InvisibleCharacters),
        Box::new(super::smac1::TerminalEscapes),
        Box::new(super::smac1::HiddenHtml),
        Box::new(super::smac2::ReferenceLinkExfiltration),
    ]
}

/// The inline pipeline for these settings: policy rules first (a denied call is stopped before any
/// other work), then the text detectors.
pub fn pipeline(settings: &Settings) -> Pipeline {
    let filters = settings
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.tools.clone()))
        .collect();
    let inspectors: Vec<Box<dyn Inspector>> = vec![
        Box::new(ToolPolicy::new(filters)),
        Box::new(TextInspector::new(text_detectors())),
    ];
    Pipeline::new(settings.policy.clone(), inspectors)
}
