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

/// Which slots are leased.
struct Leases {
    /// Slots given back by threads that exited.
    free: Vec<usize>,
    /// Slots never leased yet start here; at `SLOTS` and above, threads share.
    next: usize,
}

impl Leases {
    const fn new() -> Self {
        Leases {
            free: Vec::new(),
            next: 0,
        }
    }

    /// A slot for a new thread: one given back, else a fresh one, else a
    /// shared one.
    fn take(&mut self) -> Slot {
        if let Some(i) = self.free.pop() {
            return Slot::Owned(i);
        }
        let n = self.next;
        self.next += 1;
        if n < SLOTS {
            Slot::Owned(n)
        } else {
            Slot::Shared(n % SLOTS)
        }
    }

    /// A thread's slot, when it exits.
    fn give_back(&mut self, slot: Slot) {
        if let Slot::Owned(i) = slot {
            self.free.push(i);
        }
    }
}

static LEASES: Mutex<Leases> = Mutex::new(Leases::new());

fn leases() -> std::sync::MutexGuard<'static, Leases> {
    LEASES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A thread's lease: given back when the thread's locals are destroyed.
struct Lease(Slot);

impl Drop for Lease {
    fn drop(&mut self) {
        leases().give_back(self.0);
    }
}

thread_local! {
    static LEASE: Lease = Lease(leases().take());
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
    fn slots_are_owned_until_given_back_then_shared() {
        let mut leases = Leases::new();
        let first: Vec<Slot> = (0..SLOTS).map(|_| leases.take()).collect();
        assert_eq!(first, (0..SLOTS).map(Slot::Owned).collect::<Vec<_>>());
        // A ninth thread shares.
        let ninth = leases.take();
        assert_eq!(ninth, Slot::Shared(0));
        // A thread that exits gives its slot to the next one; a shared slot
        // given back changes nothing.
        leases.give_back(ninth);
        leases.give_back(first[3]);
        assert_eq!(leases.take(), Slot::Owned(3));
        assert_eq!(leases.take(), Slot::Shared(1));
    }

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
