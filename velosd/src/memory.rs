//! Memory the daemon gives back to the system.
//!
//! glibc's malloc raises its mmap threshold to the size of the largest block freed so far
//! (up to 32 MiB), and from then on serves blocks below it from its heaps, which it rarely
//! returns: after a single 16 MiB request the daemon would keep 16 MiB or more resident
//! per malloc arena for good. Setting the thresholds once at start turns that adjustment
//! off, so every block of 128 KiB or more (a large frame, a long string decoded from it)
//! is mapped on its own and unmapped when freed, and freed heap space over 128 KiB at the
//! top of a heap is returned at once. Other allocators (musl, macOS) already behave so;
//! `platform` does nothing for them.

/// Fixes malloc's mmap and trim thresholds at 128 KiB (glibc's defaults, minus the
/// adjustment).
pub fn give_large_blocks_back() {
    crate::platform::fix_malloc_thresholds();
}

/// Returns the free pages inside malloc's heaps to the system: after a large request, the
/// many small blocks its typed form was made of (60,000 arguments, say) are free again but
/// may sit below a block still in use, where freeing alone returns nothing. Costs a walk
/// over the free blocks, so only for requests over [`LARGE_REQUEST_BYTES`].
pub fn trim() {
    crate::platform::trim_malloc_heaps();
}

/// A request whose frame is larger than this is decoded off the connection's thread, its
/// buffer is not kept, and [`trim`] follows its answer.
pub const LARGE_REQUEST_BYTES: usize = 64 * 1024;
