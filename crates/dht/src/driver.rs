//! A tokio driver: one UDP socket per address family running a [`Node`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::ItemError;
use crate::id::NodeId;
use crate::item::{Item, MutableItem};
use crate::node::{Busy, Config, Event, LookupDone, LookupId, Node, Output, PutError, Stats};

/// Settings of a [`Dht`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DhtConfig {
    /// Where to bind the IPv4 socket (`None`: no IPv4).
    pub bind_v4: Option<SocketAddr>,
    /// Where to bind the IPv6 socket (`None`: no IPv6).
    pub bind_v6: Option<SocketAddr>,
    /// The node's settings; its `seed` is replaced by operating-system randomness
    /// unless `keep_seed` is set.
    pub node: Config,
    /// Use `node.seed` as given (tests).
    pub keep_seed: bool,
    /// A table saved by [`Dht::save`] to resume from.
    pub saved_table: Option<Vec<u8>>,
}

impl DhtConfig {
    /// IPv4 only, on `bind`, with default node settings.
    pub fn v4(bind: SocketAddr) -> Self {
        Self {
            bind_v4: Some(bind),
            bind_v6: None,
            node: Config::new([0; 32]),
            keep_seed: false,
            saved_table: None,
        }
    }
}

/// Why a DHT operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The driver task has stopped.
    #[error("the DHT driver has stopped")]
    Closed,
    /// Too many lookups run.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The item breaks BEP 44.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// A socket error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The saved table does not restore.
    #[error(transparent)]
    Restore(#[from] crate::error::RestoreError),
}

impl From<PutError> for DhtError {
    fn from(e: PutError) -> Self {
        match e {
            PutError::Item(e) => Self::Item(e),
            PutError::Busy(b) => Self::Busy(b),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, DhtError>>;

enum Command {
    Bootstrap(Reply<LookupDone>),
    GetPeers(
        NodeId,
        Option<mpsc::Sender<Vec<SocketAddr>>>,
        Reply<LookupDone>,
    ),
    Announce(NodeId, Option<u16>, Reply<LookupDone>),
    FindNode(NodeId, Reply<LookupDone>),
    GetImmutable(NodeId, Reply<LookupDone>),
    PutImmutable(Vec<u8>, Reply<LookupDone>),
    GetMutable([u8; 32], Vec<u8>, Reply<LookupDone>),
    PutMutable(MutableItem, Option<i64>, Reply<LookupDone>),
    Save(oneshot::Sender<Vec<u8>>),
    AddBootstrap(Vec<SocketAddr>),
    Ping(SocketAddr),
    Stats(oneshot::Sender<(Stats, NodeId)>),
}

/// A DHT node on UDP sockets. Cloning gives another handle to the same node; the
/// node stops when every handle is dropped.
#[derive(Clone, Debug)]
pub struct Dht {
    tx: mpsc::Sender<Command>,
    local_v4: Option<SocketAddr>,
    local_v6: Option<SocketAddr>,
    id: NodeId,
}

/// Handle of the driver task, to await its end.
#[derive(Debug)]
pub struct DhtTask(JoinHandle<()>);

impl DhtTask {
    /// Waits until the driver has stopped.
    pub async fn join(self) {
        let _ = self.0.await;
    }
}

impl Dht {
    /// Binds the sockets and starts the driver task on the current runtime.
    ///
    /// # Errors
    /// Binding fails, the saved table is invalid, or no randomness is available.
    pub async fn bind(mut config: DhtConfig) -> Result<(Self, DhtTask), DhtError> {
        if !config.keep_seed {
            getrandom::fill(&mut config.node.seed).map_err(|e| io::Error::other(e.to_string()))?;
        }
        let sock4 = match config.bind_v4 {
            Some(a) => Some(UdpSocket::bind(a).await?),
            None => None,
        };
        let sock6 = match config.bind_v6 {
            Some(a) => Some(UdpSocket::bind(a).await?),
            None => None,
        };
        config.node.ipv4 = sock4.is_some();
        config.node.ipv6 = sock6.is_some();
        let now = Instant::now();
        let node = match &config.saved_table {
            Some(saved) => Node::restore(config.node.clone(), saved, now)?,
            None => Node::new(config.node.clone(), now),
        };
        let local_v4 = sock4.as_ref().map(UdpSocket::local_addr).transpose()?;
        let local_v6 = sock6.as_ref().map(UdpSocket::local_addr).transpose()?;
        let id = node.id();
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(node, sock4, sock6, rx));
        Ok((
            Self {
                tx,
                local_v4,
                local_v6,
                id,
            },
            DhtTask(task),
        ))
    }

    /// The IPv4 socket's address.
    pub fn local_addr_v4(&self) -> Option<SocketAddr> {
        self.local_v4
    }

    /// The IPv6 socket's address.
    pub fn local_addr_v6(&self) -> Option<SocketAddr> {
        self.local_v6
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| DhtError::Closed)?;
        rx.await.map_err(|_| DhtError::Closed)?
    }

    /// Looks up our own id through the bootstrap nodes (and saved contacts).
    ///
    /// # Errors
    /// [`DhtError::Closed`] when the driver has stopped.
    pub async fn bootstrap(&self) -> Result<LookupDone, DhtError> {
        self.call(Command::Bootstrap).await
    }

    /// Adds nodes to bootstrap from (see [`Node::add_bootstrap`]).
    ///
    /// # Errors
    /// [`DhtError::Closed`] when the driver has stopped.
    pub async fn add_bootstrap(&self, addrs: Vec<SocketAddr>) -> Result<(), DhtError> {
        self.tx
            .send(Command::AddBootstrap(addrs))
            .await
            .map_err(|_| DhtError::Closed)
    }

    /// Pings a node at `addr` (a peer's `PORT` message); it joins the table if it answers.
    /// Never waits: when the driver is busy the ping is dropped.
    pub fn ping(&self, addr: SocketAddr) {
        let _ = self.tx.try_send(Command::Ping(addr));
    }

    /// Finds peers of a torrent.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn get_peers(&self, info_hash: NodeId) -> Result<Vec<SocketAddr>, DhtError> {
        Ok(self
            .call(|r| Command::GetPeers(info_hash, None, r))
            .await?
            .peers)
    }

