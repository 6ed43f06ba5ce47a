//! The table of secret kinds with a recognisable shape: where a candidate starts, what it looks
//! like, how sure a match is. Kinds whose shape needs code (PEM blocks, generic labels, Discord and
//! Twilio ids) live in `secrets.rs`.

use crate::alert::Severity;

/// How a pattern match is confirmed before it counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// A random token: not a placeholder, and at least this much Shannon entropy (bits per char).
    Random(f64),
    /// A JSON Web Token: the header decodes to a JSON object with `alg`.
    Jwt,
    /// A password in a URL: long and varied enough not to be a documentation stand-in.
    Password,
}

pub struct SecretKind {
    /// What the redaction says: `[REDACTED:<kind>]`.
    pub kind: &'static str,
    pub severity: Severity,
    /// Literals (ASCII case-insensitive) at which a candidate starts; the pattern is tried there.
    pub anchors: &'static [&'static str],
    /// Regex (bytes, matched from the anchor). A named group `v` is the secret; otherwise the
    /// whole match is.
    pub pattern: &'static str,
    /// How far past the anchor a match may reach.
    pub window: usize,
    pub check: Check,
    /// The secret starts at the anchor and must not continue a longer word on either side.
    pub bounded: bool,
    /// The key may arrive broken by spaces (`A K I A …`) or line breaks; try joining the pieces.
    pub splittable: bool,
}

const CRITICAL: Severity = Severity::Critical;
const HIGH: Severity = Severity::High;

/// Separator between a label and its value: `=`, `:`, `=>`, with optional (escaped) quotes.
macro_rules! labelled {
    ($label:literal, $value:literal) => {
        concat!(
            $label,
            r#"\\?["']?\s*(?:=>|:=|=|:)\s*\\?["']?(?P<v>"#,
            $value,
            ")"
        )
    };
}

