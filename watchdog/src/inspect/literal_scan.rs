//! Which of many literals (ASCII case-insensitive) occur in a text: exactly what an overlapping
//! Aho-Corasick search reports, several times faster on prose.
//!
//! A DFA takes one dependent table lookup per byte (~0.5 GB/s), and with hundreds of literals made
//! of ordinary letters no skip-ahead prefilter applies. Here every literal is represented by its
//! rarest 2- or 4-byte piece; a pass with one independent lookup per byte in a small table finds
//! where such a piece could be, and only there are the literals with that piece compared with the
//! text around it. Every occurrence of a literal contains its piece, so none is missed;
//! the comparison is exact, so nothing is invented.

/// Stage one's table has one 32-bit word per (folded) pair of bytes: 2^14 words, 64 KiB.
const PAIR_WORDS: usize = 1 << 14;
/// The word's bit for "a piece shorter than 4 bytes starts with this pair". Bits below it stand
/// for the hashed next two bytes of the 4-byte pieces starting with the pair.
const SHORT_BIT: u32 = 31;

pub struct LiteralScan {
    literals: Vec<Box<[u8]>>,
    /// Where some piece can start: (lowercased) byte | next byte << 8, for every piece (a
    /// one-byte literal sets every next byte).
    starts: Box<[u64]>,
    /// Where a piece of a literal shorter than 4 bytes can start, as `starts`.
    shorts: Box<[u64]>,
    /// What stage one reads, one word per pair of bytes folded with `| 0x20` (a fold that never
    /// separates two bytes ASCII case-insensitive matching equates): [`SHORT_BIT`] when a short
    /// piece starts with the pair, and for every 4-byte piece starting with it, the bit its next
    /// two (folded) bytes hash to. One gather per position reads both kinds of piece.
    pair_words: Box<[u32]>,
    /// (piece key, literal, offset of the piece in it), sorted by key: what a candidate checks.
    /// Keys: `1 << 32 | byte` for one-byte literals, `1 << 33 | pair` for pairs, the folded
    /// little-endian piece for quads.
    pieces: Vec<(u64, u32, u32)>,
    /// For each distinct key (hashed, linear probing): 1 + where its run in `pieces` starts; 0
    /// is empty. At most half full.
    slots: Box<[u32]>,
    slot_bits: u32,
    /// An empty literal occurs everywhere.
    empty: Vec<u32>,
    /// Stage one may use AVX2 (checked once, at construction).
    avx2: bool,
}

/// Positions stage one tests per mask.
const BLOCK: usize = 64;
/// Bytes stage one reads for a block: its positions' 4-byte pieces, and the widest load's tail.
const WINDOW: usize = BLOCK + 8;

const SINGLE: u64 = 1 << 32;
const PAIR: u64 = 1 << 33;

