//! Analyzer actors: stateful correlation fed with observations over mailboxes.
