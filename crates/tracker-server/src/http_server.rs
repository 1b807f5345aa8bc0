//! `HttpServer`: HTTP announce and scrape, WebSocket signaling, statistics,
//! all on one tokio TCP listener (hyper and axum).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CONNECTION, CONTENT_TYPE, HeaderValue, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::http::{HttpConfig, HttpHandler};
use crate::http_fast::{self, FastKind, Prefixed};
use crate::limits::ConnectionCounter;
use crate::shared::{SharedLimiter, SharedStore};
use crate::stats;
use crate::store::StoreStats;
use crate::ws::{WsConfig, WsHandler, WsSend};

/// What an [`HttpServer`] serves and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpOptions {
    /// Serve HTTP announce and scrape (`/announce`, `/scrape`).
    pub http: bool,
    /// Accept WebSocket signaling (an upgrade on any path).
    pub ws: bool,
    /// Serve `/stats`, `/stats.json` and `/metrics`.
    pub stats: bool,
    /// HTTP announce settings.
    pub http_config: HttpConfig,
    /// WebSocket signaling settings.
    pub ws_config: WsConfig,
    /// Browser origins allowed to open WebSockets (`Origin` header, e.g.
    /// `https://example.com`); empty or `*` allows every origin. Clients
    /// without an `Origin` always pass.
    pub origins: Vec<String>,
    /// Open TCP connections (HTTP and WebSocket) per client address.
    pub max_connections_per_ip: usize,
    /// Open TCP connections in all.
    pub max_connections: usize,
    /// A request's headers must arrive within this time, and an idle
    /// keep-alive connection is closed after it.
    pub header_timeout: Duration,
    /// The largest request head, in bytes (at least 8192).
    pub max_request_bytes: usize,
    /// A WebSocket silent for this long is closed.
    pub ws_idle_timeout: Duration,
    /// Frames queued for one WebSocket; more are dropped while it is slow.
    pub ws_send_queue: usize,
}

impl Default for TcpOptions {
    /// HTTP, WebSocket and statistics on; 64 connections per address,
    /// 10 000 in all; 10 s to send headers; 16 KiB request heads; WebSockets
    /// idle for 10 minutes closed; 256 queued frames per WebSocket.
    fn default() -> Self {
        Self {
            http: true,
            ws: true,
            stats: true,
            http_config: HttpConfig::default(),
            ws_config: WsConfig::default(),
            origins: Vec::new(),
            max_connections_per_ip: 64,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            max_request_bytes: 16 * 1024,
            ws_idle_timeout: Duration::from_secs(600),
            ws_send_queue: 256,
        }
    }
}

/// The WebSocket side: signaling state and a sender per open connection.
#[derive(Debug)]
struct Hub {
    handler: WsHandler,
    senders: HashMap<u64, mpsc::Sender<String>>,
}

struct App {
    store: SharedStore,
    http: HttpHandler,
    hub: Mutex<Hub>,
    limiter: Option<SharedLimiter>,
    connections: Mutex<ConnectionCounter>,
    options: TcpOptions,
    next_conn: AtomicU64,
    started: Instant,
    /// The last walk of the store for statistics, reused for a second: the walk visits every
    /// peer under the store's lock.
    stats_cache: Mutex<Option<(Instant, StoreStats)>>,
}

/// How long a statistics walk is reused.
const STATS_FRESH: Duration = Duration::from_secs(1);

