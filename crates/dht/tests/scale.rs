//! Figures at scale, with bounds: a simulated DHT of 200 nodes (queries and virtual time per
//! lookup), and the heap a node uses for 10 000 stored peers (a counting allocator).
//! `cargo test -p webtorrent-dht --test scale -- --nocapture` prints the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use webtorrent_dht::{Body, Config, Event, Message, Node, NodeId, Output, Query};

/// Counts the bytes live on the heap, per thread (tests run side by side).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // During thread teardown the counter may be gone; nothing to count then.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: every call is forwarded to the system allocator unchanged; only a thread-local
// counter (which never allocates) is updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([100, 64, (i / 250) as u8, (i % 250) as u8 + 1], 6881))
}

#[test]
fn two_hundred_nodes_lookup_figures() {
    let n = 200;
    let mut now = Instant::now();
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| {
            let mut c = Config::new({
                let mut s = [0u8; 32];
                s[..8].copy_from_slice(&(i as u64 + 7).to_le_bytes());
                s
            });
            c.ipv6 = false;
            if i > 0 {
                c.bootstrap = vec![addr(0)];
            }
            Node::new(c, now)
        })
        .collect();
    let latency = Duration::from_millis(20);
    let mut wire: VecDeque<(Instant, usize, SocketAddr, Vec<u8>)> = VecDeque::new();
    let mut events = Vec::new();
    let step = |nodes: &mut Vec<Node>,
                wire: &mut VecDeque<(Instant, usize, SocketAddr, Vec<u8>)>,
                events: &mut Vec<(usize, Event)>,
                now: Instant| {
        let mut buf = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            loop {
                match node.poll_output(now, &mut buf) {
                    Output::Transmit(t) => {
                        wire.push_back((now + latency, i, t.destination, buf.clone()))
                    }
                    Output::Event(e) => events.push((i, e)),
                    _ => break,
                }
            }
        }
    };
    let deliver = |nodes: &mut Vec<Node>,
                   wire: &mut VecDeque<(Instant, usize, SocketAddr, Vec<u8>)>,
                   now: Instant| {
        while wire.front().is_some_and(|w| w.0 <= now) {
            let (_, from, to, bytes) = wire.pop_front().expect("checked");
            let j = (to
                .ip()
                .to_string()
                .split('.')
                .nth(2)
                .unwrap()
                .parse::<usize>()
                .unwrap())
                * 250
                + to.ip()
                    .to_string()
                    .split('.')
                    .nth(3)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
                - 1;
            nodes[j].handle_datagram(now, addr(from), &bytes);
        }
    };
    for i in 1..n {
        nodes[i].bootstrap(now).expect("not busy");
        for _ in 0..5 {
            step(&mut nodes, &mut wire, &mut events, now);
            now += Duration::from_millis(10);
            deliver(&mut nodes, &mut wire, now);
        }
    }
    for _ in 0..500 {
        step(&mut nodes, &mut wire, &mut events, now);
        now += Duration::from_millis(10);
        deliver(&mut nodes, &mut wire, now);
    }
    events.clear();
    // 50 lookups of random targets from random nodes.
    let mut queries = Vec::new();
    let mut times = Vec::new();
    let mut missed = 0;
    for k in 0..50u64 {
        let from = (k as usize * 37 + 11) % n;
        let mut target = [0u8; 20];
        target[..8].copy_from_slice(&(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
        let started = now;
        let id = nodes[from]
            .get_peers(now, NodeId(target))
            .expect("not busy");
        let done = loop {
            step(&mut nodes, &mut wire, &mut events, now);
            if let Some(pos) = events
                .iter()
                .position(|(i, e)| *i == from && matches!(e, Event::Done(d) if d.id == id))
            {
                let (_, Event::Done(d)) = events.remove(pos) else {
                    unreachable!()
                };
                break d;
            }
            now += Duration::from_millis(10);
            deliver(&mut nodes, &mut wire, now);
            assert!(
                now - started < Duration::from_secs(30),
                "lookup {k} did not finish"
            );
        };
        // The closest nodes found are the true closest (convergence).
        let mut all: Vec<NodeId> = nodes.iter().map(Node::id).collect();
        all.sort_by_key(|id| id.distance(&NodeId(target)));
        let found: Vec<NodeId> = done.closest.iter().map(|c| c.id).collect();
        let true_closest = all
            .iter()
            .filter(|id| **id != nodes[from].id())
            .take(3)
            .copied()
            .collect::<Vec<_>>();
        if !true_closest.iter().all(|id| found.contains(id)) {
            let rank = |id: &NodeId| all.iter().position(|x| x == id).unwrap();
            let holders: Vec<usize> = true_closest
                .iter()
                .map(|t| {
                    nodes
                        .iter()
                        .filter(|nd| nd.closest_nodes(now, t, 1000).iter().any(|c| c.id == *t))
                        .count()
                })
                .collect();
            eprintln!(
                "lookup {k} from {from}: found ranks {:?}, queries {}, responses {}, \
                 holders of the true closest {holders:?}",
                found.iter().map(rank).collect::<Vec<_>>(),
                done.queries,
                done.responses
            );
            for c in &done.closest {
                let j = nodes.iter().position(|nd| nd.id() == c.id).unwrap();
                let theirs: Vec<usize> = nodes[j]
                    .closest_nodes(now, &NodeId(target), 8)
                    .iter()
                    .map(|x| rank(&x.id))
                    .collect();
                eprintln!(
                    "  responder rank {} (node {j}, {} contacts) knows ranks {theirs:?}",
                    rank(&c.id),
                    nodes[j].stats().nodes_v4
                );
            }
            eprintln!(
                "  our own table: {:?}",
                nodes[from]
                    .closest_nodes(now, &NodeId(target), 16)
                    .iter()
                    .map(|x| rank(&x.id))
                    .collect::<Vec<_>>()
            );
            missed += 1;
        }
        queries.push(done.queries);
        times.push(now - started);
    }
    queries.sort_unstable();
    times.sort_unstable();
    let mean = queries.iter().sum::<u32>() as f64 / queries.len() as f64;
    eprintln!(
        "200 nodes, 20 ms one-way: queries per lookup mean {mean:.1}, median {}, max {}; \
         lookup time median {:?}, max {:?}",
        queries[queries.len() / 2],
        queries[queries.len() - 1],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(mean < 40.0);
    assert_eq!(missed, 0, "lookups that missed the 3 closest nodes");
}

#[test]
fn heap_per_ten_thousand_stored_peers() {
    let now = Instant::now();
    let mut config = Config::new([3; 32]);
    config.max_answers_per_sec = 1_000_000;
    config.max_answers_per_ip_per_sec = 1_000_000;
    let mut node = Node::new(config, now);
    let mut buf = Vec::new();
    // Tokens: one get_peers per announcing IP is needed; use 100 IPs × 100 ports.
    let mut tokens = Vec::new();
    for ip in 0..100u8 {
        let from = SocketAddr::from(([10, 1, 0, ip], 6881));
        let q = Message {
            transaction_id: vec![ip],
            version: None,
            ip: None,
            read_only: true,
            body: Body::Query(Query::GetPeers {
                id: NodeId([ip; 20]),
                info_hash: NodeId([0; 20]),
                want: Default::default(),
            }),
        };
        node.handle_datagram(now, from, &q.to_vec());
        let Output::Transmit(_) = node.poll_output(now, &mut buf) else {
            panic!("no reply")
        };
        let Body::Response(r) = Message::decode(&buf).unwrap().body else {
            panic!("not a reply")
        };
        tokens.push(r.token.unwrap());
        while let Output::Transmit(_) = node.poll_output(now, &mut buf) {}
    }
    let before = live();
    // 10 000 peers over 50 torrents (200 each, under the per-torrent cap).
    for ip in 0..100u8 {
        for p in 0..100u16 {
            let ih = NodeId([(p % 50) as u8 + 1; 20]);
            let q = Message {
                transaction_id: vec![ip, p as u8],
                version: None,
                ip: None,
                read_only: true,
                body: Body::Query(Query::AnnouncePeer {
                    id: NodeId([ip; 20]),
                    info_hash: ih,
                    port: 10_000 + p,
                    implied_port: false,
                    token: tokens[ip as usize].clone(),
                }),
            };
            node.handle_datagram(now, SocketAddr::from(([10, 1, 0, ip], 6881)), &q.to_vec());
            while let Output::Transmit(_) = node.poll_output(now, &mut buf) {}
        }
    }
    let after = live();
    assert_eq!(node.stats().peers, 10_000);
    let per_peer = (after - before) as f64 / 10_000.0;
    eprintln!(
        "10 000 stored peers: {} KiB of heap ({per_peer:.0} bytes a peer)",
        (after - before) / 1024
    );
    assert!(per_peer < 100.0, "{per_peer} bytes a peer");
}
