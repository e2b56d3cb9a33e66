//! The answer cache for routers that declare `dbroute_deterministic() == 1`:
//! answers keyed by the input bytes, bounded, lock-free, dropped with the
//! router (so a swap starts empty).
//!
//! Each slot is a sequence lock over plain words: a reader checks the
//! slot's sequence number, compares the key and copies the answer word by
//! word, and checks the sequence number again; a writer makes it odd while
//! it writes. Reading writes no shared memory, writing takes one
//! compare-and-swap and never waits (a slot another thread is writing is
//! skipped), and nothing is reference-counted or freed. (Slots holding
//! `ArcSwapOption`s made every store, and dropping the cache, walk every
//! thread's `arc_swap` debt list: 1.7 µs per miss with 16 live threads,
//! 22 µs with 256.)
//!
//! On the hot path, reads of the cache write nothing (a sequence lock); a
//! miss stores the new answer in a shared slot with one compare-and-swap (a
//! slot another thread is writing is skipped). With the chain read through
//! `ArcSwap` (whose reads write only the reading thread's slot), counters per
//! thread slot and instances kept per thread, a decision writes no memory
//! another core reads, for the first 8 live threads. A thread that keeps no
//! instance (its first decision, more than four routers, or half the idle
//! limit already kept by other threads) takes one from its pool shard, which
//! writes the shard's queue and the pool's shared counters.

use std::sync::atomic::{AtomicU64, Ordering, fence};

use crate::model::{Hints, ModelInfo};
use crate::name::ConnectionName;
use crate::router::{RouteDecision, RouteKind};

/// Slots in the cache. A new answer replaces whatever sat in its slot, so
/// the cache never holds more than this many answers.
const SLOTS: usize = 1024;

/// Words of key a slot holds: the model's JSON, then the hints' JSON, then
/// the origin's name, each from a word boundary. An input whose key does
/// not fit is not cached.
const KEY_WORDS: usize = 24;

/// Words of a connection name (at most 64 bytes).
const NAME_WORDS: usize = 8;

/// What an input is made of, for the cache: the operation, the model's JSON
/// and the hints' JSON (empty when there are none), the origin's name
/// (empty when there is none: a name is never empty), and a hash of them
/// made from the hashes the model and hints computed once, when their JSON
/// was built. Two keys with the same parts are the same input bytes.
pub(crate) struct CacheKey<'a> {
    hash: u64,
    kind: RouteKind,
    model: &'a [u8],
    hints: &'a [u8],
    origin: &'a [u8],
}

impl<'a> CacheKey<'a> {
    #[inline]
    pub(crate) fn new(
        kind: RouteKind,
        model: &'a ModelInfo,
        hints: &'a Hints,
        origin: Option<&'a ConnectionName>,
    ) -> Self {
        let model = model.abi();
        let (hints, hints_hash) = if hints.is_empty() {
            (&[][..], 0)
        } else {
            let abi = hints.abi_closed();
            (abi.text().as_bytes(), abi.hash())
        };
        // A multiply-and-fold mix of the parts: the parts' hashes are
        // already well mixed, this only keeps their combinations apart.
        let hash = fold(model.hash() ^ kind as u64, hints_hash ^ 0x9E37_79B9_7F4A_7C15);
        // Out of line: an input without an origin pays one branch.
        let (origin, hash) = match origin {
            None => (&[][..], hash),
            Some(name) => (name.as_bytes(), with_origin(hash, name)),
        };
        CacheKey {
            hash,
            kind,
            model: model.text().as_bytes(),
            hints,
            origin,
        }
    }
}

/// `hash` mixed with a hash of the origin's name.
#[inline(never)]
fn with_origin(hash: u64, name: &ConnectionName) -> u64 {
    let (len, words) = name.to_words();
    let name_hash = words
        .iter()
        .fold(u64::from(len), |h, w| fold(h ^ w, 0xA076_1D64_78BD_642F));
    fold(hash, name_hash ^ 0xE703_7ED1_A0B4_28DB)
}

