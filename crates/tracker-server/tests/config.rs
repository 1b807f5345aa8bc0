//! Configuration: TOML round trips, flags over files, and `start` serving
//! every protocol on one port number.

use std::time::Duration;

use clap::Parser;
use tokio::time::timeout;
use webtorrent_tracker::udp::UdpConfig as ClientUdpConfig;
use webtorrent_tracker::{
    AnnounceRequest, Event, HttpConfig, HttpTracker, TrackerError, UdpTracker,
};
use webtorrent_tracker_server::cli::TrackerArgs;
use webtorrent_tracker_server::config::{Config, ConfigError, start};
use webtorrent_types::{InfoHashV1, PeerId};

const BOUND: Duration = Duration::from_secs(20);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TrackerArgs,
}

fn args(list: &[&str]) -> TrackerArgs {
    Cli::parse_from(std::iter::once("t").chain(list.iter().copied())).args
}

#[test]
fn empty_toml_is_the_default_and_print_config_round_trips() {
    assert_eq!(Config::from_toml("").unwrap(), Config::default());
    let mut c = Config::default();
    c.allowlist = vec!["00".repeat(20)];
    c.origins = vec!["https://a.example".into()];
    c.udp = Some("127.0.0.1:6969".parse().unwrap());
    c.websocket.max_message_bytes = 1000;
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    assert!(matches!(
        Config::from_toml("no_such_key = 1"),
        Err(ConfigError::Toml(_))
    ));
}

#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:9000\"\nenable_udp = false\n[limits]\nrequests_per_second = 5\n",
    )
    .unwrap();
    let c = args(&[
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:7000",
        "--no-ws",
        "--allow",
        &"ab".repeat(20),
    ])
    .to_config()
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:7000".parse().unwrap());
    assert!(!c.enable_udp && !c.enable_ws && c.enable_http);
    assert_eq!(c.limits.requests_per_second, 5);
    assert_eq!(
        c.allowed_hashes()
            .unwrap()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![InfoHashV1([0xab; 20])]
    );
    let mut bad = c;
    bad.allowlist = vec!["xyz".into()];
    assert!(matches!(
        bad.allowed_hashes(),
        Err(ConfigError::BadInfoHash(_))
    ));
}

#[tokio::test]
async fn one_port_number_for_every_protocol_and_a_private_allowlist() {
    let allowed = InfoHashV1([7; 20]);
    let c = args(&["--listen", "127.0.0.1:0", "--allow", &"07".repeat(20)])
        .to_config()
        .unwrap();
    let tracker = start(&c).await.unwrap();
    let http = tracker.http_addr().unwrap();
    assert_eq!(tracker.ws_addr(), Some(http));
    assert_eq!(tracker.udp_addr().unwrap().port(), http.port());

    let mut seeder = AnnounceRequest::new(allowed, PeerId([1; 20]), 7001);
    seeder.left = 0;
    seeder.event = Event::Started;
    let udp = UdpTracker::bind("127.0.0.1:0".parse().unwrap(), ClientUdpConfig::default())
        .await
        .unwrap();
    timeout(BOUND, udp.announce(tracker.udp_addr().unwrap(), &seeder))
        .await
        .unwrap()
        .unwrap();

    let client = HttpTracker::new(HttpConfig::default()).unwrap();
    let url = format!("http://{http}/announce");
    let mut leecher = AnnounceRequest::new(allowed, PeerId([2; 20]), 7002);
    leecher.left = 1;
    leecher.event = Event::Started;
    let r = timeout(BOUND, client.announce(&url, &leecher))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(r.peers[0].addr, "127.0.0.1:7001".parse().unwrap());

    let other = AnnounceRequest::new(InfoHashV1([8; 20]), PeerId([3; 20]), 7003);
    match timeout(BOUND, client.announce(&url, &other)).await.unwrap() {
        Err(TrackerError::Failure { reason }) => {
            assert!(reason.contains("not allowed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn split_ports_and_disabled_protocols() {
    let c = args(&["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--no-udp"])
        .to_config()
        .unwrap();
    let tracker = start(&c).await.unwrap();
    assert_ne!(tracker.http_addr(), tracker.ws_addr());
    assert!(tracker.udp_addr().is_none());
    assert_eq!(tracker.announce_urls().len(), 2);
    let none = args(&["--no-http", "--no-udp", "--no-ws"])
        .to_config()
        .unwrap();
    assert!(matches!(
        start(&none).await,
        Err(ConfigError::NothingToServe)
    ));
}
