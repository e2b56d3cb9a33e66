//! Counters cheap enough for the routing hot path.

use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 16;

/// A counter split across cache lines, so threads that count at once do not
/// fight over one line. Reading it sums the stripes.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Padded; STRIPES],
}

#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

thread_local! {
    static STRIPE: usize = {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::thread::current().id()) as usize % STRIPES
    };
}

impl StripedCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        let stripe = STRIPE.with(|s| *s);
        self.stripes[stripe].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.stripes.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}
