//! `UdpTracker`: BEP 15 announce and scrape over one tokio UDP socket.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use webtorrent_types::InfoHashV1;

use crate::udp::{AddressFamily, OpId, UdpConfig, UdpEvent, UdpTrackerMachine};
use crate::{AnnounceRequest, AnnounceResponse, ScrapeResponse, TrackerError};

enum Outcome {
    Announced(AnnounceResponse),
    Scraped(ScrapeResponse),
}

type Reply = oneshot::Sender<Result<Outcome, TrackerError>>;

enum Command {
    Announce(SocketAddr, Box<AnnounceRequest>, Reply),
    Scrape(SocketAddr, Vec<InfoHashV1>, Reply),
}

/// A BEP 15 client: one UDP socket for every tracker, driven by a task
/// spawned on the current tokio runtime. Cheap to clone; the task ends
/// when the last clone is dropped.
///
/// The task owns the socket's receiving side. To share a socket with DHT
/// or uTP, drive [`UdpTrackerMachine`] directly and route datagrams with
/// [`UdpTrackerMachine::accepts`].
///
/// ```no_run
/// # async fn run() -> Result<(), webtorrent_tracker::TrackerError> {
/// use webtorrent_tracker::{AnnounceRequest, UdpTracker, udp::UdpConfig};
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let client = UdpTracker::bind("0.0.0.0:0".parse().unwrap(), UdpConfig::default()).await?;
/// let req = AnnounceRequest::new(InfoHashV1([0; 20]), PeerId::ours([7; 12]), 6881);
/// let resp = client.announce_url("udp://tracker.example:1337/announce", &req).await?;
/// println!("{} peers", resp.peers.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct UdpTracker {
    commands: mpsc::UnboundedSender<Command>,
    local: SocketAddr,
}

fn io_error(what: &str, e: &std::io::Error) -> TrackerError {
    TrackerError::Transport {
        message: format!("{what}: {e}"),
    }
}

impl UdpTracker {
    /// Binds a socket at `local` and starts the client on it.
    ///
    /// # Errors
    /// [`TrackerError::Transport`] if the socket cannot be bound.
    pub async fn bind(local: SocketAddr, config: UdpConfig) -> Result<Self, TrackerError> {
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| io_error("bind", &e))?;
        Self::from_socket(socket, config)
    }

    /// Starts the client on an already bound socket.
    ///
    /// # Errors
    /// [`TrackerError::Transport`] if the socket has no local address.
    ///
    /// # Panics
    /// Outside a tokio runtime (the driver task is spawned).
    pub fn from_socket(socket: UdpSocket, config: UdpConfig) -> Result<Self, TrackerError> {
        let local = socket
            .local_addr()
            .map_err(|e| io_error("local address", &e))?;
        let (commands, rx) = mpsc::unbounded_channel();
        let driver = Driver {
            socket: Arc::new(socket),
            config,
            commands: rx,
            trackers: HashMap::new(),
            random: RandomState::new(),
        };
        tokio::spawn(driver.run());
        Ok(Self { commands, local })
    }

    /// The socket's local address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Command) -> Result<Outcome, TrackerError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| TrackerError::Shutdown)?;
        rx.await.map_err(|_| TrackerError::Shutdown)?
    }

    /// Announces to the tracker at `tracker`.
    ///
    /// # Errors
    /// [`TrackerError::Failure`] for an error packet, [`TrackerError::Timeout`]
    /// after the last retransmission, [`TrackerError::Malformed`] for a bad
    /// answer, [`TrackerError::Shutdown`] if the driver stopped.
    pub async fn announce(
        &self,
        tracker: SocketAddr,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let req = Box::new(request.clone());
        match self.call(|tx| Command::Announce(tracker, req, tx)).await? {
            Outcome::Announced(r) => Ok(r),
            Outcome::Scraped(_) => Err(TrackerError::Malformed {
                what: "UDP response action does not match the request",
            }),
        }
    }

    /// Scrapes up to [`crate::udp::MAX_SCRAPE_HASHES`] torrents.
    ///
    /// # Errors
    /// As [`announce`](Self::announce), and [`TrackerError::TooManyInfoHashes`].
    pub async fn scrape(
        &self,
        tracker: SocketAddr,
        info_hashes: &[InfoHashV1],
    ) -> Result<ScrapeResponse, TrackerError> {
        let hashes = info_hashes.to_vec();
        match self.call(|tx| Command::Scrape(tracker, hashes, tx)).await? {
            Outcome::Scraped(r) => Ok(r),
            Outcome::Announced(_) => Err(TrackerError::Malformed {
                what: "UDP response action does not match the request",
            }),
        }
    }

    /// Resolves a `udp://host:port[/path]` URL to an address of the socket's
    /// family.
    ///
    /// # Errors
    /// [`TrackerError::InvalidUrl`] for a URL that is not `udp://host:port`
    /// or resolves to no usable address.
    pub async fn resolve(&self, url: &str) -> Result<SocketAddr, TrackerError> {
        let invalid = |what| TrackerError::InvalidUrl {
            url: url.to_owned(),
            what,
        };
        let rest = url
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("udp://"))
            .and_then(|_| url.get(6..))
            .ok_or_else(|| invalid("not a udp:// URL"))?;
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if !host_port.contains(':') || host_port.ends_with(']') {
            return Err(invalid("no port"));
        }
        let family = AddressFamily::of(&self.local);
        let addrs = tokio::net::lookup_host(host_port)
            .await
            .map_err(|_| invalid("host does not resolve"))?;
        addrs
            .into_iter()
            .find(|a| AddressFamily::of(a) == family)
            .ok_or_else(|| invalid("no address of the socket's family"))
    }

    /// [`resolve`](Self::resolve), then [`announce`](Self::announce).
    ///
    /// # Errors
    /// As both.
    pub async fn announce_url(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let addr = self.resolve(url).await?;
        self.announce(addr, request).await
    }
}

