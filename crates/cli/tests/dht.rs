//! `webtorrent dht put|get` and `webtorrent publish` + `download magnet:?xs=urn:btpk:`
//! against a small DHT of in-process nodes on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use webtorrent::dht::{Dht, DhtConfig, DhtTask};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Eight DHT nodes on 127.0.0.1 running on their own runtime; returns the first one's
/// address to bootstrap from.
fn local_dht() -> (tokio::runtime::Runtime, Vec<(Dht, DhtTask)>, String) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let nodes = rt.block_on(async {
        let mut nodes: Vec<(Dht, DhtTask)> = Vec::new();
        for i in 0..8 {
            let mut c = DhtConfig::v4(SocketAddr::from(([127, 0, 0, 1], 0)));
            if i > 0 {
                c.node.bootstrap = vec![nodes[0].0.local_addr_v4().expect("IPv4")];
            }
            nodes.push(Dht::bind(c).await.expect("bind"));
        }
        for (d, _) in &nodes[1..] {
            d.bootstrap().await.expect("bootstrap");
        }
        nodes
    });
    let boot = nodes[0].0.local_addr_v4().expect("IPv4").to_string();
    (rt, nodes, boot)
}

fn run(cwd: &Path, args: &[&str]) -> std::process::Output {
    common::webtorrent(cwd, args)
}

#[test]
fn dht_put_and_get_immutable_and_mutable_items() {
    let (_rt, _nodes, boot) = local_dht();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = ["--dht-bootstrap", boot.as_str(), "--listen", "127.0.0.1:0"];

    let out = run(
        dir.path(),
        &[&["dht", "put", "hello dht"], &node[..]].concat(),
    );
    let target = common::ok(&out).trim().to_owned();
    assert_eq!(target.len(), 40, "{target}");
    let out = run(
        dir.path(),
        &[&["dht", "get", target.as_str()], &node[..]].concat(),
    );
    assert_eq!(common::ok(&out), "hello dht\n");

    let key = dir.path().join("my.key");
    let key = key.to_str().expect("UTF-8 path");
    for (value, seq) in [("first", "seq 1"), ("second", "seq 2")] {
        let out = run(
            dir.path(),
            &[
                &["dht", "put", value, "--key-file", key, "--salt", "s"],
                &node[..],
            ]
            .concat(),
        );
        common::ok(&out);
        assert!(
            common::stderr(&out).contains(seq),
            "{}",
            common::stderr(&out)
        );
    }
    let out = run(
        dir.path(),
        &[&["dht", "get", "--key-file", key, "--salt", "s"], &node[..]].concat(),
    );
    assert_eq!(common::ok(&out), "second\n");

    // Nothing stored under another salt: one error line.
    let out = run(
        dir.path(),
        &[
            &["dht", "get", "--key-file", key, "--salt", "other"],
            &node[..],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("no such item"),
        "{}",
        common::stderr(&out)
    );
}

/// A running `webtorrent publish`, killed when dropped.
struct Publisher(Child);

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn publish_then_download_by_the_mutable_link() {
    let (_rt, _nodes, boot) = local_dht();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::content(46, 300_000);
    std::fs::write(dir.path().join("shared.bin"), &data).expect("write");
    let key = dir.path().join("pub.key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(["publish", "shared.bin", "--key"])
        .arg(&key)
        .args(["--dht-bootstrap", &boot, "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webtorrent binary starts");
    let rx = common::line_channel(&mut child);
    let publisher = Publisher(child);
    let deadline = Instant::now() + TIMEOUT;
    let link = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the publisher prints its link in time");
        assert!(!line.starts_with("error"), "publish failed: {line}");
        if line.starts_with("magnet:?xs=urn:btpk:") {
            break line;
        }
    };

    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        out_dir.path(),
        &[
            "download",
            &link,
            "-o",
            ".",
            "--dht-bootstrap",
            &boot,
            "--listen",
            "127.0.0.1:0",
        ],
    );
    common::ok(&out);
    assert!(
        common::stderr(&out).contains("the link points at"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(
        std::fs::read(out_dir.path().join("shared.bin")).expect("downloaded"),
        data
    );
    drop(publisher);
}

/// Starts `webtorrent ARGS` in `cwd`; its stdout and stderr lines arrive on the channel.
fn spawn_lines(cwd: &Path, args: &[&str]) -> (Publisher, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webtorrent binary starts");
    let rx = common::line_channel(&mut child);
    (Publisher(child), rx)
}

/// The first line starting with `prefix`, failing on `error` lines and after `deadline`.
fn wait_line(rx: &mpsc::Receiver<String>, prefix: &str, deadline: Instant) -> String {
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no line starting with {prefix:?} in time"));
        assert!(!line.starts_with("error"), "failed: {line}");
        if line.starts_with(prefix) {
            return line;
        }
    }
}

#[test]
fn download_follow_gets_each_published_version() {
    let (_rt, _nodes, boot) = local_dht();
    let deadline = Instant::now() + TIMEOUT;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("pub.key");
    let key = key.to_str().expect("utf-8 path");
    let publish = [
        "publish",
        "site.bin",
        "--key",
        key,
        "--dht-bootstrap",
        &boot,
        "--listen",
        "127.0.0.1:0",
    ];
    let v1 = common::content(47, 200_000);
    std::fs::write(dir.path().join("site.bin"), &v1).expect("write");
    let (publisher, lines) = spawn_lines(dir.path(), &publish);
    let link = wait_line(&lines, "magnet:?xs=urn:btpk:", deadline);

    let out_dir = tempfile::tempdir().expect("tempdir");
    let (subscriber, got) = spawn_lines(
        out_dir.path(),
        &[
            "download",
            &link,
            "--follow",
            "--follow-interval",
            "1",
            "--dht-bootstrap",
            &boot,
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(wait_line(&got, "downloaded", deadline).contains("seq 1"));
    let site = out_dir.path().join("site.bin");
    assert_eq!(std::fs::read(&site).expect("downloaded"), v1);

    // The publisher publishes a new version with the same key: seq 2.
    drop(publisher);
    let v2 = common::content(48, 200_000);
    std::fs::write(dir.path().join("site.bin"), &v2).expect("write");
    let (publisher, lines) = spawn_lines(dir.path(), &publish);
    assert!(wait_line(&lines, "published", deadline).contains("seq 2"));
    assert!(wait_line(&got, "downloaded", deadline).contains("seq 2"));
    assert_eq!(std::fs::read(&site).expect("downloaded"), v2);
    drop(subscriber);
    drop(publisher);
}
