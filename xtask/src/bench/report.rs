//! The pairs of `cargo xtask bench download`, their figures, goals, table and JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::median;

/// A BitTorrent implementation taking part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    /// The `webtorrent` CLI of this workspace (release build).
    Ours,
    /// Debian's libtorrent 2.0 through interop/bench/lt_throughput.py.
    Libtorrent,
    /// qbittorrent-nox (libtorrent 2.0 inside), driven through its WebUI API.
    Qbittorrent,
}

impl Client {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Libtorrent => "libtorrent",
            Self::Qbittorrent => "qBittorrent",
        }
    }
}

/// What a pair is expected to reach against its baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Goal {
    /// Our leecher: at least `ratio` times the baseline's throughput, with less leecher CPU
    /// per GiB than the baseline's leecher.
    Leecher { ratio: f64 },
    /// At least `ratio` times the baseline's throughput.
    Ratio(f64),
}

/// One seeder → leecher pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair {
    pub(crate) id: u8,
    pub(crate) seeder: Client,
    pub(crate) leecher: Client,
    /// The pair this one is compared with (its goal applies to that ratio).
    pub(crate) baseline: Option<u8>,
    pub(crate) goal: Option<Goal>,
}

impl Pair {
    pub(crate) fn name(&self) -> String {
        format!("{} -> {}", self.seeder.label(), self.leecher.label())
    }

    pub(crate) fn uses(&self, c: Client) -> bool {
        self.seeder == c || self.leecher == c
    }
}

/// The pair every ratio is also given against.
pub(crate) const REFERENCE: u8 = 2;

/// Peak resident set size our processes should stay under, MiB.
pub(crate) const RSS_GOAL_MIB: f64 = 64.0;

pub(crate) const PAIRS: [Pair; 6] = [
    Pair {
        id: 1,
        seeder: Client::Libtorrent,
        leecher: Client::Ours,
        baseline: Some(2),
        goal: Some(Goal::Leecher { ratio: 1.0 }),
    },
    Pair {
        id: 2,
        seeder: Client::Libtorrent,
        leecher: Client::Libtorrent,
        baseline: None,
        goal: None,
    },
    Pair {
        id: 3,
        seeder: Client::Qbittorrent,
        leecher: Client::Ours,
        baseline: Some(4),
        goal: Some(Goal::Leecher { ratio: 1.0 }),
    },
    Pair {
        id: 4,
        seeder: Client::Qbittorrent,
        leecher: Client::Libtorrent,
        baseline: None,
        goal: None,
    },
    Pair {
        id: 5,
        seeder: Client::Ours,
        leecher: Client::Libtorrent,
        baseline: Some(2),
        goal: Some(Goal::Ratio(1.2)),
    },
    Pair {
        id: 6,
        seeder: Client::Ours,
        leecher: Client::Ours,
        baseline: Some(2),
        goal: Some(Goal::Ratio(2.0)),
    },
];

/// Picks pairs by number or name (`1`, `lt-ours`, `ours-ours`, ...); the pairs they are
/// compared with are added. No filter: every pair.
pub(crate) fn select(filters: &[String]) -> anyhow::Result<Vec<Pair>> {
    if filters.is_empty() {
        return Ok(PAIRS.to_vec());
    }
    let short = |c: Client| match c {
        Client::Ours => "ours",
        Client::Libtorrent => "lt",
        Client::Qbittorrent => "qbt",
    };
    let mut ids = Vec::new();
    for f in filters {
        let f = f.trim();
        let found = PAIRS.iter().find(|p| {
            f == p.id.to_string() || f == format!("{}-{}", short(p.seeder), short(p.leecher))
        });
        let Some(p) = found else {
            anyhow::bail!(
                "unknown pair {f:?}: use 1-6 or lt-ours, lt-lt, qbt-ours, qbt-lt, ours-lt, ours-ours"
            );
        };
        ids.push(p.id);
        ids.extend(p.baseline);
    }
    Ok(PAIRS
        .iter()
        .filter(|p| ids.contains(&p.id))
        .copied()
        .collect())
}

