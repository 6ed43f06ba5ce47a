//! Settings from watchdog.toml and the command line.
