//! The pins file on disk: locked read-modify-write, atomic replacement, corrupt files kept aside.
//!
//! Several watchdog processes (one per client, or per configured server) and the `pins` commands
//! share the file, so every change happens under an exclusive `flock` on a sibling lock file (not
//! on the file itself: atomic replacement gives the file a new inode on every write, and a lock
//! on the old inode would protect nothing).

use super::model::{PinsFile, Suspension, FORMAT_VERSION};
use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Identifies one version of the file: replacing it changes the inode, editing it the mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    len: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            len: meta.len(),
        }
    }
}

/// A corrupt file found and moved aside.
#[derive(Debug, Clone, PartialEq)]
pub struct Corruption {
    pub error: String,
    pub kept_at: PathBuf,
}

/// The file as read, and what happened while reading it.
#[derive(Debug)]
pub struct Loaded {
    pub file: PinsFile,
    /// The version now on disk (`None`: there is no file).
    pub stamp: Option<Stamp>,
    pub corruption: Option<Corruption>,
}

#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(path: PathBuf) -> Store {
        Store { path }
    }

    /// `$XDG_STATE_HOME/mcp-watchdog/pins.json` (or `~/.local/state/…`).
    pub fn default_path() -> Option<PathBuf> {
        dirs::state_dir().map(|d| d.join("mcp-watchdog").join("pins.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version on disk now, without reading it: cheap enough for the hot path's periodic check.
    pub fn stamp(&self) -> Option<Stamp> {
        fs::metadata(&self.path).ok().map(|m| Stamp::of(&m))
    }

    pub fn load(&self) -> Result<Loaded> {
        self.update(|_| ()).map(|((), loaded)| loaded)
    }

    /// Reads the file under the lock, lets `change` modify it, and writes it back if it changed.
    pub fn update<R>(&self, change: impl FnOnce(&mut PinsFile) -> R) -> Result<(R, Loaded)> {
        let _lock = self.lock()?;
        let (mut file, corruption) = self.read_locked()?;
        let before = file.clone();
        let r = change(&mut file);
        if file != before {
            self.write_locked(&file)?;
        }
        let stamp = self.stamp();
        Ok((
            r,
            Loaded {
                file,
                stamp,
                corruption,
            },
        ))
    }

    fn lock(&self) -> Result<Flock<File>> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if !dir.as_os_str().is_empty() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock_path = sibling(&self.path, ".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", lock_path.display()))
    }

    /// The file's contents; a corrupt file is moved aside and replaced, before the lock is
    /// released, by an empty file that trusts nothing on first use (so no other process can take
    /// the missing file for a fresh start).
    fn read_locked(&self) -> Result<(PinsFile, Option<Corruption>)> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((PinsFile::default(), None)),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let error = match serde_json::from_slice::<PinsFile>(&bytes) {
            Ok(f) if f.version == FORMAT_VERSION => return Ok((f, None)),
            Ok(f) if f.version > FORMAT_VERSION => bail!(
                "{} was written by a newer mcp-watchdog (format {}); not touching it",
                self.path.display(),
                f.version
            ),
            Ok(f) => format!("unknown format version {}", f.version),
            Err(e) => e.to_string(),
        };
        let kept_at = self.corrupt_copy_path();
        fs::rename(&self.path, &kept_at)
            .with_context(|| format!("cannot move corrupt {} aside", self.path.display()))?;
        let file = PinsFile {
            first_use_suspended: Some(Suspension {
                since: now_rfc3339(),
                reason: format!(
                    "the pins file was corrupt ({error}); it was kept at {}",
                    kept_at.display()
                ),
            }),
            ..PinsFile::default()
        };
        self.write_locked(&file)?;
        Ok((file, Some(Corruption { error, kept_at })))
    }

    fn corrupt_copy_path(&self) -> PathBuf {
        let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        let base = sibling(&self.path, &format!(".corrupt-{stamp}"));
        let mut candidate = base.clone();
        let mut n = 1;
        while candidate.exists() {
            candidate = sibling(&base, &format!("-{n}"));
            n += 1;
        }
        candidate
    }

    /// Temp file in the same directory, fsync, rename over the file, fsync the directory: a
    /// crash leaves the old file or the new one, never half of one.
    fn write_locked(&self, file: &PinsFile) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut text = serde_json::to_vec_pretty(file).expect("pins serialize");
        text.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".pins-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&text)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
        Ok(())
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::model::{ItemKind, ItemPin, Pinned, ServerPins};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn server(name: &str) -> ServerPins {
        ServerPins {
            name: name.into(),
            command: vec!["x".into()],
            server_info_name: name.into(),
            first_seen: now_rfc3339(),
            listed: Default::default(),
            items: BTreeMap::new(),
        }
    }

    fn add_tool(f: &mut PinsFile, server_id: &str, tool: &str) {
        let s = f
            .servers
            .entry(server_id.into())
            .or_insert_with(|| server(server_id));
        s.items.entry(ItemKind::Tool).or_default().insert(
            tool.into(),
            ItemPin {
                approved: Some(Pinned {
                    sha256: "0".repeat(64),
                    definition: json!({"name": tool}),
                    at: now_rfc3339(),
                }),
                pending: None,
            },
        );
    }

    #[test]
    fn writes_are_atomic_private_and_survive_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/mcp-watchdog/pins.json");
        let store = Store::new(path.clone());
        assert_eq!(store.load().unwrap().file, PinsFile::default());
        assert!(store.stamp().is_none(), "reading writes nothing");
        let (_, loaded) = store.update(|f| add_tool(f, "s", "t")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        // No temporary file is left behind.
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        let again = Store::new(path.clone()).load().unwrap();
        assert_eq!(again.file, loaded.file);
        assert!(again.file.servers["s"].item(ItemKind::Tool, "t").is_some());
        // Every write replaces the file: the stamp moves.
        let before = store.stamp();
        store.update(|f| add_tool(f, "s", "u")).unwrap();
        assert_ne!(store.stamp(), before);
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_reported_and_never_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        fs::write(&path, b"{\"version\":1,\"servers\":{\"s\":").unwrap();
        let store = Store::new(path.clone());
        let loaded = store.load().unwrap();
        let c = loaded.corruption.expect("reported");
        assert!(c.kept_at.to_string_lossy().contains("pins.json.corrupt-"));
        assert_eq!(
            fs::read(&c.kept_at).unwrap(),
            b"{\"version\":1,\"servers\":{\"s\":"
        );
        assert!(loaded.file.servers.is_empty());
        assert!(loaded.file.first_use_suspended.is_some());
        // The replacement is on disk already: another process cannot mistake it for a fresh start.
        let other = Store::new(path.clone()).load().unwrap();
        assert!(other.corruption.is_none());
        assert!(other.file.first_use_suspended.is_some());
        // A second corruption in the same second does not overwrite the first copy.
        fs::write(&path, b"garbage").unwrap();
        let c2 = store.load().unwrap().corruption.unwrap();
        assert_ne!(c2.kept_at, c.kept_at);
        assert_eq!(fs::read(&c2.kept_at).unwrap(), b"garbage");
        // A file from a newer watchdog is refused, not destroyed.
        fs::write(&path, br#"{"version":99,"servers":{}}"#).unwrap();
        assert!(store.load().unwrap_err().to_string().contains("newer"));
        assert_eq!(fs::read(&path).unwrap(), br#"{"version":99,"servers":{}}"#);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each thread its own store, so each opens (and locks) its own descriptor, as
                    // separate processes would.
                    let store = Store::new(path);
                    for i in 0..15 {
                        store
                            .update(|f| add_tool(f, &format!("s{t}"), &format!("t{i}")))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let f = Store::new(path).load().unwrap().file;
        for t in 0..4 {
            assert_eq!(f.servers[&format!("s{t}")].items[&ItemKind::Tool].len(), 15);
        }
    }
}
