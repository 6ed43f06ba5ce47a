//! Analyzer actors: stateful correlation fed with observations over mailboxes.
//!
//! The session sends every message it forwarded (or stopped) as an [`Observation`]; analyzers
//! correlate across messages and servers and raise alerts. Observations travel in batches, a few
//! milliseconds apart: an analyzer on another thread is woken once per batch, not once per
//! message (a cross-thread wake costs more than most messages' analysis). A batch read goes back
//! to the session's thread to be freed, where it was allocated. Mailboxes are bounded: an
//! analyzer that falls behind loses observations (counted), never slows the traffic.

pub mod drift;
pub mod flow;
pub mod semantic;
pub mod supply_chain;

use crate::alert::Direction;
use crate::jsonrpc::Kind;
use actix::prelude::*;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// What an analyzer's interest in a message is judged on, before an observation is built.
#[derive(Debug, Clone, Copy)]
pub struct Glance<'a> {
    pub direction: Direction,
    pub kind: Kind,
    /// For responses, the method of the request answered.
    pub method: Option<&'a str>,
    /// As [`Observation::literals`].
    pub literals: Option<&'a [u32]>,
}

/// Whether an analyzer can learn anything from a message like this one. Observations no analyzer
/// wants are not built: each costs the relay's thread its share of a batch.
pub type Interest = fn(&Glance<'_>) -> bool;

/// The interest of an analyzer that reads every message.
pub fn every_message(_: &Glance<'_>) -> bool {
    true
}

/// Observations in the order the session handled them. Dropped, the batch goes home to the
/// session's thread and is freed there: an analyzer's thread freeing the session's allocations
/// (frames, method names) made the two threads contend for the allocator's lock, measured at
/// 7000–9000 futex calls a second under the throughput bench.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Observations {
    items: Vec<Observation>,
    home: Option<Sender<Vec<Observation>>>,
}

impl Observations {
    pub fn iter(&self) -> std::slice::Iter<'_, Observation> {
        self.items.iter()
    }
}

impl Drop for Observations {
    fn drop(&mut self) {
        if let Some(home) = &self.home {
            // A session that has gone leaves the batch to be freed here.
            let _ = home.send(std::mem::take(&mut self.items));
        }
    }
}

/// How long an observation may wait for others to share its batch. Analyzers only alert, and
/// every observation carries its own time.
const BATCH_DELAY: Duration = Duration::from_millis(2);
/// A batch this large leaves at once.
const BATCH_MAX: usize = 256;

/// The analyzers registered for a session.
#[derive(Clone, Default)]
pub struct Analyzers {
    inner: Rc<Inner>,
}

struct Inner {
    recipients: RefCell<Vec<Recipient<Observations>>>,
    /// Any of these wanting a message puts it in the batch every recipient gets.
    interests: RefCell<Vec<Interest>>,
    dropped: Arc<AtomicU64>,
    batch: RefCell<Vec<Observation>>,
    flush_scheduled: Cell<bool>,
    /// Where read batches come back, to be freed on this thread.
    home: Sender<Vec<Observation>>,
    returned: Receiver<Vec<Observation>>,
}

impl Default for Inner {
    fn default() -> Self {
        let (home, returned) = std::sync::mpsc::channel();
        Inner {
            recipients: RefCell::default(),
            interests: RefCell::default(),
            dropped: Arc::default(),
            batch: RefCell::default(),
            flush_scheduled: Cell::default(),
            home,
            returned,
        }
    }
}

impl Analyzers {
    /// Registers an analyzer. It gets every observation some analyzer wants, so it must ignore
    /// what it has no interest in.
    pub fn add(&mut self, recipient: Recipient<Observations>, interest: Interest) {
        self.inner.recipients.borrow_mut().push(recipient);
        self.inner.interests.borrow_mut().push(interest);
    }

    /// Whether some analyzer wants to observe this message.
    pub fn want(&self, glance: &Glance<'_>) -> bool {
        self.inner
            .interests
            .borrow()
            .iter()
            .any(|wants| wants(glance))
    }

    pub fn is_empty(&self) -> bool {
        self.inner.recipients.borrow().is_empty()
    }

    /// Queues the observation for every analyzer; the batch leaves within [`BATCH_DELAY`], or
    /// at once when full. Runs on the session's thread (a local task sends the batch).
    pub fn observe(&self, observation: Observation) {
        let full = {
            let mut batch = self.inner.batch.borrow_mut();
            batch.push(observation);
            batch.len() >= BATCH_MAX
        };
        if full {
            self.inner.flush();
        } else if !self.inner.flush_scheduled.replace(true) {
            let inner = Rc::downgrade(&self.inner);
            actix::spawn(async move {
                tokio::time::sleep(BATCH_DELAY).await;
                if let Some(inner) = inner.upgrade() {
                    inner.flush();
                }
            });
        }
    }

