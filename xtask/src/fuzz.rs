//! `cargo xtask fuzz`: runs the cargo-fuzz targets of fuzz/ with the nightly toolchain.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{root, run_status};

/// Seconds per target in `--smoke` mode.
pub(crate) const SMOKE_SECONDS: u64 = 30;
/// Seconds per target otherwise.
pub(crate) const DEFAULT_SECONDS: u64 = 600;

/// Options of `cargo xtask fuzz`.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) smoke: bool,
    pub(crate) seconds: Option<u64>,
    pub(crate) target: Option<String>,
}

/// Seed corpora from the repository, per target (libFuzzer reads them, never writes them).
fn seeds(target: &str) -> Vec<std::path::PathBuf> {
    let r = root();
    let mut dirs = vec![r.join("fuzz/seeds").join(target)];
    if matches!(target, "metainfo" | "bencode") {
        dirs.push(r.join("crates/metainfo/testdata/real"));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// The targets cargo-fuzz knows about (`cargo fuzz list`).
fn targets() -> Result<Vec<String>> {
    let out = nightly_cargo()
        .args(["fuzz", "list"])
        .output()
        .context("cannot run `cargo +nightly fuzz list` (is cargo-fuzz installed?)")?;
    if !out.status.success() {
        bail!(
            "`cargo fuzz list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn nightly_cargo() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo"]).current_dir(root());
    // The stable toolchain's variables must not leak into the nightly build.
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "CARGO_TARGET_DIR",
    ] {
        c.env_remove(var);
    }
    c
}

pub(crate) fn run_fuzz(opts: &Options) -> Result<()> {
    let all = targets()?;
    let chosen: Vec<String> = match &opts.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target `{t}`; targets: {}", all.join(", ")),
        None => all,
    };
    let seconds = opts.seconds.unwrap_or(if opts.smoke {
        SMOKE_SECONDS
    } else {
        DEFAULT_SECONDS
    });
    let mut failed = Vec::new();
    for target in &chosen {
        let corpus = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let mut c = nightly_cargo();
        c.args(["fuzz", "run", target]).arg(&corpus);
        c.args(seeds(target));
        c.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
        if !run_status(&mut c)? {
            eprintln!("fuzz target `{target}` failed: see fuzz/artifacts/{target}/");
            failed.push(target.clone());
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    eprintln!(
        "fuzzed {} target(s) for {seconds}s each without a crash",
        chosen.len()
    );
    Ok(())
}
