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
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webtorrent::metainfo::Metainfo;
use webtorrent::session::{AddOptions, Client, Torrent, TorrentEvent};
use webtorrent::storage::{Bitfield, ResumeData};
use webtorrent::types::{BLOCK_SIZE, BlockRef, InfoHashV1, PeerId};
use webtorrent::wire::{Decoder, HANDSHAKE_LEN, Handshake, HashRequest, Message, Reserved, id};

mod common;

/// The torrent's name, so its folder under a download directory.
const NAME: &str = "hostile";
/// The one file of the test torrent, inside [`NAME`].
const FILE: &str = "data.bin";
/// 80 whole blocks and a short last piece.
const LEN: usize = 80 * BLOCK_SIZE as usize + 5_000;
/// How long a download may take before the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(45);
/// How long the engine may take to close a connection it should drop at once.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// How long an interested peer may wait for the seeder's choker to unchoke it.
const UNCHOKE_LIMIT: Duration = Duration::from_secs(30);
/// The engine's handshake timeout (10 s) with a generous margin.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(25);

/// The test torrent's bytes.
fn content() -> Vec<u8> {
    common::data(42, LEN)
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![(FILE, content())]
}

/// How the test torrent (its [`LEN`] bytes in one file) is cut into pieces.
#[derive(Debug, Clone, Copy)]
struct Shape {
    piece_length: u32,
}

/// Two blocks per piece, so that a piece can be assembled from more than one request.
const TWO_BLOCKS: Shape = Shape {
    piece_length: 2 * BLOCK_SIZE,
};

/// One block per piece: every piece comes whole from one peer.
const ONE_BLOCK: Shape = Shape {
    piece_length: BLOCK_SIZE,
};

impl Shape {
    fn metainfo(self) -> Metainfo {
        common::torrent(NAME, u64::from(self.piece_length), &files())
    }

    /// The number of pieces.
    fn pieces(self) -> u32 {
        u32::try_from(LEN.div_ceil(self.piece_length as usize)).expect("few pieces")
    }

    /// Where `piece` starts in the content.
    fn start(self, piece: u32) -> usize {
        piece as usize * self.piece_length as usize
    }

    /// The bytes of `piece` in `content`.
    fn piece(self, content: &[u8], piece: u32) -> &[u8] {
        let start = self.start(piece);
        &content[start..(start + self.piece_length as usize).min(content.len())]
    }
}

/// A distinct peer id for fake peer number `n`.
fn fake_id(n: u8) -> PeerId {
    let mut id = *b"-HX0001-hostile-00..";
    id[18] = b'a' + n / 26;
    id[19] = b'a' + n % 26;
    PeerId(id)
}

/// Whether `message` is a piece set (bitfield, have all, have none).
fn is_piece_set(message: &Message<'_>) -> bool {
    matches!(
        message,
        Message::Bitfield(_) | Message::HaveAll | Message::HaveNone
    )
}

/// Our fake peers announce the fast extension, as the engine does.
fn handshake(info_hash: InfoHashV1, peer: PeerId) -> Handshake {
    Handshake::new(Reserved::NONE.with_fast(true), info_hash, peer)
}

/// A frame as the wire carries it: length prefix, message id, payload.
fn frame(message_id: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len() + 1).expect("small payload");
    let mut out = length.to_be_bytes().to_vec();
    out.push(message_id);
    out.extend_from_slice(payload);
    out
}

/// Starts a seeder of the test torrent (its data written to a fresh directory).
async fn seeder(shape: Shape) -> (TempDir, Client, Torrent) {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), NAME, &files());
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("seeder");
    let torrent = client
        .add(shape.metainfo(), AddOptions::default())
        .await
        .expect("add to seeder");
    assert!(torrent.is_done(), "the seeder's recheck finds every piece");
    (dir, client, torrent)
}

