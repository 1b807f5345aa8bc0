//! Two drivers finding each other on loopback: unicast (IPv4 and IPv6) and IPv4
//! multicast with IP_MULTICAST_LOOP on the loopback interface.
#![cfg(feature = "tokio")]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use webtorrent_lsd::{Driver, DriverConfig, IPV4_GROUP};
use webtorrent_types::InfoHashV1;

const LIMIT: Duration = Duration::from_secs(10);

/// A UDP port free a moment ago on `ip`.
fn free_port(ip: &str) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// Runs both drivers until each has found the other for `torrent`; returns what each
/// found first.
async fn find_each_other(
    a: &mut Driver,
    b: &mut Driver,
    torrent: InfoHashV1,
) -> (SocketAddr, SocketAddr) {
    a.add_torrent(torrent);
    b.add_torrent(torrent);
    let found = tokio::time::timeout(LIMIT, async {
        let (mut from_a, mut from_b) = (None, None);
        while from_a.is_none() || from_b.is_none() {
            tokio::select! {
                found = a.next_peer(), if from_a.is_none() => {
                    let (hash, addr) = found.expect("driver a runs");
                    assert_eq!(hash, torrent);
                    from_a = Some(addr);
                }
                found = b.next_peer(), if from_b.is_none() => {
                    let (hash, addr) = found.expect("driver b runs");
                    assert_eq!(hash, torrent);
                    from_b = Some(addr);
                }
            }
        }
        (from_a, from_b)
    })
    .await
    .expect("the drivers find each other within the limit");
    (
        found.0.expect("loop ends with both"),
        found.1.expect("loop ends with both"),
    )
}

#[tokio::test]
async fn unicast_ipv4() {
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let addr = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let mut a = Driver::bind(DriverConfig::unicast(6001, 1, addr(pa), addr(pb))).expect("bind a");
    let mut b = Driver::bind(DriverConfig::unicast(6002, 2, addr(pb), addr(pa))).expect("bind b");
    let torrent = InfoHashV1([0x11; 20]);
    let (from_a, from_b) = find_each_other(&mut a, &mut b, torrent).await;
    assert_eq!(from_a, addr(6002));
    assert_eq!(from_b, addr(6001));
    assert_eq!(a.lsd().stats().sent, 1);
    assert_eq!(b.lsd().stats().accepted, 1);
}

#[tokio::test]
async fn unicast_ipv6() {
    let (pa, pb) = (free_port("::1"), free_port("::1"));
    let addr = |p: u16| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p));
    let mut a = Driver::bind(DriverConfig::unicast(6001, 1, addr(pa), addr(pb))).expect("bind a");
    let mut b = Driver::bind(DriverConfig::unicast(6002, 2, addr(pb), addr(pa))).expect("bind b");
    let (from_a, from_b) = find_each_other(&mut a, &mut b, InfoHashV1([0x22; 20])).await;
    assert_eq!(from_a, addr(6002));
    assert_eq!(from_b, addr(6001));
}

/// Both sockets bind one port, join the group on 127.0.0.1, and hear each other and
/// themselves; their own announces are recognised by cookie.
#[tokio::test]
async fn multicast_on_loopback() {
    let port = free_port("0.0.0.0");
    let config = |listen: u16, cookie: u32| {
        let mut c = DriverConfig::ipv4(listen, cookie, Ipv4Addr::LOCALHOST);
        c.bind = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        c.announcer.destination = SocketAddr::from((*IPV4_GROUP.ip(), port));
        c
    };
    let mut a = Driver::bind(config(7001, 0xa)).expect("bind a");
    let mut b = Driver::bind(config(7002, 0xb)).expect("bind b");
    let torrent = InfoHashV1([0x33; 20]);
    let (from_a, from_b) = find_each_other(&mut a, &mut b, torrent).await;
    assert_eq!(from_a, SocketAddr::from((Ipv4Addr::LOCALHOST, 7002)));
    assert_eq!(from_b, SocketAddr::from((Ipv4Addr::LOCALHOST, 7001)));
    // Each heard its own announce too (multicast loop), and dropped it. The first to
    // send may have heard its own before the other was listening, so look at both.
    let own = a.lsd().stats().own + b.lsd().stats().own;
    assert!(own >= 1, "own announces seen: {own}");
}

