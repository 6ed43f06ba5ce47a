//! Confinement of every stdio server from its first instruction: a Landlock ruleset limiting
//! where it may write (and optionally read), and a seccomp filter for the system calls the kernel
//! monitor cannot see (io_uring, other ABIs: sandbox/seccomp.rs). Unprivileged;
//! on by default where the kernel supports it (`sandbox = false` globally or per server, or
//! `--no-sandbox`, turns it off).
//!
//! How it is applied: [`Confinement::prepare`] does all the work that allocates or may fail in the
//! watchdog, before fork (resolve paths, create the server's private temp dir, open each path and
//! add its rule). Between fork and exec the child only runs [`ChildStep::apply`]: `prctl`,
//! `landlock_restrict_self` and `prctl(PR_SET_SECCOMP)`, all async-signal-safe.
//!
//! What is enforced: creating, writing, truncating, removing, renaming and linking files, making
//! directories, sockets, FIFOs, device nodes and symlinks, and device ioctls, outside the write
//! scope (sandbox/scope.rs) are refused with EACCES, for the server and every process it starts;
//! io_uring is refused with EPERM, and a system call through another ABI (`int 0x80`) kills the
//! process. `no_new_privs` is set, so set-uid programs run by a server do not
//! gain privileges.
//!
//! What is not (documented gaps):
//! - chmod, chown, utimes and xattrs: Landlock has no access right for them (up to ABI 7).
//! - `.git/config` and `.git/hooks/` inside a granted project: Landlock rules only allow, so nothing
//!   beneath a granted directory can be excluded. Granting a repository's children one by one
//!   except `.git` would forbid creating new files at the project's top level, which breaks
//!   filesystem servers; the project is granted whole and the kernel monitor (issue 5, later)
//!   alerts on writes there. Scope roots *inside* a `.git` are refused.
//! - Reads are unrestricted unless `scope.read` is set: a server can read ~/.ssh/id_ed25519 by
//!   default (the exfiltration detectors watch what leaves through MCP).
//! - Files opened before exec (the inherited stdio pipes) and the network are not mediated.
//! - A kernel without Landlock (before 5.13, or not in `lsm=`): the server runs unconfined, said once
//!   on stderr and as a SCOPE-L4 "sandbox unavailable" alert (info).

pub mod landlock;
pub mod scope;
pub mod seccomp;
pub mod sensitive;

use self::landlock::{Ruleset, READ_RIGHTS, WRITE_RIGHTS};
use self::scope::{Scope, RUNTIME_WRITE_DIRS, RUNTIME_WRITE_FILES};
use self::seccomp::UnseenSyscallFilter;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Filesystem scope: sandbox state and, later, writes seen by the kernel monitor.
pub const SCOPE_L4: &str = "SCOPE-L4";

/// What a server's sandbox should be, from the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxPlan {
    pub enabled: bool,
    pub scope: Scope,
}

/// What Landlock does for one life of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockState {
    Enforced {
        abi: u32,
    },
    /// The kernel has no Landlock (or refused the ruleset): the server runs unconfined.
    Unavailable,
    /// Turned off in the settings.
    Disabled,
}

/// One life's confinement, prepared in the watchdog. Keep it until the server exits: it owns the
/// server's private temp dir (removed on drop) and the ruleset fd the child restricts itself with.
#[derive(Debug)]
pub struct Confinement {
    ruleset: Option<Ruleset>,
    seccomp: Option<UnseenSyscallFilter>,
    tmpdir: Option<tempfile::TempDir>,
    pub landlock: LandlockState,
    /// Scope roots that do not exist (a rule needs an inode): writes there are refused.
    pub missing: Vec<PathBuf>,
}

impl Confinement {
    /// No confinement at all.
    pub fn none() -> Confinement {
        Confinement {
            ruleset: None,
            seccomp: None,
            tmpdir: None,
            landlock: LandlockState::Disabled,
            missing: Vec::new(),
        }
    }

