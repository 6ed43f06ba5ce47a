//! SUPPLY-CHAIN: at start, the package each configured server runs (read from its command line
//! only: `npx`, `bunx`, `pnpm dlx`, `uvx`, `pipx run`, `python -m`, `docker run`, or a
//! `node_modules/<pkg>` path) is compared with an embedded list of well-known MCP servers. A name
//! one or two edits away from a well-known one, one that looks the same (confusable letters), a
//! look-alike or extended npm scope, or a well-known name republished under another scope is
//! reported. It is only reported: the user may well mean it.

use crate::alert::{ActionTaken, Alert, Severity};
use crate::config::Settings;
use crate::policy::{Action, Policy};

pub const SUPPLY_CHAIN: &str = "SUPPLY-CHAIN";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    Npm,
    PyPi,
    Image,
}

/// Well-known MCP server packages. `✓` notes names checked against a registry page, the package's
/// own manifest or its vendor's docs when this list was written; the rest follow the same vendors'
/// published naming.
const WELL_KNOWN: &[(Ecosystem, &str)] = {
    use Ecosystem::*;
    &[
        // The reference servers (github.com/modelcontextprotocol/servers).
        (Npm, "@modelcontextprotocol/server-filesystem"), // ✓ servers package.json
        (Npm, "@modelcontextprotocol/server-memory"),     // ✓
        (Npm, "@modelcontextprotocol/server-everything"), // ✓
        (Npm, "@modelcontextprotocol/server-sequential-thinking"), // ✓
        (Npm, "@modelcontextprotocol/server-github"),     // ✓ archived servers
        (Npm, "@modelcontextprotocol/server-gitlab"),     // ✓ archived
        (Npm, "@modelcontextprotocol/server-slack"),      // ✓ archived
        (Npm, "@modelcontextprotocol/server-brave-search"), // ✓ archived
        (Npm, "@modelcontextprotocol/server-puppeteer"),  // ✓ archived
        (Npm, "@modelcontextprotocol/server-postgres"),   // ✓ archived
        (Npm, "@modelcontextprotocol/server-google-maps"), // ✓ archived
        (Npm, "@modelcontextprotocol/server-gdrive"),     // ✓ archived
        (Npm, "@modelcontextprotocol/server-redis"),      // ✓ archived
        (Npm, "@modelcontextprotocol/server-aws-kb-retrieval"), // ✓ archived
        (Npm, "@modelcontextprotocol/server-everart"),    // ✓ archived
        (Npm, "@modelcontextprotocol/inspector"),         // ✓
        (PyPi, "mcp-server-fetch"),                       // ✓
        (PyPi, "mcp-server-git"),                         // ✓ wire capture
        (PyPi, "mcp-server-time"),                        // ✓ wire capture
        (PyPi, "mcp-server-sqlite"),                      // ✓ archived
        (PyPi, "mcp-server-sentry"),                      // ✓ archived
        // Vendors.
        (Npm, "@playwright/mcp"),       // ✓
        (Npm, "@upstash/context7-mcp"), // ✓
        (Npm, "firecrawl-mcp"),         // ✓
        (Npm, "exa-mcp-server"),
        (Npm, "tavily-mcp"),
        (Npm, "@notionhq/notion-mcp-server"), // ✓ npm tarball
        (Npm, "@stripe/mcp"),
        (Npm, "@sentry/mcp-server"), // ✓ vendor docs
        (Npm, "@cloudflare/mcp-server-cloudflare"),
        (Npm, "@supabase/mcp-server-supabase"), // ✓ npm tarball
        (Npm, "figma-developer-mcp"),           // ✓ vendor docs
        (Npm, "mongodb-mcp-server"),            // ✓ mongodb-js
        (Npm, "@elastic/mcp-server-elasticsearch"), // ✓
        (Npm, "@azure/mcp"),                    // ✓
        (Npm, "mcp-server-kubernetes"),
        (Npm, "@executeautomation/playwright-mcp-server"),
        (Npm, "@wonderwhy-er/desktop-commander"),
        (Npm, "@browserbasehq/mcp-server-browserbase"),
        (Npm, "@heroku/mcp-server"),
        (Npm, "@neondatabase/mcp-server-neon"),
        (Npm, "@circleci/mcp-server-circleci"),
        (Npm, "@hubspot/mcp-server"),
        (Npm, "@shopify/dev-mcp"),
        (Npm, "@apify/actors-mcp-server"),
        (Npm, "@21st-dev/magic"),
        (Npm, "task-master-ai"),
        (Npm, "@browsermcp/mcp"),
        (Npm, "mcp-remote"),
        (Npm, "@pinecone-database/mcp"),
        (Npm, "@benborla29/mcp-server-mysql"),
        (Npm, "@bytebase/dbhub"),
        (Npm, "@google-cloud/gcloud-mcp"),
        (PyPi, "mcp-atlassian"),
        (PyPi, "awslabs.core-mcp-server"), // ✓ PyPI page
        (PyPi, "awslabs.aws-documentation-mcp-server"), // ✓
        (PyPi, "awslabs.cdk-mcp-server"),  // ✓
        (PyPi, "awslabs.aws-serverless-mcp-server"), // ✓
        (PyPi, "awslabs.cost-analysis-mcp-server"), // ✓
        (PyPi, "awslabs.aws-diagram-mcp-server"), // ✓
        (PyPi, "awslabs.bedrock-kb-retrieval-mcp-server"), // ✓
        (PyPi, "awslabs.nova-canvas-mcp-server"), // ✓
        (PyPi, "mcp-server-qdrant"),
        (PyPi, "chroma-mcp"),
        (PyPi, "mcp-server-docker"),
        (PyPi, "markitdown-mcp"),
        (PyPi, "mcp-obsidian"),
        (PyPi, "postgres-mcp"),
        (PyPi, "kagimcp"),
        (Image, "ghcr.io/github/github-mcp-server"), // ✓ vendor README
        (Image, "mcp/fetch"),
        (Image, "mcp/filesystem"),
        (Image, "mcp/git"),
        (Image, "mcp/time"),
        (Image, "mcp/postgres"),
        (Image, "mcp/puppeteer"),
    ]
};

