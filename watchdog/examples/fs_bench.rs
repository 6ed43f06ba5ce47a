//! The measuring side of `cargo xtask bench fs`: how much filesystem monitoring costs a process
//! tree that creates many small files. Run by the xtask (root, on a private tmpfs); run alone:
//! `fs_bench DIR FILES RUNS [CONFIG...]` prints one `RESULT` line per configuration.
//!
//! Each run re-executes this binary as the writer (`fs_bench --write DIR FILES`), a child of this
//! process, so that monitoring sees a real, separate process tree. The writer waits for a line on
//! stdin (so the scope is declared before its first write) and reports its own loop time.

use std::io::{BufRead, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use watchdog::fsmon::ebpf::{EbpfBackend, EbpfCounters};
use watchdog::fsmon::fanotify::FanotifyBackend;
use watchdog::fsmon::{Backend, WatchScope};
use watchdog::sandbox::scope::Scope;
use watchdog::sandbox::{Confinement, LandlockState, SandboxPlan};

/// Configurations, in the order they are run. To measure another backend, add it here and in
/// [`Monitor::start`].
const CONFIGS: &[&str] = &[
    "baseline",
    "ebpf-in-scope",
    "ebpf-out-of-scope",
    "ebpf-unwatched",
    "fanotify-in-scope",
    "fanotify-out-of-scope",
    "fanotify-unwatched",
    "landlock",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write") {
        return write_files(Path::new(&args[1]), args[2].parse().unwrap());
    }
    if args.len() < 3 {
        eprintln!("usage: fs_bench DIR FILES RUNS [CONFIG...]  (configs: {CONFIGS:?})");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[0]);
    let files: usize = args[1].parse().expect("FILES");
    let runs: usize = args[2].parse().expect("RUNS");
    let configs: Vec<String> = if args.len() > 3 {
        args[3..].to_vec()
    } else {
        CONFIGS.iter().map(|c| c.to_string()).collect()
    };
    // Round-robin, one run of each configuration in turn (monitor started afresh each time),
    // so that drift on a shared machine hits every configuration alike.
    std::fs::create_dir_all(&dir).expect("creating DIR");
    let mut results: Vec<(String, Result<Vec<f64>, String>, EbpfCounters)> = configs
        .into_iter()
        .map(|c| (c, Ok(Vec::new()), EbpfCounters::default()))
        .collect();
    for run in 0..runs {
        for (config, times, total) in results.iter_mut() {
            let Ok(list) = times else { continue };
            match measure_once(config, &dir, run, files) {
                Ok((time, counters)) => {
                    list.push(time);
                    add(total, counters.unwrap_or_default());
                }
                Err(reason) => *times = Err(reason),
            }
        }
    }
    for (config, times, c) in results {
        match times {
            Ok(times) => {
                let mut sorted = times.clone();
                sorted.sort_by(f64::total_cmp);
                let median = sorted[sorted.len() / 2];
                let runs: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
                println!(
                    "RESULT {config} {median:.3} runs={} emitted={} filtered={} ringbuf_drops={} delivered={} channel_drops={}",
                    runs.join(","),
                    c.emitted,
                    c.filtered_in_kernel,
                    c.ringbuf_drops,
                    c.delivered,
                    c.channel_drops
                );
            }
            Err(reason) => println!("SKIPPED {config} {reason}"),
        }
    }
}

fn add(total: &mut EbpfCounters, c: EbpfCounters) {
    total.emitted += c.emitted;
    total.filtered_in_kernel += c.filtered_in_kernel;
    total.ringbuf_drops += c.ringbuf_drops;
    total.stash_failures += c.stash_failures;
    total.killed += c.killed;
    total.delivered += c.delivered;
    total.channel_drops += c.channel_drops;
}

/// What monitors the writer during one configuration.
enum Monitor {
    None,
    Ebpf(Kernel<EbpfBackend>),
    /// fanotify marks the filesystem (the private tmpfs): every process writing there pays.
    Fanotify(Kernel<FanotifyBackend>),
    Landlock(Confinement),
}

/// A kernel backend with its runtime, and the scope each writer is declared with.
struct Kernel<B> {
    backend: Box<B>,
    /// `None`: the writer is not followed at all (the tax on everyone else).
    scope: Option<WatchScope>,
    _runtime: RuntimeThread,
}

impl<B: Backend + 'static> Kernel<B> {
    /// Starts the backend on its own runtime thread, with a consumer that takes events off the
    /// channel as fast as they come; follows this process's children when `write` is given.
    fn start(
        start: impl FnOnce(
            tokio::sync::mpsc::Sender<watchdog::fsmon::event::FsEvent>,
        ) -> Result<B, String>,
        write: Option<Vec<PathBuf>>,
    ) -> Result<Kernel<B>, String> {
        let runtime = RuntimeThread::start();
        let (tx, mut rx) = tokio::sync::mpsc::channel(65536);
        let mut backend = {
            let _guard = runtime.runtime.enter();
            start(tx)?
        };
        runtime
            .runtime
            .spawn(async move { while rx.recv().await.is_some() {} });
        if write.is_some() {
            backend
                .add_spawner(std::process::id())
                .map_err(|e| e.to_string())?;
        }
        Ok(Kernel {
            backend: Box::new(backend),
            scope: write.map(|write| WatchScope {
                write,
                sensitive: Vec::new(),
                strict: false,
            }),
            _runtime: runtime,
        })
    }

    fn watcher(&mut self) -> Option<(&mut dyn Backend, &WatchScope)> {
        let scope = self.scope.as_ref()?;
        Some((self.backend.as_mut() as &mut dyn Backend, scope))
    }
}

