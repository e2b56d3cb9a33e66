//! Instances kept by the threads that route.
//!
//! A thread keeps the instance it last used of up to [`PER_THREAD`] pools
//! (routers), so that its next decision on the same router takes that
//! instance from a thread-local slot and puts it back there: no atomic
//! read-modify-write, no cache line shared with another core, and the
//! instance's memory still warm in this core's caches.
//!
//! The pool counts kept instances as idle and bounds them (see
//! [`InstancePool`]). A kept instance that leaves its thread goes back to
//! its pool's shards (an eviction, the thread's exit), or is dropped after
//! a fault; either way its pool's counts follow. An instance of a pool that
//! no longer exists (its router was swapped out, or replaced its pool for
//! new connections or optimized code) is dropped when its
//! thread next keeps an instance in its slot, or exits: until then an idle
//! thread may hold up to [`PER_THREAD`] such instances.

use std::cell::RefCell;
use std::sync::Weak;

use super::instance::{InstancePool, RouterInstance};

/// How many routers' instances one thread keeps.
pub(crate) const PER_THREAD: usize = 4;

/// An instance kept by this thread, and the pool it counts in.
pub(crate) struct Kept {
    pool: Weak<InstancePool>,
    id: u64,
    /// Present until the instance is handed back or discarded.
    instance: Option<Box<RouterInstance>>,
}

impl Kept {
    /// The instance, to call.
    #[inline]
    pub(crate) fn instance(&mut self) -> &mut RouterInstance {
        self.instance
            .as_deref_mut()
            .expect("a kept instance is present until it is released")
    }

    /// Drops the instance (after a fault): it is no longer idle.
    pub(crate) fn discard(mut self) {
        if let Some(instance) = self.instance.take() {
            if let Some(pool) = self.pool.upgrade() {
                pool.forget_kept(None);
            }
            drop(instance);
        }
    }
}

impl Drop for Kept {
    /// An instance that leaves its thread (evicted, or the thread exits)
    /// goes back to its pool's shards, still idle.
    fn drop(&mut self) {
        if let Some(instance) = self.instance.take()
            && let Some(pool) = self.pool.upgrade()
        {
            pool.forget_kept(Some(instance));
        }
    }
}

/// This thread's kept instances.
struct Shelf {
    slots: [Option<Kept>; PER_THREAD],
    /// The slot to evict next when all hold live pools' instances.
    next_eviction: usize,
}

thread_local! {
    static SHELF: RefCell<Shelf> = const {
        RefCell::new(Shelf {
            slots: [const { None }; PER_THREAD],
            next_eviction: 0,
        })
    };
}

/// Takes this thread's kept instance of pool `id`, if it has one. (None as
/// well while the thread is exiting, or during a nested call.)
#[inline]
pub(crate) fn take(id: u64) -> Option<Kept> {
    SHELF
        .try_with(|shelf| {
            let mut shelf = shelf.try_borrow_mut().ok()?;
            shelf
                .slots
                .iter_mut()
                .find(|slot| slot.as_ref().is_some_and(|kept| kept.id == id))?
                .take()
        })
        .ok()
        .flatten()
}

/// Puts back an instance [`take`] gave, after a call that did not fault.
#[inline]
pub(crate) fn put_back(kept: Kept) {
    let refused = SHELF.try_with(|shelf| {
        let Ok(mut shelf) = shelf.try_borrow_mut() else {
            return Some(kept);
        };
        match shelf.slots.iter_mut().find(|slot| slot.is_none()) {
            Some(free) => {
                *free = Some(kept);
                None
            }
            // A nested call filled the slot meanwhile.
            None => Some(kept),
        }
    });
    // A kept instance with no slot goes back to its pool.
    drop(refused);
}

/// Keeps `instance` (of pool `id`) in this thread, evicting an instance of
/// another pool if need be. The caller has counted it as kept; it gets the
/// instance back when the thread cannot keep it (it already keeps one of
/// this pool, or it is exiting).
pub(crate) fn keep(
    pool: Weak<InstancePool>,
    id: u64,
    instance: Box<RouterInstance>,
) -> Result<(), Box<RouterInstance>> {
    let mut kept = Some(Kept {
        pool,
        id,
        instance: Some(instance),
    });
    let evicted = SHELF
        .try_with(|shelf| {
            let mut shelf = shelf.try_borrow_mut().ok()?;
            if shelf.slots.iter().flatten().any(|other| other.id == id) {
                return None;
            }
            // A free slot, or one whose pool is gone; else the next in turn.
            let free = shelf
                .slots
                .iter()
                .position(|slot| slot.as_ref().is_none_or(|other| other.pool.strong_count() == 0));
            let slot = free.unwrap_or_else(|| {
                let slot = shelf.next_eviction;
                shelf.next_eviction = (slot + 1) % PER_THREAD;
                slot
            });
            Some(std::mem::replace(&mut shelf.slots[slot], kept.take()))
        })
        .ok()
        .flatten();
    match kept {
        // Not kept: the instance goes back to the caller.
        Some(mut kept) => Err(kept.instance.take().expect("not released")),
        None => {
            // An evicted instance goes back to its pool.
            drop(evicted);
            Ok(())
        }
    }
}
