//! Whether one attributed filesystem operation is expected: inside the server's write scope and
//! clear of the always-sensitive set, or not. Pure, so every backend is judged the same way.

use super::event::{FsEvent, FsOp, Outcome};
use super::WatchScope;
use crate::sandbox::sensitive::{real_path, GIT_DIR};
use std::path::{Component, Path, PathBuf};

/// Why an operation is worth an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// It touched (or tried to touch) a sensitive location: credentials, persistence hooks, client
    /// configs, a repository's `.git/config` or `.git/hooks/`.
    Sensitive { location: PathBuf },
    /// It touched something outside the server's write scope.
    OutOfScope,
}

/// The verdict on one event, with its paths normalized (`..` removed, symlinks of the existing part
/// resolved) so that the alert names what the kernel touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub breach: Option<Breach>,
    pub path: PathBuf,
    pub path2: Option<PathBuf>,
}

/// Judges `event` against `scope`. Both paths of a rename or link count: moving a file out of
/// scope, or a sensitive file into it, is a breach. A symlink's second path is its target text,
/// not something written, so only its first path counts.
pub fn judge(event: &FsEvent, scope: &WatchScope) -> Judgement {
    let path = resolved(&event.path);
    // A symlink's second path is the link's text, shown as written.
    let path2 = match event.op {
        FsOp::Symlink => event.path2.clone(),
        _ => event.path2.as_deref().map(resolved),
    };
    let mut written = vec![path.as_path()];
    if matches!(event.op, FsOp::Rename | FsOp::Link) {
        written.extend(path2.as_deref());
    }
    let breach = written
        .iter()
        .find_map(|p| sensitive_location(p, scope).map(|location| Breach::Sensitive { location }))
        .or_else(|| {
            written
                .iter()
                .any(|p| !scope.in_write_scope(p))
                .then_some(Breach::OutOfScope)
        });
    Judgement {
        breach,
        path,
        path2,
    }
}

/// `path` with `..` removed and the symbolic links of its directory resolved, but not of its last
/// component: unlinking, renaming or creating a symlink acts on the link itself, and the backends
/// already report the file an open through a link actually reached.
fn resolved(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => real_path(parent).join(name),
        _ => real_path(path),
    }
}

/// The sensitive entry `path` lies beneath (or is), including `<repo>/.git/config` and
/// `<repo>/.git/hooks/…` anywhere.
pub fn sensitive_location(path: &Path, scope: &WatchScope) -> Option<PathBuf> {
    if let Some(p) = scope.sensitive.iter().find(|p| path.starts_with(p)) {
        return Some(p.clone());
    }
    let mut prefix = PathBuf::new();
    let mut components = path.components().peekable();
    while let Some(c) = components.next() {
        prefix.push(c);
        if c == Component::Normal(GIT_DIR.as_ref()) {
            if let Some(Component::Normal(next)) = components.peek() {
                if *next == "config" || *next == "hooks" {
                    prefix.push(next);
                    return Some(prefix);
                }
            }
        }
    }
    None
}

/// True when the operation did not take effect because the kernel or the watchdog refused it.
pub fn prevented(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Failed(_) | Outcome::Denied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsmon::event::BackendKind;

    fn scope() -> WatchScope {
        WatchScope {
            write: vec![PathBuf::from("/srv/project"), PathBuf::from("/tmp/wd-tmp")],
            sensitive: vec![
                PathBuf::from("/home/u/.ssh"),
                PathBuf::from("/home/u/.bashrc"),
            ],
            strict: false,
        }
    }

    fn event(op: FsOp, path: &str, path2: Option<&str>) -> FsEvent {
        FsEvent {
            root_pid: 10,
            pid: 11,
            tid: 11,
            comm: "sh".into(),
            exe: None,
            op,
            path: path.into(),
            path2: path2.map(PathBuf::from),
            outcome: Outcome::Allowed,
            backend: BackendKind::Ebpf,
        }
    }

    #[test]
    fn writes_inside_the_scope_are_expected() {
        for (op, path) in [
            (FsOp::OpenWrite, "/srv/project/src/main.rs"),
            (FsOp::Mkdir, "/srv/project/new"),
            (FsOp::Unlink, "/tmp/wd-tmp/x"),
            (FsOp::Chmod, "/srv/project/run.sh"),
            (FsOp::OpenWrite, "/srv/project/.git/index"),
            (FsOp::OpenWrite, "/srv/project/.gitconfig-notes"),
        ] {
            assert_eq!(
                judge(&event(op, path, None), &scope()).breach,
                None,
                "{path}"
            );
        }
    }

    #[test]
    fn writes_outside_the_scope_are_breaches() {
        for path in [
            "/etc/passwd",
            "/srv/projectile/x",
            "/srv/project/../other/x",
        ] {
            let j = judge(&event(FsOp::OpenWrite, path, None), &scope());
            assert_eq!(j.breach, Some(Breach::OutOfScope), "{path}");
        }
    }

    #[test]
    fn dot_dot_is_resolved_before_judging() {
        let j = judge(
            &event(FsOp::OpenWrite, "/srv/project/a/../../project/b", None),
            &scope(),
        );
        assert_eq!(j.breach, None);
        assert_eq!(j.path, PathBuf::from("/srv/project/b"));
    }

    #[test]
    fn sensitive_locations_win_over_scope() {
        let mut s = scope();
        s.write.push(PathBuf::from("/home/u"));
        let j = judge(
            &event(FsOp::OpenWrite, "/home/u/.ssh/authorized_keys", None),
            &s,
        );
        assert_eq!(
            j.breach,
            Some(Breach::Sensitive {
                location: "/home/u/.ssh".into()
            })
        );
        let j = judge(
            &event(FsOp::OpenWrite, "/srv/project/.git/config", None),
            &s,
        );
        assert_eq!(
            j.breach,
            Some(Breach::Sensitive {
                location: "/srv/project/.git/config".into()
            })
        );
        let j = judge(
            &event(FsOp::Create, "/srv/project/.git/hooks/pre-commit", None),
            &s,
        );
        assert!(matches!(j.breach, Some(Breach::Sensitive { .. })));
    }

    #[test]
    fn a_symlink_is_judged_where_it_is_not_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = real_path(dir.path());
        let link = real_dir.join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        let scope = WatchScope {
            write: vec![real_dir.clone()],
            ..WatchScope::default()
        };
        let j = judge(
            &event(FsOp::Symlink, link.to_str().unwrap(), Some("/etc/hostname")),
            &scope,
        );
        assert_eq!((j.breach, j.path), (None, link.clone()));
        assert_eq!(j.path2, Some(PathBuf::from("/etc/hostname")));
        let j = judge(&event(FsOp::Unlink, link.to_str().unwrap(), None), &scope);
        assert_eq!(j.breach, None, "removing the link is in scope");
    }

    #[test]
    fn both_ends_of_a_rename_count_but_not_a_symlink_target() {
        let out = event(FsOp::Rename, "/srv/project/a", Some("/home/u/.bashrc"));
        assert!(matches!(
            judge(&out, &scope()).breach,
            Some(Breach::Sensitive { .. })
        ));
        let away = event(FsOp::Rename, "/srv/project/a", Some("/var/tmp/a"));
        assert_eq!(judge(&away, &scope()).breach, Some(Breach::OutOfScope));
        let link = event(FsOp::Symlink, "/srv/project/l", Some("/home/u/.ssh/id_rsa"));
        assert_eq!(judge(&link, &scope()).breach, None);
    }
}
