//! The last alerts of the audit log.

use crate::alert::Alert;
use crate::alerts_cmd::Tail;
use serde::Deserialize;
use std::collections::VecDeque;
use std::io;
use std::path::Path;

#[derive(Deserialize)]
struct Record {
    seq: u64,
    alert: Alert,
}

/// The end of an audit log.
#[derive(Debug, Default)]
pub struct LastAlerts {
    /// Sequence number and alert, oldest first.
    pub records: Vec<(u64, Alert)>,
    /// Lines that were not records.
    pub unreadable_lines: usize,
}

/// The last `n` records; `Ok(None)` when there is no log yet.
pub fn last_alerts(path: &Path, n: usize) -> io::Result<Option<LastAlerts>> {
    let mut tail = Tail::new(path);
    let lines = match tail.read_lines() {
        Ok(lines) => lines,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut last = VecDeque::with_capacity(n.min(1024));
    let mut bad = 0;
    for (_, line) in lines {
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) => {
                if n == 0 {
                    continue;
                }
                if last.len() == n {
                    last.pop_front();
                }
                last.push_back((r.seq, r.alert));
            }
            Err(_) => bad += 1,
        }
    }
    Ok(Some(LastAlerts {
        records: last.into(),
        unreadable_lines: bad,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{ActionTaken, AuditLog, Severity};

    #[test]
    fn keeps_the_last_n_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        assert!(last_alerts(&path, 3).unwrap().is_none());
        let mut log = AuditLog::open(&path).unwrap();
        for i in 0..5 {
            log.append(&Alert::new(
                "R",
                format!("c{i}"),
                Severity::Low,
                ActionTaken::Alerted,
                "d",
            ))
            .unwrap();
        }
        drop(log);
        let last = last_alerts(&path, 3).unwrap().unwrap();
        let classes: Vec<_> = last.records.iter().map(|(_, a)| a.class.as_str()).collect();
        assert_eq!(classes, ["c2", "c3", "c4"]);
        assert_eq!(last.unreadable_lines, 0);
    }
}
