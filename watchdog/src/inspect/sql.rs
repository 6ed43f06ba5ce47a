//! SQL-INJECT: SQL syntax in values meant as data (a `name`, `id`, `email`, `filter`, a URL's
//! query parameters): tautologies, stacked statements, `UNION SELECT`, comment truncation, blind
//! probes.
//!
//! A database tool's `query` or `sql` argument holds SQL by design and is left alone, as is SQL
//! quoted in prose (an issue body, a file being written).

use super::argument::{self, ArgKind, Argument};
use super::text::SharedCheck;
use super::text::{Hit, Replacement, Site, TextDetector, TextView};
use super::SubjectMeta;
use crate::alert::Severity;
use regex::Regex;
use std::sync::LazyLock;

pub const RULE: &str = "SQL-INJECT";

/// Values longer than this are documents, not data fields.
const MAX_VALUE: usize = 8 * 1024;

fn rx(pattern: &str) -> Regex {
    Regex::new(pattern).expect("sql regex")
}

/// `x' OR 'a'='a`, `1 OR 1=1`, `') OR ('a'='a`: the two sides are compared after matching.
static TAUTOLOGY: LazyLock<Regex> = LazyLock::new(|| {
    rx(
        r#"(?:['")]|\b\d+)\s*(or|and|\|\||&&)\s*\(?\s*('[^']*'?|"[^"]*"?|\d+|true)\s*(=|like|<>|!=)\s*\(?\s*('[^']*'?|"[^"]*"?|\d+|true)"#,
    )
});
static OR_TRUE: LazyLock<Regex> =
    LazyLock::new(|| rx(r#"['")]\s*or\s+(?:true|not\s+false)\b|['"]\s*or\s*''\s*=\s*'"#));
static UNION_SELECT: LazyLock<Regex> =
    LazyLock::new(|| rx(r"\bunion\s+(?:all\s+|distinct\s+)?\(?\s*select\b"));
static STACKED: LazyLock<Regex> = LazyLock::new(|| {
    rx(
        r#"['")]\s*;\s*(?:drop|delete|insert|update|create|alter|truncate|exec|execute|shutdown|grant|declare|select|waitfor)\b|;\s*(?:drop|truncate)\s+(?:table|database|schema)\b|;\s*(?:shutdown|exec(?:ute)?\s+(?:xp_|sp_))"#,
    )
});
static TRUNCATION: LazyLock<Regex> =
    LazyLock::new(|| rx(r#"['"]\s*\)*\s*(?:--|#|/\*)(?:\s|$)|['"]\s*\)*\s*(?:--|#)$"#));
static PROBES: LazyLock<Vec<(&'static str, Severity, Regex)>> = LazyLock::new(|| {
    vec![
        ("xp_cmdshell", Severity::Critical, rx(r"\bxp_cmdshell\b")),
        (
            "INTO OUTFILE",
            Severity::Critical,
            rx(r"\binto\s+(?:out|dump)file\b"),
        ),
        (
            "time-based probe",
            Severity::High,
            rx(r"\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+delay\s+'"),
        ),
        (
            "error-based probe",
            Severity::High,
            rx(r"\b(?:extractvalue|updatexml|load_file)\s*\("),
        ),
        (
            "schema enumeration",
            Severity::High,
            rx(r"\binformation_schema\b|\bsqlite_master\b|\bpg_catalog\b"),
        ),
    ]
});

/// The copy SQL is matched on: comments used as spaces (`UNION/**/SELECT`) and percent-encoding
/// (`%27%20OR%201=1`) undone, runs of whitespace collapsed.
fn prepared(normalized: &str) -> String {
    let mut s = normalized.to_string();
    for _ in 0..2 {
        if !s.contains('%') {
            break;
        }
        let decoded = percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == s {
            break;
        }
        s = decoded;
    }
    let s = s.replace("/**/", " ");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '\'' || c == '"')
}

fn tautology(s: &str) -> Option<Severity> {
    if OR_TRUE.is_match(s) {
        return Some(Severity::Critical);
    }
    TAUTOLOGY.captures_iter(s).find_map(|c| {
        let (op, left, cmp, right) = (&c[1], unquote(&c[2]), &c[3], unquote(&c[4]));
        let always = match cmp {
            "=" | "like" => left == right,
            _ => left != right,
        };
        let severity = match op {
            "or" | "||" => Severity::Critical,
            _ => Severity::High,
        };
        always.then_some(severity)
    })
}

pub struct SqlInject;

impl TextDetector for SqlInject {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
    }

    /// Judges what the client sends to servers.
    fn direction(&self) -> Option<crate::alert::Direction> {
        Some(crate::alert::Direction::ClientToServer)
    }

    fn triggers(&self) -> &'static [&'static str] {
        &[
            "union select",
            "union all",
            "union distinct",
            "union/*",
            "union(",
            "' or",
            "'or",
            "\" or",
            "\"or",
            "' and",
            " or 1=",
            " or true",
            "'--",
            "' --",
            "')--",
            "\"--",
            "'/*",
            "; drop",
            ";drop",
            "; truncate",
            "; shutdown",
            "pg_sleep",
            "benchmark(",
            "waitfor delay",
            "information_schema",
            "sqlite_master",
            "xp_cmdshell",
            "outfile",
            "dumpfile",
            "extractvalue",
            "updatexml",
            "load_file",
            "%27",
            "%22",
        ]
    }

    fn shared_raw_check(&self) -> Option<SharedCheck> {
        Some(SharedCheck::RequestArguments)
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        argument::is_request_argument(meta, site)
            && matches!(
                Argument::of(meta, site).kind,
                ArgKind::Data | ArgKind::Url | ArgKind::Host
            )
    }

    fn scan(&self, text: &TextView<'_>, hits: &mut Vec<Hit>) {
        if text.normalized.text.len() > MAX_VALUE {
            return;
        }
        let s = prepared(&text.normalized.text);
        let mut found: Vec<(Severity, &'static str, String)> = Vec::new();
        if let Some(severity) = tautology(&s) {
            found.push((severity, "tautology", "always-true condition".into()));
        }
        if UNION_SELECT.is_match(&s) {
            found.push((Severity::Critical, "union", "UNION SELECT".into()));
        }
        if STACKED.is_match(&s) {
            found.push((Severity::Critical, "stacked", "stacked statement".into()));
        }
        if TRUNCATION.is_match(&s) {
            found.push((
                Severity::High,
                "truncation",
                "quote closed and the rest commented out".into(),
            ));
        }
        for (what, severity, re) in PROBES.iter() {
            if re.is_match(&s) {
                found.push((*severity, "probe", what.to_string()));
            }
        }
        let Some(severity) = found.iter().map(|f| f.0).max() else {
            return;
        };
        let detail = found
            .iter()
            .map(|f| f.2.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        hits.push(Hit {
            rule: RULE,
            class: "injection",
            severity,
            range: 0..text.original.len(),
            replacement: Replacement::None,
            detail: format!("SQL in a data value: {detail}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::request_testkit::*;
    use crate::inspect::Outcome;
    use serde_json::json;

    fn data(key: &str, value: &str) -> Option<Severity> {
        worst(
            &hits(
                Box::new(SqlInject),
                &call("get_user", json!({ key: value })),
            ),
            RULE,
        )
    }

    #[test]
    fn injections_in_data_values() {
        for (key, value) in [
            ("name", "' OR '1'='1"),
            ("name", "admin' or 1=1--"),
            ("id", "1 OR 1=1"),
            ("email", "x\" OR \"a\"=\"a"),
            ("user", "') OR ('a'='a"),
            ("user", "'or'1'='1"),
            ("id", "1' OR 'x'<>'y"),
            ("name", "x' or true--"),
            ("name", "'; DROP TABLE users; --"),
            ("table", "users; drop table accounts"),
            ("id", "1 UNION SELECT username, password FROM users"),
            ("id", "1 UnIoN/**/AlL/**/SeLeCt null,@@version"),
            ("id", "1%27%20OR%20%271%27%3D%271"),
            ("id", "1%2527%2520UNION%2520SELECT%25201"),
            ("filter", "1; EXEC xp_cmdshell 'dir'"),
            ("name", "Ｘ' ＯＲ '1'='1"),
            ("name", "x' o\u{200b}r '1'='1"),
        ] {
            assert_eq!(data(key, value), Some(Severity::Critical), "{key}={value}");
        }
        for (key, value) in [
            ("username", "admin'--"),
            ("username", "admin' #"),
            ("id", "1' AND SLEEP(5)"),
            ("id", "1 AND 1=1"),
            ("id", "1' and extractvalue(1,concat(0x7e,version()))"),
            (
                "name",
                "x' and (select count(*) from information_schema.tables)>0",
            ),
        ] {
            assert_eq!(data(key, value), Some(Severity::High), "{key}={value}");
        }
        let fetch = call(
            "fetch",
            json!({"url": "https://shop.example/item?id=1%27%20UNION%20SELECT%20card%20FROM%20cards--"}),
        );
        let (outcome, alerts) = through_pipeline(Box::new(SqlInject), &fetch);
        assert!(matches!(outcome, Outcome::Block { .. }), "{alerts:?}");
    }

    #[test]
    fn sql_where_sql_belongs_and_names_pass() {
        for (tool, args) in [
            (
                "run_sql",
                json!({"query": "SELECT * FROM users WHERE name = '' OR '1'='1'"}),
            ),
            (
                "postgres_query",
                json!({"sql": "DELETE FROM t WHERE id = 1; DROP TABLE tmp;"}),
            ),
            (
                "execute_sql",
                json!({"statement": "SELECT a FROM x UNION SELECT b FROM y -- all"}),
            ),
            (
                "write_file",
                json!({"path": "q.sql", "content": "SELECT * FROM t WHERE a = '1' OR '1'='1'; -- demo"}),
            ),
            (
                "create_issue",
                json!({"body": "Login form is vulnerable to admin'-- and ' OR 1=1"}),
            ),
            ("get_user", json!({"name": "O'Brien"})),
            ("get_user", json!({"name": "D'Angelo-O'Neil"})),
            ("get_user", json!({"name": "Tom or Jerry"})),
            ("get_user", json!({"name": "Rock 'n' Roll"})),
            (
                "search_users",
                json!({"filter": "status = 'open' OR status = 'closed'"}),
            ),
            (
                "search_users",
                json!({"filter": "age >= 18 and country = 'PL'"}),
            ),
            ("get_product", json!({"id": "union-station-42"})),
            ("set_title", json!({"label": "It's 5 o'clock -- somewhere"})),
            (
                "get_doc",
                json!({"slug": "european-union-select-committee"}),
            ),
            (
                "web_search",
                json!({"query": "sql injection ' OR 1=1 -- example"}),
            ),
            ("get_user", json!({"email": "o'reilly@example.com"})),
        ] {
            let found = hits(Box::new(SqlInject), &call(tool, args.clone()));
            assert!(found.is_empty(), "{tool} {args}: {found:?}");
        }
    }

    #[test]
    fn everyday_calls_pass() {
        assert_quiet_on_everyday_calls(|| Box::new(SqlInject));
    }

    #[test]
    fn real_server_traffic_passes() {
        assert_silent_on_real_servers(|| Box::new(SqlInject));
    }
}
