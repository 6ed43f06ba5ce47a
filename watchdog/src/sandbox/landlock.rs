//! Landlock through its three system calls, without a crate: the ruleset is built in the watchdog
//! (paths opened, rules added) before fork, and the child only calls `prctl(PR_SET_NO_NEW_PRIVS)` and
//! `landlock_restrict_self`, both async-signal-safe, between fork and exec.
//!
//! Landlock mediates opening for write, truncation, creating, removing, renaming and linking, and
//! device ioctls. It does **not** mediate chmod, chown, utimes or extended attributes (no access
//! right exists for them up to ABI 7): a confined server can still change the mode or owner of a
//! file it could otherwise not write. The kernel monitor (issue 5) is the layer that sees those.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

// Access rights, from <linux/landlock.h>, with the ABI version that introduced each.
pub const EXECUTE: u64 = 1 << 0;
pub const WRITE_FILE: u64 = 1 << 1;
pub const READ_FILE: u64 = 1 << 2;
pub const READ_DIR: u64 = 1 << 3;
pub const REMOVE_DIR: u64 = 1 << 4;
pub const REMOVE_FILE: u64 = 1 << 5;
pub const MAKE_CHAR: u64 = 1 << 6;
pub const MAKE_DIR: u64 = 1 << 7;
pub const MAKE_REG: u64 = 1 << 8;
pub const MAKE_SOCK: u64 = 1 << 9;
pub const MAKE_FIFO: u64 = 1 << 10;
pub const MAKE_BLOCK: u64 = 1 << 11;
pub const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: renaming or linking into another directory.
pub const REFER: u64 = 1 << 13;
/// ABI 3: truncate(2), ftruncate(2), O_TRUNC.
pub const TRUNCATE: u64 = 1 << 14;
/// ABI 5: ioctl(2) on character and block devices opened after the restriction.
pub const IOCTL_DEV: u64 = 1 << 15;

/// Every right that changes the filesystem or reaches a device, whatever the ABI supports.
pub const WRITE_RIGHTS: u64 = WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_CHAR
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_BLOCK
    | MAKE_SYM
    | REFER
    | TRUNCATE
    | IOCTL_DEV;
pub const READ_RIGHTS: u64 = EXECUTE | READ_FILE | READ_DIR;
/// The rights that make sense on a file (the kernel refuses directory rights on one with EINVAL).
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

const CREATE_RULESET_VERSION: libc::c_uint = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

/// `struct landlock_ruleset_attr` up to ABI 3; later fields (network, scopes) stay unset, and a
/// kernel accepts the shorter struct.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the UAPI header).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version the running kernel offers; `None` when Landlock is not built in or
/// not enabled at boot (`lsm=`), or the system call is filtered.
pub fn abi_version() -> Option<u32> {
    // SAFETY: the documented probe: NULL attribute, size 0, the VERSION flag.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

/// The rights an ABI version knows, so that an older kernel is given only what it understands.
pub fn supported_rights(abi: u32) -> u64 {
    let mut rights = READ_RIGHTS | (WRITE_RIGHTS & !(REFER | TRUNCATE | IOCTL_DEV));
    if abi >= 2 {
        rights |= REFER;
    }
    if abi >= 3 {
        rights |= TRUNCATE;
    }
    if abi >= 5 {
        rights |= IOCTL_DEV;
    }
    rights
}

/// A ruleset under construction, then ready to be enforced by a child.
#[derive(Debug)]
pub struct Ruleset {
    fd: OwnedFd,
    handled: u64,
}

impl Ruleset {
    /// A ruleset denying `handled` everywhere until rules allow it beneath some paths.
    pub fn new(handled: u64) -> io::Result<Ruleset> {
        let attr = RulesetAttr {
            handled_access_fs: handled,
        };
        // SAFETY: a valid attribute of the size given; the kernel returns a new O_CLOEXEC fd.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size_of::<RulesetAttr>(),
                0 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        Ok(Ruleset { fd, handled })
    }

    pub fn handled(&self) -> u64 {
        self.handled
    }

    /// Allows `access` (limited to what is handled, and to file rights on a non-directory)
    /// beneath `path`. NotFound when the path does not exist: a rule needs an inode.
    pub fn allow(&mut self, path: &Path, access: u64) -> io::Result<()> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: a NUL-terminated path; O_PATH opens without read permission, O_CLOEXEC keeps the fd
        // out of the server.
        let raw = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns; closed when this function returns.
        let path_fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: fstat into a zeroed struct on an fd we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(path_fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut allowed = access & self.handled;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            allowed &= FILE_RIGHTS;
        }
        if allowed == 0 {
            return Ok(());
        }
        let attr = PathBeneathAttr {
            allowed_access: allowed,
            parent_fd: path_fd.as_raw_fd(),
        };
        // SAFETY: valid fds and a valid attribute for RULE_PATH_BENEATH.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0 as libc::c_uint,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The fd a child passes to [`restrict_self`]; it stays valid while `self` lives.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Enforces the ruleset on the calling thread (and everything it execs or forks afterwards).
///
/// Async-signal-safe: two system calls, no allocation (an `io::Error` from an errno does not
/// allocate). Meant for `pre_exec`.
pub fn restrict_self(ruleset_fd: RawFd) -> io::Result<()> {
    // SAFETY: plain system calls with integer arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(
            libc::SYS_landlock_restrict_self,
            ruleset_fd,
            0 as libc::c_uint,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_abis_get_only_the_rights_they_know() {
        assert_eq!(supported_rights(1) & (REFER | TRUNCATE | IOCTL_DEV), 0);
        assert_eq!(supported_rights(2) & REFER, REFER);
        assert_eq!(supported_rights(3) & TRUNCATE, TRUNCATE);
        assert_eq!(supported_rights(4) & IOCTL_DEV, 0);
        assert_eq!(supported_rights(7), WRITE_RIGHTS | READ_RIGHTS);
    }

    /// In a forked child (so the test process stays unconfined): a write beneath the allowed
    /// directory succeeds, one beside it gets EACCES, whoever runs the test (Landlock binds root).
    #[test]
    fn a_restricted_child_writes_only_beneath_the_allowed_directory() {
        let Some(abi) = abi_version() else {
            eprintln!("skipped: this kernel has no Landlock");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("inside");
        std::fs::create_dir(&inside).unwrap();
        let mut ruleset = Ruleset::new(supported_rights(abi) & WRITE_RIGHTS).unwrap();
        ruleset.allow(&inside, WRITE_RIGHTS).unwrap();
        assert_eq!(
            ruleset
                .allow(&dir.path().join("missing"), WRITE_RIGHTS)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        let ok = CString::new(inside.join("f").as_os_str().as_bytes()).unwrap();
        let denied = CString::new(dir.path().join("g").as_os_str().as_bytes()).unwrap();
        let fd = ruleset.raw_fd();
        // SAFETY: the child only makes system calls and _exits; it reports through its exit status.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                if restrict_self(fd).is_err() {
                    libc::_exit(10);
                }
                let flags = libc::O_WRONLY | libc::O_CREAT;
                if libc::open(ok.as_ptr(), flags, 0o600) < 0 {
                    libc::_exit(11);
                }
                if libc::open(denied.as_ptr(), flags, 0o600) >= 0 {
                    libc::_exit(12);
                }
                let errno = *libc::__errno_location();
                libc::_exit(if errno == libc::EACCES { 0 } else { 13 });
            }
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "10: restrict, 11: inside, 12: outside allowed, 13: errno"
        );
        assert!(inside.join("f").exists() && !dir.path().join("g").exists());
    }
}
