//! Upstream server processes: spawn, sandbox, track, restart, terminate.

pub mod spawn;
