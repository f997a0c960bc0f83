//! One failed connection attempt, shared by the queries that waited for it.
//!
//! Both transports open connections under a lock, so queries that arrive while a TCP connect
//! and TLS handshake are under way wait for that one attempt. If each waiting query then
//! took the lock in turn and dialed again, a burst of N queries to an upstream whose
//! certificate is refused would make N handshakes, one after the other, each refused, each
//! delaying the queries behind it before they could fail over to another upstream (and each
//! writing its own evidence of the same refusal).
//!
//! [`LastFailure`] remembers the failed attempt. A query that started waiting before the
//! attempt ended receives the same error (same variant, same address; a certificate refusal
//! keeps its typed [`Refusal`](crate::tls::verifier::Refusal)) without dialing. A query that
//! arrives after the failure dials again, so the memory never outlives the burst it serves:
//! whether to try a failed upstream again later is the pool's backoff decision, not this one's.
//!
//! Only failures that describe the upstream are shared: TCP connect, TLS handshake
//! (certificate refusals included), the connect timeout, and a DoH server without ALPN `h2`.
//! A query that ran out of its own time (`Timeout`) shares nothing: the next one has its own.
//!
//! [`DialCounters`] counts what actually went on the wire: every dial, every failed one,
//! every certificate refusal among them (shared copies are not counted again).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::doh::DohError;
use super::{DialStats, UpstreamError};

/// Connection attempts of one transport, counted where they happen.
#[derive(Debug, Default)]
pub(crate) struct DialCounters {
    dials: AtomicU64,
    failures: AtomicU64,
    refusals: AtomicU64,
}

impl DialCounters {
    /// The counts so far.
    pub(crate) fn snapshot(&self) -> DialStats {
        DialStats {
            dials: self.dials.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
        }
    }

