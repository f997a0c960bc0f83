//! One verified HTTP/2 connection: TCP, then the TLS handshake (where the verifier runs),
//! then an ALPN `h2` check, and only then the HTTP/2 preface. Its driver task closes it
//! when it has been idle too long, and PINGs it while requests wait (closing it when a PING
//! goes unanswered).
//!
//! Requests go straight to the `h2` crate: each query opens its stream on a clone of the
//! connection's [`h2::client::SendRequest`] and awaits the response in its own task. (Going
//! through hyper's client cost a dispatcher channel, two oneshots and one spawned task per
//! request: about a fifth of the DoH path's instructions.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Ping, PingPong};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::DohError;
use crate::upstream::connect::{self, SessionInfo};
use crate::upstream::deadline::Deadline;
use crate::upstream::UpstreamError;

/// The ALPN protocol ID of HTTP/2 over TLS (RFC 9113 §3.2).
pub(crate) use crate::tls::config::ALPN_H2;

/// `now + d`, saturating far in the future instead of overflowing on absurd settings.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(now)
}

/// The request sender of one HTTP/2 connection.
pub(crate) type Sender = SendRequest<Bytes>;

/// HTTP/2 receive window of the whole connection. Responses are small and read at once, but
/// hundreds may be in flight: a wide window keeps the server from stalling on, and the client
/// from sending, connection-level WINDOW_UPDATEs (RFC 9113 §6.9.2).
const CONNECTION_WINDOW: u32 = 1 << 20;

/// Opens verified HTTP/2 connections to one endpoint.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub(crate) addr: SocketAddr,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) connector: TlsConnector,
    pub(crate) idle_timeout: Duration,
    /// PING interval, and PONG timeout, while requests are in flight.
    pub(crate) keepalive: Duration,
}

/// A shared handle on one open connection; clones multiplex on the same connection.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    /// Distinguishes successive connections of one transport.
    pub(crate) id: u64,
    sender: Sender,
    activity: Arc<Activity>,
    /// The TLS parameters of the connection.
    pub(crate) session: SessionInfo,
}

impl Conn {
    /// Whether the connection can no longer take requests (its driver task ended).
    pub(crate) fn is_closed(&self) -> bool {
        self.activity.closed.load(Ordering::SeqCst)
    }

    /// Whether the driver closed the connection because a keep-alive PING went unanswered.
    pub(crate) fn keepalive_expired(&self) -> bool {
        self.activity.keepalive_expired.load(Ordering::SeqCst)
    }

    /// Marks one request in flight until the guard is dropped, and hands out a sender.
    pub(crate) fn begin(&self) -> (InFlight, Sender) {
        self.activity.in_flight.fetch_add(1, Ordering::SeqCst);
        (
            InFlight {
                activity: Arc::clone(&self.activity),
            },
            self.sender.clone(),
        )
    }
}

/// Tracks requests in flight and the last time one finished, for the idle timer.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` when the connection last went quiet.
    last_done_ms: AtomicU64,
    /// Set when the driver task ends: the connection takes no more requests.
    closed: AtomicBool,
    /// Set when the driver closed the connection over an unanswered PING.
    keepalive_expired: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            keepalive_expired: AtomicBool::new(false),
        }
    }

    fn touch(&self, now: Instant) {
        let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        self.last_done_ms.store(ms, Ordering::SeqCst);
    }

    /// When the connection becomes idle if nothing else happens; `None` if it already is.
    fn idle_at(&self, now: Instant, idle_timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Some(after(now, idle_timeout));
        }
        let last = after(
            self.epoch,
            Duration::from_millis(self.last_done_ms.load(Ordering::SeqCst)),
        );
        let at = after(last, idle_timeout);
        (at > now).then_some(at)
    }
}

/// Guard for one request in flight on a connection.
#[derive(Debug)]
pub(crate) struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.touch(Instant::now());
        self.activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Dialer {
    /// Connects and verifies ([`crate::upstream::connect`]: the verifier runs inside the
    /// TLS handshake), checks the dialed IP and ALPN, and starts HTTP/2. The whole sequence
    /// is bounded by `connect_timeout` and the query's `deadline`.
    pub(crate) async fn dial(
        &self,
        id: u64,
        connect_timeout: Duration,
        deadline: &Deadline,
    ) -> Result<Conn, UpstreamError> {
        let dial = connect::Dial {
            connector: &self.connector,
            addr: self.addr,
            server_name: &self.server_name,
            connect_timeout,
        };
        let limit = deadline.min_after(connect_timeout);
        let (tls, ()) = connect::connect(dial, deadline, |_| ()).await?;
        let session = SessionInfo::of(&tls);

        if matches!(self.server_name, ServerName::DnsName(_)) {
            // The verifier checked the host name; the IP SAN must match the socket too.
            let session = tls.get_ref().1;
            if !leaf_valid_for_ip(session.peer_certificates(), self.addr.ip()) {
                return Err(DohError::CertNotForDialedIp { ip: self.addr.ip() }.into());
            }
        }

        let negotiated = tls.get_ref().1.alpn_protocol();
        if negotiated != Some(ALPN_H2) {
            // Dropping the stream closes the socket without sending HTTP/2 or DNS bytes.
            return Err(DohError::AlpnNotH2 {
                negotiated: negotiated.map(<[u8]>::to_vec),
            }
            .into());
        }

        let (sender, mut connection) = limit
            .run(
                h2::client::Builder::new()
                    .enable_push(false)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .handshake::<_, Bytes>(tls),
            )
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|source| DohError::H2Handshake {
                source: Arc::new(source),
            })?;

        let activity = Arc::new(Activity::new());
        let driver = Driver {
            id,
            addr: self.addr,
            activity: Arc::clone(&activity),
            idle_timeout: self.idle_timeout,
            keepalive: self.keepalive,
            ping_pong: connection.ping_pong(),
        };
        tokio::spawn(async move {
            let mut driver = driver;
            driver.drive(&mut connection).await;
            driver.activity.closed.store(true, Ordering::SeqCst);
            // Dropping `connection` here fails the streams still open on it.
        });
        tracing::debug!(addr = %self.addr, conn = id, "DoH connection established");
        Ok(Conn {
            id,
            sender,
            activity,
            session,
        })
    }
}

