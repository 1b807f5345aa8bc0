//! What a node keeps for others: write tokens, announced peers (BEP 5) and items
//! (BEP 44), each with expiry and caps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::error::ItemError;
use crate::id::NodeId;
use crate::item::{Item, MutableItem};

/// How often the token secret changes; tokens of the previous secret still pass.
pub const TOKEN_ROTATION: Duration = Duration::from_secs(5 * 60);

/// Write tokens: a hash of the querier's IP and a secret that rotates.
#[derive(Clone, Debug)]
pub(crate) struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

impl Tokens {
    pub(crate) fn new(secret: [u8; 16], now: Instant) -> Self {
        Self {
            current: secret,
            previous: secret,
            rotated_at: now,
        }
    }

    /// Rotates when due; `fresh` supplies the new secret.
    pub(crate) fn maybe_rotate(&mut self, now: Instant, fresh: impl FnOnce() -> [u8; 16]) {
        if now.saturating_duration_since(self.rotated_at) >= TOKEN_ROTATION {
            self.previous = self.current;
            self.current = fresh();
            self.rotated_at = now;
        }
    }

    fn make(secret: &[u8; 16], ip: IpAddr) -> [u8; 8] {
        let mut h = Sha1::new();
        h.update(secret);
        match ip {
            IpAddr::V4(v4) => h.update(v4.octets()),
            IpAddr::V6(v6) => h.update(v6.octets()),
        }
        let d: [u8; 20] = h.finalize().into();
        let mut out = [0; 8];
        out.copy_from_slice(&d[..8]);
        out
    }

    pub(crate) fn token(&self, ip: IpAddr) -> Vec<u8> {
        Self::make(&self.current, ip).to_vec()
    }

    pub(crate) fn check(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == Self::make(&self.current, ip) || token == Self::make(&self.previous, ip)
    }
}

/// Limits of the stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Torrents we keep peers for.
    pub max_torrents: usize,
    /// Peers per torrent.
    pub max_peers_per_torrent: usize,
    /// How long an announced peer is kept.
    pub peer_ttl: Duration,
    /// BEP 44 items.
    pub max_items: usize,
    /// How long an item is kept after its last put.
    pub item_ttl: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_torrents: 2000,
            max_peers_per_torrent: 500,
            peer_ttl: Duration::from_secs(30 * 60),
            max_items: 1000,
            item_ttl: Duration::from_secs(2 * 60 * 60),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct PeerStore {
    torrents: HashMap<NodeId, Vec<(SocketAddr, Instant)>>,
}

