//! `webtorrent dht get|put`: BEP 44 items in the DHT, and the ed25519 key files that
//! `dht put --key` and `publish --key` sign with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use webtorrent::dht::{Dht, DhtConfig, MutableItem, NodeId, SigningKey};

use crate::args::DHT_ROUTERS;
use crate::output::print_stdout;

/// How long a whole `dht get` or `dht put` may take.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Subcommand, Debug)]
pub(crate) enum DhtCommand {
    /// Read an item: immutable by its target (40 hex digits), or mutable by --key/--key-file
    /// and --salt. Prints the value (a string as text, anything else as bencode).
    Get(GetArgs),
    /// Store a string: immutable (prints its target), or mutable and signed with
    /// --key-file (prints the public key; seq is the current one + 1 unless --seq).
    Put(PutArgs),
}

/// Where the DHT node listens and whom it asks first.
#[derive(Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// A DHT node to bootstrap from (repeatable; default: the public routers).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) dht_bootstrap: Vec<String>,
    /// The UDP address to bind.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:0")]
    pub(crate) listen: SocketAddr,
}

#[derive(Args, Debug)]
pub(crate) struct GetArgs {
    /// The target of an immutable item (40 hex digits).
    #[arg(value_name = "TARGET", required_unless_present_any = ["key", "key_file"])]
    pub(crate) target: Option<String>,
    /// The public key of a mutable item (64 hex digits).
    #[arg(long, value_name = "HEX", conflicts_with_all = ["target", "key_file"])]
    pub(crate) key: Option<String>,
    /// The key file of a mutable item (its public key is used).
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub(crate) key_file: Option<PathBuf>,
    /// The salt of a mutable item.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub(crate) salt: String,
    #[command(flatten)]
    pub(crate) node: NodeArgs,
}

#[derive(Args, Debug)]
pub(crate) struct PutArgs {
    /// The string to store (bencoded as a byte string; at most 1000 bytes encoded).
    #[arg(value_name = "VALUE")]
    pub(crate) value: String,
    /// Store a mutable item signed with this ed25519 key file (64 hex digits of the seed;
    /// created if missing).
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// The salt of the mutable item.
    #[arg(long, value_name = "TEXT", default_value = "", requires = "key_file")]
    pub(crate) salt: String,
    /// The sequence number [default: the stored one + 1, or 1].
    #[arg(long, value_name = "N", requires = "key_file")]
    pub(crate) seq: Option<i64>,
    #[command(flatten)]
    pub(crate) node: NodeArgs,
}

/// Reads an ed25519 key file (64 hex digits of the 32-byte seed), creating it with a
/// fresh key (readable by its owner only) when it does not exist.
pub(crate) fn load_or_create_key(path: &Path) -> Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            let mut seed = [0u8; 32];
            if text.len() != 64 {
                bail!(
                    "{} is not a key file: expected 64 hex digits",
                    path.display()
                );
            }
            for (i, b) in seed.iter_mut().enumerate() {
                *b = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16)
                    .with_context(|| format!("{} is not a key file: bad hex", path.display()))?;
            }
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut file, format!("{}\n", hex(&seed)).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("created the key file {}", path.display());
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{text}` is not a {what} ({} hex digits)", N * 2);
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        // Two ASCII hex digits, checked above.
        *b = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).expect("checked hex digits");
    }
    Ok(out)
}

/// A DHT node bootstrapped from `bootstrap` host names (the public routers if empty).
pub(crate) async fn node(listen: SocketAddr, bootstrap: &[String]) -> Result<Dht> {
    let names: Vec<String> = if bootstrap.is_empty() {
        DHT_ROUTERS.iter().map(|r| (*r).to_owned()).collect()
    } else {
        bootstrap.to_vec()
    };
    let mut addrs = Vec::new();
    for name in &names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(found) => addrs.extend(found.filter(|a| a.is_ipv4() == listen.is_ipv4())),
            Err(e) => eprintln!("warning: DHT bootstrap node {name}: {e}"),
        }
    }
    if addrs.is_empty() {
        bail!("no DHT bootstrap node could be resolved");
    }
    let mut config = if listen.is_ipv4() {
        DhtConfig::v4(listen)
    } else {
        let mut c = DhtConfig::v4(listen);
        c.bind_v4 = None;
        c.bind_v6 = Some(listen);
        c
    };
    config.node.bootstrap = addrs;
    // BEP 43: a node that lives for one command should not enter others' tables.
    config.node.read_only = true;
    let (dht, _task) = Dht::bind(config)
        .await
        .context("cannot start the DHT node")?;
    let done = dht.bootstrap().await?;
    if done.responses == 0 {
        bail!("no DHT bootstrap node answered");
    }
    Ok(dht)
}

/// The value as text when it is a bencoded UTF-8 string, else its bencoding.
fn show(value: &[u8]) -> String {
    match webtorrent::bencode::decode(value) {
        Ok(v) => match v.as_str() {
            Some(s) => s.to_owned(),
            None => String::from_utf8_lossy(value).into_owned(),
        },
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

pub(crate) fn run(command: &DhtCommand) -> Result<ExitCode> {
    crate::session::runtime()?.block_on(async {
        tokio::time::timeout(TIMEOUT, run_async(command))
            .await
            .context("the DHT did not answer in time")?
    })
}

async fn run_async(command: &DhtCommand) -> Result<ExitCode> {
    match command {
        DhtCommand::Get(args) => {
            let dht = node(args.node.listen, &args.node.dht_bootstrap).await?;
            let key = match (&args.key, &args.key_file) {
                (Some(k), _) => Some(unhex::<32>(k, "public key")?),
                (None, Some(f)) => Some(load_or_create_key(f)?.verifying_key().to_bytes()),
                (None, None) => None,
            };
            let value = match key {
                Some(key) => match dht.get_mutable(key, args.salt.as_bytes()).await? {
                    Some(item) => {
                        eprintln!("seq {}", item.seq);
                        Some(item.value)
                    }
                    None => None,
                },
                None => {
                    let target = unhex::<20>(args.target.as_deref().unwrap_or_default(), "target")?;
                    dht.get_immutable(NodeId(target)).await?
                }
            };
            match value {
                Some(v) => {
                    print_stdout(&format!("{}\n", show(&v)))?;
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("no such item found in the DHT"),
            }
        }
        DhtCommand::Put(args) => {
            let mut value = format!("{}:", args.value.len()).into_bytes();
            value.extend_from_slice(args.value.as_bytes());
            webtorrent::dht::check_value(&value).context("the value cannot be stored")?;
            let dht = node(args.node.listen, &args.node.dht_bootstrap).await?;
            let (printed, stored) = match &args.key_file {
                None => {
                    let (target, stored) = dht.put_immutable(value).await?;
                    (hex(&target.0), stored)
                }
                Some(file) => {
                    let key = load_or_create_key(file)?;
                    let public = key.verifying_key().to_bytes();
                    let seq = match args.seq {
                        Some(seq) => seq,
                        None => dht
                            .get_mutable(public, args.salt.as_bytes())
                            .await?
                            .map_or(1, |item| item.seq + 1),
                    };
                    let item = MutableItem::sign(&key, args.salt.as_bytes(), seq, value)
                        .context("the item cannot be stored")?;
                    eprintln!("seq {seq}");
                    (hex(&public), dht.put_mutable(item, None).await?)
                }
            };
            if stored == 0 {
                bail!("no DHT node stored the item");
            }
            eprintln!("stored on {stored} nodes");
            print_stdout(&format!("{printed}\n"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
