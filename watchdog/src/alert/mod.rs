//! Alerts: one model, several sinks (stderr for people, JSON lines, the hash-chained audit log).

pub mod excerpt;
pub mod model;

pub use model::{ActionTaken, Alert, Direction, Severity};
