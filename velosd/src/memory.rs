//! Memory the daemon gives back to the system.
//!
//! glibc's malloc raises its mmap threshold to the size of the largest block freed so far
//! (up to 32 MiB), and from then on serves blocks below it from its heaps, which it rarely
//! returns: after a single 16 MiB request the daemon would keep 16 MiB or more resident
//! per malloc arena for good. Setting the thresholds once at start turns that adjustment
//! off, so every block of 128 KiB or more (a large frame, a long string decoded from it)
//! is mapped on its own and unmapped when freed, and freed heap space over 128 KiB at the
//! top of a heap is returned at once.

/// Fixes malloc's mmap and trim thresholds at 128 KiB (glibc's defaults, minus the
/// adjustment). Elsewhere (musl, macOS) the allocator already behaves so: nothing to do.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_large_blocks_back() {
    use std::ffi::c_int;
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    const THRESHOLD_BYTES: c_int = 128 * 1024;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // SAFETY: mallopt takes two integers and changes only malloc's own settings, under
    // malloc's lock; both parameters exist in every glibc.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES);
        mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES);
    }
}

/// See the Linux version: other allocators do not keep what they were given back.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_large_blocks_back() {}

/// Returns the free pages inside malloc's heaps to the system: after a large request, the
/// many small blocks its typed form was made of (60,000 arguments, say) are free again but
/// may sit below a block still in use, where freeing alone returns nothing. Costs a walk
/// over the free blocks, so only for requests over [`LARGE_REQUEST_BYTES`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes an integer and works on malloc's own free lists under
    // its locks; freed memory is all it touches.
    unsafe {
        malloc_trim(0);
    }
}

/// See the Linux version.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// A request whose frame is larger than this is decoded off the connection's thread, its
/// buffer is not kept, and [`trim`] follows its answer.
pub const LARGE_REQUEST_BYTES: usize = 64 * 1024;
