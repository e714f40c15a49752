//! A pool does not keep the memory of its largest result. (RSS is process-wide: this file holds
//! one test.)

use multiprocessing::Pool;

fn big(n: usize) -> Vec<u8> {
    vec![1; n]
}

/// Resident set size of this process, in MiB, once the allocator has given back what is free
/// (`malloc_trim`: what glibc keeps cached in a thread's arena is not memory the pool keeps;
/// under load its caching made this test fail with nothing held by the pool).
fn rss_mib() -> f64 {
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
    unsafe { libc::malloc_trim(0) };
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / (1 << 20) as f64
}

#[test]
fn rss_falls_back_after_a_large_result_is_dropped_with_the_pool_alive() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(big, vec![16, 16]).unwrap().len(), 2);
    let before = rss_mib();

    let r = pool.apply(big, (64 << 20,)).unwrap();
    assert_eq!(r.len(), 64 << 20);
    assert!(r.iter().all(|&b| b == 1));
    drop(r);
    let after_one = rss_mib();
    assert!(
        after_one < before + 10.0,
        "RSS {before:.1} MiB before, {after_one:.1} MiB after one 64 MiB result was dropped"
    );

    // Both workers return one at the same time.
    let both = pool.map_chunked(big, vec![64 << 20, 64 << 20], 1).unwrap();
    assert_eq!(both.iter().map(Vec::len).sum::<usize>(), 128 << 20);
    drop(both);
    let after_two = rss_mib();
    assert!(
        after_two < before + 10.0,
        "RSS {before:.1} MiB before, {after_two:.1} MiB after both workers' 64 MiB results were dropped"
    );
}
