//! TEMPORARY minimal version; replaced by the procs branch.
use std::path::PathBuf;
use std::process::Stdio;

#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

pub fn spawn_server(cmd: &ServerCommand) -> std::io::Result<tokio::process::Child> {
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(cmd.env.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(d) = &cmd.cwd {
        c.current_dir(d);
    }
    c.spawn()
}

pub fn become_subreaper() -> std::io::Result<()> {
    Ok(())
}