/// HTTP announce (`GET /announce`) and scrape (`GET /scrape`), WebSocket
/// signaling (an upgrade on any path, as bittorrent-tracker) and
/// statistics (`/stats`, `/stats.json`, `/metrics`) on one TCP listener,
/// over the [`SwarmStore`](crate::SwarmStore) shared with the other
/// protocols, served by a task spawned on the current runtime.
///
/// HTTP answers have status 200 and a bencoded body, refusals included
/// (`failure reason`). Limits: connections per address and in all,
/// header size and time, WebSocket message size, idle time and send
/// queue, and (with a limiter) requests per second per address. Dropping
/// the server stops accepting connections.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::sync::{Arc, Mutex};
/// use webtorrent_tracker_server::{HttpServer, StoreConfig, SwarmStore, http::HttpConfig};
///
/// let store = Arc::new(Mutex::new(SwarmStore::new(StoreConfig::default(), 1)));
/// let server = HttpServer::bind("0.0.0.0:8000".parse().unwrap(), store, HttpConfig::default()).await?;
/// println!("announce URL: http://{}/announce", server.local_addr());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpServer {
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds `local` and serves HTTP, WebSocket and statistics with
    /// default limits.
    ///
    /// # Errors
    /// The listener's bind error.
    pub async fn bind(
        local: SocketAddr,
        store: SharedStore,
        config: HttpConfig,
    ) -> io::Result<Self> {
        Self::from_listener(TcpListener::bind(local).await?, store, config)
    }

    /// Serves HTTP, WebSocket and statistics with default limits on a
    /// bound listener.
    ///
    /// # Errors
    /// The listener's address error.
    pub fn from_listener(
        listener: TcpListener,
        store: SharedStore,
        config: HttpConfig,
    ) -> io::Result<Self> {
        let options = TcpOptions {
            http_config: config,
            ..TcpOptions::default()
        };
        Self::serve(listener, store, options, None)
    }

    /// Serves on a bound listener with these options; `limiter` (shared
    /// with other servers, or not) meters announces, scrapes and WebSocket
    /// messages per client address.
    ///
    /// # Errors
    /// The listener's address error.
    pub fn serve(
        listener: TcpListener,
        store: SharedStore,
        options: TcpOptions,
        limiter: Option<SharedLimiter>,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let app = Arc::new(App {
            store,
            http: HttpHandler::new(options.http_config),
            hub: Mutex::new(Hub {
                handler: WsHandler::new(options.ws_config),
                senders: HashMap::new(),
            }),
            limiter,
            connections: Mutex::new(ConnectionCounter::new(
                options.max_connections_per_ip,
                options.max_connections,
            )),
            options,
            next_conn: AtomicU64::new(1),
            started: Instant::now(),
            stats_cache: Mutex::new(None),
        });
        let router = Router::new().fallback(dispatch).with_state(app.clone());
        // The deprecation is about types whose descriptor is not their own; a
        // `TcpListener` owns its descriptor, which lives as long as the `AsyncFd`.
        #[allow(deprecated)]
        let listener = AsyncFd::new(listener.into_std()?)?;
        let task = tokio::spawn(accept_loop(listener, app, router));
        Ok(Self { local, task })
    }

    /// The address served on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Releases a connection slot when dropped.
struct Slot {
    app: Arc<App>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.app.connections).close(self.ip);
    }
}

/// The slot of the HTTP connection a request came on; a WebSocket upgrade
/// takes it over.
#[derive(Clone)]
struct SlotCell(Arc<Mutex<Option<Slot>>>);

fn take_slot(app: &Arc<App>, ip: IpAddr) -> Option<Slot> {
    lock(&app.connections).open(ip).then(|| Slot {
        app: app.clone(),
        ip,
    })
}

/// Accepts connections with non-blocking calls on the listener's own
/// descriptor, and answers a plain announce or scrape that has already
/// arrived with the connection right there (see
/// [`http_fast`](crate::http_fast)): such a connection costs an `accept`, a
/// `read`, a `write` and a `close`, with no task and no registration with
/// the runtime. Every other connection gets a task.
async fn accept_loop(listener: AsyncFd<std::net::TcpListener>, app: Arc<App>, router: Router) {
    loop {
        let mut ready = match listener.readable().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("tracker listener failed: {e}");
                return;
            }
        };
        for _ in 0..ACCEPT_BATCH {
            match ready.get_inner().accept() {
                Ok((stream, remote)) => accepted(&app, &router, stream, remote),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::debug!("tracker accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
            }
        }
        // Let the connections' tasks run between batches.
        tokio::task::yield_now().await;
    }
}

/// Connections accepted in a row before the accept loop yields.
const ACCEPT_BATCH: usize = 64;

