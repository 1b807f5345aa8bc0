//! `cargo xtask interop`: named scenarios against real implementations.
//!
//! Each scenario has a name (`create/multi/hybrid`, `fixture/multi.lt20.v2.torrent`, ...) and a
//! timeout; `cargo xtask interop FILTER...` runs the scenarios whose name contains one of the
//! filters. The Python and Node helpers live in interop/python and interop/node.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::setup::{SYSTEM_PYTHON, venv_python};
use crate::util::{self, Captured, capture, cmd, root};

/// Options of `cargo xtask interop`.
#[derive(Default)]
pub(crate) struct Options {
    /// Substrings of scenario names; empty = all.
    pub(crate) filters: Vec<String>,
    /// Only print the scenario names.
    pub(crate) list: bool,
    /// Cargo profile the `webtorrent` binary is built with (default: dev, like the tests).
    pub(crate) profile: Option<String>,
    /// Keep the work folder.
    pub(crate) keep: bool,
}

pub(crate) type Check = Box<dyn Fn(&Ctx) -> Result<Vec<String>>>;

/// One named check; returns notes to print.
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) timeout: Duration,
    pub(crate) run: Check,
}

/// Shared state of a run.
pub(crate) struct Ctx {
    webtorrent: PathBuf,
    lt20: PathBuf,
    lt21: PathBuf,
    pub(crate) work: PathBuf,
    trees: PathBuf,
    pub(crate) deadline: std::cell::Cell<Option<Instant>>,
}

impl Ctx {
    pub(crate) fn capture(&self, c: &mut std::process::Command) -> Result<Captured> {
        capture(c, self.deadline.get())
    }

    fn python(&self, python: &Path, script: &str) -> std::process::Command {
        let mut c = cmd(python, &[root().join("interop/python").join(script)]);
        c.env("PYTHONDONTWRITEBYTECODE", "1");
        c
    }

    pub(crate) fn webtorrent(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.webtorrent);
        c.env_remove("RUST_LOG");
        c
    }

    /// `webtorrent info --json`.
    pub(crate) fn info(&self, torrent: &Path) -> Result<Value> {
        let out = self
            .capture(self.webtorrent().arg("info").arg("--json").arg(torrent))?
            .ok(&format!("webtorrent info {}", torrent.display()))?;
        serde_json::from_str(&out.stdout).context("webtorrent info --json printed no JSON")
    }

    /// What libtorrent (at `python`) reports about a torrent file.
    fn lt_info(&self, python: &Path, torrent: &Path) -> Result<Value> {
        let out = self
            .capture(self.python(python, "lt_info.py").arg(torrent))?
            .ok(&format!(
                "libtorrent ({}) loading {}",
                python.display(),
                torrent.display()
            ))?;
        serde_json::from_str(&out.stdout).context("lt_info.py printed no JSON")
    }
}

/// How a tree is shared in the `create` scenarios.
struct TreeSpec {
    name: &'static str,
    piece_length: u64,
}

const TREES: &[TreeSpec] = &[
    TreeSpec {
        name: "single.bin",
        piece_length: 16 * 1024,
    },
    TreeSpec {
        name: "multi",
        piece_length: 16 * 1024,
    },
    TreeSpec {
        name: "nested",
        piece_length: 16 * 1024,
    },
    TreeSpec {
        name: "ünïcødé",
        piece_length: 16 * 1024,
    },
    TreeSpec {
        name: "attrs",
        piece_length: 16 * 1024,
    },
    TreeSpec {
        name: "big",
        piece_length: 64 * 1024,
    },
];

const FLAVOURS: &[&str] = &["v1", "v2", "hybrid"];

/// libtorrent outputs known to be unloadable by libtorrent itself: (python label, tree,
/// flavour). libtorrent 2.1.1 orders a hybrid torrent's v1 file list by full path but the v2
/// file tree per component, and then refuses its own torrent.
const KNOWN_BAD_LIBTORRENT: &[(&str, &str, &str)] = &[("2.1", "nested", "hybrid")];

fn hex_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// (v1, v2) of `webtorrent info --json`.
fn our_hashes(info: &Value) -> (Option<String>, Option<String>) {
    (
        hex_field(info, "info_hash_v1").map(String::from),
        hex_field(info, "info_hash_v2").map(String::from),
    )
}

/// (v1, v2) of a libtorrent/parse-torrent description.
fn their_hashes(d: &Value) -> (Option<String>, Option<String>) {
    (
        hex_field(d, "v1").map(String::from),
        hex_field(d, "v2").map(String::from),
    )
}