/// A package a command line runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
}

/// How a name resembles a well-known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resemblance {
    Homoglyph,
    ScopeImpersonation,
    Rescoped,
    Typo,
}

impl Resemblance {
    pub fn class(self) -> &'static str {
        match self {
            Resemblance::Homoglyph => "homoglyph package name",
            Resemblance::ScopeImpersonation => "scope impersonation",
            Resemblance::Rescoped => "rescoped well-known name",
            Resemblance::Typo => "typosquat",
        }
    }
}

/// Alerts for every configured server whose package imitates a well-known one.
pub fn check_settings(settings: &Settings) -> Vec<Alert> {
    check_servers(
        &settings.policy,
        settings.servers.iter().map(|s| {
            (
                s.name.as_str(),
                s.command.program.as_str(),
                &s.command.args[..],
            )
        }),
    )
}

pub fn check_servers<'a>(
    policy: &Policy,
    servers: impl Iterator<Item = (&'a str, &'a str, &'a [String])>,
) -> Vec<Alert> {
    if policy.action_for(SUPPLY_CHAIN, Severity::High) == Action::Off {
        return Vec::new();
    }
    let mut alerts = Vec::new();
    for (server, program, args) in servers {
        for pkg in packages(program, args) {
            if let Some((how, known)) = resembles(&pkg) {
                alerts.push(
                    Alert::new(
                        SUPPLY_CHAIN,
                        how.class(),
                        Severity::High,
                        ActionTaken::Alerted,
                        format!(
                            "server `{server}` runs `{}`, which imitates the well-known `{known}` ({}); check the package name in its command line",
                            pkg.name,
                            match how {
                                Resemblance::Homoglyph => "look-alike characters",
                                Resemblance::ScopeImpersonation => "look-alike scope",
                                Resemblance::Rescoped => "same name under another scope",
                                Resemblance::Typo => "one or two characters apart",
                            }
                        ),
                    )
                    .server(server)
                    .evidence(pkg.name.as_bytes()),
                );
            }
        }
    }
    alerts
}