impl Monitor {
    fn start(config: &str, dir: &Path) -> Result<Monitor, String> {
        let elsewhere = dir.with_file_name("elsewhere");
        match config {
            "baseline" => Ok(Monitor::None),
            "ebpf-in-scope" => Monitor::ebpf(Some(vec![dir.to_path_buf()])),
            "ebpf-out-of-scope" => Monitor::ebpf(Some(vec![elsewhere])),
            "ebpf-unwatched" => Monitor::ebpf(None),
            "fanotify-in-scope" => Monitor::fanotify(dir, Some(vec![dir.to_path_buf()])),
            "fanotify-out-of-scope" => Monitor::fanotify(dir, Some(vec![elsewhere])),
            "fanotify-unwatched" => Monitor::fanotify(dir, None),
            "landlock" => {
                let plan = SandboxPlan {
                    enabled: true,
                    scope: Scope {
                        write: vec![dir.to_path_buf()],
                        read: None,
                        notes: Vec::new(),
                    },
                };
                let confinement =
                    Confinement::prepare("fs-bench", &plan).map_err(|e| e.to_string())?;
                match confinement.landlock {
                    LandlockState::Enforced { .. } => Ok(Monitor::Landlock(confinement)),
                    other => Err(format!("Landlock {other:?}")),
                }
            }
            other => Err(format!("unknown configuration {other:?}")),
        }
    }

    fn ebpf(write: Option<Vec<PathBuf>>) -> Result<Monitor, String> {
        let kernel = Kernel::start(
            |tx| EbpfBackend::start(tx).map_err(|e| e.to_string()),
            write,
        )?;
        Ok(Monitor::Ebpf(kernel))
    }

    fn fanotify(dir: &Path, write: Option<Vec<PathBuf>>) -> Result<Monitor, String> {
        let kernel = Kernel::start(|tx| FanotifyBackend::start_with(tx, None), write)?;
        // Mark the tmpfs: the writer's files are the only ones there.
        kernel
            .backend
            .prepare(&[dir.to_path_buf()])
            .map_err(|e| e.to_string())?;
        Ok(Monitor::Fanotify(kernel))
    }

    /// The backend following the writer and the scope it is held to, if any.
    fn watcher(&mut self) -> Option<(&mut dyn Backend, &WatchScope)> {
        match self {
            Monitor::Ebpf(k) => k.watcher(),
            Monitor::Fanotify(k) => k.watcher(),
            _ => None,
        }
    }

    fn counters(&self) -> Option<EbpfCounters> {
        match self {
            Monitor::Ebpf(k) => Some(k.backend.counters()),
            _ => None,
        }
    }
}

/// A current-thread tokio runtime driven by its own thread (the backend's ring-buffer reader
/// runs there, competing for the CPUs like it would in the watchdog).
struct RuntimeThread {
    runtime: Arc<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    fn start() -> RuntimeThread {
        let runtime = Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let driver = runtime.clone();
        let thread = std::thread::spawn(move || {
            let _ = driver.block_on(stopped);
        });
        RuntimeThread {
            runtime,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One run of one configuration: start its monitor, time the writer, read the counters.
fn measure_once(
    config: &str,
    dir: &Path,
    run: usize,
    files: usize,
) -> Result<(f64, Option<EbpfCounters>), String> {
    // `dir` stays (Landlock rules hold its inode); each run writes into a fresh subdirectory.
    let mut monitor = Monitor::start(config, dir)?;
    // Let the previous run's teardown (freeing programs and maps is deferred work) settle.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let run_dir = dir.join(format!("{config}-{run}"));
    std::fs::create_dir(&run_dir).map_err(|e| e.to_string())?;
    let time = run_writer(&mut monitor, &run_dir, files);
    // Let the reader drain before reading the counters.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let counters = monitor.counters();
    drop(monitor);
    let _ = std::fs::remove_dir_all(&run_dir);
    Ok((time?, counters))
}

fn run_writer(monitor: &mut Monitor, dir: &Path, files: usize) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("--write")
        .arg(dir)
        .arg(files.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Monitor::Landlock(confinement) = monitor {
        let step = confinement.child_step();
        // SAFETY: `apply` only makes async-signal-safe system calls (see ChildStep).
        unsafe {
            cmd.pre_exec(move || step.apply());
        }
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let pid = child.id();
    if let Some((backend, scope)) = monitor.watcher() {
        backend.watch(pid, scope).map_err(|e| e.to_string())?;
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"go\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if let Some((backend, _)) = monitor.watcher() {
        backend.unwatch(pid);
    }
    if !status.success() {
        return Err(format!("writer failed: {status}"));
    }
    out.trim()
        .parse()
        .map_err(|e| format!("writer said {out:?}: {e}"))
}

/// The workload: FILES × (create + write 16 bytes + close) of new files, timed from "go".
fn write_files(dir: &Path, files: usize) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let payload = [b'x'; 16];
    let start = Instant::now();
    for i in 0..files {
        let mut f = std::fs::File::create(dir.join(format!("f{i}"))).unwrap();
        f.write_all(&payload).unwrap();
    }
    println!("{:.6}", start.elapsed().as_secs_f64());
}
