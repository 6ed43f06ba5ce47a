//! Tool pinning (RUG-PULL): trust on first use of every definition a server publishes, persisted,
//! and nothing changed, added or removed later is used until the user approves it.
//!
//! `model` is the file format, `canonical` the hashing, `store` the file on disk, `judge` the
//! change detection, `book` the running proxy's shared view, `diff` the readable diff and
//! `commands` the `mcp-watchdog pins …` subcommands. The inline enforcement is
//! `inspect::rug_pull`.

pub mod book;
pub mod canonical;
pub mod commands;
pub mod diff;
pub mod identity;
pub mod judge;
pub mod model;
pub mod snapshot;
pub mod store;

pub use book::{Notice, PinBook};
pub use identity::ServerIdentity;
pub use model::{Change, ItemKind};
pub use store::Store;