    fn dialed(&self) {
        self.dials.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, error: &UpstreamError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if error.refusal().is_some() {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The most recent failed connection attempt of one transport, if it may be shared.
#[derive(Debug, Default)]
pub(crate) struct LastFailure {
    failed: Option<(Instant, UpstreamError)>,
}

impl LastFailure {
    /// Runs `dial` for a query that began waiting for the connection at `waiting_since`,
    /// unless an attempt that ended after that has failed: then that failure is returned
    /// and nothing is dialed. Remembers the outcome for the queries waiting now, and counts
    /// the dial (and its failure) in `counters`.
    pub(crate) async fn dial<T>(
        &mut self,
        upstream: &str,
        counters: &DialCounters,
        waiting_since: Instant,
        dial: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        if let Some(error) = self.shared_with(waiting_since) {
            tracing::debug!(upstream, error = %error,
                "sharing the failed connection attempt this query waited for");
            return Err(error);
        }
        counters.dialed();
        let outcome = dial.await;
        match &outcome {
            Ok(_) => self.failed = None,
            Err(error) => {
                counters.failed(error);
                self.record(error);
            }
        }
        outcome
    }

    /// The failure to report instead of dialing, for a query that began waiting for the
    /// connection at `waiting_since`: the outcome of an attempt that ended after that.
    fn shared_with(&self, waiting_since: Instant) -> Option<UpstreamError> {
        match &self.failed {
            Some((ended, error)) if *ended >= waiting_since => replay(error),
            _ => None,
        }
    }

    /// Remembers `error`, the outcome of an attempt that just ended (or forgets the previous
    /// failure when `error` is not one to share).
    fn record(&mut self, error: &UpstreamError) {
        self.failed = replay(error).map(|copy| (Instant::now(), copy));
    }
}

/// A copy of a connection failure that describes the upstream, or `None` for any other
/// error. `UpstreamError` cannot be `Clone` (it holds `std::io::Error`), so the copy is
/// rebuilt: the same variant and address, and for I/O errors the same kind and OS error
/// code, or the same `rustls::Error` (which carries a certificate refusal as an `Arc`).
pub(crate) fn replay(error: &UpstreamError) -> Option<UpstreamError> {
    Some(match error {
        UpstreamError::Connect { addr, source } => UpstreamError::Connect {
            addr: *addr,
            source: copy_io(source),
        },
        UpstreamError::Tls { addr, source } => UpstreamError::Tls {
            addr: *addr,
            source: copy_io(source),
        },
        UpstreamError::ConnectTimeout { addr } => UpstreamError::ConnectTimeout { addr: *addr },
        UpstreamError::Doh(DohError::AlpnNotH2 { negotiated }) => {
            UpstreamError::Doh(DohError::AlpnNotH2 {
                negotiated: negotiated.clone(),
            })
        }
        _ => return None,
    })
}

/// A copy of an I/O error: the wrapped `rustls::Error` when there is one (tokio-rustls wraps
/// handshake failures that way), else the OS error code, else the kind and the text.
fn copy_io(error: &std::io::Error) -> std::io::Error {
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return std::io::Error::new(error.kind(), tls.clone());
    }
    match error.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(error.kind(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pins::SpkiPin;
    use crate::tls::verifier::Refusal;
    use std::sync::Arc;
    use std::time::Duration;

    fn addr() -> std::net::SocketAddr {
        "127.0.0.1:853".parse().unwrap()
    }

    fn refused() -> UpstreamError {
        let refusal = Refusal::IssuerNotPinned {
            chain: vec![SpkiPin([1; 32])],
            pins: vec![SpkiPin([2; 32])],
        };
        let rustls_error = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(Arc::new(refusal)),
        ));
        UpstreamError::Tls {
            addr: addr(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_error),
        }
    }

    #[test]
    fn a_refusal_is_replayed_with_its_typed_rule() {
        let copy = replay(&refused()).expect("TLS failures are shared");
        let UpstreamError::Tls { addr: a, source } = &copy else {
            panic!("expected Tls, got {copy:?}");
        };
        assert_eq!(*a, addr());
        assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
        let refusal = Refusal::find_in(source).expect("the refusal survives the copy");
        assert_eq!(refusal.rule(), "issuer-pin");
        assert_eq!(copy.to_string(), refused().to_string());
    }

    #[test]
    fn connect_errors_keep_their_os_code_and_kind() {
        let original = UpstreamError::Connect {
            addr: addr(),
            source: std::io::Error::from_raw_os_error(111),
        };
        let Some(UpstreamError::Connect { source, .. }) = replay(&original) else {
            panic!("connect failures are shared");
        };
        assert_eq!(source.raw_os_error(), Some(111));
        let timed_out = UpstreamError::Connect {
            addr: addr(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"),
        };
        assert_eq!(
            replay(&timed_out).map(|e| e.to_string()),
            Some(timed_out.to_string())
        );
    }

    #[test]
    fn failures_of_the_query_itself_are_not_shared() {
        for error in [
            UpstreamError::Timeout,
            UpstreamError::ConnectionLost("gone".into()),
            UpstreamError::NoUpstreams,
        ] {
            assert!(replay(&error).is_none(), "{error:?}");
        }
    }

    #[tokio::test]
    async fn shared_only_with_queries_that_waited_for_the_attempt() {
        let mut last = LastFailure::default();
        let before = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        last.record(&refused());
        // Waiting since before the failure: shares it.
        assert!(matches!(
            last.shared_with(before),
            Some(UpstreamError::Tls { .. })
        ));
        // Arrived after the failure: dials again.
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(last.shared_with(Instant::now()).is_none());
        // A timeout replaces the memory with nothing; a success clears it.
        last.record(&UpstreamError::Timeout);
        assert!(last.shared_with(before).is_none());
        last.record(&refused());
        // Through `dial`: a query that waited gets the failure without dialing...
        let counters = DialCounters::default();
        let dialed = std::sync::atomic::AtomicBool::new(false);
        let shared = last
            .dial("t", &counters, before, async {
                dialed.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(matches!(shared, Err(UpstreamError::Tls { .. })));
        assert!(!dialed.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(counters.snapshot(), DialStats::default());
        // ...one arriving later dials, and its success clears the memory.
        last.dial("t", &counters, Instant::now(), async { Ok(()) })
            .await
            .unwrap();
        assert!(last.shared_with(before).is_none());
        assert_eq!(
            counters.snapshot(),
            DialStats {
                dials: 1,
                failures: 0,
                refusals: 0
            }
        );
    }

    #[tokio::test]
    async fn counts_dials_failures_and_refusals() {
        let mut last = LastFailure::default();
        let counters = DialCounters::default();
        let refused_dial = last
            .dial("t", &counters, Instant::now(), async {
                Err::<(), _>(refused())
            })
            .await;
        assert!(matches!(refused_dial, Err(UpstreamError::Tls { .. })));
        let connect_failed = last
            .dial("t", &counters, Instant::now(), async {
                Err::<(), _>(UpstreamError::Connect {
                    addr: addr(),
                    source: std::io::Error::from_raw_os_error(111),
                })
            })
            .await;
        assert!(matches!(connect_failed, Err(UpstreamError::Connect { .. })));
        assert_eq!(
            counters.snapshot(),
            DialStats {
                dials: 2,
                failures: 2,
                refusals: 1
            }
        );
    }
}
