//! A small slot number for each live thread, so that hot-path data can be
//! split per thread instead of shared between cores.
//!
//! The first [`SLOTS`] live threads each lease a slot of their own; a thread
//! gives its slot back when it exits, and the next thread to ask takes it.
//! Threads beyond that share, by their arrival order. Leasing happens once
//! per thread, under a lock; reading the slot afterwards is a thread-local
//! load.

use std::sync::Mutex;

/// How many threads at once can own a slot.
pub(crate) const SLOTS: usize = 8;

/// The thread's slot: owned (`< SLOTS`) or shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// No other live thread has this slot.
    Owned(usize),
    /// Other threads may have this slot too (`< SLOTS`).
    Shared(usize),
}

impl Slot {
    /// The slot's index, below [`SLOTS`], owned or not.
    #[inline]
    pub(crate) fn index(self) -> usize {
        match self {
            Slot::Owned(i) | Slot::Shared(i) => i,
        }
    }
}

struct Leases {
    /// Slots given back by threads that exited.
    free: Vec<usize>,
    /// Slots never leased yet start here; at `SLOTS` and above, threads share.
    next: usize,
}

static LEASES: Mutex<Leases> = Mutex::new(Leases {
    free: Vec::new(),
    next: 0,
});

/// A thread's lease: given back when the thread's locals are destroyed.
struct Lease(Slot);

impl Lease {
    fn take() -> Lease {
        let mut leases = LEASES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = leases.free.pop() {
            return Lease(Slot::Owned(i));
        }
        let n = leases.next;
        leases.next += 1;
        Lease(if n < SLOTS {
            Slot::Owned(n)
        } else {
            Slot::Shared(n % SLOTS)
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Slot::Owned(i) = self.0 {
            let mut leases = LEASES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            leases.free.push(i);
        }
    }
}

thread_local! {
    static LEASE: Lease = Lease::take();
}

/// This thread's slot. A thread whose locals are being destroyed gets a
/// shared slot.
#[inline]
pub(crate) fn current() -> Slot {
    LEASE.try_with(|lease| lease.0).unwrap_or(Slot::Shared(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_threads_never_own_the_same_slot() {
        // Threads come and go: slots are given back and reused, and no two
        // live threads own one.
        let owned = Mutex::new(std::collections::HashSet::new());
        for _round in 0..5 {
            let barrier = std::sync::Barrier::new(12);
            std::thread::scope(|s| {
                for _ in 0..12 {
                    s.spawn(|| {
                        let slot = current();
                        assert!(slot.index() < SLOTS);
                        if let Slot::Owned(i) = slot {
                            assert!(owned.lock().unwrap().insert(i), "slot {i} owned twice");
                        }
                        barrier.wait(); // all twelve live at once
                        if let Slot::Owned(i) = slot {
                            owned.lock().unwrap().remove(&i);
                        }
                    });
                }
            });
        }
    }
}
