//! Newline-delimited framing with a size limit that never buffers an oversize frame whole.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Default largest frame: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// How much of an oversize frame is kept, to recover its id for an error reply.
pub const OVERSIZE_HEAD: usize = 64 * 1024;

const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One line without its `\n` (and without a `\r` before it); never empty or blank.
    Line(Bytes),
    /// A line longer than the limit, skipped while reading; `head` is its beginning.
    Oversize { len: u64, head: Bytes },
}

/// Reads frames from a byte stream.
pub struct FrameReader<R> {
    reader: R,
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    max: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, max: usize) -> Self {
        FrameReader {
            reader,
            buf: BytesMut::with_capacity(READ_CHUNK),
            scanned: 0,
            max,
            eof: false,
        }
    }

    /// The next frame, or `None` at end of input. A final line without `\n` still counts.
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + pos;
                let line = self.buf.split_to(end + 1).freeze();
                self.scanned = 0;
                if let Some(frame) = self.line_frame(line.slice(..end)) {
                    return Ok(Some(frame));
                }
                continue;
            }
            self.scanned = self.buf.len();
            // One extra byte: a line of exactly `max` bytes may still carry its `\r`.
            if self.buf.len() > self.max + 1 {
                return self.skip_oversize().await.map(Some);
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = self.buf.split().freeze();
                self.scanned = 0;
                let len = rest.len();
                if let Some(frame) = self.line_frame(rest.slice(..len)) {
                    return Ok(Some(frame));
                }
                continue;
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK.max(self.buf.len() / 2));
        }
        if self.reader.read_buf(&mut self.buf).await? == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Drops a `\r` before the newline and blank lines.
    fn line_frame(&self, mut line: Bytes) -> Option<Frame> {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        if line.len() > self.max {
            let head = line.slice(..OVERSIZE_HEAD.min(line.len()));
            return Some(Frame::Oversize {
                len: line.len() as u64,
                head,
            });
        }
        Some(Frame::Line(line))
    }

    /// Discards the rest of an oversize line, keeping only its head.
    async fn skip_oversize(&mut self) -> std::io::Result<Frame> {
        let head = Bytes::copy_from_slice(&self.buf[..OVERSIZE_HEAD.min(self.buf.len())]);
        let mut len = self.buf.len() as u64;
        self.buf.clear();
        self.scanned = 0;
        loop {
            if self.eof {
                return Ok(Frame::Oversize { len, head });
            }
            self.fill().await?;
            if let Some(pos) = memchr::memchr(b'\n', &self.buf) {
                len += pos as u64;
                let _ = self.buf.split_to(pos + 1);
                return Ok(Frame::Oversize { len, head });
            }
            len += self.buf.len() as u64;
            self.buf.clear();
        }
    }
}

/// The frames of `reader` as a stream that ends at end of input or after the first read error.
pub fn frame_stream<R: AsyncRead + Unpin + 'static>(
    reader: R,
    max: usize,
) -> impl futures_util::Stream<Item = std::io::Result<Frame>> {
    futures_util::stream::unfold(Some(FrameReader::new(reader, max)), |state| async move {
        let mut r = state?;
        match r.next_frame().await {
            Ok(Some(frame)) => Some((Ok(frame), Some(r))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = FrameReader::new(input, max);
        let mut out = vec![];
        while let Some(f) = r.next_frame().await.unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[tokio::test]
    async fn splits_lines_tolerating_crlf_blank_lines_and_a_final_line_without_newline() {
        let got = frames(b"{\"a\":1}\r\n\n  \r\n{\"b\":2}\n{\"c\":3}", 1024).await;
        assert_eq!(
            got,
            vec![line("{\"a\":1}"), line("{\"b\":2}"), line("{\"c\":3}")]
        );
    }

    #[tokio::test]
    async fn oversize_line_is_skipped_and_the_next_one_still_flows() {
        let mut input = b"{\"id\":7,".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10_000));
        input.extend(b"}\n{\"ok\":true}\n");
        let got = frames(&input, 100).await;
        assert_eq!(got.len(), 2);
        match &got[0] {
            Frame::Oversize { len, head } => {
                assert_eq!(*len, 10_009);
                assert!(head.starts_with(b"{\"id\":7,"));
            }
            other => panic!("expected oversize, got {other:?}"),
        }
        assert_eq!(got[1], line("{\"ok\":true}"));
    }

    #[tokio::test]
    async fn oversize_skipping_does_not_buffer_the_frame() {
        // A reader that yields 1 MiB chunks of a 64 MiB line; the buffer must stay small.
        let big = vec![b'y'; 64 << 20];
        let mut input = big.clone();
        input.push(b'\n');
        input.extend(b"{}\n");
        let mut r = FrameReader::new(&input[..], 1 << 20);
        let first = r.next_frame().await.unwrap().unwrap();
        assert!(matches!(first, Frame::Oversize { len, .. } if len == 64 << 20));
        assert!(
            r.buf.capacity() < 8 << 20,
            "buffer grew to {}",
            r.buf.capacity()
        );
        assert_eq!(r.next_frame().await.unwrap().unwrap(), line("{}"));
    }

    #[tokio::test]
    async fn a_frame_exactly_at_the_limit_passes() {
        let got = frames(b"12345\n123456\n", 5).await;
        assert_eq!(got[0], line("12345"));
        assert!(matches!(got[1], Frame::Oversize { len: 6, .. }));
    }
}
