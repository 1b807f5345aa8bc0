//! A tokio UDP socket running an [`Lsd`] state machine.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use webtorrent_types::InfoHashV1;

use crate::announcer::{Config, Event, Lsd, Output};
use crate::message::MAX_DATAGRAM_LEN;

/// How the driver's socket takes part in multicast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Multicast {
    /// Join the IPv4 group of [`Config::destination`] on the interface with this
    /// address (`0.0.0.0`: the one the kernel picks), and send through it.
    V4 {
        /// The interface's address.
        interface: Ipv4Addr,
    },
    /// Join the IPv6 group of [`Config::destination`] on the interface with this index
    /// (0: the one the kernel picks), and send through it.
    V6 {
        /// The interface's index.
        interface: u32,
    },
}

/// Settings of a [`Driver`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// The state machine's settings; `destination` is where announces go.
    pub announcer: Config,
    /// The local address to bind. Other programs on the host may bind it too (the
    /// socket sets `SO_REUSEADDR`), as several BitTorrent clients share port 6771.
    pub bind: SocketAddr,
    /// `Some`: join the destination's group; `None`: plain unicast, for tests and
    /// networks without multicast.
    pub multicast: Option<Multicast>,
    /// The multicast TTL (hop limit). BEP 14 suggests more than 1, as the groups
    /// reach beyond one link; the default is 4.
    pub ttl: u32,
    /// Whether our multicast datagrams are looped back to sockets on this host (they
    /// are then dropped by cookie). Needed for two clients on one host to find each
    /// other; on by default.
    pub loopback: bool,
}

impl DriverConfig {
    /// The BEP 14 IPv4 group on the interface with address `interface` (`0.0.0.0`:
    /// the kernel's choice), announcing our BitTorrent listen `port`.
    pub fn ipv4(port: u16, cookie: u32, interface: Ipv4Addr) -> Self {
        Self {
            announcer: Config::new(port, cookie),
            bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, crate::LSD_PORT)),
            multicast: Some(Multicast::V4 { interface }),
            ttl: 4,
            loopback: true,
        }
    }

    /// The BEP 14 IPv6 group on the interface with index `interface` (0: the
    /// kernel's choice), announcing our BitTorrent listen `port`.
    pub fn ipv6(port: u16, cookie: u32, interface: u32) -> Self {
        Self {
            announcer: Config::new(port, cookie)
                .with_destination(SocketAddr::V6(crate::IPV6_GROUP)),
            bind: SocketAddr::V6(SocketAddrV6::new(
                std::net::Ipv6Addr::UNSPECIFIED,
                crate::LSD_PORT,
                0,
                0,
            )),
            multicast: Some(Multicast::V6 { interface }),
            ttl: 4,
            loopback: true,
        }
    }

    /// Unicast: bind `bind`, send announces to `destination`.
    pub fn unicast(port: u16, cookie: u32, bind: SocketAddr, destination: SocketAddr) -> Self {
        Self {
            announcer: Config::new(port, cookie).with_destination(destination),
            bind,
            multicast: None,
            ttl: 4,
            loopback: true,
        }
    }
}

/// An LSD socket: announces our torrents and yields the peers neighbours announce.
///
/// [`Driver::next_peer`] does all the work (sending due announces, reading
/// datagrams) and returns at each peer found. It is cancel-safe, so it can sit in a
/// `tokio::select!` next to the channel that adds and removes torrents.
///
/// Must be created inside a tokio runtime with the I/O and time drivers enabled.
#[derive(Debug)]
pub struct Driver {
    socket: UdpSocket,
    lsd: Lsd,
    send_buf: Vec<u8>,
    /// A datagram in `send_buf` still to send, and where.
    pending: Option<SocketAddr>,
    recv_buf: Vec<u8>,
}

