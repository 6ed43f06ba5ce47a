//! Whether a caller may have the daemon watch (and, in strict mode, kill) a process: it must run
//! as the caller's user and descend from the caller. Read from /proc, never from the request.

use std::fs;

/// Ancestors walked at most: a server tree is shallow, a loop must not hang the daemon.
const MAX_DEPTH: usize = 64;

/// Why `pid` is not the caller's to register, or `Ok`.
pub fn check_descendant(pid: u32, caller_pid: u32, caller_uid: u32) -> Result<(), String> {
    if pid == caller_pid {
        return Err(format!(
            "pid {pid} is the caller itself, not one of its servers"
        ));
    }
    let uid = real_uid(pid).ok_or_else(|| format!("pid {pid} does not exist"))?;
    if uid != caller_uid {
        return Err(format!(
            "pid {pid} runs as uid {uid}, the caller as uid {caller_uid}"
        ));
    }
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        let parent = parent_pid(current).ok_or_else(|| format!("pid {current} vanished"))?;
        if parent == caller_pid {
            return Ok(());
        }
        if parent <= 1 {
            break;
        }
        current = parent;
    }
    Err(format!(
        "pid {pid} does not descend from the caller (pid {caller_pid})"
    ))
}

fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|rest| rest.trim().to_owned())
}

fn real_uid(pid: u32) -> Option<u32> {
    status_field(pid, "Uid:")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn parent_pid(pid: u32) -> Option<u32> {
    status_field(pid, "PPid:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    fn me() -> (u32, u32) {
        (std::process::id(), nix::unistd::getuid().as_raw())
    }

    #[test]
    fn a_child_of_the_caller_is_accepted_and_the_caller_and_strangers_are_not() {
        let (pid, uid) = me();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        assert_eq!(check_descendant(child.id(), pid, uid), Ok(()));
        let err = check_descendant(pid, pid, uid).unwrap_err();
        assert!(err.contains("caller itself"), "{err}");
        let err = check_descendant(1, pid, uid).unwrap_err();
        assert!(err.contains("uid") || err.contains("descend"), "{err}");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_grandchild_is_accepted() {
        let (pid, uid) = me();
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let grandchild: u32 = line.trim().parse().unwrap();
        assert_eq!(check_descendant(grandchild, pid, uid), Ok(()));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(grandchild as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_child_running_as_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to start a child as another user");
            return;
        }
        let (pid, uid) = me();
        let mut child = Command::new("sleep")
            .arg("30")
            .uid(65534)
            .gid(65534)
            .spawn()
            .unwrap();
        let err = check_descendant(child.id(), pid, uid).unwrap_err();
        assert!(err.contains("uid 65534"), "{err}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
