//! Raw samples gathered for one chain and the metrics derived from them.

use std::time::Duration;

#[derive(Default)]
pub struct Figures {
    pub rt_1k: Vec<Duration>,
    pub rt_64k: Vec<Duration>,
    pub tput_replies: u64,
    pub tput_time: Duration,
    /// CPU (user + system) the chain's own process used during the throughput runs.
    pub tput_cpu: Duration,
    pub rss_kib: Option<u64>,
    pub big: Option<Duration>,
    pub rss_after_big_kib: Option<u64>,
    pub startups: Vec<Duration>,
}

/// One row of the report. `key` names it in the JSON file.
#[derive(Clone, Copy)]
pub struct Metric {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: Unit,
    pub target: Option<Target>,
}

#[derive(Clone, Copy)]
pub enum Unit {
    Micros,
    Millis,
    PerSec,
    MiB,
}

/// The acceptance targets for the watchdog.
#[derive(Clone, Copy)]
pub enum Target {
    RatioAtMost(f64),
    RatioAtLeast(f64),
    AtMost(f64),
}

pub const METRICS: [Metric; 10] = [
    Metric {
        key: "rt_1k_p50_us",
        label: "round trip p50, 1 KiB result",
        unit: Unit::Micros,
        target: Some(Target::RatioAtMost(1.5)),
    },
    Metric {
        key: "rt_1k_p99_us",
        label: "round trip p99, 1 KiB result",
        unit: Unit::Micros,
        target: None,
    },
    Metric {
        key: "rt_64k_p50_us",
        label: "round trip p50, 64 KiB result",
        unit: Unit::Micros,
        target: Some(Target::RatioAtMost(1.5)),
    },
    Metric {
        key: "rt_64k_p99_us",
        label: "round trip p99, 64 KiB result",
        unit: Unit::Micros,
        target: None,
    },
    Metric {
        key: "throughput_rps",
        label: "throughput, 64 in flight, 1 KiB",
        unit: Unit::PerSec,
        target: Some(Target::RatioAtLeast(0.7)),
    },
    Metric {
        key: "throughput_cpu_us",
        label: "CPU per request in that run (proxy; direct: server)",
        unit: Unit::Micros,
        target: None,
    },
    Metric {
        key: "peak_rss_mib",
        label: "peak RSS after 1 KiB traffic",
        unit: Unit::MiB,
        target: Some(Target::AtMost(20.0)),
    },
    Metric {
        key: "startup_ms",
        label: "startup to initialize reply (median)",
        unit: Unit::Millis,
        target: Some(Target::AtMost(20.0)),
    },
    Metric {
        key: "big_100m_ms",
        label: "100 MiB result round trip",
        unit: Unit::Millis,
        target: None,
    },
    Metric {
        key: "peak_rss_after_big_mib",
        label: "peak RSS after the 100 MiB result",
        unit: Unit::MiB,
        target: None,
    },
];

impl Figures {
    /// Values in METRICS order; None where nothing was measured.
    pub fn values(&self) -> [Option<f64>; METRICS.len()] {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let tput = (self.tput_replies > 0)
            .then(|| self.tput_replies as f64 / self.tput_time.as_secs_f64());
        [
            percentile(&self.rt_1k, 50.0).map(us),
            percentile(&self.rt_1k, 99.0).map(us),
            percentile(&self.rt_64k, 50.0).map(us),
            percentile(&self.rt_64k, 99.0).map(us),
            tput,
            (self.tput_replies > 0).then(|| us(self.tput_cpu) / self.tput_replies as f64),
            self.rss_kib.map(mib),
            percentile(&self.startups, 50.0).map(ms),
            self.big.map(ms),
            self.rss_after_big_kib.map(mib),
        ]
    }
}

/// Nearest-rank percentile.
fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ms, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&ms[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
