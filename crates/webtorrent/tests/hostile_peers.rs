//! Hostile peers against the session engine, over real TCP sockets on 127.0.0.1.
//!
//! Each test plays one or more misbehaving peers from a raw socket, scripted with the
//! wire crate's [`Handshake`], [`Message`] and [`Decoder`], next to well-behaved peers
//! (our own engine). What is checked is what a user relies on: the misbehaving peer is
//! disconnected (or refused), it gets no data it should not get, and the download from
//! the good peers still finishes with the right bytes.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webtorrent::metainfo::Metainfo;
use webtorrent::session::{AddOptions, Client, Torrent};
use webtorrent::storage::{Bitfield, ResumeData};
use webtorrent::types::{BLOCK_SIZE, BlockRef, InfoHashV1, PeerId};
use webtorrent::wire::{Decoder, HANDSHAKE_LEN, Handshake, Message, Reserved, id};

mod common;

/// The torrent's name, so its folder under a download directory.
const NAME: &str = "hostile";
/// The one file of the test torrent, inside [`NAME`].
const FILE: &str = "data.bin";
/// Two blocks per piece, so that a piece can be assembled from more than one request.
const PIECE_LENGTH: u32 = 2 * BLOCK_SIZE;
/// 40 whole pieces and a short last one.
const LEN: usize = 40 * PIECE_LENGTH as usize + 5_000;
/// How long a download may take before the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(45);
/// How long the engine may take to close a connection it should drop at once.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// The engine's handshake timeout (10 s) with a generous margin.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(25);

/// The test torrent's bytes.
fn content() -> Vec<u8> {
    common::data(42, LEN)
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![(FILE, content())]
}

fn metainfo() -> Metainfo {
    common::torrent(NAME, u64::from(PIECE_LENGTH), &files())
}

/// The number of pieces of the test torrent.
fn piece_count() -> u32 {
    u32::try_from(LEN.div_ceil(PIECE_LENGTH as usize)).expect("few pieces")
}

/// The bytes of `piece` in `content`.
fn piece_bytes(content: &[u8], piece: u32) -> &[u8] {
    let start = piece as usize * PIECE_LENGTH as usize;
    &content[start..(start + PIECE_LENGTH as usize).min(content.len())]
}

/// A distinct peer id for fake peer number `n`.
fn fake_id(n: u8) -> PeerId {
    let mut id = *b"-HX0001-hostile-00..";
    id[18] = b'a' + n / 26;
    id[19] = b'a' + n % 26;
    PeerId(id)
}

/// Our fake peers announce the fast extension, as the engine does.
fn handshake(info_hash: InfoHashV1, id: PeerId) -> Handshake {
    Handshake::new(Reserved::NONE.with_fast(true), info_hash, id)
}

/// A frame as the wire carries it: length prefix, message id, payload.
fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len() + 1).expect("small payload");
    let mut out = length.to_be_bytes().to_vec();
    out.push(id);
    out.extend_from_slice(payload);
    out
}

/// Starts a seeder of the test torrent (its data written to a fresh directory).
async fn seeder() -> (TempDir, Client, Torrent) {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), NAME, &files());
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("seeder");
    let torrent = client
        .add(metainfo(), AddOptions::default())
        .await
        .expect("add to seeder");
    assert!(torrent.is_done(), "the seeder's recheck finds every piece");
    (dir, client, torrent)
}

/// Starts a leecher of the test torrent in a fresh directory, with at most
/// `max_requests` blocks in flight per peer, dialing `peers`.
async fn leecher(max_requests: usize, peers: &[SocketAddr]) -> (TempDir, Client, Torrent) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config(dir.path());
    config.max_requests_per_peer = max_requests;
    let client = Client::new(config).await.expect("leecher");
    let mut options = AddOptions::default();
    options.peers.extend_from_slice(peers);
    let torrent = client.add(metainfo(), options).await.expect("add");
    (dir, client, torrent)
}

/// Waits for `torrent` to finish, failing the test after [`LIMIT`].
async fn finish(torrent: &Torrent) {
    tokio::time::timeout(LIMIT, torrent.wait_done())
        .await
        .expect("the download finishes in time");
}

/// Checks the downloaded file under `dir`.
fn assert_downloaded(dir: &Path) {
    let got = std::fs::read(dir.join(NAME).join(FILE)).expect("read the download");
    assert!(got == content(), "the downloaded bytes differ");
}

