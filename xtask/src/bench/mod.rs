//! `cargo xtask bench`: compares the watchdog with a direct connection and a plain byte relay.
//!
//! All chains run in one process, phase by phase and round-robin inside each phase, so slow
//! drift on a shared machine hits every column alike and the ratios stay meaningful.

mod chain;
mod figures;
mod fs;
mod lines;
mod measure;
mod report;
mod session;

use anyhow::{bail, Context, Result};
use chain::{Chain, Setup};
use figures::Figures;
use report::ChainResult;
use session::Session;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const USAGE: &str = "\
cargo xtask bench [--quick] [--json FILE] [--only direct,relay,watchdog]
cargo xtask bench fs [--files N] [--runs N] [--only LIST]   (filesystem monitoring, root)

  Builds the workspace binaries in release, then measures round-trip latency, throughput,
  peak RSS, startup time and one 100 MiB result through three chains:
    direct    client -> bench-echo
    relay     client -> byte-relay -> bench-echo
    watchdog  client -> mcp-watchdog -> bench-echo
  and prints a Markdown table with the watchdog/relay ratios and the targets.

  Two more chains, only when --only names them, show where the watchdog's cost goes:
    no-analyzers   the watchdog with the stateful analyzers' and guards' rules off
    no-inspection  the watchdog with every rule off: framing, envelopes, routing, audit

  --quick        fewer iterations, for a smoke run
  --json FILE    also write the figures as JSON
  --only LIST    run only these chains (comma-separated)

  MCP_WATCHDOG_BENCH_BIN=PATH measures that watchdog binary instead of the one just built
  (to compare two builds side by side). The watchdog runs with --fs-backend off: the
  filesystem monitor is measured by `cargo xtask bench fs`.";

struct Options {
    quick: bool,
    json: Option<PathBuf>,
    chains: Vec<Chain>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut opts = Options {
            quick: false,
            json: None,
            chains: chain::DEFAULT.to_vec(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--json" => opts.json = Some(it.next().context("--json needs a FILE")?.into()),
                "--only" => {
                    opts.chains = Chain::parse_list(it.next().context("--only needs a LIST")?)?
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown bench option {other:?}\n\n{USAGE}"),
            }
        }
        Ok(opts)
    }
}

/// How much of each measurement to do. Latency and throughput are split into `rounds` slices
/// taken in turn by each chain: on a shared 2-core machine the load changes by the second.
struct Plan {
    rounds: usize,
    warm_1k: usize,
    calls_1k: usize,
    warm_64k: usize,
    calls_64k: usize,
    in_flight: usize,
    tput_span: Duration,
    startups: usize,
    big: u64,
}

const FULL: Plan = Plan {
    rounds: 10,
    warm_1k: 300,
    calls_1k: 3000,
    warm_64k: 100,
    calls_64k: 1000,
    in_flight: 64,
    tput_span: Duration::from_secs(3),
    startups: 20,
    big: 100 << 20,
};

const QUICK: Plan = Plan {
    rounds: 3,
    warm_1k: 50,
    calls_1k: 400,
    warm_64k: 20,
    calls_64k: 100,
    in_flight: 64,
    tput_span: Duration::from_millis(600),
    startups: 5,
    big: 100 << 20,
};

const KIB: u64 = 1024;
/// Generous: the watchdog may inspect every byte of the large result.
const BIG_TIMEOUT: Duration = Duration::from_secs(300);

/// One chain's progress through the run.
struct Run {
    chain: Chain,
    session: Option<Session>,
    figures: Figures,
    error: Option<String>,
    notes: Vec<String>,
    /// False when its binary could not be built: then there is nothing to start.
    built: bool,
}

impl Run {
    /// Runs one step if the chain is still alive; the first failure ends the chain's run.
    fn step(
        &mut self,
        setup: &Setup,
        what: &str,
        f: impl FnOnce(&mut Session, &mut Figures) -> Result<()>,
    ) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Err(e) = f(session, &mut self.figures) {
            let exit = session.exit_note();
            self.session = None; // kills what is left of the chain
            self.error = Some(format!(
                "{what}: {e:#}{exit}{}",
                stderr_tail(setup, self.chain)
            ));
        }
    }
}

pub fn run(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("fs") {
        return fs::run(&args[1..]);
    }
    let opts = Options::parse(args)?;
    let plan = if opts.quick { &QUICK } else { &FULL };
    let (bin_dir, build_error) = build(&opts.chains)?;
    let tmp = std::env::temp_dir().join(format!("mcp-watchdog-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let setup = Setup { bin_dir, tmp };
    setup.write_policies(&opts.chains)?;

    let mut runs: Vec<Run> = opts
        .chains
        .iter()
        .map(|&chain| {
            let error = chain.runs_watchdog().then(|| build_error.clone()).flatten();
            Run {
                chain,
                session: None,
                figures: Figures::default(),
                built: error.is_none(),
                error,
                notes: Vec::new(),
            }
        })
        .collect();

    measure_sessions(&setup, plan, &mut runs);
    measure_startups(&setup, plan, &mut runs);

    let results: Vec<ChainResult> = runs
        .into_iter()
        .map(|r| ChainResult {
            chain: r.chain,
            values: r.figures.values(),
            error: r.error,
            notes: r.notes,
        })
        .collect();
    println!("{}", report::markdown(&results));
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report::json(&results, opts.quick))?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: figures written to {}", path.display());
    }
    let _ = std::fs::remove_dir_all(&setup.tmp);
    Ok(())
}

