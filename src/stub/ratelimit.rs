//! Response rate limiting for UDP clients (like BIND's RRL): a token bucket per client
//! network (IPv4 /24 and IPv6 /56 by default), so that a spoofed source address cannot turn
//! the stub into a reflector at more than `responses_per_sec` responses a second (after a
//! `burst`).
//!
//! Over the limit, a response is dropped, except every `slip`-th one, which is sent as a
//! minimal truncated response (TC=1, the question echoed, no answer: never larger than the
//! query) so that a real client behind a busy network retries over TCP, where the source
//! address is authenticated by the handshake and no limit applies. `slip = 0` drops all.
//!
//! Memory is bounded: at most `max_clients` buckets are held. When the table is full, the
//! buckets that have been idle long enough to be full again (indistinguishable from a new
//! client) are removed; if none is, an arbitrary bucket is removed, which at worst gives
//! that network a fresh burst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::options::RateLimitOptions;

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: answer.
    Pass,
    /// Over the limit: send nothing.
    Drop,
    /// Over the limit, but the `slip`-th time: send a truncated (TC=1) empty response.
    Slip,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Responses refused since the bucket last had a token (for `slip`).
    over: u32,
}

/// The buckets of every client network seen recently.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    slip: u32,
    max_clients: usize,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    /// A bucket idle this long is full again and may be forgotten.
    refill_time: Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with the rates, burst, slip, table size and prefixes of `opts`.
    pub fn new(opts: &RateLimitOptions) -> Self {
        let rate = f64::from(opts.responses_per_sec.max(1));
        let burst = f64::from(opts.burst.max(1));
        Self {
            rate,
            burst,
            slip: opts.slip,
            max_clients: opts.max_clients.max(1),
            ipv4_prefix: opts.ipv4_prefix.min(32),
            ipv6_prefix: opts.ipv6_prefix.min(128),
            refill_time: Duration::from_secs_f64(burst / rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        // No code under the lock panics; recover rather than propagate poisoning.
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The network `client` is counted in: its address with the host bits cleared.
    pub fn network_of(&self, client: IpAddr) -> IpAddr {
        let prefix = match client {
            IpAddr::V4(_) => self.ipv4_prefix,
            IpAddr::V6(_) => self.ipv6_prefix,
        };
        ipnet::IpNet::new(client, prefix)
            .map(|net| net.network())
            .unwrap_or(client)
    }

    /// Takes a token for one response to `client` at `now`, or says what to do without one.
    pub fn check(&self, client: IpAddr, now: Instant) -> Verdict {
        let key = self.network_of(client);
        let mut buckets = self.lock();
        if !buckets.contains_key(&key) && buckets.len() >= self.max_clients {
            let refill = self.refill_time;
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
            if buckets.len() >= self.max_clients {
                if let Some(victim) = buckets.keys().next().copied() {
                    buckets.remove(&victim);
                }
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            over: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.over = 0;
            return Verdict::Pass;
        }
        bucket.over = bucket.over.saturating_add(1);
        if self.slip > 0 && bucket.over.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Number of client networks tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(rate: u32, burst: u32, slip: u32) -> RateLimitOptions {
        RateLimitOptions {
            responses_per_sec: rate,
            burst,
            slip,
            ..RateLimitOptions::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_rate() {
        let rl = RateLimiter::new(&opts(10, 5, 0));
        let t0 = Instant::now();
        let c = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(rl.check(c, t0), Verdict::Pass);
        }
        assert_eq!(rl.check(c, t0), Verdict::Drop);
        // 10 per second: one token every 100 ms.
        assert_eq!(rl.check(c, t0 + Duration::from_millis(50)), Verdict::Drop);
        assert_eq!(rl.check(c, t0 + Duration::from_millis(160)), Verdict::Pass);
        assert_eq!(rl.check(c, t0 + Duration::from_millis(170)), Verdict::Drop);
        // Idle long enough: a full burst again, never more.
        let later = t0 + Duration::from_secs(60);
        let passed = (0..20)
            .filter(|_| rl.check(c, later) == Verdict::Pass)
            .count();
        assert_eq!(passed, 5);
    }

    #[test]
    fn every_slip_th_refusal_slips() {
        let rl = RateLimiter::new(&opts(1, 1, 2));
        let t0 = Instant::now();
        let c = ip("192.0.2.1");
        assert_eq!(rl.check(c, t0), Verdict::Pass);
        let got: Vec<_> = (0..6).map(|_| rl.check(c, t0)).collect();
        use Verdict::*;
        assert_eq!(got, vec![Drop, Slip, Drop, Slip, Drop, Slip]);
    }

    #[test]
    fn clients_share_a_bucket_per_prefix() {
        let rl = RateLimiter::new(&opts(1, 1, 0));
        let t0 = Instant::now();
        assert_eq!(rl.check(ip("192.0.2.1"), t0), Verdict::Pass);
        assert_eq!(rl.check(ip("192.0.2.200"), t0), Verdict::Drop, "same /24");
        assert_eq!(rl.check(ip("192.0.3.1"), t0), Verdict::Pass, "other /24");
        assert_eq!(rl.check(ip("2001:db8:0:1::1"), t0), Verdict::Pass);
        assert_eq!(
            rl.check(ip("2001:db8:0:ff::2"), t0),
            Verdict::Drop,
            "same /56"
        );
        assert_eq!(
            rl.check(ip("2001:db8:0:100::1"), t0),
            Verdict::Pass,
            "other /56"
        );
        assert_eq!(rl.network_of(ip("192.0.2.77")), ip("192.0.2.0"));
        let per_host = RateLimiter::new(&RateLimitOptions {
            ipv4_prefix: 32,
            ..opts(1, 1, 0)
        });
        assert_eq!(per_host.check(ip("127.0.0.2"), t0), Verdict::Pass);
        assert_eq!(per_host.check(ip("127.0.0.3"), t0), Verdict::Pass);
    }

    #[test]
    fn table_is_bounded_and_idle_buckets_go_first() {
        let rl = RateLimiter::new(&RateLimitOptions {
            max_clients: 100,
            ipv4_prefix: 32,
            ..opts(10, 10, 0)
        });
        let t0 = Instant::now();
        let busy = ip("10.0.0.1");
        for _ in 0..10 {
            assert_eq!(rl.check(busy, t0), Verdict::Pass);
        }
        for i in 0..10_000u32 {
            let [a, b, c, d] = (0x0B00_0000 + i).to_be_bytes();
            rl.check(IpAddr::from([a, b, c, d]), t0);
            assert!(rl.tracked() <= 100);
        }
        // Past the refill time every bucket is idle: a newcomer sweeps them all.
        let later = t0 + Duration::from_secs(2);
        rl.check(ip("12.0.0.1"), later);
        assert_eq!(rl.tracked(), 1);
    }
}
