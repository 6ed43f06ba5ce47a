//! Newline-delimited reading from a child's stdout with a deadline.
//!
//! A plain BufReader would block forever if the proxy under test hangs; polling before each
//! read turns a hang into an error that the report can show.

use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ChildStdout;
use std::time::Instant;

const INITIAL: usize = 1 << 20;
/// Never read into less free space than this: keeps reads large and syscalls few.
const MIN_READ: usize = 1 << 16;

pub struct LineReader {
    src: ChildStdout,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes in `start..scanned` are known to hold no newline, so long lines are scanned once.
    scanned: usize,
}

impl LineReader {
    pub fn new(src: ChildStdout) -> Self {
        LineReader {
            src,
            buf: vec![0; INITIAL],
            start: 0,
            end: 0,
            scanned: 0,
        }
    }

    /// Grows the buffer ahead of a line of about `len` bytes so that a timed read does not pay
    /// for the client's own reallocation and page faults.
    pub fn reserve(&mut self, len: usize) {
        let want = len + 2 * MIN_READ;
        if self.buf.len() < want {
            // resize writes zeros, which touches every page now rather than mid-measurement.
            self.buf.resize(want, 0);
        }
    }

    /// The next line without its newline; fails on EOF or when `deadline` passes first.
    pub fn next_line(&mut self, deadline: Instant) -> Result<&[u8]> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let line = self.start..self.scanned + pos;
                self.start = line.end + 1;
                self.scanned = self.start;
                return Ok(&self.buf[line]);
            }
            self.scanned = self.end;
            self.make_room();
            wait_readable(self.src.as_raw_fd(), deadline)?;
            let n = match self.src.read(&mut self.buf[self.end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the chain's stdout"),
            };
            if n == 0 {
                bail!("the chain closed its stdout");
            }
            self.end += n;
        }
    }

    /// Moves the partial line to the front, growing the buffer only for lines that need it.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
        }
        if self.buf.len() - self.end >= MIN_READ {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < MIN_READ {
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
    }
}

fn wait_readable(fd: RawFd, deadline: Instant) -> Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out waiting for a reply");
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd on the stack, count 1; fd stays open for the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            // POLLHUP/POLLERR also end here: the read that follows reports EOF or the error.
            return Ok(());
        }
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != ErrorKind::Interrupted {
                return Err(err).context("poll on the chain's stdout");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// A shell script's stdout; the child is reaped when the test ends.
    struct Peer(std::process::Child, LineReader);

    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn reader(script: &str) -> Peer {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let out = child.stdout.take().unwrap();
        Peer(child, LineReader::new(out))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn splits_lines_across_reads_and_reports_eof() {
        let Peer(_, ref mut r) = reader("printf 'one\\ntw'; sleep 0.1; printf 'o\\n'");
        assert_eq!(r.next_line(soon()).unwrap(), b"one");
        assert_eq!(r.next_line(soon()).unwrap(), b"two");
        assert!(r.next_line(soon()).is_err());
    }

    #[test]
    fn long_line_grows_the_buffer() {
        let Peer(_, ref mut r) = reader("head -c 3000000 /dev/zero | tr '\\0' x; echo");
        assert_eq!(r.next_line(soon()).unwrap().len(), 3_000_000);
    }

    #[test]
    fn a_silent_peer_times_out() {
        let Peer(_, ref mut r) = reader("sleep 3");
        let t0 = Instant::now();
        let err = r.next_line(t0 + Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
