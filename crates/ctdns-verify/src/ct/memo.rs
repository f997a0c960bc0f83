//! A bounded memo of SCT signature verification results.
//!
//! # What is remembered, and what is not
//!
//! Checking an SCT signature is a pure function: given the log's public key, the exact
//! bytes the log signed (RFC 6962 §3.2 `digitally-signed` input, rebuilt from the presented
//! certificate and the verified issuer), the signature bytes and the verification
//! algorithms, the answer is always the same. The memo keeps that answer, *valid* or
//! *invalid*, under a key that is the SHA-256 of all of those inputs (each length-prefixed,
//! after a domain-separation label):
//!
//! ```text
//! key = SHA-256("ctdns sct-signature memo v1" ‖ log SPKI ‖ signed data ‖ signature
//!               ‖ wanted signature algorithm ‖ candidate algorithms)
//! ```
//!
//! Only the final public-key operation is skipped on a hit. Everything else runs on every
//! connection, exactly as without the memo: the chain is built and verified to a trusted
//! root, the IP SAN is matched, the SCT list is parsed from the certificate the server just
//! presented, the precertificate is rebuilt and the signed data re-derived from it, the log
//! is looked up in the current log list (its state, operator, retirement), the SCT's hash
//! and signature algorithms and the log key's type are checked, the key is hashed in, and
//! the policy (SCT count, distinct operators, timestamps against the certificate's
//! validity and the current time, staleness of the list), the issuer pins and the denylist
//! are evaluated. The policy decision, time checks, chains, pins and denylist are never
//! stored here.
//!
//! # Is it "a faster path that skips a check"?
//!
//! ctdns' rule is that every connection is verified and that a faster path which skips a
//! check is a bug. The memo does not skip a check on any input: for the bytes presented on
//! this connection, the question "does this signature verify under this key over this
//! message" was answered by a full ECDSA/RSA verification earlier in this process, and the
//! answer cannot differ. A different certificate, issuer, log key, timestamp, extension or
//! signature byte gives a different key (a SHA-256 collision would be needed to reach a
//! remembered answer), which the test `changed_byte_anywhere_misses` checks byte by byte.
//! What it does trust is its own memory: a bug that dropped an input from the key would let
//! one verification vouch for another message, and anything able to write this process's
//! memory could plant an entry (such an attacker could equally patch the verifier). Those
//! are the costs; the lead decides whether they are acceptable. The memo can be switched
//! off per checker ([`crate::ct::checker::CtChecker::without_signature_memo`]).
//!
//! # Bounds
//!
//! At most [`DEFAULT_CAPACITY`] entries (33 bytes each plus map overhead, well under a
//! megabyte); when full, the oldest entry is dropped. Thread-safe (one mutex, held only for
//! a lookup or an insert, never during a verification).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustls::pki_types::{AlgorithmIdentifier, SignatureVerificationAlgorithm};

/// Entries a memo holds by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Domain separation for the memo key.
const KEY_LABEL: &[u8] = b"ctdns sct-signature memo v1";

/// The SHA-256 of everything a signature verification result depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemoKey([u8; 32]);

