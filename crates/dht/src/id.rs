//! 160-bit node ids and targets, XOR distance, and the BEP 42 id rule.

use std::fmt;
use std::net::IpAddr;

/// A 160-bit DHT key: a node id, an info-hash or a BEP 44 target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// The key of these 20 bytes, if there are exactly 20.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 20]>::try_from(bytes).ok().map(Self)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The XOR distance to `other`, as a big-endian 160-bit number.
    #[must_use]
    pub fn distance(&self, other: &Self) -> [u8; 20] {
        let mut d = [0; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        d
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub fn common_prefix_len(&self, other: &Self) -> usize {
        let d = self.distance(other);
        for (i, b) in d.iter().enumerate() {
            if *b != 0 {
                return i * 8 + b.leading_zeros() as usize;
            }
        }
        160
    }

    /// A key sharing exactly `prefix` leading bits with `self`, the rest taken from
    /// `random` (used to refresh a bucket).
    #[must_use]
    pub fn with_prefix_of(&self, prefix: usize, random: [u8; 20]) -> Self {
        let mut out = random;
        for bit in 0..prefix.min(160) {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            out[byte] = (out[byte] & !mask) | (self.0[byte] & mask);
        }
        if prefix < 160 {
            let (byte, mask) = (prefix / 8, 0x80u8 >> (prefix % 8));
            out[byte] = (out[byte] & !mask) | (!self.0[byte] & mask);
        }
        Self(out)
    }

    /// A BEP 42 id for a node reachable at `ip`: the first 21 bits come from the
    /// CRC32-C of the masked address, the last byte carries `r` (its low 3 bits
    /// count), the rest is `random`.
    #[must_use]
    pub fn bep42(ip: IpAddr, random: [u8; 20]) -> Self {
        let r = random[19];
        let crc = bep42_crc(ip, r);
        let mut id = random;
        id[0] = (crc >> 24) as u8;
        id[1] = (crc >> 16) as u8;
        id[2] = ((crc >> 8) as u8 & 0xf8) | (random[2] & 0x07);
        id[19] = r;
        Self(id)
    }

    /// Whether this id is valid for a node at `ip` under BEP 42. Addresses BEP 42
    /// exempts (loopback, private, link-local, unspecified) always pass.
    pub fn is_valid_for(&self, ip: IpAddr) -> bool {
        if bep42_exempt(ip) {
            return true;
        }
        let crc = bep42_crc(ip, self.0[19]);
        self.0[0] == (crc >> 24) as u8
            && self.0[1] == (crc >> 16) as u8
            && (self.0[2] & 0xf8) == ((crc >> 8) as u8 & 0xf8)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<[u8; 20]> for NodeId {
    fn from(b: [u8; 20]) -> Self {
        Self(b)
    }
}

impl From<webtorrent_types::InfoHashV1> for NodeId {
    fn from(h: webtorrent_types::InfoHashV1) -> Self {
        Self(h.0)
    }
}

/// Whether BEP 42 exempts this address (local networks cannot be checked).
pub fn bep42_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return bep42_exempt(IpAddr::V4(v4));
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80
        }
    }
}

fn bep42_crc(ip: IpAddr, r: u8) -> u32 {
    let r = r & 0x07;
    match ip {
        IpAddr::V4(v4) => {
            let mut b = v4.octets();
            for (x, m) in b.iter_mut().zip([0x03, 0x0f, 0x3f, 0xff]) {
                *x &= m;
            }
            b[0] |= r << 5;
            crc32c(&b)
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let mut b = [0u8; 8];
            for (i, m) in [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff]
                .into_iter()
                .enumerate()
            {
                b[i] = o[i] & m;
            }
            b[0] |= r << 5;
            crc32c(&b)
        }
    }
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC32-C (Castagnoli), as BEP 42 uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    /// The examples of BEP 42 (IP, rand, expected first 3 bytes, last byte).
    #[test]
    fn bep42_examples() {
        let cases: [(&str, u8, [u8; 3]); 5] = [
            ("124.31.75.21", 1, [0x5f, 0xbf, 0xbf]),
            ("21.75.31.124", 86, [0x5a, 0x3c, 0xe9]),
            ("65.23.51.170", 22, [0xa5, 0xd4, 0x32]),
            ("84.124.73.14", 65, [0x1b, 0x03, 0x21]),
            ("43.213.53.83", 90, [0xe5, 0x6f, 0x6c]),
        ];
        for (ip, r, prefix) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            let mut random = [0u8; 20];
            random[19] = r;
            let id = NodeId::bep42(ip, random);
            assert_eq!(id.0[0], prefix[0], "{ip}");
            assert_eq!(id.0[1], prefix[1], "{ip}");
            assert_eq!(id.0[2] & 0xf8, prefix[2] & 0xf8, "{ip}");
            assert!(id.is_valid_for(ip));
            let mut bad = id;
            bad.0[0] ^= 0x80;
            assert!(!bad.is_valid_for(ip));
        }
    }

    #[test]
    fn local_addresses_are_exempt() {
        let id = NodeId([0; 20]);
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "::1", "fd00::1"] {
            assert!(id.is_valid_for(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn prefixes() {
        let a = NodeId([0xff; 20]);
        assert_eq!(a.common_prefix_len(&a), 160);
        for p in [0, 1, 7, 8, 100, 159] {
            let b = a.with_prefix_of(p, [0x5a; 20]);
            assert_eq!(a.common_prefix_len(&b), p);
        }
    }
}
