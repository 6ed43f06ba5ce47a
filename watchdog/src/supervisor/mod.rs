//! Upstream server processes: spawn, sandbox, track, restart, terminate; and the Supervisor that
//! ends it all in order.

pub mod lifecycle;
pub mod orphans;
pub mod process_tree;
pub mod restart;
pub mod spawn;
pub mod terminate;
pub mod upstream;

pub use lifecycle::Supervisor;
