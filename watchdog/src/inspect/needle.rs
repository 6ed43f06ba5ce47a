//! Fixed substrings searched for in every message, each searcher built once.
//!
//! `memchr::memmem::find(haystack, needle)` builds a searcher (ranking the needle's bytes,
//! choosing a vector routine) on every call; on a small message that costs as much as the
//! search, and the raw checks run several such searches per message.

use memchr::memmem::{FindIter, Finder};
use std::sync::OnceLock;

pub struct Needle {
    bytes: &'static [u8],
    finder: OnceLock<Finder<'static>>,
}

impl Needle {
    pub const fn new(bytes: &'static [u8]) -> Needle {
        Needle {
            bytes,
            finder: OnceLock::new(),
        }
    }

    fn finder(&self) -> &Finder<'static> {
        self.finder.get_or_init(|| Finder::new(self.bytes))
    }

    /// The needle's length in bytes.
    pub fn width(&self) -> usize {
        self.bytes.len()
    }

    /// Where the needle first occurs in `haystack`.
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        self.finder().find(haystack)
    }

    pub fn is_in(&self, haystack: &[u8]) -> bool {
        self.find(haystack).is_some()
    }

    /// Every non-overlapping occurrence, left to right.
    pub fn find_iter<'h>(&'h self, haystack: &'h [u8]) -> FindIter<'h, 'h> {
        self.finder().find_iter(haystack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static DASHES: Needle = Needle::new(b"-->");

    #[test]
    fn finds_like_memmem_and_reuses_its_searcher() {
        for hay in [&b""[..], b"-->", b"a -- > b --> c -->", b"--", b"x-->-->"] {
            assert_eq!(DASHES.find(hay), memchr::memmem::find(hay, b"-->"));
            assert_eq!(
                DASHES.find_iter(hay).collect::<Vec<_>>(),
                memchr::memmem::find_iter(hay, b"-->").collect::<Vec<_>>()
            );
        }
        assert!(std::ptr::eq(DASHES.finder(), DASHES.finder()));
        assert!(!DASHES.is_in(b"->-"));
        assert_eq!(DASHES.width(), 3);
    }
}
