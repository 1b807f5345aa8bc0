//! The HTTP server (feature `http`): file streaming, a JSON API, Prometheus metrics and the
//! web UI, on one port.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the web UI (static assets embedded in the binary) |
//! | `GET, HEAD /stream/{info_hash}/{file_index}` | a file, with `Range` (→ 206), `If-Range` |
//! | `GET, HEAD /files/{info_hash}/{*path}` | the same by the file's path in the torrent |
//! | `GET /api/torrents` | every torrent |
//! | `POST /api/torrents` | add: JSON `{"magnet": …}` or `{"url": …}`, or a `.torrent` body (`?peer=IP:PORT`) |
//! | `GET, DELETE /api/torrents/{info_hash}` | one torrent; remove it (`?delete_data=true`) |
//! | `POST /api/torrents/{info_hash}/pause`, `/resume` | pause, resume |
//! | `GET, PUT /api/torrents/{info_hash}/files` | files; their priorities |
//! | `GET /api/torrents/{info_hash}/peers`, `/trackers` | peers (tcp, utp, webrtc), trackers |
//! | `GET /api/torrents/{info_hash}/pieces` | the verified pieces, as a bitfield |
//! | `GET, PUT /api/limits` | the client's upload and download limits |
//! | `GET /api/events` | live updates (Server-Sent Events) |
//! | `GET /metrics` | Prometheus text format |
//!
//! Errors are JSON, `{"error": "…"}`, with the matching status. The server binds
//! `127.0.0.1` by default; bound elsewhere, give it [`Auth`] (HTTP basic or a token).
//! See `docs/http.md` for every field.
//!
//! ```no_run
//! use webtorrent::http::{HttpConfig, WebServer};
//! use webtorrent::session::{Client, ClientConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::new("downloads")).await?;
//! let server = WebServer::start(client, HttpConfig::default()).await?;
//! println!("open {}", server.url());
//! # server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod api;
mod assets;
mod fetch;
mod range;
mod stream;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::session::{Client, SessionError, Torrent, TorrentEvent};

pub use range::{ByteRange, parse_range};

/// How the server is reached and guarded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Where to listen (default `127.0.0.1:8000`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// Credentials every request must carry (default none: fine on loopback only).
    pub auth: Option<Auth>,
    /// How long a stream request waits for a magnet link's metadata, and for the first
    /// bytes of its range (default 60 s); then it answers 504.
    pub first_byte_timeout: Duration,
    /// How long a response body may wait for its next piece before it is cut (default
    /// 120 s).
    pub stall_timeout: Duration,
    /// How long fetching a `.torrent` by URL may take (default 30 s).
    pub fetch_timeout: Duration,
    /// The largest `.torrent` accepted, uploaded or fetched (default 16 MiB).
    pub max_torrent_size: usize,
    /// How long a client may take to send a request's head, and its body (default 30 s).
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            auth: None,
            first_byte_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(120),
            fetch_timeout: Duration::from_secs(30),
            max_torrent_size: 16 << 20,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Credentials the server asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// HTTP basic authentication (browsers ask for it, and send it with every request of
    /// the page, the video player's included).
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token: `Authorization: Bearer TOKEN`, or `?token=TOKEN` in the URL (for
    /// players that cannot set headers). The web UI's page and assets are served without
    /// it; opened as `/?token=TOKEN`, the page sends it with every request it makes.
    Token(String),
}

/// What can go wrong starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A torrent the server knows.
#[derive(Debug)]
struct Entry {
    torrent: Torrent,
    /// When it was added, in seconds since the Unix epoch.
    added: u64,
    /// The last error the torrent reported (storage, or a magnet that cannot start).
    error: Arc<Mutex<Option<String>>>,
    watcher: JoinHandle<()>,
}

/// What the handlers share.
#[derive(Debug)]
struct Shared {
    client: Client,
    config: HttpConfig,
    torrents: Mutex<BTreeMap<String, Entry>>,
    /// The limits last set through the API (bytes per second, 0 for none).
    limits: Mutex<(u64, u64)>,
    fetcher: fetch::Fetcher,
}

impl Shared {
    fn torrents(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.torrents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tracks `torrent`; `false` if it is tracked already.
    fn track(&self, torrent: Torrent) -> bool {
        let key = torrent.info_hash().to_hex();
        let mut torrents = self.torrents();
        if torrents.contains_key(&key) {
            return false;
        }
        let error = Arc::new(Mutex::new(None));
        let watcher = {
            let error = Arc::clone(&error);
            let mut events = torrent.events();
            tokio::spawn(async move {
                loop {
                    let message = match events.recv().await {
                        Ok(TorrentEvent::Failed(e) | TorrentEvent::StorageError(e)) => e,
                        Ok(TorrentEvent::Stopped)
                        | Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            continue;
                        }
                    };
                    *error.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
                }
            })
        };
        let added = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        torrents.insert(
            key,
            Entry {
                torrent,
                added,
                error,
                watcher,
            },
        );
        true
    }

