//! `cargo xtask bench dht`: a loopback DHT of our nodes, libtorrent sessions and
//! bittorrent-dht nodes; lookup latency and queries per lookup, ours against libtorrent's in
//! the same run; our heap per 10 000 stored peers.
//!
//! Method (docs/benchmarks/dht.md has the details and the figures):
//! - `crates/dht/examples/dht_bench.rs` hosts our nodes (one `Dht` each, 127.0.0.1, one
//!   process) and drives `interop/python/lt_dht_bench.py`, which hosts the libtorrent 2.0
//!   sessions in one Python process; every node bootstraps from three of ours and two
//!   libtorrent sessions;
//! - with `--dht-js N` (default 40), N JS `bittorrent-dht` nodes join from
//!   `interop/node/dht_bench_nodes.mjs` (one Node.js process); they answer and store;
//! - half of the torrents are announced by random ones of our nodes, half are added to random
//!   libtorrent sessions (which announce them); then our node 0 and libtorrent session 0 look
//!   each info-hash up in turn (`get_peers`), and the example prints the figures as JSON;
//! - heap per stored peer: the `heap_per_ten_thousand_stored_peers` test of
//!   `crates/dht/tests/scale.rs` (a counting allocator around a node storing 10 000 peers).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::setup::SYSTEM_PYTHON;
use crate::util::{capture, cargo, display, root};

/// Options of `cargo xtask bench dht`.
pub(crate) struct Options {
    pub(crate) ours: usize,
    pub(crate) libtorrent: usize,
    pub(crate) js: usize,
    pub(crate) torrents: usize,
    pub(crate) lookups: usize,
    pub(crate) timeout: Duration,
    pub(crate) json: Option<PathBuf>,
}

fn build_example() -> Result<PathBuf> {
    let mut c = cargo();
    c.args([
        "build",
        "--locked",
        "--release",
        "-p",
        "webtorrent-dht",
        "--example",
        "dht_bench",
        "--message-format=json-render-diagnostics",
    ]);
    eprintln!("$ {}", display(&c));
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo build")?;
    if !out.status.success() {
        bail!("building the dht_bench example failed");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "dht_bench"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo build did not report the dht_bench executable")
}

fn ms(v: &Value, what: &str) -> String {
    match v[what].as_f64() {
        Some(x) if x < 10.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.1}"),
        None => "-".to_owned(),
    }
}

fn ratio(ours: &Value, lt: &Value) -> String {
    match (ours.as_f64(), lt.as_f64()) {
        (Some(o), Some(l)) if l > 0.0 => format!("{:.2}", o / l),
        _ => "-".to_owned(),
    }
}

pub(crate) fn dht(o: &Options) -> Result<()> {
    let exe = build_example()?;
    let mut c = std::process::Command::new(&exe);
    c.arg(SYSTEM_PYTHON)
        .arg(root().join("interop/python/lt_dht_bench.py"))
        .args(["--ours", &o.ours.to_string()])
        .args(["--lt", &o.libtorrent.to_string()])
        .args(["--torrents", &o.torrents.to_string()])
        .args(["--lookups", &o.lookups.to_string()]);
    let js_dir = root().join("interop/node_modules/bittorrent-dht");
    if o.js > 0 && js_dir.is_dir() {
        c.args(["--js", &o.js.to_string(), "--node", "node", "--js-script"])
            .arg(root().join("interop/node/dht_bench_nodes.mjs"));
    } else if o.js > 0 {
        eprintln!(
            "no bittorrent-dht nodes: {} is missing (npm ci in interop/)",
            js_dir.display()
        );
    }
    eprintln!("$ {}", display(&c));
    let out = capture(&mut c, Some(Instant::now() + o.timeout))?.ok("dht_bench")?;
    eprint!("{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).context("dht_bench printed no JSON")?;

    let mut t = cargo();
    t.args([
        "test",
        "--locked",
        "--release",
        "-p",
        "webtorrent-dht",
        "--test",
        "scale",
        "heap_per_ten_thousand_stored_peers",
        "--",
        "--nocapture",
    ]);
    eprintln!("$ {}", display(&t));
    let mem = capture(&mut t, Some(Instant::now() + o.timeout))?.ok("the heap test")?;
    let heap = mem
        .stderr
        .lines()
        .find(|l| l.starts_with("10 000 stored peers"))
        .unwrap_or("10 000 stored peers: not reported")
        .to_owned();

    let w = &v["webtorrent"];
    let l = &v["libtorrent"];
    println!(
        "\n{} of our nodes + {} libtorrent sessions + {} bittorrent-dht nodes on 127.0.0.1; \
         {} torrents; {} lookups each",
        v["ours"], v["libtorrent_sessions"], v["bittorrent_dht_nodes"], v["torrents"], v["lookups"]
    );
    println!(
        "routing table, median contacts: ours {}, libtorrent {}",
        v["table_ours"]["median"], v["table_libtorrent"]["median"]
    );
    println!(
        "{:<34} {:>12} {:>12} {:>12}",
        "", "webtorrent", "libtorrent", "ours / lt"
    );
    for (name, key, stat) in [
        ("lookup done, median ms", "done_ms", "median"),
        ("lookup done, p90 ms", "done_ms", "p90"),
        ("first peer, median ms", "first_peer_ms", "median"),
        ("first peer, p90 ms", "first_peer_ms", "p90"),
        ("get_peers queries, median", "queries", "median"),
        ("get_peers queries, p90", "queries", "p90"),
        ("get_peers queries, mean", "queries", "mean"),
    ] {
        println!(
            "{name:<34} {:>12} {:>12} {:>12}",
            ms(&w[key], stat),
            ms(&l[key], stat),
            ratio(&w[key][stat], &l[key][stat])
        );
    }
    println!(
        "{:<34} {:>12} {:>12}",
        "lookups that found peers",
        w["found"].as_u64().unwrap_or(0),
        l["found"].as_u64().unwrap_or(0)
    );
    println!("{heap}");
    if let Some(path) = &o.json {
        let mut all = v.clone();
        all["heap"] = Value::String(heap);
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    Ok(())
}
