//! Applications' own BEP 10 extensions on the engine's connections, between two of our
//! clients on 127.0.0.1.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use webtorrent::extensions::{ExtHandshake, Extension, ExtensionError};
use webtorrent::session::{AddOptions, Client, ExtensionFactory, ExtensionWaker, PeerInfo};

mod common;

const LIMIT: Duration = Duration::from_secs(30);

type Outbox = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// Echoes what it is told to send; reports what it hears, and the peer's `v`.
struct Talk {
    name: &'static str,
    outbox: Outbox,
    heard: mpsc::UnboundedSender<Vec<u8>>,
    greeting: Option<Vec<u8>>,
}

impl Extension for Talk {
    fn name(&self) -> &str {
        self.name
    }

    fn on_handshake(&mut self, _peer: &ExtHandshake) {
        if let Some(g) = self.greeting.take() {
            self.outbox.lock().expect("outbox").push_back(g);
        }
    }

    fn on_message(&mut self, payload: &[u8]) -> Result<(), ExtensionError> {
        if payload.is_empty() {
            return Err(ExtensionError::new("empty"));
        }
        let _ = self.heard.send(payload.to_vec());
        Ok(())
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.lock().expect("outbox").pop_front()
    }
}

struct Side {
    heard: mpsc::UnboundedReceiver<Vec<u8>>,
    conns: mpsc::UnboundedReceiver<(PeerInfo, Outbox, ExtensionWaker)>,
}

fn factory(name: &'static str, greeting: &'static [u8]) -> (ExtensionFactory, Side) {
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let (conn_tx, conns) = mpsc::unbounded_channel();
    let factory = ExtensionFactory::new(move |peer: &PeerInfo| {
        let outbox = Outbox::default();
        let _ = conn_tx.send((peer.clone(), Arc::clone(&outbox), peer.waker.clone()));
        Some(Box::new(Talk {
            name,
            outbox,
            heard: heard_tx.clone(),
            greeting: Some(greeting.to_vec()),
        }) as Box<dyn Extension>)
    });
    (factory, Side { heard, conns })
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("in time")
        .expect("channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ends_talk_and_the_application_sends_later() {
    let files = [("a.bin", common::data(5, 100_000))];
    let metainfo = common::torrent("talk", 32 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "talk", &files);
    let leech_dir = tempfile::tempdir().expect("tempdir");

    let (fa, mut a) = factory("x_talk", b"hi from a");
    let (fb, mut b) = factory("x_talk", b"hi from b");
    let mut config = common::config(seed_dir.path());
    config.extensions.push(fa);
    let seeder = Client::new(config).await.expect("seeder");
    let mut config = common::config(leech_dir.path());
    config.extensions.push(fb);
    let leecher = Client::new(config).await.expect("leecher");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let download = leecher.add(metainfo.clone(), options).await.expect("add");

    assert_eq!(next(&mut a.heard).await, b"hi from b");
    assert_eq!(next(&mut b.heard).await, b"hi from a");
    let (peer, outbox, waker) = next(&mut b.conns).await;
    assert_eq!(peer.info_hash, metainfo.info_hashes().wire());
    assert_eq!(peer.addr, seeder.local_addr());
    assert_eq!(peer.peer_id, seeder.peer_id());
    assert!(!peer.private);
    // From outside the connection: queue, wake, and it goes out.
    outbox.lock().expect("outbox").push_back(b"later".to_vec());
    waker.wake();
    assert_eq!(next(&mut a.heard).await, b"later");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_taking_a_builtin_name_is_left_out() {
    let files = [("a.bin", common::data(6, 100_000))];
    let metainfo = common::torrent("clash", 32 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "clash", &files);
    let leech_dir = tempfile::tempdir().expect("tempdir");

    let (fa, mut a) = factory("ut_metadata", b"not metadata");
    let mut config = common::config(seed_dir.path());
    config.extensions.push(fa);
    let seeder = Client::new(config).await.expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");
    // The leecher starts from a magnet: the seeder's real ut_metadata must serve it.
    let magnet = common::magnet(&metainfo, seeder.local_addr());
    let leecher = common::client(leech_dir.path()).await;
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    // The factory ran, but its extension never took ut_metadata's place.
    let _ = next(&mut a.conns).await;
    assert!(a.heard.try_recv().is_err());
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}
