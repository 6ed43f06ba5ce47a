//! mcp-watchdog: a security proxy between an MCP client and its MCP servers.
//!
//! The binary (`main.rs`) only parses the command line; everything else lives here so that
//! benchmarks and tests can drive the same code.

pub mod alert;
pub mod analyze;
pub mod cli;
pub mod clients;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod fsmon;
pub mod inspect;
pub mod jsonrpc;
pub mod mcp;
pub mod pins;
pub mod policy;
pub mod proxy;
pub mod rule_defaults;
pub mod sandbox;
pub mod supervisor;

pub mod alerts_cmd;
pub mod completions;
pub mod run;
pub mod scan;
pub mod scan_text;
pub mod status;

pub use run::run;