fn accepted(app: &Arc<App>, router: &Router, stream: std::net::TcpStream, remote: SocketAddr) {
    let Some(slot) = take_slot(app, remote.ip()) else {
        tracing::trace!("tracker refused a connection from {remote}: limit");
        return;
    };
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut stream = stream;
    let mut read = Vec::new();
    let mut unsent = Vec::new();
    if app.options.http {
        match answer_at_once(app, &mut stream, remote, &mut read) {
            AtOnce::Done => return,
            AtOnce::Unsent(rest) => unsent = rest,
            AtOnce::Later => {}
        }
    }
    let Ok(stream) = TcpStream::from_std(stream) else {
        return;
    };
    tokio::spawn(serve_connection(
        stream,
        remote,
        app.clone(),
        router.clone(),
        slot,
        read,
        unsent,
    ));
}

/// What [`answer_at_once`] left for the connection's task.
enum AtOnce {
    /// Nothing: the connection was answered and closed (or failed).
    Done,
    /// The end of an answer the socket did not take at once.
    Unsent(Vec<u8>),
    /// The request, or its end, has not arrived; or it is not a plain
    /// announce or scrape; or the connection stays open.
    Later,
}

/// Reads what a just-accepted connection has already sent and, when it is
/// a whole plain announce or scrape that closes the connection, answers it.
fn answer_at_once(
    app: &App,
    stream: &mut std::net::TcpStream,
    remote: SocketAddr,
    read: &mut Vec<u8>,
) -> AtOnce {
    use std::io::{Read, Write};
    let mut buf = [0u8; http_fast::FAST_HEAD_LIMIT];
    let n = match stream.read(&mut buf) {
        Ok(0) => return AtOnce::Done,
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return AtOnce::Later,
        Err(_) => return AtOnce::Done,
    };
    read.extend_from_slice(&buf[..n]);
    let Some(end) = http_fast::head_end(read, 0) else {
        return AtOnce::Later;
    };
    match http_fast::classify(&read[..end]) {
        Some(request) if !request.keep_alive && end == read.len() => {}
        _ => return AtOnce::Later,
    }
    let answer = fast_answer(app, remote, &read[..end]);
    read.clear();
    match stream.write(&answer) {
        Ok(n) if n == answer.len() => AtOnce::Done,
        Ok(n) => AtOnce::Unsent(answer[n..].to_vec()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => AtOnce::Unsent(answer),
        Err(_) => AtOnce::Done,
    }
}

/// The whole answer to the fast-path request whose head is `head`.
fn fast_answer(app: &App, remote: SocketAddr, head: &[u8]) -> Vec<u8> {
    let Some(request) = http_fast::classify(head) else {
        return Vec::new();
    };
    let now = Instant::now();
    let body = if allowed(app, now, remote.ip()) {
        match request.kind {
            FastKind::Announce => {
                let mut store = lock(&app.store);
                app.http.announce(&mut store, now, remote, request.query)
            }
            FastKind::Scrape => {
                let store = lock(&app.store);
                app.http.scrape(&store, request.query)
            }
        }
    } else {
        bencoded_failure("rate limit exceeded")
    };
    http_fast::response(&body, request.keep_alive)
}

/// Serves a connection of which `read` was read and whose answer's end
/// `unsent` is still to be written.
async fn serve_connection(
    mut stream: TcpStream,
    remote: SocketAddr,
    app: Arc<App>,
    router: Router,
    slot: Slot,
    mut read: Vec<u8>,
    unsent: Vec<u8>,
) {
    let timeout = app.options.header_timeout;
    if !unsent.is_empty() {
        // The answer of a request that closes the connection.
        let _ =
            tokio::time::timeout_at(http_fast::deadline(timeout), stream.write_all(&unsent)).await;
        return;
    }
    if app.options.http && !serve_fast(&app, &mut stream, remote, &mut read).await {
        return;
    }
    let _ = stream.set_nodelay(true);
    let (header_timeout, max_buf) = (timeout, app.options.max_request_bytes.max(8192));
    let slot = SlotCell(Arc::new(Mutex::new(Some(slot))));
    let cell = slot.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(remote));
        req.extensions_mut().insert(cell.clone());
        let mut router = router.clone();
        async move {
            let req = req.map(Body::new);
            tower_service::Service::call(&mut router, req).await
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(max_buf)
        .serve_connection(TokioIo::new(Prefixed::new(read, stream)), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::trace!("tracker connection from {remote}: {e}");
    }
    drop(slot);
}

/// Serves the plain announces and scrapes at the start of a connection
/// (see [`http_fast`](crate::http_fast)). Returns whether the connection
/// goes on to the general path, with `read` holding what was read of it;
/// false when it is done.
async fn serve_fast(
    app: &App,
    stream: &mut TcpStream,
    remote: SocketAddr,
    read: &mut Vec<u8>,
) -> bool {
    let timeout = app.options.header_timeout;
    loop {
        let deadline = http_fast::deadline(timeout);
        let mut searched = 0;
        let end = loop {
            if let Some(end) = http_fast::head_end(read, searched) {
                break end;
            }
            if read.len() >= http_fast::FAST_HEAD_LIMIT {
                return true;
            }
            searched = read.len();
            read.reserve(1024);
            match tokio::time::timeout_at(deadline, stream.read_buf(read)).await {
                Ok(Ok(n)) if n > 0 => {}
                // End of stream, an error, or a head (or the next request
                // of a kept-alive connection) that came too slowly.
                _ => return false,
            }
        };
        let Some(request) = http_fast::classify(&read[..end]) else {
            return true;
        };
        let keep_alive = request.keep_alive;
        let answer = fast_answer(app, remote, &read[..end]);
        read.drain(..end);
        let written =
            tokio::time::timeout_at(http_fast::deadline(timeout), stream.write_all(&answer)).await;
        if !matches!(written, Ok(Ok(()))) || !keep_alive {
            return false;
        }
    }
}

fn bencoded_failure(reason: &str) -> Vec<u8> {
    format!("d14:failure reason{}:{reason}e", reason.len()).into_bytes()
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(CONTENT_TYPE, "text/plain")], body).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn allowed(app: &App, now: Instant, ip: IpAddr) -> bool {
    app.limiter.as_ref().is_none_or(|l| lock(l).allow(now, ip))
}

