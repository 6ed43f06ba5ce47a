//! The normalizer on arbitrary text: no panic, and every range of the copy maps to a valid,
//! ordered range of the original on char boundaries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use watchdog::inspect::text::Normalized;

fuzz_target!(|text: &str| {
    let n = Normalized::new(text);
    let len = n.text.len();
    for (a, b) in [(0, len), (0, len / 2), (len / 3, len), (len / 2, len / 2)] {
        let r = n.original_range(a..b);
        assert!(r.start <= r.end && r.end <= text.len());
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
    }
});