impl Driver {
    /// Opens the socket and joins the group.
    ///
    /// # Errors
    /// Any error from creating, configuring or binding the socket, or joining the
    /// group; or [`io::ErrorKind::InvalidInput`] if the bind address, the destination
    /// and the [`Multicast`] kind are not all of one IP version.
    pub fn bind(config: DriverConfig) -> io::Result<Self> {
        let destination = config.announcer.destination;
        if config.bind.is_ipv4() != destination.is_ipv4()
            || matches!(
                (config.multicast, destination),
                (Some(Multicast::V4 { .. }), SocketAddr::V6(_))
                    | (Some(Multicast::V6 { .. }), SocketAddr::V4(_))
            )
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the LSD bind address, destination and multicast kind mix IPv4 and IPv6",
            ));
        }
        let socket = Socket::new(
            Domain::for_address(config.bind),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        socket.set_reuse_address(true)?;
        if config.bind.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&SockAddr::from(config.bind))?;
        match (config.multicast, destination) {
            (Some(Multicast::V4 { interface }), SocketAddr::V4(group)) => {
                socket.join_multicast_v4(group.ip(), &interface)?;
                socket.set_multicast_if_v4(&interface)?;
                socket.set_multicast_ttl_v4(config.ttl)?;
                socket.set_multicast_loop_v4(config.loopback)?;
            }
            (Some(Multicast::V6 { interface }), SocketAddr::V6(group)) => {
                socket.join_multicast_v6(group.ip(), interface)?;
                socket.set_multicast_if_v6(interface)?;
                socket.set_multicast_hops_v6(config.ttl)?;
                socket.set_multicast_loop_v6(config.loopback)?;
            }
            // Unicast; the mixed cases were refused above.
            _ => {}
        }
        let socket = UdpSocket::from_std(socket.into())?;
        Ok(Self {
            socket,
            lsd: Lsd::new(config.announcer),
            send_buf: Vec::new(),
            pending: None,
            recv_buf: vec![0; MAX_DATAGRAM_LEN + 1],
        })
    }

    /// The socket's local address.
    ///
    /// # Errors
    /// As [`UdpSocket::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The state machine, for its settings, torrents and counters.
    pub fn lsd(&self) -> &Lsd {
        &self.lsd
    }

    /// Starts announcing a torrent; it goes out at the next call to
    /// [`Driver::next_peer`] that the per-minute limit allows. Returns false if it was
    /// already there.
    pub fn add_torrent(&mut self, info_hash: InfoHashV1) -> bool {
        self.lsd.add_torrent(info_hash)
    }

    /// Stops announcing a torrent and reporting its peers. Returns false if it was not
    /// there.
    pub fn remove_torrent(&mut self, info_hash: &InfoHashV1) -> bool {
        self.lsd.remove_torrent(info_hash)
    }

    /// Runs until a neighbour announces one of our torrents, and returns it with the
    /// address to connect to. Sends our announces meanwhile.
    ///
    /// Cancel-safe: a datagram received is handled before the next await point, and
    /// an announce interrupted while being sent is sent again at the next call.
    ///
    /// # Errors
    /// A send or receive error other than the ICMP echoes of unicast
    /// (`ConnectionRefused`, `ConnectionReset`), which are skipped. The driver stays
    /// usable: an announce that failed is not retried before its next turn.
    pub async fn next_peer(&mut self) -> io::Result<(InfoHashV1, SocketAddr)> {
        loop {
            if let Some(destination) = self.pending {
                let sent = self.socket.send_to(&self.send_buf, destination).await;
                self.pending = None;
                sent?;
            }
            let now = Instant::now();
            let deadline = match self.lsd.poll_output(now.into_std(), &mut self.send_buf) {
                Output::Event(Event::Peer { info_hash, addr }) => return Ok((info_hash, addr)),
                Output::Transmit(t) => {
                    self.pending = Some(t.destination);
                    continue;
                }
                Output::Timeout(at) => Some(Instant::from_std(at)),
                // Idle, and outputs added later: wait for a datagram.
                _ => None,
            };
            let received = match deadline {
                Some(at) => {
                    match tokio::time::timeout_at(at, self.socket.recv_from(&mut self.recv_buf))
                        .await
                    {
                        Ok(received) => received,
                        Err(_elapsed) => continue,
                    }
                }
                None => self.socket.recv_from(&mut self.recv_buf).await,
            };
            match received {
                Ok((len, source)) => {
                    let now = Instant::now().into_std();
                    // `len` is at most the buffer's length.
                    let datagram = &self.recv_buf[..len];
                    self.lsd.handle_datagram(now, source, datagram);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
