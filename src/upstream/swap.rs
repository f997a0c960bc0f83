//! An upstream that can be replaced while it serves: `ctdns serve` reloads its
//! configuration on SIGHUP by building a new [`Pool`](super::pool::Pool) and swapping it in
//! here.
//!
//! Each query takes a reference to the upstream in force when it starts and keeps it until
//! it finishes: queries in flight finish on the old upstream, queries started after
//! [`SwappableTransport::swap`] use the new one. The old upstream (and with it its transports
//! and their connections, which close on drop) is dropped when the last query holding it
//! finishes, so no connection verified under a replaced configuration (pins, roots, log
//! list) carries a query started after the swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{BoxFuture, DialStats, Transport, UpstreamError};

/// One upstream in force, with the number of the swap that installed it.
#[derive(Debug)]
struct Current {
    upstream: Arc<dyn Transport>,
    generation: u64,
}

/// A [`Transport`] forwarding to an upstream that [`SwappableTransport::swap`] replaces
/// atomically.
#[derive(Debug)]
pub struct SwappableTransport {
    current: ArcSwap<Current>,
    swaps: AtomicU64,
}

impl SwappableTransport {
    /// Forward to `upstream` until the first swap (generation 0).
    pub fn new(upstream: Arc<dyn Transport>) -> Self {
        SwappableTransport {
            current: ArcSwap::from_pointee(Current {
                upstream,
                generation: 0,
            }),
            swaps: AtomicU64::new(0),
        }
    }

    /// Forward every query started from now on to `upstream`; returns the generation it
    /// got (1 for the first swap). Queries already started finish on the upstream they
    /// started with; the previous upstream is dropped when the last of them finishes.
    pub fn swap(&self, upstream: Arc<dyn Transport>) -> u64 {
        let generation = self.swaps.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        self.current.store(Arc::new(Current {
            upstream,
            generation,
        }));
        generation
    }

    /// The upstream in force.
    pub fn current(&self) -> Arc<dyn Transport> {
        Arc::clone(&self.current.load().upstream)
    }

    /// How many swaps installed the upstream in force (0: the one given to `new`).
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }
}

impl Transport for SwappableTransport {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        // Owned by the query's future: the upstream it started with outlives a swap.
        let current = self.current.load_full();
        Box::pin(async move { current.upstream.query(query).await })
    }

    fn name(&self) -> &str {
        "reloadable"
    }

    fn dial_stats(&self) -> DialStats {
        self.current.load().upstream.dial_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Weak;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// Answers every query with its own tag after `release` is notified (or at once).
    #[derive(Debug)]
    struct Tagged {
        tag: u8,
        release: Option<Arc<Notify>>,
        dials: u64,
    }

    impl Transport for Tagged {
        fn query<'a>(&'a self, _q: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
            Box::pin(async move {
                if let Some(r) = &self.release {
                    r.notified().await;
                }
                Ok(vec![self.tag])
            })
        }
        fn name(&self) -> &str {
            "tagged"
        }
        fn dial_stats(&self) -> DialStats {
            DialStats {
                dials: self.dials,
                ..DialStats::default()
            }
        }
    }

    fn tagged(tag: u8, release: Option<Arc<Notify>>) -> Arc<dyn Transport> {
        Arc::new(Tagged {
            tag,
            release,
            dials: u64::from(tag),
        })
    }

    #[tokio::test]
    async fn in_flight_queries_finish_on_the_old_upstream_new_ones_use_the_new() {
        let release = Arc::new(Notify::new());
        let old = tagged(1, Some(Arc::clone(&release)));
        let weak_old: Weak<dyn Transport> = Arc::downgrade(&old);
        let swap = Arc::new(SwappableTransport::new(old));
        assert_eq!(swap.generation(), 0);
        assert_eq!(swap.dial_stats().dials, 1);

        let s = Arc::clone(&swap);
        let in_flight = tokio::spawn(async move { s.query(b"q").await.unwrap() });
        // Let the query start (and take the old upstream) before swapping.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(swap.swap(tagged(2, None)), 1);
        assert_eq!(swap.generation(), 1);
        assert_eq!(swap.dial_stats().dials, 2);

        // New queries use the new upstream at once...
        assert_eq!(swap.query(b"q").await.unwrap(), vec![2]);
        // ...while the old one is alive only for the query still in flight.
        assert!(
            weak_old.upgrade().is_some(),
            "dropped under a query in flight"
        );
        release.notify_one();
        assert_eq!(in_flight.await.unwrap(), vec![1]);
        assert!(
            weak_old.upgrade().is_none(),
            "the old upstream outlived its last query"
        );
    }

    #[tokio::test]
    async fn an_idle_old_upstream_is_dropped_by_the_swap() {
        let old = tagged(1, None);
        let weak_old = Arc::downgrade(&old);
        let swap = SwappableTransport::new(old);
        assert_eq!(swap.query(b"q").await.unwrap(), vec![1]);
        swap.swap(tagged(3, None));
        assert!(weak_old.upgrade().is_none());
        assert_eq!(swap.query(b"q").await.unwrap(), vec![3]);
        assert_eq!(swap.current().name(), "tagged");
    }
}
