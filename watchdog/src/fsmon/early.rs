//! Events that arrived before their tree was registered. A backend follows a spawner's children
//! from fork, but the owner learns the child's pid only once spawn returns: the first events wait
//! here for a moment instead of being lost.

use super::event::FsEvent;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long an event may wait for its tree.
pub const EARLY_WAIT: Duration = Duration::from_secs(3);
/// Events waiting, at most; beyond this the oldest are dropped.
const EARLY_MAX: usize = 4096;

#[derive(Debug, Default)]
pub struct EarlyEvents {
    waiting: VecDeque<(Instant, FsEvent)>,
}

impl EarlyEvents {
    /// Holds `event`; returns how many older events were dropped to make room (0 or 1).
    pub fn hold(&mut self, event: FsEvent, now: Instant) -> u64 {
        let dropped = if self.waiting.len() == EARLY_MAX {
            self.waiting.pop_front();
            1
        } else {
            0
        };
        self.waiting.push_back((now, event));
        dropped
    }

    /// Takes the events of the tree rooted at `root_pid`, oldest first.
    pub fn take(&mut self, root_pid: u32) -> Vec<FsEvent> {
        let (mine, others): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, e)| e.root_pid == root_pid);
        self.waiting = others;
        mine.into_iter().map(|(_, e)| e).collect()
    }

    /// Drops what waited longer than [`EARLY_WAIT`]; returns how many.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let before = self.waiting.len();
        while self
            .waiting
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= EARLY_WAIT)
        {
            self.waiting.pop_front();
        }
        (before - self.waiting.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsmon::event::{BackendKind, FsOp, Outcome};

    fn event(root: u32) -> FsEvent {
        FsEvent {
            root_pid: root,
            pid: root,
            tid: root,
            comm: String::new(),
            exe: None,
            op: FsOp::Unlink,
            path: "/x".into(),
            path2: None,
            outcome: Outcome::Allowed,
            backend: BackendKind::Ebpf,
        }
    }

    #[test]
    fn events_wait_for_their_tree_in_order_and_expire() {
        let t0 = Instant::now();
        let mut early = EarlyEvents::default();
        early.hold(event(1), t0);
        early.hold(event(2), t0);
        early.hold(event(1), t0 + Duration::from_secs(2));
        assert_eq!(early.take(1).len(), 2);
        assert!(early.take(1).is_empty());
        assert_eq!(early.expire(t0 + EARLY_WAIT), 1);
        assert!(early.take(2).is_empty());
    }

    #[test]
    fn a_full_buffer_drops_the_oldest() {
        let t0 = Instant::now();
        let mut early = EarlyEvents::default();
        for i in 0..EARLY_MAX as u32 {
            assert_eq!(early.hold(event(i + 10), t0), 0);
        }
        assert_eq!(early.hold(event(1), t0), 1);
        assert!(early.take(10).is_empty());
        assert_eq!(early.take(1).len(), 1);
    }
}
