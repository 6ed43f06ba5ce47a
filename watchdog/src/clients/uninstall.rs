//! `mcp-watchdog uninstall`: give every wrapped server its original command and args back.

use crate::clients::apply::{self, FilePlan};
use crate::clients::config_file::find_tables;
use crate::clients::entry::{self, classify, Entry};
use crate::clients::jsonc::{self, NodeKind};
use crate::clients::report::{Row, Status};
use crate::clients::{edit, ClientArgs, ConfigFile, Locations};
use std::process::ExitCode;

pub fn run(args: &ClientArgs) -> ExitCode {
    apply::run_subcommand(args, plan)
}

/// Runs uninstall over the files `args` selects under `at`, printing to `out`; true if every file
/// went well.
pub fn run_with(args: &ClientArgs, at: &Locations, out: &mut dyn std::io::Write) -> bool {
    apply::run_files(&args.files(at), args.dry_run, out, plan)
}

/// Works out the unwrapped text of one config file.
pub fn plan(text: &str, file: &ConfigFile) -> Result<FilePlan, String> {
    plan_some(text, file, |_, _| true)
}

/// [`plan`] for the entries `wanted(table label, server name)` picks; the rest stay as they are.
pub fn plan_some(
    text: &str,
    file: &ConfigFile,
    wanted: impl Fn(&str, &str) -> bool,
) -> Result<FilePlan, String> {
    let root = jsonc::parse(text, file.comments).map_err(|e| e.to_string())?;
    let tables = find_tables(text, &root, file.tables)?;
    let several = tables.len() > 1;
    let mut rows = Vec::new();
    let mut edits = Vec::new();
    for table in &tables {
        let NodeKind::Object(members) = &table.node.kind else {
            unreachable!("find_tables returns objects");
        };
        for member in members.iter().filter(|m| wanted(&table.label, &m.key)) {
            let server = if several {
                format!("{} › {}", table.label, member.key)
            } else {
                member.key.clone()
            };
            let (status, detail) = match classify(&member.value) {
                Entry::Wrapped(stdio) => match entry::unwrap_edits(text, &stdio) {
                    Ok(unwrap) => {
                        edits.extend(unwrap);
                        let args = stdio.args();
                        let dash = args.iter().position(|a| *a == "--").unwrap_or(0);
                        let line = entry::command_line(args[dash + 1], &args[dash + 2..]);
                        (Status::Restored, line)
                    }
                    Err(entry::NotAWrap(reason)) => (Status::LeftAlone, reason),
                },
                Entry::Stdio(stdio) => (
                    Status::NotWrapped,
                    entry::command_line(stdio.command(), &stdio.args()),
                ),
                Entry::Remote { description } => (Status::NotWrapped, description),
                Entry::Other { reason } => (Status::LeftAlone, reason),
            };
            rows.push(Row {
                server,
                status,
                detail,
                notes: vec![],
            });
        }
    }
    Ok(FilePlan {
        rows,
        new_text: edit::apply(text, edits),
    })
}
