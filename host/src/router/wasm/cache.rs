//! The answer cache for routers that declare `dbroute_deterministic() == 1`:
//! answers keyed by the input bytes, bounded, lock-free, dropped with the
//! router (so a swap starts empty).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;

use crate::model::{Hints, ModelInfo};
use crate::router::{Decision, OpKind};

/// Slots in the cache. A new answer replaces whatever sat in its slot, so
/// the cache never holds more than this many answers.
const SLOTS: usize = 4096;

/// The longest input whose answer is cached. Keys are whole inputs and
/// hints can be arbitrarily large: without a bound, 4096 distinct 1 MiB
/// inputs would keep 4 GiB alive. With it the keys hold at most 4 MiB.
const MAX_KEY_LEN: usize = 1024;

/// What an input is made of, for the cache: the operation, the model's JSON
/// and the hints' JSON (empty when there are none), and a hash of the three
/// made from the hashes the model and hints computed once, when their JSON
/// was built. Two keys with the same parts are the same input bytes.
pub(crate) struct CacheKey<'a> {
    hash: u64,
    kind: OpKind,
    model: &'a [u8],
    hints: &'a [u8],
}

impl<'a> CacheKey<'a> {
    #[inline]
    pub(crate) fn new(kind: OpKind, model: &'a ModelInfo, hints: &'a Hints) -> Self {
        let model = model.abi();
        let (hints, hints_hash) = if hints.is_empty() {
            (&[][..], 0)
        } else {
            let abi = hints.abi_closed();
            (abi.text().as_bytes(), abi.hash())
        };
        // A multiply-and-fold mix of the three: the parts' hashes are
        // already well mixed, this only keeps their combinations apart.
        let mixed =
            (u128::from(model.hash() ^ kind as u64) * u128::from(hints_hash ^ 0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let hash = u64::from_le_bytes(mixed[..8].try_into().unwrap_or_default())
            ^ u64::from_le_bytes(mixed[8..].try_into().unwrap_or_default());
        CacheKey {
            hash,
            kind,
            model: model.text().as_bytes(),
            hints,
        }
    }

    fn len(&self) -> usize {
        self.model.len() + self.hints.len()
    }
}

struct Cached {
    hash: u64,
    kind: OpKind,
    /// The model's JSON, then the hints' JSON.
    bytes: Box<[u8]>,
    model_len: usize,
    decision: Decision,
}

impl Cached {
    #[inline]
    fn answers(&self, key: &CacheKey<'_>) -> bool {
        self.hash == key.hash
            && self.kind == key.kind
            && self.model_len == key.model.len()
            && self.bytes.len() == key.len()
            && same_bytes(&self.bytes[..self.model_len], key.model)
            && same_bytes(&self.bytes[self.model_len..], key.hints)
    }
}

/// `a == b` for two slices of the same length, eight bytes at a time and
/// inlined: short keys are compared faster than by a call to `memcmp`.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    let mut differ = 0u64;
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_le_bytes(y.try_into().unwrap_or_default());
        differ |= x ^ y;
    }
    for (x, y) in a_words.remainder().iter().zip(b_words.remainder()) {
        differ |= u64::from(x ^ y);
    }
    differ == 0
}

/// A direct-mapped cache: one slot per hash bucket, each an atomically
/// swapped pointer. Reading takes no lock and writes no shared memory.
///
/// Storing into an `ArcSwapOption`, or dropping one, walks every thread's
/// `arc_swap` debt list (so that no reader's guard outlives the value it
/// borrows): for all 4096 slots and 17 threads that took 0.4 ms, paid by the
/// swap that dropped a router. So a bitmap records which slots were given
/// an answer, and clearing and dropping touch only those; a slot never
/// given one (a null pointer, nothing to free) is forgotten, not dropped.
pub(crate) struct DecisionCache {
    slots: Box<[ArcSwapOption<Cached>]>,
    /// One bit per slot: set when the slot is given an answer.
    filled: Box<[AtomicU64]>,
}

