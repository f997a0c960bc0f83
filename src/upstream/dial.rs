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
//! attempt ended receives a clone of the same error (a certificate refusal is the same
//! shared [`RefusedCertificate`](crate::tls::presented::RefusedCertificate)) without dialing. A query that
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
            Some((ended, error)) if *ended >= waiting_since => Some(error.clone()),
            _ => None,
        }
    }

    /// Remembers `error`, the outcome of an attempt that just ended (or forgets the previous
    /// failure when `error` is not one to share).
    fn record(&mut self, error: &UpstreamError) {
        self.failed = shared(error).then(|| (Instant::now(), error.clone()));
    }
}

/// Whether `error` is a failed connection attempt that describes the upstream, so that the queries that waited for the
/// attempt may receive it too: TCP connect, TLS handshake, certificate refusal, the connect
/// timeout, a DoH server without ALPN `h2`. Failures of one query (its own timeout, a lost
/// connection) are not shared.
pub(crate) fn shared(error: &UpstreamError) -> bool {
    matches!(
        error,
        UpstreamError::Connect { .. }
            | UpstreamError::Tls { .. }
            | UpstreamError::Refused { .. }
            | UpstreamError::ConnectTimeout { .. }
            | UpstreamError::Doh(DohError::AlpnNotH2 { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::verifier::Refusal;
    use std::sync::Arc;
    use std::time::Duration;

    fn addr() -> std::net::SocketAddr {
        "127.0.0.1:853".parse().unwrap()
    }

    fn refused() -> UpstreamError {
        crate::upstream::tests::pin_refusal()
    }

    #[test]
    fn a_shared_refusal_is_the_same_typed_refusal() {
        let mut last = LastFailure::default();
        let before = Instant::now() - Duration::from_millis(1);
        last.record(&refused());
        let copy = last.shared_with(before).expect("refusals are shared");
        let (UpstreamError::Refused { refusal: a, .. }, UpstreamError::Refused { refusal: b, .. }) =
            (&copy, last.failed.as_ref().map(|(_, e)| e).unwrap())
        else {
            panic!("expected Refused, got {copy:?}");
        };
        assert!(Arc::ptr_eq(a, b), "one refusal, shared");
        assert_eq!(copy.refusal().map(Refusal::rule), Some("issuer-pin"));
        assert_eq!(copy.to_string(), refused().to_string());
    }

    #[test]
    fn connect_errors_keep_their_os_code_and_only_upstream_failures_are_shared() {
        let original = UpstreamError::Connect {
            addr: addr(),
            source: Arc::new(std::io::Error::from_raw_os_error(111)),
        };
        assert!(shared(&original));
        let UpstreamError::Connect { source, .. } = original.clone() else {
            panic!("a clone keeps its variant");
        };
        assert_eq!(source.raw_os_error(), Some(111));
        for error in [
            UpstreamError::Timeout,
            UpstreamError::ConnectionLost("gone".into()),
            UpstreamError::NoUpstreams,
        ] {
            assert!(!shared(&error), "{error:?}");
        }
        assert!(shared(&UpstreamError::ConnectTimeout {
            addr: addr(),
            tcp_connected: true
        }));
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
            Some(UpstreamError::Refused { .. })
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
        assert!(matches!(shared, Err(UpstreamError::Refused { .. })));
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
        assert!(matches!(refused_dial, Err(UpstreamError::Refused { .. })));
        let connect_failed = last
            .dial("t", &counters, Instant::now(), async {
                Err::<(), _>(UpstreamError::Connect {
                    addr: addr(),
                    source: Arc::new(std::io::Error::from_raw_os_error(111)),
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