    /// Finds peers of a torrent, sending them to `peers` as they arrive; returns the
    /// lookup's result at the end.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn get_peers_streaming(
        &self,
        info_hash: NodeId,
        peers: mpsc::Sender<Vec<SocketAddr>>,
    ) -> Result<LookupDone, DhtError> {
        self.call(|r| Command::GetPeers(info_hash, Some(peers), r))
            .await
    }

    /// Announces us as a peer of the torrent on `port` (`None`: implied port) and
    /// returns the lookup's result, with the peers found on the way.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn announce(
        &self,
        info_hash: NodeId,
        port: Option<u16>,
    ) -> Result<LookupDone, DhtError> {
        self.call(|r| Command::Announce(info_hash, port, r)).await
    }

    /// The nodes closest to `target`.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn find_node(&self, target: NodeId) -> Result<LookupDone, DhtError> {
        self.call(|r| Command::FindNode(target, r)).await
    }

    /// Gets an immutable item's bencoded value.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn get_immutable(&self, target: NodeId) -> Result<Option<Vec<u8>>, DhtError> {
        let done = self.call(|r| Command::GetImmutable(target, r)).await?;
        Ok(match done.item {
            Some(Item::Immutable(v)) => Some(v),
            _ => None,
        })
    }

    /// Puts an immutable item (bencoded `value`); returns its target and how many
    /// nodes stored it.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn put_immutable(&self, value: Vec<u8>) -> Result<(NodeId, u32), DhtError> {
        let done = self.call(|r| Command::PutImmutable(value, r)).await?;
        Ok((done.target, done.stored))
    }

    /// Gets the newest version of a mutable item.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn get_mutable(
        &self,
        key: [u8; 32],
        salt: &[u8],
    ) -> Result<Option<MutableItem>, DhtError> {
        let salt = salt.to_vec();
        let done = self.call(|r| Command::GetMutable(key, salt, r)).await?;
        Ok(match done.item {
            Some(Item::Mutable(m)) => Some(m),
            _ => None,
        })
    }

    /// Puts a signed mutable item; returns how many nodes stored it.
    ///
    /// # Errors
    /// [`DhtError`].
    pub async fn put_mutable(&self, item: MutableItem, cas: Option<i64>) -> Result<u32, DhtError> {
        Ok(self
            .call(|r| Command::PutMutable(item, cas, r))
            .await?
            .stored)
    }

    /// The routing table as bytes, for [`DhtConfig::saved_table`].
    ///
    /// # Errors
    /// [`DhtError::Closed`].
    pub async fn save(&self) -> Result<Vec<u8>, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Save(tx))
            .await
            .map_err(|_| DhtError::Closed)?;
        rx.await.map_err(|_| DhtError::Closed)
    }

    /// Counters and sizes.
    ///
    /// # Errors
    /// [`DhtError::Closed`].
    pub async fn stats(&self) -> Result<Stats, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Stats(tx))
            .await
            .map_err(|_| DhtError::Closed)?;
        Ok(rx.await.map_err(|_| DhtError::Closed)?.0)
    }
}

