//! Following a mutable torrent (BEP 46): the publisher's signed pointer is read from
//! the DHT again and again, and each newer version it names is downloaded in place of
//! the one before.

use std::time::Duration;

use webtorrent_dht::{DhtError, MutableItem, MutableTorrent, decode_pointer};
use webtorrent_magnet::Magnet;
use webtorrent_types::InfoHashV1;

use super::{AddOptions, Client, SessionError, Torrent};

/// How long to wait between two reads of the pointer while none has been found yet.
const FIRST_RETRY: Duration = Duration::from_secs(2);

/// Settings of [`Client::follow_mutable`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FollowOptions {
    /// How often the pointer is read again (5 minutes by default; BEP 46 leaves it to
    /// the client). Before the first version is found it is read every 2 seconds at
    /// most.
    pub interval: Duration,
    /// How each version is added.
    pub add: AddOptions,
    /// Keep the previous version in the session (seeding) when a newer one is found.
    /// By default the previous torrent is removed from the session, never its files,
    /// before the new one is added, so that a new version stored under the same name
    /// reuses the pieces it shares with the old one.
    pub keep_old: bool,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5 * 60),
            add: AddOptions::default(),
            keep_old: false,
        }
    }
}

/// Why following a mutable torrent stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// The client runs no DHT node.
    #[error("a mutable torrent needs the DHT, which is off")]
    NoDht,
    /// The DHT node has stopped.
    #[error(transparent)]
    Dht(#[from] DhtError),
    /// A version could not be added.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A version of a mutable torrent, added to the client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Version {
    /// The pointer's sequence number.
    pub seq: i64,
    /// The info-hash it names.
    pub info_hash: InfoHashV1,
    /// The torrent, downloading or seeding.
    pub torrent: Torrent,
}

/// Follows a mutable torrent; see [`Client::follow_mutable`].
#[derive(Debug)]
pub struct MutableFollower<'a> {
    client: &'a Client,
    target: MutableTorrent,
    options: FollowOptions,
    /// The newest valid pointer seen: its `seq` and info-hash.
    last: Option<(i64, InfoHashV1)>,
    current: Option<Torrent>,
    polled: bool,
}

impl Client {
    /// Follows the mutable torrent `target` (a `magnet:?xs=urn:btpk:` link, see
    /// [`MutableTorrent::from_magnet`]): each call to [`MutableFollower::next`] waits for
    /// a version newer than the last one (the first call: the current one) and adds
    /// it. Pointers with a `seq` lower than or equal to the last one (rollbacks), a bad
    /// signature, another key or salt, or a value that is not a torrent pointer are
    /// ignored.
    pub fn follow_mutable(
        &self,
        target: MutableTorrent,
        options: FollowOptions,
    ) -> MutableFollower<'_> {
        MutableFollower {
            client: self,
            target,
            options,
            last: None,
            current: None,
            polled: false,
        }
    }
}

impl MutableFollower<'_> {
    /// The version being followed, once one was added.
    pub fn current(&self) -> Option<&Torrent> {
        self.current.as_ref()
    }

    /// Waits until the pointer names a newer torrent, then adds it (and, unless
    /// [`FollowOptions::keep_old`], removes the previous one from the session, leaving
    /// its files). A newer `seq` naming the same torrent is noted and waited past.
    ///
    /// # Errors
    /// [`FollowError`] when the DHT is off or has stopped, or the torrent cannot be
    /// added; lookups that fail or find nothing are tried again.
    pub async fn next(&mut self) -> Result<Version, FollowError> {
        let dht = self.client.dht().ok_or(FollowError::NoDht)?.clone();
        loop {
            if self.polled {
                let wait = if self.last.is_some() {
                    self.options.interval
                } else {
                    self.options.interval.min(FIRST_RETRY)
                };
                tokio::time::sleep(wait).await;
            }
            self.polled = true;
            let item = match dht.get_mutable(self.target.key, &self.target.salt).await {
                Ok(Some(item)) => item,
                Ok(None) => {
                    tracing::debug!("no BEP 46 pointer found yet");
                    continue;
                }
                Err(DhtError::Closed) => return Err(DhtError::Closed.into()),
                Err(e) => {
                    tracing::debug!("BEP 46 pointer lookup: {e}");
                    continue;
                }
            };
            let Some((seq, info_hash)) = newer(self.last, &self.target, &item) else {
                continue;
            };
            let changed = self.last.is_none_or(|(_, old)| old != info_hash);
            self.last = Some((seq, info_hash));
            if !changed {
                continue;
            }
            tracing::info!(seq, %info_hash, "new version of the mutable torrent");
            if !self.options.keep_old
                && let Some(old) = self.current.take()
                && let Err(e) = self.client.remove(&old, false).await
            {
                tracing::debug!("the previous version: {e}");
            }
            let magnet = Magnet {
                v1: Some(info_hash),
                ..Magnet::default()
            };
            let torrent = self
                .client
                .add_magnet(&magnet, self.options.add.clone())
                .await?;
            self.current = Some(torrent.clone());
            return Ok(Version {
                seq,
                info_hash,
                torrent,
            });
        }
    }
}

