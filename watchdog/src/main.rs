use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = watchdog::cli::Cli::parse();
    watchdog::run(cli)
}
