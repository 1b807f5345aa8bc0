//! The tracker's configuration (TOML) and [`start`], which brings up every
//! server it names over one store.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UdpSocket};
use webtorrent_types::InfoHashV1;

use crate::http::HttpConfig;
use crate::http_server::{HttpServer, TcpOptions};
use crate::limits::RateLimiter;
use crate::shared::{SharedLimiter, SharedStore, StoreExpiry};
use crate::store::{StoreConfig, SwarmStore};
use crate::udp::UdpConfig;
use crate::udp_server::UdpServer;
use crate::ws::WsConfig;

/// Everything a tracker process is configured with. Every field has a
/// default, so an empty TOML file is a valid configuration: HTTP,
/// WebSocket and statistics on TCP `127.0.0.1:8000`, UDP on
/// `127.0.0.1:8000`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The address of every protocol unless `http`, `udp` or `ws` names
    /// another: HTTP and WebSocket on TCP, UDP on the same port number.
    pub listen: SocketAddr,
    /// HTTP announce and scrape on this TCP address instead of `listen`.
    pub http: Option<SocketAddr>,
    /// UDP (BEP 15) on this address instead of `listen`.
    pub udp: Option<SocketAddr>,
    /// WebSocket signaling on this TCP address instead of the HTTP one.
    pub ws: Option<SocketAddr>,
    /// Serve HTTP announce and scrape.
    pub enable_http: bool,
    /// Serve UDP.
    pub enable_udp: bool,
    /// Serve WebSocket signaling.
    pub enable_ws: bool,
    /// Serve `/stats`, `/stats.json` and `/metrics` on the HTTP (or WebSocket) port.
    pub enable_stats: bool,
    /// Re-announce interval of HTTP and UDP clients, in seconds.
    pub interval_secs: u64,
    /// Private tracker: accept only these info-hashes (40 hex digits).
    /// Empty together with `allowlist_file`: every info-hash is accepted.
    pub allowlist: Vec<String>,
    /// A file of allowed info-hashes, one per line (`#` comments).
    pub allowlist_file: Option<PathBuf>,
    /// Browser origins allowed to open WebSockets (e.g.
    /// `https://example.com`); empty allows all. Clients without an
    /// `Origin` header always pass.
    pub origins: Vec<String>,
    /// Swarm store limits.
    pub store: StoreSection,
    /// WebSocket signaling.
    pub websocket: WsSection,
    /// Limits per client address and on requests.
    pub limits: LimitsSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            http: None,
            udp: None,
            ws: None,
            enable_http: true,
            enable_udp: true,
            enable_ws: true,
            enable_stats: true,
            interval_secs: 30 * 60,
            allowlist: Vec::new(),
            allowlist_file: None,
            origins: Vec::new(),
            store: StoreSection::default(),
            websocket: WsSection::default(),
            limits: LimitsSection::default(),
        }
    }
}

/// `[store]`: the swarm store's caps and timings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreSection {
    /// Most swarms held.
    pub max_swarms: usize,
    /// Most peers per swarm.
    pub max_peers_per_swarm: usize,
    /// Most peers in all.
    pub max_peers: usize,
    /// Seconds after which a silent peer is dropped.
    pub peer_ttl_secs: u64,
    /// Seconds between expiry sweeps.
    pub expire_every_secs: u64,
    /// Peers per answer when the client does not say.
    pub default_numwant: usize,
    /// Most peers per answer.
    pub max_numwant: usize,
}

impl Default for StoreSection {
    fn default() -> Self {
        let s = StoreConfig::default();
        Self {
            max_swarms: s.max_swarms,
            max_peers_per_swarm: s.max_peers_per_swarm,
            max_peers: s.max_peers,
            peer_ttl_secs: s.peer_ttl.as_secs(),
            expire_every_secs: 60,
            default_numwant: s.default_numwant,
            max_numwant: s.max_numwant,
        }
    }
}

/// `[websocket]`: signaling settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WsSection {
    /// The announce `interval` sent to browsers, in seconds.
    pub interval_secs: u64,
    /// Largest message (and frame), in bytes.
    pub max_message_bytes: usize,
    /// Most swarms one connection may be in.
    pub max_swarms_per_connection: usize,
    /// Most swarms listed by a scrape naming none (0: none listed).
    pub max_full_scrape: usize,
    /// Seconds of silence after which a connection is closed.
    pub idle_timeout_secs: u64,
    /// Frames queued per connection before more are dropped.
    pub send_queue: usize,
}

impl Default for WsSection {
    fn default() -> Self {
        let w = WsConfig::default();
        let t = TcpOptions::default();
        Self {
            interval_secs: w.interval.as_secs(),
            max_message_bytes: w.max_message_bytes,
            max_swarms_per_connection: w.max_swarms_per_connection,
            max_full_scrape: w.max_full_scrape,
            idle_timeout_secs: t.ws_idle_timeout.as_secs(),
            send_queue: t.ws_send_queue,
        }
    }
}