struct Waiter {
    done: Reply<LookupDone>,
    peers: Option<mpsc::Sender<Vec<SocketAddr>>>,
}

async fn recv(sock: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn run(
    mut node: Node,
    sock4: Option<UdpSocket>,
    sock6: Option<UdpSocket>,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut waiters: HashMap<LookupId, Waiter> = HashMap::new();
    let mut out = Vec::with_capacity(2048);
    let mut buf4 = vec![0u8; 4096];
    let mut buf6 = vec![0u8; 4096];
    loop {
        let deadline = loop {
            match node.poll_output(Instant::now(), &mut out) {
                Output::Transmit(t) => {
                    let sock = if t.destination.is_ipv4() {
                        &sock4
                    } else {
                        &sock6
                    };
                    if let Some(s) = sock
                        && let Err(e) = s.send_to(&out, t.destination).await
                    {
                        tracing::debug!(to = %t.destination, error = %e, "send failed");
                    }
                }
                Output::Event(Event::Peers { lookup, peers, .. }) => {
                    if let Some(tx) = waiters.get(&lookup).and_then(|w| w.peers.as_ref()) {
                        let _ = tx.try_send(peers);
                    }
                }
                Output::Event(Event::Done(done)) => {
                    if let Some(w) = waiters.remove(&done.id) {
                        let _ = w.done.send(Ok(*done));
                    }
                }
                Output::Timeout(t) => break t,
            }
        };
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
        tokio::select! {
            r = recv(sock4.as_ref(), &mut buf4) => match r {
                Ok((n, from)) => node.handle_datagram(Instant::now(), from, &buf4[..n]),
                Err(e) => tracing::debug!(error = %e, "IPv4 receive failed"),
            },
            r = recv(sock6.as_ref(), &mut buf6) => match r {
                Ok((n, from)) => node.handle_datagram(Instant::now(), from, &buf6[..n]),
                Err(e) => tracing::debug!(error = %e, "IPv6 receive failed"),
            },
            cmd = rx.recv() => match cmd {
                Some(cmd) => command(&mut node, &mut waiters, cmd),
                None => break,
            },
            () = sleep => {}
        }
    }
}

fn command(node: &mut Node, waiters: &mut HashMap<LookupId, Waiter>, cmd: Command) {
    let now = Instant::now();
    let (started, reply, peers): (Result<LookupId, DhtError>, Reply<LookupDone>, _) = match cmd {
        Command::Save(tx) => {
            let _ = tx.send(node.save());
            return;
        }
        Command::Stats(tx) => {
            let _ = tx.send((node.stats(), node.id()));
            return;
        }
        Command::AddBootstrap(addrs) => {
            node.add_bootstrap(&addrs);
            return;
        }
        Command::Ping(addr) => {
            node.ping(now, addr);
            return;
        }
        Command::Bootstrap(r) => (node.bootstrap(now).map_err(Into::into), r, None),
        Command::GetPeers(ih, tx, r) => (node.get_peers(now, ih).map_err(Into::into), r, tx),
        Command::Announce(ih, port, r) => {
            (node.announce(now, ih, port).map_err(Into::into), r, None)
        }
        Command::FindNode(t, r) => (node.find_node(now, t).map_err(Into::into), r, None),
        Command::GetImmutable(t, r) => (node.get_immutable(now, t).map_err(Into::into), r, None),
        Command::PutImmutable(v, r) => (
            node.put_immutable(now, v)
                .map(|(id, _)| id)
                .map_err(Into::into),
            r,
            None,
        ),
        Command::GetMutable(k, salt, r) => {
            (node.get_mutable(now, k, &salt).map_err(Into::into), r, None)
        }
        Command::PutMutable(item, cas, r) => (
            node.put_mutable(now, item, cas).map_err(Into::into),
            r,
            None,
        ),
    };
    match started {
        Ok(id) => {
            waiters.insert(id, Waiter { done: reply, peers });
        }
        Err(e) => {
            let _ = reply.send(Err(e));
        }
    }
}
