//! Installs what the tests need when it is missing: Debian packages, the libtorrent 2.1 venv,
//! the npm packages of `interop/`, and cargo tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{self, cargo, cmd, on_path, run, run_status};

/// Debian packages the interop drivers use: libtorrent 2.0 and the venv for 2.1, then the
/// clients and the tracker of the `swarm-*` scenarios (curl drives qBittorrent's WebUI API), the HTTP
/// server of the `webseed-*` scenarios, and for the `webrtc-*` scenarios the browser (driven by
/// playwright-core from `interop/node_modules`) and `ip`, which brings up the loopback interface of
/// their network namespace; ffmpeg makes the video `webtorrent demo` (and the `ui-stream`
/// scenario) plays.
const APT_PACKAGES: &[&str] = &[
    "python3-libtorrent",
    "transmission-cli",
    "python3-venv",
    "qbittorrent-nox",
    "aria2",
    "transmission-daemon",
    "opentracker",
    "curl",
    "nginx",
    "chromium",
    "iproute2",
    "ffmpeg",
];
/// The libtorrent wheel the venv pins.
pub(crate) const LIBTORRENT_PYPI: &str = "2.1.1";
/// Debian's python, which has python3-libtorrent (2.0).
pub(crate) const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// The venv's python (libtorrent 2.1).
pub(crate) fn venv_python() -> PathBuf {
    util::root().join("interop/.venv/bin/python")
}

/// Everything: apt packages, venv, npm, cargo tools.
pub(crate) fn all(with_fuzz: bool) -> Result<()> {
    apt()?;
    venv()?;
    npm()?;
    cargo_tool("nextest", "cargo-nextest", &[])?;
    // Without default features cargo-deny cannot fetch the advisory database, which this
    // machine cannot reach anyway; it builds in about half the time.
    cargo_tool("deny", "cargo-deny", &["--no-default-features"])?;
    if with_fuzz {
        cargo_tool("fuzz", "cargo-fuzz", &[])?;
        nightly()?;
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// apt-get, through sudo when we are not root.
fn apt_get(args: &[&str]) -> Result<()> {
    let mut c = if is_root() {
        Command::new("apt-get")
    } else if on_path("sudo") {
        let mut c = Command::new("sudo");
        c.args(["-n", "--preserve-env=DEBIAN_FRONTEND", "apt-get"]);
        c
    } else {
        bail!(
            "not root and no sudo: install {} by hand",
            APT_PACKAGES.join(" ")
        );
    };
    c.env("DEBIAN_FRONTEND", "noninteractive")
        // Another apt run (another engineer, unattended upgrades) may hold the lock.
        .args(["-o", "DPkg::Lock::Timeout=600"])
        .args(args);
    run(&mut c)
}

fn apt() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!("apt-get not found: install {} by hand", missing.join(" "));
    }
    apt_get(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt_get(&args)
}

fn venv_has_libtorrent(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args([
                "-c",
                "import libtorrent, sys; print(libtorrent.__version__)",
            ])
            .output()
            .is_ok_and(|o| {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout).starts_with(LIBTORRENT_PYPI)
            })
}

fn venv() -> Result<()> {
    let python = venv_python();
    if venv_has_libtorrent(&python) {
        return Ok(());
    }
    let dir = util::root().join("interop/.venv");
    if !python.is_file() {
        run(cmd(SYSTEM_PYTHON, &["-m", "venv"]).arg(&dir))?;
    }
    run(cmd(
        &python,
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ],
    )
    .arg(format!("libtorrent=={LIBTORRENT_PYPI}")))?;
    if !venv_has_libtorrent(&python) {
        bail!("interop/.venv has no libtorrent {LIBTORRENT_PYPI} after pip install");
    }
    Ok(())
}

/// `npm ci` in interop/ unless node_modules already matches package-lock.json.
fn npm() -> Result<()> {
    let dir = util::root().join("interop");
    let lock = std::fs::read(dir.join("package-lock.json"))
        .context("cannot read interop/package-lock.json")?;
    let stamp = dir.join("node_modules/.installed-lock");
    if std::fs::read(&stamp).is_ok_and(|s| s == lock) {
        return Ok(());
    }
    if !on_path("npm") {
        bail!("npm not found: install Node.js (>= 20) and npm");
    }
    run(cmd("npm", &["ci", "--no-audit", "--no-fund"]).current_dir(&dir))?;
    std::fs::write(&stamp, &lock).context("cannot write node_modules/.installed-lock")?;
    Ok(())
}

/// `cargo <sub>` works, or `cargo install --locked <krate> <extra>`.
fn cargo_tool(sub: &str, krate: &str, extra: &[&str]) -> Result<()> {
    let works = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
    if works(cargo().args([sub, "--version"])) {
        return Ok(());
    }
    run(cargo().args(["install", "--locked", krate]).args(extra))?;
    if !works(cargo().args([sub, "--version"])) {
        bail!("`cargo {sub}` still missing after installing {krate}");
    }
    Ok(())
}

fn nightly() -> Result<()> {
    if run_status(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]))? {
        return Ok(());
    }
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
        .context("the fuzz targets need a nightly toolchain")
}
