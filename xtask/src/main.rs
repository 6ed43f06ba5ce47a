//! Developer tasks for the workspace, run as `cargo xtask TASK`.

mod bench;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask TASK [OPTIONS]

tasks:
  bench    benchmark mcp-watchdog against a direct connection and a byte relay
           (cargo xtask bench --help for its options)
  help     print this message";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("help" | "-h" | "--help") => {
            println!("{HELP}");
            Ok(())
        }
        Some("bench") => bench::run(&args[1..]),
        Some(other) => {
            eprintln!("unknown task {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
