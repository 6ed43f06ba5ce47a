//! The eBPF backend: tracepoint programs from `watchdog-ebpf` follow every tree a spawner forks
//! and report its write-like syscalls, one record per syscall with its outcome. Writes inside a
//! tree's scope are only counted in the kernel (transport dominates the cost, KERNEL.md §5).
//!
//! Needs root, kernel BTF and an object built with clang; [`EbpfBackend::start`] tries them all
//! and says which one is missing, so that the monitor can take the next backend.

use super::deny::StrictOpens;
use super::event::{BackendKind, FsEvent, FsOp, Outcome};
use super::{Backend, EventSender, WatchScope};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, Lsm, RawTracePoint};
use aya::{Btf, Ebpf};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use watchdog_ebpf as kernel;

/// Why the backend cannot run here; the monitor logs it and takes the next backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "eBPF backend unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

const TRACEFS: &str = "/sys/kernel/tracing";

/// What the backend has seen so far, for `status` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EbpfCounters {
    /// Records the kernel put into the ring buffer.
    pub emitted: u64,
    /// In-scope operations counted in the kernel and never sent.
    pub filtered_in_kernel: u64,
    /// Records lost because the ring buffer was full.
    pub ringbuf_drops: u64,
    /// Records lost before the syscall returned (pending table full).
    pub stash_failures: u64,
    /// Writers killed by strict mode.
    pub killed: u64,
    /// Events handed to the monitor, and those lost because its channel was full.
    pub delivered: u64,
    pub channel_drops: u64,
}

#[derive(Default)]
struct ReaderCounters {
    delivered: AtomicU64,
    channel_drops: AtomicU64,
}

/// `kernel::Scope` as an aya map value (the orphan rule keeps `Pod` off the foreign type).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct ScopeValue(kernel::Scope);

// SAFETY: plain `repr(C)` integers and byte arrays, padding made explicit; any bit pattern is valid.
unsafe impl aya::Pod for ScopeValue {}

pub struct EbpfBackend {
    /// Owns the attached programs: dropping it detaches everything.
    _ebpf: Ebpf,
    spawners: BpfHashMap<MapData, u32, u32>,
    watched: BpfHashMap<MapData, u32, u32>,
    scopes: BpfHashMap<MapData, u32, ScopeValue>,
    /// Per spawner, the scope its children have from their fork until `watch` declares theirs.
    first_scopes: BpfHashMap<MapData, u32, ScopeValue>,
    /// What strict mode puts there (the sensitive set, killed on touch), once enabled.
    strict_first_scope: Option<ScopeValue>,
    stats: PerCpuArray<MapData, u64>,
    declared: HashMap<u32, WatchScope>,
    strict_kill: bool,
    /// Strict mode's refusal of sensitive opens (fanotify permission events; BPF cannot fail a
    /// syscall on this kind of kernel), once enabled.
    strict_opens: Option<StrictOpens>,
    spawner_pids: Vec<u32>,
    events: EventSender,
    reader: Arc<ReaderCounters>,
    reader_task: tokio::task::JoinHandle<()>,
    /// Optional syscalls that could not be hooked on this kernel: none since the raw
    /// `sys_enter`/`sys_exit` tracepoints see every syscall (kept for `status`).
    pub skipped: Vec<&'static str>,
    /// Whether this kernel loads BPF-LSM programs (`Err`: why not).
    pub lsm: Result<(), String>,
}

impl EbpfBackend {
    /// Loads and attaches everything and starts the ring-buffer reader on the current tokio
    /// runtime. Probes by trying; any missing piece is the reason it is [`Unavailable`].
    pub fn start(events: EventSender) -> Result<EbpfBackend, Unavailable> {
        if !nix::unistd::geteuid().is_root() {
            return Err(Unavailable("not running as root".into()));
        }
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(Unavailable(
                "the kernel has no BTF (/sys/kernel/btf/vmlinux)".into(),
            ));
        }
        let Some(object) = kernel::object() else {
            return Err(Unavailable(
                "built without clang, so there is no eBPF object".into(),
            ));
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Unavailable("not started inside a tokio runtime".into()))?;
        ensure_tracefs().map_err(|e| Unavailable(format!("tracefs: {e}")))?;

