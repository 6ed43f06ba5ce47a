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

/// What one throughput run measured.
pub struct Throughput {
    pub replies: u64,
    pub elapsed: Duration,
    /// CPU the chain's own process (and its threads) used meanwhile.
    pub cpu: Duration,
}

/// Keeps `in_flight` calls outstanding for `span`, then drains.
pub fn throughput(
    s: &mut Session,
    size: u64,
    in_flight: usize,
    span: Duration,
) -> Result<Throughput> {
    let cpu_before = cpu_time(s.pid())?;
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
    Ok(Throughput {
        replies: done,
        elapsed: start.elapsed(),
        cpu: cpu_time(s.pid())?.saturating_sub(cpu_before),
    })
}

/// utime + stime of a process (all its threads), at the clock tick's resolution.
fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        let f = fields.get(i).context("short /proc stat line")?;
        f.parse()
            .with_context(|| format!("unexpected tick count {f:?}"))
    };
    // utime and stime: fields 14 and 15 of the line (proc(5)), so 11 and 12 counted from the state.
    let total = ticks(11)? + ticks(12)?;
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    anyhow::ensure!(per_second > 0, "no clock tick rate");
    Ok(Duration::from_secs_f64(total as f64 / per_second as f64))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_reads_this_process_and_grows_as_it_works() {
        let me = std::process::id();
        let before = cpu_time(me).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        while cpu_time(me).unwrap() < before + Duration::from_millis(50) {
            assert!(
                Instant::now() < deadline,
                "10 s of spinning counted as no CPU"
            );
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        assert!(cpu_time(u32::MAX).is_err(), "no such process");
    }
}
