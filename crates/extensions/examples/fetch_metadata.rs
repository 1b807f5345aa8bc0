//! Resolves a torrent's info dictionary from one peer over TCP: a minimal blocking
//! driver of the sans-IO state machines, for trying them against real clients.
//!
//! ```text
//! cargo run -p webtorrent-extensions --example fetch_metadata -- HOST:PORT HASH [HASH] > info.bin
//! ```
//!
//! Each HASH is a v1 (40 hex digits) or v2 (64 hex digits) info-hash; give both for a
//! hybrid torrent. The verified info dictionary goes to stdout, progress to stderr.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use webtorrent_extensions::{
    ExtHandshake, FetchEvent, FetcherConfig, Incoming, MetadataFetcher, Registry,
};
use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes, PeerId};
use webtorrent_wire::{Decoder, HANDSHAKE_LEN, Handshake, Message, Reserved};

type Error = Box<dyn std::error::Error>;

fn parse_args() -> Result<(SocketAddr, InfoHashes), Error> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().ok_or("usage: HOST:PORT HASH [HASH]")?.parse()?;
    let (mut v1, mut v2) = (None, None);
    for hash in args {
        match hash.len() {
            40 => v1 = Some(hash.parse::<InfoHashV1>()?),
            64 => v2 = Some(hash.parse::<InfoHashV2>()?),
            n => return Err(format!("a hash has 40 or 64 hex digits, not {n}").into()),
        }
    }
    Ok((addr, InfoHashes::new(v1, v2).ok_or("no info-hash given")?))
}

fn run() -> Result<Vec<u8>, Error> {
    let (addr, hashes) = parse_args()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    // Not random: this is a one-off tool, and the id only has to differ from the peer's.
    let peer_id = PeerId::ours(*b"fetchmetadat");
    let reserved = Reserved::NONE.with_extended(true);
    stream.write_all(&Handshake::new(reserved, hashes.wire(), peer_id).to_bytes())?;

    let mut registry = Registry::with_builtins();
    let mut fetcher = MetadataFetcher::new(hashes, FetcherConfig::default());
    let decoder = Decoder::new();
    let mut buf = Vec::new();
    let mut handshake_done = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            return Err("no metadata within 60 s".into());
        }
        let mut chunk = [0; 16 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the peer closed the connection".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        let mut at = 0;
        if !handshake_done {
            let Some((theirs, used)) = Handshake::decode(&buf)? else {
                continue;
            };
            debug_assert_eq!(used, HANDSHAKE_LEN);
            if !theirs.reserved.extended() {
                return Err("the peer does not support the extension protocol".into());
            }
            eprintln!("connected to {:?}", theirs.peer_id.client());
            stream.write_all(&registry.handshake(ExtHandshake::ours()).to_vec())?;
            handshake_done = true;
            at = used;
        }
        let now = Instant::now();
        while let Some((message, used)) = decoder.decode(&buf[at..])? {
            at += used;
            let Message::Extended { id, payload } = message else {
                continue;
            };
            match registry.handle(id, &payload)? {
                Incoming::Handshake(theirs) => {
                    eprintln!(
                        "extension handshake: client {:?}, metadata_size {:?}",
                        theirs.client, theirs.metadata_size
                    );
                    fetcher.add_peer(addr, &theirs)?;
                }
                Incoming::Metadata(answer) => {
                    if let Err(e) = fetcher.handle_message(now, &addr, &answer) {
                        eprintln!("ignored: {e}");
                    }
                }
                _ => {}
            }
        }
        buf.drain(..at);
        while let Some(request) = fetcher.poll_request(now) {
            eprintln!("requesting piece {}", request.piece);
            let frame = registry
                .ut_metadata(&request.message())
                .ok_or("the peer disabled ut_metadata")?;
            stream.write_all(&frame.to_vec())?;
        }
        while let Some(event) = fetcher.poll_event() {
            match event {
                FetchEvent::Complete(info) => return Ok(info),
                other => eprintln!("{other:?}"),
            }
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(info) => {
            eprintln!("verified {} bytes of metadata", info.len());
            match std::io::stdout().write_all(&info) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