        let mut ebpf = Ebpf::load(object).map_err(|e| Unavailable(format!("loading: {e}")))?;
        let btf = Btf::from_sys_fs().map_err(|e| Unavailable(format!("kernel BTF: {e}")))?;
        for (program, tracepoint) in [
            ("on_fork", "sched_process_fork"),
            ("on_exit", "sched_process_exit"),
        ] {
            let prog: &mut BtfTracePoint = program_mut(&mut ebpf, program)?;
            prog.load(tracepoint, &btf)
                .and_then(|()| prog.attach().map(drop))
                .map_err(|e| Unavailable(format!("tp_btf/{tracepoint}: {}", error_chain(&e))))?;
        }
        attach_syscalls(&mut ebpf)?;
        let skipped = Vec::new();
        let lsm = probe_lsm(&mut ebpf, &btf);

        let spawners = take_map(&mut ebpf, "SPAWNERS")?;
        let watched = take_map(&mut ebpf, "WATCHED")?;
        let scopes = take_map(&mut ebpf, "SCOPES")?;
        let first_scopes = take_map(&mut ebpf, "FIRST_SCOPES")?;
        let stats = take_map(&mut ebpf, "STATS")?;
        let ring: RingBuf<MapData> = take_map(&mut ebpf, "EVENTS")?;

        let reader = Arc::new(ReaderCounters::default());
        let ring = {
            let _guard = runtime.enter();
            // SAFETY: the ring buffer owns its fd for as long as the AsyncFd owns the ring.
            unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
                .map_err(|e| Unavailable(format!("ring buffer: {e}")))?
        };
        let reader_task = runtime.spawn(read_events(ring, events.clone(), reader.clone()));
        Ok(EbpfBackend {
            _ebpf: ebpf,
            spawners,
            watched,
            scopes,
            first_scopes,
            strict_first_scope: None,
            stats,
            declared: HashMap::new(),
            strict_kill: false,
            strict_opens: None,
            spawner_pids: Vec::new(),
            events,
            reader,
            reader_task,
            skipped,
            lsm,
        })
    }

    /// Strict mode: a watched process touching the sensitive set is SIGKILLed at the syscall
    /// (the syscall itself still completes: nothing here can fail it) and reported `Killed`.
    /// Applies to every tree declared with `watch`, now and later.
    pub fn set_strict_kill(&mut self, on: bool) -> io::Result<()> {
        self.strict_kill = on;
        let declared: Vec<(u32, WatchScope)> = self.declared.clone().into_iter().collect();
        for (root, scope) in declared {
            self.write_scope(root, &scope)?;
        }
        Ok(())
    }

    /// Strict from the fork on: every child a spawner starts has the sensitive set in its scope,
    /// killed on touch, until `watch` declares the child's own scope (no window in which a
    /// server's first instructions run unwatched). Also turns [`Self::set_strict_kill`] on.
    pub fn set_strict_from_fork(&mut self, sensitive: &[PathBuf]) -> io::Result<()> {
        self.strict_first_scope = Some(Self::strict_first_scope(sensitive));
        for spawner in self.spawner_pids.clone() {
            self.arm_first_scope(spawner)?;
        }
        self.set_strict_kill(true)
    }

    fn strict_first_scope(sensitive: &[PathBuf]) -> ScopeValue {
        let mut first = encode_scope(&WatchScope {
            write: Vec::new(),
            sensitive: sensitive.to_vec(),
            strict: true,
        });
        first.flags |= kernel::SCOPE_KILL;
        ScopeValue(first)
    }

    fn arm_first_scope(&mut self, spawner: u32) -> io::Result<()> {
        match self.strict_first_scope {
            Some(first) => self
                .first_scopes
                .insert(spawner, first, 0)
                .map_err(io::Error::other),
            None => Ok(()),
        }
    }

    /// Stops following new children of `spawner` (trees already followed stay).
    pub fn remove_spawner(&mut self, spawner: u32) {
        let _ = self.spawners.remove(&spawner);
        let _ = self.first_scopes.remove(&spawner);
        self.spawner_pids.retain(|p| *p != spawner);
        if let Some(s) = &self.strict_opens {
            s.remove_spawner(spawner);
        }
    }

    /// The root of the tree `pid` belongs to, if it is followed.
    pub fn root_of(&self, pid: u32) -> Option<u32> {
        self.watched.get(&pid, 0).ok()
    }

    pub fn counters(&self) -> EbpfCounters {
        let stat = |index: u32| -> u64 {
            self.stats
                .get(&index, 0)
                .map(|values| values.iter().sum())
                .unwrap_or(0)
        };
        EbpfCounters {
            emitted: stat(kernel::stat::EMITTED),
            filtered_in_kernel: stat(kernel::stat::FILTERED),
            ringbuf_drops: stat(kernel::stat::RINGBUF_DROPS),
            stash_failures: stat(kernel::stat::STASH_FAILURES),
            killed: stat(kernel::stat::KILLED),
            delivered: self.reader.delivered.load(Ordering::Relaxed),
            channel_drops: self.reader.channel_drops.load(Ordering::Relaxed),
        }
    }

    fn write_scope(&mut self, root: u32, scope: &WatchScope) -> io::Result<()> {
        let mut value = encode_scope(scope);
        if self.strict_kill || scope.strict {
            value.flags |= kernel::SCOPE_KILL;
        }
        self.scopes
            .insert(root, ScopeValue(value), 0)
            .map_err(io::Error::other)
    }
}

