//! Checks of a server's command line, made before it is started: what can be told without
//! speaking MCP to it (which package a launcher fetches, from where).
//!
//! The scan runs every check in [`start_checks`] on every server and reports the findings on the
//! server's `command` row; a check that finds something critical makes the scan exit 3 like any
//! other finding. Checks are added to the list, nothing else needs to change.

use crate::alert::Alert;
use crate::supervisor::spawn::ServerCommand;

/// One check of a command line.
pub trait StartCheck {
    /// Rule id(s), for diagnostics.
    fn name(&self) -> &'static str;

    /// Findings about `command`, configured as server `server`.
    fn check(&self, server: &str, command: &ServerCommand) -> Vec<Alert>;
}

/// Every start-time check, in the order they run.
pub fn start_checks() -> Vec<Box<dyn StartCheck>> {
    vec![Box::new(SupplyChain)]
}

/// SUPPLY-CHAIN: typosquatted, homoglyph and impersonating names of well-known MCP packages, under
/// the default policy (the proxy runs the same check at start).
struct SupplyChain;

impl StartCheck for SupplyChain {
    fn name(&self) -> &'static str {
        crate::analyze::supply_chain::SUPPLY_CHAIN
    }

    fn check(&self, server: &str, command: &ServerCommand) -> Vec<Alert> {
        crate::analyze::supply_chain::check_servers(
            &crate::policy::Policy::default(),
            std::iter::once((server, command.program.as_str(), &command.args[..])),
        )
    }
}

/// The findings of every check on one server.
pub fn run_all(
    checks: &[Box<dyn StartCheck>],
    server: &str,
    command: &ServerCommand,
) -> Vec<Alert> {
    checks
        .iter()
        .flat_map(|c| c.check(server, command))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{ActionTaken, Severity};

    struct NamesNpx;
    impl StartCheck for NamesNpx {
        fn name(&self) -> &'static str {
            "TEST"
        }
        fn check(&self, server: &str, command: &ServerCommand) -> Vec<Alert> {
            (command.program == "npx")
                .then(|| {
                    Alert::new("TEST", "npx", Severity::Low, ActionTaken::Alerted, "npx")
                        .server(server)
                })
                .into_iter()
                .collect()
        }
    }

    #[test]
    fn every_check_runs_on_the_command() {
        let checks: Vec<Box<dyn StartCheck>> = vec![Box::new(NamesNpx), Box::new(NamesNpx)];
        let cmd = |program: &str| ServerCommand {
            program: program.into(),
            args: vec![],
            env: vec![],
            cwd: None,
        };
        assert_eq!(run_all(&checks, "s", &cmd("npx")).len(), 2);
        assert!(run_all(&checks, "s", &cmd("uvx")).is_empty());
    }
}
