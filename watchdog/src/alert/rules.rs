//! Rule ids raised by the proxy machinery itself (detectors define theirs next to their code).

/// A frame that is not a JSON-RPC message, or too large to accept.
pub const FRAMING: &str = "FRAMING";
/// Responses to ids the client never sent, duplicates, unmatched answers.
pub const SESSION: &str = "SESSION";
/// Upstream servers crashing, restarting, failing, or not starting.
pub const SUPERVISION: &str = "SUPERVISION";
