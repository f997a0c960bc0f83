//! A pool of upstream transports with health tracking, dial backoff and failover, itself a
//! [`Transport`].
//!
//! Each query gets one overall deadline (`query_timeout`). Upstreams are tried one after the
//! other, each attempt limited to `per_attempt_timeout` (and to what is left of the overall
//! deadline; the last candidate gets all that is left): healthy upstreams first, in
//! configuration order, then those currently marked down, soonest-to-recover first, except
//! those in dial backoff (below), which are skipped without being dialed.
//!
//! An attempt fails over to the next upstream on anything that blames the upstream: connect
//! failure, TLS failure (which includes every certificate refusal by the verifier), timeout,
//! connection loss, or an unusable response. An upstream that lost the connection mid-query is
//! tried once more at the end of the line (its transport reconnects). A query that is itself
//! malformed is returned at once: no other upstream would accept it either. If every attempt
//! fails, the last error is returned (the front end answers SERVFAIL); if every upstream was
//! skipped, [`UpstreamError::BackingOff`] is returned at once.
//!
//! # Two kinds of failure
//! - A failed **dial** (TCP connect refused, TLS handshake failed, certificate refused by the
//!   verifier, no session within the connect timeout, DoH without ALPN `h2`: the failures
//!   `upstream::dial` shares) puts the upstream in **dial backoff**: it is not dialed again
//!   for `backoff_initial` (`refusal_backoff_initial` after a certificate refusal), doubling
//!   with each further failed dial up to `backoff_max`, each interval jittered by
//!   ±`backoff_jitter_percent` (never above `backoff_max`). Meanwhile queries skip it (counted
//!   in [`UpstreamHealth::skipped_by_backoff`]) whether or not other upstreams are left, so a
//!   refused resolver costs one handshake per interval, not one per client query. When the
//!   interval has passed, the first query to reach the upstream is its **probe**: it claims
//!   the next interval before dialing, so that queries arriving during the probe skip the
//!   upstream too; at most one dial per upstream per interval. A probe that succeeds (or
//!   gets as far as a connection) ends the backoff; one that fails, or times out, doubles it.
//!   Queries of one burst that shared one failed dial count as one failure.
//! - Any other failure of an upstream (a live connection lost, a timeout on a connection,
//!   an unusable answer) only **marks it down** for `backoff_initial * 2^(failures - 1)`,
//!   capped at `backoff_max`: it is tried after the healthy upstreams, but it is still
//!   tried, and its transport reconnects at once.
//!
//! A success clears both. [`Pool::reset_backoff`] clears them by hand (for a future reload
//! or configuration change).
//!
//! When every upstream is in dial backoff because its certificate chain was refused (rule
//! `chain`), the network is likely intercepting TLS (captive portal, proxy): that is logged
//! once as a WARN, and again only after some upstream succeeded in between.
//!
//! # Selection strategy
//! Among the upstreams that are up (neither marked down nor in dial backoff), the
//! [`Strategy`] picks the order; those that are down always come after them, as above, so
//! every strategy keeps the health tracking, backoff and failover described here.
//! - [`Strategy::Ordered`] (the default): configuration order.
//! - [`Strategy::RoundRobin`]: configuration order rotated by one with each query.
//! - [`Strategy::Fastest`]: by a decaying latency estimate per upstream, an exponentially
//!   weighted moving average (weight [`EWMA_WEIGHT`]) of the duration of successful
//!   attempts; a failed attempt counts as one that took `per_attempt_timeout`, so failures
//!   push an upstream back. An upstream never measured comes first, so that every one gets
//!   an estimate. One query in [`PoolOptions::probe_every`], and any query while some
//!   upstream's estimate is older than [`PoolOptions::probe_after`], goes first to the
//!   upstream whose estimate is the oldest instead, so that a slow upstream that got
//!   faster is noticed.
//!
//! The estimate is kept whatever the strategy ([`UpstreamStats::latency_estimate`]).
//!
//! DNS answers are returned as they come, whatever their RCODE.

use std::collections::VecDeque;
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::deadline::Deadline;
use super::dial;
use super::{BoxFuture, DialStats, Transport, UpstreamError};
use crate::events;
use crate::metrics::histogram::{AtomicHistogram, HistogramSnapshot};

/// Weight of the newest sample in the latency estimate of [`Strategy::Fastest`].
pub const EWMA_WEIGHT: f64 = 0.3;

/// How a [`Pool`] orders the upstreams that are up (module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Configuration order: the first upstream that is up gets every query.
    #[default]
    Ordered,
    /// The upstream with the lowest latency estimate first, with occasional probes of the
    /// others.
    Fastest,
    /// Each query starts one upstream further down the configuration order.
    RoundRobin,
}

impl Strategy {
    /// The configuration value: `ordered`, `fastest`, `round_robin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Ordered => "ordered",
            Strategy::Fastest => "fastest",
            Strategy::RoundRobin => "round_robin",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is not one of `ordered`, `fastest`, `round_robin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?} (expected ordered, fastest or round_robin)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ordered" => Ok(Strategy::Ordered),
            "fastest" => Ok(Strategy::Fastest),
            "round_robin" => Ok(Strategy::RoundRobin),
            other => Err(UnknownStrategy(other.to_owned())),
        }
    }
}

/// Tuning of a [`Pool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// How the upstreams that are up are ordered.
    pub strategy: Strategy,
    /// [`Strategy::Fastest`]: one query in this many probes the upstream with the oldest
    /// estimate first (0: never on count alone).
    pub probe_every: u32,
    /// [`Strategy::Fastest`]: an estimate older than this gets its upstream probed by the
    /// next query.
    pub probe_after: Duration,
    /// Overall deadline of one query across all attempts.
    pub query_timeout: Duration,
    /// Limit of one attempt on one upstream.
    pub per_attempt_timeout: Duration,
    /// How long an upstream is marked down after its first consecutive failure, and how
    /// long it is not dialed after its first failed dial (other than a certificate refusal).
    pub backoff_initial: Duration,
    /// How long an upstream is not dialed after its first certificate refusal.
    pub refusal_backoff_initial: Duration,
    /// Longest an upstream is marked down or not dialed.
    pub backoff_max: Duration,
    /// Dial backoff intervals are spread by up to this percentage either way (clamped to
    /// 100; 0 for none), so that upstreams and ctdns instances do not probe in step.
    pub backoff_jitter_percent: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            query_timeout: Duration::from_secs(3),
            per_attempt_timeout: Duration::from_millis(1500),
            backoff_initial: Duration::from_secs(1),
            refusal_backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            backoff_jitter_percent: 20,
            strategy: Strategy::Ordered,
            probe_every: 20,
            probe_after: Duration::from_secs(60),
        }
    }
}

