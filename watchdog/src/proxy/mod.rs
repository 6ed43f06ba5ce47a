//! The client-facing session: routing, id remapping, namespacing, inspection.

pub mod merge;
pub mod pending;
pub mod routing;
pub mod session;
pub mod side_thread;
pub mod stdio;

pub use session::Session;
