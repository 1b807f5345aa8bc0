//! Peer addresses from `x.pe` parameters.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::MagnetError;

/// A peer to contact directly, from an `x.pe` parameter: `ip:port`, `[ipv6]:port` or
/// `host:port`.
///
/// Parsing tries an IP socket address first, so a host name never holds an address
/// that [`SocketAddr`] would accept. The port must not be 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// An IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// A DNS name (letters, digits, `-`, `.`, `_`; at most 253 bytes) and port, to be
    /// resolved by the caller.
    Host {
        /// The host name.
        host: String,
        /// The port, never 0.
        port: u16,
    },
}

impl PeerAddr {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Self::Ip(addr) => addr.port(),
            Self::Host { port, .. } => *port,
        }
    }
}

fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl FromStr for PeerAddr {
    type Err = MagnetError;

    fn from_str(text: &str) -> Result<Self, MagnetError> {
        let invalid = || MagnetError::InvalidPeer {
            value: text.to_owned(),
        };
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err(invalid())
            } else {
                Ok(Self::Ip(addr))
            };
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        if !is_host_name(host) || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        match port.parse::<u16>() {
            Ok(port) if port != 0 => Ok(Self::Host {
                host: host.to_owned(),
                port,
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self::Ip(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            "10.0.0.1:6881".parse::<PeerAddr>().unwrap(),
            PeerAddr::Ip("10.0.0.1:6881".parse().unwrap())
        );
        let v6: PeerAddr = "[2001:db8::1]:51413".parse().unwrap();
        assert_eq!(v6.to_string(), "[2001:db8::1]:51413");
        assert_eq!(v6.port(), 51413);
        assert_eq!(
            "peer.example.org:6881".parse::<PeerAddr>().unwrap(),
            PeerAddr::Host {
                host: "peer.example.org".into(),
                port: 6881
            }
        );
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "10.0.0.1",
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "host:",
            ":80",
            "host:+80",
            "ho st:80",
            "[::1:80",
            "::1:80x",
            "a:b:80",
        ] {
            assert_eq!(
                bad.parse::<PeerAddr>(),
                Err(MagnetError::InvalidPeer { value: bad.into() }),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn socket_round_trip(addr in any::<SocketAddr>()) {
            // Flow info is not part of the text form; scope ids are.
            let addr = match addr {
                SocketAddr::V6(mut v6) => { v6.set_flowinfo(0); SocketAddr::V6(v6) }
                v4 => v4,
            };
            prop_assume!(addr.port() != 0);
            let peer = PeerAddr::Ip(addr);
            prop_assert_eq!(peer.to_string().parse::<PeerAddr>().unwrap(), peer);
        }

        #[test]
        fn host_round_trip(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}", port in 1u16..) {
            let peer = PeerAddr::Host { host, port };
            prop_assert_eq!(peer.to_string().parse::<PeerAddr>().unwrap(), peer);
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<PeerAddr>();
        }
    }
}
