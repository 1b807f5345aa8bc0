//! `HttpServer`: HTTP announce and scrape on a tokio TCP listener (axum).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http::{HttpConfig, HttpHandler};
use crate::shared::SharedStore;

#[derive(Clone)]
struct App {
    store: SharedStore,
    handler: Arc<HttpHandler>,
}

/// HTTP announce (`GET /announce`) and scrape (`GET /scrape`) over the
/// [`SwarmStore`](crate::SwarmStore) shared with the other protocols,
/// served by a task spawned on the current runtime. Every answer has status
/// 200 and a bencoded body, refusals included (`failure reason`). Dropping
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
    /// Binds `local` and starts serving.
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

    /// Serves on a bound listener.
    ///
    /// # Errors
    /// The listener's address error.
    pub fn from_listener(
        listener: TcpListener,
        store: SharedStore,
        config: HttpConfig,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let app = Router::new()
            .route("/announce", get(announce))
            .route("/scrape", get(scrape))
            .with_state(App {
                store,
                handler: Arc::new(HttpHandler::new(config)),
            });
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                tracing::warn!("HTTP tracker stopped: {e}");
            }
        });
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

fn bencoded(body: Vec<u8>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain")], body)
}

async fn announce(
    State(app): State<App>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> impl IntoResponse {
    let mut store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
    let body = app.handler.announce(
        &mut store,
        Instant::now(),
        remote,
        query.as_deref().unwrap_or(""),
    );
    bencoded(body)
}

async fn scrape(State(app): State<App>, RawQuery(query): RawQuery) -> impl IntoResponse {
    let store = app.store.lock().unwrap_or_else(PoisonError::into_inner);
    bencoded(app.handler.scrape(&store, query.as_deref().unwrap_or("")))
}
