//! `cargo xtask bench fs`: what filesystem monitoring costs a process tree that creates many
//! small files. The measuring is done by the `fs_bench` example of mcp-watchdog (it needs the
//! library); this side mounts a private tmpfs (ext4 timing is writeback noise, KERNEL.md §5),
//! builds and runs it, and prints the table.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const USAGE: &str = "\
cargo xtask bench fs [--files N] [--runs N] [--only LIST]

  Root only (mounts a private tmpfs and loads eBPF programs). Times N (default 200000)
  create + write 16 B + close of new files by a child process, median of --runs (default 5),
  for each configuration:
    baseline            nothing monitors
    ebpf-in-scope       eBPF backend, writer watched, writes inside its scope (counted in kernel)
    ebpf-out-of-scope   eBPF backend, writer watched, every write sent to userspace
    ebpf-unwatched      eBPF backend loaded, writer not followed (the tax on other processes)
    fanotify-in-scope   fanotify backend (filesystem mark), writer watched, writes inside its scope
    fanotify-out-of-scope  fanotify backend, writer watched, every write reported
    fanotify-unwatched  fanotify backend marking the filesystem, writer not followed
    landlock            the writer confined by the watchdog's Landlock sandbox
  and prints a Markdown table with ratios to the baseline.";

/// Targets from the issue, by configuration.
const TARGETS: &[(&str, f64)] = &[
    ("ebpf-in-scope", 1.3),
    ("ebpf-out-of-scope", 1.3),
    ("ebpf-unwatched", 1.05),
];

pub fn run(args: &[String]) -> Result<()> {
    let mut files = 200_000usize;
    let mut runs = 5usize;
    let mut only: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--files" => files = it.next().context("--files needs N")?.parse()?,
            "--runs" => runs = it.next().context("--runs needs N")?.parse()?,
            "--only" => {
                only = it
                    .next()
                    .context("--only needs a LIST")?
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown bench fs option {other:?}\n\n{USAGE}"),
        }
    }
    // SAFETY: no arguments, no side effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench fs: skipped, needs root (private tmpfs mount and eBPF)");
        return Ok(());
    }
    let agent = build()?;
    let mnt = std::env::temp_dir().join(format!("mcp-watchdog-fsbench-{}", std::process::id()));
    std::fs::create_dir_all(&mnt)?;
    let mounted = Tmpfs::mount(&mnt)?;
    eprintln!(
        "bench fs: {files} files x {runs} runs per configuration on a tmpfs at {}",
        mnt.display()
    );
    let output = Command::new(&agent)
        .arg(mnt.join("files"))
        .arg(files.to_string())
        .arg(runs.to_string())
        .args(&only)
        .output()
        .context("running fs_bench")?;
    drop(mounted);
    let _ = std::fs::remove_dir(&mnt);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "fs_bench failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("{}", table(&stdout));
    Ok(())
}

fn build() -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "mcp-watchdog",
            "--example",
            "fs_bench",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the fs_bench example failed");
    }
    // This xtask binary sits in target/release; examples go to target/release/examples.
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .context("xtask directory")?
        .join("examples/fs_bench"))
}

/// The agent's `RESULT name median runs=… counters…` and `SKIPPED name reason` lines as a table.
fn table(stdout: &str) -> String {
    let mut baseline = None;
    let mut rows = vec![
        "| configuration | median (s) | ratio | target | runs (s) | kernel counters |".to_string(),
        "| --- | ---: | ---: | ---: | --- | --- |".to_string(),
    ];
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("RESULT") => {
                let name = words.next().unwrap_or("?");
                let median: f64 = words
                    .next()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(f64::NAN);
                let rest: Vec<&str> = words.collect();
                let runs = rest
                    .first()
                    .and_then(|r| r.strip_prefix("runs="))
                    .unwrap_or("");
                let counters = if name.starts_with("ebpf") {
                    rest[1..].join(" ")
                } else {
                    String::new()
                };
                if name == "baseline" {
                    baseline = Some(median);
                }
                let ratio = baseline.map_or("–".to_string(), |b| format!("{:.2}×", median / b));
                let target = TARGETS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or("–".to_string(), |(_, t)| format!("≤ {t}×"));
                rows.push(format!(
                    "| {name} | {median:.3} | {ratio} | {target} | {runs} | {counters} |"
                ));
            }
            Some("SKIPPED") => {
                let name = words.next().unwrap_or("?");
                let reason: Vec<&str> = words.collect();
                rows.push(format!(
                    "| {name} | skipped: {} | | | | |",
                    reason.join(" ")
                ));
            }
            _ => {}
        }
    }
    rows.join("\n")
}

/// A tmpfs mounted for the length of the benchmark.
struct Tmpfs(CString);

impl Tmpfs {
    fn mount(dir: &Path) -> Result<Tmpfs> {
        let target = CString::new(dir.as_os_str().as_encoded_bytes())?;
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"mcp-watchdog-fsbench".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=2g".as_ptr().cast(),
            )
        };
        if rc != 0 {
            bail!(
                "mounting a tmpfs at {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(Tmpfs(target))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // SAFETY: the path mounted above.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}
