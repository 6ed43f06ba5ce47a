//! Whether bytes hold a run of at least 16 base64 characters (letters, digits, `+ / - _`): the
//! first question the encoded-payload prefilter asks of every message. Prose rarely has such a
//! run, so answering it 64 bytes at a time lets most messages skip the word-by-word walk.

/// The run length asked about.
pub const RUN: usize = 16;

/// Whether `raw` holds `RUN` base64 characters in a row.
pub fn has_run(raw: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available, checked just above.
        return unsafe { avx2::has_run(raw) };
    }
    has_run_scalar(raw, 0)
}

/// A character of base64, base64url or hex.
pub const fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Byte by byte, with `carried` base64 characters just before `raw`.
fn has_run_scalar(raw: &[u8], mut carried: usize) -> bool {
    for &b in raw {
        carried = if is_base64(b) { carried + 1 } else { 0 };
        if carried >= RUN {
            return true;
        }
    }
    false
}

/// Runs within and across 64-byte blocks, from one bit per byte.
struct Runs {
    /// Base64 characters in a row at the end of the blocks seen so far.
    carried: usize,
}

impl Runs {
    /// Takes the next block's mask (bit i: byte i is a base64 character); true on a long run.
    fn block(&mut self, mask: u64) -> bool {
        if self.carried + mask.trailing_ones() as usize >= RUN {
            return true;
        }
        // Bit i survives when bits i..i+16 are all set.
        let mut m = mask & (mask >> 1);
        m &= m >> 2;
        m &= m >> 4;
        m &= m >> 8;
        if m != 0 {
            return true;
        }
        self.carried = if mask == u64::MAX {
            self.carried + 64
        } else {
            mask.leading_ones() as usize
        };
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Runs;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn has_run(raw: &[u8]) -> bool {
        let mut runs = Runs { carried: 0 };
        let mut blocks = raw.chunks_exact(64);
        for block in &mut blocks {
            // SAFETY: each block is 64 bytes long: both 32-byte loads stay inside it.
            let (low, high) = unsafe {
                (
                    base64_mask(_mm256_loadu_si256(block.as_ptr().cast())),
                    base64_mask(_mm256_loadu_si256(block.as_ptr().add(32).cast())),
                )
            };
            if runs.block(u64::from(low) | u64::from(high) << 32) {
                return true;
            }
        }
        super::has_run_scalar(blocks.remainder(), runs.carried)
    }

    /// One bit per byte of `v`: set for letters, digits, `+`, `/`, `-` and `_`.
    #[target_feature(enable = "avx2")]
    fn base64_mask(v: __m256i) -> u32 {
        // Signed compares: bytes from 0x80 are negative and fall outside every range.
        let within = |x: __m256i, lo: u8, hi: u8| {
            _mm256_and_si256(
                _mm256_cmpgt_epi8(x, _mm256_set1_epi8(lo as i8 - 1)),
                _mm256_cmpgt_epi8(_mm256_set1_epi8(hi as i8 + 1), x),
            )
        };
        // Setting bit 5 takes upper-case letters onto lower-case ones and nothing else into a–z.
        let letters = within(_mm256_or_si256(v, _mm256_set1_epi8(0x20)), b'a', b'z');
        let digits = within(v, b'0', b'9');
        let is = |b: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b as i8));
        let signs = _mm256_or_si256(
            _mm256_or_si256(is(b'+'), is(b'/')),
            _mm256_or_si256(is(b'-'), is(b'_')),
        );
        let all = _mm256_or_si256(_mm256_or_si256(letters, digits), signs);
        _mm256_movemask_epi8(all) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_run_counts_from_sixteen_characters_in_a_row() {
        let base = "The garden behind the old library was quiet. ".repeat(4);
        assert!(!has_run(base.as_bytes()));
        for at in [0, 5, 31, 32, 60, 63, 64, 100, base.len()] {
            for (run, found) in [("abcdefghij+/-_01", true), ("abcdefghij+/-_0", false)] {
                let mut text = base.clone();
                text.insert_str(at, &format!(" {run} "));
                assert_eq!(has_run(text.as_bytes()), found, "{run:?} at {at}");
            }
        }
        // Across a block boundary and over whole blocks.
        let mut long = vec![b' '; 56];
        long.extend(std::iter::repeat_n(b'Q', 200));
        assert!(has_run(&long));
        assert!(!has_run(&[b'Q'; 15]));
        assert!(has_run(&[b'Q'; 16]));
        assert!(!has_run("é".repeat(40).as_bytes()));
    }

    proptest! {
        /// The block-wise answer is the byte-by-byte one, on bytes drawn so that runs of every
        /// length occur, and across block boundaries.
        #[test]
        fn blocks_answer_as_bytes_do(
            raw in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(b"aZ09+/-_".to_vec()),
                    1 => any::<u8>(),
                ],
                0..400,
            )
        ) {
            prop_assert_eq!(has_run(&raw), has_run_scalar(&raw, 0));
        }
    }
}
