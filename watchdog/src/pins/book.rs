//! The running proxy's view of the pins: the file's contents in memory, who each upstream is, and
//! the listings in progress. Shared (read-mostly) by the inline inspector.
//!
//! Calls are judged from memory; the file is re-read when it changed on disk, which is checked at
//! most once per second on the call path (one `stat`) and on every listing (listings are rare), so
//! that `mcp-watchdog pins approve` in another terminal takes effect while the proxy runs.
//! A listing that changes the pins writes the file before the client sees the result, so that
//! `pins diff` works as soon as the client has seen a tool withheld.

use super::identity::ServerIdentity;
use super::judge::{self, PageVerdict, Refusal};
use super::model::{ItemKind, PinsFile, Suspension};
use super::store::{now_rfc3339, Corruption, Stamp, Store};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How stale the in-memory pins may be on the call path.
const RECHECK: Duration = Duration::from_secs(1);

/// A problem with the pins file, to be reported as an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Corrupt(Corruption),
    /// The file could not be read or written; enforcement continues from memory.
    Unavailable(String),
}

pub struct PinBook {
    /// `None`: pins live in memory only (no state directory could be found).
    store: Option<Store>,
    /// Configured server name → program and arguments.
    commands: HashMap<String, Vec<String>>,
    state: Mutex<BookState>,
}

struct BookState {
    file: PinsFile,
    stamp: Option<Stamp>,
    checked: Option<Instant>,
    /// Looked up on every call a server is asked for (foldhash: cheaper than SipHash).
    identities: foldhash::HashMap<String, ServerIdentity>,
    /// Keys offered by the earlier pages of the listing in progress, per server and kind.
    listings: HashMap<(String, ItemKind), BTreeSet<String>>,
    notices: Vec<Notice>,
}

impl PinBook {
    /// Loads the pins; a problem is reported on stderr at once and as an alert at the first
    /// inspection (the alert sink may not run yet).
    pub fn open(store: Option<Store>, commands: HashMap<String, Vec<String>>) -> PinBook {
        let mut state = BookState {
            file: PinsFile::default(),
            stamp: None,
            checked: Some(Instant::now()),
            identities: foldhash::HashMap::default(),
            listings: HashMap::new(),
            notices: Vec::new(),
        };
        if let Some(store) = &store {
            load_into(store, &mut state);
        }
        PinBook {
            store,
            commands,
            state: Mutex::new(state),
        }
    }

    /// The book for a proxy: `settings.pins_file` or the default file; in memory only (with a
    /// warning) when there is no state directory to keep it in.
    pub fn for_settings(settings: &crate::config::Settings) -> PinBook {
        let path = settings.pins_file.clone().or_else(Store::default_path);
        if path.is_none() {
            eprintln!("mcp-watchdog: WARNING: no $XDG_STATE_HOME or $HOME: tool pins are kept in memory only and do not survive a restart");
        }
        let commands = settings
            .servers
            .iter()
            .map(|s| {
                let mut line = vec![s.command.program.clone()];
                line.extend(s.command.args.iter().cloned());
                (s.name.clone(), line)
            })
            .collect();
        PinBook::open(path.map(Store::new), commands)
    }

    pub fn path(&self) -> Option<&Path> {
        self.store.as_ref().map(Store::path)
    }

    fn lock(&self) -> MutexGuard<'_, BookState> {
        // A panic while judging is caught by the pipeline (the message is stopped); the state it
        // left is still a valid file, so carry on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records who the upstream `server` is, from its initialize result.
    pub fn identify(&self, server: &str, server_info_name: &str) -> ServerIdentity {
        let command = self.commands.get(server).cloned().unwrap_or_default();
        let who = ServerIdentity::new(server, command, server_info_name);
        let mut st = self.lock();
        if st.identities.get(server) != Some(&who) {
            st.listings.retain(|(s, _), _| s != server);
            st.identities.insert(server.to_owned(), who.clone());
        }
        who
    }

    /// A listing of `kind` starts over (a request without a cursor).
    pub fn listing_started(&self, server: &str, kind: ItemKind) {
        self.lock().listings.remove(&(server.to_owned(), kind));
    }

    /// Judges one page of a listing; `None` while the server has not been identified.
    pub fn judge_page(
        &self,
        server: &str,
        kind: ItemKind,
        page: &[(String, Value)],
        complete: bool,
    ) -> Option<(ServerIdentity, PageVerdict)> {
        let mut st = self.lock();
        self.refresh(&mut st, true);
        let who = st.identities.get(server)?.clone();
        let slot = (server.to_owned(), kind);
        let seen = st.listings.get(&slot).cloned().unwrap_or_default();
        let now = now_rfc3339();
        let judge =
            |f: &mut PinsFile| judge::judge_page(f, &who, kind, page, &seen, complete, &now);
        let mut trial = st.file.clone();
        let mut verdict = judge(&mut trial);
        if trial != st.file {
            match &self.store {
                None => st.file = trial,
                Some(store) => match store.update(judge) {
                    Ok((v, loaded)) => {
                        verdict = v;
                        if let Some(c) = loaded.corruption {
                            st.notices.push(Notice::Corrupt(c));
                        }
                        st.file = loaded.file;
                        st.stamp = loaded.stamp;
                    }
                    Err(e) => {
                        // Enforce from memory all the same; the next change tries the file again.
                        st.notices.push(Notice::Unavailable(format!("{e:#}")));
                        st.file = trial;
                    }
                },
            }
        }
        if complete {
            st.listings.remove(&slot);
        } else {
            st.listings
                .entry(slot)
                .or_default()
                .extend(page.iter().map(|(k, _)| k.clone()));
        }
        Some((who, verdict))
    }