impl LiteralScan {
    pub fn new<P: AsRef<[u8]>>(literals: &[P]) -> LiteralScan {
        let mut starts = vec![0u64; (1 << 16) / 64].into_boxed_slice();
        let mut shorts = starts.clone();
        let mut pair_words = vec![0u32; PAIR_WORDS].into_boxed_slice();
        let mut pieces = Vec::new();
        let mut empty = Vec::new();
        for (n, l) in literals.iter().enumerate() {
            let (l, n) = (l.as_ref(), n as u32);
            match l.len() {
                0 => empty.push(n),
                1 => {
                    let a = lower(l[0]);
                    for b in 0..=255 {
                        set(&mut starts, pair_index(a, b));
                        set(&mut shorts, pair_index(a, b));
                    }
                    pieces.push((SINGLE | a as u64, n, 0));
                }
                2 | 3 => {
                    let at = rarest(l, 2);
                    let pair = pair_index(lower(l[at]), lower(l[at + 1]));
                    set(&mut starts, pair);
                    set(&mut shorts, pair);
                    pieces.push((PAIR | pair as u64, n, at as u32));
                }
                _ => {
                    let at = rarest(l, 4);
                    let w = fold(u32::from_le_bytes([l[at], l[at + 1], l[at + 2], l[at + 3]]));
                    pair_words[pair_word(w)] |= 1 << tail_bit(w);
                    set(&mut starts, pair_index(lower(l[at]), lower(l[at + 1])));
                    pieces.push((w as u64, n, at as u32));
                }
            }
        }
        pieces.sort_unstable();
        for pair in 0..1u32 << 16 {
            if get(&shorts, pair as usize) {
                pair_words[pair_word(fold(pair))] |= 1 << SHORT_BIT;
            }
        }
        let slot_bits = (pieces.len() * 2)
            .next_power_of_two()
            .max(2)
            .trailing_zeros();
        let mut slots = vec![0u32; 1 << slot_bits].into_boxed_slice();
        for (at, piece) in pieces.iter().enumerate() {
            if at > 0 && pieces[at - 1].0 == piece.0 {
                continue;
            }
            let mut slot = slot_of(piece.0, slot_bits);
            while slots[slot] != 0 {
                slot = (slot + 1) & (slots.len() - 1);
            }
            slots[slot] = at as u32 + 1;
        }
        LiteralScan {
            avx2: avx2_available(),
            slots,
            slot_bits,
            literals: literals.iter().map(|l| l.as_ref().into()).collect(),
            starts,
            shorts,
            pair_words,
            pieces,
            empty,
        }
    }

    /// The length of the longest literal: an occurrence starting at `i` ends before `i + longest`.
    pub fn longest(&self) -> usize {
        self.literals.iter().map(|l| l.len()).max().unwrap_or(0)
    }

    pub fn memory_usage(&self) -> usize {
        (self.starts.len() + self.shorts.len()) * 8
            + self.pair_words.len() * 4
            + self.pieces.len() * 16
            + self.slots.len() * 4
            + self.literals.iter().map(|l| l.len() + 16).sum::<usize>()
    }

    /// Calls `f` with the literal of every occurrence in `hay` (overlapping ones included) until
    /// `f` returns false: what an overlapping, ASCII case-insensitive Aho-Corasick search reports,
    /// in no particular order.
    pub fn for_each(&self, hay: &[u8], mut f: impl FnMut(usize) -> bool) {
        for &n in &self.empty {
            for _ in 0..=hay.len() {
                if !f(n as usize) {
                    return;
                }
            }
        }
        if self.pieces.is_empty() {
            return;
        }
        // Stage one, 64 positions at a time: one branch-free lookup per byte, of the word of the
        // pair starting there, tested for a short piece and for the hash of the next two bytes
        // (all folded by `| 0x20`, a superset of ASCII case-insensitive equality), gathered into a
        // mask. In prose one position in fifty or so gets through (64 of 2616 in a test of the
        // bench's sentences), so most blocks take no branch at all.
        let n = hay.len();
        let mut block = 0;
        while block < n {
            let mask = match hay.get(block..block + WINDOW) {
                Some(window) => self.block_mask(window.try_into().expect("WINDOW bytes")),
                None => self.tail_mask(&hay[block..]),
            };
            let mut rest = mask;
            while rest != 0 {
                let i = block + rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if !self.candidate(hay, i, &mut f) {
                    return;
                }
            }
            block += BLOCK;
        }
    }