/// `[limits]`: per client address and per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsSection {
    /// Requests (announces, scrapes, WebSocket messages, UDP datagrams)
    /// per second per client address; 0 for no limit.
    pub requests_per_second: u32,
    /// Requests one address may make at once before the rate applies.
    pub request_burst: u32,
    /// Client addresses tracked by the rate limiter.
    pub max_tracked_addresses: usize,
    /// Open TCP connections per client address.
    pub max_connections_per_ip: usize,
    /// Open TCP connections in all.
    pub max_connections: usize,
    /// Milliseconds a client has to send its request headers (and an idle
    /// keep-alive connection stays open).
    pub header_timeout_ms: u64,
    /// Largest HTTP request head, in bytes (at least 8192).
    pub max_request_bytes: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let t = TcpOptions::default();
        Self {
            requests_per_second: 0,
            request_burst: 50,
            max_tracked_addresses: 100_000,
            max_connections_per_ip: t.max_connections_per_ip,
            max_connections: t.max_connections,
            header_timeout_ms: u64::try_from(t.header_timeout.as_millis()).unwrap_or(u64::MAX),
            max_request_bytes: t.max_request_bytes,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML text is not a configuration.
    #[error("bad tracker configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// An allowlist entry is not 40 hex digits.
    #[error("allowlist entry {0:?} is not a 40-digit hex info-hash")]
    BadInfoHash(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every protocol is disabled.
    #[error("nothing to serve: HTTP, UDP and WebSocket are all disabled")]
    NothingToServe,
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

impl Config {
    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for text that is not a configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// The configuration as TOML text (what `--print-config` prints).
    #[must_use]
    pub fn to_toml(&self) -> String {
        // Every field serializes: no maps with non-string keys, no NaN.
        toml::to_string(self).unwrap_or_default()
    }

    /// The allowlist of `allowlist` and `allowlist_file`, or `None` when
    /// both are empty.
    ///
    /// # Errors
    /// An unreadable file or an entry that is not an info-hash.
    pub fn allowed_hashes(&self) -> Result<Option<HashSet<InfoHashV1>>, ConfigError> {
        let mut entries: Vec<String> = self.allowlist.clone();
        if let Some(path) = &self.allowlist_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            entries.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
                    .filter(|l| !l.is_empty()),
            );
        } else if entries.is_empty() {
            return Ok(None);
        }
        entries
            .into_iter()
            .map(|e| parse_hex_hash(&e).ok_or(ConfigError::BadInfoHash(e)))
            .collect::<Result<HashSet<_>, _>>()
            .map(Some)
    }

    fn store_config(&self) -> StoreConfig {
        let s = &self.store;
        StoreConfig {
            max_swarms: s.max_swarms,
            max_peers_per_swarm: s.max_peers_per_swarm,
            max_peers: s.max_peers,
            peer_ttl: Duration::from_secs(s.peer_ttl_secs),
            default_numwant: s.default_numwant,
            max_numwant: s.max_numwant,
        }
    }

    fn tcp_options(&self, http: bool, ws: bool) -> TcpOptions {
        let l = &self.limits;
        let w = &self.websocket;
        TcpOptions {
            http,
            ws,
            stats: self.enable_stats,
            http_config: HttpConfig {
                interval: Duration::from_secs(self.interval_secs),
                min_interval: None,
            },
            ws_config: WsConfig {
                interval: Duration::from_secs(w.interval_secs),
                max_message_bytes: w.max_message_bytes,
                max_swarms_per_connection: w.max_swarms_per_connection,
                max_full_scrape: w.max_full_scrape,
                ..WsConfig::default()
            },
            origins: self.origins.clone(),
            max_connections_per_ip: l.max_connections_per_ip,
            max_connections: l.max_connections,
            header_timeout: Duration::from_millis(l.header_timeout_ms.max(1)),
            max_request_bytes: l.max_request_bytes,
            ws_idle_timeout: Duration::from_secs(w.idle_timeout_secs.max(1)),
            ws_send_queue: w.send_queue,
        }
    }
}

fn parse_hex_hash(s: &str) -> Option<InfoHashV1> {
    let s = s.as_bytes();
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(InfoHashV1(out))
}

/// A running tracker: every server of a [`Config`] over one store.
/// Dropping it stops them.
#[derive(Debug)]
pub struct Tracker {
    store: SharedStore,
    /// TCP servers: (address, serves HTTP, serves WebSocket).
    tcp: Vec<(HttpServer, bool, bool)>,
    udp: Option<UdpServer>,
    _expiry: StoreExpiry,
}