/// Reads raw bytes until the other side closes the connection, failing the test after
/// `within`. A reset counts as closed.
async fn bytes_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    tokio::time::timeout(within, async {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the engine closes the connection")
}

/// A scripted peer on a raw socket, past the handshake.
struct Fake {
    stream: TcpStream,
    buf: Vec<u8>,
    decoder: Decoder,
}

impl Fake {
    /// Dials `addr` and sends our handshake for `info_hash`; `None` if the engine closes
    /// the connection without answering.
    async fn try_dial(addr: SocketAddr, info_hash: InfoHashV1, id: PeerId) -> Option<Self> {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(&handshake(info_hash, id).to_bytes())
            .await
            .ok()?;
        let mut fake = Self::new(stream);
        let theirs = fake.read_handshake().await?;
        assert_eq!(theirs.info_hash, info_hash, "the engine answers for the torrent");
        Some(fake)
    }

    /// Dials `addr` and exchanges handshakes for `info_hash`.
    async fn dial(addr: SocketAddr, info_hash: InfoHashV1, id: PeerId) -> Self {
        tokio::time::timeout(CLOSE_LIMIT, Self::try_dial(addr, info_hash, id))
            .await
            .expect("the handshake is answered in time")
            .expect("the engine answers our handshake")
    }

    /// Accepts the engine's connection on `listener` and answers its handshake.
    async fn accept(listener: &TcpListener, id: PeerId) -> Self {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut fake = Self::new(stream);
        let theirs = fake.read_handshake().await.expect("the engine's handshake");
        fake.stream
            .write_all(&handshake(theirs.info_hash, id).to_bytes())
            .await
            .expect("send handshake");
        fake
    }

    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            decoder: Decoder::new(),
        }
    }

    /// Reads more bytes into the buffer; `false` once the connection is closed.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn read_handshake(&mut self) -> Option<Handshake> {
        while self.buf.len() < HANDSHAKE_LEN {
            if !self.fill().await {
                return None;
            }
        }
        let (theirs, used) = Handshake::decode(&self.buf)
            .expect("the engine sends a valid handshake")
            .expect("68 bytes are in");
        self.buf.drain(..used);
        Some(theirs)
    }

    /// The engine's next message, or `None` once it closed the connection.
    async fn recv(&mut self) -> Option<Message<'static>> {
        loop {
            match self.decoder.decode(&self.buf) {
                Ok(Some((message, used))) => {
                    let message = message.into_owned();
                    self.buf.drain(..used);
                    return Some(message);
                }
                Ok(None) => {
                    if !self.fill().await {
                        return None;
                    }
                }
                Err(e) => panic!("the engine sent a malformed frame: {e}"),
            }
        }
    }

    /// The engine's messages until it closes the connection, failing the test if that
    /// takes longer than `within`.
    async fn until_closed(&mut self, within: Duration) -> Vec<Message<'static>> {
        tokio::time::timeout(within, async {
            let mut seen = Vec::new();
            while let Some(message) = self.recv().await {
                seen.push(message);
            }
            seen
        })
        .await
        .expect("the engine closes the connection")
    }

    /// Waits for a message `wanted` accepts, failing the test if the connection closes
    /// first or nothing comes within [`CLOSE_LIMIT`].
    async fn wait_for(&mut self, wanted: impl Fn(&Message<'_>) -> bool) -> Message<'static> {
        tokio::time::timeout(CLOSE_LIMIT, async {
            loop {
                let message = self.recv().await.expect("the connection stays open");
                if wanted(&message) {
                    return message;
                }
            }
        })
        .await
        .expect("the message comes in time")
    }

    /// Sends a message. Errors are returned, not fatal: the engine may have closed the
    /// connection already, which is what several tests provoke.
    async fn send(&mut self, message: Message<'_>) -> io::Result<()> {
        self.stream.write_all(&message.to_vec()).await
    }

    /// Sends raw bytes, giving up after [`CLOSE_LIMIT`] (a peer that stops reading
    /// must not hang the test; the caller checks what the engine did).
    async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = tokio::time::timeout(CLOSE_LIMIT, self.stream.write_all(bytes)).await;
    }
}

/// How a fake seeder answers requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// With the right bytes.
    Honest,
    /// With every byte flipped: every piece it sends fails verification.
    Corrupt,
    /// Never.
    Stall,
    /// With the right bytes for pieces below this one; for the others, the first block
    /// only (so those pieces stay incomplete).
    HalfServed(u32),
}