/// Starts a leecher of the test torrent in a fresh directory, with at most
/// `max_requests` blocks in flight per peer, dialing `peers`.
async fn leecher(
    shape: Shape,
    max_requests: usize,
    peers: &[SocketAddr],
) -> (TempDir, Client, Torrent) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config(dir.path());
    config.max_requests_per_peer = max_requests;
    let client = Client::new(config).await.expect("leecher");
    let mut options = AddOptions::default();
    options.peers.extend_from_slice(peers);
    let torrent = client.add(shape.metainfo(), options).await.expect("add");
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
    /// the connection without answering. Fails the test if it does neither within
    /// [`CLOSE_LIMIT`].
    async fn try_dial(addr: SocketAddr, info_hash: InfoHashV1, peer: PeerId) -> Option<Self> {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(&handshake(info_hash, peer).to_bytes())
                .await
                .ok()?;
            let mut fake = Self::new(stream);
            let theirs = fake.read_handshake().await?;
            assert_eq!(
                theirs.info_hash, info_hash,
                "the engine answers for the torrent"
            );
            Some(fake)
        };
        tokio::time::timeout(CLOSE_LIMIT, exchange)
            .await
            .expect("the engine answers or closes in time")
    }

    /// Dials `addr` and exchanges handshakes for `info_hash`.
    async fn dial(addr: SocketAddr, info_hash: InfoHashV1, peer: PeerId) -> Self {
        Self::try_dial(addr, info_hash, peer)
            .await
            .expect("the engine answers our handshake")
    }

    /// Accepts the engine's connection on `listener` and answers its handshake, failing
    /// the test if that does not happen within [`CLOSE_LIMIT`].
    async fn accept(listener: &TcpListener, peer: PeerId) -> Self {
        let exchange = async {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut fake = Self::new(stream);
            let theirs = fake.read_handshake().await.expect("the engine's handshake");
            fake.stream
                .write_all(&handshake(theirs.info_hash, peer).to_bytes())
                .await
                .expect("send handshake");
            fake
        };
        tokio::time::timeout(CLOSE_LIMIT, exchange)
            .await
            .expect("the engine dials and handshakes in time")
    }

    /// Like [`accept`](Self::accept), offering BEP 10 with the extensions of `m` (and
    /// `metadata_size`), then exchanging extension handshakes. Returns the engine's.
    async fn accept_extended(
        listener: &TcpListener,
        peer: PeerId,
        m: &[(&str, u8)],
        metadata_size: Option<u64>,
    ) -> (Self, webtorrent_extensions::ExtHandshake) {
        use webtorrent_extensions::ExtHandshake;
        let exchange = async {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut fake = Self::new(stream);
            let theirs = fake.read_handshake().await.expect("the engine's handshake");
            assert!(theirs.reserved.extended(), "the engine offers BEP 10");
            let reserved = Reserved::NONE.with_fast(true).with_extended(true);
            fake.stream
                .write_all(&Handshake::new(reserved, theirs.info_hash, peer).to_bytes())
                .await
                .expect("send handshake");
            fake
        };
        let mut fake = tokio::time::timeout(CLOSE_LIMIT, exchange)
            .await
            .expect("the engine dials and handshakes in time");
        let mut ours = ExtHandshake::default();
        for (name, id) in m {
            ours.m.insert((*name).to_owned(), *id);
        }
        ours.metadata_size = metadata_size;
        fake.send(Message::Extended {
            id: 0,
            payload: Cow::Owned(ours.encode()),
        })
        .await
        .expect("send extension handshake");
        let engine = fake
            .wait_for(CLOSE_LIMIT, |m| {
                matches!(m, Message::Extended { id: 0, .. })
            })
            .await;
        let Message::Extended { payload, .. } = engine else {
            unreachable!("waited for an extension handshake")
        };
        let engine =
            ExtHandshake::decode(&payload).expect("the engine's extension handshake decodes");
        (fake, engine)
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
    /// first or nothing comes `within`.
    async fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&Message<'_>) -> bool,
    ) -> Message<'static> {
        tokio::time::timeout(within, async {
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
    /// With the right bytes for pieces below this one; for the others, the first block
    /// only (so those pieces stay incomplete).
    HalfServed(u32),
    /// Never.
    Stall,
    /// Never: chokes us at the first request and stays silent (with the fast extension
    /// a choke does not cancel requests: they wait for a reject that never comes).
    ChokeAndHold,
    /// With the block's bytes but the last one.
    Truncated,
    /// The first block of each piece with every byte flipped; every other request
    /// rejected (BEP 6), so someone else completes the piece.
    CorruptFirstRejectRest,
}

/// Plays a seeder on `fake`: announces `pieces` (every piece if `None`), unchokes,
/// sends `extra` (raw bytes), answers requests as `policy` says and reports each request
/// on `requests`. Returns the requests it saw once the engine closes the connection.
fn play_seeder(
    mut fake: Fake,
    shape: Shape,
    pieces: Option<Bitfield>,
    policy: Policy,
    extra: Vec<u8>,
    requests: mpsc::UnboundedSender<BlockRef>,
) -> JoinHandle<Vec<BlockRef>> {
    let content = content();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut hello = match pieces {
            None => Message::HaveAll.to_vec(),
            Some(pieces) => Message::Bitfield(Cow::Borrowed(pieces.as_bytes())).to_vec(),
        };
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
            let piece = shape.piece(&content, block.piece);
            // The engine only asks for blocks inside the torrent.
            assert!(
                block.length > 0 && block.end() <= piece.len() as u64,
                "{block:?}"
            );
            let start = block.offset as usize;
            let mut data = piece[start..start + block.length as usize].to_vec();
            let answer = match policy {
                Policy::Honest => true,
                Policy::Corrupt => {
                    data.iter_mut().for_each(|b| *b = !*b);
                    true
                }
                Policy::HalfServed(first_unserved) => {
                    block.piece < first_unserved || block.offset == 0
                }
                Policy::Stall => false,
                Policy::ChokeAndHold => {
                    if seen.len() == 1 && fake.send(Message::Choke).await.is_err() {
                        break;
                    }
                    false
                }
                Policy::Truncated => {
                    data.pop();
                    true
                }
                Policy::CorruptFirstRejectRest if block.offset == 0 => {
                    data.iter_mut().for_each(|b| *b = !*b);
                    true
                }
                Policy::CorruptFirstRejectRest => {
                    if fake.send(Message::Reject(block)).await.is_err() {
                        break;
                    }
                    false
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
    let (_seed_dir, seeder, _seeding) = seeder(TWO_BLOCKS).await;
    let (leech_dir, leecher, download) = leecher(TWO_BLOCKS, 8, &[]).await;
    let mut events = download.events();
    let info_hash = download.info_hash();
    let pieces = TWO_BLOCKS.pieces();
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
        (
            "bitfield one byte too long",
            frame(id::BITFIELD, &long_bitfield),
        ),
        (
            "bitfield one byte too short",
            frame(id::BITFIELD, short_bitfield),
        ),
        (
            "bitfield with spare bits set",
            frame(id::BITFIELD, &spare_bits),
        ),
        (
            "have past the last piece",
            frame(id::HAVE, &pieces.to_be_bytes()),
        ),
    ];
    for (n, (what, bytes)) in cases.into_iter().enumerate() {
        let n = u8::try_from(n).expect("few cases");
        let mut fake = Fake::dial(leecher.local_addr(), info_hash, fake_id(n)).await;
        // The engine's piece set comes first: it has nothing yet.
        let first = fake.wait_for(CLOSE_LIMIT, is_piece_set).await;
        assert_eq!(first, Message::HaveNone, "{what}");
        hostile.push((what, fake, bytes));
    }
    // A small message of an unknown id (after the piece set, which must come first) is
    // ignored (BEP 3): that peer stays and serves.
    let polite = Fake::dial(leecher.local_addr(), info_hash, fake_id(100)).await;
    let (requests, mut polite_requests) = mpsc::unbounded_channel();
    let polite = play_seeder(
        polite,
        TWO_BLOCKS,
        None,
        Policy::Honest,
        frame(0x63, b"hello"),
        requests,
    );

    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    for (_, fake, bytes) in &mut hostile {
        // Writes may fail half-way: the engine is allowed to close as soon as it sees
        // the length prefix.
        fake.send_raw(bytes).await;
    }
    let mut hostile_addrs = Vec::new();
    for (what, mut fake, _) in hostile {
        hostile_addrs.push((what, fake.stream.local_addr().expect("addr")));
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

    // Each hostile peer's disconnection was reported once.
    let mut disconnected = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let TorrentEvent::PeerDisconnected { addr, .. } = event {
            disconnected.push(addr);
        }
    }
    for (what, addr) in hostile_addrs {
        let times = disconnected.iter().filter(|a| **a == addr).count();
        assert_eq!(times, 1, "{what}: disconnection reported {times} times");
    }
}

/// A peer serving corrupt blocks next to a good seeder, pieces of one block: each
/// piece comes whole from one peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_whole_pieces() {
    corrupt_peer_is_banned_and_the_download_finishes(ONE_BLOCK, Policy::Corrupt).await;
}

/// A peer serving corrupt blocks next to a good seeder, pieces of two blocks: a piece
/// may mix both peers' blocks, and only the liar may be blamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_shared_pieces() {
    corrupt_peer_is_banned_and_the_download_finishes(TWO_BLOCKS, Policy::Corrupt).await;
}

