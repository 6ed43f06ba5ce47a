//! The pins file as it is, for commands that only look at it (`scan`, `status`).
//!
//! [`super::Store::load`] locks the file and moves a corrupt one aside: right for the proxy and
//! the `pins` commands, wrong for a look that must change nothing. A snapshot is a plain read;
//! a corrupt file is reported as such and left where it is.

use super::model::{ItemState, PinsFile, FORMAT_VERSION};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum Snapshot {
    /// No file yet: every server starts from first use.
    Missing(PathBuf),
    Read(PathBuf, PinsFile),
    /// Unreadable, or not a pins file; the proxy would move it aside and trust nothing.
    Unusable(PathBuf, String),
}

impl Snapshot {
    pub fn read(path: &Path) -> Snapshot {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Snapshot::Missing(path.into()),
            Err(e) => return Snapshot::Unusable(path.into(), format!("cannot read it: {e}")),
        };
        match serde_json::from_slice::<PinsFile>(&bytes) {
            Ok(file) if file.version == FORMAT_VERSION => Snapshot::Read(path.into(), file),
            Ok(file) => Snapshot::Unusable(
                path.into(),
                format!(
                    "format version {} (this build reads {FORMAT_VERSION})",
                    file.version
                ),
            ),
            Err(e) => Snapshot::Unusable(path.into(), format!("not a pins file: {e}")),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Snapshot::Missing(p) | Snapshot::Read(p, _) | Snapshot::Unusable(p, _) => p,
        }
    }

    /// The file's contents; empty when missing or unusable.
    pub fn file(&self) -> PinsFile {
        match self {
            Snapshot::Read(_, file) => file.clone(),
            _ => PinsFile::default(),
        }
    }
}

/// How many of a server identity's items are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub approved: usize,
    pub pending: usize,
    pub changed: usize,
    pub removed: usize,
}

impl StateCounts {
    pub fn add(&mut self, state: ItemState) {
        match state {
            ItemState::Approved => self.approved += 1,
            ItemState::Pending => self.pending += 1,
            ItemState::Changed => self.changed += 1,
            ItemState::Removed => self.removed += 1,
        }
    }
}

/// Per pinned identity (by id): its configured name and the counts of its items.
pub fn counts(file: &PinsFile) -> BTreeMap<String, (String, StateCounts)> {
    file.servers
        .iter()
        .map(|(id, server)| {
            let mut counts = StateCounts::default();
            for pin in server.items.values().flat_map(|m| m.values()) {
                counts.add(pin.state());
            }
            (id.clone(), (server.name.clone(), counts))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_reported_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        assert!(matches!(Snapshot::read(&path), Snapshot::Missing(_)));
        std::fs::write(&path, "{").unwrap();
        let Snapshot::Unusable(_, why) = Snapshot::read(&path) else {
            panic!("a corrupt file must not read as pins")
        };
        assert!(why.contains("not a pins file"), "{why}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