    /// Builds everything the child will enforce. Errors are the watchdog's own (a temp dir that
    /// cannot be created); a kernel without Landlock is not an error but [`LandlockState::Unavailable`].
    pub fn prepare(server: &str, plan: &SandboxPlan) -> io::Result<Confinement> {
        if !plan.enabled {
            return Ok(Confinement::none());
        }
        let mut confinement = Confinement::none();
        confinement.seccomp = UnseenSyscallFilter::available().then(UnseenSyscallFilter::default);
        let Some(abi) = landlock::abi_version() else {
            confinement.landlock = LandlockState::Unavailable;
            return Ok(confinement);
        };
        let mut handled = WRITE_RIGHTS;
        if plan.scope.read.is_some() {
            handled |= READ_RIGHTS;
        }
        let mut ruleset = match Ruleset::new(handled & landlock::supported_rights(abi)) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("server `{server}`: Landlock ABI {abi} refused a ruleset: {e}");
                confinement.landlock = LandlockState::Unavailable;
                return Ok(confinement);
            }
        };
        let tmpdir = tempfile::Builder::new()
            .prefix(&format!("mcp-watchdog-{server}-"))
            .tempdir()?;
        let everything = WRITE_RIGHTS | READ_RIGHTS;
        let mut grant = |path: &Path, rights: u64, required: bool| -> io::Result<()> {
            match ruleset.allow(path, rights) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if required {
                        confinement.missing.push(path.to_path_buf());
                    }
                    Ok(())
                }
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("sandbox rule for {}: {e}", path.display()),
                )),
            }
        };
        for root in &plan.scope.write {
            grant(root, everything, true)?;
        }
        grant(tmpdir.path(), everything, true)?;
        for dir in RUNTIME_WRITE_DIRS {
            grant(Path::new(dir), everything, false)?;
        }
        for file in RUNTIME_WRITE_FILES {
            grant(Path::new(file), everything, false)?;
        }
        for root in plan.scope.read.iter().flatten() {
            grant(root, READ_RIGHTS, false)?;
        }
        confinement.ruleset = Some(ruleset);
        confinement.tmpdir = Some(tmpdir);
        confinement.landlock = LandlockState::Enforced { abi };
        Ok(confinement)
    }

    /// Environment the server gets on top of its configured one: TMPDIR, its private temp dir
    /// (mode 0700), the only temporary directory it can write to.
    pub fn env(&self) -> Vec<(String, String)> {
        self.tmpdir
            .iter()
            .map(|d| ("TMPDIR".to_owned(), d.path().to_string_lossy().into_owned()))
            .collect()
    }

    pub fn tmpdir(&self) -> Option<&Path> {
        self.tmpdir.as_ref().map(|d| d.path())
    }

    /// What the child runs before exec; plain data, valid while `self` lives.
    pub fn child_step(&self) -> ChildStep {
        ChildStep {
            ruleset_fd: self.ruleset.as_ref().map(Ruleset::raw_fd),
            seccomp: self.seccomp,
        }
    }
}

/// The child's part, copied into the `pre_exec` closure.
#[derive(Clone, Copy, Debug)]
pub struct ChildStep {
    ruleset_fd: Option<RawFd>,
    seccomp: Option<UnseenSyscallFilter>,
}

impl ChildStep {
    /// Between fork and exec: Landlock first (it sets no_new_privs), then the seccomp filter.
    /// Async-signal-safe; an error makes the spawn fail, so a server never runs less confined than
    /// prepared.
    pub fn apply(&self) -> io::Result<()> {
        if let Some(fd) = self.ruleset_fd {
            landlock::restrict_self(fd)?;
        }
        if let Some(filter) = &self.seccomp {
            filter.install()?;
        }
        Ok(())
    }
}

static UNAVAILABLE_SAID: AtomicBool = AtomicBool::new(false);

/// True the first time in this process: "sandbox unavailable" is said once, not per server or life.
pub fn first_unavailable_notice() -> bool {
    !UNAVAILABLE_SAID.swap(true, Ordering::Relaxed)
}
