//! Compiles src/watchdog.bpf.c into an eBPF object with clang. Without clang the crate builds
//! anyway and exposes no object, so the watchdog falls back to its next filesystem backend.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/watchdog.bpf.c");
    println!("cargo:rerun-if-changed=src/watchdog.h");
    println!("cargo:rerun-if-changed=src/kernel_types.h");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rustc-check-cfg=cfg(watchdog_bpf_object)");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out.join("watchdog.bpf.o");
    let candidates: Vec<String> = match env::var("BPF_CLANG") {
        Ok(clang) if !clang.is_empty() => vec![clang],
        _ => vec!["clang-19".into(), "clang".into()],
    };
    let mut failures = Vec::new();
    for clang in &candidates {
        let result = Command::new(clang)
            .args([
                "-target",
                "bpf",
                "-O2",
                "-g",
                "-D__TARGET_ARCH_x86",
                "-Wall",
            ])
            .args(["-Werror=implicit-function-declaration"])
            .arg("-Isrc")
            .args(["-c", "src/watchdog.bpf.c", "-o"])
            .arg(&object)
            .output();
        match result {
            Ok(output) if output.status.success() => {
                println!("cargo:rustc-cfg=watchdog_bpf_object");
                return;
            }
            Ok(output) => failures.push(format!(
                "{clang} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => failures.push(format!("{clang}: {error}")),
        }
    }
    println!(
        "cargo:warning=eBPF object not built, the eBPF backend will be unavailable ({})",
        failures.join("; ").replace('\n', " | ")
    );
}
