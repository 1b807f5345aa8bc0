//! The JSON API, live updates and metrics.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, Entry, Shared};
use crate::choker::Transport;
use crate::metainfo::Metainfo;
use crate::ratelimit::Limit;
use crate::session::{AddOptions, Torrent};

/// How often `/api/events` sends the torrents.
const EVENT_PERIOD: Duration = Duration::from_secs(1);

/// A request's body, at most `limit` bytes, within the configured request timeout.
async fn read_body(
    shared: &Shared,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let within = shared.config.request_timeout;
    match tokio::time::timeout(within, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes or was cut"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time",
        )),
    }
}

/// The most bytes of a JSON body other than an upload.
const MAX_JSON: usize = 64 * 1024;

/// A torrent as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct TorrentJson {
    info_hash: String,
    /// `None` until a magnet link's metadata is in.
    name: Option<String>,
    magnet: Option<String>,
    /// `metadata`, `downloading`, `seeding` (done), `paused` or `error`.
    state: &'static str,
    /// Verified share of the wanted bytes, 0 to 1.
    progress: f64,
    /// Bytes wanted (the torrent's size unless files are skipped).
    size: u64,
    /// Bytes of wanted pieces not verified yet.
    left: u64,
    downloaded: u64,
    uploaded: u64,
    download_rate: u64,
    upload_rate: u64,
    peers: usize,
    verified_pieces: u32,
    total_pieces: u32,
    /// Seconds to completion at the current rate.
    eta: Option<u64>,
    added: u64,
    error: Option<String>,
}

fn torrent_json(entry: &Entry) -> TorrentJson {
    let t = &entry.torrent;
    let stats = t.stats();
    let meta = t.metainfo();
    let error = entry
        .error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let state = if error.is_some() {
        "error"
    } else if t.is_paused() {
        "paused"
    } else if meta.is_none() {
        "metadata"
    } else if t.is_done() {
        "seeding"
    } else {
        "downloading"
    };
    let progress = if stats.wanted == 0 {
        0.0
    } else {
        (stats.wanted - stats.left.min(stats.wanted)) as f64 / stats.wanted as f64
    };
    let eta = (stats.left > 0 && stats.download_rate > 0)
        .then(|| stats.left.div_ceil(stats.download_rate));
    TorrentJson {
        info_hash: t.info_hash().to_hex(),
        name: meta.as_ref().map(|m| m.info().name().to_owned()),
        magnet: meta.as_ref().map(|m| crate::magnet_link(m).to_string()),
        state,
        progress,
        size: stats.wanted,
        left: stats.left,
        downloaded: stats.downloaded,
        uploaded: stats.uploaded,
        download_rate: stats.download_rate,
        upload_rate: stats.upload_rate,
        peers: stats.peers,
        verified_pieces: stats.verified_pieces,
        total_pieces: stats.total_pieces,
        eta,
        added: entry.added,
        error,
    }
}

fn list_json(shared: &Shared) -> Vec<TorrentJson> {
    let mut list: Vec<TorrentJson> = shared.torrents().values().map(torrent_json).collect();
    list.sort_by(|a, b| a.added.cmp(&b.added).then(a.info_hash.cmp(&b.info_hash)));
    list
}

pub(super) async fn list(State(shared): State<Arc<Shared>>) -> Json<Vec<TorrentJson>> {
    Json(list_json(&shared))
}

fn entry_json(shared: &Shared, info_hash: &str) -> Result<TorrentJson, ApiError> {
    shared.find(info_hash)?;
    let torrents = shared.torrents();
    let entry = torrents
        .get(&info_hash.to_ascii_lowercase())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such torrent"))?;
    Ok(torrent_json(entry))
}

pub(super) async fn details(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<Json<TorrentJson>, ApiError> {
    entry_json(&shared, &info_hash).map(Json)
}

/// The JSON form of `POST /api/torrents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddJson {
    /// A magnet link.
    magnet: Option<String>,
    /// An `http(s)://` URL of a `.torrent` (or a magnet link).
    url: Option<String>,
    /// Peers to connect to, `IP:PORT`.
    #[serde(default)]
    peers: Vec<String>,
}

