//! glibc's malloc: fixed thresholds and an explicit trim (why: see `memory`).

use std::ffi::c_int;

/// Fixes malloc's mmap and trim thresholds at 128 KiB (glibc's defaults, minus the
/// dynamic adjustment that raises them to the largest block freed so far).
#[allow(unsafe_code)]
pub fn fix_malloc_thresholds() {
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

/// Returns the free pages inside malloc's heaps to the system. Costs a walk over the
/// free blocks.
#[allow(unsafe_code)]
pub fn trim_malloc_heaps() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> c_int;
    }
    // SAFETY: malloc_trim takes an integer and works on malloc's own free lists under
    // its locks; freed memory is all it touches.
    unsafe {
        malloc_trim(0);
    }
}
