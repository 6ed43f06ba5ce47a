//! Root-only tests of the eBPF backend against real process trees. Without root, BTF or the
//! object they say why on stderr and pass. Other tests of this binary spawn children too (every
//! child of the test process is a watched root here), so assertions filter by root pid.

use super::*;
use crate::sandbox::scope::Scope;
use crate::sandbox::{Confinement, SandboxPlan};
use crate::supervisor::spawn::{spawn_server, ServerCommand};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Starts the backend, or says why this test is skipped.
fn start(test: &str) -> Option<(EbpfBackend, mpsc::Receiver<FsEvent>)> {
    let (tx, rx) = mpsc::channel(65536);
    match EbpfBackend::start(tx) {
        Ok(backend) => Some((backend, rx)),
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
    }
}

/// A fresh directory with its real path (the kernel reports real paths).
fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("wd-ebpf-test-")
        .tempdir()
        .unwrap();
    let real = dir.path().canonicalize().unwrap();
    (dir, real)
}

fn shell(script: &str, env: &[(&str, &Path)]) -> ServerCommand {
    ServerCommand {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
            .collect(),
        cwd: None,
    }
}

/// Everything of tree `root` until the channel has been quiet for a while.
async fn collect(rx: &mut mpsc::Receiver<FsEvent>, root: u32) -> Vec<FsEvent> {
    let mut events = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        if event.root_pid == root {
            events.push(event);
        }
    }
    events
}

fn find<'a>(events: &'a [FsEvent], op: FsOp, path: &Path) -> &'a FsEvent {
    events
        .iter()
        .find(|e| e.op == op && e.path == path)
        .unwrap_or_else(|| panic!("no {op} {} in {events:#?}", path.display()))
}

/// A fresh home with an empty `.ssh`: (guard, home, home/.ssh).
fn home_with_ssh() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (guard, base) = temp_dir();
    let home = base.join("home");
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    (guard, home, ssh)
}

/// The tree `root` was SIGKILLed at its write of `.ssh/authorized_keys` (its next write, of
/// `after`, never happened) and the event says so.
async fn assert_killed_writing_keys(
    rx: &mut mpsc::Receiver<FsEvent>,
    root: u32,
    status: std::process::ExitStatus,
    home: &Path,
) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(!home.join("after").exists());
    let events = collect(rx, root).await;
    let e = find(&events, FsOp::OpenWrite, &home.join(".ssh/authorized_keys"));
    assert_eq!((e.pid, e.outcome), (root, Outcome::Killed));
}

/// Starts `cmd` as a spawned server, declares its scope, then lets it run (it waits for a line
/// on stdin first, so that the scope is in place before its first write).
async fn run_tree(
    backend: &mut EbpfBackend,
    cmd: &ServerCommand,
    confinement: &Confinement,
    scope: &WatchScope,
) -> (u32, std::process::ExitStatus) {
    let mut child = spawn_server(cmd, confinement).unwrap();
    let root = child.id().unwrap();
    backend.watch(root, scope).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("tree finished")
        .unwrap();
    (root, status)
}