impl Backend for EbpfBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ebpf
    }

    fn describe(&self) -> String {
        match &self.lsm {
            Ok(()) => "ebpf (BPF-LSM loads here; strict opens are refused by fanotify)".into(),
            Err(why) => {
                format!("ebpf (BPF-LSM unavailable: {why}; strict opens are refused by fanotify)")
            }
        }
    }

    fn add_spawner(&mut self, spawner: u32) -> io::Result<()> {
        self.arm_first_scope(spawner)?;
        self.spawners
            .insert(spawner, 1, 0)
            .map_err(io::Error::other)?;
        self.spawner_pids.push(spawner);
        if let Some(s) = &self.strict_opens {
            s.add_spawner(spawner);
        }
        Ok(())
    }

    fn watch(&mut self, root_pid: u32, scope: &WatchScope) -> io::Result<()> {
        self.write_scope(root_pid, scope)?;
        self.declared.insert(root_pid, scope.clone());
        if let Some(s) = &self.strict_opens {
            s.watch(root_pid, scope)?;
        }
        Ok(())
    }

    fn unwatch(&mut self, root_pid: u32) {
        self.declared.remove(&root_pid);
        let _ = self.scopes.remove(&root_pid);
        let _ = self.watched.remove(&root_pid);
        if let Some(s) = &self.strict_opens {
            s.unwatch(root_pid);
        }
    }

    fn remove_spawner(&mut self, spawner: u32) {
        EbpfBackend::remove_spawner(self, spawner);
    }

    /// Kills at the syscall from the fork on, and refuses sensitive opens where denial is on.
    fn strict_from_fork(&mut self, spawner: u32, sensitive: &[PathBuf]) -> Result<(), String> {
        if !self.spawner_pids.contains(&spawner) {
            return Err(format!("pid {spawner} is not a spawner followed here"));
        }
        self.first_scopes
            .insert(spawner, Self::strict_first_scope(sensitive), 0)
            .map_err(|e| format!("cannot arm its first scope: {e}"))?;
        match &self.strict_opens {
            Some(s) => s
                .strict_from_fork(spawner, sensitive)
                .map_err(|e| format!("cannot protect the sensitive set: {e}")),
            None => Ok(()),
        }
    }

    fn strict_everywhere(&mut self, sensitive: &[PathBuf]) -> Result<(), String> {
        self.set_strict_from_fork(sensitive)
            .map_err(|e| format!("cannot arm the kernel's kill from fork: {e}"))?;
        Backend::enable_denial(self)?;
        let opens = self
            .strict_opens
            .as_ref()
            .ok_or("the denial group did not start")?;
        opens
            .strict_everywhere(sensitive)
            .map_err(|e| format!("cannot protect the sensitive set: {e}"))
    }

    fn enable_denial(&mut self) -> Result<(), String> {
        if self.strict_opens.is_none() {
            let opens = StrictOpens::start(&self.spawner_pids, self.events.clone())?;
            for (root, scope) in &self.declared {
                opens.watch(*root, scope).map_err(|e| e.to_string())?;
            }
            self.strict_opens = Some(opens);
        }
        Ok(())
    }
}