    /// Which of the 64 positions starting `window` (each position needs its next 3 bytes) may
    /// start a piece.
    #[inline]
    fn block_mask(&self, window: &[u8; WINDOW]) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only where the CPU has AVX2.
            return unsafe { avx2::block_mask(self, window) };
        }
        self.block_mask_scalar(window)
    }

    fn block_mask_scalar(&self, window: &[u8; WINDOW]) -> u64 {
        let mut mask = 0u64;
        // One 8-byte load holds the 4-byte pieces of four positions.
        for j in (0..BLOCK).step_by(4) {
            let eight: [u8; 8] = window[j..j + 8].try_into().expect("8 bytes");
            let folded = u64::from_le_bytes(eight) | 0x2020_2020_2020_2020;
            for k in 0..4 {
                let w = (folded >> (8 * k)) as u32;
                let word = self.pair_words[pair_word(w)];
                let bit = ((word >> tail_bit(w)) | (word >> SHORT_BIT)) & 1;
                mask |= u64::from(bit) << (j + k);
            }
        }
        mask
    }

    /// The same for the last, shorter stretch (bytes past the end count as zero): the block
    /// routine on a zero-padded copy. Done position by position, the tails of 1 KiB messages
    /// took about 4% of the proxy's instructions under load.
    fn tail_mask(&self, tail: &[u8]) -> u64 {
        let len = tail.len().min(WINDOW);
        let mut padded = [0u8; WINDOW];
        padded[..len].copy_from_slice(&tail[..len]);
        let positions = tail.len().min(BLOCK);
        let keep = if positions == BLOCK {
            u64::MAX
        } else {
            (1u64 << positions) - 1
        };
        self.block_mask(&padded) & keep
    }

    /// Stage two at a position stage one let through: the exact pair, the 4-byte piece, then
    /// the literals themselves. False once `f` asks to stop.
    fn candidate(&self, hay: &[u8], i: usize, f: &mut dyn FnMut(usize) -> bool) -> bool {
        let a = lower(hay[i]);
        let b = hay.get(i + 1).map_or(0, |&b| lower(b));
        let pair = pair_index(a, b);
        if !get(&self.starts, pair) {
            return true;
        }
        let short = get(&self.shorts, pair);
        let quad = hay
            .get(i..i + 4)
            .map(|q| fold(u32::from_le_bytes([q[0], q[1], q[2], q[3]])))
            .filter(|&w| self.pair_words[pair_word(w)] >> tail_bit(w) & 1 != 0);
        !(short || quad.is_some()) || self.check(hay, i, (a, b), short, quad, f)
    }

    fn first_piece(&self, key: u64) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut slot = slot_of(key, self.slot_bits);
        loop {
            match self.slots[slot] {
                0 => return None,
                at if self.pieces[at as usize - 1].0 == key => return Some(at as usize - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// Whether any literal occurs in `hay`.
    pub fn any(&self, hay: &[u8]) -> bool {
        let mut found = false;
        self.for_each(hay, |_| {
            found = true;
            false
        });
        found
    }

    /// Reports the literals whose piece is at `i` and which occur there whole; false once `f`
    /// asks to stop.
    fn check(
        &self,
        hay: &[u8],
        i: usize,
        (a, b): (u8, u8),
        short: bool,
        quad: Option<u32>,
        f: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        let keys = [
            short.then_some(SINGLE | a as u64),
            (short && i + 1 < hay.len()).then_some(PAIR | pair_index(a, b) as u64),
            quad.map(u64::from),
        ];
        for key in keys.into_iter().flatten() {
            let Some(from) = self.first_piece(key) else {
                continue;
            };
            for &(k, n, at) in &self.pieces[from..] {
                if k != key {
                    break;
                }
                let literal = &self.literals[n as usize];
                let Some(start) = i.checked_sub(at as usize) else {
                    continue;
                };
                let here = hay.get(start..start + literal.len());
                if here.is_some_and(|h| h.eq_ignore_ascii_case(literal)) && !f(n as usize) {
                    return false;
                }
            }
        }
        true
    }
}

/// Where `key`'s pieces start in the sorted `pieces`, from an open-addressing table: a binary
/// search per candidate cost more than the scan that found it.
fn slot_of(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Stage one with AVX2: eight positions at a time, their 4-byte pieces shuffled out of one
/// 16-byte load, the table read with one gather (the gathers are what bounds it: with a second
/// table and a second gather per position, a 1 KiB prose result took 1.31 µs to inspect, 0.95 µs
/// without that gather).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{LiteralScan, BLOCK, SHORT_BIT, WINDOW};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn block_mask(scan: &LiteralScan, window: &[u8; WINDOW]) -> u64 {
        let words = scan.pair_words.as_ptr().cast::<i32>();
        let pieces = _mm256_setr_epi8(
            0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6, //
            4, 5, 6, 7, 5, 6, 7, 8, 6, 7, 8, 9, 7, 8, 9, 10,
        );
        let fold = _mm256_set1_epi32(0x2020_2020);
        let golden = _mm256_set1_epi32(0x9E37_79B1_u32 as i32);
        let low_bits = _mm256_set1_epi32(0x1f1f);
        let high_bits = _mm256_set1_epi32(0x6060);
        let first = _mm256_set1_epi32(0x7f);
        let second = _mm256_set1_epi32(0x3f80);
        let last_tail_bit = _mm256_set1_epi32(SHORT_BIT as i32 - 1);
        let mut mask = 0u64;
        for j in (0..BLOCK).step_by(8) {
            // SAFETY: j + 16 <= WINDOW, so the load stays inside `window`.
            let sixteen = unsafe { _mm_loadu_si128(window.as_ptr().add(j).cast()) };
            let w = _mm256_or_si256(
                _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(sixteen), pieces),
                fold,
            );
            // pair_word and tail_bit, as in the scalar code.
            let packed = _mm256_or_si256(
                _mm256_and_si256(w, low_bits),
                _mm256_and_si256(_mm256_srli_epi32::<1>(w), high_bits),
            );
            let pair = _mm256_or_si256(
                _mm256_and_si256(packed, first),
                _mm256_and_si256(_mm256_srli_epi32::<1>(packed), second),
            );
            let tail = _mm256_min_epu32(
                _mm256_srli_epi32::<27>(_mm256_mullo_epi32(_mm256_srli_epi32::<16>(w), golden)),
                last_tail_bit,
            );
            // SAFETY: pair < 2^14 = PAIR_WORDS indexes inside the table.
            let word = unsafe { _mm256_i32gather_epi32::<4>(words, pair) };
            let bits = _mm256_or_si256(
                _mm256_srlv_epi32(word, tail),
                _mm256_srli_epi32::<{ SHORT_BIT as i32 }>(word),
            );
            let lanes = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<31>(bits)));
            mask |= u64::from(lanes as u8) << j;
        }
        mask
    }
}