async fn dispatch(
    State(app): State<Arc<App>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    if is_upgrade(&req) {
        return if app.options.ws {
            upgrade(app, remote, req)
        } else {
            not_found()
        };
    }
    if req.method() != Method::GET {
        return not_found();
    }
    let query = req.uri().query().unwrap_or("");
    let now = Instant::now();
    match req.uri().path() {
        "/announce" if app.options.http => {
            if !allowed(&app, now, remote.ip()) {
                return bencoded(bencoded_failure("rate limit exceeded"));
            }
            let mut store = lock(&app.store);
            bencoded(app.http.announce(&mut store, now, remote, query))
        }
        "/scrape" if app.options.http => {
            if !allowed(&app, now, remote.ip()) {
                return bencoded(bencoded_failure("rate limit exceeded"));
            }
            let store = lock(&app.store);
            bencoded(app.http.scrape(&store, query))
        }
        "/stats" | "/stats.json" | "/metrics" if app.options.stats => {
            if !allowed(&app, now, remote.ip()) {
                return (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded").into_response();
            }
            stats_response(&app, &req)
        }
        _ => not_found(),
    }
}

fn stats_response(app: &App, req: &Request) -> Response {
    let ws_connections = lock(&app.hub).handler.connection_count();
    let tcp_connections = lock(&app.connections).open_count();
    let store = {
        let mut cache = lock(&app.stats_cache);
        match *cache {
            Some((at, stats)) if at.elapsed() < STATS_FRESH => stats,
            _ => {
                let stats = lock(&app.store).stats();
                *cache = Some((Instant::now(), stats));
                stats
            }
        }
    };
    let snapshot = stats::Snapshot {
        store,
        ws_connections,
        tcp_connections,
        uptime: app.started.elapsed(),
    };
    let path = req.uri().path();
    if path == "/metrics" {
        return (
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            stats::prometheus(&snapshot),
        )
            .into_response();
    }
    // bittorrent-tracker: JSON at /stats.json or for `Accept:
    // application/json`; also `?format=json`.
    let json = path == "/stats.json"
        || req.uri().query().is_some_and(|q| q.contains("format=json"))
        || req
            .headers()
            .get("accept")
            .is_some_and(|a| a.as_bytes().starts_with(b"application/json"));
    if json {
        ([(CONTENT_TYPE, "application/json")], stats::json(&snapshot)).into_response()
    } else {
        ([(CONTENT_TYPE, "text/plain")], stats::text(&snapshot)).into_response()
    }
}

fn header_has_token(req: &Request, name: axum::http::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn is_upgrade(req: &Request) -> bool {
    req.method() == Method::GET
        && header_has_token(req, CONNECTION, "upgrade")
        && header_has_token(req, UPGRADE, "websocket")
}

fn origin_allowed(origins: &[String], req: &Request) -> bool {
    let Some(origin) = req.headers().get(ORIGIN) else {
        return true;
    };
    origins.is_empty()
        || origins
            .iter()
            .any(|o| o == "*" || o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
}

fn upgrade(app: Arc<App>, remote: SocketAddr, mut req: Request) -> Response {
    if !origin_allowed(&app.options.origins, &req) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return (StatusCode::BAD_REQUEST, "unsupported WebSocket version").into_response();
    }
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
        return (StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (StatusCode::BAD_REQUEST, "cannot upgrade").into_response();
    };
    // The upgraded connection keeps the HTTP connection's slot.
    let Some(slot) = req
        .extensions()
        .get::<SlotCell>()
        .and_then(|c| lock(&c.0).take())
    else {
        return (StatusCode::BAD_REQUEST, "cannot upgrade").into_response();
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => ws_session(app, remote, TokioIo::new(upgraded), slot).await,
            Err(e) => tracing::trace!("WebSocket upgrade from {remote} failed: {e}"),
        }
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

type BoxedIo = TokioIo<hyper::upgrade::Upgraded>;

fn deliver(hub: &Hub, sends: Vec<WsSend>) {
    for send in sends {
        if let Some(tx) = hub.senders.get(&send.to)
            && let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(send.text)
        {
            tracing::debug!("WebSocket {} is not reading: frame dropped", send.to);
        }
    }
}

async fn ws_session(app: Arc<App>, remote: SocketAddr, io: BoxedIo, slot: Slot) {
    let limit = app.options.ws_config.max_message_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let (mut sink, mut stream) = ws.split();
    let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<String>(app.options.ws_send_queue.max(1));
    {
        let mut hub = lock(&app.hub);
        hub.senders.insert(conn, tx);
        hub.handler.open(conn);
    }
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let idle = app.options.ws_idle_timeout;
    let mut out = Vec::new();
    loop {
        let message = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                tracing::trace!("WebSocket from {remote}: {e}");
                break;
            }
            Ok(None) | Err(_) => break,
        };
        let text = match &message {
            Message::Text(t) => t.as_str(),
            // bittorrent-tracker parses binary messages as JSON text too.
            Message::Binary(b) => match std::str::from_utf8(b) {
                Ok(t) => t,
                Err(_) => continue,
            },
            Message::Close(_) => break,
            _ => continue,
        };
        let now = Instant::now();
        let hub = &mut *lock(&app.hub);
        if allowed(&app, now, remote.ip()) {
            let mut store = lock(&app.store);
            hub.handler.message(&mut store, now, conn, text, &mut out);
        } else {
            out.push(WsSend {
                to: conn,
                text: r#"{"failure reason":"rate limit exceeded"}"#.to_owned(),
            });
        }
        deliver(hub, std::mem::take(&mut out));
    }
    {
        let mut hub = lock(&app.hub);
        hub.senders.remove(&conn);
        let mut store = lock(&app.store);
        hub.handler.close(&mut store, conn);
    }
    // Frames still queued go out unless the peer stopped reading.
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
    drop(slot);
}