impl Drop for EbpfBackend {
    fn drop(&mut self) {
        self.reader_task.abort();
    }
}

/// The kernel form of a scope. Write prefixes get a trailing '/' so that a match is strictly
/// inside; one that does not fit is left out (its writes are then sent, never hidden). A
/// sensitive prefix that does not fit turns filtering off for the tree.
fn encode_scope(scope: &WatchScope) -> kernel::Scope {
    let mut value = kernel::Scope::default();
    let mut n = 0;
    for dir in &scope.write {
        let mut bytes = dir.as_os_str().as_bytes().to_vec();
        if !bytes.ends_with(b"/") {
            bytes.push(b'/');
        }
        if n < kernel::MAX_WRITE && bytes.len() < kernel::PREFIX_LEN && bytes.starts_with(b"/") {
            set_prefix(&mut value.write[n], &bytes);
            n += 1;
        }
    }
    value.n_write = n as u32;
    let mut n = 0;
    for path in &scope.sensitive {
        let mut bytes = path.as_os_str().as_bytes();
        while bytes.len() > 1 && bytes.ends_with(b"/") {
            bytes = &bytes[..bytes.len() - 1];
        }
        if n < kernel::MAX_SENSITIVE && bytes.len() < kernel::PREFIX_LEN {
            set_prefix(&mut value.sensitive[n], bytes);
            n += 1;
        } else {
            value.flags |= kernel::SCOPE_NO_FILTER;
        }
    }
    value.n_sensitive = n as u32;
    value
}

fn set_prefix(prefix: &mut kernel::Prefix, bytes: &[u8]) {
    prefix.len = bytes.len() as u32;
    prefix.s[..bytes.len()].copy_from_slice(bytes);
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, Unavailable>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| Unavailable(format!("program {name} missing from the object")))?;
    program
        .try_into()
        .map_err(|e| Unavailable(format!("program {name}: {e}")))
}

/// Loads (and unloads again) the object's LSM probe: whether BPF could refuse a syscall here.
fn probe_lsm(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), String> {
    let prog: &mut Lsm = program_mut(ebpf, "lsm_probe").map_err(|e| e.0)?;
    let short = |e: &dyn std::error::Error| {
        let text = error_chain(e);
        // The verifier log of a refused load is empty: keep the reason.
        text.split(". Verifier output")
            .next()
            .unwrap_or(&text)
            .to_owned()
    };
    prog.load("file_open", btf).map_err(|e| short(&e))?;
    prog.unload().map_err(|e| short(&e))
}

fn take_map<T>(ebpf: &mut Ebpf, name: &str) -> Result<T, Unavailable>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| Unavailable(format!("map {name} missing from the object")))?;
    T::try_from(map).map_err(|e| Unavailable(format!("map {name}: {e}")))
}

/// Attaches `sys_enter` and `sys_exit` to the raw syscall tracepoints: two programs to verify
/// and two attachments, instead of a perf tracepoint per syscall (seconds to load and detach).
fn attach_syscalls(ebpf: &mut Ebpf) -> Result<(), Unavailable> {
    for name in ["sys_enter", "sys_exit"] {
        let prog: &mut RawTracePoint = program_mut(ebpf, name)?;
        prog.load()
            .and_then(|()| prog.attach(name).map(drop))
            .map_err(|e| Unavailable(format!("raw_tp/{name}: {}", error_chain(&e))))?;
    }
    Ok(())
}

