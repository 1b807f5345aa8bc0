//! Many sans-IO nodes on an in-memory network with a virtual clock: bootstrap,
//! peer lookups and announces, BEP 44 items, and hostile nodes.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use webtorrent_dht::{
    Body, Config, Event, Item, LookupDone, LookupId, Message, MutableItem, Node, NodeId, Output,
    Query, SigningKey, immutable_target,
};

struct Net {
    now: Instant,
    nodes: Vec<Node>,
    addrs: Vec<SocketAddr>,
    /// Datagrams in flight: (deliver at, from, to, bytes).
    wire: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    events: Vec<(usize, Event)>,
    latency: Duration,
    /// Addresses that swallow everything (dead nodes).
    dead: Vec<SocketAddr>,
    /// Datagrams sent to addresses outside the network: (from, to, bytes).
    outside: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

fn addr(i: usize) -> SocketAddr {
    // Public-looking addresses, one per node; BEP 42 is not enforced in these tests.
    SocketAddr::from(([100, 64, (i / 250) as u8, (i % 250) as u8 + 1], 6881))
}

fn seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    s
}

impl Net {
    fn new(n: usize, tweak: impl Fn(usize, &mut Config)) -> Self {
        let now = Instant::now();
        let mut nodes = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..n {
            let mut c = Config::new(seed(i));
            c.ipv6 = false;
            if i > 0 {
                c.bootstrap = vec![addr(0)];
            }
            tweak(i, &mut c);
            nodes.push(Node::new(c, now));
            addrs.push(addr(i));
        }
        Self {
            now,
            nodes,
            addrs,
            wire: VecDeque::new(),
            events: Vec::new(),
            latency: Duration::from_millis(20),
            dead: Vec::new(),
            outside: Vec::new(),
        }
    }