/// The `seq` and info-hash of `item` when it is a valid pointer for `target` newer
/// than `last`.
fn newer(
    last: Option<(i64, InfoHashV1)>,
    target: &MutableTorrent,
    item: &MutableItem,
) -> Option<(i64, InfoHashV1)> {
    if item.key != target.key || item.salt != target.salt {
        tracing::debug!("a BEP 46 pointer for another key or salt: ignored");
        return None;
    }
    if item.verify().is_err() {
        tracing::debug!("a BEP 46 pointer with a bad signature: ignored");
        return None;
    }
    if let Some((seq, _)) = last
        && item.seq <= seq
    {
        if item.seq < seq {
            tracing::debug!(seq = item.seq, last = seq, "a BEP 46 rollback: ignored");
        }
        return None;
    }
    match decode_pointer(&item.value) {
        Ok(info_hash) => Some((item.seq, info_hash)),
        Err(e) => {
            tracing::debug!("a BEP 46 item that is not a pointer: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webtorrent_dht::{SigningKey, encode_pointer};

    fn pointer(key: &SigningKey, salt: &[u8], seq: i64, ih: u8) -> MutableItem {
        MutableItem::sign(key, salt, seq, encode_pointer(InfoHashV1([ih; 20]))).expect("sign")
    }

    #[test]
    fn only_newer_signed_pointers_for_the_target_count() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let target = MutableTorrent {
            key: key.verifying_key().to_bytes(),
            salt: b"s".to_vec(),
        };
        let v1 = pointer(&key, b"s", 1, 1);
        assert_eq!(newer(None, &target, &v1), Some((1, InfoHashV1([1; 20]))));
        let last = Some((2, InfoHashV1([2; 20])));
        // A rollback and a replay are ignored; a newer one is taken.
        assert_eq!(newer(last, &target, &v1), None);
        assert_eq!(newer(last, &target, &pointer(&key, b"s", 2, 9)), None);
        assert_eq!(
            newer(last, &target, &pointer(&key, b"s", 3, 3)),
            Some((3, InfoHashV1([3; 20])))
        );
        // A forged signature, a changed value under the old signature, another key or
        // salt, a value that is no pointer.
        let mut forged = pointer(&key, b"s", 7, 7);
        forged.signature[0] ^= 1;
        assert_eq!(newer(last, &target, &forged), None);
        let mut swapped = pointer(&key, b"s", 7, 7);
        swapped.value = encode_pointer(InfoHashV1([8; 20]));
        assert_eq!(newer(last, &target, &swapped), None);
        let other = SigningKey::from_bytes(&[6; 32]);
        assert_eq!(newer(last, &target, &pointer(&other, b"s", 7, 7)), None);
        assert_eq!(newer(last, &target, &pointer(&key, b"t", 7, 7)), None);
        let junk = MutableItem::sign(&key, b"s", 7, b"i42e".to_vec()).expect("sign");
        assert_eq!(newer(last, &target, &junk), None);
    }
}
