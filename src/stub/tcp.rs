//! The TCP listener (RFC 7766): two-byte length framing, several queries per connection,
//! pipelined queries resolved concurrently and answered as they complete (possibly out of
//! order, each with its own ID), an idle timeout, a cap on connections and on queries in
//! flight per connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::error::Protocol;
use super::handler::QueryHandler;
use super::shutdown::{stopped, TaskGuard};

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_in_flight: usize,
    /// How long one response may take to be written before the connection is given up.
    pub(crate) write_timeout: Duration,
}

/// Accepts connections on `listener` until shutdown is signalled. A connection accepted
/// while `connections` has no permit left is closed at once.
pub(crate) async fn serve(
    listener: TcpListener,
    handler: Arc<QueryHandler>,
    connections: Arc<Semaphore>,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            handler.metrics().tcp_refused();
            tracing::debug!(%peer, "TCP connection cap reached; closing");
            drop(stream);
            continue;
        };
        let conn = Connection {
            handler: Arc::clone(&handler),
            peer: peer.ip(),
            limits,
            shutdown: shutdown.clone(),
            _permit: permit,
            _guard: guard.clone(),
        };
        tokio::spawn(conn.run(stream));
    }
}

struct Connection {
    handler: Arc<QueryHandler>,
    /// The client's address (for `allow`).
    peer: std::net::IpAddr,
    limits: ConnLimits,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    _guard: TaskGuard,
}

/// How the read loop of a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Client closed its side, idle timeout, or shutdown: answer what was accepted, then close.
    Drain,
    /// The connection failed: close without answering.
    Abort,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let mut buf = BytesMut::with_capacity(4096);
        let mut in_flight: JoinSet<Option<Vec<u8>>> = JoinSet::new();
        let mut idle_deadline = Instant::now() + self.limits.idle_timeout;
        let mut eof = false;

        let end = loop {
            while in_flight.len() < self.limits.max_in_flight {
                let Some(frame) = take_frame(&mut buf) else {
                    break;
                };
                // Only a complete query (or a response written) restarts the idle clock:
                // bytes trickled one at a time must not hold a connection slot forever.
                idle_deadline = Instant::now() + self.limits.idle_timeout;
                let handler = Arc::clone(&self.handler);
                let peer = self.peer;
                in_flight
                    .spawn(async move { handler.handle_from(&frame, Protocol::Tcp, peer).await });
            }
            if eof && in_flight.is_empty() {
                break End::Drain;
            }
            let can_read = !eof && in_flight.len() < self.limits.max_in_flight;
            if can_read {
                buf.reserve(4096);
            }
            tokio::select! {
                biased;
                _ = stopped(&mut self.shutdown) => break End::Drain,
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if !self.write(&mut writer, done).await {
                        break End::Abort;
                    }
                    idle_deadline = Instant::now() + self.limits.idle_timeout;
                }
                r = reader.read_buf(&mut buf), if can_read => match r {
                    Ok(0) => eof = true,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "TCP read failed");
                        break End::Abort;
                    }
                },
                _ = sleep_until(idle_deadline), if in_flight.is_empty() => break End::Drain,
            }
        };

        if end == End::Drain {
            while let Some(done) = in_flight.join_next().await {
                if !self.write(&mut writer, done).await {
                    return;
                }
            }
            let _ = writer.shutdown().await;
        }
        // Dropping `in_flight` aborts anything left after a failure.
    }

    /// Writes one finished query's response, if it has one. False when the connection failed.
    async fn write(
        &self,
        writer: &mut OwnedWriteHalf,
        done: Result<Option<Vec<u8>>, tokio::task::JoinError>,
    ) -> bool {
        let response = match done {
            Ok(Some(r)) => r,
            Ok(None) => return true,
            Err(e) => {
                tracing::debug!(error = %e, "TCP query task failed");
                return true;
            }
        };
        let Ok(len) = u16::try_from(response.len()) else {
            tracing::debug!(len = response.len(), "response too large for TCP framing");
            return true;
        };
        let mut framed = Vec::with_capacity(2 + response.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        matches!(
            tokio::time::timeout(self.limits.write_timeout, writer.write_all(&framed)).await,
            Ok(Ok(()))
        )
    }
}

/// Removes one complete length-prefixed message from the front of `buf`, if there is one.
fn take_frame(buf: &mut BytesMut) -> Option<Bytes> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    if buf.len() < 2 + len {
        return None;
    }
    buf.advance(2);
    Some(buf.split_to(len).freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_in_order() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 3, b'a', b'b', b'c', 0, 0, 0, 2, b'x']);
        assert_eq!(take_frame(&mut buf).as_deref(), Some(&b"abc"[..]));
        assert_eq!(take_frame(&mut buf).as_deref(), Some(&b""[..]));
        assert_eq!(take_frame(&mut buf), None, "partial frame stays buffered");
        assert_eq!(&buf[..], &[0, 2, b'x']);
        buf.extend_from_slice(b"y");
        assert_eq!(take_frame(&mut buf).as_deref(), Some(&b"xy"[..]));
        assert!(buf.is_empty());
        assert_eq!(take_frame(&mut buf), None);
        buf.extend_from_slice(&[0]);
        assert_eq!(take_frame(&mut buf), None);
    }
}
