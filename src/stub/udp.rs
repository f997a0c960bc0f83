//! The UDP listener. Whatever needs no upstream (cache hits, error responses, the rate
//! limit, `allow`) is answered in the receive loop itself, with one receive and one send
//! buffer reused for every datagram: no task, no allocation per answer. A query that needs
//! the upstream (a cache miss or a stale entry) is handled in its own task, so a slow
//! upstream answer never holds up another client; a semaphore bounds how many are in flight.
//!
//! The loop reads the datagrams already queued without waiting (up to [`BATCH`] in a row,
//! then it yields to the other tasks), and waits for readiness only when the socket is empty.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};

use super::error::Protocol;
use super::handler::{Now, QueryHandler};
use super::shutdown::{stopped, TaskGuard};

/// Largest DNS message (and so the receive buffer).
const MAX_MESSAGE: usize = 65_535;

/// Datagrams handled in a row before the loop yields to the other tasks on its worker.
const BATCH: usize = 64;

/// Serves `socket` until shutdown is signalled. Queries already received are still
/// answered (each within the query timeout); `guard` is held until they are.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<QueryHandler>,
    in_flight: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    guard: TaskGuard,
) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(4096);
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
        while handled < BATCH {
            let (len, peer) = match socket.try_recv_from(&mut buf) {
                Ok(received) => received,
                // Drained: wait for readiness again.
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue 'serve,
                Err(e) => {
                    // E.g. ICMP port unreachable from an earlier send: not fatal to the socket.
                    tracing::debug!(error = %e, "UDP receive failed");
                    handled += 1;
                    continue;
                }
            };
            handled += 1;
            let received = Instant::now();
            let datagram = buf.get(..len).unwrap_or_default();
            match handler.answer_now(datagram, Protocol::Udp, peer.ip(), received, &mut out) {
                Now::Respond => send(&socket, &out, peer).await,
                Now::Drop => {}
                Now::Later => {
                    let permit = tokio::select! {
                        _ = stopped(&mut shutdown) => break 'serve,
                        p = Arc::clone(&in_flight).acquire_owned() => p,
                    };
                    let Ok(permit) = permit else { break 'serve };
                    let datagram = datagram.to_vec();
                    let socket = Arc::clone(&socket);
                    let handler = Arc::clone(&handler);
                    let task_guard = guard.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let _task_guard = task_guard;
                        if let Some(response) = handler
                            .finish_later(&datagram, Protocol::Udp, peer.ip(), received)
                            .await
                        {
                            send(&socket, &response, peer).await;
                        }
                    });
                }
            }
        }
        // A full batch: let the other tasks (upstream answers, TCP, timers) run.
        if *shutdown.borrow() {
            break;
        }
        tokio::task::yield_now().await;
    }
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
