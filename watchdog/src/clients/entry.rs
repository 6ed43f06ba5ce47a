//! One server entry of a client config: what it is (a stdio server, a remote one, one already
//! wrapped), and the text edits that wrap it with the watchdog or unwrap it again.
//!
//! Wrapping moves the original command into `args` behind `--`, copying its JSON text verbatim
//! (escapes included); unwrapping moves it back. Nothing else is recorded: the wrapped entry itself
//! says how to restore it, and every separator the wrap inserts is derived from the text around it
//! by the same function on both ways, so that unwrap(wrap(entry)) gives back the original bytes.

use crate::clients::edit::Edit;
use crate::clients::jsonc::{Member, Node, NodeKind};
use std::path::Path;

/// The file name by which a command is recognised as the watchdog (whatever its directory).
pub const WATCHDOG_FILE_NAME: &str = "mcp-watchdog";

/// Ends the watchdog's own arguments; the server's command line follows.
const SEPARATOR_ARG: &str = "--";

/// Characters after which a client that joins `command` and `args` into one shell line would
/// split, expand or quote differently.
const SHELL_SPECIAL: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
    '!', '{', '}',
];

/// Types that mean "not a local process": the watchdog does not proxy these yet.
const REMOTE_TYPES: &[&str] = &["http", "sse", "streamable-http", "streamableHttp"];

/// What an entry is.
#[derive(Debug)]
pub enum Entry<'a> {
    /// A local server the client starts itself.
    Stdio(Stdio<'a>),
    /// A local server already started through the watchdog.
    Wrapped(Stdio<'a>),
    /// Reached over HTTP or SSE.
    Remote { description: String },
    /// Something this tool does not understand; left alone.
    Other { reason: String },
}

#[derive(Debug)]
pub struct Stdio<'a> {
    pub entry: &'a Node,
    pub command: &'a Member,
    /// The `args` member, if there is one; an array of strings when there is.
    pub args: Option<&'a Member>,
}

impl Stdio<'_> {
    pub fn command(&self) -> &str {
        self.command.value.as_str().unwrap_or_default()
    }

    pub fn arg_nodes(&self) -> &[Node] {
        match self.args.map(|m| &m.value.kind) {
            Some(NodeKind::Array(items)) => items,
            _ => &[],
        }
    }

    pub fn args(&self) -> Vec<&str> {
        self.arg_nodes().iter().filter_map(Node::as_str).collect()
    }
}

pub fn classify(entry: &Node) -> Entry<'_> {
    if !matches!(entry.kind, NodeKind::Object(_)) {
        return Entry::Other {
            reason: format!("the entry is {}, not an object", entry.describe()),
        };
    }
    let kind = entry.get("type").and_then(Node::as_str);
    let url = ["url", "serverUrl"]
        .iter()
        .find_map(|k| entry.get(k).and_then(Node::as_str));
    let command = entry.member("command");
    let stdio_type = matches!(kind, None | Some("stdio"));
    if let (Some(command), true) = (command, stdio_type) {
        if command.value.as_str().is_none() {
            return Entry::Other {
                reason: format!("`command` is {}, not a string", command.value.describe()),
            };
        }
        let args = entry.member("args");
        if let Some(args) = args {
            let all_strings = match &args.value.kind {
                NodeKind::Array(items) => items.iter().all(|i| i.as_str().is_some()),
                _ => false,
            };
            if !all_strings {
                return Entry::Other {
                    reason: "`args` is not an array of strings".to_owned(),
                };
            }
        }
        let stdio = Stdio {
            entry,
            command,
            args,
        };
        let program = Path::new(stdio.command()).file_name();
        return if program.is_some_and(|name| name == WATCHDOG_FILE_NAME) {
            Entry::Wrapped(stdio)
        } else {
            Entry::Stdio(stdio)
        };
    }
    if url.is_some() || kind.is_some_and(|k| REMOTE_TYPES.contains(&k)) {
        let description = match (kind, url) {
            (Some(kind), Some(url)) => format!("{kind} {url}"),
            (None, Some(url)) => url.to_owned(),
            (Some(kind), None) => kind.to_owned(),
            (None, None) => unreachable!(),
        };
        return Entry::Remote { description };
    }
    Entry::Other {
        reason: match kind {
            Some(kind) if !stdio_type => format!("transport type `{kind}` is not known"),
            _ => "no `command`".to_owned(),
        },
    }
}

/// The edits that make `server` run through the watchdog at `watchdog` (an absolute path).
pub fn wrap_edits(text: &str, server: &Stdio<'_>, watchdog: &str) -> Vec<Edit> {
    let command = &server.command.value.span;
    let command_raw = &text[command.clone()];
    let mut edits = vec![Edit::replace(command.clone(), json_string(watchdog))];
    match server.args {
        None => edits.push(Edit::insert(
            command.end,
            inserted_args_member(text, server.command, command_raw),
        )),
        Some(args) => {
            let items = server.arg_nodes();
            match items.first() {
                // Written differently from an inserted member (no space), so that unwrap can tell
                // `"args": []` from no `args` at all.
                None => edits.push(Edit::insert(
                    args.value.span.start + 1,
                    format!("\"{SEPARATOR_ARG}\",{command_raw}"),
                )),
                Some(first) => {
                    let sep = element_separator(text, &args.value, items);
                    edits.push(Edit::insert(
                        first.span.start,
                        format!("\"{SEPARATOR_ARG}\"{sep}{command_raw}{sep}"),
                    ));
                }
            }
        }
    }
    edits
}

