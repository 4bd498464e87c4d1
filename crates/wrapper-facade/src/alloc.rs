//! A counting global allocator: the system allocator behind a facade that counts
//! allocations, for tests and benchmarks that measure how many an operation makes.
//!
//! ```
//! use wrapper_facade::alloc::CountingAllocator;
//!
//! // In a test binary of its own: `#[global_allocator] static A: CountingAllocator = CountingAllocator::new();`
//! static A: CountingAllocator = CountingAllocator::new();
//! assert_eq!(A.allocations(), 0); // not the global allocator here: nothing counted
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting every allocation and reallocation (each is a call into
/// the allocator a hot path should not make).
#[derive(Debug)]
pub struct CountingAllocator {
    allocations: AtomicU64,
}

impl CountingAllocator {
    /// A counter at zero.
    pub const fn new() -> Self {
        CountingAllocator {
            allocations: AtomicU64::new(0),
        }
    }

    /// Allocations and reallocations so far, by every thread.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// Allocations and reallocations made while `f` runs (by every thread of the process).
    pub fn during(&self, f: impl FnOnce()) -> u64 {
        let before = self.allocations();
        f();
        self.allocations() - before
    }
}

impl Default for CountingAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every method forwards to `System` with the caller's own arguments, so the
// caller's obligations under `GlobalAlloc` are `System`'s preconditions; counting touches
// only an atomic and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's non-zero-sized layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this facade) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` and `layout` as `dealloc`; `new_size` is the caller's, non-zero and
        // in range as `GlobalAlloc::realloc` requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