/// Multiplies `a` and `b` to 128 bits and folds the halves together.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let mixed = (u128::from(a) * u128::from(b)).to_le_bytes();
    u64::from_le_bytes(mixed[..8].try_into().unwrap_or_default())
        ^ u64::from_le_bytes(mixed[8..].try_into().unwrap_or_default())
}

/// Words holding `bytes`, zero-padded.
fn words(bytes: &[u8]) -> usize {
    bytes.len().div_ceil(8)
}

/// The little-endian words of `bytes`, the last one zero-padded.
#[inline(always)]
fn each_word(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    let last = (!rest.is_empty()).then(|| {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        u64::from_le_bytes(w)
    });
    chunks
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .chain(last)
}

/// Whether `key`'s words fit in a slot.
#[inline]
fn fits(key: &CacheKey<'_>) -> bool {
    words(key.model) + words(key.hints) + words(key.origin) <= KEY_WORDS
}

/// What a slot holds, besides its key's bytes and the name's words: the
/// operation and the lengths.
#[derive(Clone, Copy)]
struct Shape(u64);

impl Shape {
    /// The key's part: operation (bit 0), model length (bits 8..24), hints
    /// length (bits 24..40), origin length (bits 40..48, 0 for none). The
    /// answer's part: the name's length (bits 48..56), 0 for no opinion (a
    /// connection name is never empty).
    fn of_key(key: &CacheKey<'_>) -> u64 {
        key.kind as u64
            | (key.model.len() as u64) << 8
            | (key.hints.len() as u64) << 24
            | (key.origin.len() as u64) << 40
    }
    const KEY_BITS: u64 = (1 << 48) - 1;

    fn new(key: &CacheKey<'_>, name_len: u8) -> Self {
        Shape(Self::of_key(key) | u64::from(name_len) << 48)
    }
    fn answers(self, key: &CacheKey<'_>) -> bool {
        self.0 & Self::KEY_BITS == Self::of_key(key)
    }
    fn name_len(self) -> u8 {
        (self.0 >> 48) as u8
    }
}

/// One cached answer, under a sequence lock.
#[repr(align(64))]
struct Slot {
    /// Even when the slot is stable; odd while a writer fills it.
    seq: AtomicU64,
    /// The cache's generation when the answer was stored.
    generation: AtomicU64,
    hash: AtomicU64,
    shape: AtomicU64,
    key: [AtomicU64; KEY_WORDS],
    name: [AtomicU64; NAME_WORDS],
}

