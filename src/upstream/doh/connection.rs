//! One verified HTTP/2 connection: TCP, then the TLS handshake (where the verifier runs),
//! then an ALPN `h2` check, and only then the HTTP/2 preface. Its driver task closes it
//! when it has been idle too long.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
pub(crate) type Sender = SendRequest<Full<Bytes>>;

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
    /// Whether the connection can no longer take requests.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
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
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
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

        let mut builder = http2::Builder::new(TokioExecutor::new());
        // A peer that stops answering PINGs while queries wait is dropped (and those
        // queries retried) instead of swallowing every query until its deadline.
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keepalive)
            .keep_alive_timeout(self.keepalive)
            .keep_alive_while_idle(false);
        let (sender, connection) = limit
            .run(builder.handshake(TokioIo::new(tls)))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|source| DohError::H2Handshake {
                source: Arc::new(source),
            })?;

        let activity = Arc::new(Activity::new());
        let watched = Arc::clone(&activity);
        let idle_timeout = self.idle_timeout;
        let addr = self.addr;
        tokio::spawn(async move {
            tokio::pin!(connection);
            loop {
                let Some(idle_at) = watched.idle_at(Instant::now(), idle_timeout) else {
                    tracing::debug!(%addr, conn = id, "closing idle DoH connection");
                    return;
                };
                tokio::select! {
                    result = &mut connection => {
                        match result {
                            Ok(()) => tracing::debug!(%addr, conn = id, "DoH connection closed"),
                            Err(e) => tracing::debug!(%addr, conn = id, error = %e, "DoH connection failed"),
                        }
                        return;
                    }
                    _ = tokio::time::sleep_until(idle_at) => {}
                }
            }
        });
        tracing::debug!(%addr, conn = id, "DoH connection established");
        Ok(Conn {
            id,
            sender,
            activity,
            session,
        })
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
