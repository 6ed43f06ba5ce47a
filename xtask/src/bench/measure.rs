//! The individual measurements, each against one chain.

use super::chain::{Chain, Setup};
use super::session::{check_len, Session, REPLY_TIMEOUT};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

/// Sequential calls whose timings are thrown away: fills caches, lets allocators settle.
pub fn warm_up(s: &mut Session, size: u64, n: usize) -> Result<()> {
    for _ in 0..n {
        s.round_trip(size, REPLY_TIMEOUT)?;
    }
    Ok(())
}

/// `n` sequential round trips of `size`-byte results, appended to `out`.
pub fn round_trips(s: &mut Session, size: u64, n: usize, out: &mut Vec<Duration>) -> Result<()> {
    out.reserve(n);
    for _ in 0..n {
        out.push(s.round_trip(size, REPLY_TIMEOUT)?);
    }
    Ok(())
}

/// Keeps `in_flight` calls outstanding for `span`, then drains; returns (replies, elapsed).
pub fn throughput(
    s: &mut Session,
    size: u64,
    in_flight: usize,
    span: Duration,
) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let end = start + span;
    let first = s.call(size)?;
    for _ in 1..in_flight {
        s.call(size)?;
    }
    let mut outstanding = in_flight;
    let mut done = 0u64;
    let mut last = first;
    while outstanding > 0 {
        let reply = s.recv(REPLY_TIMEOUT)?;
        if reply.id < first || reply.id > last + in_flight as u64 {
            bail!("reply id {} was never sent in this run", reply.id);
        }
        check_len(&reply, size)?;
        outstanding -= 1;
        done += 1;
        if Instant::now() < end {
            last = s.call(size)?;
            outstanding += 1;
        }
    }
    Ok((done, start.elapsed()))
}

/// VmHWM of a process, in KiB: the peak resident set since it started.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM line")?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse()
        .with_context(|| format!("unexpected VmHWM value {kib:?}"))
}

/// Time from spawning a fresh chain to its initialize reply. The chain is then shut down; a
/// chain that does not exit cleanly on stdin EOF is reported through the second value.
pub fn startup(setup: &Setup, chain: Chain) -> Result<(Duration, Option<String>)> {
    let t0 = Instant::now();
    let mut s = Session::spawn(setup, chain)?;
    if let Err(e) = s.initialize() {
        let exit = s.exit_note();
        return Err(e.context(format!("fresh start{exit}")));
    }
    let took = t0.elapsed();
    let shutdown = s.close().err().map(|e| format!("{e:#}"));
    Ok((took, shutdown))
}
