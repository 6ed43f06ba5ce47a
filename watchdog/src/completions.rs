//! `mcp-watchdog completions SHELL`: the shell completion script, generated from the clap
//! definitions so it never drifts from the real command line.

use crate::cli::Cli;
use clap::CommandFactory;
use std::process::ExitCode;

pub fn run(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "mcp-watchdog", &mut std::io::stdout());
    ExitCode::SUCCESS
}
