//! The answer cache: bounded, TTL-honouring, keyed by question and the bits that change the
//! answer.
//!
//! A hit ([`Cache::get_fresh`]) costs one hash lookup under a mutex and an `Arc` clone; the
//! response is then made by [`Answer::render`] (or, into a reused buffer, by
//! [`Answer::render_fresh_into`]), which copies bytes and patches a few fields without
//! decoding.
//! The cache is bounded twice: by entries (`max_entries`) and by bytes (`max_bytes`, the
//! [cost](entry_cost) of each entry: its answer's bytes plus its key and a fixed overhead),
//! so that large answers (64 KiB TXT sets) cannot grow it past the byte budget. When either
//! bound would be exceeded, entries that expire soonest (expired ones first) are evicted,
//! found in O(log n) through an index ordered by expiry; an answer costing more than the
//! whole budget is not stored.
//!
//! Serve stale (RFC 8767): with `serve_stale` above zero, an entry is kept that long past
//! its expiry. [`Cache::lookup`] tells a fresh entry from a stale one; the handler serves a
//! stale entry (with TTL [`STALE_TTL`]) only when the upstreams fail for its question. Stale
//! entries count against both bounds like any other, and since they expired first they are
//! the first evicted. A fresh entry asked for in the last tenth of its lifetime is flagged
//! for [prefetch](Lookup::Fresh::prefetch).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::answer::Answer;
use super::message::CacheKey;
use super::options::CacheOptions;

#[derive(Debug)]
struct Entry {
    answer: Arc<Answer>,
    stored: Instant,
    expires: Instant,
    seq: u64,
    /// What this entry counts against `max_bytes`.
    cost: usize,
    /// When a refresh of this entry last failed (upstreams down), if one did.
    refresh_failed: Option<Instant>,
}

/// The TTL of every record of a stale answer (RFC 8767 §4 recommends 30 s).
pub const STALE_TTL: u32 = 30;

/// After a refresh of an entry failed, stale answers for it are sent at once (without
/// waiting for the upstream) for this long: RFC 8767 §5's "failure recheck timer". The
/// refresh itself is still retried in the background.
pub const STALE_RECHECK: Duration = Duration::from_secs(30);

/// A fresh entry is [prefetched](Lookup::Fresh::prefetch) when at most this fraction of
/// its lifetime is left (1/10, as Unbound's `prefetch`).
const PREFETCH_DIVISOR: u32 = 10;

/// What [`Cache::lookup`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An entry that has not expired.
    Fresh {
        /// The answer.
        answer: Arc<Answer>,
        /// Its age in whole seconds (by which its TTLs are to be decreased).
        age: u32,
        /// Whether at most a tenth of its lifetime is left, so that it should be refreshed
        /// in the background now.
        prefetch: bool,
    },
    /// An entry past its expiry but within the serve-stale window.
    Stale {
        /// The answer (to be served with TTL [`STALE_TTL`]).
        answer: Arc<Answer>,
        /// How long ago it expired.
        expired_for: Duration,
        /// Whether a refresh of it failed less than [`STALE_RECHECK`] ago.
        recently_failed: bool,
    },
    /// No entry, or one past the serve-stale window (it is removed).
    Miss,
}

/// Bytes counted for each entry beyond its answer and key: the entry itself, its slot in
/// the hash map and its node in the expiry index (a generous estimate, so that a flood of
/// tiny answers is bounded too).
pub const ENTRY_OVERHEAD: usize = 160;

/// What an entry for `key` holding `answer` counts against the byte budget: the answer's
/// [`Answer::footprint`], the key's name (held twice: in the map and in the expiry index)
/// and [`ENTRY_OVERHEAD`].
pub fn entry_cost(key: &CacheKey, answer: &Answer) -> usize {
    answer
        .footprint()
        .saturating_add(key.name_len().saturating_mul(2))
        .saturating_add(ENTRY_OVERHEAD)
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<CacheKey, Entry>,
    /// Every entry, ordered by expiry; `seq` makes equal instants distinct.
    by_expiry: BTreeMap<(Instant, u64), CacheKey>,
    seq: u64,
    /// Sum of the entries' costs.
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(old) = self.map.remove(key) {
            self.by_expiry.remove(&(old.expires, old.seq));
            self.bytes = self.bytes.saturating_sub(old.cost);
        }
    }

    /// Removes the entry expiring soonest; false when there is none.
    fn evict_one(&mut self) -> bool {
        let Some((_, victim)) = self.by_expiry.pop_first() else {
            return false;
        };
        if let Some(old) = self.map.remove(&victim) {
            self.bytes = self.bytes.saturating_sub(old.cost);
        }
        true
    }
}

