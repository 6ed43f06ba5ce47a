//! Repeat suppression: a flood of identical alerts becomes its first occurrence plus one summary per
//! window, so neither stderr nor the audit log grows per repeat.

use crate::alert::model::{ActionTaken, Alert, Direction, Severity};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub const DEFAULT_REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// How many distinct alerts may have an open window at once; beyond that the oldest is closed early.
pub const MAX_OPEN_WINDOWS: usize = 1024;

/// What makes two alerts "the same": everything but time and JSON-RPC id (and the excerpt, which
/// follows from the evidence hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RepeatKey {
    rule: String,
    class: String,
    severity: Severity,
    server: Option<String>,
    direction: Option<Direction>,
    method: Option<String>,
    action: ActionTaken,
    detail: String,
    evidence_sha256: Option<String>,
}

impl RepeatKey {
    fn of(alert: &Alert) -> Self {
        RepeatKey {
            rule: alert.rule.clone(),
            class: alert.class.clone(),
            severity: alert.severity,
            server: alert.server.clone(),
            direction: alert.direction,
            method: alert.method.clone(),
            action: alert.action,
            detail: alert.detail.clone(),
            evidence_sha256: alert.evidence_sha256.clone(),
        }
    }
}

struct OpenWindow {
    opened: Instant,
    repeats: u64,
    /// The latest repeat: its time and id go into the summary.
    latest: Option<Alert>,
}

/// Decides which alerts are shown: feed every alert to [`observe`](Self::observe), call
/// [`expire`](Self::expire) now and then, and [`flush`](Self::flush) at the end.
pub struct RepeatAggregator {
    window: Duration,
    capacity: usize,
    open: HashMap<RepeatKey, OpenWindow>,
    /// Keys in the order their windows opened. Since every window has the same length, this is also
    /// the order in which they close, so expiry only ever looks at the front.
    order: VecDeque<RepeatKey>,
}

impl RepeatAggregator {
    /// A zero `window` turns suppression off.
    pub fn new(window: Duration) -> Self {
        Self::with_capacity(window, MAX_OPEN_WINDOWS)
    }

