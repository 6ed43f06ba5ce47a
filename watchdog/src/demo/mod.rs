//! `mcp-watchdog demo`: an embedded scripted MCP server behind the proxy, driven by a short session.
pub mod server;
use std::process::ExitCode;
pub fn run(_args: crate::cli::DemoArgs) -> ExitCode {
    ExitCode::SUCCESS
}