impl MemoKey {
    /// The key for verifying `signature` over `signed_data` with the log key `log_spki`
    /// (whole DER SubjectPublicKeyInfo), for the SCT's algorithm `wanted`, by the
    /// `candidates` (the algorithms that will be tried, in order).
    pub fn new(
        log_spki: &[u8],
        signed_data: &[u8],
        signature: &[u8],
        wanted: &AlgorithmIdentifier,
        candidates: &[&'static dyn SignatureVerificationAlgorithm],
    ) -> Self {
        let mut ctx = <sha2::Sha256 as sha2::Digest>::new();
        let mut field = |bytes: &[u8]| {
            // Lengths above u32 cannot occur (the signed data is bounded by its u24 length
            // field); saturating keeps the prefix well defined regardless.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            sha2::Digest::update(&mut ctx, len.to_be_bytes());
            sha2::Digest::update(&mut ctx, bytes);
        };
        field(KEY_LABEL);
        field(log_spki);
        field(signed_data);
        field(signature);
        field(wanted.as_ref());
        field(
            &u32::try_from(candidates.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for alg in candidates {
            field(alg.public_key_alg_id().as_ref());
            field(alg.signature_alg_id().as_ref());
        }
        MemoKey(sha2::Digest::finalize(ctx).into())
    }
}

/// Counters of a memo's use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoStats {
    /// Lookups answered from the memo.
    pub hits: u64,
    /// Lookups that found nothing (a full verification followed).
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
}

#[derive(Debug, Default)]
struct Entries {
    results: HashMap<MemoKey, bool>,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<MemoKey>,
}

/// Remembered SCT signature verification results (see the module docs).
#[derive(Debug)]
pub struct SignatureMemo {
    capacity: usize,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for SignatureMemo {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl SignatureMemo {
    /// An empty memo holding at most `capacity` results (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Nothing under the lock can panic halfway through an update.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The remembered result for `key`: `Some(true)` valid, `Some(false)` invalid.
    pub fn get(&self, key: &MemoKey) -> Option<bool> {
        let found = self.lock().results.get(key).copied();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remember `valid` for `key`, dropping the oldest entry when full.
    pub fn insert(&self, key: MemoKey, valid: bool) {
        let mut entries = self.lock();
        if entries.results.insert(key, valid).is_some() {
            return;
        }
        entries.order.push_back(key);
        while entries.order.len() > self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.results.remove(&oldest);
            }
        }
    }

    /// Hits, misses and size so far.
    pub fn stats(&self) -> MemoStats {
        MemoStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lock().results.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::alg_id;

    fn key(n: u8) -> MemoKey {
        MemoKey([n; 32])
    }

    #[test]
    fn remembers_both_outcomes_and_counts() {
        let memo = SignatureMemo::new(8);
        assert_eq!(memo.get(&key(1)), None);
        memo.insert(key(1), true);
        memo.insert(key(2), false);
        assert_eq!(memo.get(&key(1)), Some(true));
        assert_eq!(memo.get(&key(2)), Some(false));
        assert_eq!(
            memo.stats(),
            MemoStats {
                hits: 2,
                misses: 1,
                entries: 2
            }
        );
    }

    #[test]
    fn is_bounded_and_drops_the_oldest() {
        let memo = SignatureMemo::new(3);
        for n in 0..10 {
            memo.insert(key(n), true);
            assert!(memo.stats().entries <= 3);
        }
        assert_eq!(memo.get(&key(6)), None);
        for n in 7..10 {
            assert_eq!(memo.get(&key(n)), Some(true));
        }
        // Re-inserting a present key neither grows the memo nor reorders it.
        memo.insert(key(9), true);
        assert_eq!(memo.stats().entries, 3);
        assert_eq!(SignatureMemo::new(0).capacity, 1);
    }

    #[test]
    fn key_covers_every_input() {
        let algs = crate::ct::signature::default_algorithms();
        let base = MemoKey::new(b"spki", b"data", b"sig", &alg_id::ECDSA_SHA256, algs);
        assert_eq!(
            base,
            MemoKey::new(b"spki", b"data", b"sig", &alg_id::ECDSA_SHA256, algs)
        );
        for other in [
            MemoKey::new(b"spkj", b"data", b"sig", &alg_id::ECDSA_SHA256, algs),
            MemoKey::new(b"spki", b"dataa", b"sig", &alg_id::ECDSA_SHA256, algs),
            MemoKey::new(b"spki", b"data", b"sih", &alg_id::ECDSA_SHA256, algs),
            MemoKey::new(b"spki", b"data", b"sig", &alg_id::RSA_PKCS1_SHA256, algs),
            MemoKey::new(b"spki", b"data", b"sig", &alg_id::ECDSA_SHA256, &algs[1..]),
            // Moving a byte between fields changes the key (length prefixes).
            MemoKey::new(b"spkid", b"ata", b"sig", &alg_id::ECDSA_SHA256, algs),
        ] {
            assert_ne!(base, other);
        }
    }
}