    pub fn with_capacity(window: Duration, capacity: usize) -> Self {
        RepeatAggregator {
            window,
            capacity: capacity.max(1),
            open: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Takes one alert seen at `now`; pushes onto `out` whatever is to be emitted now: the alert
    /// itself if it is a first occurrence, preceded by summaries of windows that closed.
    pub fn observe(&mut self, alert: Alert, now: Instant, out: &mut Vec<Alert>) {
        if self.window.is_zero() {
            out.push(alert);
            return;
        }
        // Closing expired windows first keeps `order` sorted: a key seen again after its window
        // closed is re-opened at the back.
        self.expire(now, out);
        let key = RepeatKey::of(&alert);
        if let Some(open) = self.open.get_mut(&key) {
            open.repeats += 1;
            open.latest = Some(alert);
            return;
        }
        if self.open.len() >= self.capacity {
            self.close_oldest(out);
        }
        self.order.push_back(key.clone());
        self.open.insert(
            key,
            OpenWindow {
                opened: now,
                repeats: 0,
                latest: None,
            },
        );
        out.push(alert);
    }

    /// Closes the windows that have run their length by `now`, pushing their summaries onto `out`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Alert>) {
        while let Some(front) = self.order.front() {
            let opened = self.open[front].opened;
            if now.saturating_duration_since(opened) < self.window {
                break;
            }
            self.close_oldest(out);
        }
    }

    /// Closes every open window, pushing their summaries onto `out`.
    pub fn flush(&mut self, out: &mut Vec<Alert>) {
        while !self.order.is_empty() {
            self.close_oldest(out);
        }
    }

    fn close_oldest(&mut self, out: &mut Vec<Alert>) {
        let Some(key) = self.order.pop_front() else {
            return;
        };
        let Some(open) = self.open.remove(&key) else {
            return;
        };
        if let Some(mut summary) = open.latest {
            summary.repeats = open.repeats;
            out.push(summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(detail: &str) -> Alert {
        Alert::new(
            "RATE-LIMIT",
            "burst",
            Severity::Medium,
            ActionTaken::Dropped,
            detail,
        )
        .server("demo")
        .method(Some("tools/call"))
    }

    #[test]
    fn hundred_identical_alerts_become_one_plus_a_summary() {
        let mut agg = RepeatAggregator::new(DEFAULT_REPEAT_WINDOW);
        let start = Instant::now();
        let mut out = Vec::new();
        for i in 0..100u64 {
            let id = i.to_string();
            let a = alert("too many calls").jsonrpc_id(Some(&id));
            agg.observe(a, start + Duration::from_millis(i), &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].repeats, 0);
        assert_eq!(out[0].jsonrpc_id.as_deref(), Some("0"));
        agg.expire(start + DEFAULT_REPEAT_WINDOW, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].repeats, 99);
        assert_eq!(out[1].jsonrpc_id.as_deref(), Some("99"));
        agg.flush(&mut out);
        assert_eq!(out.len(), 2, "nothing left open after expiry");
    }

    #[test]
    fn distinct_alerts_are_not_merged() {
        let mut agg = RepeatAggregator::new(DEFAULT_REPEAT_WINDOW);
        let now = Instant::now();
        let mut out = Vec::new();
        agg.observe(alert("a"), now, &mut out);
        agg.observe(alert("b"), now, &mut out);
        agg.observe(alert("a").server("other"), now, &mut out);
        agg.observe(alert("a").evidence(b"x"), now, &mut out);
        let mut critical = alert("a");
        critical.severity = Severity::Critical;
        agg.observe(critical, now, &mut out);
        assert_eq!(out.len(), 5);
        agg.flush(&mut out);
        assert_eq!(out.len(), 5, "no repeats, so no summaries");
    }

    #[test]
    fn a_repeat_after_the_window_starts_a_new_one() {
        let mut agg = RepeatAggregator::new(Duration::from_secs(10));
        let start = Instant::now();
        let mut out = Vec::new();
        agg.observe(alert("a"), start, &mut out);
        agg.observe(alert("a"), start + Duration::from_secs(1), &mut out);
        agg.observe(alert("a"), start + Duration::from_secs(11), &mut out);
        let repeats: Vec<u64> = out.iter().map(|a| a.repeats).collect();
        assert_eq!(
            repeats,
            [0, 1, 0],
            "first, summary of the closed window, new first"
        );
    }

    #[test]
    fn flush_emits_pending_summaries() {
        let mut agg = RepeatAggregator::new(DEFAULT_REPEAT_WINDOW);
        let now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..3 {
            agg.observe(alert("a"), now, &mut out);
        }
        agg.flush(&mut out);
        assert_eq!(out.iter().map(|a| a.repeats).collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn table_is_bounded_and_evicts_the_oldest() {
        let mut agg = RepeatAggregator::with_capacity(DEFAULT_REPEAT_WINDOW, 4);
        let now = Instant::now();
        let mut out = Vec::new();
        agg.observe(alert("oldest"), now, &mut out);
        agg.observe(alert("oldest"), now, &mut out);
        for i in 0..10 {
            agg.observe(alert(&format!("other {i}")), now, &mut out);
        }
        assert!(agg.open.len() <= 4 && agg.order.len() == agg.open.len());
        let summary = out.iter().find(|a| a.repeats > 0).expect("evicted summary");
        assert_eq!((summary.detail.as_str(), summary.repeats), ("oldest", 1));
    }

    #[test]
    fn zero_window_passes_everything_through() {
        let mut agg = RepeatAggregator::new(Duration::ZERO);
        let now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..3 {
            agg.observe(alert("a"), now, &mut out);
        }
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|a| a.repeats == 0));
    }
}