    /// Whether the item may be used now; `None` also while the server has not been identified.
    pub fn judge_use(
        &self,
        server: &str,
        kind: ItemKind,
        key: &str,
    ) -> Option<(ServerIdentity, Refusal)> {
        let mut st = self.lock();
        self.refresh(&mut st, false);
        let who = st.identities.get(server)?;
        let refusal = judge::judge_use(&st.file, who, kind, key)?;
        Some((who.clone(), refusal))
    }

    /// Problems with the file since the last call.
    pub fn take_notices(&self) -> Vec<Notice> {
        std::mem::take(&mut self.lock().notices)
    }

    /// Re-reads the file if it changed on disk; `force` skips the once-per-second limit.
    fn refresh(&self, st: &mut BookState, force: bool) {
        let Some(store) = &self.store else { return };
        let now = Instant::now();
        if !force && st.checked.is_some_and(|c| now.duration_since(c) < RECHECK) {
            return;
        }
        st.checked = Some(now);
        if store.stamp() != st.stamp {
            load_into(store, st);
        }
    }
}

fn load_into(store: &Store, st: &mut BookState) {
    match store.load() {
        Ok(loaded) => {
            if let Some(c) = loaded.corruption {
                eprintln!(
                    "mcp-watchdog: the pins file {} was corrupt ({}); kept it at {}. Nothing is trusted until approved: see `mcp-watchdog pins list`",
                    store.path().display(),
                    c.error,
                    c.kept_at.display()
                );
                st.notices.push(Notice::Corrupt(c));
            }
            st.file = loaded.file;
            st.stamp = loaded.stamp;
        }
        Err(e) => {
            let e = format!("{e:#}");
            eprintln!("mcp-watchdog: cannot use the pins file: {e}; nothing new is trusted");
            // Fail closed: what was approved stays approved, nothing new is trusted.
            st.file.first_use_suspended = Some(Suspension {
                since: now_rfc3339(),
                reason: e.clone(),
            });
            st.stamp = store.stamp();
            st.notices.push(Notice::Unavailable(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(desc: &str) -> Vec<(String, Value)> {
        vec![("t".into(), json!({"name": "t", "description": desc}))]
    }

    fn book(path: &Path) -> PinBook {
        let mut commands = HashMap::new();
        commands.insert("fs".to_string(), vec!["fake".to_string()]);
        PinBook::open(Some(Store::new(path.to_owned())), commands)
    }

    #[test]
    fn nothing_is_judged_before_the_server_is_identified() {
        let dir = tempfile::tempdir().unwrap();
        let b = book(&dir.path().join("pins.json"));
        assert!(b
            .judge_page("fs", ItemKind::Tool, &page("x"), true)
            .is_none());
        assert!(b.judge_use("fs", ItemKind::Tool, "t").is_none());
    }

    #[test]
    fn changes_are_on_disk_before_the_verdict_and_approvals_elsewhere_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        let b = book(&path);
        b.identify("fs", "fake");
        let (_, v) = b
            .judge_page("fs", ItemKind::Tool, &page("Reads."), true)
            .unwrap();
        assert!(v.withheld.is_empty());
        let (who, v) = b
            .judge_page("fs", ItemKind::Tool, &page("Reads. Obey."), true)
            .unwrap();
        assert_eq!(v.withheld, vec![0]);
        // Another process sees the pending change right away.
        let on_disk = Store::new(path.clone()).load().unwrap().file;
        assert!(on_disk.servers[&who.id]
            .item(ItemKind::Tool, "t")
            .unwrap()
            .pending
            .is_some());
        assert_eq!(
            b.judge_use("fs", ItemKind::Tool, "t").map(|r| r.1),
            Some(Refusal::Changed)
        );
        // Approved from another process: a listing notices at once, a call within a second.
        Store::new(path.clone())
            .update(|f| {
                let pin = f
                    .servers
                    .get_mut(&who.id)
                    .unwrap()
                    .items
                    .get_mut(&ItemKind::Tool)
                    .unwrap()
                    .get_mut("t")
                    .unwrap();
                pin.approve();
            })
            .unwrap();
        std::thread::sleep(RECHECK + Duration::from_millis(50));
        assert_eq!(b.judge_use("fs", ItemKind::Tool, "t"), None);
        let (_, v) = b
            .judge_page("fs", ItemKind::Tool, &page("Reads. Obey."), true)
            .unwrap();
        assert!(v.withheld.is_empty());
    }

    #[test]
    fn a_corrupt_file_is_noticed_once_and_distrusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        std::fs::write(&path, "not json").unwrap();
        let b = book(&path);
        let notices = b.take_notices();
        assert!(
            matches!(notices.as_slice(), [Notice::Corrupt(_)]),
            "{notices:?}"
        );
        assert!(b.take_notices().is_empty());
        b.identify("fs", "fake");
        let (_, v) = b
            .judge_page("fs", ItemKind::Tool, &page("Reads."), true)
            .unwrap();
        assert_eq!(
            v.withheld,
            vec![0],
            "first use after corruption is not trusted"
        );
    }
}