/// The task that drives one connection's I/O, closes it when idle, and checks it with
/// PINGs while requests are in flight (a peer that stops answering is dropped, and those
/// requests retried on a fresh connection, instead of holding them until their deadline).
struct Driver {
    id: u64,
    addr: SocketAddr,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    keepalive: Duration,
    ping_pong: Option<PingPong>,
}

impl Driver {
    /// Runs until the connection closes, goes idle, or a PING goes unanswered. A PING is
    /// sent every `keepalive` while requests are in flight; its PONG is due `keepalive`
    /// later.
    async fn drive<T>(&mut self, connection: &mut h2::client::Connection<T, Bytes>)
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (id, addr) = (self.id, self.addr);
        let mut next_ping = after(Instant::now(), self.keepalive);
        let mut pong_due: Option<Instant> = None;
        loop {
            let Some(idle_at) = self.activity.idle_at(Instant::now(), self.idle_timeout) else {
                tracing::debug!(%addr, conn = id, "closing idle DoH connection");
                return;
            };
            let wake = match (pong_due, self.ping_pong.is_some()) {
                (Some(due), _) => due.min(idle_at),
                (None, true) => next_ping.min(idle_at),
                (None, false) => idle_at,
            };
            tokio::select! {
                result = &mut *connection => {
                    match result {
                        Ok(()) => tracing::debug!(%addr, conn = id, "DoH connection closed"),
                        Err(e) => tracing::debug!(%addr, conn = id, error = %e, "DoH connection failed"),
                    }
                    return;
                }
                pong = poll_pong(&mut self.ping_pong), if pong_due.is_some() => {
                    pong_due = None;
                    next_ping = after(Instant::now(), self.keepalive);
                    if pong.is_err() {
                        // The connection failed; polling it above reports why.
                        self.ping_pong = None;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if pong_due.is_some_and(|due| now >= due) {
                        tracing::debug!(%addr, conn = id, "DoH connection stopped answering PINGs");
                        self.activity.keepalive_expired.store(true, Ordering::SeqCst);
                        return;
                    }
                    if pong_due.is_none() && now >= next_ping {
                        next_ping = after(now, self.keepalive);
                        let busy = self.activity.in_flight.load(Ordering::SeqCst) > 0;
                        if let Some(pp) = self.ping_pong.as_mut().filter(|_| busy) {
                            if pp.send_ping(Ping::opaque()).is_ok() {
                                pong_due = Some(after(now, self.keepalive));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Waits for the PONG to the PING in flight; never completes without a `PingPong`.
async fn poll_pong(ping_pong: &mut Option<PingPong>) -> Result<(), h2::Error> {
    match ping_pong {
        Some(pp) => std::future::poll_fn(|cx| pp.poll_pong(cx))
            .await
            .map(|_| ()),
        None => std::future::pending().await,
    }
}

/// Whether the first certificate of `chain` (the leaf) has an IP SAN equal to `ip`.
fn leaf_valid_for_ip(chain: Option<&[CertificateDer<'static>]>, ip: std::net::IpAddr) -> bool {
    let Some(leaf) = chain.and_then(<[_]>::first) else {
        return false;
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    ee.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_do_not_overflow() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now);
        let activity = Activity::new();
        assert!(activity.idle_at(now, Duration::MAX).is_some());
    }

    #[test]
    fn idle_clock_waits_for_requests_to_finish() {
        let activity = Activity::new();
        let idle = Duration::from_secs(10);
        let t0 = activity.epoch;
        // Fresh and unused: idle `idle` after creation.
        assert_eq!(activity.idle_at(t0, idle), Some(t0 + idle));
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        // A request is in flight: never idle, however long it takes.
        let late = t0 + Duration::from_secs(600);
        assert_eq!(activity.idle_at(late, idle), Some(late + idle));
        activity.touch(late);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
        assert_eq!(activity.idle_at(late, idle), Some(late + idle));
        assert_eq!(
            activity.idle_at(late + idle - Duration::from_millis(1), idle),
            Some(late + idle)
        );
        assert_eq!(activity.idle_at(late + idle, idle), None);
    }
}