/// A bounded cache of answers. Time is passed in by the caller (`now`), so that expiry is
/// exact and testable.
#[derive(Debug)]
pub struct Cache {
    enabled: bool,
    /// How long entries are kept past expiry for serving stale (zero: not at all).
    stale_window: Duration,
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl Cache {
    /// An empty cache with the given settings.
    pub fn new(opts: &CacheOptions) -> Self {
        Self {
            enabled: opts.enabled && opts.max_entries > 0 && opts.max_bytes > 0,
            stale_window: opts.serve_stale,
            max_entries: opts.max_entries,
            max_bytes: opts.max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards no invariant a panic could break halfway (no code under it panics);
        // recover rather than propagate poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an entry that expires at `expires` is past the serve-stale window at `now`
    /// (and may be removed).
    fn gone(&self, expires: Instant, now: Instant) -> bool {
        expires
            .checked_add(self.stale_window)
            .is_some_and(|end| now >= end)
    }

    /// The answer stored for `key` if it has not expired at `now`, with its age in whole
    /// seconds (by which its TTLs are to be decreased). See [`Cache::lookup`] for stale
    /// entries.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<(Arc<Answer>, u32)> {
        match self.lookup(key, now) {
            Lookup::Fresh { answer, age, .. } => Some((answer, age)),
            Lookup::Stale { .. } | Lookup::Miss => None,
        }
    }

    /// What the cache holds for `key` at `now`: a fresh entry, a stale one (expired, but
    /// within `serve_stale` of its expiry), or nothing. An entry past the serve-stale
    /// window is removed.
    pub fn lookup(&self, key: &CacheKey, now: Instant) -> Lookup {
        if !self.enabled {
            return Lookup::Miss;
        }
        let mut inner = self.lock();
        let Some(entry) = inner.map.get(key) else {
            return Lookup::Miss;
        };
        if now < entry.expires {
            let age = now.saturating_duration_since(entry.stored);
            let lifetime = entry.expires.saturating_duration_since(entry.stored);
            let left = entry.expires.saturating_duration_since(now);
            return Lookup::Fresh {
                answer: Arc::clone(&entry.answer),
                age: u32::try_from(age.as_secs()).unwrap_or(u32::MAX),
                prefetch: left <= lifetime / PREFETCH_DIVISOR,
            };
        }
        if self.gone(entry.expires, now) {
            inner.remove(key);
            return Lookup::Miss;
        }
        Lookup::Stale {
            answer: Arc::clone(&entry.answer),
            expired_for: now.saturating_duration_since(entry.expires),
            recently_failed: entry
                .refresh_failed
                .is_some_and(|at| now.saturating_duration_since(at) < STALE_RECHECK),
        }
    }

    /// The fresh entry for `key` at `now`, if there is one: its answer, its age in whole
    /// seconds and whether it is due for [prefetch](Lookup::Fresh::prefetch). The cache-hit
    /// path; [`Cache::lookup`] tells stale entries and misses apart (and removes entries
    /// past the serve-stale window).
    pub fn get_fresh(&self, key: &CacheKey, now: Instant) -> Option<(Arc<Answer>, u32, bool)> {
        if !self.enabled {
            return None;
        }
        let inner = self.lock();
        let entry = inner.map.get(key)?;
        let left = entry.expires.checked_duration_since(now)?;
        if left.is_zero() {
            return None;
        }
        let age = now.saturating_duration_since(entry.stored);
        let lifetime = entry.expires.saturating_duration_since(entry.stored);
        Some((
            Arc::clone(&entry.answer),
            u32::try_from(age.as_secs()).unwrap_or(u32::MAX),
            left <= lifetime / PREFETCH_DIVISOR,
        ))
    }

    /// Records that refreshing `key` failed at `now` (every upstream failed, refused or
    /// timed out), so that stale answers for it are sent without waiting for the upstream
    /// for the next [`STALE_RECHECK`].
    pub fn refresh_failed(&self, key: &CacheKey, now: Instant) {
        if let Some(entry) = self.lock().map.get_mut(key) {
            entry.refresh_failed = Some(now);
        }
    }

    /// Stores `answer` under `key` at `now` for its [cache
    /// lifetime](Answer::cache_lifetime), replacing any previous entry, evicting the entries
    /// that expire soonest while `max_entries` or `max_bytes` would be exceeded. Returns
    /// false (and stores nothing) when the cache is disabled, the answer is not cacheable,
    /// or its [cost](entry_cost) alone exceeds `max_bytes`.
    pub fn insert(&self, key: CacheKey, answer: Arc<Answer>, now: Instant) -> bool {
        let lifetime = answer.cache_lifetime();
        if !self.enabled || lifetime == 0 {
            return false;
        }
        let Some(expires) = now.checked_add(Duration::from_secs(u64::from(lifetime))) else {
            return false;
        };
        let cost = entry_cost(&key, &answer);
        if cost > self.max_bytes {
            return false;
        }
        let mut inner = self.lock();
        inner.remove(&key);
        while inner.map.len() >= self.max_entries
            || inner.bytes.saturating_add(cost) > self.max_bytes
        {
            if !inner.evict_one() {
                break;
            }
        }
        inner.bytes = inner.bytes.saturating_add(cost);
        inner.seq = inner.seq.wrapping_add(1);
        let seq = inner.seq;
        inner.by_expiry.insert((expires, seq), key.clone());
        inner.map.insert(
            key,
            Entry {
                answer,
                stored: now,
                expires,
                seq,
                cost,
                refresh_failed: None,
            },
        );
        true
    }

    /// Number of entries held, stale ones and expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Bytes the entries count against `max_bytes` (the sum of their [costs](entry_cost)).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry that has expired at `now` and is past the serve-stale window.
    pub fn purge_expired(&self, now: Instant) {
        let mut inner = self.lock();
        while let Some(entry) = inner.by_expiry.first_entry() {
            if !self.gone(entry.key().0, now) {
                break;
            }
            let key = entry.remove();
            if let Some(old) = inner.map.remove(&key) {
                inner.bytes = inner.bytes.saturating_sub(old.cost);
            }
        }
    }

    /// Removes every entry (a configuration reload drops the answers obtained under the
    /// previous trust settings).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.by_expiry.clear();
        inner.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stub::answer::tests::{a, client, response, soa};
    use crate::stub::error::Protocol;
    use crate::stub::message::tests::query_bytes;
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;

    fn answer_for(qb: &[u8], ttl: u32) -> (CacheKey, Arc<Answer>) {
        let q = client(qb);
        let resp = response(
            qb,
            ResponseCode::NoError,
            vec![a("www.example.", ttl, 1)],
            vec![],
        );
        let ans = Answer::from_upstream(&resp, &q, &CacheOptions::default()).unwrap();
        (q.key().clone(), Arc::new(ans))
    }

    /// The default settings without serving stale.
    fn no_stale() -> CacheOptions {
        CacheOptions {
            serve_stale: Duration::ZERO,
            ..CacheOptions::default()
        }
    }

    fn name_query(i: usize) -> Vec<u8> {
        query_bytes(1, &format!("n{i}.example."), RecordType::A, None)
    }

    #[test]
    fn hit_returns_age_and_render_decrements_ttl() {
        let cache = Cache::new(&CacheOptions::default());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 300);
        let t0 = Instant::now();
        assert!(cache.insert(key.clone(), ans, t0));
        let (hit, age) = cache.get(&key, t0 + Duration::from_millis(30_500)).unwrap();
        assert_eq!(age, 30);
        let later = query_bytes(0x7777, "WWW.example.", RecordType::A, None);
        let q = client(&later);
        assert_eq!(q.key(), &key);
        let m = Message::from_vec(&hit.render(&q, age, q.size_limit(Protocol::Udp)).bytes).unwrap();
        assert_eq!(m.metadata.id, 0x7777);
        assert_eq!(m.answers[0].ttl, 270);
    }

    /// `get_fresh` (the cache-hit path) agrees with `lookup` on fresh entries, ages and the
    /// prefetch flag, and finds nothing for stale entries, missing keys or a disabled cache.
    #[test]
    fn get_fresh_agrees_with_lookup() {
        let cache = Cache::new(&CacheOptions::default());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 100);
        let t0 = Instant::now();
        assert!(cache.insert(key.clone(), Arc::clone(&ans), t0));
        for ms in [
            0u64, 1_500, 89_999, 90_000, 95_000, 99_999, 100_000, 130_000,
        ] {
            let now = t0 + Duration::from_millis(ms);
            let fresh = cache.get_fresh(&key, now);
            match cache.lookup(&key, now) {
                Lookup::Fresh {
                    answer,
                    age,
                    prefetch,
                } => {
                    assert_eq!(fresh, Some((answer, age, prefetch)), "{ms} ms");
                    assert_eq!(u64::from(age), ms / 1000);
                    assert_eq!(prefetch, ms >= 90_000, "{ms} ms");
                }
                Lookup::Stale { .. } => assert!(fresh.is_none(), "{ms} ms: stale"),
                Lookup::Miss => panic!("{ms} ms: within the serve-stale window"),
            }
        }
        let (other, _) = answer_for(&name_query(3), 100);
        assert!(cache.get_fresh(&other, t0).is_none());
        let off = Cache::new(&CacheOptions {
            enabled: false,
            ..CacheOptions::default()
        });
        assert!(!off.insert(key.clone(), ans, t0));
        assert!(off.get_fresh(&key, t0).is_none());
    }

