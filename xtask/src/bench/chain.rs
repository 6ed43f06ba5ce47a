//! The process chains the benchmark compares, and the command line of each.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The watchdog's list of the rules a policy can set, shared as source: depending on the watchdog's
/// library would make every `cargo xtask` build it too.
#[path = "../../../watchdog/src/rule_defaults.rs"]
mod rule_defaults;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The client talks to bench-echo itself.
    Direct,
    /// byte-relay between client and bench-echo: the floor for any proxy.
    Relay,
    /// mcp-watchdog between client and bench-echo.
    Watchdog,
    /// mcp-watchdog with the rules of the stateful analyzers and guards off: what they cost.
    NoAnalyzers,
    /// mcp-watchdog with every rule off: the proxy's own plumbing (framing, envelopes, routing,
    /// supervision, audit), without inspection.
    NoInspection,
}

/// The chains of the table the targets are judged on.
pub const DEFAULT: [Chain; 3] = [Chain::Direct, Chain::Relay, Chain::Watchdog];

/// Every chain, in the table's column order.
pub const ALL: [Chain; 5] = [
    Chain::Direct,
    Chain::Relay,
    Chain::Watchdog,
    Chain::NoAnalyzers,
    Chain::NoInspection,
];

/// The rules of the stateful analyzers and list-time guards (pinning, shadowing, schema poisoning,
/// flow, drift, floods, sampling and elicitation, authorization, supply chain). The watchdog
/// refuses a rule name it does not know, so a renamed rule shows as a failed column.
const ANALYZER_RULES: &[&str] = &[
    "RUG-PULL",
    "SHADOW",
    "PARAM-INJECT",
    "FLOW",
    "DRIFT",
    "RATE-LIMIT",
    "NOTIF-INJECT",
    "SAMPLING",
    "ELICITATION",
    "OAUTH",
    "TOKEN-REPLAY",
    "SUPPLY-CHAIN",
];

impl Chain {
    pub fn name(self) -> &'static str {
        match self {
            Chain::Direct => "direct",
            Chain::Relay => "relay",
            Chain::Watchdog => "watchdog",
            Chain::NoAnalyzers => "no-analyzers",
            Chain::NoInspection => "no-inspection",
        }
    }

    /// Whether the chain runs mcp-watchdog (and so needs it built).
    pub fn runs_watchdog(self) -> bool {
        matches!(
            self,
            Chain::Watchdog | Chain::NoAnalyzers | Chain::NoInspection
        )
    }

    /// The rules this chain's watchdog runs with turned off.
    fn rules_off(self) -> Vec<&'static str> {
        match self {
            Chain::NoAnalyzers => ANALYZER_RULES.to_vec(),
            Chain::NoInspection => rule_defaults::CONFIGURABLE_RULES.concat(),
            _ => Vec::new(),
        }
    }

    pub fn parse_list(list: &str) -> Result<Vec<Chain>> {
        let mut chains = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some(chain) = ALL.into_iter().find(|c| c.name() == name) else {
                let names: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
                bail!("unknown chain {name:?} (expected {})", names.join(", "));
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

    fn policy_file(&self, chain: Chain) -> PathBuf {
        self.tmp.join(format!("{}.toml", chain.name()))
    }

    /// Writes the policy of each chain that turns rules off.
    pub fn write_policies(&self, chains: &[Chain]) -> Result<()> {
        for &chain in chains {
            let off = chain.rules_off();
            if off.is_empty() {
                continue;
            }
            let mut text = String::from("[rules]\n");
            for rule in off {
                text.push_str(&format!("{rule} = \"off\"\n"));
            }
            let path = self.policy_file(chain);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// The command whose stdin/stdout the client talks to; its pid is the one measured for RSS.
    pub fn command(&self, chain: Chain) -> Command {
        let echo = self.bin("bench-echo");
        match chain {
            Chain::Direct => Command::new(echo),
            Chain::Relay => with_args(self.bin("byte-relay"), &[], &echo),
            Chain::Watchdog | Chain::NoAnalyzers | Chain::NoInspection => {
                let audit = self.audit_log();
                let policy = self.policy_file(chain);
                // The message path only: filesystem monitoring has its own bench (`bench fs`).
                let mut args = vec![
                    "--quiet".as_ref(),
                    "--audit-log".as_ref(),
                    audit.as_os_str(),
                    "--max-frame-bytes".as_ref(),
                    "256M".as_ref(),
                    "--fs-backend".as_ref(),
                    "off".as_ref(),
                ];
                if chain != Chain::Watchdog {
                    args.extend(["--config".as_ref(), policy.as_os_str()]);
                }
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