/// Everything measured on one long-lived session per chain.
fn measure_sessions(setup: &Setup, plan: &Plan, runs: &mut [Run]) {
    progress("starting the chains");
    for run in runs.iter_mut().filter(|r| r.error.is_none()) {
        match Session::spawn(setup, run.chain) {
            Ok(s) => run.session = Some(s),
            Err(e) => run.error = Some(format!("spawn: {e:#}")),
        }
        run.step(setup, "handshake", |s, _| s.handshake());
    }

    progress("round trips, 1 KiB results");
    each(setup, runs, "warm-up 1 KiB", |s, _| {
        measure::warm_up(s, KIB, plan.warm_1k)
    });
    rounds(setup, plan, runs, "round trips 1 KiB", |s, f| {
        measure::round_trips(s, KIB, plan.calls_1k / plan.rounds, &mut f.rt_1k)
    });

    progress("throughput, 64 in flight");
    rounds(setup, plan, runs, "throughput", |s, f| {
        let span = plan.tput_span / plan.rounds as u32;
        let run = measure::throughput(s, KIB, plan.in_flight, span)?;
        f.tput_replies += run.replies;
        f.tput_time += run.elapsed;
        f.tput_cpu += run.cpu;
        Ok(())
    });
    each(setup, runs, "peak RSS", |s, f| {
        f.rss_kib = Some(measure::peak_rss_kib(s.pid())?);
        Ok(())
    });

    progress("round trips, 64 KiB results");
    each(setup, runs, "warm-up 64 KiB", |s, _| {
        measure::warm_up(s, 64 * KIB, plan.warm_64k)
    });
    rounds(setup, plan, runs, "round trips 64 KiB", |s, f| {
        measure::round_trips(s, 64 * KIB, plan.calls_64k / plan.rounds, &mut f.rt_64k)
    });

    progress("one 100 MiB result");
    each(setup, runs, "100 MiB result", |s, f| {
        s.reserve(plan.big + 4096);
        f.big = Some(s.round_trip(plan.big, BIG_TIMEOUT)?);
        f.rss_after_big_kib = Some(measure::peak_rss_kib(s.pid())?);
        Ok(())
    });

    for run in runs.iter_mut() {
        if let Some(s) = run.session.take() {
            if let Err(e) = s.close() {
                run.notes.push(format!("shutdown after the run: {e:#}"));
            }
        }
    }
}

/// Fresh chains, interleaved across chains; a chain stops at its first failure.
fn measure_startups(setup: &Setup, plan: &Plan, runs: &mut [Run]) {
    progress("startup times");
    let mut failed = vec![false; runs.len()];
    for _ in 0..plan.startups {
        for (run, failed) in runs.iter_mut().zip(failed.iter_mut()) {
            if *failed || !run.built {
                continue;
            }
            match measure::startup(setup, run.chain) {
                Ok((took, shutdown)) => {
                    run.figures.startups.push(took);
                    if let Some(e) = shutdown {
                        let note = format!("fresh start: {e}");
                        if !run.notes.contains(&note) {
                            run.notes.push(note);
                        }
                    }
                }
                Err(e) => {
                    *failed = true;
                    run.notes
                        .push(format!("startup: {e:#}{}", stderr_tail(setup, run.chain)));
                }
            }
        }
    }
}

fn each(
    setup: &Setup,
    runs: &mut [Run],
    what: &str,
    mut f: impl FnMut(&mut Session, &mut Figures) -> Result<()>,
) {
    for run in runs.iter_mut() {
        run.step(setup, what, &mut f);
    }
}

/// Splits a measurement into rounds, rotating which chain goes first in each round.
fn rounds(
    setup: &Setup,
    plan: &Plan,
    runs: &mut [Run],
    what: &str,
    mut f: impl FnMut(&mut Session, &mut Figures) -> Result<()>,
) {
    let n = runs.len();
    for round in 0..plan.rounds {
        for k in 0..n {
            runs[(round + k) % n].step(setup, what, &mut f);
        }
    }
}

/// Builds the binaries in release; a watchdog that does not build only costs its column.
fn build(chains: &[Chain]) -> Result<(PathBuf, Option<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let want_watchdog = chains.iter().any(|c| c.runs_watchdog());
    let cargo_build = |with_watchdog: bool| -> Result<bool> {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root).args(["build", "--release"]);
        if with_watchdog {
            cmd.args(["-p", "mcp-watchdog"]);
        }
        cmd.args(["-p", "xtask", "--bins"]);
        progress(&format!("building: {cmd:?}"));
        Ok(cmd.status().context("running cargo build")?.success())
    };
    let mut build_error = None;
    if !cargo_build(want_watchdog)? {
        if !want_watchdog || !cargo_build(false)? {
            bail!("cargo build failed");
        }
        build_error = Some("build: mcp-watchdog did not build (see cargo's output)".to_string());
    }
    // This xtask binary sits in target/release, next to the binaries just built.
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("xtask binary directory")?
        .to_path_buf();
    if want_watchdog && build_error.is_none() && !bin_dir.join("mcp-watchdog").exists() {
        build_error = Some(format!("build: no mcp-watchdog in {}", bin_dir.display()));
    }
    Ok((bin_dir, build_error))
}

/// The end of the chain's stderr, which usually says why it failed.
fn stderr_tail(setup: &Setup, chain: Chain) -> String {
    let Ok(text) = std::fs::read_to_string(setup.stderr_log(chain)) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    format!(" (stderr: {tail})")
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}
