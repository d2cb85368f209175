//! Handing memory freed after a burst back to the system.
//!
//! glibc's malloc keeps freed memory in the arena of the thread that freed it and returns
//! only what lies at the top of the heap. After a full index of 100,000 notes the daemon had
//! 287 MB of heap mapped for 38 MB in use (measured with `malloc_stats`), and kept it for
//! the rest of its run. SQLite allocates through the same malloc, so a Rust-only allocator
//! would not help; `malloc_trim` walks every arena and releases their free pages.

/// Returns freed heap pages to the system; call once a burst of work (a full index, a large
/// batch) is over. A no-op where the C library has no `malloc_trim`.
#[allow(unsafe_code)]
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes the arena
    // locks itself and has no preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Allocations of this size or more get their own mapping, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Keeps glibc's mmap threshold at 128 KiB; call first thing in `main`, before any thread.
///
/// glibc starts there, but raises the threshold (up to 32 MiB) each time such a mapping is
/// freed, after which big temporary buffers (an event's content, SQLite's and FTS5's
/// buffers during a full index) come from the arenas and leave holes between long-lived
/// allocations that `malloc_trim` cannot hand back. After a 100,000-note first start the
/// daemon settled at 96-104 MB resident with the moving threshold and at 65-66 MB with this
/// one (peak 221 -> 185 MB); a 10,000-note `reindex` was no slower. Setting it turns the
/// moving threshold off. A no-op where the C library is not glibc.
#[allow(unsafe_code)]
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters, under its own lock; called before
    // other threads start, it races with no allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
