//! Interop with WebTorrent's LSD (the `bittorrent-lsd` npm module the JS client uses):
//! it and our driver find each other on the IPv4 group, port 6771.
//!
//! The JS module joins the group on the default interface, so the test re-runs itself
//! in a fresh network namespace (`unshare --net`) whose loopback carries the multicast
//! route: nothing leaves the host, and other programs' port 6771 is not involved.
//! Skipped, with the reason printed, without node, the npm module (`cargo xtask ci
//! --only setup` installs it) or namespaces.
#![cfg(feature = "tokio")]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use webtorrent_lsd::{Driver, DriverConfig};
use webtorrent_types::InfoHashV1;

const NAME: &str = "webtorrent_lsd_and_we_find_each_other";
const LIMIT: Duration = Duration::from_secs(20);

fn node_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/node_modules")
}

/// Kills the node peer however the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn webtorrent_lsd_and_we_find_each_other() {
    if std::env::var_os("LSD_TEST_IN_NETNS").is_some() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(in_namespace());
        return;
    }
    if !node_modules().join("bittorrent-lsd/index.js").is_file() {
        eprintln!(
            "skipped: no interop/node_modules/bittorrent-lsd (run `cargo xtask ci --only setup`)"
        );
        return;
    }
    if !Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: no node");
        return;
    }
    let setup = "ip link set lo multicast on && ip link set lo up \
                 && ip route add 224.0.0.0/4 dev lo src 127.0.0.1 \
                 && echo NETNS-READY && exec \"$0\" --exact \"$1\" --nocapture --test-threads=1";
    let output = match Command::new("unshare")
        .args(["--net", "sh", "-c", setup])
        .arg(std::env::current_exe().expect("the test binary's path"))
        .arg(NAME)
        .env("LSD_TEST_IN_NETNS", "1")
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stdout.contains("NETNS-READY") {
        eprintln!("skipped: no network namespace here: {stderr}");
        return;
    }
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the test inside the namespace failed:\n{stdout}\n{stderr}"
    );
}

async fn in_namespace() {
    let torrent = InfoHashV1([0x77; 20]);
    let (our_port, js_port) = (51413, 6881);
    let mut config = DriverConfig::ipv4(our_port, 0x5eed, Ipv4Addr::LOCALHOST);
    // Announce every second, so the JS side hears us whenever it starts listening.
    config.announcer.announce_interval = Duration::from_secs(1);
    config.announcer.min_send_interval = Duration::from_secs(1);
    let mut driver = Driver::bind(config).expect("bind 0.0.0.0:6771 and join on lo");
    driver.add_torrent(torrent);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsd_js.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .arg(node_modules())
        .arg(torrent.to_hex())
        .arg(js_port.to_string())
        .arg(LIMIT.as_secs().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped");
    let _peer = Peer(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let end = Instant::now() + LIMIT;
    let (mut we_found, mut js_found) = (None, None);
    while we_found.is_none() || js_found.is_none() {
        assert!(
            Instant::now() < end,
            "timed out: we found {we_found:?}, the JS side found {js_found:?}"
        );
        while let Ok(line) = lines.try_recv() {
            if let Some(rest) = line.strip_prefix("peer ") {
                let (addr, hash) = rest.split_once(' ').expect("peer ADDR HASH");
                assert_eq!(hash, torrent.to_hex());
                js_found = Some(addr.parse::<SocketAddr>().expect("a socket address"));
            }
        }
        if let Ok(found) =
            tokio::time::timeout(Duration::from_millis(100), driver.next_peer()).await
        {
            let (hash, addr) = found.expect("the driver runs");
            assert_eq!(hash, torrent);
            we_found = Some(addr);
        }
    }
    assert_eq!(
        we_found,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, js_port)))
    );
    assert_eq!(
        js_found,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, our_port)))
    );
}
