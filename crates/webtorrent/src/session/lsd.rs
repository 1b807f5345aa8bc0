//! Local service discovery (BEP 14): the client announces its torrents on the local
//! network's multicast group and dials the peers that announce the same torrents.

use std::net::Ipv4Addr;
use std::sync::Weak;
use std::time::Duration;

use tokio::sync::mpsc;
use webtorrent_lsd::{Driver, DriverConfig};
use webtorrent_types::InfoHashV1;

use super::Shared;
use super::torrent::Command;

/// What the discovery task is told.
#[derive(Debug)]
enum Order {
    Add(InfoHashV1),
    Remove(InfoHashV1),
}

/// The client's discovery task; it ends when this is dropped.
#[derive(Debug)]
pub(super) struct LocalDiscovery {
    orders: mpsc::UnboundedSender<Order>,
}

impl LocalDiscovery {
    /// Joins the BEP 14 IPv4 group on `interface`, announcing our listen `port`. `None` (one `info` line) when
    /// the group cannot be joined, e.g. on a host without a multicast route.
    pub(super) fn start(shared: Weak<Shared>, port: u16, interface: Ipv4Addr) -> Option<Self> {
        // Any 32 bits will do: it only tells our own announces apart.
        let cookie = crate::rng::SplitMix64::seeded().next_u64() as u32;
        let config = DriverConfig::ipv4(port, cookie, interface);
        let driver = match Driver::bind(config) {
            Ok(driver) => driver,
            Err(e) => {
                tracing::info!("local service discovery is off: {e}");
                return None;
            }
        };
        let (orders, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(driver, rx, shared));
        Some(Self { orders })
    }

    /// Announces a torrent (never a private one: the caller checks).
    pub(super) fn add(&self, info_hash: InfoHashV1) {
        let _ = self.orders.send(Order::Add(info_hash));
    }

    /// Stops announcing a torrent.
    pub(super) fn remove(&self, info_hash: InfoHashV1) {
        let _ = self.orders.send(Order::Remove(info_hash));
    }
}

async fn run(mut driver: Driver, mut orders: mpsc::UnboundedReceiver<Order>, shared: Weak<Shared>) {
    let mut warned = false;
    loop {
        tokio::select! {
            order = orders.recv() => match order {
                Some(Order::Add(info_hash)) => {
                    driver.add_torrent(info_hash);
                }
                Some(Order::Remove(info_hash)) => {
                    driver.remove_torrent(&info_hash);
                }
                None => return,
            },
            found = driver.next_peer() => match found {
                Ok((info_hash, addr)) => {
                    let Some(shared) = shared.upgrade() else { return };
                    if let Some(torrent) = shared.torrent(&info_hash) {
                        tracing::debug!(%addr, %info_hash, "peer found on the local network");
                        // A full queue drops it; the peer announces again in a few minutes.
                        let _ = torrent.try_send(Command::AddPeers {
                            peers: vec![addr],
                            sticky: false,
                        });
                    }
                }
                Err(e) => {
                    if !warned {
                        tracing::info!("local service discovery: {e}");
                        warned = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
}
