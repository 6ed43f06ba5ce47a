//! When to restart a crashed server, and when to give up on it.

use crate::config::RestartConfig;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RestartPolicy {
    config: RestartConfig,
    recent: VecDeque<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RestartDecision {
    After(Duration),
    /// Too many crashes within the window: the server is marked failed.
    GiveUp,
}

impl RestartPolicy {
    pub fn new(config: RestartConfig) -> Self {
        RestartPolicy {
            config,
            recent: VecDeque::new(),
        }
    }

    /// Called on each crash: exponential backoff over the crashes inside the window.
    pub fn on_crash(&mut self, now: Instant) -> RestartDecision {
        let window = Duration::from_secs(self.config.window_secs);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.config.max_restarts as usize {
            return RestartDecision::GiveUp;
        }
        let exp = self.recent.len().min(20) as u32;
        self.recent.push_back(now);
        let delay = self
            .config
            .initial_backoff_ms
            .saturating_mul(1u64 << exp)
            .min(self.config.max_backoff_ms);
        RestartDecision::After(Duration::from_millis(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_then_gives_up_and_forgets_old_crashes() {
        let mut p = RestartPolicy::new(RestartConfig {
            max_restarts: 3,
            window_secs: 60,
            initial_backoff_ms: 100,
            max_backoff_ms: 250,
        });
        let t0 = Instant::now();
        assert_eq!(
            p.on_crash(t0),
            RestartDecision::After(Duration::from_millis(100))
        );
        assert_eq!(
            p.on_crash(t0),
            RestartDecision::After(Duration::from_millis(200))
        );
        assert_eq!(
            p.on_crash(t0),
            RestartDecision::After(Duration::from_millis(250))
        );
        assert_eq!(p.on_crash(t0), RestartDecision::GiveUp);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            p.on_crash(later),
            RestartDecision::After(Duration::from_millis(100))
        );
    }
}
