//! The answer cache for routers that declare `dbroute_deterministic() == 1`:
//! answers keyed by the input bytes, bounded, lock-free, dropped with the
//! router (so a swap starts empty).

use std::hash::{BuildHasher, Hasher};

use arc_swap::ArcSwapOption;
use std::sync::Arc;

use crate::router::Decision;

/// Slots in the cache. A new answer replaces whatever sat in its slot, so
/// the cache never holds more than this many answers.
const SLOTS: usize = 4096;

/// The longest input whose answer is cached. Keys are whole inputs and
/// hints can be arbitrarily large: without a bound, 4096 distinct 1 MiB
/// inputs would keep 4 GiB alive. With it the keys hold at most 4 MiB.
const MAX_KEY_LEN: usize = 1024;

struct Cached {
    hash: u64,
    key: Box<[u8]>,
    decision: Decision,
}

/// A direct-mapped cache: one slot per hash bucket, each an atomically
/// swapped pointer. Reading takes no lock and writes no shared memory.
pub(crate) struct DecisionCache {
    slots: Box<[ArcSwapOption<Cached>]>,
    hasher: foldhash::fast::RandomState,
}

fn matches(key: &[u8], pieces: &[&[u8]]) -> bool {
    let mut rest = key;
    for piece in pieces {
        match rest.split_at_checked(piece.len()) {
            Some((head, tail)) if head == *piece => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

impl DecisionCache {
    pub(crate) fn new() -> Self {
        DecisionCache {
            slots: (0..SLOTS).map(|_| ArcSwapOption::empty()).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The hash of an input given in pieces.
    #[inline]
    pub(crate) fn hash(&self, pieces: &[&[u8]]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        for piece in pieces {
            hasher.write(piece);
        }
        hasher.finish()
    }

    /// The cached answer for this input, if any.
    #[inline]
    pub(crate) fn get(&self, hash: u64, pieces: &[&[u8]]) -> Option<Decision> {
        let slot = self.slots[hash as usize % SLOTS].load();
        match &*slot {
            Some(cached) if cached.hash == hash && matches(&cached.key, pieces) => Some(cached.decision.clone()),
            _ => None,
        }
    }

    /// Remembers an answer.
    pub(crate) fn put(&self, hash: u64, pieces: &[&[u8]], decision: &Decision) {
        if pieces.iter().map(|p| p.len()).sum::<usize>() > MAX_KEY_LEN {
            return;
        }
        let cached = Cached {
            hash,
            key: pieces.concat().into_boxed_slice(),
            decision: decision.clone(),
        };
        self.slots[hash as usize % SLOTS].store(Some(Arc::new(cached)));
    }

    /// Forgets every answer.
    pub(crate) fn clear(&self) {
        for slot in self.slots.iter() {
            slot.store(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ConnectionName;

    #[test]
    fn answers_only_for_the_same_bytes() {
        let cache = DecisionCache::new();
        let answer = Decision::Use(ConnectionName::from_static("replica"));
        let pieces: [&[u8]; 2] = [b"{\"op\":\"read\",", b"\"model\":{\"name\":\"User\"}}"];
        let hash = cache.hash(&pieces);
        assert_eq!(cache.get(hash, &pieces), None);
        cache.put(hash, &pieces, &answer);
        assert_eq!(cache.get(hash, &pieces), Some(answer.clone()));
        // A key is the bytes, not their split: a different split matches
        // (the host always splits one input the same way, so it hashes the
        // same).
        let joined = pieces.concat();
        assert_eq!(cache.get(hash, &[&joined]), Some(answer));
        let other: [&[u8]; 2] = [b"{\"op\":\"read\",", b"\"model\":{\"name\":\"Usr\"}}"];
        assert_eq!(cache.get(hash, &other), None);
        cache.clear();
        assert_eq!(cache.get(hash, &pieces), None);
    }

    #[test]
    fn large_inputs_are_not_kept() {
        let cache = DecisionCache::new();
        let answer = Decision::Use(ConnectionName::from_static("replica"));
        let large = vec![b'x'; MAX_KEY_LEN + 1];
        let pieces: [&[u8]; 1] = [&large];
        let hash = cache.hash(&pieces);
        cache.put(hash, &pieces, &answer);
        assert_eq!(cache.get(hash, &pieces), None);
    }
}
