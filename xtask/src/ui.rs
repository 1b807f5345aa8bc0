//! The `ui-stream` interop scenario: the web UI in a real browser.
//!
//! `webtorrent demo --no-add` runs a local tracker, a seeder of a test-pattern video made
//! with ffmpeg (sent at 1 MiB/s, so the download takes a few seconds) and a leecher with the
//! HTTP server. `interop/browser/ui.mjs` opens the UI in headless Chromium, checks that a bad
//! magnet link gets an error on the page, adds the demo's
//! magnet link through the form, waits for the progress bar to reach 100 %, plays the video
//! through `/stream`, seeks to 80 % and checks that `currentTime` advances from there; the
//! screenshot lands in `target/interop/ui-stream.png`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::interop::{Ctx, Scenario};
use crate::util::{cmd, on_path, root};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The whole scenario, the video's encoding included.
const TIMEOUT: Duration = Duration::from_secs(240);

pub(crate) fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "ui-stream".to_owned(),
        timeout: TIMEOUT,
        run: Box::new(run),
    }]
}

/// The demo, killed when dropped.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the screenshot goes: `target/interop/` of the cargo target folder.
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("interop").join("ui-stream.png")
}

fn run(ctx: &Ctx) -> Result<Vec<String>> {
    ensure!(
        on_path("node"),
        "node is missing: install Node.js (>= 20), then `cargo xtask ci --only setup`"
    );
    ensure!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run `cargo xtask ci --only setup` (Debian's chromium)"
    );
    ensure!(
        on_path("ffmpeg"),
        "ffmpeg is missing (the demo makes its video with it): run `cargo xtask ci --only setup`"
    );
    let deadline = ctx
        .deadline
        .get()
        .unwrap_or_else(|| Instant::now() + TIMEOUT);
    let dir = ctx.work.join("ui-stream");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;

    let mut demo = ctx.webtorrent();
    demo.arg("demo")
        .arg("--dir")
        .arg(&dir)
        .args(["--no-add", "--seconds", "30", "--rate", "1MiB"])
        .args(["--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = demo.spawn().context("cannot start webtorrent demo")?;
    let (tx, lines) = mpsc::channel::<String>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let _demo = Demo(child);
    let (mut ui, mut magnet) = (None, None);
    let mut seen = Vec::new();
    while ui.is_none() || magnet.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            bail!(
                "webtorrent demo printed no UI address and magnet link: {}",
                seen.join(" | ")
            );
        };
        if let Some(url) = line.strip_prefix("web UI: ") {
            ui = Some(url.trim().to_owned());
        } else if let Some(link) = line.strip_prefix("magnet: ") {
            magnet = Some(link.trim().to_owned());
        }
        seen.push(line);
    }
    let (ui, magnet) = (ui.unwrap_or_default(), magnet.unwrap_or_default());

    let shot = screenshot_path();
    if let Some(parent) = shot.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let mut browser = cmd("node", &[root().join("interop/browser/ui.mjs")]);
    browser
        .args(["--url", &ui, "--magnet", &magnet])
        .arg("--screenshot")
        .arg(&shot)
        .args(["--timeout", &left.as_secs().max(10).to_string()]);
    let out = ctx.capture(&mut browser)?;
    let events: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |name: &str| events.iter().find(|e| e["event"] == name);
    if !out.status.success() {
        let why = find("error")
            .and_then(|e| e["message"].as_str())
            .unwrap_or("no reason given");
        bail!(
            "the browser run failed: {why}; page log: {}",
            crate::util::last_lines(&out.stderr, 8)
        );
    }
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "progress")
        .filter_map(|e| e["progress"].as_f64())
        .collect();
    ensure!(
        progress.last().is_some_and(|&p| p >= 1.0),
        "the progress bar did not reach 100 %: {progress:?}"
    );
    let (Some(shown), Some(playing), Some(seeked), Some(advanced)) = (
        find("error-shown"),
        find("playing"),
        find("seeked"),
        find("advanced"),
    ) else {
        bail!("the browser run skipped a step: {}", out.stdout);
    };
    let num = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    ensure!(
        num(advanced, "to") > num(seeked, "reached"),
        "playback did not advance after the seek"
    );
    ensure!(shot.is_file(), "no screenshot at {}", shot.display());
    Ok(vec![
        format!(
            "a bad magnet link shows: {}",
            shown["text"].as_str().unwrap_or_default()
        ),
        format!(
            "progress bar went through {} values to 100 % ({})",
            progress.len(),
            progress
                .iter()
                .map(|p| format!("{:.0}%", p * 100.0))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        format!(
            "played {:.1} s of {:.1} s, sought {:.1} s, reached {:.1} s, then {:.1} s",
            num(playing, "currentTime"),
            num(playing, "duration"),
            num(seeked, "target"),
            num(seeked, "reached"),
            num(advanced, "to")
        ),
        format!("screenshot: {}", shot.display()),
    ])
}
