//! KRPC messages (BEP 5) with the extensions of BEP 32 (`nodes6`, `want`), BEP 33-free
//! `get_peers`, BEP 42 (`ip`), BEP 43 (`ro`) and BEP 44 (`get`, `put`).
//!
//! Messages are decoded into owned values: a datagram is small and the state machine
//! keeps parts of it. Unknown keys are ignored, as BEP 5 asks.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use webtorrent_bencode::{Dict, OwnedValue, Value};

use crate::error::{DecodeError, DecodeErrorKind};
use crate::id::NodeId;

/// The longest datagram we decode. A BEP 44 `put` of a 1000-byte value with a
/// 64-byte salt and its signature stays well under it.
pub const MAX_PACKET_LEN: usize = 2048;

/// Most compact peers or nodes decoded from one list; more are ignored.
pub const MAX_LIST_LEN: usize = 200;

/// Error codes of BEP 5 and BEP 44.
pub mod code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: malformed packet, invalid arguments or bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
    /// BEP 44: message (v) too big.
    pub const VALUE_TOO_BIG: i64 = 205;
    /// BEP 44: invalid signature.
    pub const BAD_SIGNATURE: i64 = 206;
    /// BEP 44: salt too big.
    pub const SALT_TOO_BIG: i64 = 207;
    /// BEP 44: cas mismatch.
    pub const CAS_MISMATCH: i64 = 301;
    /// BEP 44: sequence number less than current.
    pub const SEQ_TOO_LOW: i64 = 302;
}

/// A node's contact: id and UDP address (compact node info).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node id.
    pub id: NodeId,
    /// Where it answers.
    pub addr: SocketAddr,
}

/// Which address families a querier wants nodes of (BEP 32 `want`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4`.
    pub v4: bool,
    /// `n6`.
    pub v6: bool,
}

/// A KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `t`: the transaction id, echoed in the reply.
    pub transaction_id: Vec<u8>,
    /// `v`: the sender's client version, if given.
    pub version: Option<Vec<u8>>,
    /// `ip` (BEP 42): the address the sender sees us at, in replies.
    pub ip: Option<SocketAddr>,
    /// `ro` (BEP 43): the sender is read-only and answers no queries.
    pub read_only: bool,
    /// The query, reply or error.
    pub body: Body,
}

/// What a message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// `y=q`.
    Query(Query),
    /// `y=r`.
    Response(Box<Response>),
    /// `y=e`.
    Error(ErrorBody),
}

/// A query (`y=q`): the method with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querier's id.
        id: NodeId,
    },
    /// `find_node`.
    FindNode {
        /// The querier's id.
        id: NodeId,
        /// The key looked for.
        target: NodeId,
        /// BEP 32 `want`.
        want: Want,
    },
    /// `get_peers`.
    GetPeers {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: NodeId,
        /// BEP 32 `want`.
        want: Want,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: NodeId,
        /// The announced BitTorrent port (ignored when `implied_port`).
        port: u16,
        /// Use the UDP source port instead of `port`.
        implied_port: bool,
        /// The token from an earlier `get_peers` reply.
        token: Vec<u8>,
    },
    /// BEP 44 `get`.
    Get {
        /// The querier's id.
        id: NodeId,
        /// The item's target.
        target: NodeId,
        /// Only answer with a value if ours is newer than this.
        seq: Option<i64>,
        /// BEP 32 `want`.
        want: Want,
    },
    /// BEP 44 `put`.
    Put(Box<PutArgs>),
    /// A method we do not know; answered with error 204.
    Unknown {
        /// The querier's id, if it gave a valid one.
        id: Option<NodeId>,
        /// The method name.
        method: Vec<u8>,
    },
}

impl Query {
    /// The querier's id, if it gave a valid one.
    pub fn id(&self) -> Option<NodeId> {
        match self {
            Self::Ping { id }
            | Self::FindNode { id, .. }
            | Self::GetPeers { id, .. }
            | Self::AnnouncePeer { id, .. }
            | Self::Get { id, .. } => Some(*id),
            Self::Put(p) => Some(p.id),
            Self::Unknown { id, .. } => *id,
        }
    }

    /// The method name on the wire.
    pub fn method(&self) -> &[u8] {
        match self {
            Self::Ping { .. } => b"ping",
            Self::FindNode { .. } => b"find_node",
            Self::GetPeers { .. } => b"get_peers",
            Self::AnnouncePeer { .. } => b"announce_peer",
            Self::Get { .. } => b"get",
            Self::Put(_) => b"put",
            Self::Unknown { method, .. } => method,
        }
    }
}

