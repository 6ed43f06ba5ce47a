//! The kernel side of mcp-watchdog's eBPF filesystem backend: the compiled object (when clang
//! was available at build time) and the Rust mirrors of the records it shares with userspace.
//! The layouts are defined in `src/watchdog.h`; a test checks these mirrors against the
//! object's BTF.

/// Bytes of a path slot in a record, NUL included; longer paths are cut (flag `TRUNCATED`).
pub const PATH_LEN: usize = 512;
/// Bytes of one scope prefix, NUL padding included.
pub const PREFIX_LEN: usize = 256;
pub const MAX_WRITE: usize = 8;
pub const MAX_SENSITIVE: usize = 48;

/// `Event::op` values (`enum wd_op` in watchdog.h).
pub mod op {
    pub const OPEN_WRITE: u16 = 1;
    pub const TRUNCATE: u16 = 2;
    pub const UNLINK: u16 = 3;
    pub const RMDIR: u16 = 4;
    pub const MKDIR: u16 = 5;
    pub const RENAME: u16 = 6;
    pub const LINK: u16 = 7;
    pub const SYMLINK: u16 = 8;
    pub const MKNOD: u16 = 9;
    pub const CHMOD: u16 = 10;
    pub const CHOWN: u16 = 11;
    pub const ATTRIB: u16 = 12;
}

/// `Event::flags` bits.
pub const EVENT_KILLED: u16 = 1;
pub const EVENT_TRUNCATED: u16 = 2;

/// `Scope::flags` bits.
pub const SCOPE_KILL: u32 = 1;
/// Emit everything (the scope did not fit the map, so nothing may be filtered).
pub const SCOPE_NO_FILTER: u32 = 2;

/// Indexes of the STATS per-CPU counters.
pub mod stat {
    pub const EMITTED: u32 = 0;
    pub const FILTERED: u32 = 1;
    pub const RINGBUF_DROPS: u32 = 2;
    pub const STASH_FAILURES: u32 = 3;
    pub const KILLED: u32 = 4;
    pub const COUNT: u32 = 5;
}

/// Header of one ring-buffer record (`struct wd_event`). The record is variable-length: `path`
/// follows the header with `path_len` bytes and a NUL; when `path2_len` is non-zero, `path2`
/// starts at `PATH_OFFSET + PATH_LEN` with `path2_len` bytes and a NUL.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EventHeader {
    pub root: u32,
    pub tgid: u32,
    pub tid: u32,
    pub op: u16,
    pub flags: u16,
    pub ret: i32,
    pub path_len: u16,
    pub path2_len: u16,
    pub comm: [u8; 16],
}

pub const PATH_OFFSET: usize = core::mem::size_of::<EventHeader>();
pub const PATH2_OFFSET: usize = PATH_OFFSET + PATH_LEN;
/// Size of the full `struct wd_event` (header and both path slots).
pub const EVENT_SIZE: usize = PATH2_OFFSET + PATH_LEN;

/// One prefix of a scope (`struct wd_prefix`); `s` is NUL-padded.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Prefix {
    pub len: u32,
    pub _pad: u32,
    pub s: [u8; PREFIX_LEN],
}

/// A watched tree's scope (`struct wd_scope`), the value of the SCOPES map.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Scope {
    pub flags: u32,
    pub n_write: u32,
    pub n_sensitive: u32,
    pub _pad: u32,
    pub write: [Prefix; MAX_WRITE],
    pub sensitive: [Prefix; MAX_SENSITIVE],
}

impl Default for Scope {
    fn default() -> Self {
        const EMPTY: Prefix = Prefix {
            len: 0,
            _pad: 0,
            s: [0; PREFIX_LEN],
        };
        Scope {
            flags: 0,
            n_write: 0,
            n_sensitive: 0,
            _pad: 0,
            write: [EMPTY; MAX_WRITE],
            sensitive: [EMPTY; MAX_SENSITIVE],
        }
    }
}

/// aya requires 8-byte alignment of the ELF bytes it parses; `include_bytes!` gives none.
#[cfg(watchdog_bpf_object)]
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

#[cfg(watchdog_bpf_object)]
static OBJECT: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/watchdog.bpf.o")));

/// The compiled eBPF object, or `None` when the crate was built without clang.
pub fn object() -> Option<&'static [u8]> {
    #[cfg(watchdog_bpf_object)]
    {
        Some(&OBJECT.0)
    }
    #[cfg(not(watchdog_bpf_object))]
    {
        None
    }
}
