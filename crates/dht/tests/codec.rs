//! KRPC codec: the examples of BEP 5, round trips, and hostile input.

use std::net::SocketAddr;

use proptest::prelude::*;
use webtorrent_dht::krpc::{MAX_PACKET_LEN, code, decode_nodes, encode_nodes};
use webtorrent_dht::{
    Body, DecodeErrorKind, ErrorBody, Message, MutableFields, NodeId, NodeInfo, PutArgs, Query,
    Response, Want,
};

fn id(s: &[u8; 20]) -> NodeId {
    NodeId(*s)
}

#[test]
fn bep5_ping_example() {
    let q = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    let m = Message::decode(q).unwrap();
    assert_eq!(m.transaction_id, b"aa");
    assert_eq!(
        m.body,
        Body::Query(Query::Ping {
            id: id(b"abcdefghij0123456789")
        })
    );
    assert_eq!(m.to_vec(), q);
    let r = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
    let m = Message::decode(r).unwrap();
    let Body::Response(resp) = &m.body else {
        panic!("not a response")
    };
    assert_eq!(resp.id, id(b"mnopqrstuvwxyz123456"));
    assert_eq!(m.to_vec(), r);
}

#[test]
fn bep5_error_example() {
    let e = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
    let m = Message::decode(e).unwrap();
    assert_eq!(
        m.body,
        Body::Error(ErrorBody {
            code: code::GENERIC,
            message: "A Generic Error Ocurred".into()
        })
    );
    assert_eq!(m.to_vec(), e);
}

#[test]
fn bep5_queries() {
    let fnq = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe";
    let m = Message::decode(fnq).unwrap();
    assert!(matches!(m.body, Body::Query(Query::FindNode { .. })));
    assert_eq!(m.to_vec(), fnq);
    let gp = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe";
    assert_eq!(Message::decode(gp).unwrap().to_vec(), gp);
    let ap = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
    let m = Message::decode(ap).unwrap();
    let Body::Query(Query::AnnouncePeer {
        port,
        implied_port,
        token,
        ..
    }) = &m.body
    else {
        panic!("not an announce")
    };
    assert_eq!(
        (*port, *implied_port, token.as_slice()),
        (6881, true, &b"aoeusnth"[..])
    );
    assert_eq!(m.to_vec(), ap);
}

#[test]
fn get_peers_reply_with_values_and_nodes() {
    let r = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
    let m = Message::decode(r).unwrap();
    let Body::Response(resp) = &m.body else {
        panic!()
    };
    assert_eq!(resp.values.len(), 2);
    assert_eq!(
        resp.values[0],
        "97.120.106.101:11893".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(m.to_vec(), r);
}

#[test]
fn ro_ip_version_and_want() {
    let m = Message {
        transaction_id: vec![1, 2],
        version: Some(b"WR01".to_vec()),
        ip: Some("1.2.3.4:5".parse().unwrap()),
        read_only: true,
        body: Body::Query(Query::FindNode {
            id: NodeId([1; 20]),
            target: NodeId([2; 20]),
            want: Want { v4: true, v6: true },
        }),
    };
    let bytes = m.to_vec();
    assert!(bytes.windows(7).any(|w| w == b"2:roi1e"));
    assert!(bytes.windows(11).any(|w| w == b"4:wantl2:n4"));
    assert_eq!(Message::decode(&bytes).unwrap(), m);
}

#[test]
fn compact_nodes_v4_and_v6() {
    let nodes = vec![
        NodeInfo {
            id: NodeId([7; 20]),
            addr: "1.2.3.4:6881".parse().unwrap(),
        },
        NodeInfo {
            id: NodeId([8; 20]),
            addr: "[2001:db8::1]:6882".parse().unwrap(),
        },
    ];
    let v4 = encode_nodes(&nodes, false);
    assert_eq!(v4.len(), 26);
    let v6 = encode_nodes(&nodes, true);
    assert_eq!(v6.len(), 38);
    assert_eq!(decode_nodes(&v4, false).unwrap(), vec![nodes[0]]);
    assert_eq!(decode_nodes(&v6, true).unwrap(), vec![nodes[1]]);
    assert!(decode_nodes(&v4[..25], false).is_none());
}

#[test]
fn hostile_input_is_rejected_with_types() {
    let long = vec![b'x'; MAX_PACKET_LEN + 1];
    assert!(matches!(
        Message::decode(&long).unwrap_err().kind,
        DecodeErrorKind::TooLong { .. }
    ));
    assert!(matches!(
        Message::decode(b"garbage").unwrap_err().kind,
        DecodeErrorKind::Bencode(_)
    ));
    assert_eq!(
        Message::decode(b"i1e").unwrap_err().kind,
        DecodeErrorKind::NotADict
    );
    assert_eq!(
        Message::decode(b"de").unwrap_err().kind,
        DecodeErrorKind::Missing("t")
    );
    // A query with a short id: the error keeps the transaction id to answer 203.
    let e = Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe").unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Invalid("id"));
    assert_eq!(e.transaction_id.as_deref(), Some(&b"xy"[..]));
    // A reply with a nodes string of a wrong length.
    let e = Message::decode(b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re")
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Invalid("nodes"));
    assert!(e.transaction_id.is_none());
    // Port out of range.
    let ap = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe";
    assert_eq!(
        Message::decode(ap).unwrap_err().kind,
        DecodeErrorKind::Invalid("port")
    );
    // Deep nesting does not overflow the stack.
    let mut deep = b"d1:t1:a1:y1:r1:r".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 100_000).take(MAX_PACKET_LEN - 40));
    assert!(Message::decode(&deep).is_err());
    // Unknown methods decode, to be answered with 204.
    let m = Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q5:vote!1:t2:aa1:y1:qe").unwrap();
    assert!(matches!(m.body, Body::Query(Query::Unknown { .. })));
}