/// aya puts the verifier log in the error's sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Syscall tracepoints are attached through tracefs; mount it when nobody has.
fn ensure_tracefs() -> io::Result<()> {
    if Path::new(TRACEFS).join("events").exists() {
        return Ok(());
    }
    // SAFETY: constant NUL-terminated strings, no data argument.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel wakes the reader only when 64 KiB are waiting (or for a kill); this poll bounds
/// how long a lone event can wait.
const POLL: Duration = Duration::from_millis(20);

async fn read_events(
    mut ring: AsyncFd<RingBuf<MapData>>,
    events: EventSender,
    counters: Arc<ReaderCounters>,
) {
    let mut exe_cache = ExeCache::default();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let open = tokio::select! {
            ready = ring.readable_mut() => match ready {
                Ok(mut guard) => {
                    let open = drain(guard.get_inner_mut(), &events, &counters, &mut exe_cache);
                    guard.clear_ready();
                    open
                }
                Err(e) => {
                    tracing::error!("eBPF ring buffer: {e}; filesystem events stop");
                    return;
                }
            },
            _ = poll.tick() => drain(ring.get_mut(), &events, &counters, &mut exe_cache),
        };
        if !open {
            return;
        }
    }
}

/// Hands every waiting record to the monitor; false once the monitor is gone.
fn drain(
    ring: &mut RingBuf<MapData>,
    events: &EventSender,
    counters: &ReaderCounters,
    exe_cache: &mut ExeCache,
) -> bool {
    while let Some(record) = ring.next() {
        let Some(event) = decode(&record, exe_cache) else {
            continue;
        };
        match events.try_send(event) {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                if counters.channel_drops.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!("filesystem monitor is not keeping up; eBPF events lost");
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
    true
}

/// One exe per (pid, comm): a process's exe only changes at exec, which changes comm too.
#[derive(Default)]
struct ExeCache {
    last: Option<(u32, String, Option<PathBuf>)>,
}

impl ExeCache {
    fn get(&mut self, pid: u32, comm: &str) -> Option<PathBuf> {
        if let Some((p, c, exe)) = &self.last {
            if *p == pid && c == comm {
                return exe.clone();
            }
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        self.last = Some((pid, comm.to_string(), exe.clone()));
        exe
    }
}

fn decode(record: &[u8], exe_cache: &mut ExeCache) -> Option<FsEvent> {
    if record.len() < kernel::PATH_OFFSET {
        return None;
    }
    // SAFETY: the length is checked and `EventHeader` is plain integers (any bit pattern).
    let header: kernel::EventHeader = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let slice = |offset: usize, len: u16| -> Option<PathBuf> {
        let bytes = record.get(offset..offset + len as usize)?;
        Some(PathBuf::from(OsStr::from_bytes(bytes)))
    };
    let path = slice(kernel::PATH_OFFSET, header.path_len)?;
    let path2 = match header.path2_len {
        0 => None,
        len => Some(slice(kernel::PATH2_OFFSET, len)?),
    };
    let comm_len = header.comm.iter().position(|&b| b == 0).unwrap_or(16);
    let comm = String::from_utf8_lossy(&header.comm[..comm_len]).into_owned();
    let outcome = if header.flags & kernel::EVENT_KILLED != 0 {
        Outcome::Killed
    } else if header.ret < 0 {
        Outcome::Failed(-header.ret)
    } else {
        Outcome::Allowed
    };
    Some(FsEvent {
        root_pid: header.root,
        pid: header.tgid,
        tid: header.tid,
        exe: exe_cache.get(header.tgid, &comm),
        comm,
        op: decode_op(header.op)?,
        path,
        path2,
        outcome,
        backend: BackendKind::Ebpf,
    })
}

fn decode_op(op: u16) -> Option<FsOp> {
    use kernel::op::*;
    Some(match op {
        OPEN_WRITE => FsOp::OpenWrite,
        TRUNCATE => FsOp::Truncate,
        UNLINK => FsOp::Unlink,
        RMDIR => FsOp::Rmdir,
        MKDIR => FsOp::Mkdir,
        RENAME => FsOp::Rename,
        LINK => FsOp::Link,
        SYMLINK => FsOp::Symlink,
        MKNOD => FsOp::Mknod,
        CHMOD => FsOp::Chmod,
        CHOWN => FsOp::Chown,
        ATTRIB => FsOp::Attrib,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "ebpf_tests.rs"]
mod tests;
