//! The UDP listener. Whatever needs no upstream (cache hits, error responses, the rate
//! limit, `allow`) is answered in the receive loop itself: no task and no allocation per
//! answer. A query that needs the upstream (a cache miss or a stale entry) is handled in its
//! own task, so a slow upstream answer never holds up another client; a semaphore bounds how
//! many are in flight.
//!
//! Datagrams are read in batches of up to [`BATCH`] with one `recvmmsg` call, into buffers
//! reused for every batch, and the answers made at once are sent together with one
//! `sendmmsg` call (through nix's safe wrappers): two system calls per batch instead of two
//! per query, and the client is woken once per batch. The loop waits for readiness only
//! when the socket is empty, and yields to the other tasks after [`YIELD_AFTER`] datagrams.

use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};

use super::error::Protocol;
use super::handler::{Now, QueryHandler};
use super::shutdown::{stopped, TaskGuard};

/// Largest DNS message (and so each receive buffer).
const MAX_MESSAGE: usize = 65_535;

/// Datagrams read (and answers sent) per system call at most.
const BATCH: usize = 64;

/// Datagrams handled in a row before the loop yields to the other tasks on its worker.
const YIELD_AFTER: usize = 128;

/// The buffers of one listener, reused for every batch.
struct Buffers {
    /// [`BATCH`] receive buffers of [`MAX_MESSAGE`] bytes, one after the other (the kernel
    /// only touches, and so only makes resident, the bytes datagrams fill). The first
    /// datagram of a batch is read into slot 0 with `recvfrom`, the others (if the loop is
    /// busy) into the following slots with `recvmmsg`.
    recv: Vec<u8>,
    /// Length and sender of each datagram of the current batch.
    received: Vec<(usize, SocketAddr)>,
    /// Responses of the current batch; their first `ready` entries are to be sent.
    out: Vec<Vec<u8>>,
    /// Where each response goes.
    dest: Vec<SocketAddr>,
}

impl Buffers {
    fn new() -> Self {
        Self {
            recv: vec![0u8; BATCH * MAX_MESSAGE],
            received: Vec::with_capacity(BATCH),
            out: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            dest: Vec::with_capacity(BATCH),
        }
    }
}

/// The first `len` bytes of receive slot `i` of `recv`: datagram `i` of a batch.
fn slot(recv: &[u8], i: usize, len: usize) -> &[u8] {
    let start = i.saturating_mul(MAX_MESSAGE);
    recv.get(start..start.saturating_add(len.min(MAX_MESSAGE)))
        .unwrap_or_default()
}

/// Serves `socket` until shutdown is signalled. Queries already received are still
/// answered (each within the query timeout); `guard` is held until they are.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<QueryHandler>,
    in_flight: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) {
    let fd = socket.as_raw_fd();
    let mut b = Buffers::new();
    'serve: loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = socket.readable() => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "UDP socket failed");
                    break;
                }
            }
        }
        let mut handled = 0;
        while handled < YIELD_AFTER {
            let Buffers { recv, received, .. } = &mut b;
            received.clear();
            let first = recv.get_mut(..MAX_MESSAGE).unwrap_or_default();
            match socket.try_recv_from(first) {
                Ok(got) => received.push(got),
                // Drained: wait for readiness again.
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue 'serve,
                Err(e) => {
                    // E.g. ICMP port unreachable from an earlier send: not fatal to the socket.
                    tracing::debug!(error = %e, "UDP receive failed");
                    handled += 1;
                    continue;
                }
            }
            if handled > 0 {
                // Busy (a datagram was queued behind the previous ones): take the others
                // queued now with one call. A lone datagram skips this, so a quiet server
                // pays no batch setup and no extra call.
                let rest = recv.get_mut(MAX_MESSAGE..).unwrap_or_default();
                match socket.try_io(Interest::READABLE, || recv_batch(fd, rest, received)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => tracing::debug!(error = %e, "UDP receive failed"),
                }
            }
            handled += b.received.len();
            let now = Instant::now();
            let Buffers {
                recv,
                received,
                out,
                dest,
            } = &mut b;
            dest.clear();
            for (i, &(len, peer)) in received.iter().enumerate() {
                let Some(response) = out.get_mut(dest.len()) else {
                    break;
                };
                let datagram = slot(recv, i, len);
                match handler.answer_now(datagram, Protocol::Udp, peer.ip(), now, response) {
                    Now::Respond => dest.push(peer),
                    Now::Drop => {}
                    Now::Later => {
                        let datagram = datagram.to_vec();
                        let permit = tokio::select! {
                            _ = stopped(&mut shutdown) => break 'serve,
                            p = Arc::clone(&in_flight).acquire_owned() => p,
                        };
                        let Ok(permit) = permit else { break 'serve };
                        let socket = Arc::clone(&socket);
                        let handler = Arc::clone(&handler);
                        let task_guard = guard.clone();
                        tokio::spawn(async move {
                            let _permit = permit;
                            let _task_guard = task_guard;
                            if let Some(response) = handler
                                .finish_later(&datagram, Protocol::Udp, peer.ip(), now)
                                .await
                            {
                                send(&socket, &response, peer).await;
                            }
                        });
                    }
                }
            }
            send_all(&socket, fd, &b.out, &b.dest).await;
        }
        // Many datagrams in a row: let the other tasks (upstream answers, TCP, timers) run.
        if *shutdown.borrow() {
            break;
        }
        tokio::task::yield_now().await;
    }
}