/// Plays a seeder on `fake`: has every piece, unchokes, sends `extra` (raw bytes),
/// answers requests as `policy` says and reports each request on `requests`. Returns
/// the requests it saw once the engine closes the connection.
fn play_seeder(
    mut fake: Fake,
    policy: Policy,
    extra: Vec<u8>,
    requests: mpsc::UnboundedSender<BlockRef>,
) -> JoinHandle<Vec<BlockRef>> {
    let content = content();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut hello = Message::HaveAll.to_vec();
        hello.extend(Message::Unchoke.to_vec());
        hello.extend(extra);
        if fake.stream.write_all(&hello).await.is_err() {
            return seen;
        }
        while let Some(message) = fake.recv().await {
            let Message::Request(block) = message else {
                continue;
            };
            seen.push(block);
            let _ = requests.send(block);
            let piece = piece_bytes(&content, block.piece);
            // The engine only asks for blocks inside the torrent.
            assert!(block.length > 0 && block.end() <= piece.len() as u64, "{block:?}");
            let start = block.offset as usize;
            let mut data = piece[start..start + block.length as usize].to_vec();
            let answer = match policy {
                Policy::Honest => true,
                Policy::Corrupt => {
                    data.iter_mut().for_each(|b| *b = !*b);
                    true
                }
                Policy::Stall => false,
                Policy::HalfServed(first_unserved) => {
                    block.piece < first_unserved || block.offset == 0
                }
            };
            if answer {
                let piece = Message::Piece {
                    piece: block.piece,
                    offset: block.offset,
                    data: Cow::Owned(data),
                };
                if fake.send(piece).await.is_err() {
                    break;
                }
            }
        }
        seen
    })
}

/// Peers that break the framing or the piece-set rules are dropped, one by one, while a
/// good seeder next to them serves the whole download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_streams_are_dropped_without_stalling_the_download() {
    let (_seed_dir, seeder, _seeding) = seeder().await;
    let (leech_dir, leecher, download) = leecher(8, &[]).await;
    let info_hash = download.info_hash();
    let pieces = piece_count();
    let bitfield_len = Bitfield::byte_len(pieces);

    // Each hostile peer is connected before the download starts and misbehaves while it
    // runs.
    let mut hostile: Vec<(&str, Fake, Vec<u8>)> = Vec::new();
    // Frames are built by hand: the codec would refuse to encode most of them.
    let mut oversize = 0x7fff_ffffu32.to_be_bytes().to_vec();
    oversize.push(id::PIECE);
    oversize.extend(std::iter::repeat_n(0xa5, 256 * 1024));
    let mut unknown_huge = 0x0100_0000u32.to_be_bytes().to_vec();
    unknown_huge.push(0x63);
    unknown_huge.extend(std::iter::repeat_n(0x5a, 64 * 1024));
    let full = Bitfield::full(pieces);
    let mut long_bitfield = full.as_bytes().to_vec();
    long_bitfield.push(0xff);
    let short_bitfield = &full.as_bytes()[..bitfield_len - 1];
    // Every piece, and the spare bits after the last one too (BEP 3: drop the peer).
    let spare_bits = vec![0xff; bitfield_len];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversize frame", oversize),
        ("unknown id with a huge length", unknown_huge),
        ("bitfield one byte too long", frame(id::BITFIELD, &long_bitfield)),
        ("bitfield one byte too short", frame(id::BITFIELD, short_bitfield)),
        ("bitfield with spare bits set", frame(id::BITFIELD, &spare_bits)),
        ("have past the last piece", frame(id::HAVE, &pieces.to_be_bytes())),
    ];
    for (n, (what, bytes)) in cases.into_iter().enumerate() {
        let n = u8::try_from(n).expect("few cases");
        let mut fake = Fake::dial(leecher.local_addr(), info_hash, fake_id(n)).await;
        // The engine's piece set comes first: it has nothing yet.
        assert_eq!(fake.recv().await, Some(Message::HaveNone), "{what}");
        hostile.push((what, fake, bytes));
    }
    // A small message of an unknown id (after the piece set, which must come first) is
    // ignored (BEP 3): that peer stays and serves.
    let polite = Fake::dial(leecher.local_addr(), info_hash, fake_id(100)).await;
    let (requests, mut polite_requests) = mpsc::unbounded_channel();
    let polite = play_seeder(polite, Policy::Honest, frame(0x63, b"hello"), requests);

    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    for (_, fake, bytes) in &mut hostile {
        // Writes may fail half-way: the engine is allowed to close as soon as it sees
        // the length prefix.
        fake.send_raw(bytes).await;
    }
    for (what, mut fake, _) in hostile {
        let seen = fake.until_closed(CLOSE_LIMIT).await;
        assert!(
            seen.iter().all(|m| !matches!(m, Message::Piece { .. })),
            "{what}: {seen:?}"
        );
    }
    finish(&download).await;
    assert!(
        polite_requests.try_recv().is_ok(),
        "the peer that sent an unknown message stayed connected and was asked for blocks"
    );
    assert_eq!(download.stats().downloaded, LEN as u64);
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    tokio::time::timeout(CLOSE_LIMIT, polite)
        .await
        .expect("closed on shutdown")
        .expect("fake peer task");
    assert_downloaded(leech_dir.path());
}