impl PeerStore {
    pub(crate) fn announce(
        &mut self,
        now: Instant,
        limits: &StoreLimits,
        ih: NodeId,
        peer: SocketAddr,
    ) {
        if !self.torrents.contains_key(&ih) && self.torrents.len() >= limits.max_torrents {
            self.expire(now, limits);
            if self.torrents.len() >= limits.max_torrents {
                return;
            }
        }
        let peers = self.torrents.entry(ih).or_default();
        if let Some(p) = peers.iter_mut().find(|(a, _)| *a == peer) {
            p.1 = now;
            return;
        }
        if peers.len() >= limits.max_peers_per_torrent {
            // The oldest announce gives way.
            if let Some(oldest) = peers
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(i, _)| i)
            {
                peers.swap_remove(oldest);
            }
        }
        peers.push((peer, now));
    }

    /// Up to `max` live peers of the torrent, of the wanted families.
    pub(crate) fn get(
        &self,
        now: Instant,
        limits: &StoreLimits,
        ih: &NodeId,
        max: usize,
        v4: bool,
        v6: bool,
    ) -> Vec<SocketAddr> {
        self.torrents
            .get(ih)
            .map(|peers| {
                peers
                    .iter()
                    .filter(|(a, t)| {
                        now.saturating_duration_since(*t) < limits.peer_ttl
                            && if a.is_ipv4() { v4 } else { v6 }
                    })
                    .take(max)
                    .map(|(a, _)| *a)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn expire(&mut self, now: Instant, limits: &StoreLimits) {
        self.torrents.retain(|_, peers| {
            peers.retain(|(_, t)| now.saturating_duration_since(*t) < limits.peer_ttl);
            !peers.is_empty()
        });
    }

    pub(crate) fn peer_count(&self) -> usize {
        self.torrents.values().map(Vec::len).sum()
    }

    pub(crate) fn torrent_count(&self) -> usize {
        self.torrents.len()
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ItemStore {
    items: HashMap<NodeId, (Item, Instant)>,
}

impl ItemStore {
    pub(crate) fn get(&self, now: Instant, limits: &StoreLimits, target: &NodeId) -> Option<&Item> {
        self.items
            .get(target)
            .filter(|(_, t)| now.saturating_duration_since(*t) < limits.item_ttl)
            .map(|(i, _)| i)
    }

    fn make_room(&mut self, now: Instant, limits: &StoreLimits, target: &NodeId) -> bool {
        if self.items.contains_key(target) || self.items.len() < limits.max_items {
            return true;
        }
        self.expire(now, limits);
        self.items.len() < limits.max_items
    }

    /// Stores an immutable item whose target was checked by the caller.
    pub(crate) fn put_immutable(
        &mut self,
        now: Instant,
        limits: &StoreLimits,
        target: NodeId,
        value: Vec<u8>,
    ) {
        if self.make_room(now, limits, &target) {
            self.items.insert(target, (Item::Immutable(value), now));
        }
    }

    /// Stores a verified mutable item, enforcing `cas` and `seq`.
    pub(crate) fn put_mutable(
        &mut self,
        now: Instant,
        limits: &StoreLimits,
        item: MutableItem,
        cas: Option<i64>,
    ) -> Result<(), ItemError> {
        let target = item.target();
        if let Some((Item::Mutable(old), at)) = self.items.get_mut(&target) {
            if let Some(cas) = cas
                && cas != old.seq
            {
                return Err(ItemError::CasMismatch {
                    stored: old.seq,
                    cas,
                });
            }
            if item.seq < old.seq {
                return Err(ItemError::SeqTooLow {
                    stored: old.seq,
                    seq: item.seq,
                });
            }
            if item.seq == old.seq && item.value != old.value {
                return Err(ItemError::SeqReused(item.seq));
            }
            *old = item;
            *at = now;
            return Ok(());
        }
        if self.make_room(now, limits, &target) {
            self.items.insert(target, (Item::Mutable(item), now));
        }
        Ok(())
    }

    pub(crate) fn expire(&mut self, now: Instant, limits: &StoreLimits) {
        self.items
            .retain(|_, (_, t)| now.saturating_duration_since(*t) < limits.item_ttl);
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    #[test]
    fn tokens_rotate_and_previous_still_passes() {
        let now = Instant::now();
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let mut t = Tokens::new([1; 16], now);
        let tok = t.token(ip);
        assert!(t.check(ip, &tok));
        assert!(!t.check("1.2.3.5".parse().unwrap(), &tok));
        t.maybe_rotate(now + TOKEN_ROTATION, || [2; 16]);
        assert!(t.check(ip, &tok));
        t.maybe_rotate(now + TOKEN_ROTATION * 2, || [3; 16]);
        assert!(!t.check(ip, &tok));
    }

    #[test]
    fn peers_expire_and_are_capped() {
        let now = Instant::now();
        let limits = StoreLimits {
            max_torrents: 2,
            max_peers_per_torrent: 3,
            ..Default::default()
        };
        let mut s = PeerStore::default();
        for i in 0..10u16 {
            s.announce(
                now,
                &limits,
                NodeId([1; 20]),
                SocketAddr::from(([10, 0, 0, 1], i)),
            );
        }
        assert_eq!(
            s.get(now, &limits, &NodeId([1; 20]), 100, true, true).len(),
            3
        );
        s.announce(now, &limits, NodeId([2; 20]), "10.0.0.2:1".parse().unwrap());
        s.announce(now, &limits, NodeId([3; 20]), "10.0.0.3:1".parse().unwrap());
        assert_eq!(s.torrent_count(), 2);
        let later = now + limits.peer_ttl;
        assert!(
            s.get(later, &limits, &NodeId([1; 20]), 100, true, true)
                .is_empty()
        );
        s.expire(later, &limits);
        assert_eq!(s.peer_count(), 0);
    }

    #[test]
    fn mutable_seq_and_cas_rules() {
        let now = Instant::now();
        let limits = StoreLimits::default();
        let key = SigningKey::from_bytes(&[9; 32]);
        let mut s = ItemStore::default();
        let v1 = MutableItem::sign(&key, b"", 2, b"1:a".to_vec()).unwrap();
        s.put_mutable(now, &limits, v1.clone(), None).unwrap();
        let v0 = MutableItem::sign(&key, b"", 1, b"1:b".to_vec()).unwrap();
        assert_eq!(
            s.put_mutable(now, &limits, v0, None),
            Err(ItemError::SeqTooLow { stored: 2, seq: 1 })
        );
        let v2 = MutableItem::sign(&key, b"", 3, b"1:c".to_vec()).unwrap();
        assert_eq!(
            s.put_mutable(now, &limits, v2.clone(), Some(1)),
            Err(ItemError::CasMismatch { stored: 2, cas: 1 })
        );
        let same_seq = MutableItem::sign(&key, b"", 2, b"1:z".to_vec()).unwrap();
        assert_eq!(
            s.put_mutable(now, &limits, same_seq, None),
            Err(ItemError::SeqReused(2))
        );
        s.put_mutable(now, &limits, v2.clone(), Some(2)).unwrap();
        assert_eq!(s.get(now, &limits, &v2.target()), Some(&Item::Mutable(v2)));
    }
}