impl DecisionCache {
    pub(crate) fn new() -> Self {
        DecisionCache {
            slots: (0..SLOTS).map(|_| ArcSwapOption::empty()).collect(),
            filled: (0..SLOTS.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The cached answer for this input, if any.
    #[inline]
    pub(crate) fn get(&self, key: &CacheKey<'_>) -> Option<Decision> {
        let slot = self.slots[key.hash as usize % SLOTS].load();
        match &*slot {
            Some(cached) if cached.answers(key) => Some(cached.decision.clone()),
            _ => None,
        }
    }

    /// Remembers an answer.
    pub(crate) fn put(&self, key: &CacheKey<'_>, decision: &Decision) {
        if key.len() > MAX_KEY_LEN {
            return;
        }
        let cached = Cached {
            hash: key.hash,
            kind: key.kind,
            bytes: [key.model, key.hints].concat().into_boxed_slice(),
            model_len: key.model.len(),
            decision: decision.clone(),
        };
        let slot = key.hash as usize % SLOTS;
        self.slots[slot].store(Some(Arc::new(cached)));
        self.filled[slot / 64].fetch_or(1 << (slot % 64), Ordering::AcqRel);
    }

    /// Forgets every answer.
    pub(crate) fn clear(&self) {
        for (word, filled) in self.filled.iter().enumerate() {
            let mut bits = filled.swap(0, Ordering::AcqRel);
            while bits != 0 {
                self.slots[word * 64 + bits.trailing_zeros() as usize].store(None);
                bits &= bits - 1;
            }
        }
    }
}

impl Drop for DecisionCache {
    fn drop(&mut self) {
        let filled: Vec<u64> = self.filled.iter_mut().map(|bits| *bits.get_mut()).collect();
        for (i, slot) in std::mem::take(&mut self.slots).into_vec().into_iter().enumerate() {
            if filled[i / 64] & (1 << (i % 64)) == 0 {
                // Never given an answer: a null pointer.
                std::mem::forget(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ConnectionName;

    #[test]
    fn clearing_and_dropping_free_every_answer() {
        let cache = DecisionCache::new();
        let answer = Decision::Use(ConnectionName::from_static("replica"));
        let models: Vec<ModelInfo> = (0..100).map(|i| ModelInfo::named(format!("M{i}"))).collect();
        let no_hints = Hints::new();
        let keys: Vec<CacheKey<'_>> = models
            .iter()
            .map(|m| CacheKey::new(OpKind::Read, m, &no_hints))
            .collect();
        for key in &keys {
            cache.put(key, &answer);
        }
        // A reader's guard keeps its answer alive across the clear and the
        // drop, and the cache holds no other reference to anything.
        let slot = &cache.slots[keys[7].hash as usize % SLOTS];
        let guard = slot.load_full().expect("cached");
        cache.clear();
        assert!(keys.iter().all(|key| cache.get(key).is_none()));
        cache.put(&keys[7], &answer);
        let again = slot.load_full().expect("cached again");
        drop(cache);
        assert_eq!(
            Arc::strong_count(&guard),
            1,
            "the cleared answer is freed but for the guard"
        );
        assert_eq!(Arc::strong_count(&again), 1, "the dropped cache released its answer");
        assert_eq!(guard.decision, answer);
    }

    #[test]
    fn answers_only_for_the_same_input() {
        let cache = DecisionCache::new();
        let answer = Decision::Use(ConnectionName::from_static("replica"));
        let user = ModelInfo::named("User");
        let no_hints = Hints::new();
        let acme = Hints::new().with("tenant", "acme");
        let read = CacheKey::new(OpKind::Read, &user, &no_hints);
        assert_eq!(cache.get(&read), None);
        cache.put(&read, &answer);
        assert_eq!(cache.get(&read), Some(answer.clone()));
        // The same bytes from another `ModelInfo` hit; any other part misses.
        let same_user = ModelInfo::named("User");
        assert_eq!(
            cache.get(&CacheKey::new(OpKind::Read, &same_user, &no_hints)),
            Some(answer.clone())
        );
        assert_eq!(cache.get(&CacheKey::new(OpKind::Write, &user, &no_hints)), None);
        assert_eq!(cache.get(&CacheKey::new(OpKind::Read, &user, &acme)), None);
        let usr = ModelInfo::named("Usr");
        assert_eq!(cache.get(&CacheKey::new(OpKind::Read, &usr, &no_hints)), None);
        let user_with_table = ModelInfo::named("User").with_table("users");
        assert_eq!(
            cache.get(&CacheKey::new(OpKind::Read, &user_with_table, &no_hints)),
            None
        );
        cache.clear();
        assert_eq!(cache.get(&read), None);
    }

    #[test]
    fn a_colliding_slot_is_not_an_answer() {
        // Two inputs in one slot: the later one replaces the earlier, and
        // neither answers for the other.
        let cache = DecisionCache::new();
        let replica = Decision::Use(ConnectionName::from_static("replica"));
        let analytics = Decision::Use(ConnectionName::from_static("analytics"));
        let no_hints = Hints::new();
        let models: Vec<ModelInfo> = (0..20_000).map(|i| ModelInfo::named(format!("M{i}"))).collect();
        let first = CacheKey::new(OpKind::Read, &models[0], &no_hints);
        let slot = first.hash as usize % SLOTS;
        let other = models[1..]
            .iter()
            .map(|m| CacheKey::new(OpKind::Read, m, &no_hints))
            .find(|k| k.hash as usize % SLOTS == slot)
            .expect("some model shares the slot");
        cache.put(&first, &replica);
        cache.put(&other, &analytics);
        assert_eq!(cache.get(&first), None);
        assert_eq!(cache.get(&other), Some(analytics));
    }

    #[test]
    fn same_bytes_compares_every_byte() {
        let a: Vec<u8> = (0..37).collect();
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 1;
            assert!(!same_bytes(&a, &b), "byte {i}");
        }
        assert!(same_bytes(&a, &a.clone()));
        assert!(same_bytes(&[], &[]));
    }

    #[test]
    fn large_inputs_are_not_kept() {
        let cache = DecisionCache::new();
        let answer = Decision::Use(ConnectionName::from_static("replica"));
        let large = ModelInfo::named("x".repeat(MAX_KEY_LEN + 1));
        let key = CacheKey::new(OpKind::Read, &large, &NO);
        cache.put(&key, &answer);
        assert_eq!(cache.get(&key), None);
    }

    static NO: std::sync::LazyLock<Hints> = std::sync::LazyLock::new(Hints::new);
}