impl Tracker {
    /// The store every protocol shares.
    #[must_use]
    pub const fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The TCP address serving HTTP announces, if any.
    #[must_use]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.tcp
            .iter()
            .find(|(_, http, _)| *http)
            .map(|(s, _, _)| s.local_addr())
    }

    /// The TCP address serving WebSocket signaling, if any.
    #[must_use]
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.tcp
            .iter()
            .find(|(_, _, ws)| *ws)
            .map(|(s, _, _)| s.local_addr())
    }

    /// The UDP address, if any.
    #[must_use]
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(UdpServer::local_addr)
    }

    /// The announce URLs served, one per protocol.
    #[must_use]
    pub fn announce_urls(&self) -> Vec<String> {
        let mut urls = Vec::new();
        if let Some(a) = self.http_addr() {
            urls.push(format!("http://{a}/announce"));
        }
        if let Some(a) = self.udp_addr() {
            urls.push(format!("udp://{a}"));
        }
        if let Some(a) = self.ws_addr() {
            urls.push(format!("ws://{a}"));
        }
        urls
    }
}

/// Binds every server `config` names, over one store, on the current tokio
/// runtime. With a `listen` port of 0, the UDP socket takes the port number
/// the TCP listener got.
///
/// # Errors
/// A bad allowlist, nothing enabled, or an address that cannot be bound.
pub async fn start(config: &Config) -> Result<Tracker, ConfigError> {
    if !config.enable_http && !config.enable_udp && !config.enable_ws {
        return Err(ConfigError::NothingToServe);
    }
    let mut store = SwarmStore::new(config.store_config(), seed());
    store.set_allowlist(config.allowed_hashes()?);
    let store: SharedStore = Arc::new(Mutex::new(store));
    let limits = &config.limits;
    let limiter: Option<SharedLimiter> = (limits.requests_per_second > 0).then(|| {
        Arc::new(Mutex::new(RateLimiter::new(
            limits.requests_per_second,
            limits.request_burst,
            limits.max_tracked_addresses,
        )))
    });
    let bind_tcp = async |addr: SocketAddr| {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ConfigError::Bind { addr, source })
    };
    let mut tcp = Vec::new();
    let http_addr = config.http.unwrap_or(config.listen);
    let ws_addr = config.ws.unwrap_or(http_addr);
    // A WebSocket address of its own (port 0 included) gets its own listener.
    let together = config.enable_http
        && config.enable_ws
        && (config.ws.is_none() || (ws_addr == http_addr && ws_addr.port() != 0));
    let mut first_tcp_port = None;
    if config.enable_http {
        let listener = bind_tcp(http_addr).await?;
        first_tcp_port = listener.local_addr().ok().map(|a| a.port());
        let options = config.tcp_options(true, together);
        let server = HttpServer::serve(listener, store.clone(), options, limiter.clone()).map_err(
            |source| ConfigError::Bind {
                addr: http_addr,
                source,
            },
        )?;
        tcp.push((server, true, together));
    }
    if config.enable_ws && !together {
        let listener = bind_tcp(ws_addr).await?;
        first_tcp_port = first_tcp_port.or(listener.local_addr().ok().map(|a| a.port()));
        let options = config.tcp_options(false, true);
        let server = HttpServer::serve(listener, store.clone(), options, limiter.clone()).map_err(
            |source| ConfigError::Bind {
                addr: ws_addr,
                source,
            },
        )?;
        tcp.push((server, false, true));
    }
    let udp = if config.enable_udp {
        let mut addr = config.udp.unwrap_or(config.listen);
        if config.udp.is_none()
            && addr.port() == 0
            && let Some(port) = first_tcp_port
        {
            addr.set_port(port);
        }
        let socket = bind_udp(addr).map_err(|source| ConfigError::Bind { addr, source })?;
        let udp_config = UdpConfig {
            interval: Duration::from_secs(config.interval_secs),
        };
        Some(
            UdpServer::serve(socket, store.clone(), udp_config, limiter)
                .map_err(|source| ConfigError::Bind { addr, source })?,
        )
    } else {
        None
    };
    let expiry = StoreExpiry::spawn(
        store.clone(),
        Duration::from_secs(config.store.expire_every_secs.max(1)),
    );
    Ok(Tracker {
        store,
        tcp,
        udp,
        _expiry: expiry,
    })
}

/// The most bytes of queued datagrams asked of the kernel for the UDP socket (it caps the
/// request at `net.core.rmem_max`): bursts of announces wait there instead of being dropped.
const UDP_RECV_BUFFER: usize = 8 << 20;

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // `[::]` serves IPv4 clients too where the system allows it.
        let _ = socket.set_only_v6(false);
    }
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!("UDP tracker keeps the default receive buffer: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// A seed for peer picks that differs between runs.
fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Picks only need to differ between runs, not to be secret.
        return Instant::now().elapsed().as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    }
    u64::from_le_bytes(b)
}
