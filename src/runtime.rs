//! Process-wide tuning that the `graft` binary and the benchmarks apply
//! first thing in `main` ([`keep_freed_memory`]): mimalloc's purging, found with `perf`
//! on a fine-tuning run; the gain is in `docs/performance.md`.
//!
//! **Allocator.** mimalloc is the global allocator (`#[global_allocator]`;
//! with its `override` feature it also serves C `malloc`, e.g. RocksDB's).
//! By default mimalloc 3 hands memory that has been free for a while (1 s)
//! back to the kernel (it *purges* it, `MADV_DONTNEED`), and the kernel zeroes every
//! page again at the next touch. The encoder frees and re-allocates tensors of
//! megabytes many times per batch, so a fine-tuning step spent about a fifth
//! of its time zeroing pages in the kernel (`clear_page_erms`, seen with
//! `perf` on a `--train-layers 12` run). [`keep_freed_memory`] turns purging
//! off: freed memory stays committed and is reused. The price: the resident
//! size stays at its high-water mark instead of shrinking after a burst.
//!
//! (Lowering the spin of candle's thread-pool workers was tried and left
//! out: `docs/performance.md`.)

/// `mi_option_purge_delay`: index 15 of `mi_option_e` in `mimalloc.h` of
/// mimalloc 3.3.2, the version libmimalloc-sys 0.1.49 builds by default (2.3.2
/// with its `v2` feature: the same index); the crate's Rust bindings predate
/// the option's name. Milliseconds; -1: never purge.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Stops mimalloc from handing freed memory back to the kernel (see the
/// module's documentation), unless the environment sets the purge delay
/// itself ([`purge_delay_set_by_environment`]; mimalloc reads it at start-up:
/// e.g. `MIMALLOC_PURGE_DELAY=1000`, mimalloc's default, to trade speed for a
/// smaller resident size). mimalloc reads the option at every free, so it
/// applies to memory allocated before the call too. Call it first thing in
/// `main`, before other threads start: mimalloc sets options without atomics.
pub fn keep_freed_memory() {
    if !purge_delay_set_by_environment() {
        // SAFETY: sets one integer option, before other threads exist.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

/// Whether the environment sets mimalloc's purge delay: `MIMALLOC_PURGE_DELAY`
/// or its old name `MIMALLOC_RESET_DELAY`, in any case (mimalloc compares
/// names without regard to case).
pub fn purge_delay_set_by_environment() -> bool {
    std::env::vars_os().any(|(name, _)| {
        name.to_str().is_some_and(|n| {
            n.eq_ignore_ascii_case("MIMALLOC_PURGE_DELAY")
                || n.eq_ignore_ascii_case("MIMALLOC_RESET_DELAY")
        })
    })
}

/// mimalloc's current purge delay in ms (-1: never).
#[cfg(test)]
fn purge_delay_ms() -> i64 {
    // SAFETY: reads one integer option.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purging_is_turned_off_unless_the_environment_says_otherwise() {
        // Index 15 is purge_delay: without a setting in the environment it
        // holds mimalloc 3's default, 1000 ms (no other option of that
        // version defaults to 1000). Nothing else in this test binary
        // changes it.
        let before = purge_delay_ms();
        keep_freed_memory();
        if purge_delay_set_by_environment() {
            assert_eq!(purge_delay_ms(), before, "the environment's value wins");
        } else {
            assert_eq!(before, 1000);
            assert_eq!(purge_delay_ms(), -1);
        }
    }
}
