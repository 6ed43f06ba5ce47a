//! A second thread that takes part of the work on a large message, so that its round trip is not
//! one core's whole serial cost.
//!
//! The session's thread runs one part and the side thread the other at the same time; the
//! session waits for both. Waking a parked thread took ~20 µs on the development VM, so this pays
//! only for messages whose parsing and scanning take several times that.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

pub struct SideThread {
    jobs: mpsc::Sender<Job>,
}

impl SideThread {
    /// Starts the thread; it ends when the `SideThread` is dropped.
    pub fn spawn() -> std::io::Result<SideThread> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("mcp-watchdog-side".into())
            .spawn(move || {
                let mut queue = JobQueue::new(queue);
                while let Some(job) = queue.next() {
                    // A job that panics drops its result sender; the caller then runs it itself.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        Ok(SideThread { jobs })
    }

    /// Runs `here` on this thread and `there` on the side thread at the same time, and returns
    /// both results. Should the side thread fail, `there` is run here afterwards.
    pub fn join<A, B, RA, RB>(&self, here: A, there: B) -> (RA, RB)
    where
        A: FnOnce() -> RA,
        B: FnOnce() -> RB + Clone + Send + 'static,
        RB: Send + 'static,
    {
        let (done, result) = mpsc::sync_channel::<RB>(1);
        let remote = there.clone();
        let sent = self
            .jobs
            .send(Box::new(move || {
                let _ = done.send(remote());
            }))
            .is_ok();
        let a = here();
        let b = match sent.then(|| wait_briefly_awake(&result)).flatten() {
            Some(b) => b,
            None => there(),
        };
        (a, b)
    }
}

/// How long the side thread stays awake for the next job after one, within a run of large
/// messages (a client reading several files, pages of results). A job that finds the thread
/// parked waits for it to wake (~20 µs measured, more when its CPU had gone idle). Back to back
/// 64 KiB round trips measured p50 ~185 µs with the thread parking, ~125 µs with it staying
/// awake; the yielding costs the proxy up to this much CPU after each large message of a run.
const LINGER: Duration = Duration::from_micros(200);

/// Jobs this close together make a run; after a job that came alone the thread parks at once,
/// so an occasional large message costs no idle CPU.
const RUN_GAP: Duration = Duration::from_millis(10);

/// The side thread's end of the job queue.
struct JobQueue {
    jobs: mpsc::Receiver<Job>,
    last_job: Option<Instant>,
    linger: Duration,
}

impl JobQueue {
    fn new(jobs: mpsc::Receiver<Job>) -> JobQueue {
        JobQueue {
            jobs,
            last_job: None,
            linger: Duration::ZERO,
        }
    }

    /// The next job, or None once the `SideThread` is gone.
    fn next(&mut self) -> Option<Job> {
        let job = receive_awake_for(&self.jobs, self.linger)?;
        let now = Instant::now();
        self.linger = linger_after(self.last_job, now);
        self.last_job = Some(now);
        Some(job)
    }
}

/// How long to stay awake after a job received at `now`, the one before it at `previous`.
fn linger_after(previous: Option<Instant>, now: Instant) -> Duration {
    match previous {
        Some(previous) if now.duration_since(previous) <= RUN_GAP => LINGER,
        _ => Duration::ZERO,
    }
}

/// How long the caller stays awake for the side part before it sleeps: its part is usually done
/// within this, and being woken again costs as much as a small part (~20 µs measured on a VM).
const AWAKE_WAIT: Duration = Duration::from_micros(200);

/// The side part's result, or None if the side thread dropped it.
fn wait_briefly_awake<T>(result: &mpsc::Receiver<T>) -> Option<T> {
    receive_awake_for(result, AWAKE_WAIT)
}

/// Receives, staying awake for up to `awake` before sleeping; None once the sender is gone.
/// Yields rather than spins, so that a thread queued on this very CPU gets it.
fn receive_awake_for<T>(from: &mpsc::Receiver<T>, awake: Duration) -> Option<T> {
    let until = Instant::now() + awake;
    loop {
        match from.try_recv() {
            Ok(item) => return Some(item),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Empty) => return from.recv().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_run_and_the_side_one_on_another_thread() {
        let side = SideThread::spawn().unwrap();
        let here_id = std::thread::current().id();
        for n in 0..100u64 {
            let (a, (b, there_id)) =
                side.join(|| n * 2, move || (n + 1, std::thread::current().id()));
            assert_eq!((a, b), (n * 2, n + 1));
            assert_ne!(there_id, here_id);
        }
    }

    #[test]
    fn a_side_part_slower_than_the_awake_wait_is_still_waited_for() {
        let side = SideThread::spawn().unwrap();
        let slow = AWAKE_WAIT * 10;
        let (a, b) = side.join(
            || 1,
            move || {
                std::thread::sleep(slow);
                2
            },
        );
        assert_eq!((a, b), (1, 2));
    }

    #[test]
    fn the_side_thread_takes_jobs_while_awake_and_after_sleeping_and_ends_with_its_owner() {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ran, seen) = mpsc::channel::<u32>();
        let waiter = std::thread::spawn(move || {
            let mut queue = JobQueue::new(queue);
            let mut taken = 0;
            while let Some(job) = queue.next() {
                job();
                taken += 1;
            }
            taken
        });
        for n in 0..4 {
            let ran = ran.clone();
            jobs.send(Box::new(move || ran.send(n).unwrap())).unwrap();
            assert_eq!(seen.recv().unwrap(), n);
            if n == 2 {
                // Past the linger: the next job finds the thread asleep in recv.
                std::thread::sleep(LINGER * 5);
            }
        }
        drop(jobs);
        assert_eq!(waiter.join().unwrap(), 4);
    }

    #[test]
    fn the_thread_stays_awake_only_within_a_run_of_jobs() {
        let now = Instant::now() + RUN_GAP * 10;
        assert_eq!(linger_after(None, now), Duration::ZERO, "a first job");
        assert_eq!(linger_after(Some(now - RUN_GAP / 4), now), LINGER);
        assert_eq!(linger_after(Some(now - RUN_GAP), now), LINGER);
        assert_eq!(
            linger_after(Some(now - RUN_GAP * 3), now),
            Duration::ZERO,
            "a job that came alone"
        );
    }

    #[test]
    fn a_side_part_that_panics_is_run_again_here() {
        let side = SideThread::spawn().unwrap();
        let here_id = std::thread::current().id();
        let there = move || {
            if std::thread::current().id() != here_id {
                panic!("side failure");
            }
            7
        };
        assert_eq!(side.join(|| 1, there), (1, 7));
        // The side thread survives a panicking job.
        let (_, id) = side.join(|| (), || std::thread::current().id());
        assert_ne!(id, here_id);
    }
}
