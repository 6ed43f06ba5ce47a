//! What a scan found: one document for CI (`--json`), a table for people, and the exit status.

use crate::alert::human::push_visible;
use crate::alert::{Alert, Severity};
use crate::scan::findings::ItemReport;
use crate::scan::pins::PinStanding;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Exit status: nothing found.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: findings, none critical.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: bad command line or config, or a server that could not be scanned.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: at least one critical finding (wins over every other status).
pub const EXIT_CRITICAL: u8 = 3;

/// Characters of an excerpt shown in the table (the JSON keeps the whole one).
const EXCERPT_CHARS: usize = 60;

#[derive(Debug, Default, Serialize)]
pub struct ScanReport {
    pub servers: Vec<ServerReport>,
    /// Client configs that could not be read (file, line, what was expected).
    pub config_errors: Vec<String>,
    pub summary: Summary,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub scanned: usize,
    pub failed: usize,
    pub skipped: usize,
    pub findings: usize,
    pub critical: usize,
    pub exit_status: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    /// Started, and listed to the end.
    Scanned,
    /// Did not start, answer in time, or follow the protocol; what was received is inspected.
    Failed,
    /// Not started (HTTP server, client variables, a gateway entry).
    Skipped,
}

#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub name: String,
    pub sources: Vec<String>,
    /// Program and arguments.
    pub command: Vec<String>,
    pub status: ServerStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_info: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<Value>,
    /// Items listed, per kind (`tools`, `prompts`, `resources`, `resource templates`).
    pub counts: BTreeMap<String, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pins: Option<PinStanding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The server's last stderr lines, when it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
    pub items: Vec<ItemReport>,
}

impl ServerReport {
    pub fn skipped(name: String, source: String, reason: String) -> ServerReport {
        ServerReport {
            name,
            sources: vec![source],
            command: Vec::new(),
            status: ServerStatus::Skipped,
            reason: Some(reason),
            server_info: None,
            protocol_version: None,
            counts: BTreeMap::new(),
            pins: None,
            notes: Vec::new(),
            stderr_tail: Vec::new(),
            items: Vec::new(),
        }
    }

    /// A server about to be started (its status is settled by the probe).
    pub fn started(target: &crate::scan::targets::Target) -> ServerReport {
        let mut command = vec![target.command.program.clone()];
        command.extend(target.command.args.iter().cloned());
        ServerReport {
            sources: target.sources.clone(),
            command,
            status: ServerStatus::Scanned,
            reason: None,
            ..ServerReport::skipped(target.name.clone(), String::new(), String::new())
        }
    }

    pub fn findings(&self) -> impl Iterator<Item = &Alert> {
        self.items.iter().flat_map(|i| i.findings.iter())
    }

    /// The item row for `kind key`, added at the end if it is not there yet.
    pub fn item_mut(&mut self, kind: &str, name: &str) -> &mut ItemReport {
        match self
            .items
            .iter()
            .position(|i| i.kind == kind && i.name == name)
        {
            Some(i) => &mut self.items[i],
            None => {
                self.items.push(ItemReport::new(kind, name));
                self.items.last_mut().expect("just pushed")
            }
        }
    }
}

impl ScanReport {
    /// Fills in the summary and returns the exit status.
    pub fn finish(&mut self) -> u8 {
        let mut s = Summary::default();
        for server in &self.servers {
            match server.status {
                ServerStatus::Scanned => s.scanned += 1,
                ServerStatus::Failed => s.failed += 1,
                ServerStatus::Skipped => s.skipped += 1,
            }
            for f in server.findings() {
                s.findings += 1;
                s.critical += usize::from(f.severity == Severity::Critical);
            }
        }
        s.exit_status = if s.critical > 0 {
            EXIT_CRITICAL
        } else if s.failed > 0 || !self.config_errors.is_empty() {
            EXIT_ERROR
        } else if s.findings > 0 {
            EXIT_FINDINGS
        } else {
            EXIT_CLEAN
        };
        let status = s.exit_status;
        self.summary = s;
        status
    }

    /// The table of findings, then one summary line per server.
    pub fn render(&self) -> String {
        let mut rows: Vec<[String; 6]> = Vec::new();
        for server in &self.servers {
            for item in &server.items {
                for f in &item.findings {
                    rows.push([
                        visible(&server.name),
                        visible(&item.label()),
                        f.rule.clone(),
                        f.severity.as_str().to_owned(),
                        f.action.as_str().to_owned(),
                        excerpt(f),
                    ]);
                }
            }
        }
        let mut out = String::new();
        if !rows.is_empty() {
            let header =
                ["SERVER", "ITEM", "RULE", "SEVERITY", "ACTION", "EXCERPT"].map(String::from);
            let mut widths = [0usize; 5];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter().zip(row) {
                    let _ = write!(out, "{cell:<w$}  ");
                }
                let _ = writeln!(out, "{}", row[5]);
            }
            out.push('\n');
        }
        for server in &self.servers {
            let _ = writeln!(out, "{}", summary_line(server));
            for note in server.notes.iter() {
                let _ = writeln!(out, "  note: {}", visible(note));
            }
            if server.status == ServerStatus::Failed {
                for line in &server.stderr_tail {
                    let _ = writeln!(out, "  stderr: {}", visible(line));
                }
            }
        }
        for e in &self.config_errors {
            let _ = writeln!(out, "error: {e}");
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "{} scanned, {} failed, {} skipped; {} finding(s), {} critical",
            s.scanned, s.failed, s.skipped, s.findings, s.critical
        );
        out
    }
}

