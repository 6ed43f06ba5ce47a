//! What a request argument is meant to be, judged from its key and its tool's name.
//!
//! The request-side families (SSRF, EXFIL, CMD-INJECT, SQL-INJECT, PATH-TRAVERSAL, EMAIL-INJECT) share
//! one question: is this string a URL, a host, a path, a shell command, a SQL statement, prose, or
//! plain data? `cargo build && cargo test` is normal in a shell tool's `command` and hostile in a
//! `branch`; SQL is the purpose of a database tool's `query` and an injection in a `name`.

use crate::alert::Direction;
use crate::inspect::needle::Needle;
use crate::inspect::text::{Role, Site};
use crate::inspect::SubjectMeta;
use crate::jsonrpc::Kind;
use crate::mcp::methods::{COMPLETE, PROMPTS_GET, TOOLS_CALL};

/// The purpose of one argument string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A URL or URI (`url`, `source_url`, `webhook`, `href`).
    Url,
    /// A host, `host:port` or address (`host`, `hostname`, `endpoint`, `server`).
    Host,
    /// A filesystem path (`path`, `repo_path`, `filename`, `destination`).
    Path,
    /// Meant to be run by a shell (`command`, `cmd`, `script`).
    Command,
    /// A SQL statement for a database tool (`sql`, `statement`, a DB tool's `query`).
    Sql,
    /// A search query (`query`, `q`, `search`) for a tool that is not a database.
    Query,
    /// Text for people: file contents, messages, descriptions. Never executed or fetched.
    Prose,
    /// A glob, regex, include or exclude pattern: names sensitive files in order to skip them.
    Pattern,
    /// Anything else: names, ids, e-mails, filters, branches.
    Data,
}

/// What the tool does, as far as its name tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolKind {
    pub shell: bool,
    pub writes: bool,
    pub database: bool,
}

/// One argument string's purpose in context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argument {
    pub kind: ArgKind,
    pub tool: ToolKind,
    /// `resources/read` and friends: the URI names one of the server's own resources.
    pub resource_uri: bool,
}

impl Argument {
    pub fn of(meta: &SubjectMeta<'_>, site: &Site) -> Argument {
        let tool = site.tool.as_deref().map(ToolKind::of).unwrap_or_default();
        let resource_uri = meta.method.is_some_and(|m| m.starts_with("resources/"));
        let key = site.key.as_deref().unwrap_or_default();
        Argument {
            kind: if resource_uri && key == "uri" {
                ArgKind::Url
            } else {
                ArgKind::of(key, tool)
            },
            tool,
            resource_uri,
        }
    }

    /// Strings a server will fetch, open or run (not prose, not patterns).
    pub fn is_operational(&self) -> bool {
        !matches!(
            self.kind,
            ArgKind::Prose | ArgKind::Pattern | ArgKind::Query
        )
    }
}

/// Whether a detector of request arguments looks at this site at all.
pub fn is_request_argument(meta: &SubjectMeta<'_>, site: &Site) -> bool {
    site.role == Role::Argument && !site.is_key && judges_arguments_of(meta)
}

/// Whether the message is a request whose arguments the request-side families judge.
fn judges_arguments_of(meta: &SubjectMeta<'_>) -> bool {
    meta.direction == Direction::ClientToServer
        && meta.kind == Kind::Request
        && meta.method.is_some_and(|m| {
            matches!(m, TOOLS_CALL | PROMPTS_GET | COMPLETE) || m.starts_with("resources/")
        })
}

