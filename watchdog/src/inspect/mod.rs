//! Inline inspectors: pass, rewrite or block a message before it moves on.
