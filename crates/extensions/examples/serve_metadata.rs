//! Serves a torrent's info dictionary over `ut_metadata` to the peers that connect: a
//! minimal blocking driver of the registry and the metadata server, for trying them
//! against real clients resolving a magnet link.
//!
//! ```text
//! cargo run -p webtorrent-extensions --example serve_metadata -- INFO_FILE [HOST:PORT]
//! ```
//!
//! INFO_FILE holds the bencoded info dictionary. The listening address goes to stdout
//! (default `127.0.0.1:0`, any free port). A connection is accepted for the v1 hash
//! (SHA-1 of the bytes) or the truncated v2 hash (SHA-256); each is served on its own
//! thread until the peer closes it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use webtorrent_extensions::{ExtHandshake, Incoming, MetadataServer, Registry, ServerConfig};
use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes, PeerId};
use webtorrent_wire::{Decoder, Handshake, Message, Reserved};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn serve(mut stream: TcpStream, info: Arc<[u8]>, hashes: InfoHashes) -> Result<(), Error> {
    let mut buf = Vec::new();
    let theirs = loop {
        if let Some((theirs, used)) = Handshake::decode(&buf)? {
            buf.drain(..used);
            break theirs;
        }
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err("closed before the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if !hashes.matches_wire(&theirs.info_hash) {
        return Err(format!("unknown torrent {}", theirs.info_hash).into());
    }
    // Not random: this is a one-off tool, and the id only has to differ from the peer's.
    let peer_id = PeerId::ours(*b"servemetadat");
    let reserved = Reserved::NONE.with_extended(true);
    stream.write_all(&Handshake::new(reserved, theirs.info_hash, peer_id).to_bytes())?;
    let mut registry = Registry::with_builtins();
    let mut server = MetadataServer::new(info, ServerConfig::default());
    let mut ours = ExtHandshake::ours();
    ours.metadata_size = Some(server.metadata_size());
    stream.write_all(&registry.handshake(ours).to_vec())?;
    eprintln!("serving {:?}", theirs.peer_id.client());

    let decoder = Decoder::new();
    loop {
        let mut at = 0;
        while let Some((message, used)) = decoder.decode(&buf[at..])? {
            at += used;
            let Message::Extended { id, payload } = message else {
                continue;
            };
            match registry.handle(id, &payload)? {
                Incoming::Handshake(theirs) => eprintln!("their client: {:?}", theirs.client),
                Incoming::Metadata(request) => {
                    if let Some(answer) = server.handle(Instant::now(), &request) {
                        eprintln!("{request:?} -> piece {} answered", answer.piece());
                        if let Some(frame) = registry.ut_metadata(&answer) {
                            stream.write_all(&frame.to_vec())?;
                        }
                    }
                }
                _ => {}
            }
        }
        buf.drain(..at);
        let mut chunk = [0; 16 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            eprintln!("the peer closed the connection");
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: INFO_FILE [HOST:PORT]")?;
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let info: Arc<[u8]> = std::fs::read(path)?.into();
    let hashes = InfoHashes::hybrid(
        InfoHashV1(webtorrent_hash::sha1(&info)),
        InfoHashV2(webtorrent_hash::sha256(&info)),
    );
    let listener = TcpListener::bind(bind)?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let (stream, info) = (stream?, info.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, info, hashes) {
                eprintln!("connection ended: {e}");
            }
        });
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