/// `[[path, length], ...]` of our JSON (real files only).
fn our_files(info: &Value) -> Vec<(String, u64)> {
    info["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    (
                        f["path"].as_str().unwrap_or_default().to_owned(),
                        f["length"].as_u64().unwrap_or(u64::MAX),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `[[path, length, ...], ...]` as written by the helpers and expected.json.
fn listed_files(v: &Value) -> Vec<(String, u64)> {
    v.as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    (
                        f[0].as_str().unwrap_or_default().to_owned(),
                        f[1].as_u64().unwrap_or(u64::MAX),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn create_scenario(tree: &'static TreeSpec, flavour: &'static str) -> Scenario {
    Scenario {
        name: format!("create/{}/{flavour}", tree.name),
        timeout: Duration::from_secs(if tree.name == "big" { 180 } else { 60 }),
        run: Box::new(move |ctx| create_check(ctx, tree, flavour)),
    }
}

fn create_check(ctx: &Ctx, tree: &TreeSpec, flavour: &str) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let src = ctx.trees.join(tree.name);
    let out_dir = ctx.work.join("create").join(tree.name).join(flavour);
    std::fs::create_dir_all(&out_dir)?;
    let ours = out_dir.join("ours.torrent");
    let piece = tree.piece_length.to_string();

    let created = ctx
        .capture(
            ctx.webtorrent()
                .arg("create")
                .arg(&src)
                .arg("-o")
                .arg(&ours)
                .args([
                    "--meta-version",
                    flavour,
                    "--piece-length",
                    &piece,
                    "--no-date",
                ]),
        )?
        .ok("webtorrent create")?;
    let magnet = created.stdout.trim().to_owned();
    ensure!(
        magnet.starts_with("magnet:?"),
        "webtorrent create printed {magnet:?}, not a magnet link"
    );
    let info = ctx.info(&ours)?;
    let ours_hashes = our_hashes(&info);
    let expect_v1 = flavour != "v2";
    let expect_v2 = flavour != "v1";
    ensure!(
        ours_hashes.0.is_some() == expect_v1 && ours_hashes.1.is_some() == expect_v2,
        "a {flavour} torrent has info-hashes {ours_hashes:?}"
    );

    let mut compared = 0;
    for (label, python) in [("2.0", &ctx.lt20), ("2.1", &ctx.lt21)] {
        let theirs = out_dir.join(format!("lt{}.torrent", label.replace('.', "")));
        let mut c = ctx.python(python, "lt_create.py");
        c.arg(&src)
            .arg("-o")
            .arg(&theirs)
            .args(["--flavour", flavour, "--piece-length", &piece]);
        let out = ctx.capture(&mut c)?;
        let known_bad = KNOWN_BAD_LIBTORRENT.contains(&(label, tree.name, flavour));
        if out.status.code() == Some(3) && known_bad {
            notes.push(format!(
                "libtorrent {label} wrote a torrent it cannot load (known libtorrent bug); not compared"
            ));
            continue;
        }
        let out = out.ok(&format!("libtorrent {label} create_torrent"))?;
        if known_bad {
            notes.push(format!("libtorrent {label}: the known bug is gone"));
        }
        let lt: Value = serde_json::from_str(&out.stdout).context("lt_create.py output")?;
        let lt_hashes = their_hashes(&lt);
        ensure!(
            ours_hashes == lt_hashes,
            "info-hashes differ: ours {ours_hashes:?}, libtorrent {label} {lt_hashes:?}"
        );
        // libtorrent loads ours and sees the same files and attributes as in its own.
        let loaded = ctx.lt_info(python, &ours)?;
        ensure!(
            their_hashes(&loaded) == lt_hashes,
            "libtorrent {label} computes {:?} for our torrent",
            their_hashes(&loaded)
        );
        ensure!(
            loaded["files"] == lt["files"],
            "libtorrent {label} lists our files as {} but its own as {}",
            loaded["files"],
            lt["files"]
        );
        // And we read libtorrent's torrent the same way.
        let read = ctx.info(&theirs)?;
        ensure!(
            our_hashes(&read) == lt_hashes,
            "webtorrent info reads libtorrent {label}'s torrent as {:?}",
            our_hashes(&read)
        );
        compared += 1;
    }
    ensure!(compared > 0, "no libtorrent produced a comparable torrent");

    // The magnet link we printed means the same torrent to libtorrent and to WebTorrent.
    let lt_magnet = ctx
        .capture(ctx.python(&ctx.lt20, "lt_magnet.py").arg(&magnet))?
        .ok("libtorrent parse_magnet_uri")?;
    let lt_magnet: Value = serde_json::from_str(&lt_magnet.stdout)?;
    ensure!(
        their_hashes(&lt_magnet) == ours_hashes,
        "libtorrent reads our magnet {magnet} as {:?}",
        their_hashes(&lt_magnet)
    );
    if flavour != "v2" {
        // parse-torrent cannot read v2-only torrents.
        let js = ctx
            .capture(
                cmd("node", &[root().join("interop/node/parse.mjs")])
                    .arg(&ours)
                    .arg(&magnet)
                    .current_dir(root().join("interop")),
            )?
            .ok("parse-torrent")?;
        for line in js.stdout.lines() {
            let d: Value = serde_json::from_str(line)?;
            ensure!(
                hex_field(&d, "v1") == ours_hashes.0.as_deref(),
                "parse-torrent reads our torrent/magnet as v1 {:?}",
                hex_field(&d, "v1")
            );
            // parse-torrent reports v2 for magnets (btmh) but not for torrent files.
            if let Some(v2) = hex_field(&d, "v2") {
                ensure!(
                    Some(v2) == ours_hashes.1.as_deref(),
                    "parse-torrent reads our magnet as v2 {v2}"
                );
            }
        }
    }
    Ok(notes)
}

/// A folder with a file and a relative symlink to it, shared following the link or recording
/// it (BEP 47 `l` attribute with a `symlink path` relative to the torrent root).
fn symlink_scenario(follow: bool) -> Scenario {
    let mode = if follow { "follow" } else { "record" };
    Scenario {
        name: format!("create/symlinks/{mode}"),
        timeout: Duration::from_secs(60),
        run: Box::new(move |ctx| {
            let base = ctx.work.join("symlinks").join(mode);
            let dir = base.join("linked");
            std::fs::create_dir_all(dir.join("sub"))?;
            std::fs::copy(ctx.trees.join("multi/d.bin"), dir.join("real.bin"))?;
            std::os::unix::fs::symlink("../real.bin", dir.join("sub/link.bin"))
                .context("cannot create a symlink")?;
            let ours = base.join("ours.torrent");
            let mut c = ctx.webtorrent();
            c.arg("create").arg(&dir).arg("-o").arg(&ours);
            c.args(["--meta-version", "hybrid", "--piece-length", "16384"]);
            if follow {
                c.arg("--follow-symlinks");
            }
            ctx.capture(&mut c)?.ok("webtorrent create")?;
            let ours_hashes = our_hashes(&ctx.info(&ours)?);
            // The two libtorrents disagree here, so matching either one passes and the other
            // is noted. Recording: 2.0 stores the link's own text ("../real.bin", relative to
            // the link's folder), 2.1 (and BEP 47) a path relative to the torrent root.
            // Following: 2.0 takes the attributes from the link itself (always executable),
            // 2.1 from the file it points to.
            let mut matched = Vec::new();
            let mut differ = Vec::new();
            for (label, python) in [("2.0", &ctx.lt20), ("2.1", &ctx.lt21)] {
                let lt = base.join(format!("lt{}.torrent", label.replace('.', "")));
                let mut c = ctx.python(python, "lt_create.py");
                c.arg(&dir).arg("-o").arg(&lt);
                c.args(["--flavour", "hybrid", "--piece-length", "16384"]);
                if !follow {
                    c.arg("--symlinks");
                }
                let out = ctx.capture(&mut c)?.ok("libtorrent create_torrent")?;
                let theirs = their_hashes(&serde_json::from_str(&out.stdout)?);
                if theirs == ours_hashes {
                    matched.push(label);
                } else {
                    differ.push(format!("libtorrent {label} {theirs:?}"));
                }
            }
            ensure!(
                !matched.is_empty(),
                "info-hashes differ: ours {ours_hashes:?}, {}",
                differ.join(", ")
            );
            let notes = if differ.is_empty() {
                vec![]
            } else {
                vec![format!(
                    "matches libtorrent {}; differs from {}",
                    matched.join(" and "),
                    differ.join(", ")
                )]
            };
            Ok(notes)
        }),
    }
}

fn fixture_scenarios() -> Result<Vec<Scenario>> {
    let dir = root().join("crates/metainfo/testdata/real");
    let expected: Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json")).context("cannot read expected.json")?,
    )?;
    let mut out = Vec::new();
    for e in expected.as_array().cloned().unwrap_or_default() {
        let file = e["file"].as_str().unwrap_or_default().to_owned();
        let path = dir.join(&file);
        out.push(Scenario {
            name: format!("fixture/{file}"),
            timeout: Duration::from_secs(20),
            run: Box::new(move |ctx| {
                let info = ctx.info(&path)?;
                ensure!(
                    our_hashes(&info) == their_hashes(&e),
                    "info-hashes {:?}, {} says {:?}",
                    our_hashes(&info),
                    e["creator"],
                    their_hashes(&e)
                );
                ensure!(info["name"] == e["name"], "name {}", info["name"]);
                ensure!(
                    info["piece_length"] == e["piece_length"],
                    "piece length {}",
                    info["piece_length"]
                );
                let (ours, theirs) = (our_files(&info), listed_files(&e["files"]));
                ensure!(ours == theirs, "files {ours:?}, expected {theirs:?}");
                Ok(vec![])
            }),
        });
    }
    let invalid: Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected-invalid.json"))
            .context("cannot read expected-invalid.json")?,
    )?;
    for e in invalid.as_array().cloned().unwrap_or_default() {
        let file = e["file"].as_str().unwrap_or_default().to_owned();
        let path = dir.join(&file);
        out.push(Scenario {
            name: format!("fixture-invalid/{file}"),
            timeout: Duration::from_secs(20),
            run: Box::new(move |ctx| {
                let out = ctx.capture(ctx.webtorrent().arg("info").arg("--json").arg(&path))?;
                ensure!(
                    out.status.code() == Some(1),
                    "webtorrent info accepted a torrent libtorrent refuses ({})",
                    e["error"]
                );
                ensure!(
                    out.stderr.trim_end().lines().count() == 1,
                    "expected one error line, got {:?}",
                    out.stderr
                );
                Ok(vec![format!("refused: {}", out.stderr.trim())])
            }),
        });
    }
    Ok(out)
}

fn scenarios() -> Result<Vec<Scenario>> {
    let mut all = Vec::new();
    for tree in TREES {
        for flavour in FLAVOURS {
            all.push(create_scenario(tree, flavour));
        }
    }
    all.push(symlink_scenario(true));
    all.push(symlink_scenario(false));
    all.extend(fixture_scenarios()?);
    all.extend(crate::swarm::scenarios());
    all.extend(crate::swarm4::scenarios());
    all.extend(crate::webseed::scenarios());
    all.extend(crate::dht::scenarios());
    all.extend(crate::webrtc::scenarios());
    all.extend(crate::ui::scenarios());
    all.extend(crate::tracker::scenarios());
    Ok(all)
}

pub(crate) fn run_interop(opts: &Options) -> Result<()> {
    let selected: Vec<Scenario> = scenarios()?
        .into_iter()
        .filter(|s| opts.filters.is_empty() || opts.filters.iter().any(|f| s.name.contains(f)))
        .collect();
    if opts.list {
        for s in &selected {
            println!("{}", s.name);
        }
        return Ok(());
    }
    if selected.is_empty() {
        bail!(
            "no scenario matches {:?} (see `cargo xtask interop --list`)",
            opts.filters
        );
    }
    let lt21 = venv_python();
    ensure!(
        lt21.is_file(),
        "interop/.venv is missing: run `cargo xtask ci --only setup`"
    );
    ensure!(
        root().join("interop/node_modules").is_dir(),
        "interop/node_modules is missing: run `cargo xtask ci --only setup`"
    );
    let webtorrent = util::build_webtorrent(opts.profile.as_deref().unwrap_or("dev"))?;
    let tmp = tempfile::Builder::new()
        .prefix("webtorrent-interop-")
        .tempdir()
        .context("cannot create a work folder")?;
    let work = tmp.path().to_path_buf();
    let trees = work.join("trees");
    capture(
        cmd(SYSTEM_PYTHON, &[root().join("interop/python/trees.py")]).arg(&trees),
        None,
    )?
    .ok("generating the trees")?;
    let ctx = Ctx {
        webtorrent,
        lt20: PathBuf::from(SYSTEM_PYTHON),
        lt21,
        work: work.clone(),
        trees,
        deadline: std::cell::Cell::new(None),
    };

    let started = Instant::now();
    let mut failed = Vec::new();
    for s in &selected {
        let t = Instant::now();
        ctx.deadline.set(Some(t + s.timeout));
        let r = (s.run)(&ctx);
        let took = util::secs(t.elapsed());
        match r {
            Ok(notes) => {
                eprintln!("ok      {:<44} {took:>7}", s.name);
                for n in notes {
                    eprintln!("        note: {n}");
                }
            }
            Err(e) => {
                eprintln!("FAILED  {:<44} {took:>7}  {e:#}", s.name);
                failed.push(s.name.clone());
            }
        }
    }
    if opts.keep {
        let kept = tmp.keep();
        eprintln!("work folder kept: {}", kept.display());
    }
    eprintln!(
        "interop: {} passed, {} failed ({})",
        selected.len() - failed.len(),
        failed.len(),
        util::secs(started.elapsed())
    );
    if !failed.is_empty() {
        bail!("interop scenarios failed: {}", failed.join(", "));
    }
    Ok(())
}
