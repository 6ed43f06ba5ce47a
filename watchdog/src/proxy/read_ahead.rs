//! A thread per running server that reads its stdout, cuts it into frames and, for frames up to
//! [`PREPARED_MAX`], parses them and runs the shared literal scan ahead of the session.
//!
//! Under many requests in flight the session's thread was the bottleneck (one core busy, the
//! other with time to spare): reading, parsing and scanning the servers' output there took about
//! a third of its time. Larger frames are left to the session, which splits them with its side
//! thread.

use crate::alert::Direction;
use crate::inspect::{Pipeline, Prescan};
use crate::jsonrpc::frame::FrameReader;
use crate::jsonrpc::{Frame, Message, MessageError, Parsed};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames up to this size are prepared on the reading thread.
pub const PREPARED_MAX: usize = 32 * 1024;
/// Frames read ahead of the session; beyond this the thread stops reading (back-pressure).
const QUEUE: usize = 256;

/// A frame parsed and scanned on the reading thread.
pub struct Prepared {
    pub parsed: Result<Parsed, MessageError>,
    pub prescan: Prescan,
}

/// One read: a frame (with what was made of it ahead), or the read error that ended the stream.
pub type ReadItem = (io::Result<Frame>, Option<Prepared>);

/// Starts the reading thread on `stdout` (a pipe's read end). The receiver ends when the pipe
/// does, after the last frame, or after a read error.
pub fn spawn(
    stdout: OwnedFd,
    max_frame: usize,
    pipeline: Arc<Pipeline>,
    server: &str,
) -> io::Result<mpsc::Receiver<ReadItem>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    std::thread::Builder::new()
        .name(format!("mcp-watchdog-read {server}"))
        .spawn(move || {
            runtime.block_on(async move {
                let pipe = match tokio::net::unix::pipe::Receiver::from_owned_fd(stdout) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send((Err(e), None)).await;
                        return;
                    }
                };
                let mut frames = FrameReader::new(pipe, max_frame);
                loop {
                    let item = match frames.next_frame().await {
                        Ok(Some(frame)) => {
                            let prepared = prepare(&pipeline, &frame);
                            (Ok(frame), prepared)
                        }
                        Ok(None) => return,
                        Err(e) => (Err(e), None),
                    };
                    let failed = item.0.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
            })
        })?;
    Ok(rx)
}

fn prepare(pipeline: &Pipeline, frame: &Frame) -> Option<Prepared> {
    let Frame::Line(raw) = frame else { return None };
    if raw.len() > PREPARED_MAX {
        return None;
    }
    Some(Prepared {
        parsed: Message::parse_frame(raw.clone()),
        prescan: pipeline.prescan(Direction::ServerToClient, raw, 0..raw.len(), true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use std::io::Write;

    #[tokio::test]
    async fn frames_arrive_in_order_small_ones_prepared_then_the_stream_ends() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let pipeline = Arc::new(Pipeline::new(Policy::default(), Vec::new()));
        let mut rx = spawn(read_end, 1 << 20, pipeline, "t").unwrap();
        let big = format!(
            r#"{{"jsonrpc":"2.0","id":2,"result":{{"x":"{}"}}}}"#,
            "a".repeat(PREPARED_MAX)
        );
        let mut w = std::fs::File::from(write_end);
        w.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nnot json\n")
            .unwrap();
        w.write_all(big.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        drop(w);

        let (first, prepared) = rx.recv().await.unwrap();
        let Ok(Frame::Line(raw)) = first else {
            panic!("a line")
        };
        assert_eq!(&raw[..], br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let p = prepared.expect("a small frame is prepared");
        assert!(matches!(p.parsed, Ok(Parsed::Single(ref m)) if m.raw == raw));

        let (second, prepared) = rx.recv().await.unwrap();
        assert!(matches!(second, Ok(Frame::Line(ref r)) if &r[..] == b"not json"));
        assert!(prepared.is_some_and(|p| p.parsed.is_err()));

        let (third, prepared) = rx.recv().await.unwrap();
        assert!(matches!(third, Ok(Frame::Line(ref r)) if r.len() == big.len()));
        assert!(prepared.is_none(), "a large frame is left to the session");

        assert!(rx.recv().await.is_none(), "the stream ends with the pipe");
    }
}
