//! The UDP listener: each datagram is handled in its own task, so a slow upstream answer
//! never holds up another client; a semaphore bounds how many are in flight.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};

use super::error::Protocol;
use super::handler::QueryHandler;
use super::shutdown::{stopped, TaskGuard};

/// Largest DNS message (and so the receive buffer).
const MAX_MESSAGE: usize = 65_535;

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
    loop {
        let permit = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            p = Arc::clone(&in_flight).acquire_owned() => p,
        };
        let Ok(permit) = permit else { break };
        let (len, peer) = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(received) => received,
                Err(e) => {
                    // E.g. ICMP port unreachable from an earlier send: not fatal to the socket.
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
        };
        let datagram = buf.get(..len).unwrap_or_default().to_vec();
        let socket = Arc::clone(&socket);
        let handler = Arc::clone(&handler);
        let task_guard = guard.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _task_guard = task_guard;
            if let Some(response) = handler
                .handle_from(&datagram, Protocol::Udp, peer.ip())
                .await
            {
                if let Err(e) = socket.send_to(&response, peer).await {
                    tracing::debug!(%peer, error = %e, "UDP send failed");
                }
            }
        });
    }
}
