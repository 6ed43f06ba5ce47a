//! Command-line definitions.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// A security proxy for the Model Context Protocol.
///
/// Wrap one stdio MCP server:   mcp-watchdog -- npx -y @modelcontextprotocol/server-everything
/// Front several as a gateway:  mcp-watchdog --config watchdog.toml
#[derive(Debug, Parser)]
#[command(name = "mcp-watchdog", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub proxy: ProxyArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ProxyArgs {
    /// More diagnostics on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// No alert lines on stderr (the audit log still records every alert).
    #[arg(short, long)]
    pub quiet: bool,

    /// Alerts on stderr as one JSON object per line.
    #[arg(long)]
    pub alerts_json: bool,

    /// watchdog.toml with policy and, for gateway mode, the [[server]] entries.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Audit log path (default: $XDG_STATE_HOME/mcp-watchdog/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Largest accepted JSON-RPC frame, in bytes (suffixes K, M, G allowed; default 64M).
    #[arg(long, value_name = "BYTES")]
    pub max_frame_bytes: Option<String>,

    /// Tool pins file (default: $XDG_STATE_HOME/mcp-watchdog/pins.json).
    #[arg(long, value_name = "FILE")]
    pub pins: Option<PathBuf>,

    /// Report only: every rule's action is reduced to alert.
    #[arg(long)]
    pub monitor: bool,

    /// Run servers without the Landlock and seccomp sandbox (same as `sandbox = false`).
    #[arg(long)]
    pub no_sandbox: bool,

    /// Deny sensitive opens and kill a server whose tree writes outside its scope (root or the
    /// daemon; same as `strict = true`).
    #[arg(long)]
    pub strict: bool,

    /// Filesystem monitor backend (default: the best that works here).
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub fs_backend: Option<crate::fsmon::probe::BackendChoice>,

    /// The stdio MCP server to wrap, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub server_command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an embedded scripted MCP server behind the watchdog and show what it does.
    Demo(DemoArgs),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the inspectors on one JSON-RPC message or plain text and print the findings.
    ///
    /// Examples:
    ///   mcp-watchdog scan-text tool-description.txt
    ///   echo '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch","arguments":{"url":"http://169.254.169.254/"}}}' | mcp-watchdog scan-text --direction request -
    ScanText(ScanTextArgs),
    /// Review and approve tool, prompt and resource definitions pinned on first use.
    Pins(PinsArgs),
    /// Wrap every stdio MCP server in the clients' configs with this watchdog.
    ///
    /// Looks in Claude Desktop, Claude Code (user, local and project scope), Cursor, Windsurf and
    /// VS Code configs; writes a backup next to each changed file; never wraps twice. HTTP/SSE
    /// servers are listed as not yet covered and left as they are.
    ///
    /// Examples:
    ///   mcp-watchdog install --dry-run
    ///   mcp-watchdog install --client claude-desktop
    ///   mcp-watchdog install --client cursor --config-path ./team/.cursor/mcp.json
    #[command(verbatim_doc_comment)]
    Install(crate::clients::ClientArgs),
    /// Give every wrapped server in the clients' configs its original command and args back.
    ///
    /// Examples:
    ///   mcp-watchdog uninstall --dry-run
    ///   mcp-watchdog uninstall --client vscode
    #[command(verbatim_doc_comment)]
    Uninstall(crate::clients::ClientArgs),
    /// Show the alerts recorded in the audit log, filtered, or follow them live.
    ///
    /// Examples:
    ///   mcp-watchdog alerts --since 1h
    ///   mcp-watchdog alerts --follow --rule SSRF --server github
    ///   mcp-watchdog alerts --json --since 2d | jq .detail
    #[command(verbatim_doc_comment)]
    Alerts(crate::alerts_cmd::AlertsArgs),
    /// Start each configured server briefly, list what it offers, and run every metadata check.
    ///
    /// Speaks MCP to each server directly (no AI client involved): initialize, then tools/list,
    /// prompts/list, resources/list and resources/templates/list to the last page. Every item
    /// goes through the proxy's metadata inspectors and is compared with the approved pins (read
    /// only: nothing is pinned or approved by a scan). Servers come from --config, from one
    /// client's config (--client), from the command after `--`, or else from every client config
    /// `install` knows.
    ///
    /// Exit status:
    ///   0  nothing found
    ///   1  findings, none critical
    ///   2  bad command line or config, or a server could not be scanned (did not start,
    ///      timed out, broke the protocol); a critical finding still exits 3
    ///   3  at least one critical finding
    ///
    /// Examples:
    ///   mcp-watchdog scan
    ///   mcp-watchdog scan --client claude-desktop
    ///   mcp-watchdog scan --config watchdog.toml --json > scan.json
    ///   mcp-watchdog scan --timeout 60 -- npx -y @modelcontextprotocol/server-everything
    #[command(verbatim_doc_comment)]
    Scan(ScanArgs),
    /// What the watchdog sees: configured servers, sandbox, pins, recent alerts, the daemon.
    ///
    /// Without --config, lists the servers of every client config `install` would touch and
    /// whether each runs through the watchdog.
    ///
    /// Exit status: 0 shown; 1 some part could not be read (a malformed client config, a
    /// corrupt pins file, an unreadable audit log; said on stderr); 2 bad command line or config.
    ///
    /// Examples:
    ///   mcp-watchdog status
    ///   mcp-watchdog status --config watchdog.toml --alerts 20
    ///   mcp-watchdog status --json | jq .pins
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   mcp-watchdog completions bash > ~/.local/share/bash-completion/completions/mcp-watchdog
    ///   mcp-watchdog completions zsh > "${fpath[1]}/_mcp-watchdog"
    ///   mcp-watchdog completions fish > ~/.config/fish/completions/mcp-watchdog.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Root service owning the kernel filesystem monitor for every proxy on this machine.
    ///
    /// Unprivileged proxies connect to its socket, register their servers' pids and scopes (the
    /// daemon checks each pid runs as the caller's user and descends from the caller) and get
    /// their servers' out-of-scope and sensitive writes back; strict mode is enforced here.
    /// configs/mcp-watchdog-daemon.service runs it under systemd.
    ///
    /// Examples:
    ///   sudo mcp-watchdog daemon
    ///   sudo mcp-watchdog daemon --socket /run/mcp-watchdog.sock --fs-backend fanotify
    #[command(verbatim_doc_comment)]
    Daemon(DaemonArgs),
    /// The embedded scripted server used by `demo` (speaks MCP on stdio).
    #[command(hide = true)]
    DemoServer,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Socket to listen on (default: $MCP_WATCHDOG_SOCKET or /run/mcp-watchdog.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Filesystem backend: auto (eBPF, else fanotify), ebpf or fanotify.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = crate::fsmon::probe::BackendChoice::Auto)]
    pub fs_backend: crate::fsmon::probe::BackendChoice,
}

