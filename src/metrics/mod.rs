//! Prometheus metrics of `ctdns serve`: `GET /metrics` on the `[metrics] listen` address
//! (plain HTTP, see [`http`]), in the Prometheus text format 0.0.4.
//!
//! Nearly everything is read at scrape time from counters ctdns keeps anyway (a
//! [`Collector`] over the stub's [`crate::stub::Metrics`], the pool's
//! [`Pool::health`] / [`Pool::stats`], the cache sizes and the log list); the hot path only
//! adds one RCODE counter and one duration histogram per client message, and one outcome
//! counter and one histogram per upstream attempt, all plain atomics. Labels are bounded:
//! `upstream` is the configured label (e.g. `dot://1.1.1.1:853`), never a client address
//! or a query name. README.md ("Metrics") lists every metric.

pub mod histogram;
pub mod http;

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::stub::metrics::RESPONSE_SLOTS;
use crate::stub::{Protocol, QueryHandler};
use crate::upstream::pool::Pool;
use histogram::HistogramSnapshot;

/// The `Content-Type` of the exposition: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Configuration reload outcomes, counted by the reloader and read at scrape time as
/// `ctdns_config_reloads_total{result="success"|"failure"}`. Counts only go up.
#[derive(Debug, Default)]
pub struct ReloadStats {
    ok: std::sync::atomic::AtomicU64,
    error: std::sync::atomic::AtomicU64,
}

