//! Applications' own BEP 10 extensions on the client's connections, as JS WebTorrent's
//! `wire.use()` gives them.
//!
//! An application registers an [`ExtensionFactory`] in [`ClientConfig::extensions`]
//! (`super::ClientConfig`). Every peer connection of every torrent calls it once with the
//! connection's [`PeerInfo`]; the [`Extension`] it returns is announced in our extension
//! handshake and then hears the peer's messages for it. What it queues is sent after each
//! message from the peer, and whenever it calls [`ExtensionWaker::wake`] (from any task or
//! thread). It is dropped when the connection ends. An extension whose name another one
//! already uses on the connection (`ut_metadata`, `ut_pex`, `lt_donthave` or an earlier
//! factory's) is left out.
//!
//! The extension talks to the rest of the application through what it holds (channels,
//! shared state); see `examples/extension.rs` of this crate.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;
use webtorrent_extensions::Extension;
use webtorrent_types::{InfoHashV1, PeerId};

/// What an [`ExtensionFactory`] calls.
type Make = dyn Fn(&PeerInfo) -> Option<Box<dyn Extension>> + Send + Sync;

/// Makes an application's extension for a peer connection, or `None` to leave that
/// connection without it.
#[derive(Clone)]
pub struct ExtensionFactory(Arc<Make>);

impl ExtensionFactory {
    /// A factory calling `make` for each connection.
    pub fn new(
        make: impl Fn(&PeerInfo) -> Option<Box<dyn Extension>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(make))
    }

    pub(crate) fn make(&self, peer: &PeerInfo) -> Option<Box<dyn Extension>> {
        (self.0)(peer)
    }
}

impl fmt::Debug for ExtensionFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExtensionFactory")
    }
}

/// The connection an extension is made for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The torrent's wire info-hash.
    pub info_hash: InfoHashV1,
    /// Whether the torrent is private (BEP 27).
    pub private: bool,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The peer's id, from its handshake.
    pub peer_id: PeerId,
    /// Wakes the connection to send what the extension queued.
    pub waker: ExtensionWaker,
}

/// Tells a connection that its application extension has something to send.
#[derive(Debug, Clone, Default)]
pub struct ExtensionWaker(Arc<Notify>);

impl ExtensionWaker {
    /// The connection polls its extensions soon (a wake before the connection waits is not
    /// lost).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.0.notified().await;
    }
}