#[tokio::test]
async fn torrents_of_others_are_not_reported() {
    let (pa, pb) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let addr = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let mut a = Driver::bind(DriverConfig::unicast(6001, 1, addr(pa), addr(pb))).expect("bind a");
    let mut b = Driver::bind(DriverConfig::unicast(6002, 2, addr(pb), addr(pa))).expect("bind b");
    a.add_torrent(InfoHashV1([1; 20]));
    b.add_torrent(InfoHashV1([2; 20]));
    let ran = tokio::time::timeout(Duration::from_millis(500), async {
        tokio::select! {
            found = a.next_peer() => found,
            found = b.next_peer() => found,
        }
    })
    .await;
    assert!(ran.is_err(), "no peer may be reported: {ran:?}");
    assert_eq!(a.lsd().stats().accepted, 1);
    assert_eq!(b.lsd().stats().accepted, 1);
}

#[test]
fn mixed_ip_versions_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _guard = rt.enter();
    let config = DriverConfig::unicast(
        1,
        1,
        "127.0.0.1:0".parse().expect("valid"),
        "[::1]:9".parse().expect("valid"),
    );
    let err = Driver::bind(config).expect_err("v4 bind, v6 destination");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// IPv6 multicast needs an interface with a multicast route, which this host's
/// loopback lacks: the test runs itself again inside a new network namespace
/// (`unshare --net`) holding a veth pair, and the two drivers meet on the IPv6 group
/// there. Skipped, with the reason printed, where namespaces cannot be made.
#[test]
fn multicast_ipv6_in_a_network_namespace() {
    const NAME: &str = "multicast_ipv6_in_a_network_namespace";
    if std::env::var_os("LSD_TEST_IN_NETNS").is_some() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(ipv6_multicast_pair());
        return;
    }
    let setup = "ip link set lo up && ip link add v0 type veth peer name v1 \
                 && ip link set v0 up && ip link set v1 up \
                 && ip -6 addr add fd00::1/64 dev v0 nodad \
                 && export LSD_V0_INDEX=$(ip -o link show v0 | cut -d: -f1) \
                 && echo NETNS-READY && exec \"$0\" --exact \"$1\" --nocapture --test-threads=1";
    let output = std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", setup])
        .arg(std::env::current_exe().expect("the test binary's path"))
        .arg(NAME)
        .env("LSD_TEST_IN_NETNS", "1")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stdout.contains("NETNS-READY") {
        eprintln!("skipped: no network namespace with a veth pair here: {stderr}");
        return;
    }
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the test inside the namespace failed:\n{stdout}\n{stderr}"
    );
}

/// Inside the namespace: two drivers on the IPv6 group, joined on `v0`.
async fn ipv6_multicast_pair() {
    // sysfs still shows the host's interfaces: the setup passes v0's index.
    let index: u32 = std::env::var("LSD_V0_INDEX")
        .expect("the setup exports v0's index")
        .parse()
        .expect("an interface index");
    let port = free_port("::");
    let config = |listen: u16, cookie: u32| {
        let mut c = DriverConfig::ipv6(listen, cookie, index);
        c.bind = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
        c.announcer.destination = SocketAddr::from((*webtorrent_lsd::IPV6_GROUP.ip(), port));
        c
    };
    let mut a = Driver::bind(config(7001, 0xa)).expect("bind a");
    let mut b = Driver::bind(config(7002, 0xb)).expect("bind b");
    let (from_a, from_b) = find_each_other(&mut a, &mut b, InfoHashV1([0x44; 20])).await;
    assert!(from_a.is_ipv6() && from_b.is_ipv6());
    assert_eq!(from_a.port(), 7002);
    assert_eq!(from_b.port(), 7001);
    assert_eq!(from_a.ip(), from_b.ip(), "one host, one source address");
}
