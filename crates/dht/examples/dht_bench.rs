//! The loopback DHT benchmark behind `cargo xtask bench dht`: many of our nodes in this
//! process plus libtorrent sessions (interop/python/lt_dht_bench.py) on 127.0.0.1; torrents
//! announced from both; `get_peers` lookups of the same info-hashes from one of our nodes
//! and from one libtorrent session. Prints a JSON summary on standard output.
//!
//! With `--js N --node NODE --js-script interop/node/dht_bench_nodes.mjs`, N JS
//! `bittorrent-dht` nodes join too (they answer and store; they neither announce nor measure).
//!
//! usage: dht_bench PYTHON SCRIPT [--ours N] [--lt N] [--torrents N] [--lookups N]
//!        [--js N --node NODE --js-script PATH]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};
use webtorrent_dht::{Dht, DhtConfig, NodeId};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Lt {
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Lt {
    async fn call(&mut self, cmd: Value, wait: Duration) -> Result<Value, Error> {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let line = timeout(wait, self.lines.next_line())
            .await
            .map_err(|_| "libtorrent script did not answer in time")??
            .ok_or("libtorrent script exited")?;
        Ok(serde_json::from_str(&line)?)
    }
}

/// xorshift64, for reproducible info-hashes and announcer choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn id(&mut self) -> NodeId {
        let mut b = [0u8; 20];
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        NodeId::from(b)
    }
}

fn hex(id: &NodeId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn stats(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return json!(null);
    }
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    json!({"n": v.len(), "median": at(0.5), "p90": at(0.9), "mean": mean, "max": at(1.0)})
}

fn arg_str<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

