//! What `install` and `uninstall` tell the user: one row per server entry, grouped by file.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Now runs through the watchdog (install).
    Wrapped,
    /// Already ran through the watchdog; left as it was (install).
    AlreadyWrapped,
    /// Its original command is back (uninstall).
    Restored,
    /// Does not run through the watchdog; nothing to undo (uninstall).
    NotWrapped,
    /// An HTTP or SSE server: the watchdog does not proxy these yet.
    NotYetCovered,
    /// Not understood, or not safe to change; left as it was.
    LeftAlone,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Wrapped => "wrapped",
            Status::AlreadyWrapped => "already wrapped",
            Status::Restored => "restored",
            Status::NotWrapped => "not wrapped",
            Status::NotYetCovered => "not yet covered",
            Status::LeftAlone => "left alone",
        }
    }
}

/// One server entry and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The server's name, prefixed with its table when the file has several.
    pub server: String,
    pub status: Status,
    /// The command line, URL or reason.
    pub detail: String,
    /// Warnings worth reading (argument quoting).
    pub notes: Vec<String>,
}

/// The rows as an indented table, notes under their row.
pub fn render_rows(rows: &[Row]) -> String {
    let name_width = rows
        .iter()
        .map(|r| r.server.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        let _ = writeln!(
            out,
            "  {:<15}  {:<name_width$}  {}",
            row.status.label(),
            row.server,
            row.detail
        );
        for note in &row.notes {
            let _ = writeln!(out, "  {:<15}  note: {note}", "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_and_notes_follow_their_row() {
        let rows = [
            Row {
                server: "fs".into(),
                status: Status::Wrapped,
                detail: "npx -y server-filesystem '/home/me/My Files'".into(),
                notes: vec!["argument 3 has a space".into()],
            },
            Row {
                server: "remote-api".into(),
                status: Status::NotYetCovered,
                detail: "http https://example.com/mcp".into(),
                notes: vec![],
            },
        ];
        assert_eq!(
            render_rows(&rows),
            "  wrapped          fs          npx -y server-filesystem '/home/me/My Files'\n\
             \x20                  note: argument 3 has a space\n\
             \x20 not yet covered  remote-api  http https://example.com/mcp\n"
        );
    }
}