/// A liar sends the first block of each piece corrupt and rejects the rest, so the good
/// seeder completes every piece it began: each failed piece mixes both peers' blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liar_sharing_every_piece_with_a_good_seeder_is_banned_alone() {
    corrupt_peer_is_banned_and_the_download_finishes(TWO_BLOCKS, Policy::CorruptFirstRejectRest)
        .await;
}

/// A liar serving as `policy` says next to a good seeder: the download finishes with the
/// right bytes, only verified bytes count as downloaded, the liar is disconnected and
/// cannot come back, the good seeder stays.
async fn corrupt_peer_is_banned_and_the_download_finishes(shape: Shape, policy: Policy) {
    let (_seed_dir, seeder, _seeding) = seeder(shape).await;
    let liar_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let liar_addr = liar_listener.local_addr().expect("addr");
    // A shallow pipeline spreads the pieces over both peers.
    let (leech_dir, leecher, download) = leecher(shape, 4, &[liar_addr]).await;
    let mut events = download.events();
    let info_hash = download.info_hash();

    let liar = Fake::accept(&liar_listener, fake_id(1)).await;
    let (requests, mut liar_requests) = mpsc::unbounded_channel();
    let liar = play_seeder(liar, shape, None, policy, Vec::new(), requests);
    // The liar is asked (and answers) first; then the good seeder joins.
    tokio::time::timeout(CLOSE_LIMIT, liar_requests.recv())
        .await
        .expect("the liar is asked for blocks")
        .expect("a request");
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");

    let served = tokio::time::timeout(LIMIT, liar)
        .await
        .expect("the liar is disconnected")
        .expect("fake peer task");
    assert!(!served.is_empty());
    finish(&download).await;
    let stats = download.stats();
    assert_eq!(
        stats.downloaded, LEN as u64,
        "only verified pieces count, once"
    );
    assert_eq!(stats.verified_pieces, shape.pieces());

    // Banned: dialed again, the engine does not connect ...
    download.add_peer(liar_addr).await.expect("torrent runs");
    assert!(
        tokio::time::timeout(Duration::from_secs(1), liar_listener.accept())
            .await
            .is_err(),
        "the engine dialed a banned peer"
    );
    // ... and connecting to it, the liar is sent nothing past the handshake.
    if let Some(mut again) = Fake::try_dial(leecher.local_addr(), info_hash, fake_id(1)).await {
        let seen = again.until_closed(CLOSE_LIMIT).await;
        assert!(seen.is_empty(), "a banned peer was served: {seen:?}");
    }
    let mut banned = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let TorrentEvent::PeerBanned { peer_id, .. } = event {
            banned.push(peer_id);
        }
    }
    assert_eq!(
        banned,
        [fake_id(1)],
        "the liar, and only the liar, is banned"
    );

    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(leech_dir.path());
}

/// Requests outside the torrent get no data: the connection is closed or the request
/// rejected, and a good leecher next to them still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_outside_the_torrent_get_no_data() {
    let (_seed_dir, seeder, seeding) = seeder(TWO_BLOCKS).await;
    let info_hash = seeding.info_hash();
    let pieces = TWO_BLOCKS.pieces();
    let last_size =
        u32::try_from(LEN % TWO_BLOCKS.piece_length as usize).expect("short last piece");
    let bad = [
        ("piece index = count", BlockRef::new(pieces, 0, BLOCK_SIZE)),
        (
            "piece index u32::MAX",
            BlockRef::new(u32::MAX, 0, BLOCK_SIZE),
        ),
        (
            "past the piece's end",
            BlockRef::new(0, TWO_BLOCKS.piece_length - BLOCK_SIZE / 2, BLOCK_SIZE),
        ),
        (
            "past the short last piece's end",
            BlockRef::new(pieces - 1, 0, last_size + 1),
        ),
        (
            "offset + length overflows 32 bits",
            BlockRef::new(0, u32::MAX - BLOCK_SIZE + 2, BLOCK_SIZE),
        ),
        ("length 0", BlockRef::new(0, 0, 0)),
        ("length 128 KiB + 1", BlockRef::new(0, 0, 128 * 1024 + 1)),
        ("length u32::MAX", BlockRef::new(0, 0, u32::MAX)),
    ];

    let (leech_dir, leecher, download) = leecher(TWO_BLOCKS, 8, &[seeder.local_addr()]).await;
    // One probe at a time (each takes an upload slot of the seeder), while the good
    // leecher downloads.
    let seeder_addr = seeder.local_addr();
    let probes = async {
        let mut answers = Vec::new();
        for (n, (what, block)) in bad.into_iter().enumerate() {
            let n = u8::try_from(n).expect("few cases");
            answers.push(probe(seeder_addr, info_hash, fake_id(n), what, block).await);
        }
        answers
    };
    let ((), answers) = tokio::join!(finish(&download), probes);
    for (what, answer) in answers {
        assert!(
            answer.is_none() || matches!(answer, Some(Message::Reject(_))),
            "{what}: {answer:?}"
        );
    }
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(leech_dir.path());
}

