//! A ten-instruction classic-BPF seccomp filter for the system calls the kernel monitor cannot
//! see: io_uring (`io_uring_setup`, `io_uring_enter`, `io_uring_register` → EPERM), and every
//! system call made through another ABI than the native one (the process is killed).
//!
//! Why io_uring: it performs opens, renames, unlinks and writes from kernel workers without the
//! corresponding system calls, so syscall tracepoints (the kernel monitor) never see them. Landlock
//! still applies to them (it checks at the VFS), but attribution would be blind. MCP servers have
//! no need for io_uring; runtimes that probe it (libuv) fall back to threads on EPERM.
//!
//! Why other ABIs: a 64-bit process can enter the kernel through the 32-bit gate (`int 0x80` on
//! x86_64), where `open` is number 5 and `rename` 38; the monitor decodes native numbers only, so
//! such a write would go unseen (Landlock still holds). The same holds for x32 numbers (bit 30 on
//! x86_64). MCP servers are native programs; one that uses another ABI is stopped (SIGSYS).
//!
//! io_uring's numbers (425–427) come from the unified syscall table.

use std::io;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000; // __X32_SYSCALL_BIT
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
#[cfg(target_arch = "aarch64")]
const X32_BIT: u32 = 0; // no such ABI

const IO_URING_SETUP: u32 = 425;
const IO_URING_REGISTER: u32 = 427;

// Classic BPF opcodes (<linux/filter.h>) and seccomp return values (<linux/seccomp.h>).
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x05 | 0x30;
const JGT_K: u16 = 0x05 | 0x20;
const JSET_K: u16 = 0x05 | 0x40;
const RET_K: u16 = 0x06;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

const LEN: usize = 10;

/// The filter program, built in the watchdog and installed by the child.
#[derive(Clone, Copy)]
pub struct UnseenSyscallFilter {
    program: [libc::sock_filter; LEN],
}

impl std::fmt::Debug for UnseenSyscallFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnseenSyscallFilter")
    }
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Default for UnseenSyscallFilter {
    fn default() -> Self {
        UnseenSyscallFilter {
            program: [
                insn(LD_W_ABS, 0, 0, OFFSET_ARCH),
                insn(JEQ_K, 1, 0, NATIVE_ARCH),
                // The 32-bit gate (or any ABI but the native one): numbers the monitor cannot read.
                insn(RET_K, 0, 0, RET_KILL_PROCESS),
                insn(LD_W_ABS, 0, 0, OFFSET_NR),
                insn(JSET_K, 4, 0, X32_BIT),
                insn(JGE_K, 0, 2, IO_URING_SETUP),
                insn(JGT_K, 1, 0, IO_URING_REGISTER),
                insn(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
                insn(RET_K, 0, 0, RET_ALLOW),
                // x32 numbers: the same, through the native gate.
                insn(RET_K, 0, 0, RET_KILL_PROCESS),
            ],
        }
    }
}

impl UnseenSyscallFilter {
    /// Whether this kernel has seccomp filtering at all (`PR_GET_SECCOMP` fails with EINVAL
    /// without CONFIG_SECCOMP).
    pub fn available() -> bool {
        // SAFETY: a query without side effects.
        unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
    }

    /// Installs the filter on the calling thread. Requires no_new_privs (set by the Landlock step
    /// or here). Async-signal-safe: the program is read in place, nothing is allocated.
    pub fn install(&self) -> io::Result<()> {
        let prog = libc::sock_fprog {
            len: LEN as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: plain system calls; `prog` points to `self.program`, alive for the call.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child: io_uring_setup gets EPERM, an ordinary system call still works.
    #[test]
    fn io_uring_is_refused_and_nothing_else() {
        if !UnseenSyscallFilter::available() {
            eprintln!("skipped: this kernel has no seccomp");
            return;
        }
        let filter = UnseenSyscallFilter::default();
        // SAFETY: the child only makes system calls and _exits; it reports through its exit status.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                if filter.install().is_err() {
                    libc::_exit(10);
                }
                let mut params = [0u8; 120];
                let rc = libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr());
                if rc >= 0 || *libc::__errno_location() != libc::EPERM {
                    libc::_exit(11);
                }
                if libc::syscall(libc::SYS_io_uring_register, -1, 0, 0, 0) >= 0
                    || *libc::__errno_location() != libc::EPERM
                {
                    libc::_exit(12);
                }
                if libc::getpid() <= 0 || libc::syscall(libc::SYS_getppid) <= 0 {
                    libc::_exit(13);
                }
                // 424 (pidfd_send_signal) and 428 (open_tree) border the range: not refused.
                let rc = libc::syscall(libc::SYS_pidfd_send_signal, -1, 0, 0, 0);
                if rc >= 0 || *libc::__errno_location() == libc::EPERM {
                    libc::_exit(14);
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "10 install, 11 setup, 12 register, 13 getpid, 14 neighbour"
        );
    }

    /// getpid through the 32-bit gate, in a forked child that first installs the filter when
    /// `filtered`; returns its wait status.
    #[cfg(target_arch = "x86_64")]
    fn getpid_through_int80(filtered: bool) -> libc::c_int {
        let filter = UnseenSyscallFilter::default();
        // SAFETY: the child only makes system calls and _exits; it reports through its status.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                if filtered && filter.install().is_err() {
                    libc::_exit(10);
                }
                let mut ret: i32 = 20; // __NR_getpid in the i386 table
                std::arch::asm!("int 0x80", inlateout("eax") ret);
                libc::_exit(if ret == libc::getpid() { 0 } else { 11 });
            }
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_system_call_through_the_32_bit_gate_kills_the_process() {
        if !UnseenSyscallFilter::available() {
            eprintln!("skipped: this kernel has no seccomp");
            return;
        }
        let open = getpid_through_int80(false);
        if !(libc::WIFEXITED(open) && libc::WEXITSTATUS(open) == 0) {
            eprintln!("skipped: this kernel has no 32-bit gate (IA32 emulation off): {open:#x}");
            return;
        }
        let filtered = getpid_through_int80(true);
        assert!(
            libc::WIFSIGNALED(filtered) && libc::WTERMSIG(filtered) == libc::SIGSYS,
            "status {filtered:#x}"
        );
    }
}
