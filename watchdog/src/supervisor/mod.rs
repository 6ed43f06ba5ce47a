//! Upstream server processes: spawn, sandbox, track, restart, terminate.

pub mod process_tree;
pub mod spawn;
pub mod terminate;
