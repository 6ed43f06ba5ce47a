//! `mcp-watchdog install`: wrap every stdio server of the clients' configs with the watchdog.

use crate::clients::apply::{self, FilePlan};
use crate::clients::config_file::find_tables;
use crate::clients::entry::{self, classify, Entry};
use crate::clients::jsonc::{self, NodeKind};
use crate::clients::report::{Row, Status};
use crate::clients::{edit, uninstall, ClientArgs, ConfigFile, Locations};
use std::process::ExitCode;

/// Runs the subcommand for this process: the watchdog written into the configs is this very
/// binary, by absolute path (some clients start servers with a PATH of their own).
pub fn run(args: &ClientArgs) -> ExitCode {
    let watchdog = match this_binary() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("mcp-watchdog: cannot tell where this binary is: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    apply::run_subcommand(args, |text, file| plan(text, file, &watchdog))
}

fn this_binary() -> anyhow::Result<String> {
    let path = std::env::current_exe()?.canonicalize()?;
    path.into_os_string()
        .into_string()
        .map_err(|p| anyhow::anyhow!("its path {p:?} is not UTF-8, which JSON cannot hold"))
}

/// Runs install over the files `args` selects under `at`, printing to `out`; true if every file
/// went well.
pub fn run_with(
    args: &ClientArgs,
    at: &Locations,
    watchdog: &str,
    out: &mut dyn std::io::Write,
) -> bool {
    apply::run_files(&args.files(at), args.dry_run, out, |text, file| {
        plan(text, file, watchdog)
    })
}

/// Works out the wrapped text of one config file. Refuses (with the reason) what it cannot change
/// safely, including a change that `uninstall` would not undo to the byte.
pub fn plan(text: &str, file: &ConfigFile, watchdog: &str) -> Result<FilePlan, String> {
    let root = jsonc::parse(text, file.comments).map_err(|e| e.to_string())?;
    let tables = find_tables(text, &root, file.tables)?;
    let several = tables.len() > 1;
    let mut rows = Vec::new();
    let mut edits = Vec::new();
    let mut wrapped = Vec::new();
    for table in &tables {
        let NodeKind::Object(members) = &table.node.kind else {
            unreachable!("find_tables returns objects");
        };
        for member in members {
            let server = if several {
                format!("{} › {}", table.label, member.key)
            } else {
                member.key.clone()
            };
            let row = |status, detail: String, notes| Row {
                server: server.clone(),
                status,
                detail,
                notes,
            };
            rows.push(match classify(&member.value) {
                Entry::Stdio(stdio) => {
                    edits.extend(entry::wrap_edits(text, &stdio, watchdog));
                    wrapped.push((table.label.clone(), member.key.clone()));
                    let line = entry::command_line(stdio.command(), &stdio.args());
                    row(Status::Wrapped, line, entry::quoting_notes(&stdio))
                }
                Entry::Wrapped(stdio) => row(
                    Status::AlreadyWrapped,
                    entry::command_line(stdio.command(), &stdio.args()),
                    vec![],
                ),
                Entry::Remote { description } => row(
                    Status::NotYetCovered,
                    format!("{description} (HTTP/SSE servers are not proxied yet)"),
                    vec![],
                ),
                Entry::Other { reason } => row(Status::LeftAlone, reason, vec![]),
            });
        }
    }
    let new_text = edit::apply(text, edits);
    if new_text != text {
        check_reversible(text, &new_text, file, &wrapped)?;
    }
    Ok(FilePlan { rows, new_text })
}

/// A wrap is only written if unwrapping the entries it wrapped gives back the original bytes.
fn check_reversible(
    original: &str,
    wrapped_text: &str,
    file: &ConfigFile,
    wrapped: &[(String, String)],
) -> Result<(), String> {
    let ours = |label: &str, key: &str| wrapped.iter().any(|(l, k)| l == label && k == key);
    let undone = uninstall::plan_some(wrapped_text, file, ours).map(|p| p.new_text);
    if undone.as_deref() == Ok(original) {
        Ok(())
    } else {
        Err(
            "the change could not be undone exactly by `mcp-watchdog uninstall`, so it was not \
             made (please report this with the file's layout)"
                .to_owned(),
        )
    }
}