fn arb_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId)
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn arb_want() -> impl Strategy<Value = Want> {
    (any::<bool>(), any::<bool>()).prop_map(|(v4, v6)| Want { v4, v6 })
}

fn arb_mutable(put: bool) -> impl Strategy<Value = MutableFields> {
    (
        any::<[u8; 32]>(),
        prop::collection::vec(any::<u8>(), 64),
        any::<i64>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::of(any::<i64>()),
    )
        .prop_map(move |(key, sig, seq, salt, cas)| MutableFields {
            key,
            signature: sig.try_into().unwrap(),
            seq,
            salt: if put { salt } else { Vec::new() },
            cas: if put { cas } else { None },
        })
}

fn arb_query() -> impl Strategy<Value = Query> {
    prop_oneof![
        arb_id().prop_map(|id| Query::Ping { id }),
        (arb_id(), arb_id(), arb_want()).prop_map(|(id, target, want)| Query::FindNode {
            id,
            target,
            want
        }),
        (arb_id(), arb_id(), arb_want()).prop_map(|(id, info_hash, want)| Query::GetPeers {
            id,
            info_hash,
            want
        }),
        (
            arb_id(),
            arb_id(),
            any::<u16>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(
                |(id, info_hash, port, implied_port, token)| Query::AnnouncePeer {
                    id,
                    info_hash,
                    port,
                    implied_port,
                    token
                }
            ),
        (
            arb_id(),
            arb_id(),
            prop::option::of(any::<i64>()),
            arb_want()
        )
            .prop_map(|(id, target, seq, want)| Query::Get {
                id,
                target,
                seq,
                want
            }),
        (
            arb_id(),
            prop::collection::vec(any::<u8>(), 0..20),
            prop::collection::vec(any::<u8>(), 0..100),
            prop::option::of(arb_mutable(true))
        )
            .prop_map(|(id, token, v, mutable)| {
                let mut value = format!("{}:", v.len()).into_bytes();
                value.extend_from_slice(&v);
                Query::Put(Box::new(PutArgs {
                    id,
                    token,
                    value,
                    mutable,
                }))
            }),
    ]
}

fn arb_response() -> impl Strategy<Value = Response> {
    (
        arb_id(),
        prop::collection::vec((arb_id(), any::<[u8; 4]>(), any::<u16>()), 0..8),
        prop::collection::vec((arb_id(), any::<[u8; 16]>(), any::<u16>()), 0..8),
        prop::collection::vec(arb_addr(), 0..20),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
        prop::option::of(arb_mutable(false)),
    )
        .prop_map(|(id, n4, n6, values, token, mutable)| Response {
            id,
            nodes: n4
                .into_iter()
                .map(|(id, ip, p)| NodeInfo {
                    id,
                    addr: SocketAddr::from((ip, p)),
                })
                .collect(),
            nodes6: n6
                .into_iter()
                .map(|(id, ip, p)| NodeInfo {
                    id,
                    addr: SocketAddr::from((ip, p)),
                })
                .collect(),
            values,
            token,
            value: mutable.as_ref().map(|_| b"3:abc".to_vec()),
            seq: mutable.as_ref().map(|m| m.seq),
            mutable,
        })
}

proptest! {
    #[test]
    fn queries_round_trip(
        q in arb_query(),
        t in prop::collection::vec(any::<u8>(), 1..8),
        ro in any::<bool>(),
        v in prop::option::of(prop::collection::vec(any::<u8>(), 4)),
    ) {
        let m = Message { transaction_id: t, version: v, ip: None, read_only: ro, body: Body::Query(q) };
        prop_assert_eq!(Message::decode(&m.to_vec()).unwrap(), m);
    }

    #[test]
    fn responses_round_trip(r in arb_response(), t in prop::collection::vec(any::<u8>(), 1..8), ip in prop::option::of(arb_addr())) {
        let m = Message { transaction_id: t, version: None, ip, read_only: false, body: Body::Response(Box::new(r)) };
        prop_assert_eq!(Message::decode(&m.to_vec()).unwrap(), m);
    }

    #[test]
    fn errors_round_trip(c in any::<i64>(), msg in "[ -~]{0,40}") {
        let m = Message { transaction_id: b"aa".to_vec(), version: None, ip: None, read_only: false,
            body: Body::Error(ErrorBody { code: c, message: msg }) };
        prop_assert_eq!(Message::decode(&m.to_vec()).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(&data);
    }

    #[test]
    fn mutated_messages_never_panic(q in arb_query(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let m = Message { transaction_id: b"aa".to_vec(), version: None, ip: None, read_only: false, body: Body::Query(q) };
        let mut bytes = m.to_vec();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let _ = Message::decode(&bytes);
    }
}