impl ReloadStats {
    /// Reloads that swapped in a new configuration.
    pub fn ok(&self) -> u64 {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reloads refused (the running configuration was kept).
    pub fn errors(&self) -> u64 {
        self.error.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Count one reload.
    pub fn record(&self, ok: bool) {
        let counter = if ok { &self.ok } else { &self.error };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What the log list in force says about itself, for `ctdns_log_list_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogListInfo {
    /// The list's version (`-` when it has none).
    pub version: String,
    /// The date of its newest source data (what staleness counts from), Unix ms.
    pub data_timestamp_ms: Option<u64>,
}

impl LogListInfo {
    /// The info of `list`.
    pub fn of(list: &crate::ct::log_list::LogList) -> Self {
        Self {
            version: list.version().unwrap_or("-").to_string(),
            data_timestamp_ms: list.freshness_timestamp_ms(),
        }
    }
}

/// The parts a scrape reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The stub's query handler (its counters and cache).
    pub stub: Arc<QueryHandler>,
    /// The upstream pool.
    pub pool: Arc<Pool>,
    /// The log list in force.
    pub log_list: LogListInfo,
    /// Configuration reload outcomes.
    pub reloads: Arc<ReloadStats>,
}

#[derive(Debug)]
struct Shared {
    sources: Mutex<Sources>,
}

/// The metrics of one `ctdns serve`: cheap to clone, shared with the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

impl Metrics {
    /// Metrics reading `sources` at each scrape.
    pub fn new(sources: Sources) -> Self {
        Self {
            shared: Arc::new(Shared {
                sources: Mutex::new(sources),
            }),
        }
    }

    /// Replace what scrapes read (after a reload rebuilt the pool, the stub or the list).
    pub fn set_sources(&self, sources: Sources) {
        *self
            .shared
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = sources;
    }

    /// The exposition text, as `GET /metrics` returns it.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(self.shared.clone())));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// The collector run at each scrape.
#[derive(Debug)]
struct Scrape(Arc<Shared>);

type Labels = Vec<(&'static str, String)>;

fn counters(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(m)
}

fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        if labels.is_empty() {
            ConstGauge::new(*value).encode(m.encode_family(&Labels::new())?)?;
        } else {
            ConstGauge::new(*value).encode(m.encode_family(labels)?)?;
        }
    }
    Ok(())
}

fn gauges_f64(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn info(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &Labels,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Info)?;
    m.encode_info(labels)
}

fn histograms(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, HistogramSnapshot)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in samples {
        m.encode_family(labels)?.encode_histogram::<Labels>(
            h.sum_seconds,
            h.count,
            &h.buckets,
            None,
        )?;
    }
    Ok(())
}

/// The label value of a header RCODE (slot [`crate::stub::metrics::NO_RESPONSE`]: `none`).
pub fn rcode_name(slot: usize) -> &'static str {
    const NAMES: [&str; RESPONSE_SLOTS] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
        "none",
    ];
    NAMES.get(slot).copied().unwrap_or("none")
}

/// RCODEs exported even at 0, so that `rate()` sees them from the first scrape.
const ALWAYS_RCODES: [usize; 4] = [0, 2, 3, 5];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sources = self
            .0
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stub = sources.stub.metrics();
        let snap = stub.snapshot();

        let mut queries = Vec::new();
        for (proto, name) in [(Protocol::Udp, "udp"), (Protocol::Tcp, "tcp")] {
            for (slot, n) in stub.responses(proto).into_iter().enumerate() {
                if n > 0 || ALWAYS_RCODES.contains(&slot) {
                    let labels = vec![
                        ("transport", name.to_string()),
                        ("rcode", rcode_name(slot).to_string()),
                    ];
                    queries.push((labels, n));
                }
            }
        }
        counters(
            &mut enc,
            "ctdns_queries",
            "Client messages by transport and RCODE of the response sent (rcode=\"none\": no response, e.g. dropped or rate-limited).",
            &queries,
        )?;
        histograms(
            &mut enc,
            "ctdns_query_duration_seconds",
            "Time from a client message received to its response ready to send.",
            &[(Labels::new(), stub.duration())],
        )?;

        let health = sources.pool.health();
        let stats = sources.pool.stats();
        let up = |name: &str| vec![("upstream", name.to_string())];
        let mut outcomes = Vec::new();
        let mut durations = Vec::new();
        let mut refusals = Vec::new();
        let mut ups = Vec::new();
        let mut latency = Vec::new();
        for s in &stats {
            for (outcome, n) in s.outcomes {
                let mut l = up(&s.name);
                l.push(("outcome", outcome.as_str().to_string()));
                outcomes.push((l, n));
            }
            durations.push((up(&s.name), s.duration.clone()));
            for (rule, n) in &s.refusals_by_rule {
                let mut l = up(&s.name);
                l.push(("rule", rule.to_string()));
                refusals.push((l, *n));
            }
            ups.push((up(&s.name), i64::from(s.up)));
            if let Some(estimate) = s.latency_estimate {
                latency.push((up(&s.name), estimate.as_secs_f64()));
            }
        }
        counters(
            &mut enc,
            "ctdns_upstream_queries",
            "Attempts on each upstream by outcome (ok, timeout, refused, error, bad_query).",
            &outcomes,
        )?;
        histograms(
            &mut enc,
            "ctdns_upstream_duration_seconds",
            "Duration of attempts on each upstream, whatever their outcome.",
            &durations,
        )?;
        gauges(
            &mut enc,
            "ctdns_upstream_up",
            "1 while the upstream's last attempt succeeded (or none was made yet), 0 from a failure until the next success.",
            &ups,
        )?;
        gauges_f64(
            &mut enc,
            "ctdns_upstream_latency_estimate_seconds",
            "Decaying (EWMA) estimate of each upstream's answer latency, failures counted as the per-attempt timeout; what strategy = \"fastest\" orders by.",
            &latency,
        )?;
        let handshakes: Vec<_> = health.iter().map(|h| (up(&h.name), h.dials)).collect();
        counters(
            &mut enc,
            "ctdns_upstream_handshakes",
            "Connection attempts (TCP connect, then TLS handshake) to each upstream.",
            &handshakes,
        )?;
        counters(
            &mut enc,
            "ctdns_upstream_refusals",
            "Certificate refusals by upstream and rule (once per refused handshake).",
            &refusals,
        )?;
        let skipped: Vec<_> = health
            .iter()
            .map(|h| (up(&h.name), h.skipped_by_backoff))
            .collect();
        counters(
            &mut enc,
            "ctdns_upstream_skipped_by_backoff",
            "Times a query skipped the upstream because it is in dial backoff.",
            &skipped,
        )?;

        counter(
            &mut enc,
            "ctdns_cache_hits",
            "Queries answered from the cache.",
            snap.cache_hits,
        )?;
        counter(
            &mut enc,
            "ctdns_cache_misses",
            "Queries sent to the upstreams.",
            snap.cache_misses,
        )?;
        counter(
            &mut enc,
            "ctdns_stale_answers",
            "Answers served from expired cache entries (RFC 8767, TTL 30) because the upstreams failed or were slow.",
            snap.stale_answers,
        )?;
        counter(
            &mut enc,
            "ctdns_prefetch",
            "Background refreshes of cache entries asked for in the last tenth of their TTL.",
            snap.prefetches,
        )?;
        let cache = sources.stub.cache();
        let size = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauges(
            &mut enc,
            "ctdns_cache_entries",
            "Entries in the answer cache.",
            &[(Labels::new(), size(cache.len()))],
        )?;
        gauges(
            &mut enc,
            "ctdns_cache_bytes",
            "Bytes the answer cache counts against cache.max_bytes.",
            &[(Labels::new(), size(cache.bytes()))],
        )?;
        counter(
            &mut enc,
            "ctdns_refused_queries",
            "Messages from clients outside `allow`, answered REFUSED or dropped.",
            snap.refused,
        )?;
        counter(
            &mut enc,
            "ctdns_rate_limited",
            "UDP responses dropped or truncated (slipped) by the rate limit.",
            snap.rate_limited.saturating_add(snap.rate_limit_slips),
        )?;

        let list = &sources.log_list;
        if let Some(ts) = list.data_timestamp_ms {
            let age = now_ms().saturating_sub(ts) / 1000;
            gauges(
                &mut enc,
                "ctdns_log_list_age_seconds",
                "Age of the newest source data of the CT log list in force.",
                &[(Labels::new(), i64::try_from(age).unwrap_or(i64::MAX))],
            )?;
        }
        info(
            &mut enc,
            "ctdns_log_list",
            "The CT log list in force.",
            &vec![("version", list.version.clone())],
        )?;
        let reloads = vec![
            (
                vec![("result", "success".to_string())],
                sources.reloads.ok(),
            ),
            (
                vec![("result", "failure".to_string())],
                sources.reloads.errors(),
            ),
        ];
        counters(
            &mut enc,
            "ctdns_config_reloads",
            "Configuration reloads by result.",
            &reloads,
        )?;
        info(
            &mut enc,
            "ctdns_build",
            "The ctdns build.",
            &vec![("version", env!("CARGO_PKG_VERSION").to_string())],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stub::metrics::NO_RESPONSE;

    fn test_sources() -> Sources {
        let opts = crate::stub::StubOptions::default();
        let pool = Arc::new(Pool::new(Vec::new(), Default::default()));
        Sources {
            stub: Arc::new(QueryHandler::new(
                pool.clone(),
                &opts,
                Arc::new(crate::stub::Metrics::default()),
            )),
            pool,
            log_list: LogListInfo {
                version: "test-1".into(),
                data_timestamp_ms: Some(now_ms() - 86_400_000),
            },
            reloads: Arc::new(ReloadStats::default()),
        }
    }

    #[tokio::test]
    async fn render_is_the_text_format_with_every_family() {
        let sources = test_sources();
        sources.reloads.record(false);
        let m = Metrics::new(sources);
        let text = m.render().unwrap();
        for needle in [
            "# TYPE ctdns_queries_total counter\n",
            "ctdns_queries_total{transport=\"udp\",rcode=\"NOERROR\"} 0\n",
            "# TYPE ctdns_query_duration_seconds histogram\n",
            "ctdns_query_duration_seconds_bucket{le=\"+Inf\"} 0\n",
            "ctdns_query_duration_seconds_count 0\n",
            "ctdns_cache_entries 0\n",
            "ctdns_cache_hits_total 0\n",
            "# TYPE ctdns_stale_answers_total counter\n",
            "ctdns_stale_answers_total 0\n",
            "ctdns_prefetch_total 0\n",
            "ctdns_log_list_info{version=\"test-1\"} 1\n",
            "ctdns_config_reloads_total{result=\"success\"} 0\n",
            "ctdns_config_reloads_total{result=\"failure\"} 1\n",
            "ctdns_build_info{version=\"",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("ctdns_log_list_age_seconds "))
            .unwrap();
        let age: i64 = age.parse().unwrap();
        assert!((86_399..=86_500).contains(&age), "{age}");
        assert!(!text.contains("{}"), "no empty label sets:\n{text}");
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(2), "SERVFAIL");
        assert_eq!(rcode_name(5), "REFUSED");
        assert_eq!(rcode_name(NO_RESPONSE), "none");
        assert_eq!(rcode_name(99), "none");
    }
}
