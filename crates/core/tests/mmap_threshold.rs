//! glibc's mmap threshold stays where `memory::fix_mmap_threshold` put it (a test binary of
//! its own: it reads the allocator's process-wide counters, which other tests would move).

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
#[allow(unsafe_code)]
fn a_big_buffer_gets_its_own_mapping_after_a_bigger_one_was_freed() {
    vaultkeeper_core::memory::fix_mmap_threshold();
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let mapped = || unsafe { libc::mallinfo2() }.hblks;
    // Freeing a mapped 512 KiB buffer is what raises glibc's moving threshold past 512 KiB.
    drop(std::hint::black_box(vec![1u8; 512 * 1024]));
    let before = mapped();
    let second = std::hint::black_box(vec![1u8; 256 * 1024]);
    assert_eq!(
        mapped(),
        before + 1,
        "a 256 KiB buffer should be mapped on its own, not carved from an arena"
    );
    drop(second);
    assert_eq!(mapped(), before, "and unmapped when freed");
}
