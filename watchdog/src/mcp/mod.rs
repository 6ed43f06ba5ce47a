//! The protocol's knowledge: method names, which results are lists, where text lives.
