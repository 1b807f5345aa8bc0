//! Process running, paths and small helpers shared by the subcommands.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's folder). `cargo run` sets
/// `CARGO_MANIFEST_DIR` at run time too, which stays right even if the binary was built from
/// another checkout sharing the target folder.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

/// The `cargo` that runs us (so `cargo +nightly xtask` and rustup overrides keep working).
/// Runs in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Whether `program` is found on `PATH`.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A command line for messages.
pub(crate) fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        let a = arg.to_string_lossy();
        if a.is_empty() || a.contains([' ', '"', '\'']) {
            s.push_str(&format!("{a:?}"));
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Runs a command with inherited stdio; `Ok(true)` when it exits 0.
pub(crate) fn run_status(cmd: &mut Command) -> Result<bool> {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", display(cmd)))?;
    Ok(status.success())
}

/// Runs a command with inherited stdio and fails unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    if !run_status(cmd)? {
        bail!("`{}` failed", display(cmd));
    }
    Ok(())
}

/// What a finished command printed.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Captured {
    /// Fails with the command's stderr unless it exited 0.
    pub(crate) fn ok(self, what: &str) -> Result<Self> {
        if !self.status.success() {
            bail!(
                "{what} failed ({}): {}",
                self.status,
                last_lines(&self.stderr, 5)
            );
        }
        Ok(self)
    }
}

/// The last `n` non-empty lines of `s`, joined with " | ".
pub(crate) fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Runs a command capturing its output; kills it (and fails) once `deadline` passes.
pub(crate) fn capture(cmd: &mut Command, deadline: Option<Instant>) -> Result<Captured> {
    let shown = display(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // Only the child we started is killed.
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{shown}` timed out");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let join = |h: Option<thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Ok(Captured {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Builds a command from a program and arguments.
pub(crate) fn cmd<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// Builds the `webtorrent` binary with cargo in `profile` and returns its path.
pub(crate) fn build_webtorrent(profile: &str) -> Result<PathBuf> {
    let mut c = cargo();
    c.current_dir(root()).args([
        "build",
        "--locked",
        "--package",
        "webtorrent-cli",
        "--bin",
        "webtorrent",
        "--message-format=json-render-diagnostics",
    ]);
    if profile != "dev" {
        c.args(["--profile", profile]);
    }
    eprintln!("$ {}", display(&c));
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo build")?;
    if !out.status.success() {
        bail!("building the webtorrent binary failed");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "webtorrent"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build did not report the webtorrent executable")
}

/// Formats a duration as seconds with one decimal.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_when_needed() {
        let c = cmd("cargo", &["fuzz", "run", "a b", ""]);
        assert_eq!(display(&c), r#"cargo fuzz run "a b" """#);
    }

    #[test]
    fn last_lines_skips_blank_lines() {
        assert_eq!(last_lines("a\n\nb\nc\n\n", 2), "b | c");
        assert_eq!(last_lines("", 3), "");
    }

    #[test]
    fn capture_reports_output_and_status() {
        let out = capture(
            &mut cmd("sh", &["-c", "echo out; echo err >&2; exit 3"]),
            None,
        )
        .expect("sh runs");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert!(out.ok("sh").is_err());
    }

    #[test]
    fn capture_kills_at_the_deadline() {
        let start = Instant::now();
        let r = capture(
            &mut cmd("sleep", &["10"]),
            Some(Instant::now() + Duration::from_millis(200)),
        );
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
