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

/// `N` counters bumped as [`StripedCounter`] is, sharing each thread's
/// stripe (one cache line holds eight), for counts kept by kind.
pub(crate) struct StripedCounters<const N: usize> {
    stripes: [PaddedArray<N>; SLOTS],
    overflow: PaddedArray<N>,
}

#[repr(align(64))]
struct PaddedArray<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for PaddedArray<N> {
    fn default() -> Self {
        PaddedArray(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Default for StripedCounters<N> {
    fn default() -> Self {
        StripedCounters {
            stripes: std::array::from_fn(|_| PaddedArray::default()),
            overflow: PaddedArray::default(),
        }
    }
}

impl<const N: usize> StripedCounters<N> {
    /// Counts one in counter `i` (below `N`).
    #[inline]
    pub(crate) fn increment(&self, i: usize) {
        match thread_slot::current() {
            Slot::Owned(slot) => {
                let own = &self.stripes[slot].0[i];
                own.store(own.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            Slot::Shared(_) => {
                self.overflow.0[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every counter's sum.
    pub(crate) fn get_all(&self) -> [u64; N] {
        let mut sums = [0; N];
        for stripe in self.stripes.iter().chain([&self.overflow]) {
            for (sum, cell) in sums.iter_mut().zip(&stripe.0) {
                *sum += cell.load(Ordering::Relaxed);
            }
        }
        sums
    }
}

impl<const N: usize> std::fmt::Debug for StripedCounters<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.get_all())
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

    #[test]
    fn counts_each_kind_exactly_across_many_threads() {
        let counters = StripedCounters::<12>::default();
        std::thread::scope(|s| {
            for t in 0..40 {
                let counters = &counters;
                s.spawn(move || {
                    for _ in 0..1000 {
                        counters.increment(t % 12);
                    }
                });
            }
        });
        let sums = counters.get_all();
        assert_eq!(sums.iter().sum::<u64>(), 40_000);
        assert_eq!(sums[0], 4000);
        assert_eq!(sums[11], 3000);
    }
}