/// Connects to the seeder at `addr` as an interested peer, sends one out-of-range
/// request once unchoked, and returns the engine's answer: `None` if it closed the
/// connection, or the reject. Fails the test if data comes back, or neither.
async fn probe(
    addr: SocketAddr,
    info_hash: InfoHashV1,
    peer: PeerId,
    what: &'static str,
    block: BlockRef,
) -> (&'static str, Option<Message<'static>>) {
    let mut fake = Fake::dial(addr, info_hash, peer).await;
    let first = fake.wait_for(CLOSE_LIMIT, is_piece_set).await;
    assert_eq!(first, Message::HaveAll, "{what}");
    fake.send(Message::Interested)
        .await
        .expect("send interested");
    // Unchoked, the request is judged on its range, not refused for the choke.
    fake.wait_for(UNCHOKE_LIMIT, |m| *m == Message::Unchoke)
        .await;
    // The request goes out raw: the codec is not asked to judge it.
    let mut request = block.piece.to_be_bytes().to_vec();
    request.extend_from_slice(&block.offset.to_be_bytes());
    request.extend_from_slice(&block.length.to_be_bytes());
    fake.send_raw(&frame(id::REQUEST, &request)).await;
    let answer = tokio::time::timeout(CLOSE_LIMIT, async {
        loop {
            match fake.recv().await {
                None => return None,
                Some(Message::Reject(rejected)) if rejected == block => {
                    return Some(Message::Reject(rejected));
                }
                Some(Message::Piece { piece, offset, .. }) => {
                    panic!("{what}: data sent for piece {piece} offset {offset}")
                }
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: neither closed nor rejected"));
    (what, answer)
}

/// Strangers get no handshake: an unknown info-hash, garbage, or our own peer id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_closed_without_our_handshake() {
    let (_seed_dir, seeder, seeding) = seeder(TWO_BLOCKS).await;
    let addr = seeder.local_addr();

    let unknown = handshake(InfoHashV1([0xab; 20]), fake_id(1))
        .to_bytes()
        .to_vec();
    let mut http = b"GET /announce?info_hash=%ab HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    http.resize(2 * HANDSHAKE_LEN, b' ');
    let mut wrong_protocol = handshake(seeding.info_hash(), fake_id(2))
        .to_bytes()
        .to_vec();
    wrong_protocol[1..20].copy_from_slice(b"BitTorrent protocoL");
    for (what, bytes) in [
        ("unknown info-hash", unknown),
        ("HTTP request", http),
        ("wrong protocol string", wrong_protocol),
    ] {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&bytes).await.expect("send");
        let got = bytes_until_closed(&mut stream, CLOSE_LIMIT).await;
        assert!(got.is_empty(), "{what}: the engine answered {got:?}");
    }

    // Ourselves (the same peer id): dropped without a piece set, with or without a
    // handshake.
    if let Some(mut mirror) = Fake::try_dial(addr, seeding.info_hash(), seeder.peer_id()).await {
        let seen = mirror.until_closed(CLOSE_LIMIT).await;
        assert!(
            seen.is_empty(),
            "a connection to ourselves was kept: {seen:?}"
        );
    }

    // The seeder still serves.
    let (leech_dir, leecher, download) = leecher(TWO_BLOCKS, 8, &[addr]).await;
    finish(&download).await;
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(leech_dir.path());
}

/// A connection that sends nothing, or half a handshake, is closed after the handshake
/// timeout (10 s today) without our handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let torrent = client
        .add(TWO_BLOCKS.metainfo(), AddOptions::default())
        .await
        .expect("add");
    let addr = client.local_addr();
    let half = handshake(torrent.info_hash(), fake_id(1)).to_bytes();

    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut halting = TcpStream::connect(addr).await.expect("connect");
    halting
        .write_all(&half[..HANDSHAKE_LEN / 2])
        .await
        .expect("send");
    let (silent, halting) = tokio::join!(
        bytes_until_closed(&mut silent, HANDSHAKE_LIMIT),
        bytes_until_closed(&mut halting, HANDSHAKE_LIMIT),
    );
    assert!(silent.is_empty(), "{silent:?}");
    assert!(halting.is_empty(), "{halting:?}");
    client.shutdown().await.expect("shutdown");
}

/// Peers that go quiet (before or after the handshake, inbound or outbound) do not hold
/// up the download from a good seeder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_do_not_stall_the_download() {
    let (_seed_dir, seeder, _seeding) = seeder(TWO_BLOCKS).await;
    // Accepts, then never answers our handshake.
    let mute = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // Accepts, answers the handshake, then says nothing.
    let quiet = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (leech_dir, leecher, download) = leecher(
        TWO_BLOCKS,
        8,
        &[
            mute.local_addr().expect("addr"),
            quiet.local_addr().expect("addr"),
        ],
    )
    .await;
    let (_mute_stream, _) = tokio::time::timeout(CLOSE_LIMIT, mute.accept())
        .await
        .expect("the engine dials")
        .expect("accept");
    let _quiet = Fake::accept(&quiet, fake_id(1)).await;
    // Connects to us, handshakes, then says nothing.
    let _inbound = Fake::dial(leecher.local_addr(), download.info_hash(), fake_id(2)).await;

    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    finish(&download).await;
    assert_eq!(download.stats().downloaded, LEN as u64);
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(leech_dir.path());
}