/// Reads the datagrams queued on `fd` with one `recvmmsg` call, without waiting, into the
/// [`MAX_MESSAGE`]-byte slots of `recv` (as many as it has, at most [`BATCH`]): their
/// lengths and senders are appended to `received`. `WouldBlock` when none is queued.
fn recv_batch(
    fd: RawFd,
    recv: &mut [u8],
    received: &mut Vec<(usize, SocketAddr)>,
) -> io::Result<()> {
    let mut slots: Vec<[IoSliceMut<'_>; 1]> = recv
        .chunks_mut(MAX_MESSAGE)
        .take(BATCH)
        .map(|slot| [IoSliceMut::new(slot)])
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slots.len(), None);
    let results = recvmmsg(
        fd,
        &mut headers,
        slots.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(io::Error::from)?;
    for msg in results {
        // A slot holds the largest UDP payload (65,507 bytes over IPv4), so nothing is cut.
        match msg.address.as_ref().and_then(to_std) {
            Some(peer) => received.push((msg.bytes, peer)),
            // Not an IP sender (cannot happen on an IP socket): keep the slot, drop it.
            None => received.push((0, SocketAddr::from(([0, 0, 0, 0], 0)))),
        }
    }
    Ok(())
}

/// The sender of a datagram as a std address.
fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(std::net::SocketAddrV6::from(*v6)))
}

/// Sends `out[i]` to `dest[i]` for every `i < dest.len()`: as many as the socket takes
/// with one `sendmmsg` call, the rest (or all, when that call fails) one by one.
async fn send_all(socket: &UdpSocket, fd: RawFd, out: &[Vec<u8>], dest: &[SocketAddr]) {
    let mut sent = 0;
    if dest.len() > 1 {
        match socket.try_io(Interest::WRITABLE, || send_batch(fd, out, dest)) {
            Ok(n) => sent = n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => tracing::debug!(error = %e, "UDP batch send failed"),
        }
    }
    for (response, &peer) in out.iter().zip(dest).skip(sent) {
        send(socket, response, peer).await;
    }
}

/// One `sendmmsg` call for `out[i]` to `dest[i]`; how many datagrams the kernel took.
fn send_batch(fd: RawFd, out: &[Vec<u8>], dest: &[SocketAddr]) -> io::Result<usize> {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(dest.len(), None);
    let slices: Vec<[IoSlice<'_>; 1]> = out
        .iter()
        .take(dest.len())
        .map(|r| [IoSlice::new(r)])
        .collect();
    let addrs: Vec<Option<SockaddrStorage>> = dest
        .iter()
        .map(|&a| Some(SockaddrStorage::from(a)))
        .collect();
    let cmsgs: [ControlMessage<'_>; 0] = [];
    let results = sendmmsg(
        fd,
        &mut headers,
        slices.iter(),
        addrs,
        cmsgs,
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    Ok(results.count())
}

/// Sends one response: at once when the socket takes it, else when it is writable.
async fn send(socket: &UdpSocket, response: &[u8], peer: SocketAddr) {
    let result = match socket.try_send_to(response, peer) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => socket.send_to(response, peer).await,
        other => other,
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "UDP send failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch read takes every queued datagram with its sender and length, in order, and
    /// says WouldBlock when none is queued; a batch send delivers each response to its own
    /// destination.
    #[tokio::test]
    async fn batches_are_read_and_sent_whole() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let c = UdpSocket::bind("[::1]:0").await;
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            a.send_to(&vec![i; 10 + usize::from(i)], to).await.unwrap();
        }
        let mut b = Buffers::new();
        let fd = server.as_raw_fd();
        let mut got = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 5 && Instant::now() < deadline {
            server.readable().await.unwrap();
            b.received.clear();
            match server.try_io(Interest::READABLE, || {
                recv_batch(fd, &mut b.recv, &mut b.received)
            }) {
                Ok(()) => {
                    for (i, &(len, peer)) in b.received.iter().enumerate() {
                        assert_eq!(peer, a.local_addr().unwrap());
                        got.push(slot(&b.recv, i, len).to_vec());
                    }
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
            }
        }
        let expected: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        assert_eq!(got, expected);
        let empty = recv_batch(fd, &mut b.recv, &mut b.received);
        assert_eq!(empty.unwrap_err().kind(), ErrorKind::WouldBlock);

        let a_addr = a.local_addr().unwrap();
        let out = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        let dest = vec![a_addr, a_addr, a_addr];
        send_all(&server, fd, &out, &dest).await;
        let mut buf = [0u8; 64];
        for want in [&b"one"[..], b"two", b"three"] {
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], want);
            assert_eq!(from, to);
        }
        // An IPv6 sender comes back as the same address (when the machine has ::1).
        if let Ok(c) = c {
            let server6 = UdpSocket::bind("[::1]:0").await.unwrap();
            c.send_to(b"v6", server6.local_addr().unwrap())
                .await
                .unwrap();
            server6.readable().await.unwrap();
            let fd6 = server6.as_raw_fd();
            b.received.clear();
            server6
                .try_io(Interest::READABLE, || {
                    recv_batch(fd6, &mut b.recv, &mut b.received)
                })
                .unwrap();
            assert_eq!(b.received, vec![(2, c.local_addr().unwrap())]);
        }
    }
}