/// The arguments of a BEP 44 `put`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutArgs {
    /// The querier's id.
    pub id: NodeId,
    /// The write token from an earlier `get` reply.
    pub token: Vec<u8>,
    /// The value, bencoded, exactly as sent.
    pub value: Vec<u8>,
    /// Mutable items: the signed fields.
    pub mutable: Option<MutableFields>,
}

/// The fields of a mutable item on the wire (BEP 44).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableFields {
    /// `k`: the ed25519 public key.
    pub key: [u8; 32],
    /// `sig`: the signature.
    pub signature: [u8; 64],
    /// `seq`.
    pub seq: i64,
    /// `salt`, empty when absent.
    pub salt: Vec<u8>,
    /// `cas`: only store if the current seq equals this (puts only).
    pub cas: Option<i64>,
}

/// A reply (`y=r`). KRPC replies do not name their method, so every field a reply
/// may carry is optional here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The responder's id.
    pub id: NodeId,
    /// `nodes`: IPv4 contacts close to the target.
    pub nodes: Vec<NodeInfo>,
    /// `nodes6` (BEP 32): IPv6 contacts close to the target.
    pub nodes6: Vec<NodeInfo>,
    /// `values`: peers of the torrent.
    pub values: Vec<SocketAddr>,
    /// `token`: to announce or put with later.
    pub token: Option<Vec<u8>>,
    /// BEP 44 `v`: the item's value, bencoded, exactly as received.
    pub value: Option<Vec<u8>>,
    /// BEP 44 mutable item fields (`k`, `sig`, `seq`), when all are present.
    pub mutable: Option<MutableFields>,
    /// BEP 44 `seq` of a `get` reply without a value (our `seq` was current).
    pub seq: Option<i64>,
}

/// An error reply (`y=e`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error code (see [`code`]).
    pub code: i64,
    /// The message.
    pub message: String,
}

impl Message {
    /// Decodes one KRPC datagram.
    ///
    /// # Errors
    /// [`DecodeError`]; for a malformed query with a transaction id, its
    /// `transaction_id` is set so the sender can be told (error 203).
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        if input.len() > MAX_PACKET_LEN {
            return Err(DecodeErrorKind::TooLong {
                len: input.len(),
                max: MAX_PACKET_LEN,
            }
            .into());
        }
        let value = webtorrent_bencode::decode(input).map_err(DecodeErrorKind::from)?;
        let dict = value.as_dict().ok_or(DecodeErrorKind::NotADict)?;
        let tid = bytes(dict, "t")?
            .ok_or(DecodeErrorKind::Missing("t"))?
            .to_vec();
        let y = bytes(dict, "y")?.ok_or(DecodeErrorKind::Missing("y"))?;
        let version = bytes(dict, "v").ok().flatten().map(<[u8]>::to_vec);
        let ip = match bytes(dict, "ip").ok().flatten() {
            Some(b) => decode_addr(b),
            None => None,
        };
        let read_only = matches!(dict.get(b"ro").and_then(Value::as_int), Some(1));
        let body = match y {
            b"q" => Body::Query(decode_query(dict).map_err(|kind| DecodeError {
                kind,
                transaction_id: Some(tid.clone()),
            })?),
            b"r" => Body::Response(Box::new(decode_response(dict)?)),
            b"e" => Body::Error(decode_error(dict)?),
            _ => return Err(DecodeErrorKind::UnknownType.into()),
        };
        Ok(Self {
            transaction_id: tid,
            version,
            ip,
            read_only,
            body,
        })
    }

    /// Appends the bencoding of this message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut top = BTreeMap::new();
        top.insert(
            b"t".to_vec(),
            OwnedValue::Bytes(self.transaction_id.clone()),
        );
        if let Some(v) = &self.version {
            top.insert(b"v".to_vec(), OwnedValue::Bytes(v.clone()));
        }
        if let Some(ip) = self.ip {
            top.insert(b"ip".to_vec(), OwnedValue::Bytes(encode_addr(ip)));
        }
        if self.read_only {
            top.insert(b"ro".to_vec(), OwnedValue::Int(1));
        }
        match &self.body {
            Body::Query(q) => {
                top.insert(b"y".to_vec(), bstr(b"q"));
                top.insert(b"q".to_vec(), bstr(q.method()));
                top.insert(b"a".to_vec(), OwnedValue::Dict(query_args(q)));
            }
            Body::Response(r) => {
                top.insert(b"y".to_vec(), bstr(b"r"));
                top.insert(b"r".to_vec(), OwnedValue::Dict(response_fields(r)));
            }
            Body::Error(e) => {
                top.insert(b"y".to_vec(), bstr(b"e"));
                top.insert(
                    b"e".to_vec(),
                    OwnedValue::List(vec![OwnedValue::Int(e.code), bstr(e.message.as_bytes())]),
                );
            }
        }
        OwnedValue::Dict(top).encode_into(out);
    }

    /// The encoding in a new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn bstr(b: &[u8]) -> OwnedValue {
    OwnedValue::Bytes(b.to_vec())
}