    /// The torrent named by a hex info-hash in a URL.
    fn find(&self, info_hash: &str) -> Result<Torrent, ApiError> {
        let key = info_hash.to_ascii_lowercase();
        if key.len() != 40 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "an info-hash is 40 hex digits",
            ));
        }
        self.torrents()
            .get(&key)
            .map(|e| e.torrent.clone())
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such torrent"))
    }
}

/// The server: the client it drives and the HTTP listener.
#[derive(Debug)]
pub struct WebServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl WebServer {
    /// Binds `config.bind` and serves `client`'s torrents (those added through the API and
    /// those given to [`track`](Self::track)).
    pub async fn start(client: Client, config: HttpConfig) -> Result<Self, HttpError> {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| HttpError::Bind {
                addr: config.bind,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: config.bind,
            source,
        })?;
        if !local_addr.ip().is_loopback() && config.auth.is_none() {
            tracing::warn!(%local_addr, "the HTTP server is reachable from other machines without a password");
        }
        let shared = Arc::new(Shared {
            client,
            fetcher: fetch::Fetcher::new(config.fetch_timeout, config.max_torrent_size),
            config,
            torrents: Mutex::new(BTreeMap::new()),
            limits: Mutex::new((0, 0)),
        });
        let app = router(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let head_timeout = shared.config.request_timeout;
        let task = tokio::spawn(accept_loop(listener, app, head_timeout, stopped));
        tracing::info!(%local_addr, "HTTP server listening");
        Ok(Self {
            shared,
            local_addr,
            stop: Some(stop),
            task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's base URL, `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr)
    }

    /// The URL streaming file `index` of `torrent`.
    pub fn stream_url(&self, torrent: &Torrent, index: usize) -> String {
        format!(
            "http://{}/stream/{}/{index}",
            self.local_addr,
            torrent.info_hash().to_hex()
        )
    }

    /// The client the server drives.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// Shows a torrent added to the client directly (not through the API) in the API and
    /// the UI, and streams its files.
    pub fn track(&self, torrent: Torrent) {
        self.shared.track(torrent);
    }

    /// Stops serving (open responses are cut after 2 s), then shuts the client down.
    pub async fn shutdown(mut self) -> Result<(), SessionError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        for entry in self.shared.torrents().values() {
            entry.watcher.abort();
        }
        self.shared.client.shutdown().await
    }
}

/// How long open connections get to finish when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves HTTP/1.1 connections until `stopped`; each must send its request heads within
/// `head_timeout` (a client that never finishes one does not hold a connection).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    head_timeout: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(head_timeout);
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = http.serve_connection(io, service).await {
                        tracing::debug!("HTTP connection ended: {e}");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stopped => break,
        }
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/stream/{info_hash}/{index}", get(stream::by_index))
        .route("/files/{info_hash}/{*path}", get(stream::by_path))
        .route("/api/torrents", get(api::list).post(api::add))
        .route(
            "/api/torrents/{info_hash}",
            get(api::details).delete(api::remove),
        )
        .route("/api/torrents/{info_hash}/pause", post(api::pause))
        .route("/api/torrents/{info_hash}/resume", post(api::resume))
        .route(
            "/api/torrents/{info_hash}/files",
            get(api::files).put(api::set_files),
        )
        .route("/api/torrents/{info_hash}/peers", get(api::peers))
        .route("/api/torrents/{info_hash}/pieces", get(api::pieces))
        .route("/api/torrents/{info_hash}/trackers", get(api::trackers))
        .route("/api/limits", get(api::limits).put(api::set_limits))
        .route("/api/events", get(api::events))
        .route("/metrics", get(api::metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard,
        ))
        .with_state(shared)
}

/// Checks the credentials of every request when the server has some.
async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(auth) = &shared.config.auth else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let allowed = match auth {
        Auth::Basic { user, password } => given
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .is_some_and(|pair| same(&pair, format!("{user}:{password}").as_bytes())),
        Auth::Token(token) => {
            // The page and its assets hold nothing secret, and a browser cannot add the
            // token to them: the page (opened as `/?token=…`) adds it to its own requests.
            let path = request.uri().path();
            if path == "/" || path.starts_with("/assets/") {
                return next.run(request).await;
            }
            let from_header = given.and_then(|v| v.strip_prefix("Bearer "));
            let from_query = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
            from_header
                .into_iter()
                .chain(from_query)
                .any(|t| same(t.trim().as_bytes(), token.as_bytes()))
        }
    };
    if allowed {
        return next.run(request).await;
    }
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "credentials needed").into_response();
    if matches!(auth, Auth::Basic { .. }) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"webtorrent\", charset=\"UTF-8\""),
        );
    }
    response
}

/// Compares secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        let status = match &e {
            SessionError::Duplicate(_) => StatusCode::CONFLICT,
            SessionError::MetadataPending => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::Stopped => StatusCode::GONE,
            SessionError::EmptySelection { .. }
            | SessionError::FilePriorities(_)
            | SessionError::NoInfoHash
            | SessionError::Unsupported { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}
