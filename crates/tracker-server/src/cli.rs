//! The command line of `webtorrent-tracker` and `webtorrent tracker`: flags
//! over a TOML file over the defaults, then [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Config, ConfigError, start};

/// Flags of the tracker command. Flags override the `--config` file, which
/// overrides the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct TrackerArgs {
    /// Serve HTTP and WebSocket on this TCP address and UDP on the same
    /// address (default 127.0.0.1:8000).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP announce and scrape (and WebSocket, unless --ws says otherwise)
    /// on this TCP address instead.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// UDP (BEP 15) on this address instead.
    #[arg(long, value_name = "ADDR")]
    pub udp: Option<SocketAddr>,
    /// WebSocket signaling on this TCP address instead of the HTTP one.
    #[arg(long, value_name = "ADDR")]
    pub ws: Option<SocketAddr>,
    /// No HTTP announce and scrape.
    #[arg(long)]
    pub no_http: bool,
    /// No UDP.
    #[arg(long)]
    pub no_udp: bool,
    /// No WebSocket signaling.
    #[arg(long)]
    pub no_ws: bool,
    /// No /stats, /stats.json and /metrics.
    #[arg(long)]
    pub no_stats: bool,
    /// A TOML configuration file (see --print-config for every key).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Accept only this info-hash (40 hex digits; repeatable): a private tracker.
    #[arg(long = "allow", value_name = "INFOHASH")]
    pub allow: Vec<String>,
    /// Accept only the info-hashes listed in this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub allowlist: Option<PathBuf>,
    /// Allow WebSockets from this browser origin only (repeatable);
    /// clients without an Origin header always pass.
    #[arg(long = "origin", value_name = "ORIGIN")]
    pub origins: Vec<String>,
    /// Requests per second allowed per client address (0: no limit).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Re-announce interval for HTTP and UDP clients, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<u64>,
    /// Re-announce interval told to WebSocket (browser) clients, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub ws_interval: Option<u64>,
}

impl TrackerArgs {
    /// The configuration these flags give: the file's (or the defaults)
    /// with the flags applied.
    ///
    /// # Errors
    /// An unreadable or malformed file.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Config::from_toml(&text)?
            }
            None => Config::default(),
        };
        if let Some(a) = self.listen {
            c.listen = a;
        }
        if self.http.is_some() {
            c.http = self.http;
        }
        if self.udp.is_some() {
            c.udp = self.udp;
        }
        if self.ws.is_some() {
            c.ws = self.ws;
        }
        c.enable_http &= !self.no_http;
        c.enable_udp &= !self.no_udp;
        c.enable_ws &= !self.no_ws;
        c.enable_stats &= !self.no_stats;
        c.allowlist.extend(self.allow.iter().cloned());
        if self.allowlist.is_some() {
            c.allowlist_file.clone_from(&self.allowlist);
        }
        c.origins.extend(self.origins.iter().cloned());
        if let Some(r) = self.rate_limit {
            c.limits.requests_per_second = r;
        }
        if let Some(i) = self.interval {
            c.interval_secs = i;
        }
        if let Some(i) = self.ws_interval {
            c.websocket.interval_secs = i;
        }
        Ok(c)
    }
}

/// Runs the tracker the flags describe until Ctrl-C (or prints its
/// configuration with `--print-config`). The announce URLs are printed on
/// stdout, one per line, once every socket is bound.
///
/// # Errors
/// A bad configuration or an address that cannot be bound.
pub async fn run(args: &TrackerArgs) -> Result<(), ConfigError> {
    let config = args.to_config()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    // Check the allowlist before binding anything.
    config.allowed_hashes()?;
    let tracker = start(&config).await?;
    for url in tracker.announce_urls() {
        println!("{url}");
    }
    if let Some(a) = tracker.http_addr().or(tracker.ws_addr())
        && config.enable_stats
    {
        println!("stats: http://{a}/stats.json and http://{a}/metrics");
    }
    let _ = tokio::signal::ctrl_c().await;
    drop(tracker);
    Ok(())
}