/// The packages a command line runs, as far as its launcher shows them.
pub fn packages(program: &str, args: &[String]) -> Vec<Package> {
    let base = program.rsplit('/').next().unwrap_or(program);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let npm = |name: &str| Package {
        ecosystem: Ecosystem::Npm,
        name: name.to_owned(),
    };
    let pypi = |name: &str| Package {
        ecosystem: Ecosystem::PyPi,
        name: name.to_owned(),
    };
    let mut out = Vec::new();
    match base {
        "npx" | "bunx" | "pnpx" => out.extend(
            launched(
                &args,
                &["-p", "--package"],
                &["--cache", "--registry", "--userconfig"],
            )
            .map(|n| npm(strip_npm_version(n))),
        ),
        "pnpm" | "yarn" | "bun" | "npm" => {
            if let Some(i) = args.iter().position(|a| matches!(*a, "dlx" | "x" | "exec")) {
                out.extend(
                    launched(&args[i + 1..], &["-p", "--package"], &[])
                        .map(|n| npm(strip_npm_version(n))),
                );
            }
        }
        "uvx" => out.extend(
            launched(
                &args,
                &["--from"],
                &[
                    "--with",
                    "--python",
                    "-p",
                    "--index-url",
                    "--extra-index-url",
                    "--index",
                ],
            )
            .map(|n| pypi(strip_py_version(n))),
        ),
        "uv" | "pipx" => {
            // `uv tool run PKG` and `pipx run PKG`.
            let run = args
                .iter()
                .position(|a| *a == "run")
                .filter(|&i| base == "pipx" || (i > 0 && args[i - 1] == "tool"));
            if let Some(i) = run {
                out.extend(
                    launched(
                        &args[i + 1..],
                        &["--from", "--spec"],
                        &["--with", "--python", "-p", "--index-url"],
                    )
                    .map(|n| pypi(strip_py_version(n))),
                );
            }
        }
        b if b.starts_with("python") => {
            if let Some(i) = args.iter().position(|a| *a == "-m") {
                if let Some(m) = args.get(i + 1) {
                    out.push(pypi(&m.replace('_', "-")));
                }
            }
        }
        "docker" | "podman" => {
            if let Some(i) = args.iter().position(|a| *a == "run") {
                if let Some(image) = docker_image(&args[i + 1..]) {
                    out.push(Package {
                        ecosystem: Ecosystem::Image,
                        name: image,
                    });
                }
            }
        }
        _ => {}
    }
    if matches!(base, "node" | "bun" | "deno") || out.is_empty() {
        for a in &args {
            if let Some(pkg) = node_modules_package(a) {
                out.push(npm(&pkg));
            }
        }
    }
    out.retain(|p| {
        !p.name.is_empty()
            && !p.name.starts_with(['.', '/', '~'])
            && !p.name.contains("://")
            && !p.name.contains(':')
    });
    out
}

/// The package a launcher runs: the value of a package flag, else the first plain argument.
fn launched<'a>(
    args: &[&'a str],
    package_flags: &[&str],
    valued_flags: &[&str],
) -> impl Iterator<Item = &'a str> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            if let Some(next) = args.get(i + 1) {
                found.push(*next);
            }
            break;
        }
        if let Some((flag, value)) = a.split_once('=') {
            if package_flags.contains(&flag) {
                found.push(value);
                i += 1;
                continue;
            }
        }
        if package_flags.contains(&a) {
            if let Some(v) = args.get(i + 1) {
                found.push(*v);
            }
            i += 2;
            continue;
        }
        if valued_flags.contains(&a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        if found.is_empty() {
            found.push(a);
        }
        break;
    }
    found.into_iter()
}

fn strip_npm_version(spec: &str) -> &str {
    match spec.rfind('@') {
        Some(i) if i > 0 => &spec[..i],
        _ => spec,
    }
}

fn strip_py_version(spec: &str) -> &str {
    let end = spec
        .find(['=', '>', '<', '~', '!', '@', '[', ';', ' '])
        .unwrap_or(spec.len());
    &spec[..end]
}