fn want_value(want: Want) -> Option<OwnedValue> {
    let mut list = Vec::new();
    if want.v4 {
        list.push(bstr(b"n4"));
    }
    if want.v6 {
        list.push(bstr(b"n6"));
    }
    (!list.is_empty()).then_some(OwnedValue::List(list))
}

fn query_args(q: &Query) -> BTreeMap<Vec<u8>, OwnedValue> {
    let mut a = BTreeMap::new();
    if let Some(id) = q.id() {
        a.insert(b"id".to_vec(), bstr(&id.0));
    }
    let put_want = |a: &mut BTreeMap<Vec<u8>, OwnedValue>, want: Want| {
        if let Some(w) = want_value(want) {
            a.insert(b"want".to_vec(), w);
        }
    };
    match q {
        Query::Ping { .. } | Query::Unknown { .. } => {}
        Query::FindNode { target, want, .. } => {
            a.insert(b"target".to_vec(), bstr(&target.0));
            put_want(&mut a, *want);
        }
        Query::GetPeers {
            info_hash, want, ..
        } => {
            a.insert(b"info_hash".to_vec(), bstr(&info_hash.0));
            put_want(&mut a, *want);
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            ..
        } => {
            a.insert(b"info_hash".to_vec(), bstr(&info_hash.0));
            a.insert(b"port".to_vec(), OwnedValue::Int(i64::from(*port)));
            if *implied_port {
                a.insert(b"implied_port".to_vec(), OwnedValue::Int(1));
            }
            a.insert(b"token".to_vec(), bstr(token));
        }
        Query::Get {
            target, seq, want, ..
        } => {
            a.insert(b"target".to_vec(), bstr(&target.0));
            if let Some(seq) = seq {
                a.insert(b"seq".to_vec(), OwnedValue::Int(*seq));
            }
            put_want(&mut a, *want);
        }
        Query::Put(p) => {
            a.insert(b"token".to_vec(), bstr(&p.token));
            a.insert(b"v".to_vec(), OwnedValue::Raw(p.value.clone()));
            if let Some(m) = &p.mutable {
                a.insert(b"k".to_vec(), bstr(&m.key));
                a.insert(b"sig".to_vec(), bstr(&m.signature));
                a.insert(b"seq".to_vec(), OwnedValue::Int(m.seq));
                if !m.salt.is_empty() {
                    a.insert(b"salt".to_vec(), bstr(&m.salt));
                }
                if let Some(cas) = m.cas {
                    a.insert(b"cas".to_vec(), OwnedValue::Int(cas));
                }
            }
        }
    }
    a
}

fn response_fields(r: &Response) -> BTreeMap<Vec<u8>, OwnedValue> {
    let mut m = BTreeMap::new();
    m.insert(b"id".to_vec(), bstr(&r.id.0));
    if !r.nodes.is_empty() {
        m.insert(
            b"nodes".to_vec(),
            OwnedValue::Bytes(encode_nodes(&r.nodes, false)),
        );
    }
    if !r.nodes6.is_empty() {
        m.insert(
            b"nodes6".to_vec(),
            OwnedValue::Bytes(encode_nodes(&r.nodes6, true)),
        );
    }
    if !r.values.is_empty() {
        let list = r
            .values
            .iter()
            .map(|a| OwnedValue::Bytes(encode_addr(*a)))
            .collect();
        m.insert(b"values".to_vec(), OwnedValue::List(list));
    }
    if let Some(t) = &r.token {
        m.insert(b"token".to_vec(), bstr(t));
    }
    if let Some(v) = &r.value {
        m.insert(b"v".to_vec(), OwnedValue::Raw(v.clone()));
    }
    if let Some(mf) = &r.mutable {
        m.insert(b"k".to_vec(), bstr(&mf.key));
        m.insert(b"sig".to_vec(), bstr(&mf.signature));
        m.insert(b"seq".to_vec(), OwnedValue::Int(mf.seq));
    } else if let Some(seq) = r.seq {
        m.insert(b"seq".to_vec(), OwnedValue::Int(seq));
    }
    m
}