/// A snapshot of one upstream's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// The transport's name.
    pub name: String,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// How much longer the upstream is marked down; `None` if it is not.
    pub down_for: Option<Duration>,
    /// The text of the last failure since the last success.
    pub last_error: Option<String>,
    /// Failed dials (connect failures, certificate refusals...) since the last success,
    /// counting a dial shared by a burst of queries once.
    pub dial_failures: u32,
    /// How much longer the upstream is not dialed (dial backoff); `None` if it may be.
    pub backoff_for: Option<Duration>,
    /// The rule of the certificate refusal that caused the current dial backoff, e.g.
    /// `chain` or `issuer-pin`; `None` if it was not a certificate refusal.
    pub refusal_rule: Option<&'static str>,
    /// Dials made by the upstream's transport, ever ([`Transport::dial_stats`]).
    pub dials: u64,
    /// Certificate refusals among them, ever.
    pub refusals: u64,
    /// Times a query skipped this upstream because of its dial backoff, ever.
    pub skipped_by_backoff: u64,
}

/// How one attempt on one upstream ended, for [`UpstreamStats::outcomes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered (whatever the RCODE).
    Ok,
    /// No answer within the attempt's deadline, or no TLS session within the connect
    /// timeout.
    Timeout,
    /// The verifier refused the upstream's certificate.
    Refused,
    /// Any other failure that blames the upstream (connect, TLS, connection lost, bad
    /// response, HTTP).
    Error,
    /// The query itself could not be sent (malformed, too large): not the upstream's fault.
    BadQuery,
}