    fn drain(&mut self, i: usize) {
        let mut buf = Vec::new();
        loop {
            match self.nodes[i].poll_output(self.now, &mut buf) {
                Output::Transmit(t) => self.wire.push_back((
                    self.now + self.latency,
                    self.addrs[i],
                    t.destination,
                    buf.clone(),
                )),
                Output::Event(e) => self.events.push((i, e)),
                Output::Timeout(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Runs the network for `d` of virtual time, in 10 ms steps.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            for i in 0..self.nodes.len() {
                self.drain(i);
            }
            self.now += Duration::from_millis(10);
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let (_, from, to, bytes) = self.wire.pop_front().expect("just checked");
                if self.dead.contains(&to) {
                    continue;
                }
                match self.addrs.iter().position(|a| *a == to) {
                    Some(j) => self.nodes[j].handle_datagram(self.now, from, &bytes),
                    None => self.outside.push((from, to, bytes)),
                }
            }
        }
    }

    fn run_until_done(&mut self, node: usize, id: LookupId) -> LookupDone {
        for _ in 0..3000 {
            self.run(Duration::from_millis(10));
            if let Some(pos) = self
                .events
                .iter()
                .position(|(i, e)| *i == node && matches!(e, Event::Done(d) if d.id == id))
            {
                let (_, Event::Done(d)) = self.events.remove(pos) else {
                    unreachable!()
                };
                return *d;
            }
        }
        panic!("lookup {id:?} on node {node} did not finish in 30 s of virtual time");
    }

    fn bootstrap_all(&mut self) {
        for i in 1..self.nodes.len() {
            let now = self.now;
            self.nodes[i].bootstrap(now).expect("not busy");
            self.run(Duration::from_millis(30));
        }
        self.run(Duration::from_secs(10));
    }
}

#[test]
fn thirty_nodes_bootstrap_find_peers_and_items() {
    let mut net = Net::new(30, |_, _| {});
    net.bootstrap_all();
    for (i, n) in net.nodes.iter().enumerate() {
        assert!(
            n.stats().nodes_v4 >= 8,
            "node {i} knows {} nodes",
            n.stats().nodes_v4
        );
    }

    // Node 3 announces a torrent; node 20 finds it.
    let ih = NodeId([0xab; 20]);
    let now = net.now;
    let a = net.nodes[3].announce(now, ih, Some(51413)).unwrap();
    let done = net.run_until_done(3, a);
    assert!(done.stored >= 5, "announced to {} nodes", done.stored);
    let now = net.now;
    let g = net.nodes[20].get_peers(now, ih).unwrap();
    let done = net.run_until_done(20, g);
    assert_eq!(done.peers, vec![SocketAddr::new(net.addrs[3].ip(), 51413)]);
    assert!(done.queries < 60, "{} queries", done.queries);
    assert!(
        net.events
            .iter()
            .any(|(i, e)| *i == 20 && matches!(e, Event::Peers { .. }))
    );

    // Implied port: the UDP source port is announced.
    let ih2 = NodeId([0xcd; 20]);
    let now = net.now;
    let a = net.nodes[5].announce(now, ih2, None).unwrap();
    net.run_until_done(5, a);
    let now = net.now;
    let g = net.nodes[9].get_peers(now, ih2).unwrap();
    assert_eq!(net.run_until_done(9, g).peers, vec![net.addrs[5]]);

    // Immutable item put by 7, read by 25.
    let now = net.now;
    let (p, target) = net.nodes[7]
        .put_immutable(now, b"12:Hello World!".to_vec())
        .unwrap();
    assert_eq!(target, immutable_target(b"12:Hello World!"));
    assert!(net.run_until_done(7, p).stored >= 5);
    let now = net.now;
    let g = net.nodes[25].get_immutable(now, target).unwrap();
    assert_eq!(
        net.run_until_done(25, g).item,
        Some(Item::Immutable(b"12:Hello World!".to_vec()))
    );

    // Mutable item, two versions; the reader sees the newest.
    let key = SigningKey::from_bytes(&[42; 32]);
    for seq in 1..=2 {
        let item = MutableItem::sign(&key, b"salt", seq, format!("i{seq}e").into_bytes()).unwrap();
        let now = net.now;
        let p = net.nodes[11].put_mutable(now, item, None).unwrap();
        assert!(net.run_until_done(11, p).stored >= 5);
    }
    let now = net.now;
    let g = net.nodes[17]
        .get_mutable(now, key.verifying_key().to_bytes(), b"salt")
        .unwrap();
    let Some(Item::Mutable(found)) = net.run_until_done(17, g).item else {
        panic!("not found")
    };
    assert_eq!((found.seq, found.value.as_slice()), (2, &b"i2e"[..]));

    // A rollback put is refused by the nodes holding seq 2 (error 302): a get still sees 2.
    let old = MutableItem::sign(&key, b"salt", 1, b"i9e".to_vec()).unwrap();
    let now = net.now;
    let p = net.nodes[12].put_mutable(now, old, None).unwrap();
    let d = net.run_until_done(12, p);
    assert!(d.stored <= 1, "rollback accepted by {} nodes", d.stored);
    let now = net.now;
    let g = net.nodes[18]
        .get_mutable(now, key.verifying_key().to_bytes(), b"salt")
        .unwrap();
    let Some(Item::Mutable(found)) = net.run_until_done(18, g).item else {
        panic!("not found")
    };
    assert_eq!(found.seq, 2);
}

#[test]
fn dead_nodes_time_out_and_lookups_still_finish() {
    let mut net = Net::new(20, |_, _| {});
    net.bootstrap_all();
    for i in 10..20 {
        net.dead.push(net.addrs[i]);
    }
    let now = net.now;
    let g = net.nodes[1].get_peers(now, NodeId([0x11; 20])).unwrap();
    let d = net.run_until_done(1, g);
    assert!(d.responses >= 1);
}

#[test]
fn saved_table_restores_id_and_bootstraps_without_configured_nodes() {
    let mut net = Net::new(12, |_, _| {});
    net.bootstrap_all();
    let saved = net.nodes[5].save();
    let mut c = Config::new([99; 32]);
    c.ipv6 = false;
    let now = net.now;
    let restored = Node::restore(c, &saved, now).unwrap();
    assert_eq!(restored.id(), net.nodes[5].id());
    net.nodes[5] = restored;
    let b = net.nodes[5].bootstrap(now).unwrap();
    net.run(Duration::from_secs(5));
    assert!(net.nodes[5].stats().nodes_v4 >= 8);
    let _ = b;
    assert!(Node::restore(Config::new([0; 32]), b"nope", now).is_err());
    assert!(Node::restore(Config::new([0; 32]), &saved[..saved.len() - 3], now).is_err());
}

#[test]
fn read_only_nodes_do_not_answer_and_are_not_stored() {
    let mut net = Net::new(12, |i, c| c.read_only = i == 11);
    net.bootstrap_all();
    let ro_id = net.nodes[11].id();
    for i in 0..11 {
        let hits = net.nodes[i].closest_nodes(net.now, &ro_id, 100);
        assert!(
            hits.iter().all(|n| n.id != ro_id),
            "node {i} stored the read-only node"
        );
    }
    // The read-only node can still look things up.
    assert!(net.nodes[11].stats().nodes_v4 >= 8);
    let now = net.now;
    let g = net.nodes[11].find_node(now, NodeId([1; 20])).unwrap();
    assert!(net.run_until_done(11, g).responses > 0);
}

fn query(id: NodeId, q: Query, t: &[u8]) -> Vec<u8> {
    let _ = id;
    Message {
        transaction_id: t.to_vec(),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(q),
    }
    .to_vec()
}

#[test]
fn hostile_input_keeps_the_table_healthy() {
    let mut net = Net::new(10, |_, _| {});
    net.bootstrap_all();
    let victim = 0;
    let before = net.nodes[victim].stats().nodes_v4;
    let now = net.now;

    // Garbage and oversized datagrams.
    let attacker: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    net.nodes[victim].handle_datagram(now, attacker, b"\xff\x00garbage");
    net.nodes[victim].handle_datagram(now, attacker, &vec![b'd'; 5000]);
    // Many ids from one IP: at most one is kept.
    for i in 0..200u8 {
        let id = NodeId([i; 20]);
        let from = SocketAddr::new(attacker.ip(), 1000 + u16::from(i));
        let bytes = query(id, Query::Ping { id }, &[i]);
        net.nodes[victim].handle_datagram(now, from, &bytes);
    }
    // Unsolicited replies claiming other nodes' ids are dropped.
    let other = net.nodes[3].id();
    let reply = Message {
        transaction_id: vec![0, 1],
        version: None,
        ip: None,
        read_only: false,
        body: Body::Response(Box::new(webtorrent_dht::Response {
            id: other,
            ..Default::default()
        })),
    };
    net.nodes[victim].handle_datagram(now, "198.51.100.8:1".parse().unwrap(), &reply.to_vec());
    // A forged put (bad signature) and a put with a bad token.
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut item = MutableItem::sign(&key, b"", 1, b"1:x".to_vec()).unwrap();
    item.signature[0] ^= 1;
    let put = Query::Put(Box::new(webtorrent_dht::PutArgs {
        id: NodeId([9; 20]),
        token: b"bogus".to_vec(),
        value: item.value.clone(),
        mutable: None,
    }));
    // From another address: the first one is over its rate limit by now.
    let putter: SocketAddr = "198.51.100.9:4000".parse().unwrap();
    net.nodes[victim].handle_datagram(now, putter, &query(NodeId([9; 20]), put, b"zz"));
    net.run(Duration::from_secs(1));

    let replies: Vec<Message> = net
        .outside
        .iter()
        .filter(|(from, to, _)| *from == net.addrs[victim] && *to == putter)
        .filter_map(|(_, _, b)| Message::decode(b).ok())
        .collect();
    // The oversized datagram got nothing; the bad-token put got error 203.
    assert!(
        replies
            .iter()
            .any(|m| matches!(&m.body, Body::Error(e) if e.code == 203))
    );
    let stats = net.nodes[victim].stats();
    assert!(stats.malformed >= 2);
    assert!(
        stats.rate_limited >= 150,
        "{} queries dropped",
        stats.rate_limited
    );
    assert!(stats.unexpected_replies >= 1);
    // At most one contact for the flooding IP, and one for the putter.
    assert!(
        stats.nodes_v4 <= before + 2,
        "{} → {}",
        before,
        stats.nodes_v4
    );
    let attacker_nodes = net.nodes[victim]
        .closest_nodes(net.now, &NodeId([0; 20]), 500)
        .into_iter()
        .filter(|n| n.addr.ip() == attacker.ip())
        .count();
    assert!(attacker_nodes <= 1);
    assert_eq!(stats.items, 0);

    // A lookup still works.
    let now = net.now;
    let g = net.nodes[victim]
        .find_node(now, NodeId([0x77; 20]))
        .unwrap();
    assert!(net.run_until_done(victim, g).responses >= 3);
}

#[test]
fn forged_items_and_wrong_ids_are_not_accepted_by_a_getter() {
    // A single honest node 0, and an evil one (1) that answers gets with forged items.
    let mut net = Net::new(2, |_, _| {});
    net.bootstrap_all();
    let key = SigningKey::from_bytes(&[5; 32]);
    let mut forged = MutableItem::sign(&key, b"", 7, b"3:bad".to_vec()).unwrap();
    forged.signature[10] ^= 0xff;
    // Node 1 stores nothing; we inject a forged reply by hand to node 0's pending get.
    let now = net.now;
    let g = net.nodes[0]
        .get_mutable(now, key.verifying_key().to_bytes(), b"")
        .unwrap();
    let mut buf = Vec::new();
    let mut sent = None;
    while let Output::Transmit(t) = net.nodes[0].poll_output(now, &mut buf) {
        if t.destination == net.addrs[1] {
            sent = Some(Message::decode(&buf).unwrap());
        }
    }
    let sent = sent.expect("a get to node 1");
    let reply = Message {
        transaction_id: sent.transaction_id,
        version: None,
        ip: None,
        read_only: false,
        body: Body::Response(Box::new(webtorrent_dht::Response {
            id: net.nodes[1].id(),
            value: Some(forged.value.clone()),
            seq: Some(7),
            mutable: Some(webtorrent_dht::MutableFields {
                key: forged.key,
                signature: forged.signature,
                seq: 7,
                salt: Vec::new(),
                cas: None,
            }),
            ..Default::default()
        })),
    };
    net.nodes[0].handle_datagram(now, net.addrs[1], &reply.to_vec());
    let d = net.run_until_done(0, g);
    assert_eq!(d.item, None);
    let _ = HashMap::<u8, u8>::new();
}

/// A get then a put the way libtorrent sends them (`v` a plain string, immutable):
/// answered with a reply, and the item is stored.
#[test]
fn immutable_put_with_the_token_of_a_get_is_answered() {
    let now = Instant::now();
    let mut node = Node::new(Config::new([1; 32]), now);
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let target = immutable_target(b"13:hello from lt");
    let get = Query::Get {
        id: NodeId([7; 20]),
        target,
        seq: None,
        want: Default::default(),
    };
    node.handle_datagram(now, from, &query(NodeId([7; 20]), get, b"g1"));
    let mut buf = Vec::new();
    let Output::Transmit(_) = node.poll_output(now, &mut buf) else {
        panic!("no reply")
    };
    let Body::Response(r) = Message::decode(&buf).unwrap().body else {
        panic!("not a reply")
    };
    let token = r.token.clone().expect("a token");
    let mut put = b"d1:ad2:id20:\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x07\x075:token".to_vec();
    put.extend_from_slice(format!("{}:", token.len()).as_bytes());
    put.extend_from_slice(&token);
    put.extend_from_slice(b"1:v13:hello from lte1:q3:put1:t2:p11:v4:LT\x02\x081:y1:qe");
    node.handle_datagram(now, from, &put);
    let Output::Transmit(_) = node.poll_output(now, &mut buf) else {
        panic!("no reply to the put")
    };
    let m = Message::decode(&buf).unwrap();
    assert!(matches!(m.body, Body::Response(_)), "{m:?}");
    assert_eq!(node.stats().items, 1);
}

/// Bootstrap nodes added later, and a node learned from a ping (a peer's `PORT`).
#[test]
fn late_bootstrap_nodes_and_pinged_nodes_join() {
    let mut net = Net::new(10, |i, c| {
        if i == 9 {
            c.bootstrap.clear();
        }
    });
    net.bootstrap_all();
    assert_eq!(net.nodes[9].stats().nodes_v4, 0);
    let now = net.now;
    net.nodes[9].ping(now, net.addrs[4]);
    net.run(Duration::from_millis(100));
    assert_eq!(net.nodes[9].stats().nodes_v4, 1);
    net.nodes[9].add_bootstrap(&[net.addrs[0]]);
    let b = net.nodes[9].bootstrap(net.now).unwrap();
    net.run_until_done(9, b);
    assert!(net.nodes[9].stats().nodes_v4 >= 8);
}
