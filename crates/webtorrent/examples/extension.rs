//! An application's own BEP 10 extension on the client's connections, as JS WebTorrent's
//! `wire.use()` does it: two clients on 127.0.0.1 greet each other over `x_greeting` when
//! a connection opens, and one of them sends a second message later, from outside the
//! connection, through the extension's waker.
//!
//! Run with `cargo run -p webtorrent --example extension`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use webtorrent::extensions::{ExtHandshake, Extension, ExtensionError};
use webtorrent::metainfo::{MemoryFile, TorrentBuilder};
use webtorrent::session::{
    AddOptions, Client, ClientConfig, ExtensionFactory, ExtensionWaker, PeerInfo,
};

/// What a connection's `x_greeting` will send.
type Outbox = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// One connection's `x_greeting`: what to send, and where received greetings go.
struct Greeting {
    me: &'static str,
    outbox: Outbox,
    received: mpsc::UnboundedSender<String>,
}

impl Extension for Greeting {
    fn name(&self) -> &str {
        "x_greeting"
    }

    fn on_handshake(&mut self, _peer: &ExtHandshake) {
        // The peer speaks x_greeting too.
        let hello = format!("hello from {}", self.me).into_bytes();
        self.outbox.lock().expect("outbox").push_back(hello);
    }

    fn on_message(&mut self, payload: &[u8]) -> Result<(), ExtensionError> {
        let text = std::str::from_utf8(payload).map_err(|_| ExtensionError::new("not UTF-8"))?;
        let _ = self.received.send(text.to_owned());
        Ok(())
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.lock().expect("outbox").pop_front()
    }
}

/// A client whose connections all speak `x_greeting`; their outboxes and wakers are kept
/// so that the application can send later.
fn config(
    dir: &std::path::Path,
    me: &'static str,
) -> (
    ClientConfig,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedReceiver<(Outbox, ExtensionWaker)>,
) {
    let (received_tx, received) = mpsc::unbounded_channel();
    let (conn_tx, conns) = mpsc::unbounded_channel();
    let mut config = ClientConfig::new(dir);
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.lsd = false;
    config
        .extensions
        .push(ExtensionFactory::new(move |peer: &PeerInfo| {
            let outbox = Outbox::default();
            let _ = conn_tx.send((Arc::clone(&outbox), peer.waker.clone()));
            Some(Box::new(Greeting {
                me,
                outbox,
                received: received_tx.clone(),
            }) as Box<dyn Extension>)
        }));
    (config, received, conns)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let torrent = TorrentBuilder::from_memory(
        "greetings",
        vec![MemoryFile::new("a.txt", b"some shared bytes".to_vec())],
    )
    .build()?;
    let seed_dir = tempfile::tempdir()?;
    std::fs::create_dir_all(seed_dir.path().join("greetings"))?;
    std::fs::write(
        seed_dir.path().join("greetings/a.txt"),
        b"some shared bytes",
    )?;
    let leech_dir = tempfile::tempdir()?;

    let (config_a, mut heard_by_a, _) = config(seed_dir.path(), "alice");
    let (config_b, mut heard_by_b, mut conns_b) = config(leech_dir.path(), "bob");
    let alice = Client::new(config_a).await?;
    let bob = Client::new(config_b).await?;
    alice.add(torrent.clone(), AddOptions::default()).await?;
    let mut options = AddOptions::default();
    options.peers.push(alice.local_addr());
    bob.add(torrent, options).await?;

    let wait = Duration::from_secs(10);
    println!(
        "alice heard: {}",
        tokio::time::timeout(wait, heard_by_a.recv())
            .await?
            .unwrap_or_default()
    );
    println!(
        "bob heard: {}",
        tokio::time::timeout(wait, heard_by_b.recv())
            .await?
            .unwrap_or_default()
    );

    // Later, from the application: queue a message on Bob's connection and wake it.
    let (outbox, waker) = conns_b.recv().await.ok_or("no connection")?;
    outbox
        .lock()
        .map_err(|_| "outbox")?
        .push_back(b"see you, alice".to_vec());
    waker.wake();
    println!(
        "alice heard: {}",
        tokio::time::timeout(wait, heard_by_a.recv())
            .await?
            .unwrap_or_default()
    );

    bob.shutdown().await?;
    alice.shutdown().await?;
    Ok(())
}
