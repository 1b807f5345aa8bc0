//! The DHT (BEP 5): the client announces its public torrents and dials the peers the
//! DHT names for them. Private torrents (BEP 27) are never added.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Weak;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use webtorrent_dht::{Dht, DhtConfig, NodeId};
use webtorrent_types::InfoHashV1;

use super::Shared;
use super::torrent::Command;

/// How often a torrent is announced again.
const REANNOUNCE: Duration = Duration::from_secs(15 * 60);
/// How soon an announce that reached no node is tried again.
const RETRY: Duration = Duration::from_secs(30);
/// How long resolving the bootstrap names may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Order {
    Add(InfoHashV1),
    Remove(InfoHashV1),
    Again(InfoHashV1, Duration),
}

/// The client's DHT node and its announce task; both end when this is dropped.
#[derive(Debug)]
pub(super) struct DhtDiscovery {
    orders: mpsc::UnboundedSender<Order>,
    dht: Dht,
    port: u16,
}

impl DhtDiscovery {
    /// Binds the DHT's UDP socket on the listen address (its port if free, another one
    /// otherwise) and starts bootstrapping from `bootstrap` (`host:port` names, resolved
    /// in the background). `None` (one `info` line) when no socket can be bound.
    pub(super) async fn start(
        shared: Weak<Shared>,
        listen: SocketAddr,
        bootstrap: Vec<String>,
    ) -> Option<Self> {
        let config = |addr: SocketAddr| {
            let mut c = if addr.is_ipv4() {
                DhtConfig::v4(addr)
            } else {
                let mut c = DhtConfig::v4(addr);
                c.bind_v4 = None;
                c.bind_v6 = Some(addr);
                c
            };
            c.node.version = Some(b"WR01".to_vec());
            c
        };
        let bound = match Dht::bind(config(listen)).await {
            Ok(b) => Ok(b),
            Err(_) => Dht::bind(config(SocketAddr::new(listen.ip(), 0))).await,
        };
        let (dht, task) = match bound {
            Ok(b) => b,
            Err(e) => {
                tracing::info!("the DHT is off: {e}");
                return None;
            }
        };
        // The handles keep the node alive; its task needs no joining.
        drop(task);
        let port = dht
            .local_addr_v4()
            .or(dht.local_addr_v6())
            .map_or(0, |a| a.port());
        let (orders, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(dht.clone(), bootstrap, rx, shared));
        Some(Self { orders, dht, port })
    }

    /// Announces a torrent and looks for its peers (never a private one: the caller
    /// checks).
    pub(super) fn add(&self, info_hash: InfoHashV1) {
        let _ = self.orders.send(Order::Add(info_hash));
    }

    /// Stops announcing a torrent.
    pub(super) fn remove(&self, info_hash: InfoHashV1) {
        let _ = self.orders.send(Order::Remove(info_hash));
    }

    /// The DHT node, for `PORT` messages and applications.
    pub(super) fn dht(&self) -> &Dht {
        &self.dht
    }

    /// The DHT's UDP port, sent to peers in `PORT` messages.
    pub(super) fn port(&self) -> u16 {
        self.port
    }
}

async fn resolve(names: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in names {
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(name.as_str())).await {
            Ok(Ok(addrs)) => out.extend(addrs),
            Ok(Err(e)) => tracing::info!("DHT bootstrap node {name}: {e}"),
            Err(_) => tracing::info!("DHT bootstrap node {name}: no answer from the resolver"),
        }
    }
    out
}

async fn run(
    dht: Dht,
    bootstrap: Vec<String>,
    mut orders: mpsc::UnboundedReceiver<Order>,
    shared: Weak<Shared>,
) {
    // Announces report when they want to run again; the task ends with `orders`.
    let (again, mut reports) = mpsc::unbounded_channel();
    let addrs = resolve(&bootstrap).await;
    if !addrs.is_empty() {
        let _ = dht.add_bootstrap(addrs).await;
        match dht.bootstrap().await {
            Ok(done) => tracing::debug!(responses = done.responses, "DHT bootstrapped"),
            Err(e) => tracing::debug!("DHT bootstrap: {e}"),
        }
    }
    let Some(port) = shared.upgrade().map(|s| s.port) else {
        return;
    };
    let mut due: HashMap<InfoHashV1, Instant> = HashMap::new();
    loop {
        let next = due.values().min().copied();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(report) = reports.recv() => {
                if let Order::Again(info_hash, after) = report
                    && let Some(at) = due.get_mut(&info_hash)
                {
                    *at = Instant::now() + after;
                }
            }
            order = orders.recv() => match order {
                Some(Order::Add(info_hash)) => {
                    due.insert(info_hash, Instant::now());
                }
                Some(Order::Remove(info_hash)) => {
                    due.remove(&info_hash);
                }
                Some(Order::Again(..)) => {}
                None => return,
            },
            () = sleep => {
                let now = Instant::now();
                let ready: Vec<InfoHashV1> =
                    due.iter().filter(|(_, at)| **at <= now).map(|(ih, _)| *ih).collect();
                for info_hash in ready {
                    // Not due again until the announce reports back.
                    due.insert(info_hash, now + REANNOUNCE * 2);
                    tokio::spawn(announce(dht.clone(), info_hash, port, again.clone(), shared.clone()));
                }
            }
        }
    }
}

/// One announce: a `get_peers` lookup whose peers go to the torrent, then
/// `announce_peer` to the closest nodes.
async fn announce(
    dht: Dht,
    info_hash: InfoHashV1,
    port: u16,
    again: mpsc::UnboundedSender<Order>,
    shared: Weak<Shared>,
) {
    let done = match dht.announce(NodeId::from(info_hash), Some(port)).await {
        Ok(done) => done,
        Err(e) => {
            tracing::debug!(%info_hash, "DHT announce: {e}");
            let _ = again.send(Order::Again(info_hash, RETRY));
            return;
        }
    };
    tracing::debug!(%info_hash, peers = done.peers.len(), stored = done.stored, "DHT announce");
    let after = if done.responses == 0 {
        RETRY
    } else {
        REANNOUNCE
    };
    let _ = again.send(Order::Again(info_hash, after));
    if done.peers.is_empty() {
        return;
    }
    let Some(shared) = shared.upgrade() else {
        return;
    };
    if let Some(torrent) = shared.torrent(&info_hash) {
        // A full queue drops them; the next announce finds them again.
        let _ = torrent.try_send(Command::AddPeers {
            peers: done.peers,
            sticky: false,
        });
    }
}
