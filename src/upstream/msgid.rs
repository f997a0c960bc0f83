//! DNS message IDs on shared connections: reading and rewriting the ID of a wire-format
//! message, and picking fresh per-connection IDs.
//!
//! Many clients' queries share one upstream connection (RFC 7766 §6.2.1.1), and their IDs may
//! collide, so each query is sent under an ID that is unique among the connection's
//! outstanding queries, and the client's own ID is put back on the response.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use rustls::crypto::SecureRandom;

/// Random draws tried before scanning for a free ID.
const RANDOM_TRIES: usize = 16;
/// Random bytes fetched from the system at a time: 256 message IDs per `getrandom` call
/// instead of one call (about a microsecond of system time) per query.
const RANDOM_BUFFER: usize = 512;

/// The message ID of `msg`, or `None` if it is shorter than two bytes.
pub fn message_id(msg: &[u8]) -> Option<u16> {
    crate::wire::read_u16(msg, crate::wire::header::ID)
}

/// Set the message ID of `msg`; `false` (and `msg` untouched) if it is shorter than two
/// bytes.
pub fn set_message_id(msg: &mut [u8], id: u16) -> bool {
    crate::wire::write_u16(msg, crate::wire::header::ID, id)
}

/// Picks message IDs that are unpredictable and not in use.
///
/// Every ID is two bytes of the system CSPRNG (the selected crypto provider's
/// [`SecureRandom`], see [`crate::provider`]), as unpredictable
/// as drawing them one at a time; they are only fetched `RANDOM_BUFFER` bytes at a time,
/// and each byte is used once and then cleared.
#[derive(Debug)]
pub struct IdAllocator {
    rng: &'static dyn SecureRandom,
    pool: Mutex<RandomPool>,
    /// Fallback source if the system RNG fails (it does not in practice).
    counter: AtomicU16,
}

/// System randomness fetched ahead, consumed from `next` on.
#[derive(Debug)]
struct RandomPool {
    bytes: [u8; RANDOM_BUFFER],
    next: usize,
}

impl Default for IdAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl IdAllocator {
    /// A new allocator.
    pub fn new() -> Self {
        IdAllocator {
            rng: system_random(),
            pool: Mutex::new(RandomPool {
                bytes: [0; RANDOM_BUFFER],
                next: RANDOM_BUFFER,
            }),
            counter: AtomicU16::new(0),
        }
    }

    /// A fresh ID for which `in_use` is false, or `None` if all 65536 IDs are in use.
    pub fn allocate(&self, in_use: impl Fn(u16) -> bool) -> Option<u16> {
        for _ in 0..RANDOM_TRIES {
            let id = self.draw();
            if !in_use(id) {
                return Some(id);
            }
        }
        let start = self.draw();
        (0..=u16::MAX)
            .map(|offset| start.wrapping_add(offset))
            .find(|&id| !in_use(id))
    }

    fn draw(&self) -> u16 {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.next + 2 > RANDOM_BUFFER {
            if self.rng.fill(&mut pool.bytes).is_err() {
                return self.counter.fetch_add(1, Ordering::Relaxed);
            }
            pool.next = 0;
        }
        let at = pool.next;
        pool.next += 2;
        match pool.bytes.get_mut(at..at + 2) {
            Some([hi, lo]) => {
                let id = u16::from_be_bytes([*hi, *lo]);
                (*hi, *lo) = (0, 0);
                id
            }
            _ => self.counter.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// The system CSPRNG of the crypto provider selected by the crate features (ring or
/// aws-lc-rs): the same randomness rustls uses for the TLS handshakes.
pub fn system_random() -> &'static dyn SecureRandom {
    static RNG: OnceLock<&'static dyn SecureRandom> = OnceLock::new();
    *RNG.get_or_init(|| crate::provider::default_provider().secure_random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_come_from_the_selected_providers_randomness() {
        let expected = if cfg!(feature = "ring") {
            "Ring"
        } else {
            "AwsLcRs"
        };
        assert_eq!(format!("{:?}", system_random()), expected);
        assert_eq!(
            format!("{:?}", IdAllocator::new().rng),
            format!("{:?}", crate::provider::default_provider().secure_random)
        );
    }

    #[test]
    fn reads_and_rewrites_ids() {
        let mut msg = vec![0xAB, 0xCD, 1, 0];
        assert_eq!(message_id(&msg), Some(0xABCD));
        assert!(set_message_id(&mut msg, 0x0102));
        assert_eq!(msg, vec![1, 2, 1, 0]);
        let mut short = vec![7];
        assert!(!set_message_id(&mut short, 1));
        assert_eq!(short, vec![7]);
        assert_eq!(message_id(&short), None);
    }

    #[test]
    fn allocates_unused_ids_until_exhausted() {
        let alloc = IdAllocator::new();
        let mut used = HashSet::new();
        for _ in 0..=u16::MAX {
            let id = alloc.allocate(|id| used.contains(&id)).unwrap();
            assert!(used.insert(id));
        }
        assert_eq!(alloc.allocate(|id| used.contains(&id)), None);
    }

    /// Draws across several refills of the buffer are spread over the whole ID space: no
    /// value repeats suspiciously often and both halves of every byte vary.
    #[test]
    fn buffered_draws_look_uniform() {
        let alloc = IdAllocator::new();
        let draws: Vec<u16> = (0..4 * RANDOM_BUFFER)
            .map(|_| alloc.allocate(|_| false).unwrap())
            .collect();
        let distinct: HashSet<u16> = draws.iter().copied().collect();
        // 2,048 draws from 65,536 values: a few collisions at most.
        assert!(distinct.len() > 2_000, "{} distinct", distinct.len());
        let mut seen_bits = 0u16;
        let mut all_bits = u16::MAX;
        for d in &draws {
            seen_bits |= d;
            all_bits &= d;
        }
        assert_eq!(seen_bits, u16::MAX);
        assert_eq!(all_bits, 0);
        // Two allocators do not produce the same sequence.
        let other = IdAllocator::new();
        let other_draws: Vec<u16> = (0..64)
            .map(|_| other.allocate(|_| false).unwrap())
            .collect();
        assert_ne!(other_draws, draws[..64]);
    }
}