impl AttemptOutcome {
    /// Every outcome, in the order of [`UpstreamStats::outcomes`].
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::Ok,
        AttemptOutcome::Timeout,
        AttemptOutcome::Refused,
        AttemptOutcome::Error,
        AttemptOutcome::BadQuery,
    ];

    /// The label value: `ok`, `timeout`, `refused`, `error`, `bad_query`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Refused => "refused",
            AttemptOutcome::Error => "error",
            AttemptOutcome::BadQuery => "bad_query",
        }
    }

    fn of(error: &UpstreamError) -> Self {
        if error.refusal().is_some() {
            AttemptOutcome::Refused
        } else if matches!(
            error,
            UpstreamError::Timeout | UpstreamError::ConnectTimeout { .. }
        ) {
            AttemptOutcome::Timeout
        } else if blames_upstream(error) {
            AttemptOutcome::Error
        } else {
            AttemptOutcome::BadQuery
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the pool counted of one upstream, ever (for the metrics endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamStats {
    /// The transport's name (its configured label, e.g. `dot://192.0.2.1:853`).
    pub name: String,
    /// Attempts by outcome, in the order of [`AttemptOutcome::ALL`].
    pub outcomes: [(AttemptOutcome, u64); 5],
    /// Duration of the attempts, whatever their outcome.
    pub duration: HistogramSnapshot,
    /// `false` from a failure until the next success (starts `true`); each change is
    /// logged once as an `upstream_down` / `upstream_up` event.
    pub up: bool,
    /// Certificate refusals by rule, counted once per refused handshake the pool recorded
    /// (queries that shared one failed dial count once).
    pub refusals_by_rule: Vec<(&'static str, u64)>,
    /// The decaying latency estimate ([module docs](self)); `None` before the first attempt
    /// that counted.
    pub latency_estimate: Option<Duration>,
}

/// A decaying estimate of one upstream's answer latency.
#[derive(Debug, Default, Clone, Copy)]
struct Latency {
    /// The estimate, in seconds.
    seconds: Option<f64>,
    /// When it last changed.
    updated: Option<Instant>,
}

impl Latency {
    fn observe(&mut self, sample: Duration) {
        let sample = sample.as_secs_f64();
        self.seconds = Some(match self.seconds {
            Some(old) => EWMA_WEIGHT * sample + (1.0 - EWMA_WEIGHT) * old,
            None => sample,
        });
        self.updated = Some(Instant::now());
    }

    fn estimate(&self) -> Option<Duration> {
        self.seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
    }
}

/// Per-member counters that only grow.
#[derive(Debug, Default)]
struct Counters {
    outcomes: [AtomicU64; 5],
    duration: AtomicHistogram,
    refusals: Mutex<Vec<(&'static str, u64)>>,
}

impl Counters {
    fn attempt(&self, outcome: AttemptOutcome, elapsed: Duration) {
        if let Some(c) = self.outcomes.get(outcome.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.duration.observe(elapsed);
    }

    fn refusal(&self, rule: &'static str) {
        let mut r = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        match r.iter_mut().find(|(name, _)| *name == rule) {
            Some((_, n)) => *n += 1,
            None => r.push((rule, 1)),
        }
    }
}

/// Health of one member. Counters that must survive a success live in [`Member`].
#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    down_until: Option<Instant>,
    last_error: Option<String>,
    /// Failed dials since the last success (dial backoff when non-zero).
    dial_failures: u32,
    /// No dial before this.
    retry_at: Option<Instant>,
    /// Whether the current dial backoff started with a certificate refusal.
    refused: bool,
    /// The refusal rule of the last failed dial.
    refusal_rule: Option<&'static str>,
    /// Bumped whenever the dial state changes, so that the failures of one shared dial
    /// (a burst that waited for it) escalate the backoff once.
    epoch: u64,
}

/// What a query holds while it tries one member.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    /// [`Health::epoch`] when the attempt was admitted.
    epoch: u64,
    /// Whether this attempt is the probe of a member in dial backoff.
    probe: bool,
}

/// Whether a query may try a member now.
enum Admission {
    Try(Ticket),
    Skip { retry_in: Duration },
}

#[derive(Debug)]
struct Member {
    transport: Arc<dyn Transport>,
    health: Mutex<Health>,
    skipped: AtomicU64,
    counters: Counters,
    /// Set by a failure, cleared by a success: the state `upstream_down` / `upstream_up`
    /// events report changes of.
    down: AtomicBool,
    latency: Mutex<Latency>,
}

impl Member {
    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn latency(&self) -> MutexGuard<'_, Latency> {
        self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Upstream transports behind one [`Transport`], with health tracking and failover.
#[derive(Debug)]
pub struct Pool {
    members: Vec<Member>,
    opts: PoolOptions,
    /// Set once the "TLS is likely intercepted" warning was logged; cleared by a success.
    interception_warned: AtomicBool,
    /// Queries ordered so far (round robin's rotation, fastest's probe count).
    queries: AtomicU64,
}

impl Pool {
    /// A pool over `upstreams`, in order of preference.
    pub fn new(upstreams: Vec<Arc<dyn Transport>>, opts: PoolOptions) -> Self {
        Pool {
            members: upstreams
                .into_iter()
                .map(|transport| Member {
                    transport,
                    health: Mutex::new(Health::default()),
                    skipped: AtomicU64::new(0),
                    counters: Counters::default(),
                    down: AtomicBool::new(false),
                    latency: Mutex::new(Latency::default()),
                })
                .collect(),
            opts,
            interception_warned: AtomicBool::new(false),
            queries: AtomicU64::new(0),
        }
    }

    /// The health of every upstream, in configuration order.
    pub fn health(&self) -> Vec<UpstreamHealth> {
        let now = Instant::now();
        let remaining = |at: Option<Instant>| at.filter(|&at| at > now).map(|at| at - now);
        self.members
            .iter()
            .map(|m| {
                let stats = m.transport.dial_stats();
                let h = m.health();
                UpstreamHealth {
                    name: m.transport.name().to_owned(),
                    consecutive_failures: h.consecutive_failures,
                    down_for: remaining(h.down_until),
                    last_error: h.last_error.clone(),
                    dial_failures: h.dial_failures,
                    backoff_for: if h.dial_failures > 0 {
                        remaining(h.retry_at)
                    } else {
                        None
                    },
                    refusal_rule: h.refusal_rule,
                    dials: stats.dials,
                    refusals: stats.refusals,
                    skipped_by_backoff: m.skipped.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// What the pool counted of every upstream, in configuration order.
    pub fn stats(&self) -> Vec<UpstreamStats> {
        self.members
            .iter()
            .map(|m| {
                let c = &m.counters;
                let count = |o: AttemptOutcome| {
                    c.outcomes
                        .get(o.index())
                        .map_or(0, |n| n.load(Ordering::Relaxed))
                };
                UpstreamStats {
                    name: m.transport.name().to_owned(),
                    outcomes: AttemptOutcome::ALL.map(|o| (o, count(o))),
                    duration: c.duration.snapshot(),
                    up: !m.down.load(Ordering::Relaxed),
                    refusals_by_rule: c
                        .refusals
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone(),
                    latency_estimate: m.latency().estimate(),
                }
            })
            .collect()
    }

    /// Forget the health of upstream `index` (configuration order): its dial backoff ends
    /// and it is no longer marked down, so the next query may dial it. Counters are kept.
    /// Meant for a configuration reload. Returns `false` if there is no such upstream.
    pub fn reset_backoff(&self, index: usize) -> bool {
        let Some(member) = self.members.get(index) else {
            return false;
        };
        let mut h = member.health();
        *h = Health {
            epoch: h.epoch.wrapping_add(1),
            ..Health::default()
        };
        drop(h);
        self.interception_warned.store(false, Ordering::Relaxed);
        true
    }

    /// The configuration index of the upstream named `name` ([`Transport::name`]).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.transport.name() == name)
    }

    /// The strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.opts.strategy
    }

    /// Indices of the members in the order to try them now: those that are up in the
    /// strategy's order, then those that are down, soonest back first.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let n = self.members.len();
        let query = self.queries.fetch_add(1, Ordering::Relaxed);
        let mut preferred: Vec<usize> = (0..n).collect();
        match self.opts.strategy {
            Strategy::Ordered => {}
            Strategy::RoundRobin => {
                if n > 0 {
                    let shift = usize::try_from(query % n as u64).unwrap_or(0);
                    preferred.rotate_left(shift);
                }
            }
            Strategy::Fastest => {
                let latencies: Vec<Latency> = self.members.iter().map(|m| *m.latency()).collect();
                let key = |i: &usize| latencies.get(*i).and_then(|l| l.seconds).unwrap_or(0.0);
                preferred.sort_by(|a, b| key(a).total_cmp(&key(b)));
                let stale = latencies.iter().any(|l| {
                    l.updated.is_some_and(|at| {
                        now.saturating_duration_since(at) >= self.opts.probe_after
                    })
                });
                let counted = self.opts.probe_every > 0
                    && query % u64::from(self.opts.probe_every)
                        == u64::from(self.opts.probe_every) - 1;
                if n > 1 && (stale || counted) {
                    // Probe the upstream with the oldest estimate (never measured: oldest).
                    let oldest = (0..n).min_by_key(|&i| latencies.get(i).and_then(|l| l.updated));
                    if let Some(oldest) = oldest {
                        preferred.retain(|&i| i != oldest);
                        preferred.insert(0, oldest);
                    }
                }
            }
        }
        let back_at = |i: usize| {
            self.members.get(i).and_then(|m| {
                let h = m.health();
                let retry_at = h.retry_at.filter(|_| h.dial_failures > 0);
                h.down_until.max(retry_at).filter(|&at| at > now)
            })
        };
        let mut keyed: Vec<(Option<Instant>, usize)> =
            preferred.into_iter().map(|i| (back_at(i), i)).collect();
        // `None` (up) sorts before any `Some` (down); the sort is stable, so the upstreams
        // that are up keep the strategy's order, and ties among those down too.
        keyed.sort_by_key(|&(at, _)| at);
        keyed.into_iter().map(|(_, i)| i).collect()
    }

    /// Whether a query may try `member` now; claims the probe when its dial backoff is over.
    fn admit(&self, member: &Member) -> Admission {
        let now = Instant::now();
        let mut h = member.health();
        let ticket = Ticket {
            epoch: h.epoch,
            probe: h.dial_failures > 0,
        };
        if !ticket.probe {
            return Admission::Try(ticket);
        }
        if let Some(at) = h.retry_at.filter(|&at| at > now) {
            drop(h);
            member.skipped.fetch_add(1, Ordering::Relaxed);
            return Admission::Skip { retry_in: at - now };
        }
        // This query is the probe. Until it ends, the upstream stays out of reach for the
        // next interval, so that no other query dials it meanwhile.
        let hold = self.dial_interval(h.refused, h.dial_failures.saturating_add(1));
        h.retry_at = now.checked_add(hold);
        debug!(upstream = %member.transport.name(), failed_dials = h.dial_failures,
            "dial backoff over: probing the upstream");
        Admission::Try(ticket)
    }

    /// The jittered dial backoff after `failures` failed dials.
    fn dial_interval(&self, refused: bool, failures: u32) -> Duration {
        let initial = if refused {
            self.opts.refusal_backoff_initial
        } else {
            self.opts.backoff_initial
        };
        let plain = backoff(initial, self.opts.backoff_max, failures);
        let random = std::collections::hash_map::RandomState::new().hash_one(failures);
        jitter(plain, self.opts.backoff_jitter_percent, random).min(self.opts.backoff_max)
    }

    fn record_success(&self, member: &Member) {
        let mut h = member.health();
        if h.consecutive_failures > 0 || h.dial_failures > 0 {
            debug!(upstream = %member.transport.name(), "upstream healthy again");
        }
        *h = Health {
            epoch: h.epoch.wrapping_add(1),
            ..Health::default()
        };
        drop(h);
        self.interception_warned.store(false, Ordering::Relaxed);
        if member.down.swap(false, Ordering::Relaxed) {
            events::upstream_up(member.transport.name());
        }
    }

    fn record_failure(&self, member: &Member, error: &UpstreamError, ticket: Ticket) {
        if !member.down.swap(true, Ordering::Relaxed) {
            events::upstream_down(member.transport.name(), error);
        }
        let now = Instant::now();
        let mut h = member.health();
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.last_error = Some(error.to_string());
        // A probe that timed out may never have got a connection: it counts as a failed dial.
        let dial_failed =
            dial::shared(error) || (ticket.probe && matches!(error, UpstreamError::Timeout));
        if !dial_failed {
            if ticket.probe {
                // The probe got a connection: the dial backoff is over, reconnect at once.
                h.dial_failures = 0;
                h.retry_at = None;
                h.refused = false;
                h.refusal_rule = None;
                h.epoch = h.epoch.wrapping_add(1);
            }
            h.down_until = now.checked_add(backoff(
                self.opts.backoff_initial,
                self.opts.backoff_max,
                h.consecutive_failures,
            ));
            return;
        }
        if h.epoch != ticket.epoch {
            // Another query already recorded this dial (queries that waited for one attempt
            // share its error), or the state moved on: the backoff stands as it is.
            return;
        }
        let rule = error.refusal().map(|r| r.rule());
        if let Some(rule) = rule {
            member.counters.refusal(rule);
        }
        h.epoch = h.epoch.wrapping_add(1);
        h.dial_failures = h.dial_failures.saturating_add(1);
        if h.dial_failures == 1 {
            h.refused = rule.is_some();
        }
        h.refusal_rule = rule;
        let wait = self.dial_interval(h.refused, h.dial_failures);
        h.retry_at = now.checked_add(wait);
        h.down_until = h.retry_at;
        let failures = h.dial_failures;
        drop(h);
        warn!(upstream = %member.transport.name(), error = %error, failed_dials = failures,
            "not dialing this upstream again for {wait:?}");
        if rule == Some("chain") {
            self.warn_if_intercepted(error);
        }
    }

    /// Logs once that TLS is likely intercepted, when every upstream is in dial backoff
    /// after a `chain` refusal.
    fn warn_if_intercepted(&self, error: &UpstreamError) {
        let all_chain = self.members.iter().all(|m| {
            let h = m.health();
            h.dial_failures > 0 && h.refusal_rule == Some("chain")
        });
        if all_chain && !self.interception_warned.swap(true, Ordering::Relaxed) {
            let issuer = error
                .refused_certificate()
                .map(|r| r.presented.leaf_issuer.as_str())
                .unwrap_or("-");
            warn!(upstreams = self.members.len(), issuer, last_refusal = %error,
                "every upstream presented a certificate chain that does not lead to a trusted root: \
                 the network is likely intercepting TLS (captive portal or TLS-inspecting proxy)");
        }
    }

    async fn exchange(&self, query: &[u8]) -> Result<Vec<u8>, UpstreamError> {
        if self.members.is_empty() {
            return Err(UpstreamError::NoUpstreams);
        }
        let deadline = Deadline::after(self.opts.query_timeout);
        let mut queue: VecDeque<(usize, bool)> =
            self.order().into_iter().map(|i| (i, false)).collect();
        let mut last_error = None;
        let mut skipped: Option<(usize, Duration)> = None;
        while let Some((index, retried)) = queue.pop_front() {
            if deadline.is_expired() {
                break;
            }
            let Some(member) = self.members.get(index) else {
                continue;
            };
            let ticket = match self.admit(member) {
                Admission::Try(ticket) => ticket,
                Admission::Skip { retry_in } => {
                    skipped = Some(match skipped {
                        Some((n, soonest)) => (n + 1, soonest.min(retry_in)),
                        None => (1, retry_in),
                    });
                    continue;
                }
            };
            let name = member.transport.name();
            // The last candidate gets all the time left.
            let attempt = if queue.is_empty() {
                deadline
            } else {
                deadline.min_after(self.opts.per_attempt_timeout)
            };
            let started = Instant::now();
            let result = attempt.run(member.transport.query(query)).await;
            let elapsed = started.elapsed();
            let error = match result {
                Ok(Ok(response)) => {
                    member.counters.attempt(AttemptOutcome::Ok, elapsed);
                    member.latency().observe(elapsed);
                    self.record_success(member);
                    return Ok(response);
                }
                Ok(Err(e)) if !blames_upstream(&e) => {
                    member.counters.attempt(AttemptOutcome::BadQuery, elapsed);
                    return Err(e);
                }
                Ok(Err(e)) => e,
                Err(_) => UpstreamError::Timeout,
            };
            member.counters.attempt(AttemptOutcome::of(&error), elapsed);
            member
                .latency()
                .observe(elapsed.max(self.opts.per_attempt_timeout));
            self.record_failure(member, &error, ticket);
            match &error {
                UpstreamError::Tls { .. } | UpstreamError::Refused { .. } => {
                    warn!(upstream = %name, error = %error, "upstream refused: TLS handshake failed; trying the next upstream");
                }
                _ => {
                    warn!(upstream = %name, error = %error, "upstream failed; trying the next upstream");
                }
            }
            if matches!(error, UpstreamError::ConnectionLost(_)) && !retried {
                queue.push_back((index, true));
            }
            last_error = Some(error);
        }
        let error = match (last_error, skipped) {
            (Some(error), _) => error,
            (None, Some((upstreams, retry_in))) => {
                debug!(
                    upstreams,
                    ?retry_in,
                    "every upstream is in dial backoff; not dialing"
                );
                return Err(UpstreamError::BackingOff {
                    upstreams,
                    retry_in,
                });
            }
            (None, None) => UpstreamError::Timeout,
        };
        warn!(error = %error, "all upstreams failed");
        Err(error)
    }
}

impl Transport for Pool {
    fn query<'a>(&'a self, query: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
        Box::pin(self.exchange(query))
    }

    fn name(&self) -> &str {
        "pool"
    }

    fn dial_stats(&self) -> DialStats {
        self.members.iter().map(|m| m.transport.dial_stats()).fold(
            DialStats::default(),
            |sum, s| DialStats {
                dials: sum.dials.saturating_add(s.dials),
                failures: sum.failures.saturating_add(s.failures),
                refusals: sum.refusals.saturating_add(s.refusals),
            },
        )
    }
}

/// Whether `error` says something about the upstream (so another one may do better), as
/// opposed to the query itself being unusable.
fn blames_upstream(error: &UpstreamError) -> bool {
    !matches!(
        error,
        UpstreamError::MalformedQuery(_) | UpstreamError::NoUpstreams
    )
}

/// How long to mark an upstream down after `failures` consecutive failures.
fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    initial.saturating_mul(1u32 << doublings).min(max)
}

/// `interval` scaled by a factor between `1 - percent/100` and `1 + percent/100`, picked
/// by `random`.
fn jitter(interval: Duration, percent: u32, random: u64) -> Duration {
    let percent = u128::from(percent.min(100));
    let span = 2 * percent + 1;
    let factor = 100 - percent + u128::from(random) % span;
    let nanos = interval.as_nanos().saturating_mul(factor) / 100;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A transport with scripted results that counts its calls.
    #[derive(Debug)]
    struct Scripted {
        name: String,
        calls: AtomicUsize,
        results: Mutex<VecDeque<Result<Vec<u8>, UpstreamError>>>,
        hang: bool,
        delay: Duration,
    }

    impl Scripted {
        fn new(name: &str, results: Vec<Result<Vec<u8>, UpstreamError>>) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.into(),
                calls: AtomicUsize::new(0),
                results: Mutex::new(results.into()),
                hang: false,
                delay: Duration::ZERO,
            })
        }

        fn hanging(name: &str) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.into(),
                calls: AtomicUsize::new(0),
                results: Mutex::new(VecDeque::new()),
                hang: true,
                delay: Duration::ZERO,
            })
        }

        fn slow(name: &str, delay: Duration, result: Vec<u8>) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.into(),
                calls: AtomicUsize::new(0),
                results: Mutex::new(VecDeque::from([Ok(result)])),
                hang: false,
                delay,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Transport for Scripted {
        fn query<'a>(&'a self, _: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.results.lock().unwrap().pop_front();
            let hang = self.hang;
            let delay = self.delay;
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(delay).await;
                next.unwrap_or(Err(UpstreamError::ConnectionLost("script ended".into())))
            })
        }

        fn name(&self) -> &str {
            &self.name
        }
    }

    fn lost() -> UpstreamError {
        UpstreamError::ConnectionLost("test".into())
    }

    fn pool(members: &[Arc<Scripted>], opts: PoolOptions) -> Pool {
        Pool::new(
            members
                .iter()
                .map(|m| Arc::clone(m) as Arc<dyn Transport>)
                .collect(),
            opts,
        )
    }

    #[tokio::test]
    async fn fails_over_and_marks_down() {
        let a = Scripted::new(
            "a",
            vec![Err(UpstreamError::Connect {
                addr: "127.0.0.1:1".parse().unwrap(),
                source: Arc::new(std::io::ErrorKind::ConnectionRefused.into()),
            })],
        );
        let b = Scripted::new("b", vec![Ok(vec![1]), Ok(vec![2])]);
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], PoolOptions::default());
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        let health = p.health();
        assert_eq!(health[0].consecutive_failures, 1);
        assert!(health[0].down_for.is_some());
        assert!(health[0].last_error.as_deref().unwrap().contains("refused"));
        assert_eq!(health[1].consecutive_failures, 0);
        // `a` is down: `b` is asked first and answers.
        assert_eq!(p.query(b"q").await.unwrap(), vec![2]);
        assert_eq!(a.calls(), 1);
        assert_eq!(b.calls(), 2);
    }

    #[tokio::test]
    async fn returns_last_error_when_all_fail() {
        let a = Scripted::new("a", vec![Err(UpstreamError::Timeout)]);
        let b = Scripted::new(
            "b",
            vec![Err(UpstreamError::Doh(
                crate::upstream::doh::DohError::Status { status: 503 },
            ))],
        );
        let p = pool(&[a, b], PoolOptions::default());
        let err = p.query(b"q").await.unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::Doh(crate::upstream::doh::DohError::Status { status: 503 })
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn malformed_query_is_not_retried() {
        let a = Scripted::new(
            "a",
            vec![Err(UpstreamError::MalformedQuery(
                WireError::QuestionCount(0),
            ))],
        );
        let b = Scripted::new("b", vec![Ok(vec![1])]);
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], PoolOptions::default());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::MalformedQuery(WireError::QuestionCount(0)))
        ));
        assert_eq!(b.calls(), 0);
        assert_eq!(p.health()[0].consecutive_failures, 0);
    }

    #[tokio::test]
    async fn connection_loss_retries_the_same_upstream_once() {
        let a = Scripted::new("a", vec![Err(lost()), Ok(vec![7])]);
        let p = pool(&[Arc::clone(&a)], PoolOptions::default());
        assert_eq!(p.query(b"q").await.unwrap(), vec![7]);
        assert_eq!(a.calls(), 2);
        let a = Scripted::new("a", vec![Err(lost()), Err(lost()), Ok(vec![7])]);
        let p = pool(&[Arc::clone(&a)], PoolOptions::default());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::ConnectionLost(_))
        ));
        assert_eq!(a.calls(), 2);
    }

    #[tokio::test]
    async fn hanging_upstream_times_out_per_attempt() {
        let a = Scripted::hanging("a");
        let b = Scripted::new("b", vec![Ok(vec![3])]);
        let opts = PoolOptions {
            per_attempt_timeout: Duration::from_millis(30),
            ..PoolOptions::default()
        };
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], opts);
        assert_eq!(p.query(b"q").await.unwrap(), vec![3]);
        let h = p.health();
        assert_eq!(h[0].last_error.as_deref(), Some("timed out"));
    }

    #[tokio::test]
    async fn last_candidate_gets_the_remaining_time() {
        let a = Scripted::slow("a", Duration::from_millis(100), vec![4]);
        let opts = PoolOptions {
            per_attempt_timeout: Duration::from_millis(10),
            query_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        };
        let p = pool(&[Arc::clone(&a)], opts);
        assert_eq!(p.query(b"q").await.unwrap(), vec![4]);
        assert_eq!(a.calls(), 1);
    }

    #[tokio::test]
    async fn empty_pool_says_so() {
        let p = Pool::new(Vec::new(), PoolOptions::default());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::NoUpstreams)
        ));
    }

    #[tokio::test]
    async fn success_resets_health() {
        let a = Scripted::new("a", vec![Err(UpstreamError::Timeout), Ok(vec![1])]);
        let b = Scripted::new("b", vec![Err(UpstreamError::Timeout)]);
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], PoolOptions::default());
        // a fails, b fails: both down, last error returned.
        assert!(p.query(b"q").await.is_err());
        // Both down: a recovers first (marked down earlier), so it is asked first.
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        let h = p.health();
        assert_eq!(h[0].consecutive_failures, 0);
        assert_eq!(h[0].down_for, None);
        assert_eq!(h[1].consecutive_failures, 1);
    }

    fn refused(rule_chain: bool) -> UpstreamError {
        use crate::tls::pins::SpkiPin;
        use crate::tls::verifier::Refusal;
        let refusal = if rule_chain {
            Refusal::Chain(webpki::Error::UnknownIssuer)
        } else {
            Refusal::IssuerNotPinned {
                chain: vec![SpkiPin([1; 32])],
                pins: vec![SpkiPin([2; 32])],
            }
        };
        UpstreamError::Refused {
            upstream: "127.0.0.1:853".parse().unwrap(),
            refusal: Arc::new(crate::tls::presented::RefusedCertificate {
                refusal,
                presented: crate::tls::presented::Presented::describe(b"x", &[], &[]),
            }),
        }
    }

    fn connect_refused() -> UpstreamError {
        UpstreamError::Connect {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: Arc::new(std::io::ErrorKind::ConnectionRefused.into()),
        }
    }

    /// Short, unjittered backoff: 40 ms after a connect failure, 80 ms after a refusal.
    fn quick() -> PoolOptions {
        PoolOptions {
            backoff_initial: Duration::from_millis(40),
            refusal_backoff_initial: Duration::from_millis(80),
            backoff_max: Duration::from_millis(400),
            backoff_jitter_percent: 0,
            ..PoolOptions::default()
        }
    }

    #[tokio::test]
    async fn a_refused_upstream_alone_is_not_dialed_during_its_backoff() {
        let a = Scripted::new("a", vec![Err(refused(false)), Err(refused(false))]);
        let p = pool(&[Arc::clone(&a)], quick());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::Refused { .. })
        ));
        for _ in 0..100 {
            match p.query(b"q").await {
                Err(UpstreamError::BackingOff {
                    upstreams: 1,
                    retry_in,
                }) => {
                    assert!(retry_in <= Duration::from_millis(80), "{retry_in:?}");
                }
                other => panic!("expected BackingOff, got {other:?}"),
            }
        }
        assert_eq!(a.calls(), 1, "one dial for 101 queries");
        let h = &p.health()[0];
        assert_eq!(h.dial_failures, 1);
        assert_eq!(h.refusal_rule, Some("issuer-pin"));
        assert_eq!(h.skipped_by_backoff, 100);
        assert!(h
            .backoff_for
            .is_some_and(|d| d <= Duration::from_millis(80)));
        // After the interval, one probe: refused again, so the interval doubles.
        tokio::time::sleep(Duration::from_millis(90)).await;
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::Refused { .. })
        ));
        assert_eq!(a.calls(), 2);
        let h = &p.health()[0];
        assert_eq!(h.dial_failures, 2);
        assert!(h
            .backoff_for
            .is_some_and(|d| d > Duration::from_millis(80) && d <= Duration::from_millis(160)));
    }

    #[tokio::test]
    async fn a_backed_off_upstream_is_skipped_for_the_next_one() {
        let a = Scripted::new("a", vec![Err(connect_refused())]);
        let b = Scripted::new("b", (0..10).map(|i| Ok(vec![i])).collect());
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], quick());
        for i in 0..10 {
            assert_eq!(p.query(b"q").await.unwrap(), vec![i]);
        }
        assert_eq!(a.calls(), 1);
        // `a` sorts last while backing off, so `b` answers before `a` is even reached.
        assert_eq!(p.health()[0].skipped_by_backoff, 0);
        assert_eq!(p.health()[0].refusal_rule, None);
        assert_eq!(p.health()[0].dial_failures, 1);
        // When `b` fails too, `a` is reached and skipped, not dialed.
        assert!(p.query(b"q").await.is_err());
        assert_eq!(a.calls(), 1);
        assert_eq!(p.health()[0].skipped_by_backoff, 1);
    }

    #[tokio::test]
    async fn one_probe_per_interval_however_many_queries_wait() {
        // The probe is slow (it fails after 50 ms); 20 queries arrive meanwhile.
        let a = Arc::new(Scripted {
            name: "a".into(),
            calls: AtomicUsize::new(0),
            results: Mutex::new(VecDeque::from([
                Err(connect_refused()),
                Err(connect_refused()),
            ])),
            hang: false,
            delay: Duration::from_millis(50),
        });
        let p = Arc::new(pool(&[Arc::clone(&a)], quick()));
        assert!(p.query(b"q").await.is_err());
        assert_eq!(a.calls(), 1);
        tokio::time::sleep(Duration::from_millis(45)).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let p = Arc::clone(&p);
            tasks.spawn(async move { p.query(b"q").await });
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut backing_off = 0;
        while let Some(joined) = tasks.join_next().await {
            if matches!(joined.unwrap(), Err(UpstreamError::BackingOff { .. })) {
                backing_off += 1;
            }
        }
        assert_eq!(a.calls(), 2, "exactly one probe");
        assert_eq!(backing_off, 19);
        assert_eq!(p.health()[0].dial_failures, 2);
    }

    #[tokio::test]
    async fn a_burst_sharing_one_failed_dial_escalates_once() {
        // Five queries admitted together, all refused (as if they shared one handshake).
        let a = Arc::new(Scripted {
            name: "a".into(),
            calls: AtomicUsize::new(0),
            results: Mutex::new((0..5).map(|_| Err(refused(false))).collect()),
            hang: false,
            delay: Duration::from_millis(20),
        });
        let p = Arc::new(pool(&[Arc::clone(&a)], quick()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let p = Arc::clone(&p);
            tasks.spawn(async move { p.query(b"q").await });
        }
        while let Some(joined) = tasks.join_next().await {
            assert!(matches!(
                joined.unwrap(),
                Err(UpstreamError::Refused { .. })
            ));
        }
        assert_eq!(a.calls(), 5);
        let h = &p.health()[0];
        assert_eq!(h.dial_failures, 1);
        assert_eq!(h.consecutive_failures, 5);
        assert!(h
            .backoff_for
            .is_some_and(|d| d <= Duration::from_millis(80)));
    }

    #[tokio::test]
    async fn a_successful_probe_ends_the_backoff() {
        let a = Scripted::new("a", vec![Err(refused(false)), Ok(vec![9]), Ok(vec![10])]);
        let p = pool(&[Arc::clone(&a)], quick());
        assert!(p.query(b"q").await.is_err());
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::BackingOff { .. })
        ));
        tokio::time::sleep(Duration::from_millis(90)).await;
        assert_eq!(p.query(b"q").await.unwrap(), vec![9]);
        assert_eq!(p.query(b"q").await.unwrap(), vec![10]);
        let h = &p.health()[0];
        assert_eq!(
            (h.dial_failures, h.backoff_for, h.refusal_rule),
            (0, None, None)
        );
        assert_eq!(h.skipped_by_backoff, 1, "counters survive a success");
    }

    #[tokio::test]
    async fn a_lost_live_connection_is_not_backed_off() {
        let a = Scripted::new(
            "a",
            vec![Err(lost()), Err(lost()), Err(lost()), Ok(vec![5])],
        );
        let p = pool(&[Arc::clone(&a)], quick());
        // Lost twice (tried again at the end of the line), then lost, then answered: every
        // query dials, none is skipped.
        assert!(matches!(
            p.query(b"q").await,
            Err(UpstreamError::ConnectionLost(_))
        ));
        assert_eq!(p.query(b"q").await.unwrap(), vec![5]);
        assert_eq!(a.calls(), 4);
        assert_eq!(p.health()[0].skipped_by_backoff, 0);
    }

    #[tokio::test]
    async fn a_probe_that_times_out_doubles_the_backoff() {
        let a = Scripted::new(
            "a",
            vec![Err(connect_refused()), Err(UpstreamError::Timeout)],
        );
        let p = pool(&[Arc::clone(&a)], quick());
        assert!(p.query(b"q").await.is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(p.query(b"q").await, Err(UpstreamError::Timeout)));
        let h = &p.health()[0];
        assert_eq!(h.dial_failures, 2);
        assert!(h.backoff_for.is_some_and(|d| d > Duration::from_millis(40)));
        // A timeout on a working upstream is not a failed dial.
        let b = Scripted::new("b", vec![Err(UpstreamError::Timeout), Ok(vec![1])]);
        let p = pool(&[Arc::clone(&b)], quick());
        assert!(p.query(b"q").await.is_err());
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        assert_eq!(p.health()[0].skipped_by_backoff, 0);
    }

    #[tokio::test]
    async fn reset_backoff_lets_the_next_query_dial() {
        let a = Scripted::new("a", vec![Err(refused(false)), Ok(vec![3])]);
        let b = Scripted::new("b", vec![]);
        let p = pool(&[Arc::clone(&a), b], PoolOptions::default());
        assert!(p.query(b"q").await.is_err());
        assert!(p.health()[0].backoff_for.is_some());
        assert_eq!(p.position("a"), Some(0));
        assert_eq!(p.position("zzz"), None);
        assert!(p.reset_backoff(0));
        assert!(!p.reset_backoff(2));
        let h = &p.health()[0];
        assert_eq!(
            (h.dial_failures, h.backoff_for, h.down_for),
            (0, None, None)
        );
        assert_eq!(p.query(b"q").await.unwrap(), vec![3]);
        assert_eq!(a.calls(), 2);
    }

    #[tokio::test]
    async fn interception_is_reported_once_when_every_upstream_fails_the_chain() {
        let a = Scripted::new(
            "a",
            vec![
                Err(refused(true)),
                Err(refused(true)),
                Ok(vec![1]),
                Err(refused(true)),
            ],
        );
        let b = Scripted::new(
            "b",
            vec![Err(refused(false)), Err(refused(true)), Err(refused(true))],
        );
        let p = pool(&[Arc::clone(&a), Arc::clone(&b)], quick());
        // `a` fails the chain, `b` the pin: not every upstream is intercepted.
        assert!(p.query(b"q").await.is_err());
        assert!(!p.interception_warned.load(Ordering::Relaxed));
        // Both probed again: now both fail the chain.
        tokio::time::sleep(Duration::from_millis(90)).await;
        assert!(p.query(b"q").await.is_err());
        assert_eq!(p.health()[0].refusal_rule, Some("chain"));
        assert_eq!(p.health()[1].refusal_rule, Some("chain"));
        assert!(p.interception_warned.load(Ordering::Relaxed));
        // A success clears the report; the next time all fail the chain it is made again.
        tokio::time::sleep(Duration::from_millis(170)).await;
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        assert!(!p.interception_warned.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(170)).await;
        assert!(p.query(b"q").await.is_err());
        assert!(p.interception_warned.load(Ordering::Relaxed));
    }

    fn with(strategy: Strategy, n: usize) -> (Vec<Arc<Scripted>>, Pool) {
        let members: Vec<_> = (0..n)
            .map(|i| Scripted::new(&format!("u{i}"), vec![]))
            .collect();
        let p = pool(
            &members,
            PoolOptions {
                strategy,
                probe_every: 5,
                ..quick()
            },
        );
        (members, p)
    }

    #[test]
    fn ordered_keeps_configuration_order() {
        let (_, p) = with(Strategy::Ordered, 3);
        for _ in 0..5 {
            assert_eq!(p.order(), vec![0, 1, 2]);
        }
    }

    #[test]
    fn round_robin_rotates_but_keeps_the_down_ones_last() {
        let (_, p) = with(Strategy::RoundRobin, 3);
        assert_eq!(p.order(), vec![0, 1, 2]);
        assert_eq!(p.order(), vec![1, 2, 0]);
        assert_eq!(p.order(), vec![2, 0, 1]);
        let member = &p.members[1];
        p.record_failure(
            member,
            &lost(),
            Ticket {
                epoch: 0,
                probe: false,
            },
        );
        for _ in 0..3 {
            assert_eq!(p.order().last(), Some(&1));
        }
    }

    #[test]
    fn fastest_orders_by_estimate_and_probes_the_oldest() {
        let (_, p) = with(Strategy::Fastest, 3);
        p.members[0].latency().observe(Duration::from_millis(50));
        p.members[1].latency().observe(Duration::from_millis(1));
        // u2 was never measured: it comes first until it is.
        assert_eq!(p.order()[0], 2);
        p.members[2].latency().observe(Duration::from_millis(10));
        let mut firsts = Vec::new();
        for _ in 0..10 {
            firsts.push(p.order()[0]);
        }
        // probe_every = 5: queries 5 and 10 (counting from 1, the first order() above
        // included) probe the oldest estimate, u0.
        assert_eq!(firsts.iter().filter(|&&i| i == 1).count(), 8, "{firsts:?}");
        assert_eq!(firsts.iter().filter(|&&i| i == 0).count(), 2, "{firsts:?}");
        // A failure counts as a per-attempt timeout: the fast one falls behind.
        p.members[1].latency().observe(Duration::from_secs(5));
        assert_ne!(p.order()[0], 1);
    }

    #[test]
    fn estimates_decay_toward_new_samples() {
        let mut l = Latency::default();
        assert_eq!(l.estimate(), None);
        l.observe(Duration::from_millis(100));
        assert_eq!(l.estimate(), Some(Duration::from_millis(100)));
        for _ in 0..30 {
            l.observe(Duration::from_millis(10));
        }
        let e = l.estimate().unwrap();
        assert!(
            e < Duration::from_millis(11) && e >= Duration::from_millis(10),
            "{e:?}"
        );
    }

    #[test]
    fn jitter_stays_within_its_percentage() {
        let s = Duration::from_secs(10);
        assert_eq!(jitter(s, 0, 12345), s);
        assert_eq!(jitter(s, 20, 0), Duration::from_secs(8));
        assert_eq!(jitter(s, 20, 40), Duration::from_secs(12));
        for r in [1u64, 7, 99, u64::MAX, 1 << 40] {
            let j = jitter(s, 20, r);
            assert!(
                j >= Duration::from_secs(8) && j <= Duration::from_secs(12),
                "{j:?}"
            );
        }
        // A percentage above 100 is clamped: never below zero.
        assert_eq!(jitter(s, 500, 0), Duration::ZERO);
    }

    #[test]
    fn dial_intervals_start_higher_after_a_refusal_and_stay_under_the_cap() {
        let p = Pool::new(Vec::new(), PoolOptions::default());
        for failures in 1..40 {
            let refused = p.dial_interval(true, failures);
            let other = p.dial_interval(false, failures);
            assert!(refused <= Duration::from_secs(300) && other <= Duration::from_secs(300));
            if failures == 1 {
                assert!(refused >= Duration::from_secs(4) && refused <= Duration::from_secs(6));
                assert!(
                    other >= Duration::from_millis(800) && other <= Duration::from_millis(1200)
                );
            }
            if failures >= 10 {
                assert!(refused >= Duration::from_secs(240), "{refused:?}");
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_max() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(60), 1), s(1));
        assert_eq!(backoff(s(1), s(60), 2), s(2));
        assert_eq!(backoff(s(1), s(60), 4), s(8));
        assert_eq!(backoff(s(1), s(60), 7), s(60));
        assert_eq!(backoff(s(1), s(60), u32::MAX), s(60));
    }
}