impl Slot {
    fn new() -> Self {
        Slot {
            seq: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            hash: AtomicU64::new(0),
            shape: AtomicU64::new(0),
            key: std::array::from_fn(|_| AtomicU64::new(0)),
            name: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The answer this slot holds for `key` in `generation`, if it does.
    #[inline]
    fn get(&self, key: &CacheKey<'_>, generation: u64) -> Option<RouteDecision> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq & 1 == 1
            || self.hash.load(Ordering::Relaxed) != key.hash
            || self.generation.load(Ordering::Relaxed) != generation
        {
            return None;
        }
        let shape = Shape(self.shape.load(Ordering::Relaxed));
        if !shape.answers(key) {
            return None;
        }
        // The shape matched, so the key's words fit in the slot.
        let mut differ = 0;
        for (stored, given) in self.key.iter().zip(each_word(key.model)) {
            differ |= stored.load(Ordering::Relaxed) ^ given;
        }
        let hints = self.key.iter().skip(words(key.model));
        for (stored, given) in hints.zip(each_word(key.hints)) {
            differ |= stored.load(Ordering::Relaxed) ^ given;
        }
        if !key.origin.is_empty() {
            differ |= self.origin_differs(key);
        }
        let name: [u64; NAME_WORDS] = std::array::from_fn(|i| self.name[i].load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        if differ != 0 || self.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        Some(match shape.name_len() {
            0 => RouteDecision::NoOpinion,
            // Stored from a name, and read back whole (the sequence number
            // did not move).
            len => RouteDecision::Use(ConnectionName::from_words(len, name)),
        })
    }

    /// The bits in which the origin's words of `key` differ from the
    /// slot's (out of line: an input without an origin skips it).
    #[inline(never)]
    fn origin_differs(&self, key: &CacheKey<'_>) -> u64 {
        let origin = self.key.iter().skip(words(key.model) + words(key.hints));
        origin.zip(each_word(key.origin)).fold(0, |differ, (stored, given)| {
            differ | (stored.load(Ordering::Relaxed) ^ given)
        })
    }

    /// Stores the answer `name` (length 0: no opinion) for `key`, unless
    /// another thread is writing the slot.
    fn put(&self, key: &CacheKey<'_>, generation: u64, name: (u8, [u64; NAME_WORDS])) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || self
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        self.generation.store(generation, Ordering::Relaxed);
        self.hash.store(key.hash, Ordering::Relaxed);
        self.shape.store(Shape::new(key, name.0).0, Ordering::Relaxed);
        let given = each_word(key.model)
            .chain(each_word(key.hints))
            .chain(each_word(key.origin));
        for (slot, word) in self.key.iter().zip(given) {
            slot.store(word, Ordering::Relaxed);
        }
        for (slot, word) in self.name.iter().zip(name.1) {
            slot.store(word, Ordering::Relaxed);
        }
        self.seq.store(seq + 2, Ordering::Release);
    }
}

/// A lookup that found no answer, and the generation it looked in. The
/// answer is stored in that generation: one computed while the cache was
/// cleared (by an instance that knew the old connections) stays hidden.
pub(crate) struct Miss {
    generation: u64,
}

/// A direct-mapped cache: one slot per hash bucket.
pub(crate) struct DecisionCache {
    slots: Box<[Slot]>,
    /// Answers stored in an earlier generation are not answers: clearing
    /// the cache moves to the next one. It starts at 1, so a slot never
    /// written (generation 0) answers nothing.
    generation: AtomicU64,
}

impl DecisionCache {
    pub(crate) fn new() -> Self {
        DecisionCache {
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
            generation: AtomicU64::new(1),
        }
    }

    /// The cached answer for this input, or the miss to store the answer
    /// with.
    #[inline]
    pub(crate) fn get(&self, key: &CacheKey<'_>) -> Result<RouteDecision, Miss> {
        let generation = self.generation.load(Ordering::Acquire);
        // A key that cannot be stored is never an answer (and its lengths
        // would not fit the slot's shape word).
        let hit = fits(key)
            .then(|| self.slots[key.hash as usize % SLOTS].get(key, generation))
            .flatten();
        hit.ok_or(Miss { generation })
    }

    /// Remembers the answer to the input `miss` was for. Refusals (whose
    /// messages may be long) and inputs longer than the slot's key are not
    /// kept.
    pub(crate) fn put(&self, key: &CacheKey<'_>, miss: Miss, decision: &RouteDecision) {
        // An answer from before a clear would never be served: do not let
        // it take a slot from a current one.
        if !fits(key) || miss.generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        let name = match decision {
            RouteDecision::NoOpinion => (0, [0; NAME_WORDS]),
            RouteDecision::Use(name) => name.to_words(),
            RouteDecision::Refuse(_) => return,
        };
        self.slots[key.hash as usize % SLOTS].put(key, miss.generation, name);
    }

    /// Forgets every answer.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ConnectionName;

    impl DecisionCache {
        /// `put` with a miss of the current generation.
        fn put_now(&self, key: &CacheKey<'_>, decision: &RouteDecision) {
            let generation = self.generation.load(Ordering::Acquire);
            self.put(key, Miss { generation }, decision);
        }
    }

    #[test]
    fn an_answer_asked_for_before_a_clear_stays_hidden_after_it() {
        // The router was asked before the clear (with the old connections)
        // and answers after it: that answer must not be served.
        let cache = DecisionCache::new();
        let user = ModelInfo::new("User");
        let key = CacheKey::new(RouteKind::Read, &user, &NO, None);
        let miss = cache.get(&key).unwrap_err();
        cache.clear();
        cache.put(&key, miss, &RouteDecision::Use(ConnectionName::from_static("replica")));
        assert_eq!(cache.get(&key).ok(), None);
    }

    #[test]
    fn an_answer_from_before_a_clear_does_not_replace_a_current_one() {
        let cache = DecisionCache::new();
        let user = ModelInfo::new("User");
        let key = CacheKey::new(RouteKind::Read, &user, &NO, None);
        let stale = cache.get(&key).unwrap_err();
        cache.clear();
        let current = RouteDecision::Use(ConnectionName::from_static("replica"));
        cache.put_now(&key, &current);
        cache.put(&key, stale, &RouteDecision::Use(ConnectionName::from_static("old")));
        assert_eq!(cache.get(&key).ok(), Some(current));
    }

    /// `count` models whose keys share one slot.
    fn colliding_models(count: usize) -> Vec<ModelInfo> {
        let no_hints = Hints::new();
        let all: Vec<ModelInfo> = (0..50_000).map(|i| ModelInfo::new(format!("M{i}"))).collect();
        let slot = CacheKey::new(RouteKind::Read, &all[0], &no_hints, None).hash as usize % SLOTS;
        let found: Vec<ModelInfo> = all
            .into_iter()
            .filter(|m| CacheKey::new(RouteKind::Read, m, &no_hints, None).hash as usize % SLOTS == slot)
            .take(count)
            .collect();
        assert_eq!(found.len(), count, "models sharing a slot");
        found
    }

    #[test]
    fn clearing_forgets_every_answer_and_the_cache_fills_again() {
        let cache = DecisionCache::new();
        let answer = RouteDecision::Use(ConnectionName::from_static("replica"));
        let models: Vec<ModelInfo> = (0..100).map(|i| ModelInfo::new(format!("M{i}"))).collect();
        let keys: Vec<CacheKey<'_>> = models
            .iter()
            .map(|m| CacheKey::new(RouteKind::Read, m, &NO, None))
            .collect();
        for key in &keys {
            cache.put_now(key, &answer);
        }
        assert!(keys.iter().any(|key| cache.get(key).is_ok()));
        cache.clear();
        assert!(keys.iter().all(|key| cache.get(key).is_err()));
        cache.put_now(&keys[7], &RouteDecision::NoOpinion);
        assert_eq!(cache.get(&keys[7]).ok(), Some(RouteDecision::NoOpinion));
    }

    #[test]
    fn refusals_are_not_kept() {
        let cache = DecisionCache::new();
        let user = ModelInfo::new("User");
        let key = CacheKey::new(RouteKind::Write, &user, &NO, None);
        cache.put_now(&key, &RouteDecision::Refuse("no".into()));
        assert_eq!(cache.get(&key).ok(), None);
    }

    #[test]
    fn readers_racing_writers_on_one_slot_only_ever_see_the_right_answer() {
        // Four inputs share a slot, each with its own answer; writers keep
        // replacing each other while readers check every answer they get.
        let models = colliding_models(4);
        let answers: Vec<RouteDecision> = ["a", "bb", "ccc-long-name-0123456789", "dddd"]
            .iter()
            .map(|n| RouteDecision::Use(ConnectionName::new(n).unwrap()))
            .collect();
        let cache = DecisionCache::new();
        let hits = AtomicU64::new(0);
        let writing = AtomicU64::new(2);
        std::thread::scope(|scope| {
            for writer in 0..2 {
                let (models, answers, cache, writing) = (&models, &answers, &cache, &writing);
                scope.spawn(move || {
                    for round in 0..20_000 {
                        let i = (round + writer) % models.len();
                        cache.put_now(&CacheKey::new(RouteKind::Read, &models[i], &NO, None), &answers[i]);
                    }
                    writing.fetch_sub(1, Ordering::Release);
                });
            }
            for _ in 0..2 {
                let (models, answers, cache, hits, writing) = (&models, &answers, &cache, &hits, &writing);
                scope.spawn(move || {
                    // While the writers write, then one whole pass after: the
                    // last answer stored stays, so that pass hits once.
                    let mut after = 0;
                    for i in (0..models.len()).cycle() {
                        if writing.load(Ordering::Acquire) == 0 {
                            if after == models.len() {
                                break;
                            }
                            after += 1;
                        }
                        if let Ok(got) = cache.get(&CacheKey::new(RouteKind::Read, &models[i], &NO, None)) {
                            assert_eq!(got, answers[i], "the answer of another input");
                            hits.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert!(hits.load(Ordering::Relaxed) > 0, "the readers never hit");
    }

    #[test]
    fn answers_only_for_the_same_input() {
        let cache = DecisionCache::new();
        let answer = RouteDecision::Use(ConnectionName::from_static("replica"));
        let user = ModelInfo::new("User");
        let no_hints = Hints::new();
        let acme = Hints::new().with("tenant", "acme");
        let read = CacheKey::new(RouteKind::Read, &user, &no_hints, None);
        assert_eq!(cache.get(&read).ok(), None);
        cache.put_now(&read, &answer);
        assert_eq!(cache.get(&read).ok(), Some(answer.clone()));
        // The same bytes from another `ModelInfo` hit; any other part misses.
        let same_user = ModelInfo::new("User");
        assert_eq!(
            cache
                .get(&CacheKey::new(RouteKind::Read, &same_user, &no_hints, None))
                .ok(),
            Some(answer.clone())
        );
        assert_eq!(
            cache.get(&CacheKey::new(RouteKind::Write, &user, &no_hints, None)).ok(),
            None
        );
        assert_eq!(
            cache.get(&CacheKey::new(RouteKind::Read, &user, &acme, None)).ok(),
            None
        );
        let usr = ModelInfo::new("Usr");
        assert_eq!(
            cache.get(&CacheKey::new(RouteKind::Read, &usr, &no_hints, None)).ok(),
            None
        );
        let user_with_table = ModelInfo::new("User").with_table("users");
        assert_eq!(
            cache
                .get(&CacheKey::new(RouteKind::Read, &user_with_table, &no_hints, None))
                .ok(),
            None
        );
        cache.clear();
        assert_eq!(cache.get(&read).ok(), None);
    }

    #[test]
    fn a_colliding_slot_is_not_an_answer() {
        // Two inputs in one slot: the later one replaces the earlier, and
        // neither answers for the other.
        let cache = DecisionCache::new();
        let replica = RouteDecision::Use(ConnectionName::from_static("replica"));
        let analytics = RouteDecision::Use(ConnectionName::from_static("analytics"));
        let models = colliding_models(2);
        let first = CacheKey::new(RouteKind::Read, &models[0], &NO, None);
        let other = CacheKey::new(RouteKind::Read, &models[1], &NO, None);
        cache.put_now(&first, &replica);
        cache.put_now(&other, &analytics);
        assert_eq!(cache.get(&first).ok(), None);
        assert_eq!(cache.get(&other).ok(), Some(analytics));
    }

    #[test]
    fn only_the_same_bytes_split_the_same_way_are_an_answer() {
        // Keys built from raw bytes, all with one hash (so one slot): the
        // slot must tell them apart by their bytes and lengths alone.
        let key = |model: &'static [u8], hints: &'static [u8]| CacheKey {
            hash: 7,
            kind: RouteKind::Read,
            model,
            hints,
            origin: b"",
        };
        let answer = RouteDecision::Use(ConnectionName::from_static("replica"));
        let cache = DecisionCache::new();
        let stored = key(b"12345678", b"ABCDEFGH");
        cache.put_now(&stored, &answer);
        assert_eq!(cache.get(&stored).ok(), Some(answer.clone()));
        // The same lengths, one byte different.
        assert_eq!(cache.get(&key(b"12345678", b"ABCDEFGX")).ok(), None);
        // The same words, split between model and hints elsewhere.
        assert_eq!(cache.get(&key(b"12345678ABCDEFGH", b"")).ok(), None);
        // A model whose length overflows the slot's length field into the
        // hints' one, and whose first words are the stored ones.
        let short = key(b"abcd", b"x");
        cache.put_now(&short, &answer);
        let mut long = b"abcd\0\0\0\0x".to_vec();
        long.resize(65_536 + 4, 0);
        let long: &'static [u8] = long.leak();
        assert_eq!(cache.get(&key(long, b"")).ok(), None);
        assert_eq!(cache.get(&short).ok(), Some(answer));
    }

    #[test]
    fn an_origin_is_part_of_the_key() {
        let cache = DecisionCache::new();
        let user = ModelInfo::new("User");
        let (other, third) = (
            ConnectionName::from_static("other"),
            ConnectionName::from_static("third"),
        );
        let (to_other, to_third) = (RouteDecision::Use(other), RouteDecision::Use(third));
        let from_other = CacheKey::new(RouteKind::Write, &user, &NO, Some(&other));
        let from_third = CacheKey::new(RouteKind::Write, &user, &NO, Some(&third));
        let from_nowhere = CacheKey::new(RouteKind::Write, &user, &NO, None);
        cache.put_now(&from_other, &to_other);
        assert_eq!(cache.get(&from_other).ok(), Some(to_other.clone()));
        assert_eq!(cache.get(&from_third).ok(), None);
        assert_eq!(cache.get(&from_nowhere).ok(), None);
        cache.put_now(&from_third, &to_third);
        cache.put_now(&from_nowhere, &RouteDecision::NoOpinion);
        assert_eq!(cache.get(&from_other).ok(), Some(to_other));
        assert_eq!(cache.get(&from_third).ok(), Some(to_third));
        assert_eq!(cache.get(&from_nowhere).ok(), Some(RouteDecision::NoOpinion));
    }

    #[test]
    fn the_same_words_split_between_hints_and_origin_are_another_key() {
        let key = |hints: &'static [u8], origin: &'static [u8]| CacheKey {
            hash: 7,
            kind: RouteKind::Read,
            model: b"12345678",
            hints,
            origin,
        };
        let answer = RouteDecision::Use(ConnectionName::from_static("replica"));
        let cache = DecisionCache::new();
        cache.put_now(&key(b"ABCDEFGH", b"other"), &answer);
        assert_eq!(cache.get(&key(b"ABCDEFGH", b"other")).ok(), Some(answer));
        assert_eq!(cache.get(&key(b"ABCDEFGHother", b"")).ok(), None);
        assert_eq!(cache.get(&key(b"ABCDEFGH", b"othe")).ok(), None);
    }

    #[test]
    fn large_inputs_are_not_kept() {
        let cache = DecisionCache::new();
        let answer = RouteDecision::Use(ConnectionName::from_static("replica"));
        let large = ModelInfo::new("x".repeat(KEY_WORDS * 8 + 1));
        let key = CacheKey::new(RouteKind::Read, &large, &NO, None);
        cache.put_now(&key, &answer);
        assert_eq!(cache.get(&key).ok(), None);
    }

    #[test]
    fn a_key_of_exactly_the_limit_is_kept_and_one_word_more_is_not() {
        let cache = DecisionCache::new();
        let answer = RouteDecision::Use(ConnectionName::from_static("replica"));
        let models: Vec<ModelInfo> = (1..KEY_WORDS * 8).map(|n| ModelInfo::new("x".repeat(n))).collect();
        let words_of = |model: &ModelInfo| words(CacheKey::new(RouteKind::Read, model, &NO, None).model);
        let at_limit = models
            .iter()
            .rfind(|m| words_of(m) == KEY_WORDS)
            .expect("a key of the limit");
        let over = models
            .iter()
            .find(|m| words_of(m) == KEY_WORDS + 1)
            .expect("a key over it");
        for (model, kept) in [(at_limit, true), (over, false)] {
            let key = CacheKey::new(RouteKind::Read, model, &NO, None);
            cache.put_now(&key, &answer);
            assert_eq!(cache.get(&key).is_ok(), kept, "{} words", words_of(model));
        }
    }

    static NO: std::sync::LazyLock<Hints> = std::sync::LazyLock::new(Hints::new);
}