struct Tracker {
    machine: UdpTrackerMachine,
    waiting: HashMap<OpId, Reply>,
}

struct Driver {
    socket: Arc<UdpSocket>,
    config: UdpConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    trackers: HashMap<SocketAddr, Tracker>,
    random: RandomState,
}

impl Driver {
    fn tracker(&mut self, addr: SocketAddr) -> &mut Tracker {
        let (config, random) = (self.config, self.random.clone());
        self.trackers.entry(addr).or_insert_with(|| {
            let mut counter = 0u64;
            let ids = move || {
                counter = counter.wrapping_add(1);
                let mut h = random.build_hasher();
                h.write_u64(counter);
                // Truncation intended: any 32 bits of the hash will do.
                h.finish() as u32
            };
            Tracker {
                machine: UdpTrackerMachine::new(AddressFamily::of(&addr), config, Box::new(ids)),
                waiting: HashMap::new(),
            }
        })
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Announce(addr, req, reply) => {
                let t = self.tracker(addr);
                let op = t.machine.announce(now, &req);
                t.waiting.insert(op, reply);
            }
            Command::Scrape(addr, hashes, reply) => {
                let t = self.tracker(addr);
                match t.machine.scrape(now, &hashes) {
                    Ok(op) => {
                        t.waiting.insert(op, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// Sends what the machines want sent and answers finished operations.
    async fn flush(&mut self) {
        let mut out = Vec::new();
        let mut sends = Vec::new();
        for (addr, t) in &mut self.trackers {
            while t.machine.poll_transmit(&mut out) {
                sends.push((*addr, out.clone()));
            }
            while let Some(event) = t.machine.poll_event() {
                let (op, result) = match event {
                    UdpEvent::Announced { op, response } => (op, Ok(Outcome::Announced(response))),
                    UdpEvent::Scraped { op, response } => (op, Ok(Outcome::Scraped(response))),
                    UdpEvent::Failed { op, error } => (op, Err(error)),
                };
                if let Some(reply) = t.waiting.remove(&op) {
                    // The caller may have given up; nothing to do then.
                    let _ = reply.send(result);
                }
            }
        }
        let now = Instant::now();
        self.trackers
            .retain(|_, t| !t.waiting.is_empty() || !t.machine.is_idle(now));
        for (addr, packet) in sends {
            // A lost send is retransmitted on the machine's timeout.
            let _ = self.socket.send_to(&packet, addr).await;
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let deadline = self
                .trackers
                .values()
                .filter_map(|t| t.machine.poll_timeout())
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let socket = Arc::clone(&self.socket);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                received = socket.recv_from(&mut buf) => {
                    // Errors (e.g. ICMP port unreachable) are left to the timeouts.
                    if let Ok((len, from)) = received
                        && let Some(t) = self.trackers.get_mut(&from)
                    {
                        t.machine.handle_input(Instant::now(), &buf[..len]);
                    }
                }
                () = sleep => {
                    let now = Instant::now();
                    for t in self.trackers.values_mut() {
                        t.machine.handle_timeout(now);
                    }
                }
            }
            self.flush().await;
        }
    }
}