/// The image of `docker run [options] IMAGE [command]`, without tag or digest.
fn docker_image(args: &[&str]) -> Option<String> {
    const VALUED: &[&str] = &[
        "-e",
        "--env",
        "-v",
        "--volume",
        "-p",
        "--publish",
        "-w",
        "--workdir",
        "-u",
        "--user",
        "--name",
        "--network",
        "--net",
        "--mount",
        "--entrypoint",
        "--env-file",
        "--platform",
        "-l",
        "--label",
        "--add-host",
        "--cap-add",
        "--cap-drop",
        "-m",
        "--memory",
        "--cpus",
        "--pull",
        "--restart",
        "-h",
        "--hostname",
        "--device",
        "--security-opt",
        "--ulimit",
        "--tmpfs",
        "--log-driver",
        "--runtime",
        "--gpus",
    ];
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if VALUED.contains(&a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        let no_digest = a.split('@').next().unwrap_or(a);
        let (path, last) = match no_digest.rfind('/') {
            Some(s) => (&no_digest[..=s], &no_digest[s + 1..]),
            None => ("", no_digest),
        };
        let last = last.split(':').next().unwrap_or(last);
        let image = format!("{path}{last}").to_lowercase();
        let image = image
            .strip_prefix("docker.io/")
            .map(str::to_owned)
            .unwrap_or(image);
        let image = image
            .strip_prefix("library/")
            .map(str::to_owned)
            .unwrap_or(image);
        return Some(image);
    }
    None
}

/// `…/node_modules/@scope/name/…` or `…/node_modules/name/…` → the package.
fn node_modules_package(arg: &str) -> Option<String> {
    let at = arg.rfind("node_modules/")?;
    let mut parts = arg[at + "node_modules/".len()..].split('/');
    let first = parts.next().filter(|p| !p.is_empty())?;
    if first.starts_with('@') {
        let second = parts.next().filter(|p| !p.is_empty())?;
        Some(format!("{first}/{second}"))
    } else {
        Some(first.to_owned())
    }
}

/// PEP 503: case and runs of `-`, `_`, `.` do not tell PyPI projects apart.
fn pypi_normal(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn skeleton(s: &str) -> String {
    unicode_security::skeleton(s)
        .flat_map(char::to_lowercase)
        .collect()
}

/// `(scope, name)`: npm `@scope/name`, image `registry/namespace/name`; no scope otherwise.
fn split_scope(name: &str) -> (Option<&str>, &str) {
    match name.rfind('/') {
        Some(i) => (Some(name[..i].trim_start_matches('@')), &name[i + 1..]),
        None => (None, name),
    }
}

/// Optimal string alignment distance (a transposition is one edit), bounded by `max + 1`.
fn distance(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()].min(max + 1)
}

/// Within typo reach: one edit for short names, two for longer ones; a name that merely extends
/// another (`mcp-server-gitea`, `mcp-server-git`) is a different package, not a typo.
fn near(a: &str, b: &str) -> bool {
    if a == b || a.starts_with(b) || b.starts_with(a) {
        return false;
    }
    let max = if a.chars().count().min(b.chars().count()) <= 6 {
        1
    } else {
        2
    };
    distance(a, b, max) <= max
}

