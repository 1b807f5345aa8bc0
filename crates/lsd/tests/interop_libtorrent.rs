//! Interop with libtorrent 2.0 (Debian's python3-libtorrent, driven by
//! tests/lt_lsd.py) over IPv4 multicast on the loopback interface, port 6771: each
//! side finds the other through LSD, and libtorrent connects to the port we announce.
//!
//! Skipped, with the reason printed, when `/usr/bin/python3` cannot import libtorrent.
#![cfg(feature = "tokio")]

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use webtorrent_lsd::{Driver, DriverConfig};
use webtorrent_types::InfoHashV1;

const PYTHON: &str = "/usr/bin/python3";
const LIMIT: Duration = Duration::from_secs(30);

fn libtorrent_missing() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {PYTHON} cannot import libtorrent (python3-libtorrent)");
    }
    !ok
}

/// Kills the python peer however the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An info-hash no other test or program on this host uses.
fn unique_hash() -> InfoHashV1 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    let mut bytes = [0x5a; 20];
    bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    bytes[16..].copy_from_slice(&std::process::id().to_le_bytes());
    InfoHashV1(bytes)
}

#[tokio::test(flavor = "current_thread")]
async fn libtorrent_and_we_find_each_other() {
    if libtorrent_missing() {
        return;
    }
    let torrent = unique_hash();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a TCP port");
    let our_port = listener.local_addr().expect("bound").port();

    let mut config = DriverConfig::ipv4(our_port, 0x5eed, Ipv4Addr::LOCALHOST);
    // Announce every second, so libtorrent hears us whenever it starts listening.
    config.announcer.announce_interval = Duration::from_secs(1);
    config.announcer.min_send_interval = Duration::from_secs(1);
    let mut driver = Driver::bind(config).expect("bind 0.0.0.0:6771 and join on lo");
    driver.add_torrent(torrent);

    let save = std::env::temp_dir().join(format!("lsd-interop-{}", std::process::id()));
    std::fs::create_dir_all(&save).expect("a temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lt_lsd.py");
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .arg(torrent.to_hex())
        .arg(&save)
        .arg(LIMIT.as_secs().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
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

    // libtorrent connects to the port we announce and says which torrent it wants.
    listener.set_nonblocking(true).expect("nonblocking");
    let handshakes = std::thread::spawn(move || {
        let end = Instant::now() + LIMIT;
        while Instant::now() < end {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .expect("timeout");
                    let mut handshake = [0u8; 48];
                    if stream.read_exact(&mut handshake).is_ok() {
                        return Some(handshake);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        None
    });

    let end = Instant::now() + LIMIT;
    let mut lt_port = None;
    let mut we_found = None;
    let mut lt_found = None;
    while we_found.is_none() || lt_found.is_none() {
        assert!(
            Instant::now() < end,
            "timed out: libtorrent port {lt_port:?}, we found {we_found:?}, it found {lt_found:?}"
        );
        while let Ok(line) = lines.try_recv() {
            if let Some(port) = line.strip_prefix("port ") {
                lt_port = Some(port.parse::<u16>().expect("a port number"));
            } else if let Some(peer) = line.strip_prefix("lsd-peer ") {
                lt_found = Some(peer.parse::<SocketAddr>().expect("a socket address"));
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
    let lt_port = lt_port.expect("libtorrent printed its port first");
    assert_eq!(
        we_found,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, lt_port)))
    );
    assert_eq!(
        lt_found,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, our_port)))
    );

    let handshake = tokio::task::spawn_blocking(move || handshakes.join())
        .await
        .expect("joined")
        .expect("the accept thread does not panic")
        .expect("libtorrent connected to our announced port");
    assert_eq!(&handshake[..20], b"\x13BitTorrent protocol");
    assert_eq!(&handshake[28..48], torrent.as_bytes());
    let _ = std::fs::remove_dir_all(&save);
}