/// In priority order: where two kinds claim overlapping text, the earlier one wins.
pub const KINDS: &[SecretKind] = &[
    SecretKind {
        kind: "gcp-service-account",
        severity: CRITICAL,
        anchors: &["private_key"],
        pattern: r#"private_key\\?"\s*:\s*\\?"(?P<v>-----BEGIN [A-Z ]*PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{64,}-----END [A-Z ]*PRIVATE KEY-----(?:\\n|\n)*)"#,
        window: 8192,
        check: Check::Random(4.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "gcp-service-account",
        severity: CRITICAL,
        anchors: &["private_key_id"],
        pattern: r#"private_key_id\\?"\s*:\s*\\?"(?P<v>[0-9a-f]{40})\\?""#,
        window: 128,
        check: Check::Random(3.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "aws-access-key",
        severity: CRITICAL,
        anchors: &["AKIA", "ASIA", "ABIA", "ACCA"],
        pattern: r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
        window: 20,
        check: Check::Random(2.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "aws-secret-key",
        severity: CRITICAL,
        anchors: &["secret_access_key", "secretaccesskey", "aws_secret_key"],
        pattern: labelled!(
            "(?i:secret_?access_?key|aws_secret_key)",
            "[A-Za-z0-9/+]{40}"
        ),
        window: 128,
        check: Check::Random(3.5),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "azure-storage-key",
        severity: CRITICAL,
        anchors: &["AccountKey="],
        pattern: r"AccountKey=(?P<v>[A-Za-z0-9+/]{86}==)",
        window: 128,
        check: Check::Random(4.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "azure-shared-access-key",
        severity: CRITICAL,
        anchors: &["SharedAccessKey="],
        pattern: r"SharedAccessKey=(?P<v>[A-Za-z0-9+/]{43}=)",
        window: 80,
        check: Check::Random(4.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "github-token",
        severity: CRITICAL,
        anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        pattern: r"gh[pousr]_[A-Za-z0-9]{36}",
        window: 40,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "github-token",
        severity: CRITICAL,
        anchors: &["github_pat_"],
        pattern: r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        window: 93,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "gitlab-token",
        severity: CRITICAL,
        anchors: &["glpat-"],
        pattern: r"glpat-[A-Za-z0-9_-]{20,}",
        window: 128,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "slack-token",
        severity: CRITICAL,
        anchors: &[
            "xoxb-", "xoxp-", "xoxa-", "xoxe-", "xoxo-", "xoxr-", "xoxs-",
        ],
        pattern: r"xox[abeoprs]-[0-9]{6,}-[0-9A-Za-z-]{10,}",
        window: 256,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "slack-token",
        severity: CRITICAL,
        anchors: &["xapp-"],
        pattern: r"xapp-[0-9]-[A-Za-z0-9-]{20,}",
        window: 256,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "slack-webhook",
        severity: CRITICAL,
        anchors: &["hooks.slack.com/services/"],
        pattern: r"hooks\.slack\.com/services/(?P<v>T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,})",
        window: 128,
        check: Check::Random(3.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "stripe-key",
        severity: CRITICAL,
        anchors: &["sk_live_", "rk_live_"],
        pattern: r"[sr]k_live_[A-Za-z0-9]{20,}",
        window: 128,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "anthropic-key",
        severity: CRITICAL,
        anchors: &["sk-ant-"],
        pattern: r"sk-ant-[a-z0-9]{2,10}-[A-Za-z0-9_-]{40,}",
        window: 160,
        check: Check::Random(3.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "openai-key",
        severity: CRITICAL,
        anchors: &["sk-proj-", "sk-svcacct-", "sk-admin-"],
        pattern: r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}",
        window: 256,
        check: Check::Random(3.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "openai-key",
        severity: CRITICAL,
        anchors: &["sk-"],
        pattern: r"sk-[A-Za-z0-9]{48}",
        window: 51,
        check: Check::Random(3.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "npm-token",
        severity: CRITICAL,
        anchors: &["npm_"],
        pattern: r"npm_[A-Za-z0-9]{36}",
        window: 40,
        check: Check::Random(3.0),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "pypi-token",
        severity: CRITICAL,
        anchors: &["pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"],
        pattern: r"pypi-AgE[A-Za-z0-9_-]{50,}",
        window: 512,
        check: Check::Random(3.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "vault-token",
        severity: CRITICAL,
        anchors: &["hvs.", "hvb."],
        pattern: r"hv[sb]\.[A-Za-z0-9_-]{24,}",
        window: 256,
        check: Check::Random(3.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "datadog-api-key",
        severity: CRITICAL,
        anchors: &[
            "dd_api",
            "dd-api",
            "ddapi",
            "dd_app",
            "dd-app",
            "datadog_api",
            "datadog-api",
            "datadog_app",
            "datadog-app",
        ],
        pattern: labelled!(
            "(?i:dd|datadog)[_-]?(?i:api|app|application)[_-]?(?i:key)",
            "[a-f0-9]{40}|[a-f0-9]{32}"
        ),
        window: 96,
        check: Check::Random(3.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "sendgrid-key",
        severity: CRITICAL,
        anchors: &["SG."],
        pattern: r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
        window: 69,
        check: Check::Random(3.5),
        bounded: true,
        splittable: false,
    },
    SecretKind {
        kind: "twilio-credential",
        severity: CRITICAL,
        anchors: &["twilio"],
        pattern: labelled!("(?i:twilio)[A-Za-z_]*", "(?:AC|SK)?[a-f0-9]{32}"),
        window: 96,
        check: Check::Random(3.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "heroku-api-key",
        severity: CRITICAL,
        anchors: &["heroku"],
        pattern: labelled!(
            "(?i:heroku)[A-Za-z_]*",
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
        ),
        window: 96,
        check: Check::Random(3.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "heroku-api-key",
        severity: CRITICAL,
        anchors: &["HRKU-"],
        pattern: r"HRKU-[A-Za-z0-9_-]{60}",
        window: 65,
        check: Check::Random(3.5),
        bounded: true,
        splittable: true,
    },
    SecretKind {
        kind: "discord-bot-token",
        severity: CRITICAL,
        anchors: &["discord"],
        pattern: labelled!(
            "(?i:discord)[A-Za-z_]*",
            r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,40}"
        ),
        window: 128,
        check: Check::Random(3.5),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "jwt",
        severity: HIGH,
        anchors: &["eyJ"],
        pattern: r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}",
        window: 8192,
        check: Check::Jwt,
        bounded: true,
        splittable: false,
    },
    SecretKind {
        kind: "bearer-token",
        severity: HIGH,
        anchors: &["bearer "],
        pattern: r"(?i:bearer)[ \t]+(?P<v>[A-Za-z0-9._~+/-]{20,}=*)",
        window: 2048,
        check: Check::Random(3.0),
        bounded: false,
        splittable: false,
    },
    SecretKind {
        kind: "url-password",
        severity: HIGH,
        anchors: &["://"],
        pattern: r#"://[A-Za-z0-9._%+-]{0,64}:(?P<v>[^\s/@:"'<>\\]{8,128})@[A-Za-z0-9.-]"#,
        window: 256,
        check: Check::Password,
        bounded: false,
        splittable: false,
    },
];

/// Label words of generic `name = value` secrets. A label counts when it *ends* with one of
/// [`LABEL_ENDINGS`] (after dropping `_`, `-` and `.`), so `max_tokens` or `secret_name` do not.
pub const LABEL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
    "private-key",
];

/// (ending of a label without separators, lower-case; the kind it redacts as).
pub const LABEL_ENDINGS: &[(&str, &str)] = &[
    ("password", "password"),
    ("passwd", "password"),
    ("passphrase", "password"),
    ("secret", "secret"),
    ("secretkey", "secret"),
    ("privatekey", "secret"),
    ("token", "token"),
    ("apikey", "api-key"),
    ("accesskey", "api-key"),
];

/// Label endings that name something other than a credential (pagination, protocol plumbing).
pub const LABEL_NOT_SECRET: &[&str] = &[
    "pagetoken",
    "nexttoken",
    "continuationtoken",
    "synctoken",
    "progresstoken",
    "cursortoken",
    "resumetoken",
    "csrftoken",
    "xsrftoken",
    "idempotencytoken",
    "cancellationtoken",
    "publickey",
];

/// Public stand-ins that documentation and emulators ship (AWS docs, Azurite, jwt.io).
pub const KNOWN_EXAMPLES: &[&str] = &[
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
];

/// Prefilter literals for the whole detector, on raw JSON bytes (ASCII case-insensitive):
/// every anchor, the spaced forms of splittable prefixes, the label words, the PEM header and the
/// escaped spelling of `://`. A test keeps this in step with the table.
pub const TRIGGERS: &[&str] = &[
    "private_key",
    "akia",
    "asia",
    "abia",
    "acca",
    "secret",
    "aws_secret_key",
    "accountkey=",
    "sharedaccesskey=",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xox",
    "xapp-",
    "hooks.slack.com",
    "k_live_",
    "sk-",
    "npm_",
    "pypi-",
    "hvs.",
    "hvb.",
    "dd_ap",
    "dd-ap",
    "ddapi",
    "datadog",
    "sg.",
    "twilio",
    "heroku",
    "hrku-",
    "discord",
    "eyj",
    "bearer",
    "://",
    ":\\/\\/",
    "password",
    "passwd",
    "passphrase",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private-key",
    "-----begin",
    // Spaced forms of splittable prefixes (`A K I A …`).
    "a k i a",
    "a s i a",
    "a b i a",
    "a c c a",
    "g h p _",
    "g h o _",
    "g h s _",
    "g h u _",
    "g h r _",
    "g l p a t",
    "x o x",
    "x a p p -",
    "k _ l i v e",
    "s k -",
    "n p m _",
    "p y p i -",
    "h v s .",
    "h v b .",
    "h r k u -",
    "g i t h u b _",
];
