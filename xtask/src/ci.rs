//! `cargo xtask ci`: every check, in the order a failure is cheapest to find.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::util::{cargo, run};
use crate::{fuzz, interop, setup};

/// The steps, by name (for `--skip`/`--only`).
pub(crate) const STEPS: &[&str] = &[
    "setup", "fmt", "clippy", "test", "doctest", "deny", "interop", "fuzz",
];

/// Options of `cargo xtask ci`.
pub(crate) struct Options {
    pub(crate) skip: Vec<String>,
    pub(crate) only: Vec<String>,
    pub(crate) fail_fast: bool,
}

/// Build settings of a CI run, unless the caller set them: no incremental state and line
/// tables only as debug info. A full run then leaves about half the bytes in `target/`
/// (incremental caches and full DWARF of ~100 test binaries otherwise exceed 14 GiB), and
/// backtraces keep their file and line.
const LEAN_BUILD_ENV: &[(&str, &str)] = &[
    ("CARGO_INCREMENTAL", "0"),
    ("CARGO_PROFILE_DEV_DEBUG", "line-tables-only"),
];

pub(crate) fn run_ci(opts: &Options) -> Result<()> {
    for (key, value) in LEAN_BUILD_ENV {
        if std::env::var_os(key).is_none() {
            // SAFETY: xtask is single-threaded here; no other thread reads the environment.
            unsafe { std::env::set_var(key, value) };
        }
    }
    for name in opts.skip.iter().chain(&opts.only) {
        if !STEPS.contains(&name.as_str()) {
            bail!("unknown step `{name}`; steps are: {}", STEPS.join(", "));
        }
    }
    let wanted = |step: &str| {
        !opts.skip.iter().any(|s| s == step)
            && (opts.only.is_empty() || opts.only.iter().any(|s| s == step))
    };
    let mut results: Vec<(&str, Option<Result<()>>, Duration)> = Vec::new();
    let started = Instant::now();
    for &step in STEPS {
        if !wanted(step) {
            results.push((step, None, Duration::ZERO));
            continue;
        }
        eprintln!("\n==> {step}");
        let t = Instant::now();
        let r = run_step(step, wanted("fuzz"));
        let failed = r.is_err();
        if let Err(e) = &r {
            eprintln!("==> {step} FAILED: {e:#}");
        }
        results.push((step, Some(r), t.elapsed()));
        if failed && (opts.fail_fast || step == "setup") {
            // Without its tools the later steps would only fail again, less clearly.
            break;
        }
    }
    eprintln!("\n==> summary ({})", crate::util::secs(started.elapsed()));
    let mut failures = 0;
    for (step, r, d) in &results {
        let (status, detail) = match r {
            None => ("skipped", String::new()),
            Some(Ok(())) => ("ok", String::new()),
            Some(Err(e)) => {
                failures += 1;
                ("FAILED", format!("  {e:#}"))
            }
        };
        eprintln!(
            "  {step:<8} {status:<7} {:>7}{detail}",
            crate::util::secs(*d)
        );
    }
    let ran = results.iter().filter(|(_, r, _)| r.is_some()).count();
    if failures > 0 {
        bail!("{failures} of {ran} steps failed");
    }
    eprintln!("all {ran} steps passed");
    Ok(())
}

fn run_step(step: &str, with_fuzz: bool) -> Result<()> {
    match step {
        "setup" => setup::all(with_fuzz),
        "fmt" => run(cargo().args(["fmt", "--all", "--check"])),
        "clippy" => run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])),
        "test" => run(cargo().args(["nextest", "run", "--workspace", "--locked"])),
        "doctest" => run(cargo().args(["test", "--doc", "--workspace", "--locked"])),
        // The advisory database cannot be fetched here, so no `advisories`.
        "deny" => run(cargo().args(["deny", "check", "licenses", "bans", "sources"])),
        "interop" => interop::run_interop(&interop::Options::default()),
        "fuzz" => fuzz::run_fuzz(&fuzz::Options {
            smoke: true,
            ..fuzz::Options::default()
        }),
        _ => bail!("unknown step `{step}`"),
    }
}
