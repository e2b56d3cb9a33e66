//! Counters cheap enough for the routing hot path.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::thread_slot::{self, SLOTS, Slot};

/// A counter that threads bump without a locked instruction or a shared
/// cache line: a thread that owns a slot (see [`thread_slot`]) is the only
/// writer of its stripe, so a plain load and store are exact; any other
/// thread adds atomically to the overflow cell. Reading sums them.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Padded; SLOTS],
    overflow: Padded,
}

#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

impl StripedCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        match thread_slot::current() {
            Slot::Owned(i) => {
                let own = &self.stripes[i].0;
                own.store(own.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            Slot::Shared(_) => {
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