/// A peer that claims every piece and unchokes us, then never answers a request, next
/// to a good seeder: the download still completes (the staller's requests move to the
/// seeder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staller_claiming_every_piece_does_not_stall_the_download() {
    unhelpful_peer_does_not_stall_the_download(Policy::Stall).await;
}

/// Same with a peer that chokes us at the first request and never rejects it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choking_holder_of_requests_does_not_stall_the_download() {
    unhelpful_peer_does_not_stall_the_download(Policy::ChokeAndHold).await;
}

/// Same with a peer whose blocks are one byte short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_blocks_do_not_stall_the_download() {
    unhelpful_peer_does_not_stall_the_download(Policy::Truncated).await;
}

/// A fake seeder answering as `policy` says is asked for blocks first, then a good
/// seeder joins: the download completes. How long it took is printed, not asserted.
async fn unhelpful_peer_does_not_stall_the_download(policy: Policy) {
    let (_seed_dir, seeder, _seeding) = seeder(TWO_BLOCKS).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (leech_dir, leecher, download) =
        leecher(TWO_BLOCKS, 8, &[listener.local_addr().expect("addr")]).await;
    let fake = Fake::accept(&listener, fake_id(1)).await;
    let (requests, mut asked) = mpsc::unbounded_channel();
    let unhelpful = play_seeder(fake, TWO_BLOCKS, None, policy, Vec::new(), requests);
    // The fake peer holds requests before the good seeder joins.
    tokio::time::timeout(CLOSE_LIMIT, asked.recv())
        .await
        .expect("the fake peer is asked for blocks")
        .expect("a request");
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    let joined = Instant::now();
    tokio::time::timeout(Duration::from_secs(50), download.wait_done())
        .await
        .expect("the download finishes despite the fake peer");
    eprintln!(
        "{policy:?}: the download finished {:?} after the good seeder joined",
        joined.elapsed()
    );
    assert_eq!(download.stats().downloaded, LEN as u64);
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    tokio::time::timeout(CLOSE_LIMIT, unhelpful)
        .await
        .expect("closed on shutdown")
        .expect("fake peer task");
    assert_downloaded(leech_dir.path());
}

