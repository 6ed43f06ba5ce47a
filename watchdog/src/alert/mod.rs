//! Alerts: one model, several sinks (stderr for people, JSON lines, the hash-chained audit log).

pub mod audit;
pub mod excerpt;
pub mod model;

pub use audit::{default_audit_path, verify, AuditLog, VerifyError, VerifyErrorKind, VerifyReport};
pub use model::{ActionTaken, Alert, Direction, Severity};
