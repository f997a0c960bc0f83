//! Binding the listeners, starting them, and stopping them gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};

use super::error::{Protocol, StubError};
use super::handler::QueryHandler;
use super::metrics::{Metrics, MetricsSnapshot};
use super::options::{StubOptions, UDP_RECV_BUFFER};
use super::shutdown::TaskGuard;
use super::tcp::{self, ConnLimits};
use super::udp;
use crate::upstream::Transport;

/// How many ports are tried for `port 0` before giving up on finding one free for both UDP
/// and TCP.
const PORT_ATTEMPTS: u32 = 16;

/// Listeners bound and ready to serve; nothing is read until [`Stub::start`] or
/// [`Stub::run`].
#[derive(Debug)]
pub struct Stub {
    opts: StubOptions,
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    metrics: Arc<Metrics>,
}

/// Binds UDP and TCP on every address of `opts.listen`. With port 0 a free port is chosen,
/// the same for UDP and TCP; [`Stub::udp_addrs`] and [`Stub::tcp_addrs`] tell which.
///
/// Binding a port below 1024 without privilege fails with
/// [`StubError::BindPermissionDenied`], whose message says how to fix it.
pub async fn bind(opts: StubOptions) -> Result<Stub, StubError> {
    opts.validate()?;
    let mut udp = Vec::with_capacity(opts.listen.len());
    let mut tcp = Vec::with_capacity(opts.listen.len());
    let mut udp_addrs = Vec::with_capacity(opts.listen.len());
    let mut tcp_addrs = Vec::with_capacity(opts.listen.len());
    let mut skipped = None;
    for &addr in &opts.listen {
        let (u, t) = match bind_pair(addr).await {
            Ok(pair) => pair,
            Err(e) if opts.skip_unavailable_listen && e.is_unavailable_address() => {
                tracing::warn!(
                    addr = %addr,
                    "not listening on {addr}: this host cannot use that address ({e}); \
                     serving on the other built-in addresses"
                );
                skipped = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        udp_addrs.push(
            u.local_addr()
                .map_err(|e| StubError::from_bind(addr, Protocol::Udp, e))?,
        );
        tcp_addrs.push(
            t.local_addr()
                .map_err(|e| StubError::from_bind(addr, Protocol::Tcp, e))?,
        );
        udp.push(Arc::new(u));
        tcp.push(t);
    }
    if let (true, Some(e)) = (udp.is_empty(), skipped) {
        return Err(e);
    }
    Ok(Stub {
        opts,
        udp,
        tcp,
        udp_addrs,
        tcp_addrs,
        metrics: Arc::new(Metrics::default()),
    })
}

/// Binds UDP and TCP on `addr`; with port 0, on one port free for both.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), StubError> {
    let bind_udp = |a: SocketAddr| async move {
        let socket = UdpSocket::bind(a)
            .await
            .map_err(|e| StubError::from_bind(a, Protocol::Udp, e))?;
        raise_recv_buffer(&socket);
        Ok::<_, StubError>(socket)
    };
    if addr.port() != 0 {
        let u = bind_udp(addr).await?;
        let t = TcpListener::bind(addr)
            .await
            .map_err(|e| StubError::from_bind(addr, Protocol::Tcp, e))?;
        return Ok((u, t));
    }
    for _ in 0..PORT_ATTEMPTS {
        let u = bind_udp(addr).await?;
        let chosen = u
            .local_addr()
            .map_err(|e| StubError::from_bind(addr, Protocol::Udp, e))?;
        match TcpListener::bind(chosen).await {
            Ok(t) => return Ok((u, t)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(StubError::from_bind(chosen, Protocol::Tcp, e)),
        }
    }
    Err(StubError::NoCommonPort {
        ip: addr.ip(),
        attempts: PORT_ATTEMPTS,
    })
}

/// Asks for a [`UDP_RECV_BUFFER`] receive buffer; serving goes on with the default if the
/// kernel refuses.
fn raise_recv_buffer(socket: &UdpSocket) {
    if let Err(e) = socket2::SockRef::from(socket).set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!(error = %e, "could not raise the UDP receive buffer");
    }
}

impl Stub {
    /// The bound UDP addresses, in the order of `listen`.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP addresses, in the order of `listen`.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Starts serving on the current Tokio runtime, forwarding to `upstream`. Serving stops
    /// when [`StubHandle::shutdown`] is called or the handle is dropped.
    pub fn start(self, upstream: Arc<dyn Transport>) -> StubHandle {
        let handler = Arc::new(QueryHandler::new(
            upstream,
            &self.opts,
            Arc::clone(&self.metrics),
        ));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (guard_tx, done_rx) = mpsc::channel(1);
        let guard = TaskGuard::new(guard_tx);
        let udp_in_flight = Arc::new(Semaphore::new(self.opts.max_udp_in_flight));
        let tcp_connections = Arc::new(Semaphore::new(self.opts.max_tcp_connections));
        let limits = ConnLimits {
            idle_timeout: self.opts.tcp_idle_timeout,
            max_in_flight: self.opts.max_in_flight_per_tcp_connection,
            write_timeout: self.opts.query_timeout.max(self.opts.tcp_idle_timeout),
        };
        for socket in self.udp {
            tokio::spawn(udp::serve(
                socket,
                Arc::clone(&handler),
                Arc::clone(&udp_in_flight),
                stop_rx.clone(),
                guard.clone(),
            ));
        }
        for listener in self.tcp {
            tokio::spawn(tcp::serve(
                listener,
                Arc::clone(&handler),
                Arc::clone(&tcp_connections),
                limits,
                stop_rx.clone(),
                guard.clone(),
            ));
        }
        tracing::info!(udp = ?self.udp_addrs, tcp = ?self.tcp_addrs, "stub listening");
        StubHandle {
            stop_tx,
            done_rx,
            udp_addrs: self.udp_addrs,
            tcp_addrs: self.tcp_addrs,
            handler,
        }
    }

    /// Serves, forwarding to `upstream`, until `shutdown` completes (for example
    /// `tokio::signal::ctrl_c()`), then stops gracefully.
    pub async fn run<F>(self, upstream: Arc<dyn Transport>, shutdown: F)
    where
        F: Future<Output = ()>,
    {
        let handle = self.start(upstream);
        shutdown.await;
        handle.shutdown().await;
    }
}

/// A running stub server. Dropping it signals the listeners to stop without waiting.
#[derive(Debug)]
pub struct StubHandle {
    stop_tx: watch::Sender<bool>,
    done_rx: mpsc::Receiver<()>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    handler: Arc<QueryHandler>,
}

impl StubHandle {
    /// The bound UDP addresses, in the order of `listen`.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP addresses, in the order of `listen`.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The current values of the server's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.handler.metrics().snapshot()
    }

    /// The query handler (its counters and cache), e.g. for the metrics endpoint.
    pub fn handler(&self) -> Arc<QueryHandler> {
        Arc::clone(&self.handler)
    }

    /// Number of entries in the answer cache.
    pub fn cache_len(&self) -> usize {
        self.handler.cache().len()
    }

    /// Bytes the answer cache counts against its `max_bytes` budget.
    pub fn cache_bytes(&self) -> usize {
        self.handler.cache().bytes()
    }

    /// Empties the answer cache (after a configuration reload: answers obtained under the
    /// previous trust settings are not served again).
    pub fn clear_cache(&self) {
        self.handler.cache().clear();
    }

    /// Stops accepting queries and connections, lets the queries already received be
    /// answered (each within the query timeout), closes every connection and socket, and
    /// returns when all of that is done.
    pub async fn shutdown(mut self) {
        let _ = self.stop_tx.send(true);
        // Every task holds a `TaskGuard`; the channel closes when the last one is dropped.
        while self.done_rx.recv().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn udp_sockets_get_a_large_receive_buffer() {
        let stub = bind(StubOptions {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            ..StubOptions::default()
        })
        .await
        .unwrap();
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let got = socket2::SockRef::from(&*stub.udp[0])
            .recv_buffer_size()
            .unwrap();
        // Linux caps the request at rmem_max, then doubles it for its bookkeeping.
        assert!(got >= UDP_RECV_BUFFER.min(rmem_max), "receive buffer {got}");
    }
}
