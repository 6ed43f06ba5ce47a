//! Which OAuth scopes ask for more than a tool should get.

use std::collections::HashSet;

/// Scopes that hand over a whole account, organisation or mailbox.
const BROAD: &[&str] = &[
    "*",
    "all",
    "full_access",
    "root",
    // GitHub: every private repository read/write, deletion, organisation administration.
    "repo",
    "delete_repo",
    "site_admin",
    "write:org",
    // Google: the whole mailbox, drive or cloud project.
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/cloud-platform",
    // Microsoft Graph.
    "mail.readwrite",
    "directory.readwrite.all",
    "directory.accessasuser.all",
    "user.readwrite.all",
    "files.readwrite.all",
    "sites.fullcontrol.all",
];

/// Prefixes and suffixes of administrative scopes (compared lowercase).
const BROAD_PREFIXES: &[&str] = &["admin:", "admin.", "https://www.googleapis.com/auth/admin."];
const BROAD_SUFFIXES: &[&str] = &[":admin", ".fullcontrol.all", ".readwrite.all"];

/// Fragments that make a scope a write scope (for servers declared read-only).
const WRITE_FRAGMENTS: &[&str] = &[
    "write", "modify", "delete", "admin", "manage", "send", "compose", "insert", "full",
];

/// What a server is allowed to ask for, from its `oauth` settings.
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    /// When set, every other scope is excessive.
    pub allowed: Option<HashSet<String>>,
    /// The server only reads: write scopes (and offline access with them) are excessive.
    pub read_only: bool,
}

/// Splits a `scope` parameter (space-separated per RFC 6749; some providers use commas).
pub fn split(scope: &str) -> Vec<&str> {
    scope
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The scopes of `requested` that are excessive under `policy`, in request order.
pub fn excessive<'a>(requested: &[&'a str], policy: &ScopePolicy) -> Vec<&'a str> {
    if let Some(allowed) = &policy.allowed {
        return requested
            .iter()
            .copied()
            .filter(|s| !allowed.contains(*s))
            .collect();
    }
    let mut out: Vec<&str> = requested.iter().copied().filter(|s| is_broad(s)).collect();
    if policy.read_only {
        let writes: Vec<&str> = requested
            .iter()
            .copied()
            .filter(|s| is_write(s) && !out.contains(s))
            .collect();
        if !writes.is_empty() || !out.is_empty() {
            out.extend(
                requested
                    .iter()
                    .copied()
                    .filter(|s| s.eq_ignore_ascii_case("offline_access")),
            );
        }
        out.extend(writes);
    }
    out
}

fn is_broad(scope: &str) -> bool {
    let s = scope.to_ascii_lowercase();
    BROAD.contains(&s.as_str())
        || BROAD_PREFIXES.iter().any(|p| s.starts_with(p))
        || BROAD_SUFFIXES.iter().any(|p| s.ends_with(p))
}

fn is_write(scope: &str) -> bool {
    let s = scope.to_ascii_lowercase();
    s == "public_repo" || WRITE_FRAGMENTS.iter().any(|f| s.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(scope: &str, policy: &ScopePolicy) -> Vec<String> {
        excessive(&split(scope), policy)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn account_wide_scopes_are_excessive() {
        let p = ScopePolicy::default();
        assert_eq!(ex("repo read:user", &p), ["repo"]);
        assert_eq!(ex("admin:org", &p), ["admin:org"]);
        assert_eq!(ex("*", &p), ["*"]);
        assert_eq!(
            ex("openid https://www.googleapis.com/auth/gmail.modify", &p),
            ["https://www.googleapis.com/auth/gmail.modify"]
        );
        assert_eq!(
            ex("User.Read Files.ReadWrite.All", &p),
            ["Files.ReadWrite.All"]
        );
    }

    #[test]
    fn ordinary_scopes_pass() {
        let p = ScopePolicy::default();
        assert!(ex("read:user user:email", &p).is_empty());
        assert!(ex("openid email profile offline_access", &p).is_empty());
        assert!(ex("https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/calendar.readonly", &p).is_empty());
        assert!(ex("User.Read Mail.Read", &p).is_empty());
        assert!(ex("public_repo,read:org", &p).is_empty());
    }

    #[test]
    fn read_only_servers_get_no_write_scopes_nor_offline_access_with_them() {
        let p = ScopePolicy {
            read_only: true,
            ..Default::default()
        };
        assert_eq!(
            ex("offline_access write:packages read:user", &p),
            ["offline_access", "write:packages"]
        );
        assert!(ex("offline_access read:user", &p).is_empty());
    }

    #[test]
    fn an_allow_list_is_the_whole_truth() {
        let p = ScopePolicy {
            allowed: Some(["repo".to_string(), "read:user".to_string()].into()),
            read_only: false,
        };
        assert!(ex("repo read:user", &p).is_empty());
        assert_eq!(ex("repo gist", &p), ["gist"]);
    }
}
