//! One client config file: where it is, which objects in it hold server entries, and how to find
//! them in a parsed document.

use crate::clients::jsonc::{line_column, Node, NodeKind};
use crate::clients::Client;
use std::path::PathBuf;

/// One step of the way from the document's root to a table of servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Key(&'static str),
    /// Every member of an object (Claude Code's `projects.<path>`).
    EachKey,
}

/// Where a table of server entries sits in a document.
pub type TablePath = &'static [Step];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// `None` for a file given with `--config-path` and no `--client`.
    pub client: Option<Client>,
    pub path: PathBuf,
    pub tables: &'static [TablePath],
    /// The file may hold comments and trailing commas (VS Code's files do).
    pub comments: bool,
}

/// Every layout the known clients use, for a file whose client is not known.
const ANY_LAYOUT: &[TablePath] = &[
    &[Step::Key("mcpServers")],
    &[
        Step::Key("projects"),
        Step::EachKey,
        Step::Key("mcpServers"),
    ],
    &[Step::Key("servers")],
    &[Step::Key("mcp"), Step::Key("servers")],
];

impl ConfigFile {
    pub fn any_layout(path: PathBuf) -> ConfigFile {
        ConfigFile {
            client: None,
            path,
            tables: ANY_LAYOUT,
            comments: true,
        }
    }

    pub fn client_name(&self) -> &'static str {
        self.client.map_or("config", Client::name)
    }
}

/// A table of server entries found in a document.
#[derive(Debug)]
pub struct Table<'a> {
    /// Where it is, for people: `mcpServers`, `projects["/home/me/app"].mcpServers`, `mcp.servers`.
    pub label: String,
    pub node: &'a Node,
}

/// Finds every table of `file` in `root`. A table (or an object on the way to it) that is present
/// but of the wrong kind is an error: editing around it could change what the client sees.
pub fn find_tables<'a>(
    text: &str,
    root: &'a Node,
    paths: &[TablePath],
) -> Result<Vec<Table<'a>>, String> {
    let mut found = Vec::new();
    for path in paths {
        walk(text, root, path, String::new(), &mut found)?;
    }
    Ok(found)
}

fn walk<'a>(
    text: &str,
    node: &'a Node,
    rest: &[Step],
    label: String,
    found: &mut Vec<Table<'a>>,
) -> Result<(), String> {
    let NodeKind::Object(members) = &node.kind else {
        let (line, column) = line_column(text, node.span.start);
        let what = if label.is_empty() {
            "the top level"
        } else {
            &label
        };
        return Err(format!(
            "line {line}, column {column}: expected {what} to be an object, found {}",
            node.describe()
        ));
    };
    let Some((step, rest)) = rest.split_first() else {
        found.push(Table { label, node });
        return Ok(());
    };
    match step {
        Step::Key(key) => match node.get(key) {
            Some(child) => walk(text, child, rest, join(&label, key), found),
            None => Ok(()),
        },
        Step::EachKey => {
            for member in members {
                let label = format!("{label}[{}]", serde_json::Value::from(member.key.as_str()));
                // A project without the key is usual; a project that is not an object is not ours.
                if matches!(member.value.kind, NodeKind::Object(_)) {
                    walk(text, &member.value, rest, label, found)?;
                }
            }
            Ok(())
        }
    }
}

fn join(label: &str, key: &str) -> String {
    if label.is_empty() {
        key.to_owned()
    } else {
        format!("{label}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::jsonc::parse;

    #[test]
    fn finds_top_level_and_per_project_tables() {
        let text = r#"{"mcpServers": {"a": {}}, "projects": {"/p": {"mcpServers": {"b": {}}}, "/q": {"x": 1}, "/r": 3}}"#;
        let root = parse(text, false).unwrap();
        let tables = find_tables(text, &root, ANY_LAYOUT).unwrap();
        let labels: Vec<_> = tables.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["mcpServers", "projects[\"/p\"].mcpServers"]);
    }

    #[test]
    fn a_table_of_the_wrong_kind_is_an_error_with_its_position() {
        let text = "{\n  \"mcpServers\": [\"a\"]\n}";
        let root = parse(text, false).unwrap();
        let err = find_tables(text, &root, ANY_LAYOUT).unwrap_err();
        assert_eq!(
            err,
            "line 2, column 17: expected mcpServers to be an object, found an array"
        );
        let root = parse("[1]", false).unwrap();
        let err = find_tables("[1]", &root, ANY_LAYOUT).unwrap_err();
        assert!(
            err.contains("expected the top level to be an object"),
            "{err}"
        );
    }

    #[test]
    fn nested_vscode_settings_table() {
        let text = r#"{"editor.fontSize": 12, "mcp": {"servers": {"x": {}}}}"#;
        let root = parse(text, true).unwrap();
        let tables = find_tables(text, &root, ANY_LAYOUT).unwrap();
        assert_eq!(tables[0].label, "mcp.servers");
    }
}
