//! Starting an upstream server process so that it can always be found and killed again.
//!
//! Every server leads its own process group, receives SIGKILL when the watchdog dies, and its orphaned
//! descendants reparent to the watchdog (see [`become_subreaper`]) instead of escaping to init.
//!
//! PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. Servers must
//! therefore be spawned from a thread that lives as long as the server should: the main thread of the
//! actix System (or a long-lived arbiter), never from `spawn_blocking` or any pooled thread that may
//! be retired while the server runs.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;

use crate::sandbox::Confinement;
use tokio::process::{Child, Command};

/// How to start one upstream server, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommand {
    pub program: String,
    pub args: Vec<String>,
    /// Added to the watchdog's own environment, which the server inherits.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// Spawns the server with piped stdio in its own process group, confined as `confinement`
/// prepared it (which must outlive this call: the child restricts itself with its ruleset fd).
///
/// The child is not killed on drop: the caller terminates the whole tree explicitly
/// (`terminate::terminate_tree`) and then awaits `child.wait()`.
pub fn spawn_server(cmd: &ServerCommand, confinement: &Confinement) -> io::Result<Child> {
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(key, value)| (key, value)))
        // After the configured env: the private TMPDIR is the only temp dir the server can write.
        .envs(confinement.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own group: one killpg reaches everything that did not leave it.
        .process_group(0)
        .kill_on_drop(false);
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    let watchdog = std::process::id() as libc::pid_t;
    let sandbox = confinement.child_step();
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (prctl, getppid, _exit, landlock_restrict_self); it allocates nothing and takes
    // no locks.
    unsafe {
        command.pre_exec(move || {
            die_with_parent(watchdog)?;
            // Last before exec, so that the rules cover the server from its first instruction.
            sandbox.apply()
        });
    }
    command.spawn().map_err(|error| spawn_error(cmd, error))
}

/// Runs in the child between fork and exec: arrange SIGKILL on the watchdog's death, then close the
/// race where the watchdog died before the prctl took effect (the signal would never come).
fn die_with_parent(watchdog: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain system calls with integer arguments.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) == -1
        {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != watchdog {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Names the server in the error, and says "No such file or directory" without "(os error 2)".
fn spawn_error(cmd: &ServerCommand, error: io::Error) -> io::Error {
    let reason = match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => error.to_string(),
    };
    let message = match &cmd.cwd {
        // ENOENT from a missing working directory would otherwise blame the program.
        Some(dir) if !dir.is_dir() => format!(
            "cannot start server `{}` in `{}`: {reason}",
            cmd.program,
            dir.display()
        ),
        _ => format!("cannot start server `{}`: {reason}", cmd.program),
    };
    io::Error::new(error.kind(), message)
}

/// Makes the watchdog the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER).
///
/// A server that double-forks, or a chain like `npx` → `sh -c` → `node` whose middle exits, would
/// otherwise reparent to init and leave the watchdog's sight. Process-wide and idempotent.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{getpgid, Pid};
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;

    fn command(program: &str, args: &[&str]) -> ServerCommand {
        ServerCommand {
            program: program.to_string(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Dead or a zombie: either way it no longer runs.
    fn has_ended(pid: u32) -> bool {
        match procfs::process::Process::new(pid as i32).and_then(|p| p.stat()) {
            Ok(stat) => stat.state == 'Z' || stat.state == 'X',
            Err(_) => true,
        }
    }

    #[tokio::test]
    async fn missing_program_is_named_in_the_error() {
        let error = spawn_server(
            &command("/nonexistent/mcp-server", &[]),
            &Confinement::none(),
        )
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            error.to_string(),
            "cannot start server `/nonexistent/mcp-server`: No such file or directory"
        );
        // Searched for in PATH, the reason depends on PATH (an unreadable entry gives EACCES).
        let error =
            spawn_server(&command("no-such-mcp-server", &[]), &Confinement::none()).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("cannot start server `no-such-mcp-server`: "));
    }

    #[tokio::test]
    async fn a_missing_working_directory_is_named_in_the_error() {
        let mut cmd = command("sh", &["-c", "true"]);
        cmd.cwd = Some(PathBuf::from("/nonexistent"));
        let error = spawn_server(&cmd, &Confinement::none()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot start server `sh` in `/nonexistent`: No such file or directory"
        );
    }

    #[tokio::test]
    async fn server_leads_its_own_process_group() {
        let mut child = spawn_server(&command("sleep", &["300"]), &Confinement::none()).unwrap();
        let pid = child.id().unwrap() as i32;
        let pgid = getpgid(Some(Pid::from_raw(pid)));
        child.kill().await.unwrap();
        assert_eq!(pgid.unwrap(), Pid::from_raw(pid));
        assert_ne!(pgid.unwrap(), getpgid(None).unwrap());
    }

    #[tokio::test]
    async fn server_gets_its_args_env_and_cwd() {
        let mut cmd = command(
            "sh",
            &["-c", r#"echo "$1 $GREETING $(pwd)""#, "sh", "first"],
        );
        cmd.env.push(("GREETING".into(), "hello".into()));
        cmd.cwd = Some(PathBuf::from("/"));
        let mut child = spawn_server(&cmd, &Confinement::none()).unwrap();
        let mut output = String::new();
        let mut stdout = child.stdout.take().unwrap();
        stdout.read_to_string(&mut output).await.unwrap();
        assert!(child.wait().await.unwrap().success());
        assert_eq!(output, "first hello /\n");
    }

    /// PR_SET_PDEATHSIG is not readable from /proc, so observe it: the server dies with the thread
    /// that spawned it.
    #[test]
    fn server_dies_with_the_spawning_thread() {
        let pid = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _guard = runtime.enter();
            let child = spawn_server(&command("sleep", &["300"]), &Confinement::none()).unwrap();
            child.id().unwrap()
        })
        .join()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !has_ended(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let ended = has_ended(pid);
        if !ended {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
        }
        // Tokio dropped the handle; reap here so the test leaves no zombie behind.
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
        assert!(ended, "server {pid} outlived the thread that spawned it");
    }
}
