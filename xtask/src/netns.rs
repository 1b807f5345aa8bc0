//! A private network namespace for one scenario: only a loopback interface, so WebRTC peers
//! gather loopback ICE candidates only and nothing they try can leave the machine.
//!
//! [`Isolated::enter`] moves the calling thread (not the process) into a new network namespace
//! (`unshare(CLONE_NEWNET)`) and brings `lo` up; every process the thread starts afterwards,
//! and every socket it opens (ports probed with `free_port`, `curl` to a WebUI), lives there.
//! Dropping the guard moves the thread back (`setns`); the namespace disappears with the last
//! process in it. This needs root (CAP_SYS_ADMIN), like `unshare --net`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{capture, cmd, on_path};

// The two system calls, from the C library every Rust program on Linux links.
unsafe extern "C" {
    fn unshare(flags: i32) -> i32;
    fn setns(fd: i32, nstype: i32) -> i32;
}

/// `CLONE_NEWNET` of <sched.h>.
const CLONE_NEWNET: i32 = 0x4000_0000;

/// The calling thread is in a fresh network namespace while this lives.
pub(crate) struct Isolated {
    /// The namespace the thread came from.
    home: File,
}

impl Isolated {
    /// Moves this thread into a new network namespace with `lo` up.
    pub(crate) fn enter() -> Result<Self> {
        let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .or_else(|| on_path("ip").then_some("ip"))
            .context("`ip` (iproute2) is missing: the webrtc scenarios need it to bring lo up")?;
        let home = File::open("/proc/thread-self/ns/net")
            .context("cannot open /proc/thread-self/ns/net")?;
        // SAFETY: unshare takes no pointer; CLONE_NEWNET changes only this thread's network
        // namespace, which the guard restores when dropped.
        if unsafe { unshare(CLONE_NEWNET) } != 0 {
            let err = std::io::Error::last_os_error();
            bail!(
                "cannot create a network namespace (unshare(CLONE_NEWNET): {err}); the webrtc \
                 scenarios run in one with only a loopback interface and need root or \
                 CAP_SYS_ADMIN (check with `unshare --net true`)"
            );
        }
        let this = Self { home };
        let up = capture(
            &mut cmd(ip, &["link", "set", "lo", "up"]),
            Some(Instant::now() + Duration::from_secs(10)),
        )?;
        up.ok("ip link set lo up (in the new network namespace)")?;
        Ok(this)
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // SAFETY: the descriptor is open (owned by `home`); setns only changes this thread's
        // network namespace back to the one it came from.
        let back = unsafe { setns(self.home.as_raw_fd(), CLONE_NEWNET) };
        if back != 0 {
            // Every later scenario would run isolated: stop rather than mislead.
            eprintln!(
                "error: cannot return to the original network namespace: {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's network namespace (`net:[inode]`).
    fn current() -> Result<String> {
        std::fs::read_link("/proc/thread-self/ns/net")
            .map(|p| p.to_string_lossy().into_owned())
            .context("cannot read /proc/thread-self/ns/net")
    }

    /// Run only as root (CI runs as root); elsewhere unshare fails and the test says so.
    #[test]
    fn isolation_has_only_loopback_and_is_undone() {
        let before = current().expect("namespace");
        let guard = match Isolated::enter() {
            Ok(g) => g,
            Err(e) => {
                eprintln!("skipped: {e:#}");
                return;
            }
        };
        assert_ne!(current().expect("namespace"), before);
        // A process started now lists the interfaces of the new namespace.
        let out = capture(&mut cmd("cat", &["/proc/net/dev"]), None).expect("cat runs");
        let ifaces: Vec<&str> = out
            .stdout
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(ifaces, ["lo"]);
        drop(guard);
        assert_eq!(current().expect("namespace"), before);
    }
}