    /// Observations lost because an analyzer's mailbox was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn flush(&self) {
        self.flush_scheduled.set(false);
        // Batches read since the last flush are freed here; one is kept for the next batch.
        let mut next = Vec::new();
        while let Ok(mut spent) = self.returned.try_recv() {
            spent.clear();
            if spent.capacity() > next.capacity() {
                next = spent;
            }
        }
        let batch = std::mem::replace(&mut *self.batch.borrow_mut(), next);
        if batch.is_empty() {
            return;
        }
        let recipients = self.recipients.borrow();
        let n = batch.len() as u64;
        let mut batch = Some(batch);
        for (i, r) in recipients.iter().enumerate() {
            let items = if i + 1 == recipients.len() {
                batch.take().expect("the last recipient takes the batch")
            } else {
                batch.clone().expect("earlier recipients copy the batch")
            };
            let batch = Observations {
                items,
                home: Some(self.home.clone()),
            };
            if r.try_send(batch).is_err() {
                self.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Whatever is still queued when the session goes leaves with it.
impl Drop for Inner {
    fn drop(&mut self) {
        self.flush();
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
    impl Handler<Observations> for Counter {
        type Result = ();
        fn handle(&mut self, batch: Observations, _: &mut Context<Self>) {
            self.0
                .fetch_add(batch.iter().len() as u64, Ordering::Relaxed);
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

    fn counted() -> (Analyzers, Arc<AtomicU64>) {
        let seen = Arc::new(AtomicU64::new(0));
        let addr = Counter(seen.clone()).start();
        let mut analyzers = Analyzers::default();
        analyzers.add(addr.recipient(), every_message);
        (analyzers, seen)
    }

    /// A counted analyzer, started, then `n` observations made.
    async fn counted_after(n: usize) -> (Analyzers, Arc<AtomicU64>) {
        let (analyzers, seen) = counted();
        tokio::task::yield_now().await;
        for _ in 0..n {
            analyzers.observe(observation());
        }
        (analyzers, seen)
    }

    #[actix_rt::test]
    async fn a_partial_batch_arrives_after_the_delay() {
        let (analyzers, seen) = counted_after(50).await;
        assert_eq!(seen.load(Ordering::Relaxed), 0, "not sent one by one");
        tokio::time::sleep(BATCH_DELAY * 20).await;
        assert_eq!(seen.load(Ordering::Relaxed), 50);
        assert_eq!(analyzers.dropped(), 0);
    }

    #[actix_rt::test]
    async fn overflow_is_counted_not_queued() {
        // Full batches leave at once; the mailbox (4 batches) overflows before the actor runs.
        let total = BATCH_MAX * 10;
        let (analyzers, seen) = counted_after(total).await;
        tokio::time::sleep(BATCH_DELAY * 20).await;
        let delivered = seen.load(Ordering::Relaxed);
        assert!(delivered >= 4 * BATCH_MAX as u64, "delivered {delivered}");
        assert!(analyzers.dropped() > 0);
        assert_eq!(delivered + analyzers.dropped(), total as u64);
    }

    #[actix_rt::test]
    async fn a_batch_read_comes_home_to_be_freed_and_its_room_is_reused() {
        let (analyzers, seen) = counted_after(50).await;
        tokio::time::sleep(BATCH_DELAY * 20).await;
        assert_eq!(seen.load(Ordering::Relaxed), 50);
        let home = analyzers
            .inner
            .returned
            .try_recv()
            .expect("the batch came home");
        assert_eq!(home.len(), 50, "with its observations, to be freed here");
        let room = home.capacity();
        analyzers.inner.home.send(home).unwrap();
        analyzers.observe(observation());
        analyzers.inner.flush();
        // The next batch starts in the room of the one that came home.
        assert!(analyzers.inner.batch.borrow().capacity() >= room);
        assert!(analyzers.inner.returned.try_recv().is_err());
    }

    #[actix_rt::test]
    async fn what_is_queued_leaves_when_the_session_goes() {
        let (analyzers, seen) = counted();
        tokio::task::yield_now().await;
        analyzers.observe(observation());
        drop(analyzers);
        tokio::time::sleep(BATCH_DELAY * 20).await;
        assert_eq!(seen.load(Ordering::Relaxed), 1);
    }
}
