//! Counters cheap enough for the routing hot path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Threads that get a stripe of their own.
const STRIPES: usize = 8;

/// The first `STRIPES` threads that ever count get one stripe each, for
/// good; later threads share the overflow counter.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// A counter that threads bump without a locked instruction or a shared
/// cache line: each of the first 8 threads owns a stripe (one writer, so a
/// plain load and store are exact); any further thread adds atomically to an
/// overflow cell. Reading sums them.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Padded; STRIPES],
    overflow: Padded,
}

#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

impl StripedCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        let stripe = STRIPE.with(|s| *s);
        match self.stripes.get(stripe) {
            Some(own) => own.0.store(own.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed),
            None => {
                self.overflow.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.stripes
            .iter()
            .chain([&self.overflow])
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_exactly_across_many_threads() {
        let counter = StripedCounter::default();
        std::thread::scope(|s| {
            for _ in 0..40 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counter.increment();
                    }
                });
            }
        });
        assert_eq!(counter.get(), 40_000);
    }
}