#[tokio::test]
async fn ebpf_attributes_a_tree_and_filters_its_scope() {
    let Some((mut backend, mut rx)) = start("ebpf_attributes_a_tree_and_filters_its_scope") else {
        return;
    };
    let (_guard, base) = temp_dir();
    let scope_dir = base.join("scope");
    let out = base.join("out");
    let ssh = scope_dir.join("home/.ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::create_dir_all(scope_dir.join(".git")).unwrap();
    std::fs::create_dir_all(&out).unwrap();

    // Forked before the test process is a spawner: never followed.
    let mut unrelated = std::process::Command::new("sh")
        .args(["-c", "read go; echo u > \"$O/unrelated\""])
        .env("O", &out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    backend.add_spawner(std::process::id()).unwrap();

    let script = r#"read go
echo a > "$S/in.txt"
echo b > "$O/out.txt"
cd "$O" && sh -c 'echo $$ > gpid; echo c > rel.txt'
touch "$O/touched"
mkdir "$O/d"
mv "$O/out.txt" "$O/d/moved.txt"
ln -s "$O/d/moved.txt" "$O/lnk"
chmod 600 "$O/d/moved.txt"
rm "$O/lnk"
echo k > "$S/home/.ssh/key"
echo g > "$S/.git/config"
python3 -c 'import os, sys; d = os.open(sys.argv[1], os.O_RDONLY); os.close(os.open("viafd", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d))' "$O/d"
"#;
    let cmd = shell(script, &[("S", &scope_dir), ("O", &out)]);
    let scope = WatchScope {
        write: vec![scope_dir.clone()],
        sensitive: vec![ssh.clone()],
        strict: false,
    };
    let (root, status) = run_tree(&mut backend, &cmd, &Confinement::none(), &scope).await;
    assert!(status.success(), "{status}");
    use std::io::Write;
    unrelated.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(unrelated.wait().unwrap().success());

    let events = collect(&mut rx, root).await;
    let gpid: u32 = std::fs::read_to_string(out.join("gpid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let e = find(&events, FsOp::OpenWrite, &out.join("out.txt"));
    assert_eq!(
        (e.root_pid, e.pid, e.outcome),
        (root, root, Outcome::Allowed)
    );
    assert_eq!(e.comm, "sh");
    assert_eq!(e.backend, BackendKind::Ebpf);
    assert!(e.exe.is_some());
    // The grandchild's relative path, resolved from its cwd in the kernel.
    let e = find(&events, FsOp::OpenWrite, &out.join("rel.txt"));
    assert_eq!((e.root_pid, e.pid), (root, gpid));
    assert_ne!(gpid, root);
    assert_eq!(
        find(&events, FsOp::OpenWrite, &out.join("touched")).comm,
        "touch"
    );
    find(&events, FsOp::Mkdir, &out.join("d"));
    let e = find(&events, FsOp::Rename, &out.join("out.txt"));
    assert_eq!(e.path2.as_deref(), Some(out.join("d/moved.txt").as_path()));
    let e = find(&events, FsOp::Symlink, &out.join("lnk"));
    assert_eq!(e.path2.as_deref(), Some(out.join("d/moved.txt").as_path()));
    find(&events, FsOp::Chmod, &out.join("d/moved.txt"));
    find(&events, FsOp::Unlink, &out.join("lnk"));
    // Inside the scope, but sensitive or under .git: sent all the same.
    find(&events, FsOp::OpenWrite, &ssh.join("key"));
    find(&events, FsOp::OpenWrite, &scope_dir.join(".git/config"));
    let e = find(&events, FsOp::OpenWrite, &out.join("d/viafd"));
    assert_eq!(e.comm, "python3");

    // In scope: counted in the kernel, never sent.
    assert!(
        !events.iter().any(|e| e.path == scope_dir.join("in.txt")),
        "{events:#?}"
    );
    assert!(backend.counters().filtered_in_kernel >= 1);
    // (Outside `base` the python3 wrapper's shell fails to open /dev/tty: no terminal.)
    let failed: Vec<&FsEvent> = events
        .iter()
        .filter(|e| e.path.starts_with(&base) && e.outcome != Outcome::Allowed)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // The unrelated writer was not followed (under any root).
    assert!(out.join("unrelated").exists());
    assert!(backend.root_of(unrelated.id()).is_none());
    // The tree's root left the map when it exited.
    assert!(backend.root_of(root).is_none());
    backend.unwatch(root);
}

#[tokio::test]
async fn ebpf_reports_the_unrelated_process_nothing() {
    let Some((mut backend, mut rx)) = start("ebpf_reports_the_unrelated_process_nothing") else {
        return;
    };
    let (_guard, base) = temp_dir();
    // Not a spawner: a child of this process writes, and nothing must come out for its path.
    let status = std::process::Command::new("sh")
        .args(["-c", "echo u > \"$B/unrelated\""])
        .env("B", &base)
        .status()
        .unwrap();
    assert!(status.success());
    backend.add_spawner(1).unwrap(); // a spawner that is not us
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        if event.path.starts_with(&base) {
            seen.push(event);
        }
    }
    assert!(seen.is_empty(), "{seen:#?}");
}

#[tokio::test]
async fn ebpf_reports_the_errno_of_a_refused_write() {
    let Some((mut backend, mut rx)) = start("ebpf_reports_the_errno_of_a_refused_write") else {
        return;
    };
    let (_guard, base) = temp_dir();
    let scope_dir = base.join("scope");
    let out = base.join("out");
    std::fs::create_dir_all(&scope_dir).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let plan = SandboxPlan {
        enabled: true,
        scope: Scope {
            write: vec![scope_dir.clone()],
            read: None,
            notes: Vec::new(),
        },
    };
    let confinement = Confinement::prepare("ebpf-test", &plan).unwrap();
    if !matches!(
        confinement.landlock,
        crate::sandbox::LandlockState::Enforced { .. }
    ) {
        eprintln!("skipping ebpf_reports_the_errno_of_a_refused_write: no Landlock");
        return;
    }
    backend.add_spawner(std::process::id()).unwrap();
    let cmd = shell(
        r#"read go; echo a > "$S/ok"; echo b > "$O/refused"; mkdir "$O/refused-dir"; true"#,
        &[("S", &scope_dir), ("O", &out)],
    );
    let scope = WatchScope {
        write: vec![scope_dir.clone()],
        sensitive: Vec::new(),
        strict: false,
    };
    let (root, status) = run_tree(&mut backend, &cmd, &confinement, &scope).await;
    assert!(status.success(), "{status}");
    let events = collect(&mut rx, root).await;
    let e = find(&events, FsOp::OpenWrite, &out.join("refused"));
    assert_eq!(e.outcome, Outcome::Failed(libc::EACCES));
    let e = find(&events, FsOp::Mkdir, &out.join("refused-dir"));
    assert_eq!(e.outcome, Outcome::Failed(libc::EACCES));
    assert!(!events.iter().any(|e| e.path == scope_dir.join("ok")));
    assert!(scope_dir.join("ok").exists());
}

#[tokio::test]
async fn ebpf_strict_kill_stops_the_writer_of_a_sensitive_path() {
    let Some((mut backend, mut rx)) =
        start("ebpf_strict_kill_stops_the_writer_of_a_sensitive_path")
    else {
        return;
    };
    let (_guard, home, ssh) = home_with_ssh();
    backend.add_spawner(std::process::id()).unwrap();
    backend.set_strict_kill(true).unwrap();
    let cmd = shell(
        r#"read go; echo k > "$H/.ssh/authorized_keys"; echo after > "$H/after""#,
        &[("H", &home)],
    );
    let scope = WatchScope {
        write: vec![home.clone()],
        sensitive: vec![ssh.clone()],
        strict: false,
    };
    let (root, status) = run_tree(&mut backend, &cmd, &Confinement::none(), &scope).await;
    assert_killed_writing_keys(&mut rx, root, status, &home).await;
    assert!(backend.counters().killed >= 1);
}

/// Strict mode arms the kill at the fork: a child that touches the sensitive set before its
/// scope is declared (here: never declared) is killed all the same, and only that child.
#[tokio::test]
async fn ebpf_strict_from_fork_kills_before_the_tree_is_declared() {
    let Some((mut backend, mut rx)) =
        start("ebpf_strict_from_fork_kills_before_the_tree_is_declared")
    else {
        return;
    };
    let (_guard, home, ssh) = home_with_ssh();
    backend.add_spawner(std::process::id()).unwrap();
    backend
        .set_strict_from_fork(std::slice::from_ref(&ssh))
        .unwrap();
    let run = |script: &str| {
        let cmd = shell(script, &[("H", &home)]);
        let mut child = spawn_server(&cmd, &Confinement::none()).unwrap();
        let root = child.id().unwrap();
        async move {
            let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .expect("tree finished")
                .unwrap();
            (root, status)
        }
    };
    let (root, status) =
        run(r#"echo k > "$H/.ssh/authorized_keys"; echo after > "$H/after""#).await;
    assert_killed_writing_keys(&mut rx, root, status, &home).await;
    // A child that stays out of the sensitive set runs to the end, its writes reported.
    let (root, status) = run(r#"echo fine > "$H/notes""#).await;
    assert!(status.success(), "{status}");
    let events = collect(&mut rx, root).await;
    assert_eq!(
        find(&events, FsOp::OpenWrite, &home.join("notes")).outcome,
        Outcome::Allowed
    );
}

#[test]
fn ebpf_scope_encoding_marks_prefixes_and_overflow() {
    let scope = WatchScope {
        write: vec![PathBuf::from("/work/project"), PathBuf::from("relative")],
        sensitive: vec![PathBuf::from("/root/.ssh/")],
        strict: false,
    };
    let value = encode_scope(&scope);
    assert_eq!(value.n_write, 1);
    assert_eq!(
        &value.write[0].s[..value.write[0].len as usize],
        b"/work/project/"
    );
    assert_eq!(
        &value.sensitive[0].s[..value.sensitive[0].len as usize],
        b"/root/.ssh"
    );
    assert_eq!(value.flags & kernel::SCOPE_NO_FILTER, 0);
    let many = WatchScope {
        write: Vec::new(),
        sensitive: (0..kernel::MAX_SENSITIVE + 1)
            .map(|i| PathBuf::from(format!("/s/{i}")))
            .collect(),
        strict: false,
    };
    assert_ne!(encode_scope(&many).flags & kernel::SCOPE_NO_FILTER, 0);
}

/// BPF-LSM is probed by loading it: where the kernel refuses (EPERM on this kind of VM, no
/// trampolines) the backend says so and names the fallback that refuses strict opens.
#[tokio::test]
async fn ebpf_probes_bpf_lsm_and_names_the_fallback() {
    let Some((backend, _rx)) = start("ebpf_probes_bpf_lsm_and_names_the_fallback") else {
        return;
    };
    let described = backend.describe();
    match &backend.lsm {
        Ok(()) => assert!(described.contains("BPF-LSM loads here"), "{described}"),
        Err(why) => {
            assert!(!why.is_empty());
            assert!(
                described.contains(&format!("BPF-LSM unavailable: {why}"))
                    && described.contains("refused by fanotify"),
                "{described}"
            );
        }
    }
}