/// Why an entry that runs the watchdog cannot be unwrapped.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAWrap(pub String);

/// The edits that give `server` (which runs the watchdog) its original command and args back.
/// Watchdog flags before `--` are dropped with it.
pub fn unwrap_edits(text: &str, server: &Stdio<'_>) -> Result<Vec<Edit>, NotAWrap> {
    let items = server.arg_nodes();
    let Some(dash) = items.iter().position(|i| i.as_str() == Some(SEPARATOR_ARG)) else {
        return Err(NotAWrap(
            "runs the watchdog without `--` (a gateway config?); left alone".to_owned(),
        ));
    };
    let Some(original) = items.get(dash + 1) else {
        return Err(NotAWrap("nothing follows `--`; left alone".to_owned()));
    };
    let original_raw = &text[original.span.clone()];
    let command = &server.command.value.span;
    let mut edits = vec![Edit::replace(command.clone(), original_raw)];
    let args = server.args.expect("a wrap has args");
    if let Some(rest) = items.get(dash + 2) {
        edits.push(Edit::delete(items[0].span.start..rest.span.start));
    } else if dash == 0
        && follows_command(server)
        && text[command.end..args.value.span.end]
            == inserted_args_member(text, server.command, original_raw)
    {
        edits.push(Edit::delete(command.end..args.value.span.end));
    } else {
        edits.push(Edit::delete(items[0].span.start..original.span.end));
    }
    Ok(edits)
}

/// Whether `args` is the member right after `command`.
fn follows_command(server: &Stdio<'_>) -> bool {
    let NodeKind::Object(members) = &server.entry.kind else {
        return false;
    };
    let position = |m: &Member| members.iter().position(|x| std::ptr::eq(x, m));
    match (position(server.command), server.args.and_then(position)) {
        (Some(c), Some(a)) => a == c + 1,
        _ => false,
    }
}

/// `,<the whitespace before "command">"args": ["--", <command>]`: the member wrap adds after
/// `command` when the entry has no `args`.
fn inserted_args_member(text: &str, command: &Member, command_raw: &str) -> String {
    let before_key = &text[..command.key_span.start];
    let indent = &before_key[before_key.trim_end_matches([' ', '\t', '\n', '\r']).len()..];
    let indent = if indent.is_empty() { " " } else { indent };
    let colon = &text[command.key_span.end..command.value.span.start];
    let colon = if colon.trim() == ":" { colon } else { ": " };
    format!(",{indent}\"args\"{colon}[\"{SEPARATOR_ARG}\", {command_raw}]")
}

/// The text between two elements of `array`, as the file writes it.
fn element_separator(text: &str, array: &Node, items: &[Node]) -> String {
    let plain = |s: &str| s.trim() == "," && !s.contains('/');
    if let [first, second, ..] = items {
        let between = &text[first.span.end..second.span.start];
        if plain(between) {
            return between.to_owned();
        }
    }
    // One element: a multi-line array puts each element on its own line, like the first.
    let lead = &text[array.span.start + 1..items[0].span.start];
    if lead.contains('\n') && lead.trim().is_empty() {
        return format!(",{lead}");
    }
    ", ".to_owned()
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Notes for arguments a client that joins the command line into one string could break.
pub fn quoting_notes(server: &Stdio<'_>) -> Vec<String> {
    let mut notes = Vec::new();
    let risky = |s: &str| {
        let s = without_client_variables(s);
        s.is_empty() || s.contains(char::is_whitespace) || s.contains(SHELL_SPECIAL)
    };
    if risky(server.command()) {
        notes.push(format!(
            "command {} contains whitespace or shell metacharacters: it is passed to the watchdog \
             as one argument and run as one program name",
            shell_quote(server.command())
        ));
    }
    for (i, arg) in server.args().iter().enumerate() {
        if risky(arg) {
            notes.push(format!(
                "argument {} ({}) contains whitespace or shell metacharacters: kept as one \
                 argument; a client that joins args into one command string would split it",
                i + 1,
                shell_quote(arg)
            ));
        }
    }
    notes
}

/// `text` without `${name}` / `${input:id}` references: the client substitutes those before it
/// starts anything (VS Code, Claude Code), so their `$` and braces never reach a shell.
fn without_client_variables(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("${") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let name_end = rest[start + 2..].find('}').map(|i| start + 2 + i);
        let plain_name = name_end.is_some_and(|end| {
            let name = &rest[start + 2..end];
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'))
        });
        match name_end {
            Some(end) if plain_name => {
                out.push_str(&rest[..start]);
                out.push('x');
                rest = &rest[end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// `command args…` for people, each word quoted the way a POSIX shell would need.
pub fn command_line(command: &str, args: &[&str]) -> String {
    std::iter::once(command)
        .chain(args.iter().copied())
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty() && !word.contains(char::is_whitespace) && !word.contains(SHELL_SPECIAL) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_variables_are_not_shell_metacharacters() {
        assert_eq!(
            without_client_variables("${workspaceFolder}/a.py"),
            "x/a.py"
        );
        assert_eq!(without_client_variables("${input:key}-${env:HOME}"), "x-x");
        assert_eq!(without_client_variables("$(rm -rf ~)"), "$(rm -rf ~)");
        assert_eq!(without_client_variables("${a b}"), "${a b}");
        assert_eq!(without_client_variables("${unterminated"), "${unterminated");
    }

    #[test]
    fn quoting_for_people() {
        assert_eq!(
            command_line("npx", &["-y", "a b", "it's", ""]),
            "npx -y 'a b' 'it'\\''s' ''"
        );
    }
}
