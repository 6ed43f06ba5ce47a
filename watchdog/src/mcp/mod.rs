//! The protocol's knowledge: method names, which results are lists, how requests are routed.

pub mod methods;

pub use methods::{list_method, ListMethod, LIST_METHODS};