/// A byte string under `key`; `Ok(None)` when absent, an error when not a string.
fn bytes<'a>(dict: &Dict<'a>, key: &'static str) -> Result<Option<&'a [u8]>, DecodeErrorKind> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => v.as_bytes().map(Some).ok_or(DecodeErrorKind::Invalid(key)),
    }
}

fn int(dict: &Dict<'_>, key: &'static str) -> Result<Option<i64>, DecodeErrorKind> {
    match dict.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => v.as_int().map(Some).ok_or(DecodeErrorKind::Invalid(key)),
    }
}

fn fixed<const N: usize>(
    dict: &Dict<'_>,
    key: &'static str,
) -> Result<Option<[u8; N]>, DecodeErrorKind> {
    match bytes(dict, key)? {
        None => Ok(None),
        Some(b) => <[u8; N]>::try_from(b)
            .map(Some)
            .map_err(|_| DecodeErrorKind::Invalid(key)),
    }
}

fn required_id(dict: &Dict<'_>, key: &'static str) -> Result<NodeId, DecodeErrorKind> {
    fixed::<20>(dict, key)?
        .map(NodeId)
        .ok_or(DecodeErrorKind::Missing(key))
}

fn decode_want(dict: &Dict<'_>) -> Want {
    let mut want = Want::default();
    if let Some(list) = dict.get(b"want").and_then(Value::as_list) {
        for item in list.iter().take(8) {
            match item.as_bytes() {
                Some(b"n4") => want.v4 = true,
                Some(b"n6") => want.v6 = true,
                _ => {}
            }
        }
    }
    want
}

fn decode_query(top: &Dict<'_>) -> Result<Query, DecodeErrorKind> {
    let method = bytes(top, "q")?.ok_or(DecodeErrorKind::Missing("q"))?;
    let a = top
        .get(b"a")
        .ok_or(DecodeErrorKind::Missing("a"))?
        .as_dict()
        .ok_or(DecodeErrorKind::Invalid("a"))?;
    let id = required_id(a, "id");
    Ok(match method {
        b"ping" => Query::Ping { id: id? },
        b"find_node" => Query::FindNode {
            id: id?,
            target: required_id(a, "target")?,
            want: decode_want(a),
        },
        b"get_peers" => Query::GetPeers {
            id: id?,
            info_hash: required_id(a, "info_hash")?,
            want: decode_want(a),
        },
        b"announce_peer" => {
            let port = int(a, "port")?;
            let implied_port = int(a, "implied_port")?.is_some_and(|p| p != 0);
            let port = match port {
                Some(p) => u16::try_from(p).map_err(|_| DecodeErrorKind::Invalid("port"))?,
                None if implied_port => 0,
                None => return Err(DecodeErrorKind::Missing("port")),
            };
            Query::AnnouncePeer {
                id: id?,
                info_hash: required_id(a, "info_hash")?,
                port,
                implied_port,
                token: bytes(a, "token")?
                    .ok_or(DecodeErrorKind::Missing("token"))?
                    .to_vec(),
            }
        }
        b"get" => Query::Get {
            id: id?,
            target: required_id(a, "target")?,
            seq: int(a, "seq")?,
            want: decode_want(a),
        },
        b"put" => {
            let value = a
                .get(b"v")
                .ok_or(DecodeErrorKind::Missing("v"))?
                .raw()
                .to_vec();
            let token = bytes(a, "token")?
                .ok_or(DecodeErrorKind::Missing("token"))?
                .to_vec();
            let mutable = match fixed::<32>(a, "k")? {
                None => None,
                Some(key) => Some(MutableFields {
                    key,
                    signature: fixed::<64>(a, "sig")?.ok_or(DecodeErrorKind::Missing("sig"))?,
                    seq: int(a, "seq")?.ok_or(DecodeErrorKind::Missing("seq"))?,
                    salt: bytes(a, "salt")?.unwrap_or_default().to_vec(),
                    cas: int(a, "cas")?,
                }),
            };
            Query::Put(Box::new(PutArgs {
                id: id?,
                token,
                value,
                mutable,
            }))
        }
        other => Query::Unknown {
            id: id.ok(),
            method: other.to_vec(),
        },
    })
}

