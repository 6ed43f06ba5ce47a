//! Analyzer actors: stateful correlation fed with observations over mailboxes.
//!
//! The session sends every message it forwarded (or stopped) as an [`Observation`]; analyzers
//! correlate across messages and servers and raise alerts. Mailboxes are bounded: an analyzer that
//! falls behind loses observations (counted), never slows the traffic.

pub mod drift;
pub mod flow;
pub mod semantic;
pub mod supply_chain;

use crate::alert::Direction;
use crate::jsonrpc::Kind;
use actix::prelude::*;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One message as the session handled it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Observation {
    pub at: Instant,
    pub server: Arc<str>,
    pub direction: Direction,
    pub kind: Kind,
    /// For responses, the method of the request answered.
    pub method: Option<Arc<str>>,
    /// The bytes as forwarded (after any rewrite), or as received when stopped.
    pub raw: Bytes,
    pub blocked: bool,
    /// Which of the pipeline's observed literals `raw` contains, when the pipeline's scan read
    /// exactly these bytes (indices into the list given to
    /// [`crate::inspect::Pipeline::observe_literals`]); `None`: the analyzer reads `raw` itself.
    pub literals: Option<Arc<[u32]>>,
}

/// The analyzers registered for a session.
#[derive(Clone, Default)]
pub struct Analyzers {
    recipients: Vec<Recipient<Observation>>,
    dropped: Arc<AtomicU64>,
}

impl Analyzers {
    pub fn add(&mut self, recipient: Recipient<Observation>) {
        self.recipients.push(recipient);
    }

    pub fn is_empty(&self) -> bool {
        self.recipients.is_empty()
    }

    /// Hands the observation to every analyzer whose mailbox has room.
    pub fn observe(&self, observation: Observation) {
        for r in &self.recipients {
            if r.try_send(observation.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Observations lost because an analyzer's mailbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(Arc<AtomicU64>);
    impl Actor for Counter {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.set_mailbox_capacity(4);
        }
    }
    impl Handler<Observation> for Counter {
        type Result = ();
        fn handle(&mut self, _: Observation, _: &mut Context<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn observation() -> Observation {
        Observation {
            at: Instant::now(),
            server: "s".into(),
            direction: Direction::ServerToClient,
            kind: Kind::Notification,
            method: Some("notifications/message".into()),
            raw: Bytes::from_static(b"{}"),
            blocked: false,
            literals: None,
        }
    }

    #[actix_rt::test]
    async fn observations_reach_analyzers_and_overflow_is_counted_not_queued() {
        let seen = Arc::new(AtomicU64::new(0));
        let addr = Counter(seen.clone()).start();
        let mut analyzers = Analyzers::default();
        analyzers.add(addr.recipient());
        tokio::task::yield_now().await;
        for _ in 0..50 {
            analyzers.observe(observation());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let delivered = seen.load(Ordering::Relaxed);
        assert!(delivered >= 4, "delivered {delivered}");
        assert_eq!(delivered + analyzers.dropped(), 50);
    }
}
