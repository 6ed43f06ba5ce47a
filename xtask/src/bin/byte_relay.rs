//! `byte-relay -- CMD ARGS`: spawns CMD and copies bytes both ways without looking at them.
//!
//! This is the floor for any stdio proxy: two threads, large buffers, no parsing.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, ExitCode, Stdio};
use std::thread;

const BUF: usize = 256 * 1024;
/// What mcp-watchdog widens its pipes to.
const PIPE_BYTES: libc::c_int = 256 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => &args[..],
    };
    let Some((program, rest)) = cmd.split_first() else {
        eprintln!("usage: byte-relay -- CMD [ARGS...]");
        return ExitCode::from(2);
    };
    match relay(program, rest) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("byte-relay: {e}");
            ExitCode::from(1)
        }
    }
}

fn relay(program: &str, args: &[String]) -> io::Result<ExitCode> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut child_in = child.stdin.take().expect("piped stdin");
    let mut child_out = child.stdout.take().expect("piped stdout");
    // Plain Files on duplicated descriptors: std's Stdin/Stdout add a buffer and line logic.
    let mut stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut stdout = File::from(io::stdout().as_fd().try_clone_to_owned()?);

    // The same pipe width as the watchdog's, so that the two differ only in what they do.
    for fd in [
        child_in.as_raw_fd(),
        child_out.as_raw_fd(),
        stdin.as_raw_fd(),
        stdout.as_raw_fd(),
    ] {
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
    }

    // Dropping child_in when stdin ends closes the child's stdin, which is how it learns to stop.
    thread::spawn(move || copy(&mut stdin, &mut child_in));
    copy(&mut child_out, &mut stdout)?;
    let status = child.wait()?;
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}

/// Copies without flushing logic: both ends are unbuffered descriptors.
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}