/// Adds a torrent: a JSON body `{"magnet": …}` or `{"url": …}`, or the bytes of a
/// `.torrent` (any other content type).
pub(super) async fn add(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, ApiError> {
    let mut options = AddOptions::default();
    // `?peer=IP:PORT`, repeatable: peers for a torrent sent as bytes.
    for pair in request.uri().query().unwrap_or_default().split('&') {
        if let Some(peer) = pair.strip_prefix("peer=") {
            let addr: SocketAddr = peer.replace("%3A", ":").parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("bad peer address {peer:?}"),
                )
            })?;
            options.peers.push(addr);
        }
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = read_body(&shared, request.into_body(), shared.config.max_torrent_size).await?;
    enum Source {
        Magnet(String),
        Torrent(Vec<u8>),
    }
    let source = if json {
        let add: AddJson = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?;
        for peer in &add.peers {
            let addr: SocketAddr = peer.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("bad peer address {peer:?}"),
                )
            })?;
            options.peers.push(addr);
        }
        match (add.magnet, add.url) {
            (Some(magnet), None) => Source::Magnet(magnet),
            (None, Some(url)) if url.trim_start().starts_with("magnet:") => Source::Magnet(url),
            (None, Some(url)) => Source::Torrent(shared.fetcher.get(url.trim()).await?),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "give one of \"magnet\" and \"url\"",
                ));
            }
        }
    } else {
        if body.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "send a .torrent file, or JSON with \"magnet\" or \"url\"",
            ));
        }
        Source::Torrent(body.to_vec())
    };
    let torrent = match source {
        Source::Magnet(text) => {
            let magnet = crate::magnet::Magnet::parse(text.trim()).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("bad magnet link: {e}"))
            })?;
            shared.client.add_magnet(&magnet, options).await?
        }
        Source::Torrent(bytes) => {
            let meta = Metainfo::from_bytes(&bytes).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("not a torrent: {e}"))
            })?;
            shared.client.add(meta, options).await?
        }
    };
    let key = torrent.info_hash().to_hex();
    shared.track(torrent);
    let json = entry_json(&shared, &key)?;
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct RemoveQuery {
    #[serde(default)]
    delete_data: Option<bool>,
}

pub(super) async fn remove(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    let torrent = shared.find(&info_hash)?;
    let entry = shared.torrents().remove(&torrent.info_hash().to_hex());
    if let Some(entry) = entry {
        entry.watcher.abort();
    }
    shared
        .client
        .remove(&torrent, query.delete_data.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn pause(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    shared.find(&info_hash)?.pause().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn resume(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<StatusCode, ApiError> {
    shared.find(&info_hash)?.resume().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub(super) struct FileJson {
    index: usize,
    path: String,
    name: String,
    length: u64,
    /// Bytes in verified pieces.
    downloaded: u64,
    /// 0 (skipped) to 7.
    priority: u8,
    /// Media type by extension.
    mime: &'static str,
    /// Where to stream it.
    url: String,
}

pub(super) async fn files(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<Json<Vec<FileJson>>, ApiError> {
    let torrent = shared.find(&info_hash)?;
    if torrent.metainfo().is_none() {
        return Ok(Json(Vec::new()));
    }
    let priorities = torrent.file_priorities().await?;
    let hex = torrent.info_hash().to_hex();
    let files = torrent
        .files()
        .into_iter()
        .map(|f| FileJson {
            index: f.index(),
            path: f
                .path()
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect::<Vec<_>>()
                .join("/"),
            name: f.name().to_owned(),
            length: f.length(),
            downloaded: f.downloaded(),
            priority: priorities.get(f.index()).copied().unwrap_or(0),
            mime: super::stream::content_type(f.name()),
            url: format!("/stream/{hex}/{}", f.index()),
        })
        .collect();
    Ok(Json(files))
}

/// The body of `PUT …/files`: every file's priority, or some of them by index.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PrioritiesJson {
    /// One priority per file of the info (pad files counted).
    priorities: Option<Vec<u8>>,
    /// Priorities of some files: `{"3": 0, "4": 7}`.
    files: Option<std::collections::BTreeMap<usize, u8>>,
}

pub(super) async fn set_files(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
    request: Request,
) -> Result<StatusCode, ApiError> {
    let torrent = shared.find(&info_hash)?;
    let body = read_body(&shared, request.into_body(), MAX_JSON).await?;
    let change: PrioritiesJson = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?;
    let priorities = match (change.priorities, change.files) {
        (Some(all), None) => all,
        (None, Some(some)) => {
            let mut all = torrent.file_priorities().await?;
            for (index, p) in some {
                let slot = all.get_mut(index).ok_or_else(|| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("no file {index}"))
                })?;
                *slot = p;
            }
            all
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give one of \"priorities\" and \"files\"",
            ));
        }
    };
    torrent.set_file_priorities(priorities).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The verified pieces: their count and a bitfield in hex (wire layout: the high bit of the
/// first byte is piece 0).
#[derive(Debug, Serialize)]
pub(super) struct PiecesJson {
    pieces: u32,
    verified: u32,
    bitfield: String,
}

pub(super) async fn pieces(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<Json<PiecesJson>, ApiError> {
    let torrent = shared.find(&info_hash)?;
    let bits = torrent.verified().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the torrent's metadata is not known yet",
        )
    })?;
    let bitfield = bits.as_bytes().iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    });
    Ok(Json(PiecesJson {
        pieces: torrent.stats().total_pieces,
        verified: bits.count(),
        bitfield,
    }))
}