#[derive(Debug, Args, Default)]
pub struct DemoArgs {
    /// Print the raw JSON-RPC lines too.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct ScanTextArgs {
    /// Which way the text travels: a request the client sends, or a response a server sends.
    #[arg(long, value_enum, default_value = "response")]
    pub direction: ScanDirection,
    /// The method the text belongs to (for a response: the method of the request it answers).
    /// Plain text is scanned as a `tools/call` result (response) or argument (request).
    #[arg(long, default_value = "tools/call")]
    pub method: String,
    /// The file to scan; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ScanArgs {
    /// watchdog.toml: scan its [[server]] entries under its policy and pins file.
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["client", "server_command"])]
    pub config: Option<PathBuf>,

    /// Scan the servers in this client's config files (default: every client's).
    #[arg(
        long,
        value_enum,
        value_name = "NAME",
        conflicts_with = "server_command"
    )]
    pub client: Option<crate::clients::ClientChoice>,

    /// One JSON document (servers → items → findings) on stdout instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Seconds each step (start and initialize, each page of each list) may take.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    /// Pins file to compare with (default: `pins_file` of --config, else
    /// $XDG_STATE_HOME/mcp-watchdog/pins.json). Only read.
    #[arg(long, value_name = "FILE")]
    pub pins: Option<PathBuf>,

    /// Progress on stderr even when it is not a terminal; repeat for the servers' own stderr.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The stdio MCP server to scan, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub server_command: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct StatusArgs {
    /// watchdog.toml: show its servers, and use its pins file and audit log.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// One JSON document instead of text.
    #[arg(long)]
    pub json: bool,

    /// How many of the most recent alerts to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub alerts: usize,

    /// Audit log to read (default: the config's, else $XDG_STATE_HOME/mcp-watchdog/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Pins file to read (default: the config's, else $XDG_STATE_HOME/mcp-watchdog/pins.json).
    #[arg(long, value_name = "FILE")]
    pub pins: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanDirection {
    Request,
    Response,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain: detects edited, removed or reordered records (exit
    /// status 1), or says the log cannot be read (3).
    Verify {
        /// The log to check (default: the configured audit log).
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PinsArgs {
    /// The pins file (default: `pins_file` of --config, else $XDG_STATE_HOME/mcp-watchdog/pins.json).
    #[arg(long, value_name = "FILE", global = true)]
    pub pins: Option<PathBuf>,

    /// watchdog.toml whose `pins_file` to use.
    #[arg(short, long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: PinsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PinsCommand {
    /// Pinned servers and items, with their state (approved, pending, changed, removed).
    List {
        /// Only this server (configured name or id prefix).
        server: Option<String>,
    },
    /// What changed: the approved definition against the one now offered.
    Diff {
        /// Configured server name or id prefix.
        server: String,
        /// Tool or prompt name, resource URI, or `instructions` (default: everything pending).
        item: Option<String>,
    },
    /// Trust the definition now offered (or the removal) from now on.
    Approve {
        /// Configured server name or id prefix.
        server: String,
        /// Tool or prompt name, resource URI, or `instructions`.
        #[arg(required_unless_present = "all")]
        item: Option<String>,
        /// Everything pending on this server.
        #[arg(long, conflicts_with = "item")]
        all: bool,
    },
    /// Forget a server's pins: its next session trusts what it sees on first use.
    Reset {
        /// Configured server name or id prefix.
        server: String,
    },
}