/// Stopped mid-download, the resume data names exactly the verified pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_data_after_a_stop_names_only_verified_pieces() {
    let served = TWO_BLOCKS.pieces() / 2;
    let source = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (leech_dir, leecher, download) =
        leecher(TWO_BLOCKS, 8, &[source.local_addr().expect("addr")]).await;
    let info_hash = download.info_hash();
    let fake = Fake::accept(&source, fake_id(1)).await;
    // The fake has the pieces below `served` and `begun` more. It serves the first
    // ones whole, and only the first block of the others: pieces begun, never done.
    // (However the engine orders its requests, at most `begun` of them stall.)
    let begun = 2;
    let mut pieces = Bitfield::new(TWO_BLOCKS.pieces());
    for piece in 0..served + begun {
        pieces.set(piece).expect("a piece of the torrent");
    }
    let (requests, mut asked) = mpsc::unbounded_channel();
    let feeding = play_seeder(
        fake,
        TWO_BLOCKS,
        Some(pieces),
        Policy::HalfServed(served),
        Vec::new(),
        requests,
    );
    tokio::time::timeout(LIMIT, async {
        let mut started = BTreeSet::new();
        while started.len() < begun as usize {
            let block = asked.recv().await.expect("the fake serves");
            if block.piece >= served && block.offset == 0 {
                started.insert(block.piece);
            }
        }
        while download.stats().verified_pieces < served {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the served half arrives");
    // A moment for the first blocks beyond the half to reach the disk.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = download.stats();
    assert_eq!(
        stats.verified_pieces, served,
        "only the served half verifies"
    );
    assert_eq!(
        stats.downloaded,
        u64::from(served) * u64::from(TWO_BLOCKS.piece_length)
    );
    leecher.shutdown().await.expect("leecher shutdown");
    tokio::time::timeout(CLOSE_LIMIT, feeding)
        .await
        .expect("closed on shutdown")
        .expect("fake peer task");

    let resume_path = leech_dir
        .path()
        .join(format!(".{}.resume", info_hash.to_hex()));
    let resume = ResumeData::load(&resume_path)
        .expect("readable resume data")
        .expect("resume data saved on shutdown");
    let named: BTreeSet<u32> = resume.verified.iter().collect();
    assert_eq!(named, (0..served).collect::<BTreeSet<_>>());
    let content = content();
    let on_disk = std::fs::read(leech_dir.path().join(NAME).join(FILE)).expect("read");
    for piece in &named {
        let start = TWO_BLOCKS.start(*piece);
        let want = TWO_BLOCKS.piece(&content, *piece);
        assert!(
            on_disk.get(start..start + want.len()) == Some(want),
            "piece {piece} named in the resume data is wrong on disk"
        );
    }

    // Added again, the torrent starts from the verified half.
    let again = Client::new(common::config(leech_dir.path()))
        .await
        .expect("client");
    let resumed = again
        .add(TWO_BLOCKS.metainfo(), AddOptions::default())
        .await
        .expect("add");
    assert_eq!(resumed.stats().verified_pieces, served);
    assert!(!resumed.is_done());
    again.shutdown().await.expect("shutdown");
}

/// A burst of connections that never send a handshake, twice as many as the client
/// accepts, does not stop the download from a good seeder: the engine closes each of
/// them without a byte and frees its slot. (Today the slots, shared with outbound dials,
/// stay taken for the 10 s handshake timeout, so the download waits that long.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_silent_connections_does_not_stop_the_download() {
    let (_seed_dir, seeder, _seeding) = seeder(TWO_BLOCKS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config(dir.path());
    config.max_connections = 16;
    let leecher = Client::new(config).await.expect("leecher");
    let download = leecher
        .add(TWO_BLOCKS.metainfo(), AddOptions::default())
        .await
        .expect("add");
    let mut burst = Vec::new();
    for _ in 0..32 {
        burst.push(
            TcpStream::connect(leecher.local_addr())
                .await
                .expect("connect"),
        );
    }
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    let closed = async {
        for stream in &mut burst {
            let got = bytes_until_closed(stream, HANDSHAKE_LIMIT).await;
            assert!(got.is_empty(), "a silent connection was answered: {got:?}");
        }
    };
    let ((), ()) = tokio::join!(finish(&download), closed);
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(dir.path());
}
/// A flood of connections that never send a handshake, staggered and renewed as the
/// engine drops them, does not keep the engine from the good seeder it is told to dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flood_does_not_starve_the_download() {
    let (_seed_dir, seeder, _seeding) = seeder(TWO_BLOCKS).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::config(dir.path());
    config.max_connections = 16;
    let leecher = Client::new(config).await.expect("leecher");
    let download = leecher
        .add(TWO_BLOCKS.metainfo(), AddOptions::default())
        .await
        .expect("add");
    let target = leecher.local_addr();
    // Twice as many silent connections as the client accepts, each renewed once closed.
    let flood: Vec<JoinHandle<()>> = (0..32u64)
        .map(|i| {
            tokio::spawn(async move {
                // Staggered, so that slots come free one at a time.
                tokio::time::sleep(Duration::from_millis(i * 300)).await;
                loop {
                    if let Ok(mut stream) = TcpStream::connect(target).await {
                        let mut chunk = [0u8; 64];
                        while matches!(stream.read(&mut chunk).await, Ok(n) if n > 0) {}
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    // Let the flood fill the client's connection slots.
    tokio::time::sleep(Duration::from_millis(10_000)).await;
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    let started = Instant::now();
    let finished = tokio::time::timeout(LIMIT, download.wait_done()).await;
    eprintln!(
        "flood: waited {:?}, {:?}",
        started.elapsed(),
        download.stats()
    );
    for task in &flood {
        task.abort();
    }
    finished.expect("the download finishes despite the flood");
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(dir.path());
}

/// A v2-only torrent for the hash-request tests, in 16 KiB pieces: a file of 530 pieces
/// (two requests of at most 512 hashes), one of 5 pieces and one of less than a piece.
fn v2_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("big.bin", common::data(61, 530 * BLOCK_SIZE as usize - 77)),
        ("mid.bin", common::data(62, 70_000)),
        ("small.bin", common::data(63, 3_000)),
    ]
}

fn v2_metainfo() -> Metainfo {
    common::torrent_version(
        NAME,
        u64::from(BLOCK_SIZE),
        &v2_files(),
        webtorrent::metainfo::MetaVersion::V2,
    )
}

/// The file index and root of the torrent's file `name`.
fn v2_file(metainfo: &Metainfo, name: &str) -> (usize, [u8; 32]) {
    let (index, file) = metainfo
        .info()
        .files()
        .iter()
        .enumerate()
        .find(|(_, f)| f.path.ends_with(name))
        .expect("the file is in the torrent");
    (index, file.pieces_root.expect("a v2 file"))
}

fn hash_request(root: [u8; 32], base: u32, index: u32, length: u32, proof: u32) -> HashRequest {
    HashRequest {
        pieces_root: root,
        base_layer: base,
        index,
        length,
        proof_layers: proof,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_hash_requests_are_rejected_and_unasked_hashes_close_the_connection() {
    common::logs();
    let metainfo = v2_metainfo();
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), NAME, &v2_files());
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("seeder");
    let torrent = client
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");
    assert!(torrent.is_done());
    let info_hash = metainfo.info_hashes().wire();
    let mut fake = Fake::dial(client.local_addr(), info_hash, fake_id(1)).await;
    let (big, root) = v2_file(&metainfo, "big.bin");
    let (_, small_root) = v2_file(&metainfo, "small.bin");
    // 530 pieces: 10 levels above the pieces, 1024 wide; pieces are layer 0 (16 KiB).
    let hostile = [
        hash_request(root, 0, 0, u32::MAX, 9),
        hash_request(root, 0, 0, 0, 9),
        hash_request(root, 0, 0, 16_384, 9),
        hash_request(root, 0, 1024, 1, 9),
        hash_request(root, 0, u32::MAX, 2, 9),
        hash_request(root, 0, 1000, 512, 9),
        hash_request(root, 0, 0, 512, 10),
        hash_request(root, 0, 0, 512, u32::MAX),
        hash_request(root, 10, 0, 1, 0),
        hash_request(root, u32::MAX, 0, 1, 0),
        hash_request([7; 32], 0, 0, 512, 9),
        // A file of less than a piece has no piece layer to serve.
        hash_request(small_root, 0, 0, 1, 0),
    ];
    for request in hostile {
        fake.send(Message::HashRequest(request))
            .await
            .expect("the connection stays open");
        let answer = fake
            .wait_for(CLOSE_LIMIT, |m| {
                matches!(m, Message::HashReject(_) | Message::Hashes { .. })
            })
            .await;
        assert_eq!(answer, Message::HashReject(request), "{request:?}");
    }
    // A valid request is still answered, and the answer proves out to the root.
    let valid = hash_request(root, 0, 512, 32, 9);
    fake.send(Message::HashRequest(valid)).await.expect("send");
    let answer = fake
        .wait_for(CLOSE_LIMIT, |m| matches!(m, Message::Hashes { .. }))
        .await;
    let Message::Hashes { request, hashes } = answer else {
        unreachable!("waited for hashes")
    };
    assert_eq!(request, valid);
    // Nodes 512..530 are pieces, the rest padding; uncles from level 5 to 9.
    assert_eq!(hashes.len(), 32 + 5);
    let layer = metainfo.piece_layer(big).expect("the seeder's layer");
    assert_eq!(&hashes[..18], &layer[512..530]);
    let (top, position) =
        webtorrent::hash::merkle::proof_root(512, &hashes[..32], &hashes[32..]).expect("aligned");
    assert_eq!((top, position), (root, 0));

    // `hashes` nobody asked for: the connection is closed after a few.
    for _ in 0..3 {
        let _ = fake
            .send(Message::Hashes {
                request: valid,
                hashes: Cow::Owned(vec![[1; 32]; 37]),
            })
            .await;
    }
    fake.until_closed(CLOSE_LIMIT).await;
    client.shutdown().await.expect("shutdown");
}

/// Plays a peer of a v2-only torrent that serves the info dictionary (`ut_metadata`)
/// and lies in every answer to a hash request: wrong hashes, then a wrong count, then
/// hashes for a range never asked. Returns once the engine closes the connection, with
/// the number of hash requests it received.
async fn play_hash_liar(mut fake: Fake, metainfo: &Metainfo) -> usize {
    const UT_METADATA: u8 = 3;
    let info = metainfo.info().raw().to_vec();
    let mut ours = format!(
        "d1:md11:ut_metadatai{UT_METADATA}ee13:metadata_sizei{}ee",
        info.len()
    )
    .into_bytes();
    let mut out = Vec::new();
    Message::Extended {
        id: 0,
        payload: Cow::Owned(std::mem::take(&mut ours)),
    }
    .encode(&mut out);
    Message::HaveAll.encode(&mut out);
    fake.send_raw(&out).await;
    let (_, root) = v2_file(metainfo, "big.bin");
    let mut theirs_metadata = None;
    let mut requests = 0;
    while let Some(message) = fake.recv().await {
        match message {
            Message::Extended { id: 0, payload } => {
                // The engine's ut_metadata id, from its extension handshake.
                let text = payload.to_vec();
                let at = text
                    .windows(11)
                    .position(|w| w == b"ut_metadata")
                    .expect("the engine offers ut_metadata");
                let rest = &text[at + 12..];
                let end = rest.iter().position(|&b| b == b'e').expect("an integer");
                theirs_metadata = std::str::from_utf8(&rest[..end])
                    .ok()
                    .and_then(|n| n.parse::<u8>().ok());
            }
            Message::Extended {
                id: UT_METADATA, ..
            } => {
                // A request for piece 0 (the info dictionary is smaller than 16 KiB).
                let mut payload =
                    format!("d8:msg_typei1e5:piecei0e10:total_sizei{}ee", info.len()).into_bytes();
                payload.extend_from_slice(&info);
                let id = theirs_metadata.expect("the engine's handshake came first");
                let _ = fake
                    .send(Message::Extended {
                        id,
                        payload: Cow::Owned(payload),
                    })
                    .await;
            }
            Message::HashRequest(request) => {
                requests += 1;
                let length = request.length as usize;
                let uncles = (request.proof_layers + 1)
                    .saturating_sub(request.length.next_power_of_two().trailing_zeros())
                    as usize;
                let lie = match requests {
                    // Hashes of the right count that lead nowhere.
                    1 => Message::Hashes {
                        request,
                        hashes: Cow::Owned(vec![[9; 32]; length + uncles]),
                    },
                    // One hash too few.
                    2 => Message::Hashes {
                        request,
                        hashes: Cow::Owned(vec![[9; 32]; length + uncles - 1]),
                    },
                    // A range nobody asked for.
                    _ => Message::Hashes {
                        request: hash_request(root, 0, 256, 256, 9),
                        hashes: Cow::Owned(vec![[9; 32]; 256 + 2]),
                    },
                };
                let _ = fake.send(lie).await;
            }
            _ => {}
        }
    }
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_liar_is_dropped_and_the_v2_magnet_download_completes_from_an_honest_peer() {
    common::logs();
    let metainfo = v2_metainfo();
    let (seed_dir, seeder, _) = {
        let dir = tempfile::tempdir().expect("tempdir");
        common::write_files(dir.path(), NAME, &v2_files());
        let client = Client::new(common::config(dir.path()))
            .await
            .expect("seeder");
        let torrent = client
            .add(metainfo.clone(), AddOptions::default())
            .await
            .expect("seed");
        (dir, client, torrent)
    };
    let liar = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let magnet = common::magnet_v2(&metainfo, liar.local_addr().expect("address"));
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dst.path()))
        .await
        .expect("leecher");
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");

    // The liar alone first: it gives the metadata, then lies about the piece layers until
    // the engine drops it.
    let fake = tokio::time::timeout(CLOSE_LIMIT, async {
        let (stream, _) = liar.accept().await.expect("accept");
        let mut fake = Fake::new(stream);
        let theirs = fake.read_handshake().await.expect("the engine's handshake");
        // The extension protocol, for ut_metadata.
        let ours = Handshake::new(
            Reserved::NONE.with_fast(true).with_extended(true),
            theirs.info_hash,
            fake_id(2),
        );
        fake.send_raw(&ours.to_bytes()).await;
        fake
    })
    .await
    .expect("the engine dials the liar");
    let requests = tokio::time::timeout(LIMIT, play_hash_liar(fake, &metainfo))
        .await
        .expect("the engine drops the liar");
    assert_eq!(
        requests, 3,
        "three hash requests (two for the big file, one for the other)"
    );
    assert!(!download.is_done());

    // An honest peer then gives the layers and the data.
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("add the honest peer");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes from the honest peer");
    let fetched = download.metainfo().expect("the metadata is in");
    assert!(fetched.has_all_piece_layers());
    for (path, bytes) in v2_files() {
        let got = std::fs::read(dst.path().join(NAME).join(path)).expect("read");
        assert!(got == bytes, "{path} differs");
    }
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
    drop(seed_dir);
}

/// A peer that floods `ut_pex`: thousands of made-up addresses in back-to-back messages,
/// oversized and malformed payloads among them. Only the first message names a real
/// seeder. The flood is capped (at most 50 peers a message, 100 a minute), the junk is
/// dropped, and the download from the seeder learned by PEX still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pex_flood_is_capped_and_the_download_finishes() {
    use webtorrent_extensions::{PexFlags, PexMessage, PexPeer};
    let (_seed_dir, seeder, _seeding) = seeder(TWO_BLOCKS).await;
    let flooder = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (leech_dir, leecher, download) =
        leecher(TWO_BLOCKS, 8, &[flooder.local_addr().expect("addr")]).await;
    let (mut fake, engine) =
        Fake::accept_extended(&flooder, fake_id(9), &[("ut_pex", 1)], None).await;
    let pex_id = engine
        .extension_id("ut_pex")
        .expect("a public torrent offers ut_pex");
    // Addresses nobody listens on (ports of closed sockets on 127.0.0.2..).
    let junk = |n: u32| {
        let ip = std::net::Ipv4Addr::new(127, 0, 2 + (n / 60_000) as u8, 1);
        SocketAddr::from((ip, 1024 + (n % 60_000) as u16))
    };
    let first = PexMessage::new(
        std::iter::once(seeder.local_addr())
            .chain((0..49).map(junk))
            .map(|a| PexPeer::new(a, PexFlags::SEED))
            .collect(),
        Vec::new(),
    );
    fake.send(Message::Extended {
        id: pex_id,
        payload: Cow::Owned(first.to_vec()),
    })
    .await
    .expect("send the first ut_pex");
    for round in 0..200u32 {
        let payload = match round % 4 {
            // Many more peers than a message may carry.
            0 => PexMessage::new(
                (round * 1000..round * 1000 + 500)
                    .map(|n| PexPeer::new(junk(n), PexFlags::NONE))
                    .collect(),
                (0..500).map(junk).collect(),
            )
            .to_vec(),
            // Not bencode.
            1 => vec![0xff; 300],
            // A dictionary with the wrong types.
            2 => b"d5:added3:abc7:added.f4:abcde".to_vec(),
            // A regular message, far too soon after the last.
            _ => PexMessage::new(
                (round * 1000 + 600..round * 1000 + 650)
                    .map(|n| PexPeer::new(junk(n), PexFlags::NONE))
                    .collect(),
                Vec::new(),
            )
            .to_vec(),
        };
        if fake
            .send(Message::Extended {
                id: pex_id,
                payload: Cow::Owned(payload),
            })
            .await
            .is_err()
        {
            // Dropping the flooder is a fine answer too.
            break;
        }
    }
    finish(&download).await;
    assert_eq!(download.stats().downloaded, LEN as u64);
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(leech_dir.path());
}

/// A magnet's only peer answers `ut_metadata` with bytes of the right size that do not hash
/// to the info-hash. It is dropped, and once an honest seeder is known the metadata and the
/// data come from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_that_fails_its_hash_is_refused_and_the_magnet_completes() {
    use webtorrent_extensions::MetadataMessage;
    let (_seed_dir, seeder, seeding) = seeder(TWO_BLOCKS).await;
    let metainfo = seeding.metainfo().expect("known");
    let size = metainfo.info().raw().len();
    let liar = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let magnet = webtorrent::magnet::Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}&x.pe={}",
        seeding.info_hash().to_hex(),
        liar.local_addr().expect("addr")
    ))
    .expect("magnet");
    let dir = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dir.path()))
        .await
        .expect("leecher");
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    let (mut fake, engine) =
        Fake::accept_extended(&liar, fake_id(10), &[("ut_metadata", 3)], Some(size as u64)).await;
    let their_id = engine
        .extension_id("ut_metadata")
        .expect("the engine speaks ut_metadata");
    let mut answered = 0;
    let closed = tokio::time::timeout(CLOSE_LIMIT, async {
        while let Some(message) = fake.recv().await {
            let Message::Extended { id: 3, payload } = message else {
                continue;
            };
            let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(&payload) else {
                continue;
            };
            let start = piece as usize * 16 * 1024;
            let len = size.saturating_sub(start).min(16 * 1024);
            let garbage = vec![0x5a; len];
            let answer = MetadataMessage::Data {
                piece,
                total_size: Some(size as u64),
                data: &garbage,
            };
            answered += 1;
            let _ = fake
                .send(Message::Extended {
                    id: their_id,
                    payload: Cow::Owned(answer.to_vec()),
                })
                .await;
        }
    })
    .await;
    assert!(answered > 0, "the engine asked the liar for metadata");
    assert!(
        closed.is_ok(),
        "the liar is dropped once its metadata fails"
    );
    assert!(download.metainfo().is_none(), "no metadata from a liar");

    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    finish(&download).await;
    let fetched = download.metainfo().expect("the metadata is in");
    assert_eq!(fetched.info().raw(), metainfo.info().raw());
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    assert_downloaded(dir.path());
}