/// The words of an identifier: `repo_path`, `repoPath`, `repo-path` → `["repo", "path"]`.
pub fn words(identifier: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in identifier.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

impl ToolKind {
    pub fn of(name: &str) -> ToolKind {
        let words = words(name);
        let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
        let lower = name.to_ascii_lowercase();
        let contains = |set: &[&str]| set.iter().any(|s| lower.contains(s));
        ToolKind {
            shell: has(&[
                "run", "sh", "cmd", "zsh", "pwsh", "spawn", "process", "console", "exec",
            ]) || contains(&["shell", "exec", "terminal", "bash", "command", "powershell"]),
            writes: has(&[
                "write", "create", "edit", "save", "put", "append", "update", "insert", "patch",
                "replace", "upload", "commit", "send", "post", "publish", "add", "set", "store",
                "comment", "reply", "draft", "new",
            ]),
            database: has(&[
                "sql",
                "query",
                "db",
                "database",
                "postgres",
                "postgresql",
                "psql",
                "pg",
                "mysql",
                "sqlite",
                "mssql",
                "oracle",
                "supabase",
                "bigquery",
                "snowflake",
                "clickhouse",
                "duckdb",
                "redshift",
                "select",
                "table",
            ]) || contains(&["sql"]),
        }
    }
}

impl ArgKind {
    pub fn of(key: &str, tool: ToolKind) -> ArgKind {
        let words = words(key);
        let Some(last) = words.last().map(String::as_str) else {
            return ArgKind::Data;
        };
        let any = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
        if any(&[
            "pattern", "patterns", "glob", "globs", "exclude", "excludes", "include", "includes",
            "ignore", "regex", "regexp",
        ]) {
            return ArgKind::Pattern;
        }
        match last {
            "url" | "urls" | "uri" | "uris" | "href" | "link" | "links" | "webhook"
            | "callback" | "redirect" | "origin" | "referer" | "referrer" => ArgKind::Url,
            "host" | "hostname" | "hosts" | "server" | "address" | "addr" | "ip" | "endpoint"
            | "domain" | "proxy" | "authority" => ArgKind::Host,
            "command" | "commands" | "cmd" | "script" | "commandline" | "shell" => ArgKind::Command,
            "sql" | "statement" | "stmt" => ArgKind::Sql,
            "query" | "q" | "search" | "keywords" if tool.database => ArgKind::Sql,
            "query" | "q" | "search" | "keywords" | "question" | "topic" => ArgKind::Query,
            "path" | "paths" | "file" | "files" | "filename" | "filepath" | "dir" | "directory"
            | "folder" | "source" | "destination" | "dest" | "src" | "dst" | "root" | "cwd"
            | "workdir" => ArgKind::Path,
            "text" | "content" | "contents" | "body" | "message" | "messages" | "prompt"
            | "description" | "comment" | "comments" | "title" | "note" | "notes" | "summary"
            | "answer" | "html" | "markdown" | "md" | "instructions" | "input" | "reason"
            | "subject" | "snippet" | "code" | "diff" | "old" | "new" | "replacement" => {
                ArgKind::Prose
            }
            _ => ArgKind::Data,
        }
    }
}

/// The request methods whose arguments these families judge, as they appear in raw JSON.
static REQUEST_METHODS: [Needle; 8] = [
    Needle::new(b"tools/call"),
    Needle::new(b"resources/read"),
    Needle::new(b"prompts/get"),
    Needle::new(b"completion/complete"),
    Needle::new(b"tools\\/call"),
    Needle::new(b"resources\\/read"),
    Needle::new(b"prompts\\/get"),
    Needle::new(b"completion\\/complete"),
];
static JSONRPC: Needle = Needle::new(b"\"jsonrpc\"");

/// The raw check of every request-side family.
///
/// For a whole message (JSON with `"jsonrpc"`): only requests that carry arguments get a look, so
/// responses, however large, stay on the fast path; a small call whose arguments hold no string
/// gives the families nothing to read ([`super::argument_strings`]). For one string: short values
/// (up to 256 bytes, or up to 1 KiB without spaces: hosts, URLs, paths, ids, branch names) get a
/// look, since `2130706433`, `127.1` or `v1⏎ls -la` hold no trigger literal; longer text must
/// match a family's trigger literals. Short strings cost little whatever runs on them.
pub fn raw_check(raw: &[u8]) -> bool {
    let trimmed = raw.trim_ascii_start();
    if trimmed.first() == Some(&b'{') && JSONRPC.is_in(raw) {
        return REQUEST_METHODS.iter().any(|m| m.is_in(raw))
            && super::argument_strings::may_carry_argument_strings(raw);
    }
    raw.len() <= 256 || raw.len() <= 1024 && !raw.contains(&b' ')
}

/// [`raw_check`] for a whole message under inspection, from what its envelope and its quick
/// read already know instead of searching the bytes: a request whose arguments the families
/// judge, unless its arguments hold no string.
pub fn message_check(message: &crate::inspect::Subject<'_>) -> bool {
    judges_arguments_of(&message.meta)
        && super::argument_strings::message_may_carry_argument_strings(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_split_into_words() {
        assert_eq!(words("repo_path"), ["repo", "path"]);
        assert_eq!(words("excludePatterns"), ["exclude", "patterns"]);
        assert_eq!(words("source-URL"), ["source", "url"]);
        assert_eq!(words("HTTPProxy"), ["httpproxy"]);
    }

    #[test]
    fn argument_kinds_follow_the_last_word() {
        let none = ToolKind::default();
        assert_eq!(ArgKind::of("url", none), ArgKind::Url);
        assert_eq!(ArgKind::of("webhook_url", none), ArgKind::Url);
        assert_eq!(ArgKind::of("hostname", none), ArgKind::Host);
        assert_eq!(ArgKind::of("repo_path", none), ArgKind::Path);
        assert_eq!(ArgKind::of("branch_name", none), ArgKind::Data);
        assert_eq!(ArgKind::of("excludePatterns", none), ArgKind::Pattern);
        assert_eq!(ArgKind::of("content", none), ArgKind::Prose);
        assert_eq!(ArgKind::of("query", none), ArgKind::Query);
        assert_eq!(ArgKind::of("query", ToolKind::of("run_sql")), ArgKind::Sql);
        assert_eq!(ArgKind::of("command", none), ArgKind::Command);
    }

    #[test]
    fn tool_kinds_follow_the_name() {
        assert!(ToolKind::of("run_shell_command").shell);
        assert!(ToolKind::of("execute_command").shell);
        assert!(ToolKind::of("bash").shell);
        assert!(!ToolKind::of("git_push").shell);
        assert!(!ToolKind::of("truncate_table").shell);
        assert!(ToolKind::of("write_file").writes);
        assert!(!ToolKind::of("read_file").writes);
        assert!(ToolKind::of("postgres_query").database);
        assert!(!ToolKind::of("web_search").database);
    }

    #[test]
    fn the_message_check_reads_the_envelope_and_agrees_with_the_raw_check() {
        use crate::inspect::Subject;
        let id = crate::jsonrpc::Id("1".into());
        let judge = |direction, kind, method, raw: &str| {
            let meta = SubjectMeta::for_test(direction, kind, method, &id);
            message_check(&Subject::new(meta, raw.as_bytes()))
        };
        let call = |arguments: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","arguments":{arguments}}}}}"#
            )
        };
        let up = Direction::ClientToServer;
        for (raw, expected) in [
            (call(r#"{"size":1024}"#), false),
            (call(r#"{"url":"http://127.1/"}"#), true),
            (call(r#"{"a":[{"b":"deep"}]}"#), true),
            (call(r#"{"a":{},"a":{"u":"x"}}"#), true),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#.into(),
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{},"arguments":{"u":"x"}}}"#.into(),
                true,
            ),
        ] {
            assert_eq!(judge(up, Kind::Request, TOOLS_CALL, &raw), expected, "{raw}");
            assert_eq!(raw_check(raw.as_bytes()), expected, "raw: {raw}");
        }
        let read = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}"#;
        assert!(judge(up, Kind::Request, "resources/read", read));
        // Only requests going to a server carry arguments the families judge, whatever the
        // bytes say.
        let with_string = call(r#"{"url":"http://127.1/"}"#);
        assert!(!judge(up, Kind::Notification, TOOLS_CALL, &with_string));
        assert!(!judge(
            Direction::ServerToClient,
            Kind::Request,
            TOOLS_CALL,
            &with_string
        ));
        let result = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"tools/call 127.1"}]}}"#;
        assert!(!judge(up, Kind::Result, TOOLS_CALL, result));
    }

    #[test]
    fn raw_check_keeps_responses_on_the_fast_path() {
        let response =
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"127.1"}]}}"#;
        assert!(!raw_check(response));
        let request = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch","arguments":{"url":"http://127.1/"}}}"#;
        assert!(raw_check(request));
        // Nothing to read: no argument strings.
        let bare = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fetch"}}"#;
        assert!(!raw_check(bare));
        assert!(raw_check(b"2130706433"));
        assert!(raw_check(b"v1\nls -la"));
        assert!(!raw_check("a sentence with words ".repeat(20).as_bytes()));
    }
}