fn fold(w: u32) -> u32 {
    w | 0x2020_2020
}

fn lower(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

fn pair_index(a: u8, b: u8) -> usize {
    a as usize | (b as usize) << 8
}

/// Stage one's word for the first two bytes of folded `w`: 7 bits of each byte (the fold fixes
/// bit 5), 14 bits in all.
fn pair_word(w: u32) -> usize {
    let packed = (w & 0x1f1f) | ((w >> 1) & 0x6060);
    ((packed & 0x7f) | ((packed >> 1) & 0x3f80)) as usize
}

/// The bit below [`SHORT_BIT`] that the third and fourth bytes of folded `w` hash to.
fn tail_bit(w: u32) -> u32 {
    ((w >> 16).wrapping_mul(0x9E37_79B1) >> 27).min(SHORT_BIT - 1)
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn get(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// Where the `len`-byte piece of `literal` least often met in ordinary text starts.
fn rarest(literal: &[u8], len: usize) -> usize {
    (0..=literal.len() - len)
        .min_by(|&x, &y| {
            let cost = |at: usize| piece_cost(&literal[at..at + len]);
            cost(x).total_cmp(&cost(y))
        })
        .expect("literal at least len long")
}

/// How often, per position of English text, a piece makes the scan stop: stage one lets through
/// every position where a short piece's pair occurs, and for a 4-byte piece, the positions where
/// its pair occurs and the next two bytes hash to its bit (about one in 31), besides the piece
/// itself. The piece's own frequency comes from a Markov chain over [`PAIR_LOG_FREQUENCY`].
fn piece_cost(piece: &[u8]) -> f64 {
    let head = pair_frequency(piece[0], piece[1]);
    if piece.len() < 4 {
        return head;
    }
    let chain: f64 = piece
        .windows(2)
        .skip(1)
        .map(|w| pair_frequency(w[0], w[1]) / byte_frequency(w[0]))
        .product();
    head / 31.0 + head * chain
}

/// Row or column of a byte in [`PAIR_LOG_FREQUENCY`]: letters (either case), space, '.', ',', and
/// everything else together.
fn symbol(b: u8) -> usize {
    match lower(b) {
        b @ b'a'..=b'z' => (b - b'a') as usize,
        b' ' | b'\t' | b'\n' | b'\r' => 26,
        b'.' => 27,
        b',' => 28,
        _ => 29,
    }
}

/// The share of byte pairs that are (a, b) in English text.
fn pair_frequency(a: u8, b: u8) -> f64 {
    let digit = PAIR_LOG_FREQUENCY[symbol(a)][symbol(b)];
    let log2 = match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    };
    // A pair seen about once or never counts as half of one seen once.
    let count = if log2 == 0 {
        0.5
    } else {
        f64::from(1u32 << log2)
    };
    count / f64::from(1u32 << 20)
}

/// The share of bytes that are `a` (followed by anything).
fn byte_frequency(a: u8) -> f64 {
    static ROW_SUMS: std::sync::LazyLock<[f64; 30]> = std::sync::LazyLock::new(|| {
        SYMBOL_BYTES.map(|a| SYMBOL_BYTES.iter().map(|&b| pair_frequency(a, b)).sum())
    });
    ROW_SUMS[symbol(a)]
}

/// A byte standing for each column of [`PAIR_LOG_FREQUENCY`].
const SYMBOL_BYTES: [u8; 30] = *b"abcdefghijklmnopqrstuvwxyz .,#";

/// log2 of how many times in 2^20 byte pairs of English text each pair occurs (`0`: at most about
/// once, `a` = 10 and so on), counted in the license texts Debian ships
/// (/usr/share/common-licenses, 303 KB, runs of white space as one space). Rows are the first
/// byte, columns the second, both in the order of [`SYMBOL_BYTES`]; the last stands for digits,
/// punctuation and non-ASCII bytes.
const PAIR_LOG_FREQUENCY: [&[u8; 30]; 30] = [
    b"0bba08a0b69cbd0a6dbd9985b0c658", // a
    b"9033b000a90c40940b86b000b05508", // b
    b"b090d30bb09b00d0594cb00030a768", // c
    b"a009d470c50720b00784965070e899", // d
    b"b6cdba96a00bbd7a9eda6a9b90fbba", // e
    b"9000a900b00600c00b4a900090d675", // f
    b"a000b47ba0075a770b64800020c687", // g
    b"c203e000c00305b0076b703070c665", // h
    b"bcdabcb0606bbed94bdd7b06075526", // i
    b"500090000000006300007000000300", // j
    b"7000a000800508000090500000b788", // k
    b"b24ac730d00b00a00698a630b0c797", // l
    b"ca60c000b00696ba00a0a50000b888", // m
    b"b0bdc9c0a38968c623ddaa00b0d9a9", // n
    b"59ac8da6706ace9c0eacdba676d675", // o
    b"b005b037a00b43aa0c79b000b07354", // p
    b"00000000000000000000a000000000", // q
    b"d7aad890d0b7b8c90acb8880b0e899", // r
    b"a095d75ac06860ca43bcb03070eaaa", // s
    b"b404d50fd00a66d70cb990a0b0e9a9", // t
    b"9baa9580a00abb580bcc300200c756", // u
    b"a000d000a000007000000000000403", // v
    b"b000900bb00608b00850006000a766", // w
    b"709090066000400800090002705004", // x
    b"64007000900545c60a95000046d9a9", // y
    b"600060006000000200000000005004", // z
    b"ecdccdbbd78ddced6cdfcbd7c3000c", // space
    b"30000453000022600433200000d459", // .
    b"00000000000000000000000000d004", // ,
    b"97978867824777970698508270cb9c", // other
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    use aho_corasick::AhoCorasick;

    fn reference(literals: &[String], hay: &[u8]) -> BTreeSet<usize> {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(literals)
            .unwrap()
            .find_overlapping_iter(hay)
            .map(|m| m.pattern().as_usize())
            .collect()
    }

    fn found(scan: &LiteralScan, hay: &[u8]) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        scan.for_each(hay, |p| {
            out.insert(p);
            true
        });
        out
    }

    #[test]
    fn finds_literals_of_every_length_anywhere_in_any_case() {
        let literals: Vec<String> = ["\u{1b}", "](", "eyj", "ignore", "the user", "\u{200b}"]
            .map(String::from)
            .to_vec();
        let scan = LiteralScan::new(&literals);
        for hay in [
            "\u{1b}",
            "x](",
            "EYJ",
            "please IGNORE previous",
            "tell The User",
            "a\u{200b}b",
            "plain prose without any of them",
            "",
        ] {
            assert_eq!(
                found(&scan, hay.as_bytes()),
                reference(&literals, hay.as_bytes()),
                "{hay:?}"
            );
        }
        assert!(!scan.any(b"the garden behind the old library"));
        assert!(scan.any(b"they said: ignore it"));
    }

    #[test]
    fn pieces_avoid_what_english_text_is_made_of() {
        // By letter frequencies alone "th" (t: 9.1%, h: 6.1%) would be a rare start, but it is
        // the most common pair of English text.
        assert_eq!(&b"other"[rarest(b"other", 2)..][..2], b"ot");
        assert!(pair_frequency(b'T', b'h') > 2.0 * pair_frequency(b'o', b't'));
        // Common words are passed over: letter frequencies alone chose these.
        let piece = |l: &'static [u8]| &l[rarest(l, 4)..][..4];
        assert_ne!(piece(b"from now on"), b"from");
        assert_ne!(piece(b"disregard"), b"gard");
        assert_ne!(piece(b"inform"), b"form");
        // The pairs of each row sum to the byte's own share of text: about one byte in six is
        // a space, one in a thousand a 'q'.
        assert!((0.1..0.25).contains(&byte_frequency(b' ')));
        assert!(byte_frequency(b'q') < 0.002);
    }

    #[test]
    fn stops_when_asked() {
        let scan = LiteralScan::new(&["ab", "cd"]);
        let mut calls = 0;
        scan.for_each(&b"ab cd ab cd".repeat(100), |_| {
            calls += 1;
            false
        });
        assert_eq!(calls, 1);
    }

    #[test]
    fn an_empty_literal_occurs_everywhere() {
        let scan = LiteralScan::new(&["", "zz"]);
        assert!(scan.any(b"abc"));
    }

    /// The same scan with stage one forced onto the portable path.
    fn scalar(literals: &[String]) -> LiteralScan {
        LiteralScan {
            avx2: false,
            ..LiteralScan::new(literals)
        }
    }

    proptest! {
        #[test]
        fn reports_exactly_what_the_automaton_finds_in_the_whole_text(
            literals in proptest::collection::vec("[aAbB. \u{e9}\u{1b}-]{1,7}", 1..12),
            hay in "[aAbBcC. \u{e9}\u{1b}-]{0,300}",
        ) {
            let expected = reference(&literals, hay.as_bytes());
            prop_assert_eq!(found(&LiteralScan::new(&literals), hay.as_bytes()), expected.clone());
            prop_assert_eq!(found(&scalar(&literals), hay.as_bytes()), expected);
        }

        #[test]
        fn the_avx2_block_is_the_scalar_block(
            literals in proptest::collection::vec("[aAbB. \u{e9}\u{1b}-]{1,7}", 1..40),
            hay in proptest::collection::vec(proptest::sample::select(b"aAbB. -\x1b\xc3\xa9".to_vec()), WINDOW),
        ) {
            let scan = LiteralScan::new(&literals);
            let window: &[u8; WINDOW] = hay.as_slice().try_into().unwrap();
            #[cfg(target_arch = "x86_64")]
            if scan.avx2 {
                // SAFETY: scan.avx2 says the CPU has AVX2.
                let simd = unsafe { avx2::block_mask(&scan, window) };
                prop_assert_eq!(simd, scan.block_mask_scalar(window));
            }
        }
    }
}
