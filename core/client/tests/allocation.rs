//! Decoding allocates in proportion to its input, and not at all past the size cap.
//!
//! A counting global allocator measures the peak bytes live while one push is handled. This
//! file holds a single test so no other test allocates concurrently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use callpush_client::adapter::{adapter_for, HandleContext};
use callpush_client::model::{Platform, RawPush};
use callpush_client::wire::{CallSigner, KeySet};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), SeqCst) + layout.size();
        PEAK.fetch_max(live, SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated while `f` runs, above what was live before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(SeqCst);
    PEAK.store(base, SeqCst);
    f();
    PEAK.load(SeqCst) - base
}

#[test]
fn handling_allocates_a_bounded_multiple_of_the_input() {
    let signer = CallSigner::from_seed(&[1; 32]);
    let keys = KeySet::from_jwks(&[signer.public_jwk()]).unwrap();
    let ctx = HandleContext::v1(&keys, 0, None);
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let inputs = [
        format!(r#"{{"callpush":"{}"}}"#, "a".repeat(4000)),
        format!(r#"{{"callpush":"{}.{}.{}"}}"#, "e".repeat(1300), "f".repeat(1300), "g".repeat(1300)),
        format!(r#"{{"data":"{}"}}"#, r#"{\"k\":1}"#.repeat(400)),
        nested(5000),
        format!(r#"{{"x":[{}]}}"#, "{},".repeat(3000) + "{}"),
        "\"".to_owned() + &"\\u0041".repeat(1500) + "\"",
    ];
    for platform in Platform::ALL {
        for input in &inputs {
            let raw = RawPush::from(input.as_str());
            let peak = peak_during(|| {
                let _ = adapter_for(platform).handle(&raw, &ctx);
            });
            assert!(
                peak <= 64 * input.len() + 16 * 1024,
                "{platform}: {peak} bytes for {} input bytes",
                input.len()
            );
        }
        // Past the cap nothing is parsed at all.
        let huge = RawPush::from("{".repeat(8 << 20));
        let peak = peak_during(|| {
            let _ = adapter_for(platform).handle(&huge, &ctx);
        });
        assert!(peak < 4096, "{platform}: {peak} bytes for an 8 MiB push");
    }
}
