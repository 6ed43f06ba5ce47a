//! `mcp-watchdog scan`: start each configured server briefly, ask it what it offers, and run every
//! metadata check on the answers, without any AI client involved.
//!
//! `targets` decides which servers, `start_checks` looks at their command lines, `probe` speaks
//! MCP to each, `findings` runs the proxy's stateless inspectors, `pins` compares with the
//! approved pins (read only), and `report` prints the result and decides the exit status.

pub mod findings;
pub mod pins;
pub mod probe;
pub mod report;
pub mod start_checks;
pub mod targets;

use crate::cli::ScanArgs;
use crate::inspect::registry::pipeline_for;
use crate::inspect::Pipeline;
use crate::pins::snapshot::Snapshot;
use crate::pins::Store;
use probe::StderrEcho;
use report::{ScanReport, ServerReport, ServerStatus, EXIT_ERROR};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use targets::{Plan, Target};

pub fn run(args: &ScanArgs) -> ExitCode {
    let plan = match targets::plan(args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("mcp-watchdog scan: {e:#}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    for e in &plan.unreadable {
        eprintln!("mcp-watchdog scan: error: {e}");
    }
    if plan.targets.is_empty() && plan.skipped.is_empty() && plan.unreadable.is_empty() {
        eprintln!(
            "mcp-watchdog scan: no servers found in the clients' configs; give --config FILE, \
             --client NAME or a command after `--`"
        );
        return ExitCode::from(EXIT_ERROR);
    }
    let progress = args.verbose > 0 || std::io::stderr().is_terminal();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-watchdog scan: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Servers are spawned from this thread, which lives until they are gone (PR_SET_PDEATHSIG is
    // tied to the spawning thread); as subreaper, the scan can still end what a launcher such as
    // npx leaves behind.
    if let Err(e) = crate::supervisor::spawn::become_subreaper() {
        tracing::warn!(
            "cannot become a child subreaper ({e}); orphaned server processes may escape"
        );
    }
    let mut report = runtime.block_on(scan(&plan, args, progress));
    let status = report.finish();
    if args.json {
        let mut text = serde_json::to_string_pretty(&report).expect("the report serializes");
        text.push('\n');
        write_out(&text);
    } else {
        write_out(&report.render());
    }
    ExitCode::from(status)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error worth a panic.
fn write_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

async fn scan(plan: &Plan, args: &ScanArgs, progress: bool) -> ScanReport {
    let pipeline = pipeline_for(plan.policy.clone(), plan.filters.clone());
    let pins = plan
        .pins_file
        .clone()
        .or_else(Store::default_path)
        .map(|p| Snapshot::read(&p));
    if let Some(Snapshot::Unusable(path, why)) = &pins {
        eprintln!(
            "mcp-watchdog scan: the pins file {} is unusable ({why}); pins are not compared",
            path.display()
        );
    }
    let pins_file = pins.as_ref().map(Snapshot::file);
    let checks = start_checks::start_checks();
    let timeout = Duration::from_secs(args.timeout);
    let mut report = ScanReport {
        config_errors: plan.unreadable.clone(),
        ..Default::default()
    };
    let total = plan.targets.len();
    for (i, target) in plan.targets.iter().enumerate() {
        if progress {
            eprintln!("scanning {}/{total}: {}…", i + 1, target.name);
        }
        let echo = if args.verbose > 1 {
            StderrEcho::Echo(target.name.clone())
        } else {
            StderrEcho::Quiet
        };
        let (mut server, probe) = scan_one(target, &pipeline, &checks, timeout, echo).await;
        // A server that never identified itself cannot be matched with its pins.
        if let (Some(file), true) = (&pins_file, probe.initialize.is_some()) {
            let (standing, found) = pins::compare(
                file,
                &target.pin_name,
                &target.command,
                &probe,
                &plan.policy,
            );
            server.pins = Some(standing);
            for (kind, key, alert) in found {
                server.item_mut(&kind, &key).findings.push(alert);
            }
        }
        report.servers.push(server);
    }
    for s in &plan.skipped {
        report.servers.push(ServerReport::skipped(
            s.name.clone(),
            s.source.clone(),
            s.reason.clone(),
        ));
    }
    report
}

/// Start-time checks, then the probe and the metadata inspectors; the probe is returned for the
/// pin comparison.
async fn scan_one(
    target: &Target,
    pipeline: &Pipeline,
    checks: &[Box<dyn start_checks::StartCheck>],
    timeout: Duration,
    echo: StderrEcho,
) -> (ServerReport, probe::Probe) {
    let mut server = ServerReport::started(target);
    let early = start_checks::run_all(checks, &target.name, &target.command);
    if !early.is_empty() {
        let args: Vec<&str> = target.command.args.iter().map(String::as_str).collect();
        let line = crate::clients::entry::command_line(&target.command.program, &args);
        server.item_mut("command", &line).findings = early;
    }
    let probe = probe::probe(&target.command, timeout, echo).await;
    server.status = match &probe.failure {
        None => ServerStatus::Scanned,
        Some(_) => ServerStatus::Failed,
    };
    server.reason = probe.failure.clone();
    server.notes = probe.notes.clone();
    if probe.failure.is_some() {
        server.stderr_tail = probe.stderr_tail.clone();
    }
    if let Some(init) = &probe.initialize {
        server.server_info = init.get("serverInfo").cloned();
        server.protocol_version = init.get("protocolVersion").cloned();
    }
    for listing in &probe.lists {
        if let Some((kind, array, _)) = crate::pins::ItemKind::of_list_method(listing.method) {
            let n = listing
                .pages
                .iter()
                .filter_map(|p| p.get(array).and_then(serde_json::Value::as_array))
                .map(Vec::len)
                .sum();
            server.counts.insert(format!("{}s", kind.label()), n);
        }
    }
    let items = findings::inspect_probe(pipeline, &target.name, &probe);
    server.items.extend(items);
    (server, probe)
}