#[cfg(test)]
mod stats_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A transport answering from a script (then failing with a lost connection).
    #[derive(Debug)]
    struct Script {
        results: Mutex<VecDeque<Result<Vec<u8>, UpstreamError>>>,
        calls: AtomicUsize,
    }

    impl Transport for Script {
        fn query<'a>(&'a self, _: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, UpstreamError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.results.lock().unwrap().pop_front();
            Box::pin(async move {
                next.unwrap_or(Err(UpstreamError::ConnectionLost("script ended".into())))
            })
        }
        fn name(&self) -> &str {
            "dot://127.0.0.1:853"
        }
    }

    fn pin_refusal() -> UpstreamError {
        crate::upstream::tests::pin_refusal()
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn events(buf: &Buffer, name: &str) -> Vec<serde_json::Value> {
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["fields"]["event"] == name)
            .collect()
    }

    #[tokio::test]
    async fn outcomes_refusals_and_one_event_per_transition() {
        let buf = Buffer::default();
        let sub = crate::cli::logging::subscriber(
            crate::config::LogFormat::Json,
            tracing_subscriber::EnvFilter::new("info"),
            buf.clone(),
            false,
        );
        let _guard = tracing::subscriber::set_default(sub);
        let script = Arc::new(Script {
            results: Mutex::new(VecDeque::from([
                Ok(vec![1]),
                Err(pin_refusal()),
                Err(UpstreamError::Timeout),
                Err(UpstreamError::MalformedQuery(
                    crate::wire::WireError::TooLong { len: 70_000 },
                )),
                Ok(vec![2]),
                Ok(vec![3]),
            ])),
            calls: AtomicUsize::new(0),
        });
        let opts = PoolOptions {
            backoff_initial: Duration::ZERO,
            refusal_backoff_initial: Duration::ZERO,
            backoff_max: Duration::ZERO,
            ..PoolOptions::default()
        };
        let p = Pool::new(vec![script.clone() as Arc<dyn Transport>], opts);
        assert!(p.stats()[0].up, "up before any attempt");
        assert_eq!(p.query(b"q").await.unwrap(), vec![1]);
        assert!(p.query(b"q").await.is_err()); // refused
        assert!(!p.stats()[0].up);
        assert!(p.query(b"q").await.is_err()); // timeout: still down, no second event
        assert!(p.query(b"q").await.is_err()); // bad query: not the upstream's fault
        assert!(!p.stats()[0].up);
        assert_eq!(p.query(b"q").await.unwrap(), vec![2]);
        assert_eq!(p.query(b"q").await.unwrap(), vec![3]);
        let s = &p.stats()[0];
        assert!(s.up);
        let count = |o: AttemptOutcome| s.outcomes.iter().find(|(x, _)| *x == o).unwrap().1;
        assert_eq!(count(AttemptOutcome::Ok), 3);
        assert_eq!(count(AttemptOutcome::Refused), 1);
        assert_eq!(count(AttemptOutcome::Timeout), 1);
        assert_eq!(count(AttemptOutcome::BadQuery), 1);
        assert_eq!(count(AttemptOutcome::Error), 0);
        assert_eq!(s.duration.count, 6);
        assert_eq!(s.refusals_by_rule, vec![("issuer-pin", 1)]);
        assert_eq!(script.calls.load(Ordering::SeqCst), 6);

        let down = events(&buf, crate::events::UPSTREAM_DOWN);
        assert_eq!(down.len(), 1, "one down event per transition: {down:?}");
        assert_eq!(down[0]["fields"]["upstream"], "dot://127.0.0.1:853");
        assert_eq!(down[0]["fields"]["rule"], "issuer-pin");
        assert_eq!(down[0]["level"], "WARN");
        let up = events(&buf, crate::events::UPSTREAM_UP);
        assert_eq!(up.len(), 1, "one up event per transition: {up:?}");
        assert_eq!(up[0]["fields"]["upstream"], "dot://127.0.0.1:853");
    }
}
