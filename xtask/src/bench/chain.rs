//! The three process chains the benchmark compares, and the command line of each.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The client talks to bench-echo itself.
    Direct,
    /// byte-relay between client and bench-echo: the floor for any proxy.
    Relay,
    /// mcp-watchdog between client and bench-echo.
    Watchdog,
}

pub const ALL: [Chain; 3] = [Chain::Direct, Chain::Relay, Chain::Watchdog];

impl Chain {
    pub fn name(self) -> &'static str {
        match self {
            Chain::Direct => "direct",
            Chain::Relay => "relay",
            Chain::Watchdog => "watchdog",
        }
    }

    pub fn parse_list(list: &str) -> Result<Vec<Chain>> {
        let mut chains = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some(chain) = ALL.into_iter().find(|c| c.name() == name) else {
                bail!("unknown chain {name:?} (expected direct, relay, watchdog)");
            };
            if !chains.contains(&chain) {
                chains.push(chain);
            }
        }
        if chains.is_empty() {
            bail!("--only needs at least one chain");
        }
        // Keep the table's column order fixed whatever order was asked for.
        chains.sort_by_key(|c| ALL.iter().position(|a| a == c));
        Ok(chains)
    }
}

/// Where the binaries are and where the watchdog may write.
pub struct Setup {
    pub bin_dir: PathBuf,
    pub tmp: PathBuf,
}

impl Setup {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn audit_log(&self) -> PathBuf {
        self.tmp.join("audit.jsonl")
    }

    pub fn stderr_log(&self, chain: Chain) -> PathBuf {
        self.tmp.join(format!("{}.stderr", chain.name()))
    }

    /// The command whose stdin/stdout the client talks to; its pid is the one measured for RSS.
    pub fn command(&self, chain: Chain) -> Command {
        let echo = self.bin("bench-echo");
        match chain {
            Chain::Direct => Command::new(echo),
            Chain::Relay => with_args(self.bin("byte-relay"), &[], &echo),
            Chain::Watchdog => {
                let audit = self.audit_log();
                // The message path only: filesystem monitoring has its own bench (`bench fs`).
                let args = [
                    "--quiet".as_ref(),
                    "--audit-log".as_ref(),
                    audit.as_os_str(),
                    "--max-frame-bytes".as_ref(),
                    "256M".as_ref(),
                    "--fs-backend".as_ref(),
                    "off".as_ref(),
                ];
                // Another build of the watchdog, to compare two side by side.
                let bin = std::env::var_os("MCP_WATCHDOG_BENCH_BIN")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| self.bin("mcp-watchdog"));
                with_args(bin, &args, &echo)
            }
        }
    }
}

fn with_args(program: PathBuf, args: &[&std::ffi::OsStr], echo: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).arg("--").arg(echo);
    cmd
}
