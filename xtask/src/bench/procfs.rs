//! CPU time and peak memory of running processes, read from `/proc` (Linux).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// CPU time a process used, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ticks {
    /// User plus system time of the process itself (all its threads).
    pub(crate) own: u64,
    /// User plus system time of its children that it waited for (`cutime + cstime`).
    pub(crate) waited_children: u64,
}

impl Ticks {
    pub(crate) fn total(self) -> u64 {
        self.own + self.waited_children
    }
}

/// The fields of one `/proc/<pid>/stat` line this benchmark uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) ppid: u32,
    pub(crate) ticks: Ticks,
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from the last `)`.
pub(crate) fn parse_stat(line: &str) -> Result<Stat> {
    let close = line.rfind(')').context("no `)` closing the command name")?;
    // Field 3 (state) is the first after the name; field n is at index n - 3.
    let fields: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        let s = fields
            .get(n - 3)
            .with_context(|| format!("stat line has no field {n}"))?;
        s.parse()
            .with_context(|| format!("field {n} of the stat line is not a number: {s:?}"))
    };
    let ppid = u32::try_from(field(4)?).context("ppid out of range")?;
    Ok(Stat {
        ppid,
        ticks: Ticks {
            own: field(14)? + field(15)?,
            waited_children: field(16)? + field(17)?,
        },
    })
}

/// Parses the `VmHWM` (peak resident set size) line of `/proc/<pid>/status`, in KiB.
pub(crate) fn parse_vm_hwm_kib(status: &str) -> Result<u64> {
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmHWM:") {
            let mut words = rest.split_whitespace();
            let n = words.next().context("VmHWM has no value")?;
            if words.next() != Some("kB") {
                bail!("VmHWM is not in kB: {line:?}");
            }
            return n
                .parse()
                .with_context(|| format!("VmHWM is not a number: {line:?}"));
        }
    }
    bail!("no VmHWM line (a kernel thread or a zombie?)")
}

fn read_stat(proc_dir: &Path, pid: u32) -> Result<Stat> {
    let path = proc_dir.join(pid.to_string()).join("stat");
    let line = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_stat(&line).with_context(|| format!("in {}", path.display()))
}

/// The CPU ticks of `pid`, its waited-for children, and its live descendants.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let proc_dir = Path::new("/proc");
    let own = read_stat(proc_dir, pid)?.ticks.total();
    // Live descendants: every process whose parent chain reaches `pid`.
    let mut all = Vec::new();
    for entry in std::fs::read_dir(proc_dir)? {
        let Ok(entry) = entry else { continue };
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read: skip it.
        if let Ok(stat) = read_stat(proc_dir, p) {
            all.push((p, stat));
        }
    }
    Ok(own + descendants_ticks(pid, &all))
}

/// The summed ticks of the descendants of `root` among `(pid, stat)` pairs.
pub(crate) fn descendants_ticks(root: u32, all: &[(u32, Stat)]) -> u64 {
    let mut sum = 0;
    let mut frontier = vec![root];
    let mut seen = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, stat) in all {
            if stat.ppid == parent && !seen.contains(&pid) {
                seen.push(pid);
                sum += stat.ticks.total();
                frontier.push(pid);
            }
        }
    }
    sum
}

/// Peak resident set size of `pid`, in KiB.
pub(crate) fn vm_hwm_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_vm_hwm_kib(&status).with_context(|| format!("in {path}"))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
pub(crate) fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A real line from a python process, name with a space and a parenthesis.
        let line = "4242 (tricky ) name) S 17 4242 17 0 -1 4194560 1234 0 0 0 250 31 7 2 20 0 \
                    3 0 123456 1000000 5000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 \
                    0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.ppid, 17);
        assert_eq!(
            stat.ticks,
            Ticks {
                own: 281,
                waited_children: 9
            }
        );
        assert_eq!(stat.ticks.total(), 290);
    }

    #[test]
    fn truncated_or_garbled_stat_lines_are_errors() {
        assert!(parse_stat("12 (x) S 1 2 3").is_err());
        assert!(parse_stat("no parenthesis at all").is_err());
        assert!(parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 0 0 0").is_err());
    }

    #[test]
    fn our_own_stat_line_parses() {
        let line = std::fs::read_to_string("/proc/self/stat").unwrap();
        let stat = parse_stat(&line).unwrap();
        assert!(stat.ppid > 0);
        assert!(cpu_ticks(std::process::id()).is_ok());
        assert!(vm_hwm_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\tx\nVmPeak:\t  9999 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm_kib(status).unwrap(), 51234);
        assert!(parse_vm_hwm_kib("Name:\tkthread\n").is_err());
        assert!(parse_vm_hwm_kib("VmHWM:\t 12 MB\n").is_err());
    }

    #[test]
    fn descendants_are_summed_transitively_and_only_once() {
        let s = |ppid, own| Stat {
            ppid,
            ticks: Ticks {
                own,
                waited_children: 0,
            },
        };
        // 10 -> 11 -> 12, 10 -> 13; 20 is unrelated; 11 appears twice (a racy listing).
        let all = [
            (10, s(1, 1000)),
            (11, s(10, 5)),
            (12, s(11, 7)),
            (13, s(10, 11)),
            (20, s(1, 100)),
            (11, s(10, 5)),
        ];
        assert_eq!(descendants_ticks(10, &all), 23);
        assert_eq!(descendants_ticks(11, &all), 7);
        assert_eq!(descendants_ticks(20, &all), 0);
    }
}
