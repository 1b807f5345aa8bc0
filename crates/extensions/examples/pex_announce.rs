//! Tells a peer about another peer over `ut_pex` and checks that it dials it: a minimal
//! blocking driver of the registry and the PEX state, for trying them against real
//! clients.
//!
//! ```text
//! cargo run -p webtorrent-extensions --example pex_announce -- HOST:PORT HASH
//! ```
//!
//! HASH is the 40-hex-digit wire info-hash of a torrent the peer has. The example
//! listens on a free loopback port, connects to the peer, and once both extension
//! handshakes are done sends a PEX message naming the listening address. It exits 0
//! when the peer connects there with a handshake for the same torrent (30 s at most).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use webtorrent_extensions::{
    ExtHandshake, Incoming, PexConfig, PexFlags, PexPeer, PexState, Registry, UT_PEX,
};
use webtorrent_types::{InfoHashV1, PeerId};
use webtorrent_wire::{Decoder, HANDSHAKE_LEN, Handshake, Message, Reserved};

type Error = Box<dyn std::error::Error>;

fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().ok_or("usage: HOST:PORT HASH")?.parse()?;
    let hash: InfoHashV1 = args.next().ok_or("usage: HOST:PORT HASH")?.parse()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let advertised = listener.local_addr()?;

    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    // Not random: this is a one-off tool, and the id only has to differ from the peer's.
    let peer_id = PeerId::ours(*b"pexannounce0");
    let reserved = Reserved::NONE.with_extended(true);
    stream.write_all(&Handshake::new(reserved, hash, peer_id).to_bytes())?;
    let mut registry = Registry::with_builtins();
    let mut pex = PexState::new(addr, PexConfig::default());
    let decoder = Decoder::new();
    let (mut buf, mut at) = (Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
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
        if at.is_none() && buf.len() >= HANDSHAKE_LEN {
            Handshake::decode(&buf)?.ok_or("a handshake")?;
            stream.write_all(&registry.handshake(ExtHandshake::ours()).to_vec())?;
            at = Some(HANDSHAKE_LEN);
        }
        let Some(mut pos) = at else { continue };
        while let Some((message, used)) = decoder.decode(&buf[pos..])? {
            pos += used;
            if let Message::Extended { id, payload } = message
                && let Incoming::Handshake(theirs) = registry.handle(id, &payload)?
            {
                eprintln!("their client: {:?}", theirs.client);
            }
        }
        buf.drain(..pos);
        at = Some(0);
        // Once the peer enabled ut_pex, tell it about the listening address.
        if registry.peer_id(UT_PEX).is_some() {
            let current = [PexPeer::new(advertised, PexFlags::SEED)];
            if let Some(message) = pex.poll_message(Instant::now(), current) {
                eprintln!("sending {message:?}");
                let frame = registry.ut_pex(&message).ok_or("ut_pex disabled")?;
                stream.write_all(&frame.to_vec())?;
            }
        }
        if let Ok((mut dialed, from)) = listener.accept() {
            dialed.set_nonblocking(false)?;
            dialed.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut handshake = [0; HANDSHAKE_LEN];
            dialed.read_exact(&mut handshake)?;
            let (theirs, _) = Handshake::decode(&handshake)?.ok_or("a handshake")?;
            if theirs.info_hash != hash {
                return Err(format!("dialed for another torrent {}", theirs.info_hash).into());
            }
            eprintln!("the peer dialed {advertised} from {from} for the torrent");
            return Ok(());
        }
    }
    Err("the peer did not dial the advertised address within 30 s".into())
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
