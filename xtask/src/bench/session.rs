//! A benchmark client connected to one running chain: writes requests, reads and matches replies.
//!
//! The client must cost as little as possible: each request is one write, replies are read in
//! large chunks, and reply ids are found without parsing the whole line when the layout allows.

use super::lines::LineReader;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::fs::File;
use std::io::Write;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use super::chain::{Chain, Setup};

/// A generous bound on one reply: a hang must become an error, not a stuck run.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    reader: LineReader,
    next_id: u64,
    out: Vec<u8>,
}

/// What the client needs from one reply.
pub struct Reply {
    pub id: u64,
    /// Length of the whole reply line, to check that large results arrived whole.
    pub len: usize,
}

impl Session {
    pub fn spawn(setup: &Setup, chain: Chain) -> Result<Session> {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(setup.stderr_log(chain))
            .context("opening the stderr log")?;
        let mut child = setup
            .command(chain)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning the {} chain", chain.name()))?;
        let stdin = child.stdin.take();
        let reader = LineReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Session {
            child,
            stdin,
            reader,
            next_id: 1,
            out: Vec::with_capacity(512),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// initialize, notifications/initialized, then tools/list as a real client would.
    pub fn handshake(&mut self) -> Result<()> {
        self.initialize()?;
        self.notify("notifications/initialized", "{}")?;
        let id = self.request("tools/list", "{}")?;
        self.expect(id, REPLY_TIMEOUT).context("tools/list")?;
        Ok(())
    }

    pub fn initialize(&mut self) -> Result<()> {
        let params = r#"{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"xtask-bench","version":"0.1.0"}}"#;
        let id = self.request("initialize", params)?;
        self.expect(id, REPLY_TIMEOUT).context("initialize")?;
        Ok(())
    }

    /// Sends `tools/call echo {"size": size}` and returns its id.
    pub fn call(&mut self, size: u64) -> Result<u64> {
        let params = format!(r#"{{"name":"echo","arguments":{{"size":{size}}}}}"#);
        self.request("tools/call", &params)
    }

    /// One sequential round trip; checks the result is at least `size` bytes long.
    pub fn round_trip(&mut self, size: u64, timeout: Duration) -> Result<Duration> {
        let t0 = Instant::now();
        let id = self.call(size)?;
        let reply = self.expect(id, timeout)?;
        let took = t0.elapsed();
        check_len(&reply, size)?;
        Ok(took)
    }

    /// Prepares the client for a reply of about `len` bytes (see LineReader::reserve).
    pub fn reserve(&mut self, len: u64) {
        self.reader.reserve(len as usize);
    }

    /// Writes one request and returns its id.
    pub fn request(&mut self, method: &str, params: &str) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.out.clear();
        write!(
            self.out,
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        )?;
        self.write_out()?;
        Ok(id)
    }

    pub fn notify(&mut self, method: &str, params: &str) -> Result<()> {
        self.out.clear();
        write!(
            self.out,
            r#"{{"jsonrpc":"2.0","method":"{method}","params":{params}}}"#
        )?;
        self.write_out()
    }

    /// One write per message, so the chain sees each request arrive whole.
    fn write_out(&mut self) -> Result<()> {
        self.out.push(b'\n');
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin
            .write_all(&self.out)
            .context("writing to the chain's stdin")
    }

    /// The next reply to any of our requests; messages without an id are skipped.
    pub fn recv(&mut self, timeout: Duration) -> Result<Reply> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.reader.next_line(deadline)?;
            if let Some(id) = parse_reply(line)? {
                return Ok(Reply {
                    id,
                    len: line.len(),
                });
            }
        }
    }

    /// The reply to `id`; any other reply is an error since calls here are sequential.
    pub fn expect(&mut self, id: u64, timeout: Duration) -> Result<Reply> {
        let reply = self.recv(timeout)?;
        if reply.id != id {
            bail!("expected the reply to id {id}, got id {}", reply.id);
        }
        Ok(reply)
    }

    /// How the chain ended, if it did within a moment: explains a closed stdout.
    pub fn exit_note(&mut self) -> String {
        for _ in 0..50 {
            match self.child.try_wait() {
                Ok(Some(status)) => return format!(" [chain {status}]"),
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break,
            }
        }
        String::new()
    }

    /// Closes stdin so the chain shuts down on its own, then waits a little before killing it.
    pub fn close(mut self) -> Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(anyhow!("exited with {status} after stdin closed"))
                };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        bail!("still running 5 s after stdin closed; killed")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Never leave a chain behind: killing the middle process closes the echo server's stdin.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn check_len(reply: &Reply, size: u64) -> Result<()> {
    if (reply.len as u64) < size {
        bail!(
            "reply of {} bytes is shorter than the {size}-byte result asked for",
            reply.len
        );
    }
    Ok(())
}

/// The id of a successful reply, None for a message that is not a reply, Err for an error reply.
fn parse_reply(line: &[u8]) -> Result<Option<u64>> {
    // Fast path: the layout bench-echo writes, which a pass-through proxy keeps byte for byte.
    const HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
    if let Some(rest) = line.strip_prefix(HEAD) {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && rest[digits..].starts_with(br#","result":"#) {
            let id = std::str::from_utf8(&rest[..digits])?.parse()?;
            return Ok(Some(id));
        }
    }
    parse_reply_slow(line)
}

#[derive(Deserialize)]
struct AnyMessage<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

fn parse_reply_slow(line: &[u8]) -> Result<Option<u64>> {
    let msg: AnyMessage = serde_json::from_slice(line)
        .with_context(|| format!("the chain wrote invalid JSON: {}", excerpt(line)))?;
    let (Some(id), None) = (msg.id, msg.method) else {
        return Ok(None); // a notification or a server-to-client request
    };
    if let Some(error) = msg.error {
        bail!(
            "error reply to id {}: {}",
            id.get(),
            excerpt(error.get().as_bytes())
        );
    }
    let id = id
        .get()
        .parse()
        .map_err(|_| anyhow!("reply id {} is not one the client sent", id.get()))?;
    Ok(Some(id))
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    if bytes.len() > 200 {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}