    #[test]
    fn clear_removes_every_entry_and_its_bytes() {
        let cache = Cache::new(&CacheOptions::default());
        let t0 = Instant::now();
        let keys: Vec<CacheKey> = (0..3)
            .map(|i| {
                let (key, ans) = answer_for(&name_query(i), 300);
                assert!(cache.insert(key.clone(), ans, t0));
                key
            })
            .collect();
        assert_eq!(cache.len(), 3);
        assert!(cache.bytes() > 0);
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
        assert!(keys.iter().all(|k| cache.get(k, t0).is_none()));
        // Still usable afterwards.
        let (key, ans) = answer_for(&name_query(7), 300);
        assert!(cache.insert(key.clone(), ans, t0));
        assert!(cache.get(&key, t0).is_some());
    }

    #[test]
    fn entries_expire_at_their_ttl() {
        let cache = Cache::new(&no_stale());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 10);
        let t0 = Instant::now();
        cache.insert(key.clone(), ans, t0);
        assert!(cache.get(&key, t0 + Duration::from_millis(9_999)).is_some());
        assert!(cache.get(&key, t0 + Duration::from_secs(10)).is_none());
        assert!(cache.is_empty(), "expired entry is removed on lookup");
    }

    #[test]
    fn negative_answer_with_soa_is_cached_for_soa_minimum() {
        let cache = Cache::new(&CacheOptions::default());
        let qb = query_bytes(1, "nx.example.", RecordType::A, None);
        let q = client(&qb);
        let resp = response(
            &qb,
            ResponseCode::NXDomain,
            vec![],
            vec![soa("example.", 900, 120)],
        );
        let ans = Arc::new(Answer::from_upstream(&resp, &q, &CacheOptions::default()).unwrap());
        let t0 = Instant::now();
        assert!(cache.insert(q.key().clone(), ans, t0));
        let (hit, age) = cache.get(q.key(), t0 + Duration::from_secs(119)).unwrap();
        assert_eq!(hit.response_code(), ResponseCode::NXDomain);
        let m = Message::from_vec(&hit.render(&q, age, 65535).bytes).unwrap();
        assert_eq!(m.authorities[0].ttl, 1);
        assert!(cache.get(q.key(), t0 + Duration::from_secs(120)).is_none());
    }

    #[test]
    fn negative_answer_without_soa_and_servfail_are_not_cached() {
        let cache = Cache::new(&CacheOptions::default());
        let qb = query_bytes(1, "nx.example.", RecordType::A, None);
        let q = client(&qb);
        for (rcode, auth) in [
            (ResponseCode::NXDomain, vec![]),
            (ResponseCode::ServFail, vec![soa("example.", 900, 120)]),
        ] {
            let resp = response(&qb, rcode, vec![], auth);
            let ans = Arc::new(Answer::from_upstream(&resp, &q, &CacheOptions::default()).unwrap());
            assert!(!cache.insert(q.key().clone(), ans, Instant::now()));
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn full_cache_evicts_the_entry_expiring_soonest() {
        let opts = CacheOptions {
            max_entries: 3,
            ..CacheOptions::default()
        };
        let cache = Cache::new(&opts);
        let t0 = Instant::now();
        let queries: Vec<Vec<u8>> = (0..4).map(name_query).collect();
        let ttls = [300, 30, 600, 900];
        let mut keys = Vec::new();
        for (qb, ttl) in queries.iter().zip(ttls) {
            let q = client(qb);
            let resp = response(
                qb,
                ResponseCode::NoError,
                vec![a(&q.query().unwrap().name().to_ascii(), ttl, 1)],
                vec![],
            );
            let ans = Answer::from_upstream(&resp, &q, &CacheOptions::default()).unwrap();
            keys.push(q.key().clone());
            assert!(cache.insert(q.key().clone(), Arc::new(ans), t0));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&keys[1], t0).is_none(), "ttl 30 entry evicted");
        for k in [&keys[0], &keys[2], &keys[3]] {
            assert!(cache.get(k, t0).is_some());
        }
    }

    /// An answer of `records` A records for query `i`, with TTL `ttl`.
    fn big_answer(i: usize, records: u8, ttl: u32) -> (CacheKey, Arc<Answer>) {
        let qb = name_query(i);
        let q = client(&qb);
        let name = q.query().unwrap().name().to_ascii();
        let answers = (0..records).map(|r| a(&name, ttl, r)).collect();
        let resp = response(&qb, ResponseCode::NoError, answers, vec![]);
        let ans = Answer::from_upstream(&resp, &q, &CacheOptions::default()).unwrap();
        (q.key().clone(), Arc::new(ans))
    }

    #[test]
    fn byte_budget_bounds_the_cache_and_evicts_soonest_expiry_first() {
        let (_, sample) = big_answer(0, 100, 300);
        assert!(sample.footprint() > 1_600, "{}", sample.footprint());
        let max_bytes = 10_000;
        let cache = Cache::new(&CacheOptions {
            max_bytes,
            ..no_stale()
        });
        let t0 = Instant::now();
        let mut keys = Vec::new();
        for i in 0..20 {
            // TTLs rise with i, except entry 10 which expires first of all.
            let ttl = if i == 10 { 5 } else { 100 + i as u32 };
            let (key, ans) = big_answer(i, 100, ttl);
            assert!(cache.insert(key.clone(), ans, t0));
            assert!(cache.bytes() <= max_bytes, "{} bytes", cache.bytes());
            keys.push(key);
        }
        assert!(
            cache.len() < 20 && cache.len() >= 4,
            "{} entries",
            cache.len()
        );
        assert!(cache.get(&keys[10], t0).is_none(), "soonest expiry evicted");
        assert!(cache.get(&keys[19], t0).is_some(), "newest kept");
        let held: usize = keys
            .iter()
            .filter_map(|k| cache.get(k, t0).map(|(a, _)| entry_cost(k, &a)))
            .sum();
        assert_eq!(held, cache.bytes(), "byte count is the sum of the entries");
        cache.purge_expired(t0 + Duration::from_secs(1_000));
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn an_answer_larger_than_the_budget_is_not_stored() {
        let cache = Cache::new(&CacheOptions {
            max_bytes: 1_000,
            ..CacheOptions::default()
        });
        let (key, ans) = big_answer(1, 100, 300);
        assert!(!cache.insert(key.clone(), ans, Instant::now()));
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
        let (key, ans) = answer_for(&name_query(2), 300);
        assert!(cache.insert(key, ans, Instant::now()));
        assert!(cache.bytes() > 0 && cache.bytes() <= 1_000);
    }

    #[test]
    fn replacing_a_key_keeps_one_entry() {
        let cache = Cache::new(&no_stale());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, short) = answer_for(&qb, 10);
        let (_, long) = answer_for(&qb, 100);
        let t0 = Instant::now();
        cache.insert(key.clone(), short, t0);
        cache.insert(key.clone(), long, t0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&key, t0 + Duration::from_secs(50)).is_some());
        cache.purge_expired(t0 + Duration::from_secs(50));
        assert_eq!(cache.len(), 1);
        cache.purge_expired(t0 + Duration::from_secs(100));
        assert!(cache.is_empty());
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let cache = Cache::new(&CacheOptions::disabled());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 300);
        assert!(!cache.insert(key.clone(), ans, Instant::now()));
        assert!(cache.get(&key, Instant::now()).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn do_and_cd_bits_separate_entries() {
        let cache = Cache::new(&CacheOptions::default());
        let plain = query_bytes(1, "www.example.", RecordType::A, Some((1232, false)));
        let with_do = query_bytes(1, "www.example.", RecordType::A, Some((1232, true)));
        let (key, ans) = answer_for(&plain, 300);
        cache.insert(key, ans, Instant::now());
        let q = client(&with_do);
        assert!(cache.get(q.key(), Instant::now()).is_none());
        let mut cd = plain.clone();
        cd[3] |= 0x10;
        let q = client(&cd);
        assert!(cache.get(q.key(), Instant::now()).is_none());
    }

    #[test]
    fn expired_entries_are_stale_within_the_window_then_gone() {
        let cache = Cache::new(&CacheOptions {
            serve_stale: Duration::from_secs(100),
            ..CacheOptions::default()
        });
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 10);
        let t0 = Instant::now();
        assert!(cache.insert(key.clone(), Arc::clone(&ans), t0));
        assert!(matches!(
            cache.lookup(&key, t0 + Duration::from_secs(5)),
            Lookup::Fresh {
                age: 5,
                prefetch: false,
                ..
            }
        ));
        let at = t0 + Duration::from_secs(12);
        match cache.lookup(&key, at) {
            Lookup::Stale {
                answer,
                expired_for,
                recently_failed,
            } => {
                assert_eq!(answer, ans);
                assert_eq!(expired_for, Duration::from_secs(2));
                assert!(!recently_failed);
            }
            other => panic!("expected stale, got {other:?}"),
        }
        assert!(
            cache.get(&key, at).is_none(),
            "get only returns fresh entries"
        );
        cache.purge_expired(t0 + Duration::from_secs(109));
        assert_eq!(cache.len(), 1, "still inside the stale window");
        assert!(matches!(
            cache.lookup(&key, t0 + Duration::from_secs(110)),
            Lookup::Miss
        ));
        assert!(cache.is_empty(), "past the window the entry is removed");
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_failed_refresh_is_remembered_for_the_recheck_time() {
        let cache = Cache::new(&CacheOptions::default());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 10);
        let t0 = Instant::now();
        cache.insert(key.clone(), ans, t0);
        let failed_at = t0 + Duration::from_secs(11);
        cache.refresh_failed(&key, failed_at);
        let recent = |at: Instant| match cache.lookup(&key, at) {
            Lookup::Stale {
                recently_failed, ..
            } => recently_failed,
            other => panic!("expected stale, got {other:?}"),
        };
        assert!(recent(failed_at + STALE_RECHECK - Duration::from_millis(1)));
        assert!(!recent(failed_at + STALE_RECHECK));
        // A new answer clears the mark.
        let (_, fresh) = answer_for(&qb, 10);
        cache.insert(key.clone(), fresh, failed_at);
        assert!(!recent(failed_at + Duration::from_secs(10)));
    }

    #[test]
    fn prefetch_is_flagged_in_the_last_tenth_of_the_lifetime() {
        let cache = Cache::new(&CacheOptions::default());
        let qb = query_bytes(1, "www.example.", RecordType::A, None);
        let (key, ans) = answer_for(&qb, 100);
        let t0 = Instant::now();
        cache.insert(key.clone(), ans, t0);
        let prefetch = |ms: u64| match cache.lookup(&key, t0 + Duration::from_millis(ms)) {
            Lookup::Fresh { prefetch, .. } => prefetch,
            other => panic!("expected fresh, got {other:?}"),
        };
        assert!(!prefetch(0));
        assert!(!prefetch(89_999));
        assert!(prefetch(90_000));
        assert!(prefetch(99_999));
    }

    #[test]
    fn stale_entries_count_against_the_bounds_and_are_evicted_first() {
        let cache = Cache::new(&CacheOptions {
            max_entries: 3,
            ..CacheOptions::default()
        });
        let t0 = Instant::now();
        // Entry 0 expires at 10 s, the others much later.
        let ttls = [10, 300, 400, 500];
        let keys: Vec<CacheKey> = ttls
            .iter()
            .enumerate()
            .map(|(i, &ttl)| answer_for(&name_query(i), ttl).0)
            .collect();
        for (i, &ttl) in ttls.iter().take(3).enumerate() {
            let (key, ans) = answer_for(&name_query(i), ttl);
            assert!(cache.insert(key, ans, t0));
        }
        let later = t0 + Duration::from_secs(20);
        assert!(matches!(
            cache.lookup(&keys[0], later),
            Lookup::Stale { .. }
        ));
        assert_eq!(cache.len(), 3, "the stale entry is still held");
        let (key, ans) = answer_for(&name_query(3), ttls[3]);
        assert!(cache.insert(key, ans, later));
        assert_eq!(cache.len(), 3);
        assert!(
            matches!(cache.lookup(&keys[0], later), Lookup::Miss),
            "stale one evicted"
        );
        for k in &keys[1..] {
            assert!(matches!(cache.lookup(k, later), Lookup::Fresh { .. }));
        }
    }
}