/// The figures of one transfer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Run {
    /// Leecher's session up → every piece verified, seconds.
    pub(crate) secs: f64,
    /// CPU seconds of the seeder from its ready report to the leecher's completion.
    pub(crate) seeder_cpu: f64,
    /// CPU seconds of the leecher from its session start to its completion.
    pub(crate) leecher_cpu: f64,
    /// Peak resident set size, KiB, read just before the processes were stopped.
    pub(crate) seeder_rss_kib: u64,
    pub(crate) leecher_rss_kib: u64,
}

/// Everything measured for one pair.
#[derive(Clone, Debug)]
pub(crate) struct PairResult {
    pub(crate) pair: Pair,
    pub(crate) runs: Vec<Run>,
    /// Why runs failed (one entry per failed run).
    pub(crate) failures: Vec<String>,
    /// Why the pair was not run at all.
    pub(crate) skipped: Option<String>,
}

/// Medians over the runs of a pair (peak RSS: the largest of the runs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    pub(crate) secs: f64,
    pub(crate) mib_per_s: f64,
    pub(crate) seeder_cpu_per_gib: f64,
    pub(crate) leecher_cpu_per_gib: f64,
    pub(crate) seeder_rss_mib: f64,
    pub(crate) leecher_rss_mib: f64,
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

impl PairResult {
    pub(crate) fn summary(&self, size_bytes: u64) -> Option<Summary> {
        if self.runs.is_empty() {
            return None;
        }
        let size = size_bytes as f64;
        let of = |f: fn(&Run) -> f64| median(self.runs.iter().map(f).collect());
        let max_mib =
            |f: fn(&Run) -> u64| self.runs.iter().map(f).max().unwrap_or(0) as f64 / 1024.0;
        let secs = of(|r| r.secs);
        Some(Summary {
            secs,
            // The median of the per-run rates is the rate of the median time.
            mib_per_s: size / MIB / secs,
            seeder_cpu_per_gib: of(|r| r.seeder_cpu) * GIB / size,
            leecher_cpu_per_gib: of(|r| r.leecher_cpu) * GIB / size,
            seeder_rss_mib: max_mib(|r| r.seeder_rss_kib),
            leecher_rss_mib: max_mib(|r| r.leecher_rss_kib),
        })
    }
}

/// A whole benchmark: what was transferred and the results of each pair.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) size_bytes: u64,
    pub(crate) piece_length: u64,
    pub(crate) files: usize,
    pub(crate) runs: usize,
    pub(crate) versions: Vec<(String, String)>,
    pub(crate) results: Vec<PairResult>,
}

/// A goal's verdict, for the text and the JSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Verdict {
    pub(crate) what: String,
    /// `None` when a figure it needs is missing.
    pub(crate) met: Option<bool>,
}

impl Report {
    fn summary_of(&self, id: u8) -> Option<Summary> {
        self.results
            .iter()
            .find(|r| r.pair.id == id)
            .and_then(|r| r.summary(self.size_bytes))
    }

    /// Throughput of pair `id` over that of pair `base`.
    pub(crate) fn ratio(&self, id: u8, base: u8) -> Option<f64> {
        Some(self.summary_of(id)?.mib_per_s / self.summary_of(base)?.mib_per_s)
    }

