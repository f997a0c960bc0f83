//! The answer cache: bounded, TTL-honouring, keyed by question and the bits that change the
//! answer.
//!
//! A hit costs one hash lookup under a mutex and an `Arc` clone; the response is then made
//! by [`Answer::render`], which copies bytes and patches a few fields without decoding.
//! The cache is bounded twice: by entries (`max_entries`) and by bytes (`max_bytes`, the
//! [cost](entry_cost) of each entry: its answer's bytes plus its key and a fixed overhead),
//! so that large answers (64 KiB TXT sets) cannot grow it past the byte budget. When either
//! bound would be exceeded, entries that expire soonest (expired ones first) are evicted,
//! found in O(log n) through an index ordered by expiry; an answer costing more than the
//! whole budget is not stored.

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
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl Cache {
    /// An empty cache with the given settings.
    pub fn new(opts: &CacheOptions) -> Self {
        Self {
            enabled: opts.enabled && opts.max_entries > 0 && opts.max_bytes > 0,
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

    /// The answer stored for `key` if it has not expired at `now`, with its age in whole
    /// seconds (by which its TTLs are to be decreased). An expired entry is removed.
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<(Arc<Answer>, u32)> {
        if !self.enabled {
            return None;
        }
        let mut inner = self.lock();
        let entry = inner.map.get(key)?;
        if now >= entry.expires {
            inner.remove(key);
            return None;
        }
        let age = now.saturating_duration_since(entry.stored).as_secs();
        Some((
            Arc::clone(&entry.answer),
            u32::try_from(age).unwrap_or(u32::MAX),
        ))
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
            },
        );
        true
    }

    /// Number of entries held, expired ones not yet removed included.
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

    /// Removes every entry that has expired at `now`.
    pub fn purge_expired(&self, now: Instant) {
        let mut inner = self.lock();
        while let Some(entry) = inner.by_expiry.first_entry() {
            if entry.key().0 > now {
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
        let cache = Cache::new(&CacheOptions::default());
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
            ..CacheOptions::default()
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
        let cache = Cache::new(&CacheOptions::default());
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
}
