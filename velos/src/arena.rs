//! The CLI's allocator. A command lives about a millisecond, and musl's allocator maps
//! and unmaps small groups of pages for it (~60 `mmap` and 55 `munmap` per command),
//! each page faulted in when first touched, again after every unmap (a page fault costs
//! ~3.5 µs in a VM). Here allocations come from one arena mapped once: a bump pointer
//! hands out memory in order, packed, and nothing is given back to the system. Memory
//! freed is reused only when it was the last allocation, which is also grown and shrunk
//! in place (a growing `Vec` or `String`). Once the arena is spent (a long-lived
//! `velos logs -f` or `velos monit`), allocations go to the system allocator, which
//! frees as usual: [`ARENA_BYTES`] is the most memory this keeps that musl's would
//! have given back.
//!
//! The first [`POPULATED_BYTES`] are populated by the kernel when the arena is mapped
//! (one call instead of a fault per page): what even `velos --version` uses.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The arena's size: address space reserved at the first allocation; only the pages
/// touched (and the populated ones) take memory.
pub const ARENA_BYTES: usize = 1024 * 1024;

/// Pages populated when the arena is mapped.
const POPULATED_BYTES: usize = 128 * 1024;

/// Every allocation of the CLI goes through the arena.
#[global_allocator]
static ALLOCATOR: Arena = Arena::new();

/// `base` before the first allocation.
const UNMAPPED: usize = 0;
/// `base` when the arena could not be mapped: the system allocator does everything.
const FAILED: usize = 1;

/// The allocator: an arena in front of [`System`].
pub struct Arena {
    /// The arena's address, or [`UNMAPPED`] or [`FAILED`].
    base: AtomicUsize,
    /// Bytes handed out from the arena's start.
    used: AtomicUsize,
}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            base: AtomicUsize::new(UNMAPPED),
            used: AtomicUsize::new(0),
        }
    }

    /// The arena's address, mapped at the first call; `None` if it cannot be.
    fn base(&self) -> Option<usize> {
        match self.base.load(Ordering::Acquire) {
            UNMAPPED => self.map(),
            FAILED => None,
            base => Some(base),
        }
    }

    #[cold]
    fn map(&self) -> Option<usize> {
        use rustix::mm::{Advice, MapFlags, ProtFlags, madvise, mmap_anonymous, munmap};
        // SAFETY: a new private anonymous mapping, which nothing else refers to.
        let mapped = unsafe {
            mmap_anonymous(
                std::ptr::null_mut(),
                ARENA_BYTES,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::NORESERVE,
            )
        };
        let Ok(mapped) = mapped else {
            let _ =
                self.base
                    .compare_exchange(UNMAPPED, FAILED, Ordering::AcqRel, Ordering::Acquire);
            return self.base();
        };
        // SAFETY: the first pages of the mapping just made. Failure (a kernel before
        // 5.14) only means they are faulted in one by one.
        let _ = unsafe { madvise(mapped, POPULATED_BYTES, Advice::LinuxPopulateWrite) };
        match self.base.compare_exchange(
            UNMAPPED,
            mapped as usize,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Some(mapped as usize),
            // Another thread mapped one first: use that.
            Err(_) => {
                // SAFETY: our own mapping, never handed out.
                let _ = unsafe { munmap(mapped, ARENA_BYTES) };
                self.base()
            }
        }
    }

    /// Where `ptr` lies in the arena, if it does.
    fn offset(&self, ptr: *mut u8) -> Option<usize> {
        let base = self.base.load(Ordering::Acquire);
        let address = ptr as usize;
        (base > FAILED && address >= base && address < base + ARENA_BYTES).then(|| address - base)
    }

    /// `layout` from the arena, or `None` when it does not fit in what is left.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base()?;
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let start = (base + used).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > ARENA_BYTES {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => used = now,
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Arena {
        Arena::new()
    }
}

// SAFETY: memory from the arena is handed out once (the bump pointer only moves back
// over the last allocation, when it is freed or shrunk), aligned as asked, and never
// given to `System`; everything else is `System`'s.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => {
                // SAFETY: `layout.size()` bytes at `ptr` are ours. (Only memory freed
                // back by the last allocation is not zero already.)
                unsafe { std::ptr::write_bytes(ptr, 0, layout.size()) };
                ptr
            }
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset(ptr) {
            // The last allocation gives its room back; any other stays used.
            Some(start) => {
                let _ = self.used.compare_exchange(
                    start + layout.size(),
                    start,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            // SAFETY: not the arena's, so `System`'s, with the caller's layout.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(start) = self.offset(ptr) else {
            // SAFETY: not the arena's, so `System`'s, with the caller's layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        let end = start + layout.size();
        // The last allocation grows or shrinks where it is.
        if let Some(new_end) = start.checked_add(new_size)
            && new_end <= ARENA_BYTES
            && self
                .used
                .compare_exchange(end, new_end, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: a valid layout (the caller's alignment, a size it vouches for).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both hold at least `layout.size()` bytes, and do not overlap
            // (`new` is a fresh allocation).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_apart_and_grow_in_place_when_last() {
        let arena = Arena::new();
        unsafe {
            let small = Layout::from_size_align(24, 8).unwrap();
            let a = arena.alloc(small);
            let b = arena.alloc(Layout::from_size_align(100, 64).unwrap());
            assert!(arena.offset(a).is_some() && arena.offset(b).is_some());
            assert_eq!(b as usize % 64, 0);
            assert!(b as usize >= a as usize + 24);
            std::ptr::write_bytes(a, 0xaa, 24);
            // The last allocation grows in place; an earlier one moves, keeping its bytes.
            let grown = arena.realloc(b, Layout::from_size_align(100, 64).unwrap(), 5000);
            assert_eq!(grown, b);
            let moved = arena.realloc(a, small, 48);
            assert_ne!(moved, a);
            assert!(
                std::slice::from_raw_parts(moved, 24)
                    .iter()
                    .all(|&x| x == 0xaa)
            );
            // Freed last, its room is handed out again, zeroed when asked.
            let layout = Layout::from_size_align(48, 8).unwrap();
            arena.dealloc(moved, layout);
            let again = arena.alloc_zeroed(layout);
            assert_eq!(again, moved);
            assert!(
                std::slice::from_raw_parts(again, 48)
                    .iter()
                    .all(|&x| x == 0)
            );
        }
    }

    #[test]
    fn what_does_not_fit_comes_from_the_system_and_goes_back_to_it() {
        let arena = Arena::new();
        unsafe {
            let big = Layout::from_size_align(ARENA_BYTES + 1, 8).unwrap();
            let ptr = arena.alloc(big);
            assert!(!ptr.is_null());
            assert!(arena.offset(ptr).is_none());
            std::ptr::write_bytes(ptr, 1, big.size());
            arena.dealloc(ptr, big);
            // An arena allocation grown past the arena moves to the system.
            let small = Layout::from_size_align(16, 8).unwrap();
            let a = arena.alloc(small);
            let _pin = arena.alloc(small);
            let moved = arena.realloc(a, small, ARENA_BYTES);
            assert!(arena.offset(moved).is_none());
            arena.dealloc(moved, Layout::from_size_align(ARENA_BYTES, 8).unwrap());
        }
    }
}