    pub(crate) fn verdicts(&self) -> Vec<Verdict> {
        let mut out = Vec::new();
        for r in &self.results {
            let (Some(goal), Some(base)) = (r.pair.goal, r.pair.baseline) else {
                continue;
            };
            let ratio = self.ratio(r.pair.id, base);
            let shown = |x: Option<f64>, unit: &str| {
                x.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}{unit}"))
            };
            match goal {
                Goal::Leecher { ratio: want } => {
                    let ours = self.summary_of(r.pair.id).map(|s| s.leecher_cpu_per_gib);
                    let theirs = self.summary_of(base).map(|s| s.leecher_cpu_per_gib);
                    let met = match (ratio, ours, theirs) {
                        (Some(x), Some(a), Some(b)) => Some(x >= want && a < b),
                        _ => None,
                    };
                    out.push(Verdict {
                        what: format!(
                            "pair {} vs {base}: our leecher >= {want:.1}x libtorrent's ({}) with \
                             less CPU/GiB ({} vs {})",
                            r.pair.id,
                            shown(ratio, "x"),
                            shown(ours, " s"),
                            shown(theirs, " s"),
                        ),
                        met,
                    });
                }
                Goal::Ratio(want) => out.push(Verdict {
                    what: format!(
                        "pair {} vs {base}: {} >= {want:.1}x ({})",
                        r.pair.id,
                        r.pair.name(),
                        shown(ratio, "x")
                    ),
                    met: ratio.map(|x| x >= want),
                }),
            }
        }
        let mut peak: Option<f64> = None;
        for r in &self.results {
            let Some(s) = r.summary(self.size_bytes) else {
                continue;
            };
            for (client, rss) in [
                (r.pair.seeder, s.seeder_rss_mib),
                (r.pair.leecher, s.leecher_rss_mib),
            ] {
                if client == Client::Ours {
                    peak = Some(peak.map_or(rss, |p| p.max(rss)));
                }
            }
        }
        out.push(Verdict {
            what: format!(
                "our peak RSS <= {RSS_GOAL_MIB:.0} MiB ({})",
                peak.map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1} MiB"))
            ),
            met: peak.map(|p| p <= RSS_GOAL_MIB),
        });
        out
    }

    /// The text table and the goals.
    pub(crate) fn table(&self) -> String {
        let mut s = String::new();
        let versions: Vec<String> = self
            .versions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "download {} MiB ({} files, v1, piece length {} KiB) over loopback TCP, median of \
             {} run(s), page cache warm; {}",
            self.size_bytes >> 20,
            self.files,
            self.piece_length >> 10,
            self.runs,
            versions.join(", ")
        );
        let _ = writeln!(
            s,
            "{:>2}  {:<28} {:>8} {:>8} {:>9} {:>11}  {:>9} {:>9}  {:>9} {:>9}",
            "#",
            "seeder -> leecher",
            "time s",
            "MiB/s",
            "vs lt-lt",
            "vs base",
            "CPU s/GiB",
            "",
            "peak RSS",
            "MiB"
        );
        let _ = writeln!(
            s,
            "{:>2}  {:<28} {:>8} {:>8} {:>9} {:>11}  {:>9} {:>9}  {:>9} {:>9}",
            "", "", "", "", "", "", "seeder", "leecher", "seeder", "leecher"
        );
        for r in &self.results {
            let name = r.pair.name();
            let Some(sum) = r.summary(self.size_bytes) else {
                let why = r
                    .skipped
                    .clone()
                    .or_else(|| r.failures.last().cloned())
                    .unwrap_or_else(|| "no run".to_owned());
                let _ = writeln!(s, "{:>2}  {name:<28} not measured: {why}", r.pair.id);
                continue;
            };
            let vs_ref = if r.pair.id == REFERENCE {
                "1.00x".to_owned()
            } else {
                ratio_text(self.ratio(r.pair.id, REFERENCE))
            };
            let vs_base = r.pair.baseline.map_or_else(String::new, |b| {
                format!("{} ({b})", ratio_text(self.ratio(r.pair.id, b)))
            });
            let rss = |c: Client, mib: f64| {
                if c == Client::Ours {
                    format!("{mib:.1}")
                } else {
                    format!("({mib:.0})")
                }
            };
            let _ = writeln!(
                s,
                "{:>2}  {name:<28} {:>8.2} {:>8.1} {:>9} {:>11}  {:>9.2} {:>9.2}  {:>9} {:>9}",
                r.pair.id,
                sum.secs,
                sum.mib_per_s,
                vs_ref,
                vs_base,
                sum.seeder_cpu_per_gib,
                sum.leecher_cpu_per_gib,
                rss(r.pair.seeder, sum.seeder_rss_mib),
                rss(r.pair.leecher, sum.leecher_rss_mib),
            );
            if !r.failures.is_empty() {
                let _ = writeln!(
                    s,
                    "    {} failed run(s): {}",
                    r.failures.len(),
                    r.failures.join(" / ")
                );
            }
        }
        let _ = writeln!(
            s,
            "time: leecher session up -> every piece verified; RSS in parentheses: not ours"
        );
        for v in self.verdicts() {
            let mark = match v.met {
                Some(true) => "met",
                Some(false) => "NOT MET",
                None => "n/a",
            };
            let _ = writeln!(s, "goal {:<8} {}", mark, v.what);
        }
        s
    }

    pub(crate) fn json(&self) -> Value {
        let pairs: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                let summary = r.summary(self.size_bytes).map(|s| {
                    json!({
                        "seconds": s.secs,
                        "mib_per_s": s.mib_per_s,
                        "seeder_cpu_s_per_gib": s.seeder_cpu_per_gib,
                        "leecher_cpu_s_per_gib": s.leecher_cpu_per_gib,
                        "seeder_peak_rss_mib": s.seeder_rss_mib,
                        "leecher_peak_rss_mib": s.leecher_rss_mib,
                    })
                });
                json!({
                    "id": r.pair.id,
                    "seeder": r.pair.seeder.label(),
                    "leecher": r.pair.leecher.label(),
                    "baseline": r.pair.baseline,
                    "ratio_vs_baseline": r.pair.baseline.and_then(|b| self.ratio(r.pair.id, b)),
                    "ratio_vs_libtorrent_pair": self.ratio(r.pair.id, REFERENCE),
                    "median": summary,
                    "runs": r.runs.iter().map(|x| json!({
                        "seconds": x.secs,
                        "seeder_cpu_s": x.seeder_cpu,
                        "leecher_cpu_s": x.leecher_cpu,
                        "seeder_peak_rss_kib": x.seeder_rss_kib,
                        "leecher_peak_rss_kib": x.leecher_rss_kib,
                    })).collect::<Vec<_>>(),
                    "failures": r.failures,
                    "skipped": r.skipped,
                })
            })
            .collect();
        let goals: Vec<Value> = self
            .verdicts()
            .into_iter()
            .map(|v| json!({ "goal": v.what, "met": v.met }))
            .collect();
        json!({
            "size_bytes": self.size_bytes,
            "piece_length": self.piece_length,
            "files": self.files,
            "runs": self.runs,
            "timing": "leecher session up -> every piece verified",
            "versions": self.versions.iter().map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
            "pairs": pairs,
            "goals": goals,
        })
    }
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secs: f64, cpu: (f64, f64), rss_kib: (u64, u64)) -> Run {
        Run {
            secs,
            seeder_cpu: cpu.0,
            leecher_cpu: cpu.1,
            seeder_rss_kib: rss_kib.0,
            leecher_rss_kib: rss_kib.1,
        }
    }

    fn result(id: u8, runs: Vec<Run>) -> PairResult {
        PairResult {
            pair: PAIRS[usize::from(id) - 1],
            runs,
            failures: Vec::new(),
            skipped: None,
        }
    }

    const SIZE: u64 = 512 << 20;

    fn report() -> Report {
        Report {
            size_bytes: SIZE,
            piece_length: 1 << 20,
            files: 7,
            runs: 3,
            versions: vec![("libtorrent".into(), "2.0.8.0".into())],
            results: vec![
                // 512 MiB in 2 s (median) = 256 MiB/s.
                result(
                    1,
                    vec![
                        run(2.0, (0.5, 1.0), (9000, 30 * 1024)),
                        run(2.5, (0.6, 1.1), (9000, 40 * 1024)),
                        run(1.5, (0.4, 0.9), (9000, 35 * 1024)),
                    ],
                ),
                // 4 s = 128 MiB/s.
                result(2, vec![run(4.0, (1.0, 2.0), (90_000, 100_000))]),
                {
                    let mut r = result(3, Vec::new());
                    r.skipped = Some("qbittorrent-nox is not installed".into());
                    r
                },
                {
                    let mut r = result(4, Vec::new());
                    r.skipped = Some("qbittorrent-nox is not installed".into());
                    r
                },
                // 3 s, RSS over the goal.
                result(5, vec![run(3.0, (0.5, 2.0), (70 * 1024, 100_000))]),
                {
                    let mut r = result(6, vec![run(1.0, (0.3, 0.3), (20_000, 20_000))]);
                    r.failures.push("timed out".into());
                    r
                },
            ],
        }
    }

    #[test]
    fn summaries_are_medians_per_gib_and_peak_rss_is_the_largest() {
        let s = report().results[0].summary(SIZE).unwrap();
        assert_eq!(s.secs, 2.0);
        assert_eq!(s.mib_per_s, 256.0);
        // Median CPU 0.5 s and 1.0 s for half a GiB.
        assert_eq!(s.seeder_cpu_per_gib, 1.0);
        assert_eq!(s.leecher_cpu_per_gib, 2.0);
        assert_eq!(s.leecher_rss_mib, 40.0);
        assert!(report().results[2].summary(SIZE).is_none());
    }

    #[test]
    fn ratios_and_goals() {
        let r = report();
        assert_eq!(r.ratio(1, 2), Some(2.0));
        assert_eq!(r.ratio(6, 2), Some(4.0));
        assert_eq!(r.ratio(3, 4), None);
        let v = r.verdicts();
        let met: Vec<Option<bool>> = v.iter().map(|v| v.met).collect();
        // 1: 2x with 2.0 vs 4.0 s/GiB; 3: skipped; 5: 4/3 >= 1.2; 6: 4x; RSS 70 MiB > 64.
        assert_eq!(
            met,
            vec![Some(true), None, Some(true), Some(true), Some(false)]
        );
        assert!(v[4].what.contains("70.0 MiB"), "{}", v[4].what);
    }

    #[test]
    fn leecher_goal_needs_less_cpu_too() {
        let mut r = report();
        r.results[0].runs = vec![run(2.0, (0.5, 3.0), (1, 1))];
        assert_eq!(r.verdicts()[0].met, Some(false));
    }

    #[test]
    fn table_lists_every_pair_with_figures_or_the_reason() {
        let t = report().table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("512 MiB (7 files, v1, piece length 1024 KiB)"));
        let row1 = lines.iter().find(|l| l.starts_with(" 1  ")).unwrap();
        assert!(row1.contains("libtorrent -> ours"), "{row1}");
        assert!(row1.contains("256.0"), "{row1}");
        assert!(row1.contains("2.00x (2)"), "{row1}");
        assert!(row1.contains("40.0"), "{row1}");
        let row3 = lines.iter().find(|l| l.starts_with(" 3  ")).unwrap();
        assert!(row3.contains("not measured: qbittorrent-nox is not installed"));
        assert!(t.contains("1 failed run(s): timed out"));
        assert!(
            t.contains("goal NOT MET  our peak RSS <= 64 MiB (70.0 MiB)"),
            "{t}"
        );
        assert!(
            t.contains("goal met      pair 6 vs 2: ours -> ours >= 2.0x (4.00x)"),
            "{t}"
        );
    }

    #[test]
    fn json_holds_the_medians_and_every_run() {
        let j = report().json();
        assert_eq!(j["size_bytes"], SIZE);
        assert_eq!(j["pairs"][0]["median"]["mib_per_s"], 256.0);
        assert_eq!(j["pairs"][0]["ratio_vs_baseline"], 2.0);
        assert_eq!(j["pairs"][0]["runs"].as_array().unwrap().len(), 3);
        assert!(j["pairs"][2]["median"].is_null());
        assert_eq!(j["goals"][4]["met"], false);
        assert_eq!(j["versions"]["libtorrent"], "2.0.8.0");
    }

    #[test]
    fn pairs_are_selected_by_number_or_name_with_their_baselines() {
        let ids = |f: &[&str]| {
            select(&f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap()
                .iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&[]), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(ids(&["ours-ours"]), vec![2, 6]);
        assert_eq!(ids(&["3"]), vec![3, 4]);
        assert_eq!(ids(&["lt-lt"]), vec![2]);
        assert!(select(&["7".to_owned()]).is_err());
    }
}