/// The well-known package `pkg` imitates, and how; `None` for well-known and unrelated names.
pub fn resembles(pkg: &Package) -> Option<(Resemblance, &'static str)> {
    let same_eco = |e: Ecosystem| e == pkg.ecosystem;
    let lower = pkg.name.to_lowercase();
    let equal = |known: &str| match pkg.ecosystem {
        Ecosystem::PyPi => pypi_normal(&pkg.name) == pypi_normal(known),
        _ => lower == known,
    };
    if WELL_KNOWN.iter().any(|&(e, k)| same_eco(e) && equal(k)) {
        return None;
    }
    let sk = skeleton(&pkg.name);
    let (cs, cn) = split_scope(&lower);
    let mut best: Option<(Resemblance, &'static str)> = None;
    for &(_, known) in WELL_KNOWN.iter().filter(|(e, _)| same_eco(*e)) {
        let found = if sk == skeleton(known) {
            Some(Resemblance::Homoglyph)
        } else {
            let (ks, kn) = split_scope(known);
            match (cs, ks) {
                (Some(cs), Some(ks)) if cs == ks => near(cn, kn).then_some(Resemblance::Typo),
                (Some(cs), Some(ks)) => {
                    let scope_alike = cs.contains(ks) || near(cs, ks);
                    if scope_alike && (cn == kn || near(cn, kn)) {
                        Some(Resemblance::ScopeImpersonation)
                    } else if cn == kn && kn.len() >= 8 && pkg.ecosystem == Ecosystem::Npm {
                        Some(Resemblance::Rescoped)
                    } else {
                        None
                    }
                }
                (Some(_), None) => (cn == kn && kn.len() >= 6).then_some(Resemblance::Rescoped),
                (None, Some(_)) => (cn == kn && kn.len() >= 10).then_some(Resemblance::Rescoped),
                (None, None) => {
                    let (a, b) = match pkg.ecosystem {
                        Ecosystem::PyPi => (pypi_normal(cn), pypi_normal(kn)),
                        _ => (cn.to_owned(), kn.to_owned()),
                    };
                    near(&a, &b).then_some(Resemblance::Typo)
                }
            }
        };
        if let Some(f) = found {
            let rank = |r: Resemblance| match r {
                Resemblance::Homoglyph => 4,
                Resemblance::ScopeImpersonation => 3,
                Resemblance::Rescoped => 2,
                Resemblance::Typo => 1,
            };
            if best.is_none_or(|(b, _)| rank(f) > rank(b)) {
                best = Some((f, known));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn check(program: &str, a: &[&str]) -> Option<Resemblance> {
        let pkgs = packages(program, &args(a));
        pkgs.iter().find_map(resembles).map(|(r, _)| r)
    }

    #[test]
    fn the_list_is_large_enough_and_unique() {
        assert!(WELL_KNOWN.len() >= 60, "{}", WELL_KNOWN.len());
        let names: HashSet<_> = WELL_KNOWN.iter().map(|(_, n)| *n).collect();
        assert_eq!(names.len(), WELL_KNOWN.len());
        for (_, n) in WELL_KNOWN {
            assert_eq!(*n, n.to_lowercase(), "{n}");
        }
    }

    #[test]
    fn packages_are_read_from_launcher_command_lines() {
        let p = |prog: &str, a: &[&str]| -> Vec<String> {
            packages(prog, &args(a))
                .into_iter()
                .map(|p| p.name)
                .collect()
        };
        assert_eq!(
            p("npx", &["-y", "@playwright/mcp@latest", "--vision"]),
            vec!["@playwright/mcp"]
        );
        assert_eq!(
            p("/usr/bin/npx", &["--package=firecrawl-mcp", "firecrawl"]),
            vec!["firecrawl-mcp"]
        );
        assert_eq!(p("pnpm", &["dlx", "tavily-mcp@0.2"]), vec!["tavily-mcp"]);
        assert_eq!(
            p("uvx", &["mcp-server-fetch==1.0"]),
            vec!["mcp-server-fetch"]
        );
        assert_eq!(
            p("uvx", &["--from", "awslabs.core-mcp-server@latest", "core"]),
            vec!["awslabs.core-mcp-server"]
        );
        assert_eq!(
            p("pipx", &["run", "mcp-server-git"]),
            vec!["mcp-server-git"]
        );
        assert_eq!(
            p("uv", &["tool", "run", "mcp-server-time"]),
            vec!["mcp-server-time"]
        );
        assert_eq!(
            p("python3", &["-m", "mcp_server_git"]),
            vec!["mcp-server-git"]
        );
        assert_eq!(
            p(
                "docker",
                &[
                    "run",
                    "-i",
                    "--rm",
                    "-e",
                    "GITHUB_PERSONAL_ACCESS_TOKEN",
                    "ghcr.io/github/github-mcp-server:v1"
                ]
            ),
            vec!["ghcr.io/github/github-mcp-server"]
        );
        assert_eq!(
            p("node", &["/home/u/.npm/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", "/tmp"]),
            vec!["@modelcontextprotocol/server-filesystem"]
        );
        assert!(p("node", &["./build/index.js"]).is_empty());
        assert!(p("/opt/my-server", &["--port", "1"]).is_empty());
        assert!(p("uvx", &["--from", "git+https://github.com/x/y", "y"]).is_empty());
    }

    #[test]
    fn imitations_are_recognised() {
        use Resemblance::*;
        let cases: &[(&str, &[&str], Resemblance)] = &[
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-filesytem"],
                Typo,
            ),
            ("npx", &["@modelcontextprotocol/server-githbu"], Typo),
            (
                "npx",
                &["@modelcontextprotocol-official/server-github"],
                ScopeImpersonation,
            ),
            ("npx", &["@modelcontextprotocoI/server-github"], Homoglyph),
            ("npx", &["@modelcontextprotoco1/server-github"], Homoglyph),
            ("npx", &["@modelcontextprotocol/server-gіthub"], Homoglyph),
            ("npx", &["@evil-corp/firecrawl-mcp"], Rescoped),
            ("npx", &["@someone/server-sequential-thinking"], Rescoped),
            ("npx", &["-y", "@playwrigth/mcp"], ScopeImpersonation),
            ("npx", &["firecrawl-mpc"], Typo),
            ("uvx", &["mcp-server-fecth"], Typo),
            ("uvx", &["awslabs.core-mcp-sever"], Typo),
            (
                "docker",
                &["run", "-i", "ghcr.io/github/github-mcp-sever"],
                Typo,
            ),
            ("pipx", &["run", "mcp-atlasian"], Typo),
        ];
        for (prog, a, want) in cases {
            assert_eq!(check(prog, a), Some(*want), "{prog} {a:?}");
        }
    }

    #[test]
    fn well_known_and_unrelated_packages_are_quiet() {
        let cases: &[(&str, &[&str])] = &[
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
            ),
            ("npx", &["-y", "@playwright/mcp@latest"]),
            ("npx", &["@acme/internal-mcp"]),
            ("npx", &["@upstash/context7-mcp"]),
            ("uvx", &["mcp-server-git"]),
            ("uvx", &["awslabs-core-mcp-server"]),
            ("uvx", &["MCP_Server_Fetch"]),
            ("uvx", &["mcp-server-gitea"]),
            ("npx", &["my-company-mcp"]),
            ("node", &["/srv/mcp/dist/index.js"]),
            ("python", &["server.py"]),
            ("docker", &["run", "-i", "--rm", "mcp/fetch"]),
            ("docker", &["run", "-i", "acme/internal-tools:1"]),
            ("/usr/local/bin/custom-server", &["--stdio"]),
        ];
        for (prog, a) in cases {
            assert_eq!(check(prog, a), None, "{prog} {a:?}");
        }
    }

    #[test]
    fn alerts_name_the_server_and_the_original() {
        let a = args(&["-y", "@modelcontextprotocol/server-filesytem"]);
        let alerts = check_servers(&Policy::default(), [("fs", "npx", &a[..])].into_iter());
        assert_eq!(alerts.len(), 1);
        let al = &alerts[0];
        assert_eq!(
            (al.rule.as_str(), al.class.as_str(), al.severity, al.action),
            (
                SUPPLY_CHAIN,
                "typosquat",
                Severity::High,
                ActionTaken::Alerted
            )
        );
        assert!(
            al.detail
                .contains("`@modelcontextprotocol/server-filesystem`"),
            "{}",
            al.detail
        );
        assert_eq!(al.server.as_deref(), Some("fs"));
        let off = Policy::new(
            crate::policy::Mode::Enforce,
            [(SUPPLY_CHAIN.to_string(), Action::Off)]
                .into_iter()
                .collect(),
        );
        assert!(check_servers(&off, [("fs", "npx", &a[..])].into_iter()).is_empty());
    }
}
