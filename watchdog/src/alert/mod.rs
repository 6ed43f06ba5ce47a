//! Alerts: one model, several sinks (stderr for people, JSON lines, the hash-chained audit log).

pub mod aggregate;
pub mod audit;
pub mod excerpt;
pub mod human;
pub mod model;
pub mod rules;
pub mod sink;

pub use aggregate::{RepeatAggregator, DEFAULT_REPEAT_WINDOW};
pub use audit::{default_audit_path, verify, AuditLog, VerifyError, VerifyErrorKind, VerifyReport};
pub use human::{colour_enabled, colour_enabled_for_stderr, human_line};
pub use model::{ActionTaken, Alert, Direction, FsRecord, Severity};
pub use sink::{AlertPipeline, AlertSink, AlertSinkConfig, FlushAlerts, RaiseAlert, StderrStyle};
