//! Which server a set of pins belongs to.

use super::canonical::sha256_hex;
use serde_json::json;

/// A server as the user configured it and as it names itself. Pins of one identity never apply to
/// another: a config entry now running another command, or a command now answering as another
/// server, starts from first use again (and the old pins stay for `pins list` to show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// The configured name (the one alerts and the CLI use).
    pub name: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// `serverInfo.name` from the initialize result.
    pub server_info_name: String,
    /// Hex SHA-256 over the canonical JSON of the three parts above.
    pub id: String,
}

impl ServerIdentity {
    pub fn new(name: &str, command: Vec<String>, server_info_name: &str) -> Self {
        let id = sha256_hex(&json!([name, command, server_info_name]));
        ServerIdentity {
            name: name.to_owned(),
            command,
            server_info_name: server_info_name.to_owned(),
            id,
        }
    }

    /// The id as shown to users: long enough to be unique among a user's servers.
    pub fn short_id(id: &str) -> &str {
        &id[..id.len().min(12)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_identity_counts() {
        let cmd = || vec!["npx".to_string(), "-y".into(), "pkg".into()];
        let a = ServerIdentity::new("fs", cmd(), "fs-server");
        assert_eq!(a, ServerIdentity::new("fs", cmd(), "fs-server"));
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, ServerIdentity::new("fs2", cmd(), "fs-server").id);
        assert_ne!(
            a.id,
            ServerIdentity::new("fs", vec!["npx".into()], "fs-server").id
        );
        assert_ne!(a.id, ServerIdentity::new("fs", cmd(), "other").id);
        // Parts cannot be shifted into one another to collide.
        assert_ne!(
            ServerIdentity::new("a b", vec![], "c").id,
            ServerIdentity::new("a", vec!["b".into()], "c").id
        );
    }
}