fn decode_response(top: &Dict<'_>) -> Result<Response, DecodeErrorKind> {
    let r = top
        .get(b"r")
        .ok_or(DecodeErrorKind::Missing("r"))?
        .as_dict()
        .ok_or(DecodeErrorKind::Invalid("r"))?;
    let id = required_id(r, "id")?;
    let nodes = match bytes(r, "nodes")? {
        Some(b) => decode_nodes(b, false).ok_or(DecodeErrorKind::Invalid("nodes"))?,
        None => Vec::new(),
    };
    let nodes6 = match bytes(r, "nodes6")? {
        Some(b) => decode_nodes(b, true).ok_or(DecodeErrorKind::Invalid("nodes6"))?,
        None => Vec::new(),
    };
    let mut values = Vec::new();
    if let Some(v) = r.get(b"values") {
        let list = v.as_list().ok_or(DecodeErrorKind::Invalid("values"))?;
        for item in list.iter().take(MAX_LIST_LEN) {
            // Peers of a malformed length are skipped, not fatal: some clients pad.
            if let Some(addr) = item.as_bytes().and_then(decode_addr) {
                values.push(addr);
            }
        }
    }
    let token = bytes(r, "token")?.map(<[u8]>::to_vec);
    let value = r.get(b"v").map(|v| v.raw().to_vec());
    let seq = int(r, "seq")?;
    let mutable = match (fixed::<32>(r, "k")?, fixed::<64>(r, "sig")?, seq) {
        (Some(key), Some(signature), Some(seq)) => Some(MutableFields {
            key,
            signature,
            seq,
            salt: Vec::new(),
            cas: None,
        }),
        _ => None,
    };
    Ok(Response {
        id,
        nodes,
        nodes6,
        values,
        token,
        value,
        mutable,
        seq,
    })
}

fn decode_error(top: &Dict<'_>) -> Result<ErrorBody, DecodeErrorKind> {
    let list = top
        .get(b"e")
        .ok_or(DecodeErrorKind::Missing("e"))?
        .as_list()
        .ok_or(DecodeErrorKind::Invalid("e"))?;
    let code = list
        .get(0)
        .and_then(Value::as_int)
        .ok_or(DecodeErrorKind::Invalid("e"))?;
    let message = list
        .get(1)
        .and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    Ok(ErrorBody { code, message })
}

/// Decodes a compact address: 6 bytes (IPv4 + port) or 18 bytes (IPv6 + port).
pub fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => {
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([b[4], b[5]]),
            ))
        }
        18 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[..16]);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(o)),
                u16::from_be_bytes([b[16], b[17]]),
            ))
        }
        _ => None,
    }
}

/// Encodes a compact address (6 or 18 bytes).
pub fn encode_addr(addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    match addr.ip() {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// Decodes compact node info: 26-byte (IPv4) or 38-byte (IPv6) entries. `None`
/// when the length is not a multiple of the entry size; at most
/// [`MAX_LIST_LEN`] entries are kept.
pub fn decode_nodes(b: &[u8], v6: bool) -> Option<Vec<NodeInfo>> {
    let size = if v6 { 38 } else { 26 };
    if !b.len().is_multiple_of(size) {
        return None;
    }
    Some(
        b.chunks_exact(size)
            .take(MAX_LIST_LEN)
            .filter_map(|c| {
                let id = NodeId::from_slice(&c[..20])?;
                let addr = decode_addr(&c[20..])?;
                Some(NodeInfo { id, addr })
            })
            .collect(),
    )
}

/// Encodes compact node info; contacts of the other family are skipped.
pub fn encode_nodes(nodes: &[NodeInfo], v6: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * if v6 { 38 } else { 26 });
    for n in nodes.iter().filter(|n| n.addr.is_ipv6() == v6) {
        out.extend_from_slice(&n.id.0);
        out.extend_from_slice(&encode_addr(n.addr));
    }
    out
}
