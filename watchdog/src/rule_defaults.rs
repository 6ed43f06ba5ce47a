//! Every rule a policy can set, grouped by what it does when the policy says nothing.
//!
//! Plain constants without imports: `cargo xtask bench` includes this file too, to run the
//! watchdog with every rule off.

/// Rule id of the per-server tool allow/deny lists.
pub const TOOL_POLICY: &str = "TOOL-POLICY";

/// Response-side rules: the hostile part is cut out, the rest goes on (DETECTIONS.md).
pub const STRIP_BY_DEFAULT: &[&str] = &[
    "SMAC-1",
    "SMAC-2",
    "SMAC-5",
    "SMAC-6",
    "ESCALATION",
    "ENTROPY",
    "SHADOW",
    "PARAM-INJECT",
    // Repeats of a change notification are coalesced (the first and the last reach the client).
    "NOTIF-INJECT",
    // Injected instructions are cut out of sampling requests; credential forms are declined.
    "SAMPLING",
    "ELICITATION",
];

/// Request-side rules: critical findings are blocked, the rest alerted (DETECTIONS.md).
pub const BLOCK_CRITICAL_BY_DEFAULT: &[&str] = &[
    "SSRF",
    "EXFIL",
    "CMD-INJECT",
    "REVERSE-SHELL",
    "SQL-INJECT",
    "PATH-TRAVERSAL",
    "EMAIL-INJECT",
    // A secret produced by one server sent to another (Critical); other tokens are reported.
    "FLOW",
    // Tool calls beyond the configured hard limit (Critical); bursts above the soft one reported.
    "RATE-LIMIT",
];

/// Rules whose every finding is stopped: a denied tool, a pinned definition that changed
/// (withheld from lists and its calls refused until the user approves it), a dangerous
/// authorization URL (cut out of results; a URL-mode elicitation declined), and a token presented
/// to a server it was not issued for.
pub const BLOCK_BY_DEFAULT: &[&str] = &[TOOL_POLICY, "RUG-PULL", "OAUTH", "TOKEN-REPLAY"];

/// Rules that only report unless configured: whitespace steganography, a message too large to
/// inspect (relayed uninspected), behavioural drift, and lookalike server packages.
pub const ALERT_BY_DEFAULT: &[&str] = &["STEGO", "INSPECT-LIMIT", "DRIFT", "SUPPLY-CHAIN"];

/// Every rule a `[rules]` entry can set: each in exactly one of the lists above.
pub const CONFIGURABLE_RULES: [&[&str]; 4] = [
    STRIP_BY_DEFAULT,
    BLOCK_CRITICAL_BY_DEFAULT,
    BLOCK_BY_DEFAULT,
    ALERT_BY_DEFAULT,
];