/// `fs: 14 tools, 0 findings`, `evil: 3 tools, 2 critical, 1 high`, `web: skipped: …`.
pub fn summary_line(server: &ServerReport) -> String {
    let name = visible(&server.name);
    if server.status == ServerStatus::Skipped {
        return format!(
            "{name}: skipped: {}",
            server.reason.as_deref().unwrap_or_default()
        );
    }
    // Tools first: they are what a model acts on.
    let mut parts: Vec<String> = ["tools", "prompts", "resources", "resource templates"]
        .iter()
        .filter_map(|kind| Some((kind, *server.counts.get(*kind)?)))
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    if parts.is_empty() && server.status == ServerStatus::Scanned {
        parts.push("nothing listed".into());
    }
    let mut by_severity: BTreeMap<std::cmp::Reverse<Severity>, usize> = BTreeMap::new();
    for f in server.findings() {
        *by_severity
            .entry(std::cmp::Reverse(f.severity))
            .or_default() += 1;
    }
    if by_severity.is_empty() {
        parts.push("0 findings".into());
    } else {
        parts.extend(
            by_severity
                .iter()
                .map(|(s, n)| format!("{n} {}", s.0.as_str())),
        );
    }
    let mut line = format!("{name}: {}", parts.join(", "));
    if let Some(pins) = &server.pins {
        let _ = match pins.state {
            "pinned" if pins.differing > 0 => write!(
                line,
                " (pins: {} as approved, {} differ)",
                pins.unchanged, pins.differing
            ),
            "pinned" => write!(line, " (pins: all {} as approved)", pins.unchanged),
            "not pinned" => write!(line, " (not pinned yet: the first proxied session pins it)"),
            _ => Ok(()),
        };
    }
    if server.status == ServerStatus::Failed {
        let _ = write!(
            line,
            "; FAILED: {}",
            server.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    line
}

fn visible(text: &str) -> String {
    let mut out = String::new();
    push_visible(&mut out, text);
    out
}

/// The excerpt on one line, shortened, with nothing that could drive the terminal.
fn excerpt(f: &Alert) -> String {
    let text = f.excerpt.as_deref().unwrap_or(&f.detail);
    let flat: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .take(EXCERPT_CHARS)
        .collect();
    let mut out = visible(&flat);
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::ActionTaken;

    fn server(name: &str, severities: &[Severity]) -> ServerReport {
        let mut s = ServerReport::skipped(name.into(), "test".into(), String::new());
        s.status = ServerStatus::Scanned;
        s.reason = None;
        s.counts.insert("tools".into(), 3);
        let item = s.item_mut("tool", "t");
        for sev in severities {
            item.findings.push(
                Alert::new("SMAC-5", "c", *sev, ActionTaken::Stripped, "d")
                    .evidence("hidden \x1b[2J text".as_bytes()),
            );
        }
        s
    }

    #[test]
    fn exit_status_ranks_critical_over_errors_over_findings() {
        let status = |servers: Vec<ServerReport>, errors: Vec<String>| {
            let mut r = ScanReport {
                servers,
                config_errors: errors,
                ..Default::default()
            };
            r.finish()
        };
        assert_eq!(status(vec![server("a", &[])], vec![]), EXIT_CLEAN);
        assert_eq!(
            status(vec![server("a", &[Severity::High])], vec![]),
            EXIT_FINDINGS
        );
        let mut failed = server("b", &[]);
        failed.status = ServerStatus::Failed;
        assert_eq!(
            status(vec![server("a", &[Severity::High]), failed], vec![]),
            EXIT_ERROR
        );
        assert_eq!(
            status(vec![server("a", &[])], vec!["x: line 1".into()]),
            EXIT_ERROR
        );
        let mut failed = server("b", &[]);
        failed.status = ServerStatus::Failed;
        assert_eq!(
            status(vec![server("a", &[Severity::Critical]), failed], vec![]),
            EXIT_CRITICAL
        );
        let mut skipped = server("c", &[]);
        skipped.status = ServerStatus::Skipped;
        assert_eq!(status(vec![skipped], vec![]), EXIT_CLEAN);
    }

    #[test]
    fn summary_lines_and_a_table_without_terminal_escapes() {
        assert_eq!(summary_line(&server("fs", &[])), "fs: 3 tools, 0 findings");
        assert_eq!(
            summary_line(&server(
                "evil",
                &[Severity::High, Severity::Critical, Severity::Critical]
            )),
            "evil: 3 tools, 2 critical, 1 high"
        );
        let mut r = ScanReport {
            servers: vec![server("evil", &[Severity::Critical])],
            ..Default::default()
        };
        r.finish();
        let text = r.render();
        assert!(
            text.starts_with("SERVER  ITEM    RULE    SEVERITY  ACTION    EXCERPT\n"),
            "{text}"
        );
        assert!(
            text.contains("evil    tool t  SMAC-5  critical  stripped"),
            "{text}"
        );
        assert!(!text.contains('\x1b'), "{text:?}");
    }
}
