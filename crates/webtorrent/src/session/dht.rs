//! The DHT (BEP 5): the client announces its public torrents and dials the peers the
//! DHT names for them. Private torrents (BEP 27) are never added. The routing table is
//! saved in the download directory every few minutes and on shutdown, and the next
//! session bootstraps from it as well as from the configured nodes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
/// How often the routing table is saved.
const SAVE_EVERY: Duration = Duration::from_secs(5 * 60);
/// The routing table's file name in the download directory.
pub(super) const TABLE_FILE: &str = ".dht-table";

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
    table: PathBuf,
}

impl DhtDiscovery {
    /// Binds the DHT's UDP socket on the listen address (its port if free, another one
    /// otherwise) and starts bootstrapping from `bootstrap` (`host:port` names, resolved
    /// in the background) and from the table saved in `table` by an earlier session (a
    /// missing, truncated or corrupt file is ignored). `None` (one `info` line) when no
    /// socket can be bound.
    pub(super) async fn start(
        shared: Weak<Shared>,
        listen: SocketAddr,
        bootstrap: Vec<String>,
        table: PathBuf,
    ) -> Option<Self> {
        let saved = load_table(table.clone()).await;
        let restored = saved.is_some();
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
            c.saved_table.clone_from(&saved);
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
        tokio::spawn(run(
            dht.clone(),
            bootstrap,
            restored,
            table.clone(),
            rx,
            shared,
        ));
        Some(Self {
            orders,
            dht,
            port,
            table,
        })
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

    /// Saves the routing table (on shutdown); failures are logged.
    pub(super) async fn save(&self) {
        save_table(&self.dht, self.table.clone()).await;
    }
}

/// Whether `bytes` are a routing table saved by [`Dht::save`].
fn is_table(bytes: &[u8]) -> bool {
    let config = webtorrent_dht::Config::new([0; 32]);
    webtorrent_dht::Node::restore(config, bytes, std::time::Instant::now()).is_ok()
}

/// Reads the saved routing table; `None` (a `debug` line) when it is missing or does
/// not restore.
async fn load_table(path: PathBuf) -> Option<Vec<u8>> {
    let read = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path);
        (path, bytes)
    })
    .await;
    let Ok((path, read)) = read else {
        return None;
    };
    match read {
        Ok(bytes) if is_table(&bytes) => Some(bytes),
        Ok(_) => {
            tracing::debug!(path = %path.display(), "the saved DHT table is corrupt: ignored");
            None
        }
        Err(e) => {
            tracing::debug!(path = %path.display(), "no saved DHT table: {e}");
            None
        }
    }
}

/// Saves the routing table to `path` (through a temporary file, so that a crash
/// never leaves half a table); failures are logged.
async fn save_table(dht: &Dht, path: PathBuf) {
    let Ok(bytes) = dht.save().await else {
        return;
    };
    let written = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
    match written {
        Ok(Ok(())) => tracing::debug!("DHT table saved"),
        Ok(Err(e)) => tracing::debug!("cannot save the DHT table: {e}"),
        Err(_) => {}
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
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
    restored: bool,
    table: PathBuf,
    mut orders: mpsc::UnboundedReceiver<Order>,
    shared: Weak<Shared>,
) {
    // Announces report when they want to run again; the task ends with `orders`.
    let (again, mut reports) = mpsc::unbounded_channel();
    let addrs = resolve(&bootstrap).await;
    if !addrs.is_empty() || restored {
        if !addrs.is_empty() {
            let _ = dht.add_bootstrap(addrs).await;
        }
        match dht.bootstrap().await {
            Ok(done) => tracing::debug!(responses = done.responses, "DHT bootstrapped"),
            Err(e) => tracing::debug!("DHT bootstrap: {e}"),
        }
    }
    let Some(port) = shared.upgrade().map(|s| s.port) else {
        return;
    };
    let mut due: HashMap<InfoHashV1, Instant> = HashMap::new();
    let mut save = tokio::time::interval_at(Instant::now() + SAVE_EVERY, SAVE_EVERY);
    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = due.values().min().copied();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = save.tick() => save_table(&dht, table.clone()).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_corrupt_or_truncated_table_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(TABLE_FILE);
        assert_eq!(load_table(path.clone()).await, None, "missing");
        for garbage in [&b""[..], b"garbage", &[0xff; 4096], b"d1:ei0ee"] {
            std::fs::write(&path, garbage).expect("write");
            assert_eq!(load_table(path.clone()).await, None, "{garbage:?}");
        }
        // A real table, then the same table cut short or with a byte too many.
        let node = webtorrent_dht::Node::new(
            webtorrent_dht::Config::new([7; 32]),
            std::time::Instant::now(),
        );
        let good = node.save();
        std::fs::write(&path, &good).expect("write");
        assert_eq!(load_table(path.clone()).await, Some(good.clone()));
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).expect("write");
            assert_eq!(load_table(path.clone()).await, None, "cut at {cut}");
        }
        let mut long = good;
        long.push(4);
        std::fs::write(&path, &long).expect("write");
        assert_eq!(load_table(path.clone()).await, None);
    }
}