#[derive(Debug, Serialize)]
pub(super) struct PeerJson {
    /// `IP:PORT`; `None` for WebRTC peers and web seeds, which have none to show.
    addr: Option<String>,
    peer_id: String,
    client: Option<String>,
    /// `tcp`, `utp`, `webrtc` or `webseed`.
    transport: String,
    outbound: bool,
    /// Share of the pieces it has, 0 to 1.
    progress: f64,
    download_rate: u64,
    upload_rate: u64,
    unchoked_us: bool,
    snubbed: bool,
}

pub(super) async fn peers(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<Json<Vec<PeerJson>>, ApiError> {
    let torrent = shared.find(&info_hash)?;
    let total = torrent.stats().total_pieces.max(1);
    let peers = torrent
        .peers()
        .await?
        .into_iter()
        .map(|p| PeerJson {
            addr: (!p.web_seed && !p.addr.ip().is_unspecified()).then(|| p.addr.to_string()),
            peer_id: String::from_utf8_lossy(&p.peer_id.0).into_owned(),
            client: p.peer_id.client().map(|c| c.to_string()),
            transport: if p.web_seed {
                "webseed".to_owned()
            } else {
                p.transport.to_string()
            },
            outbound: p.outbound,
            progress: f64::from(p.pieces) / f64::from(total),
            download_rate: p.download_rate,
            upload_rate: p.upload_rate,
            unchoked_us: p.unchoked_us,
            snubbed: p.snubbed,
        })
        .collect();
    Ok(Json(peers))
}

#[derive(Debug, Serialize)]
pub(super) struct TrackerJson {
    url: String,
    tier: usize,
    peers: Option<usize>,
    seeders: Option<u32>,
    leechers: Option<u32>,
    error: Option<String>,
    warning: Option<String>,
    failures: u32,
}

pub(super) async fn trackers(
    State(shared): State<Arc<Shared>>,
    Path(info_hash): Path<String>,
) -> Result<Json<Vec<TrackerJson>>, ApiError> {
    let torrent = shared.find(&info_hash)?;
    let trackers = torrent
        .trackers()
        .await?
        .into_iter()
        .map(|t| TrackerJson {
            url: t.url,
            tier: t.tier,
            peers: t.peers,
            seeders: t.seeders,
            leechers: t.leechers,
            error: t.error,
            warning: t.warning,
            failures: t.failures,
        })
        .collect();
    Ok(Json(trackers))
}

/// The client's limits, bytes per second; 0 means none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsJson {
    upload: u64,
    download: u64,
}

