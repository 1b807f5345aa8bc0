//! Statistics: JSON (bittorrent-tracker's `/stats.json` field names, plus
//! ours), Prometheus text and a plain-text summary.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::store::StoreStats;

/// What the statistics endpoints report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The store's contents and totals.
    pub store: StoreStats,
    /// Open WebSocket connections.
    pub ws_connections: usize,
    /// Open TCP connections (HTTP and WebSocket).
    pub tcp_connections: usize,
    /// Time since the server started.
    pub uptime: Duration,
}

impl Snapshot {
    /// A snapshot of these parts.
    #[must_use]
    pub const fn new(
        store: StoreStats,
        ws_connections: usize,
        tcp_connections: usize,
        uptime: Duration,
    ) -> Self {
        Self {
            store,
            ws_connections,
            tcp_connections,
            uptime,
        }
    }
}

/// The JSON object of `/stats.json`: bittorrent-tracker's fields
/// (`torrents`, `activeTorrents`, `peersAll`, `peersSeederOnly`,
/// `peersLeecherOnly`, `peersSeederAndLeecher`, `peersIPv4`, `peersIPv6`)
/// and ours (`peersWebRTC`, `announces`, `scrapes`, `refused`,
/// `wsConnections`, `tcpConnections`, `uptimeSeconds`). A peer is counted
/// once per swarm it is in.
#[must_use]
pub fn json(s: &Snapshot) -> String {
    let st = &s.store;
    let v: Value = json!({
        "torrents": st.torrents,
        "activeTorrents": st.torrents,
        "peersAll": st.peers,
        "peersSeederOnly": st.seeders,
        "peersLeecherOnly": st.peers - st.seeders,
        "peersSeederAndLeecher": 0,
        "peersIPv4": st.ipv4,
        "peersIPv6": st.ipv6,
        "peersWebRTC": st.webrtc,
        "announces": st.counters.announces,
        "scrapes": st.counters.scrapes,
        "refused": st.counters.refused,
        "wsConnections": s.ws_connections,
        "tcpConnections": s.tcp_connections,
        "uptimeSeconds": s.uptime.as_secs(),
    });
    v.to_string()
}

/// The Prometheus text exposition (format 0.0.4) of the same figures.
#[must_use]
pub fn prometheus(s: &Snapshot) -> String {
    let st = &s.store;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
    metric(
        "tracker_torrents",
        "gauge",
        "Swarms held.",
        &[("", n(st.torrents))],
    );
    metric(
        "tracker_peers",
        "gauge",
        "Peers held, by address kind.",
        &[
            ("{kind=\"ipv4\"}", n(st.ipv4)),
            ("{kind=\"ipv6\"}", n(st.ipv6)),
            ("{kind=\"webrtc\"}", n(st.webrtc)),
        ],
    );
    metric(
        "tracker_seeders",
        "gauge",
        "Seeders held.",
        &[("", n(st.seeders))],
    );
    metric(
        "tracker_announces_total",
        "counter",
        "Announces handled, over every protocol.",
        &[("", st.counters.announces)],
    );
    metric(
        "tracker_refused_total",
        "counter",
        "Announces refused (allowlist, full store).",
        &[("", st.counters.refused)],
    );
    metric(
        "tracker_scrapes_total",
        "counter",
        "Info-hashes scraped.",
        &[("", st.counters.scrapes)],
    );
    metric(
        "tracker_ws_connections",
        "gauge",
        "Open WebSocket connections.",
        &[("", n(s.ws_connections))],
    );
    metric(
        "tracker_tcp_connections",
        "gauge",
        "Open TCP connections.",
        &[("", n(s.tcp_connections))],
    );
    metric(
        "tracker_uptime_seconds",
        "counter",
        "Seconds since start.",
        &[("", s.uptime.as_secs())],
    );
    out
}

/// A few lines for people.
#[must_use]
pub fn text(s: &Snapshot) -> String {
    let st = &s.store;
    format!(
        "{} torrents\n{} peers ({} seeders; {} IPv4, {} IPv6, {} WebRTC)\n{} announces, {} scrapes, {} refused\n{} WebSocket connections\n",
        st.torrents,
        st.peers,
        st.seeders,
        st.ipv4,
        st.ipv6,
        st.webrtc,
        st.counters.announces,
        st.counters.scrapes,
        st.counters.refused,
        s.ws_connections
    )
}
