//! The client's end: the watchdog's own stdin and stdout, and a writer task per output.
//!
//! Pipes and sockets are driven by the reactor directly (tokio's portable stdin goes through the
//! blocking pool on every read, which costs latency on every message). Regular files, /dev/null and
//! terminals fall back to tokio's portable handles: epoll cannot watch files, and making a shared
//! terminal non-blocking would break the shell that owns it.

use bytes::Bytes;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::sync::mpsc;

/// A descriptor the process keeps for its whole life (0 or 1), made non-blocking.
pub struct Borrowed(RawFd);

impl AsRawFd for Borrowed {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn pollable(fd: RawFd) -> bool {
    match nix::sys::stat::fstat(fd) {
        Ok(st) => {
            let kind = st.st_mode & libc::S_IFMT;
            kind == libc::S_IFIFO || kind == libc::S_IFSOCK
        }
        Err(_) => false,
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a pipe carrying messages is widened to. Its pages are allocated as data arrives, but its
/// capacity counts against the user's pipe quota (`pipe-user-pages-soft`, 64 MiB by default, past
/// which the user's new pipes get one page): room for a 64 KiB result, a few MiB for a gateway of
/// many servers.
const PIPE_BYTES: libc::c_int = 256 * 1024;

/// Widens a pipe so that a large message crosses it in one write: with the default 64 KiB, a
/// 64 KiB result fills it and both ends take turns sleeping until it is through. Best effort: a
/// user over the quota, or a descriptor that is not a pipe, keeps what it has.
pub fn widen_pipe(fd: RawFd) {
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
}

fn reactor_fd(fd: RawFd, interest: Interest) -> Option<AsyncFd<Borrowed>> {
    if !pollable(fd) || set_nonblocking(fd).is_err() {
        return None;
    }
    widen_pipe(fd);
    // SAFETY: descriptors 0 and 1 stay open, on the same file description, for the whole life
    // of the process.
    unsafe { AsyncFd::register_with_interest(Borrowed(fd), interest) }.ok()
}

pub enum Stdin {
    Reactor(AsyncFd<Borrowed>),
    Portable(tokio::io::Stdin),
}

pub fn stdin() -> Stdin {
    match reactor_fd(0, Interest::READABLE) {
        Some(fd) => Stdin::Reactor(fd),
        None => Stdin::Portable(tokio::io::stdin()),
    }
}

impl AsyncRead for Stdin {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stdin::Portable(s) => Pin::new(s).poll_read(cx, buf),
            Stdin::Reactor(fd) => loop {
                let mut guard = ready!(fd.poll_read_ready(cx))?;
                // Read into the spare capacity as it is: zeroing it first (`initialize_unfilled`)
                // cost a 64 KiB memset per read, 2% of the proxy's instructions under load.
                // SAFETY: the kernel only writes into the buffer, and we mark initialized only
                // the `n` bytes it reports written.
                let unfilled = unsafe { buf.unfilled_mut() };
                let res = guard.try_io(|inner| {
                    let n = unsafe {
                        libc::read(
                            inner.as_raw_fd(),
                            unfilled.as_mut_ptr().cast(),
                            unfilled.len(),
                        )
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                match res {
                    Ok(Ok(n)) => {
                        unsafe { buf.assume_init(n) };
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

pub enum Stdout {
    Reactor(AsyncFd<Borrowed>),
    Portable(tokio::io::Stdout),
}

pub fn stdout() -> Stdout {
    match reactor_fd(1, Interest::WRITABLE) {
        Some(fd) => Stdout::Reactor(fd),
        None => Stdout::Portable(tokio::io::stdout()),
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stdout::Portable(s) => Pin::new(s).poll_write(cx, data),
            Stdout::Reactor(fd) => loop {
                let mut guard = ready!(fd.poll_write_ready(cx))?;
                let res = guard.try_io(|inner| {
                    let n =
                        unsafe { libc::write(inner.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                match res {
                    Ok(r) => return Poll::Ready(r),
                    Err(_would_block) => continue,
                }
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stdout::Portable(s) => Pin::new(s).poll_flush(cx),
            Stdout::Reactor(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stdout::Portable(s) => Pin::new(s).poll_shutdown(cx),
            Stdout::Reactor(_) => Poll::Ready(Ok(())),
        }
    }
}

/// Messages waiting for a writer; back-pressure beyond this.
pub const OUTBOX_CAPACITY: usize = 1024;

/// Spawns a task that writes each message followed by `\n`, flushing whenever the queue runs dry.
/// The task ends when every sender is dropped (after writing what was queued) or on a write error.
pub fn spawn_line_writer<W: AsyncWrite + Unpin + 'static>(
    writer: W,
) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<io::Result<()>>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(OUTBOX_CAPACITY);
    let task = tokio::task::spawn_local(async move {
        let mut out = BufWriter::with_capacity(64 * 1024, writer);
        while let Some(first) = rx.recv().await {
            out.write_all(&first).await?;
            out.write_all(b"\n").await?;
            while let Ok(next) = rx.try_recv() {
                out.write_all(&next).await?;
                out.write_all(b"\n").await?;
            }
            out.flush().await?;
        }
        out.flush().await?;
        out.shutdown().await
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_pipe_is_widened_to_hold_a_large_message() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let before = unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_GETPIPE_SZ) };
        widen_pipe(write_end.as_raw_fd());
        let after = unsafe { libc::fcntl(read_end.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if after == before && unsafe { libc::geteuid() } != 0 {
            // An unprivileged user over the pipe-pages quota keeps the default, by design.
            eprintln!("skipped: this user may not widen pipes (pipe-user-pages-soft)");
            return;
        }
        assert_eq!((before, after), (64 * 1024, PIPE_BYTES));
    }
}
