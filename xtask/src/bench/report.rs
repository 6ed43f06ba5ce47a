//! Renders the results as a Markdown table and as JSON.

use super::chain::Chain;
use super::figures::{Target, Unit, METRICS};
use serde_json::{json, Map, Value};

pub struct ChainResult {
    pub chain: Chain,
    /// Why the chain stopped early, if it did; shown in its column.
    pub error: Option<String>,
    /// Non-fatal observations, e.g. an unclean shutdown.
    pub notes: Vec<String>,
    pub values: [Option<f64>; METRICS.len()],
}

fn find(results: &[ChainResult], chain: Chain) -> Option<&ChainResult> {
    results.iter().find(|r| r.chain == chain)
}

/// watchdog / relay for metric `i`, when both were measured.
fn ratio(results: &[ChainResult], i: usize) -> Option<f64> {
    let w = find(results, Chain::Watchdog)?.values[i]?;
    let r = find(results, Chain::Relay)?.values[i]?;
    (r > 0.0).then(|| w / r)
}

/// (description, verdict) of metric `i`'s target; verdict None when it could not be judged.
fn judge(results: &[ChainResult], i: usize) -> Option<(String, Option<bool>)> {
    let watchdog = find(results, Chain::Watchdog).and_then(|r| r.values[i]);
    Some(match METRICS[i].target? {
        Target::RatioAtMost(x) => (format!("≤ {x}× relay"), ratio(results, i).map(|r| r <= x)),
        Target::RatioAtLeast(x) => (format!("≥ {x}× relay"), ratio(results, i).map(|r| r >= x)),
        Target::AtMost(x) => (
            format!("≤ {x} {}", unit_name(METRICS[i].unit)),
            watchdog.map(|v| v <= x),
        ),
    })
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Micros => "µs",
        Unit::Millis => "ms",
        Unit::PerSec => "req/s",
        Unit::MiB => "MiB",
    }
}

fn format_value(v: f64, unit: Unit) -> String {
    let n = match unit {
        Unit::Micros if v < 100.0 => format!("{v:.1}"),
        Unit::Micros | Unit::PerSec => format!("{v:.0}"),
        Unit::Millis if v < 100.0 => format!("{v:.2}"),
        Unit::Millis => format!("{v:.0}"),
        Unit::MiB => format!("{v:.1}"),
    };
    format!("{n} {}", unit_name(unit))
}

/// Keeps a message on one table row.
fn cell_text(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c == '|' || c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > 160 {
        format!("{}…", flat.chars().take(160).collect::<String>())
    } else {
        flat
    }
}

pub fn markdown(results: &[ChainResult]) -> String {
    let with_ratio =
        find(results, Chain::Watchdog).is_some() && find(results, Chain::Relay).is_some();
    let mut head = vec!["metric".to_string()];
    head.extend(results.iter().map(|r| r.chain.name().to_string()));
    if with_ratio {
        head.push("watchdog/relay".into());
        head.push("target".into());
    }
    let mut rows = vec![head];

    let mut status = vec!["status".to_string()];
    status.extend(results.iter().map(|r| match &r.error {
        None => "ok".to_string(),
        Some(e) => format!("✗ {}", cell_text(e)),
    }));
    if with_ratio {
        status.extend(["".into(), "".into()]);
    }
    rows.push(status);

    for (i, metric) in METRICS.iter().enumerate() {
        let mut row = vec![metric.label.to_string()];
        row.extend(results.iter().map(|r| match r.values[i] {
            Some(v) => format_value(v, metric.unit),
            None => "—".into(),
        }));
        if with_ratio {
            row.push(ratio(results, i).map_or("—".into(), |r| format!("{r:.2}×")));
            row.push(match judge(results, i) {
                None => String::new(),
                Some((text, Some(true))) => format!("{text} ✓"),
                Some((text, Some(false))) => format!("{text} ✗"),
                Some((text, None)) => format!("{text} ?"),
            });
        }
        rows.push(row);
    }

    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
        if n == 0 {
            out.push_str(&format!("|{}\n", "---|".repeat(row.len())));
        }
    }
    for r in results {
        if let Some(e) = &r.error {
            out.push_str(&format!("\n{} error: {e}\n", r.chain.name()));
        }
        for note in &r.notes {
            out.push_str(&format!("\n{} note: {note}\n", r.chain.name()));
        }
    }
    out
}

pub fn json(results: &[ChainResult], quick: bool) -> Value {
    let mut chains = Map::new();
    for r in results {
        let metrics: Map<String, Value> = METRICS
            .iter()
            .zip(r.values)
            .map(|(m, v)| (m.key.to_string(), json!(v)))
            .collect();
        chains.insert(
            r.chain.name().into(),
            json!({ "error": r.error, "notes": r.notes, "metrics": metrics }),
        );
    }
    let mut ratios = Map::new();
    let mut targets = Vec::new();
    for (i, m) in METRICS.iter().enumerate() {
        if let Some(v) = ratio(results, i) {
            ratios.insert(m.key.into(), json!(v));
        }
        if let Some((text, pass)) = judge(results, i) {
            targets.push(json!({ "metric": m.key, "target": text, "pass": pass }));
        }
    }
    json!({
        "quick": quick,
        "chains": chains,
        "watchdog_over_relay": ratios,
        "targets": targets,
    })
}
