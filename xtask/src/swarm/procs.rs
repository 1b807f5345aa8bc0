//! Processes of a swarm scenario: spawned with their output in log files, killed when dropped,
//! plus the small waiting, port and HTTP helpers the drivers share.

use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{self, capture};

/// The log files of every process a scenario started, for its failure report.
#[derive(Clone, Default)]
pub(crate) struct Logs(Rc<RefCell<Vec<(String, PathBuf)>>>);

impl Logs {
    /// Records a log file to show on failure.
    pub(crate) fn add(&self, label: &str, path: PathBuf) {
        self.0.borrow_mut().push((label.to_owned(), path));
    }

    /// Prints the last `n` lines of every log on stderr.
    pub(crate) fn print_tails(&self, n: usize) {
        for (label, path) in self.0.borrow().iter() {
            let text = std::fs::read(path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            eprintln!("        --- {label}: {} (last {n} lines)", path.display());
            for line in &lines[lines.len().saturating_sub(n)..] {
                eprintln!("        | {line}");
            }
        }
    }
}

/// A child process with its stdout and stderr in files; killed (and reaped) when dropped.
pub(crate) struct Proc {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// The stdout file.
    pub(crate) out: PathBuf,
    /// The stderr file.
    pub(crate) err: PathBuf,
}

impl Proc {
    /// Starts `cmd` in `dir` with stdout in `dir/<label>.out` and stderr in `dir/<label>.err`.
    /// With `stdin`, the child's stdin is a pipe kept open until [`Proc::close_stdin`] or drop.
    pub(crate) fn spawn(
        label: &str,
        cmd: &mut Command,
        dir: &Path,
        stdin: bool,
        logs: &Logs,
    ) -> Result<Self> {
        let out = dir.join(format!("{label}.out"));
        let err = dir.join(format!("{label}.err"));
        let command_line = util::display(cmd);
        std::fs::write(
            dir.join(format!("{label}.cmd")),
            format!("{command_line}\n"),
        )?;
        let mut child = cmd
            .current_dir(dir)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(File::create(&out)?)
            .stderr(File::create(&err)?)
            .spawn()
            .with_context(|| format!("cannot start `{command_line}`"))?;
        logs.add(&format!("{label} stdout"), out.clone());
        logs.add(&format!("{label} stderr"), err.clone());
        Ok(Self {
            label: label.to_owned(),
            stdin: child.stdin.take(),
            child,
            out,
            err,
        })
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to the child's stdin.
    pub(crate) fn send_line(&mut self, line: &str) -> Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            bail!("{} has no stdin pipe", self.label);
        };
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("cannot write to {}'s stdin", self.label))
    }

    /// Closes the child's stdin (the drivers that read commands then stop).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The exit status, if the process has exited.
    pub(crate) fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits up to `limit` for the process to exit.
    pub(crate) fn wait_for(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT (what Ctrl-C does) and waits up to `limit` for the exit.
    pub(crate) fn interrupt(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Some(status));
        }
        // `kill -INT` signals only this child, by its id.
        let sent = Command::new("kill")
            .args(["-INT", &self.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !sent.success() {
            bail!("kill -INT {} failed", self.id());
        }
        self.wait_for(limit)
    }

    /// Stops it with Ctrl-C (SIGINT); it must exit 0 within 5 s. `what` names it in errors.
    pub(crate) fn stop_clean(&mut self, what: &str) -> Result<()> {
        match self.interrupt(Duration::from_secs(5))? {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!("{what} exited with {status} on Ctrl-C"),
            None => bail!("{what} still runs 5 s after Ctrl-C"),
        }
    }

    /// The stdout file's text so far.
    pub(crate) fn stdout(&self) -> String {
        read_lossy(&self.out)
    }

    /// The stderr file's text so far.
    pub(crate) fn stderr(&self) -> String {
        read_lossy(&self.err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            // Only the child we started is killed, by its handle.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Polls `ready` every 100 ms until it returns true; fails once `deadline` passes, saying
/// what was awaited.
pub(crate) fn wait_until(
    deadline: Option<Instant>,
    what: &str,
    ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    wait_until_every(Duration::from_millis(100), deadline, what, ready)
}

/// [`wait_until`], polling every `period`.
pub(crate) fn wait_until_every(
    period: Duration,
    deadline: Option<Instant>,
    what: &str,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if ready()? {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            bail!(
                "timed out after {} waiting for {what}",
                util::secs(start.elapsed())
            );
        }
        thread::sleep(period);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago; with `udp_too`, free for UDP as well.
pub(crate) fn free_port(udp_too: bool) -> Result<u16> {
    for _ in 0..50 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a port")?;
        let port = tcp.local_addr()?.port();
        if !udp_too || UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no port free for both TCP and UDP")
}

/// Whether something accepts TCP connections at `addr`.
pub(crate) fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// `curl` with a short timeout: the body of a successful (2xx) reply to `url`, with extra
/// curl arguments (`-F`, `--data`...). Fails on a transport error or an HTTP error status.
pub(crate) fn curl(url: &str, args: &[&str]) -> Result<String> {
    let mut c = Command::new("curl");
    c.args(["-sS", "--fail", "--max-time", "5"])
        .args(args)
        .arg(url);
    let out = capture(&mut c, Some(Instant::now() + Duration::from_secs(10)))?;
    Ok(out.ok(&format!("curl {url}"))?.stdout)
}

/// `%XX`-escapes every byte (what an info-hash in a tracker URL needs).
pub(crate) fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Bytes of a hex string; `None` if it is not hex.
pub(crate) fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The integer after the bencoded key `key` (`<len>:<key>i<n>e`) in `body`, if any: enough to
/// read the counters of a one-torrent scrape reply.
pub(crate) fn bencoded_int(body: &[u8], key: &str) -> Option<i64> {
    let needle = format!("{}:{key}i", key.len());
    let at = body
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())?;
    let rest = &body[at + needle.len()..];
    let end = rest.iter().position(|&b| b == b'e')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_counters_are_found() {
        let body =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei2e10:downloadedi0e10:incompletei1eeee";
        assert_eq!(bencoded_int(body, "complete"), Some(2));
        assert_eq!(bencoded_int(body, "incomplete"), Some(1));
        assert_eq!(bencoded_int(body, "downloaded"), Some(0));
        assert_eq!(bencoded_int(body, "interval"), None);
    }

    #[test]
    fn hex_and_percent_encoding() {
        assert_eq!(from_hex("00ff1A"), Some(vec![0, 255, 26]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(percent_encode(&[0, 255, b'a']), "%00%FF%61");
    }

    #[test]
    fn a_dropped_proc_is_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let logs = Logs::default();
        let mut p = Proc::spawn(
            "sleeper",
            Command::new("sleep").arg("30"),
            dir.path(),
            false,
            &logs,
        )
        .expect("sleep starts");
        assert!(p.exited().expect("try_wait").is_none());
        let pid = p.id();
        drop(p);
        // The process is reaped: no /proc entry is left for it.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