pub(super) async fn limits(State(shared): State<Arc<Shared>>) -> Json<LimitsJson> {
    let (upload, download) = *shared.limits.lock().unwrap_or_else(PoisonError::into_inner);
    Json(LimitsJson { upload, download })
}

pub(super) async fn set_limits(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Json<LimitsJson>, ApiError> {
    let body = read_body(&shared, request.into_body(), MAX_JSON).await?;
    let limits: LimitsJson = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?;
    shared.client.set_limits(
        Limit::bytes_per_second(limits.upload),
        Limit::bytes_per_second(limits.download),
    );
    *shared.limits.lock().unwrap_or_else(PoisonError::into_inner) =
        (limits.upload, limits.download);
    Ok(Json(limits))
}

/// Live updates: a `torrents` event with the list every second.
pub(super) async fn events(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut tick = tokio::time::interval(EVENT_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = futures_util::stream::unfold((shared, tick), |(shared, mut tick)| async move {
        tick.tick().await;
        let event = Event::default()
            .event("torrents")
            .json_data(list_json(&shared));
        Some((event, (shared, tick)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The Prometheus text format (version 0.0.4).
pub(super) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let torrents: Vec<(String, Torrent)> = shared
        .torrents()
        .iter()
        .map(|(k, e)| (k.clone(), e.torrent.clone()))
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP webtorrent_torrents Torrents of the client.");
    let _ = writeln!(out, "# TYPE webtorrent_torrents gauge");
    let _ = writeln!(out, "webtorrent_torrents {}", torrents.len());
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&Torrent) -> u64,
    );
    let metrics: [Metric; 9] = [
        (
            "downloaded_bytes_total",
            "counter",
            "Bytes of verified pieces downloaded in this session.",
            |t| t.stats().downloaded,
        ),
        (
            "uploaded_bytes_total",
            "counter",
            "Bytes sent to peers in this session.",
            |t| t.stats().uploaded,
        ),
        (
            "download_rate_bytes",
            "gauge",
            "Bytes received per second.",
            |t| t.stats().download_rate,
        ),
        (
            "upload_rate_bytes",
            "gauge",
            "Bytes sent per second.",
            |t| t.stats().upload_rate,
        ),
        ("peers", "gauge", "Connected peers.", |t| {
            t.stats().peers as u64
        }),
        ("verified_pieces", "gauge", "Pieces verified.", |t| {
            u64::from(t.stats().verified_pieces)
        }),
        ("pieces", "gauge", "Pieces of the torrent.", |t| {
            u64::from(t.stats().total_pieces)
        }),
        (
            "left_bytes",
            "gauge",
            "Bytes of wanted pieces not verified yet.",
            |t| t.stats().left,
        ),
        (
            "done",
            "gauge",
            "1 once every wanted piece is verified.",
            |t| u64::from(t.is_done()),
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(out, "# HELP webtorrent_torrent_{name} {help}");
        let _ = writeln!(out, "# TYPE webtorrent_torrent_{name} {kind}");
        for (hash, torrent) in &torrents {
            let _ = writeln!(
                out,
                "webtorrent_torrent_{name}{{info_hash=\"{hash}\"}} {}",
                value(torrent)
            );
        }
    }
    let mut by_transport = [0u64; 4];
    for (_, torrent) in &torrents {
        for peer in torrent.peers().await.unwrap_or_default() {
            let slot = match (peer.web_seed, peer.transport) {
                (true, _) => 3,
                (false, Transport::WebRtc) => 2,
                (false, Transport::Utp) => 1,
                _ => 0,
            };
            by_transport[slot] += 1;
        }
    }
    let _ = writeln!(out, "# HELP webtorrent_peers Connected peers by transport.");
    let _ = writeln!(out, "# TYPE webtorrent_peers gauge");
    for (name, n) in ["tcp", "utp", "webrtc", "webseed"].iter().zip(by_transport) {
        let _ = writeln!(out, "webtorrent_peers{{transport=\"{name}\"}} {n}");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Body::from(out),
    )
        .into_response()
}