fn arg(args: &[String], name: &str, default: usize) -> Result<usize, Error> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or("missing value")?.parse()?),
        None => Ok(default),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (python, script) = match &args[..] {
        [p, s, ..] => (p.clone(), s.clone()),
        _ => return Err("usage: dht_bench PYTHON SCRIPT [--ours N] [--lt N] ...".into()),
    };
    let ours = arg(&args, "--ours", 120)?.max(4);
    let lt_n = arg(&args, "--lt", 40)?.max(2);
    let torrents = arg(&args, "--torrents", 40)?.max(1);
    let lookups = arg(&args, "--lookups", 50)?;
    let js_n = arg(&args, "--js", 0)?;

    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..ours {
        let (d, t) = Dht::bind(DhtConfig::v4("127.0.0.1:0".parse()?)).await?;
        nodes.push(d);
        tasks.push(t);
    }
    let addr = |d: &Dht| d.local_addr_v4().expect("bound on IPv4");
    let seeds: Vec<SocketAddr> = nodes[..3].iter().map(addr).collect();

    let mut child = Command::new(&python)
        .arg(&script)
        .arg(lt_n.to_string())
        .args(seeds.iter().map(ToString::to_string))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lt = Lt {
        stdin: child.stdin.take().ok_or("no stdin")?,
        lines: BufReader::new(child.stdout.take().ok_or("no stdout")?).lines(),
    };
    let ready = timeout(Duration::from_secs(60), lt.lines.next_line())
        .await
        .map_err(|_| "libtorrent sessions not ready in 60 s")??
        .ok_or("libtorrent script exited")?;
    let ready: Value = serde_json::from_str(&ready)?;
    let lt_addrs: Vec<SocketAddr> = ready["ports"]
        .as_array()
        .ok_or("no ports")?
        .iter()
        .filter_map(Value::as_u64)
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p as u16)))
        .collect();
    let mut js_child = None;
    let mut js_addrs: Vec<SocketAddr> = Vec::new();
    if js_n > 0 {
        let node = arg_str(&args, "--node").unwrap_or("node");
        let js_script = arg_str(&args, "--js-script").ok_or("--js needs --js-script")?;
        let mut c = Command::new(node)
            .arg(js_script)
            .arg(js_n.to_string())
            .args(seeds.iter().map(ToString::to_string))
            .arg(lt_addrs[0].to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(c.stdout.take().ok_or("no stdout")?).lines();
        let ready = timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| "bittorrent-dht nodes not ready in 60 s")??
            .ok_or("bittorrent-dht script exited")?;
        let ready: Value = serde_json::from_str(&ready)?;
        js_addrs = ready["ports"]
            .as_array()
            .ok_or("no ports")?
            .iter()
            .filter_map(Value::as_u64)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p as u16)))
            .collect();
        js_child = Some((c, lines));
    }
    eprintln!(
        "dht_bench: {ours} of our nodes, {} libtorrent sessions, {} bittorrent-dht nodes",
        lt_addrs.len(),
        js_addrs.len()
    );

    // Bootstrap: every node knows our three seeds and two libtorrent sessions.
    let started = Instant::now();
    let mut boots = tokio::task::JoinSet::new();
    for (i, d) in nodes.iter().enumerate() {
        let mut b = seeds.clone();
        b.push(lt_addrs[0]);
        b.push(lt_addrs[1 + i % (lt_addrs.len() - 1)]);
        if !js_addrs.is_empty() {
            b.push(js_addrs[i % js_addrs.len()]);
        }
        b.retain(|a| *a != addr(d));
        d.add_bootstrap(b).await?;
        let d = d.clone();
        boots.spawn(async move { timeout(Duration::from_secs(60), d.bootstrap()).await });
        if i % 20 == 19 {
            sleep(Duration::from_millis(200)).await;
        }
    }
    while boots.join_next().await.is_some() {}
    eprintln!(
        "dht_bench: our nodes bootstrapped in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // libtorrent refreshes its table on its own pace; let it fill.
    sleep(Duration::from_secs(10)).await;
    let lt_nodes = lt
        .call(json!({"cmd": "nodes"}), Duration::from_secs(120))
        .await?;
    let mut our_nodes = Vec::new();
    for d in &nodes {
        our_nodes.push(d.stats().await?.nodes_v4 as f64);
    }
    let lt_table: Vec<f64> = lt_nodes["nodes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();

    // Announce: even torrents from a random one of our nodes, odd ones from a libtorrent
    // session (never the measured ones: our node 0 and libtorrent session 0).
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let hashes: Vec<NodeId> = (0..torrents).map(|_| rng.id()).collect();
    let mut announces = tokio::task::JoinSet::new();
    for (k, ih) in hashes.iter().enumerate() {
        if k % 2 == 0 {
            let d = nodes[1 + (rng.next() as usize) % (ours - 1)].clone();
            let ih = *ih;
            let port = 10_000 + k as u16;
            announces.spawn(async move {
                timeout(Duration::from_secs(60), d.announce(ih, Some(port))).await
            });
        } else {
            let s = 1 + (rng.next() as usize) % (lt_addrs.len() - 1);
            lt.call(
                json!({"cmd": "add", "session": s, "ih": hex(ih)}),
                Duration::from_secs(10),
            )
            .await?;
        }
    }
    while announces.join_next().await.is_some() {}
    // libtorrent announces a new torrent after its own lookup; give it time.
    sleep(Duration::from_secs(20)).await;

    let measured = nodes[0].clone();
    let (mut o_first, mut o_done, mut o_q, mut o_found) = (vec![], vec![], vec![], 0);
    let (mut l_first, mut l_done, mut l_q, mut l_found) = (vec![], vec![], vec![], 0);
    for i in 0..lookups {
        let ih = hashes[i % torrents];
        let (tx, mut rx) = mpsc::channel::<Vec<SocketAddr>>(64);
        let start = Instant::now();
        let first = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if !p.is_empty() {
                    return Some(start.elapsed());
                }
            }
            None
        });
        let done = timeout(
            Duration::from_secs(60),
            measured.get_peers_streaming(ih, tx),
        )
        .await
        .map_err(|_| "our lookup did not end in 60 s")??;
        o_done.push(start.elapsed().as_secs_f64() * 1000.0);
        o_q.push(f64::from(done.queries));
        if let Ok(Ok(Some(t))) = timeout(Duration::from_secs(1), first).await {
            o_first.push(t.as_secs_f64() * 1000.0);
        }
        if !done.peers.is_empty() {
            o_found += 1;
        }
        let r = lt
            .call(
                json!({"cmd": "lookup", "ih": hex(&ih), "timeout": 30}),
                Duration::from_secs(40),
            )
            .await?;
        if let Some(t) = r["done_ms"].as_f64() {
            l_done.push(t);
        }
        if let Some(t) = r["first_ms"].as_f64() {
            l_first.push(t);
        }
        if let Some(q) = r["queries"].as_f64() {
            l_q.push(q);
        }
        if r["peers"].as_u64().unwrap_or(0) > 0 {
            l_found += 1;
        }
        if i % 10 == 9 || std::env::var_os("DHT_BENCH_VERBOSE").is_some() {
            eprintln!(
                "dht_bench: {} lookups each; last: ours {:.2} ms, libtorrent {r}",
                i + 1,
                o_done.last().copied().unwrap_or(f64::NAN)
            );
        }
    }
    let summary = json!({
        "ours": ours,
        "libtorrent_sessions": lt_addrs.len(),
        "bittorrent_dht_nodes": js_addrs.len(),
        "torrents": torrents,
        "lookups": lookups,
        "table_ours": stats(our_nodes),
        "table_libtorrent": stats(lt_table),
        "webtorrent": {"done_ms": stats(o_done), "first_peer_ms": stats(o_first), "queries": stats(o_q), "found": o_found},
        "libtorrent": {"done_ms": stats(l_done), "first_peer_ms": stats(l_first), "queries": stats(l_q), "found": l_found},
    });
    println!("{summary}");
    drop(lt);
    let _ = timeout(Duration::from_secs(5), child.wait()).await;
    drop(js_child);
    drop(nodes);
    Ok(())
}
