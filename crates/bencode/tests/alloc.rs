//! Hostile length prefixes and depth bombs must fail without large
//! allocations. A counting global allocator measures what decoding asks for.
//! (One test only in this binary, so no other test allocates concurrently.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use webtorrent_bencode::{DecodeErrorKind, decode};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the counter
// has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let result = f();
    (result, ALLOCATED.load(Ordering::Relaxed) - before)
}

#[test]
fn hostile_inputs_allocate_little() {
    // Huge length prefix: nothing is allocated at all.
    let (result, bytes) = allocated_by(|| decode(b"9999999999999:x").map(|_| ()));
    assert!(matches!(
        result.unwrap_err().kind,
        DecodeErrorKind::LengthExceedsInput { .. }
    ));
    assert_eq!(bytes, 0);

    // A huge length inside a list: only the list's frame stack.
    let (result, bytes) = allocated_by(|| decode(b"ll9999999999999:xee").map(|_| ()));
    assert!(result.is_err());
    assert!(bytes < 1024, "{bytes} bytes allocated");

    // Depth bomb: bounded by the depth limit, not the input length.
    let bomb = vec![b'l'; 100_000];
    let (result, bytes) = allocated_by(|| decode(&bomb).map(|_| ()));
    assert!(matches!(
        result.unwrap_err().kind,
        DecodeErrorKind::DepthLimitExceeded { .. }
    ));
    assert!(bytes < 64 * 1024, "{bytes} bytes allocated");
}
