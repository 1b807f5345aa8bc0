//! The per-connection extension registry (BEP 10): our extensions and their local ids,
//! the peer's ids, and routing of extended messages both ways.

use std::any::Any;
use std::borrow::Cow;

use webtorrent_wire::Message;

use crate::donthave::DontHave;
use crate::error::{ExtensionError, IncomingError, RegistryError};
use crate::handshake::{ExtHandshake, MAX_EXTENSION_NAME_LEN};
use crate::metadata::MetadataMessage;
use crate::pex::PexMessage;

/// The name of BEP 9's metadata exchange extension.
pub const UT_METADATA: &str = "ut_metadata";
/// The name of BEP 11's peer exchange extension.
pub const UT_PEX: &str = "ut_pex";
/// The name of libtorrent's "don't have" extension.
pub const LT_DONTHAVE: &str = "lt_donthave";

/// How many payloads [`Registry::poll_transmit`] drops per call from an extension
/// the peer did not enable.
const MAX_DROPPED_PER_POLL: usize = 1024;

/// The extended message id of the extension handshake.
pub const HANDSHAKE_ID: u8 = 0;

/// An extension protocol an application adds to every connection, like JS WebTorrent's
/// `wire.use()`.
///
/// The [`Registry`] gives it a local id, announces its [`name`](Self::name) in our
/// extension handshake, calls [`on_handshake`](Self::on_handshake) when the peer's
/// handshake enables it, passes it the payloads the peer sends under our id, and sends
/// what [`poll_transmit`](Self::poll_transmit) yields under the peer's id. It never
/// sees ids or frames, only payloads. One value serves one connection.
///
/// ```
/// use std::collections::VecDeque;
/// use webtorrent_extensions::{ExtHandshake, Extension, ExtensionError, Incoming, Registry};
/// use webtorrent_wire::Message;
///
/// /// Answers every "ping" with a "pong".
/// #[derive(Default)]
/// struct Ping {
///     outbox: VecDeque<Vec<u8>>,
///     pongs: usize,
/// }
///
/// impl Extension for Ping {
///     fn name(&self) -> &str {
///         "x_ping"
///     }
///     fn on_handshake(&mut self, _peer: &ExtHandshake) {
///         self.outbox.push_back(b"ping".to_vec());
///     }
///     fn on_message(&mut self, payload: &[u8]) -> Result<(), ExtensionError> {
///         match payload {
///             b"ping" => self.outbox.push_back(b"pong".to_vec()),
///             b"pong" => self.pongs += 1,
///             _ => return Err(ExtensionError::new("neither ping nor pong")),
///         }
///         Ok(())
///     }
///     fn poll_transmit(&mut self) -> Option<Vec<u8>> {
///         self.outbox.pop_front()
///     }
/// }
///
/// // Two ends of one connection.
/// let mut a = Registry::new();
/// a.add(Box::new(Ping::default()))?;
/// let mut b = Registry::with_builtins();
/// b.add(Box::new(Ping::default()))?;
///
/// // Exchange handshakes, then shuttle messages until both are quiet.
/// let deliver = |to: &mut Registry, msg: Message<'_>| {
///     let Message::Extended { id, payload } = msg else { unreachable!() };
///     to.handle(id, &payload).map(|_| ())
/// };
/// deliver(&mut b, a.handshake(ExtHandshake::ours()))?;
/// deliver(&mut a, b.handshake(ExtHandshake::ours()))?;
/// loop {
///     let mut quiet = true;
///     while let Some(m) = a.poll_transmit() { deliver(&mut b, m)?; quiet = false; }
///     while let Some(m) = b.poll_transmit() { deliver(&mut a, m)?; quiet = false; }
///     if quiet { break; }
/// }
/// assert_eq!(a.extension_mut::<Ping>().map(|p| p.pongs), Some(1));
/// assert_eq!(b.extension_mut::<Ping>().map(|p| p.pongs), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Extension: Any + Send {
    /// The name in `m`, e.g. `"ut_metadata"`. Must not change.
    fn name(&self) -> &str;

    /// Adds this extension's keys to our extension handshake (e.g. `metadata_size`).
    fn extend_handshake(&mut self, handshake: &mut ExtHandshake) {
        let _ = handshake;
    }

    /// The peer's extension handshake (or an update of it, merged) enables this
    /// extension.
    fn on_handshake(&mut self, peer: &ExtHandshake) {
        let _ = peer;
    }

    /// A message from the peer for this extension. Queue replies for
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    /// [`ExtensionError`] for a payload the extension cannot accept; the registry
    /// passes it to the driver.
    fn on_message(&mut self, payload: &[u8]) -> Result<(), ExtensionError>;

    /// The next payload to send to the peer, if any. Polled only once the peer's
    /// handshake enabled the extension.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
}

/// A built-in extension whose messages the [`Registry`] decodes for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Builtin {
    /// [`UT_METADATA`] (BEP 9).
    UtMetadata,
    /// [`UT_PEX`] (BEP 11).
    UtPex,
    /// [`LT_DONTHAVE`].
    LtDonthave,
}

impl Builtin {
    /// Its name in `m`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::UtMetadata => UT_METADATA,
            Self::UtPex => UT_PEX,
            Self::LtDonthave => LT_DONTHAVE,
        }
    }
}

/// A message from the peer, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming<'a> {
    /// The peer's extension handshake, merged with its earlier ones (see
    /// [`Registry::peer_handshake`]). Hand it to the [`crate::MetadataFetcher`].
    Handshake(ExtHandshake),
    /// A `ut_metadata` message: requests go to a [`crate::MetadataServer`], answers to
    /// the [`crate::MetadataFetcher`].
    Metadata(MetadataMessage<'a>),
    /// A `ut_pex` message: filter it with the connection's [`crate::PexState`].
    Pex(PexMessage),
    /// An `lt_donthave` message: clear the piece from the peer's bitfield.
    DontHave(DontHave),
    /// A message handled by the custom extension of this name.
    Custom {
        /// The extension's name.
        name: String,
    },
}

enum Handler {
    Builtin(Builtin),
    Custom(Box<dyn Extension>),
}

struct Local {
    name: String,
    handler: Handler,
}

/// The extensions of one connection.
///
/// Our extensions get local ids 1, 2, … in the order they are added: the peer sends us
/// their messages under those ids, which [`handle`](Self::handle) routes. We send ours
/// under the ids of the peer's handshake: [`ut_metadata`](Self::ut_metadata),
/// [`ut_pex`](Self::ut_pex), [`lt_donthave`](Self::lt_donthave) and
/// [`message`](Self::message) build the frames, and return `None` while the peer has not
/// enabled the extension.
///
/// A driver:
/// 1. sends [`handshake`](Self::handshake) right after the BitTorrent handshake when
///    both set the extension bit (`reserved[5] & 0x10`);
/// 2. passes every `Message::Extended { id, payload }` to [`handle`](Self::handle) and
///    acts on the [`Incoming`] (closing the connection on
///    [`IncomingError::Handshake`]; other errors can be ignored);
/// 3. sends what [`poll_transmit`](Self::poll_transmit) yields (custom extensions'
///    messages) after every input.
///
/// The [`Extension`] trait's example shows a whole exchange.
pub struct Registry {
    local: Vec<Local>,
    peer: Option<ExtHandshake>,
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry")
            .field(
                "local",
                &self
                    .local
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("peer", &self.peer)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry without extensions.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            local: Vec::new(),
            peer: None,
        }
    }

    /// A registry with `ut_metadata` (id 1), `ut_pex` (id 2) and `lt_donthave` (id 3).
    #[must_use]
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        for b in [Builtin::UtMetadata, Builtin::UtPex, Builtin::LtDonthave] {
            // Three distinct short names on an empty registry cannot fail.
            let _ = r.add_builtin(b);
        }
        r
    }

    fn push(&mut self, name: String, handler: Handler) -> Result<u8, RegistryError> {
        if name.is_empty() || name.len() > MAX_EXTENSION_NAME_LEN {
            return Err(RegistryError::BadName(name));
        }
        if self.local.iter().any(|l| l.name == name) {
            return Err(RegistryError::DuplicateName(name));
        }
        let id =
            u8::try_from(self.local.len() + 1).map_err(|_| RegistryError::TooManyExtensions)?;
        self.local.push(Local { name, handler });
        Ok(id)
    }

    /// Adds a built-in extension; returns its local id.
    ///
    /// # Errors
    /// [`RegistryError`] if it is already there or 255 extensions are.
    pub fn add_builtin(&mut self, builtin: Builtin) -> Result<u8, RegistryError> {
        self.push(builtin.name().to_owned(), Handler::Builtin(builtin))
    }

    /// Adds a custom extension; returns its local id.
    ///
    /// # Errors
    /// [`RegistryError`] for a name already used, an empty or over-long name, or when
    /// 255 extensions are there.
    pub fn add(&mut self, extension: Box<dyn Extension>) -> Result<u8, RegistryError> {
        self.push(extension.name().to_owned(), Handler::Custom(extension))
    }

    /// The custom extension of type `T`, to read its state or give it work.
    pub fn extension_mut<T: Extension>(&mut self) -> Option<&mut T> {
        self.local.iter_mut().find_map(|l| match &mut l.handler {
            Handler::Custom(ext) => {
                let any: &mut dyn Any = ext.as_mut();
                any.downcast_mut::<T>()
            }
            Handler::Builtin(_) => None,
        })
    }

    /// Our local id for extension `name`.
    #[must_use]
    pub fn local_id(&self, name: &str) -> Option<u8> {
        let index = self.local.iter().position(|l| l.name == name)?;
        u8::try_from(index + 1).ok()
    }

    /// Our extension handshake: `base` with our extensions in `m` and whatever the
    /// custom ones add, as extended message 0.
    ///
    /// Start `base` from [`ExtHandshake::ours`] and fill in what the driver knows: the
    /// remote's address as `your_ip`, our `listen_port`, `reqq`, and `metadata_size`
    /// once we have the info dictionary (a [`crate::MetadataServer`] tells it). Calling
    /// this again later builds an update handshake.
    pub fn handshake(&mut self, mut base: ExtHandshake) -> Message<'static> {
        for (i, local) in self.local.iter_mut().enumerate() {
            // At most 255 extensions are ever added, so i + 1 fits.
            let id = u8::try_from(i + 1).unwrap_or(u8::MAX);
            base.m.insert(local.name.clone(), id);
            if let Handler::Custom(ext) = &mut local.handler {
                ext.extend_handshake(&mut base);
            }
        }
        Message::Extended {
            id: HANDSHAKE_ID,
            payload: Cow::Owned(base.encode()),
        }
    }

    /// The peer's extension handshake so far (later ones merged in).
    #[must_use]
    pub const fn peer_handshake(&self) -> Option<&ExtHandshake> {
        self.peer.as_ref()
    }

    /// The id the peer receives extension `name` under, if it enabled it.
    #[must_use]
    pub fn peer_id(&self, name: &str) -> Option<u8> {
        self.peer.as_ref()?.extension_id(name)
    }

    /// Handles the payload of an extended message from the peer.
    ///
    /// # Errors
    /// [`IncomingError`] for an invalid handshake (close the connection), an id we did
    /// not assign, or a payload its extension cannot decode.
    pub fn handle<'a>(&mut self, id: u8, payload: &'a [u8]) -> Result<Incoming<'a>, IncomingError> {
        if id == HANDSHAKE_ID {
            let update = ExtHandshake::decode(payload)?;
            let merged = match self.peer.take() {
                Some(mut hs) => {
                    hs.merge(update);
                    hs
                }
                None => update,
            };
            for local in &mut self.local {
                if let Handler::Custom(ext) = &mut local.handler
                    && merged.extension_id(&local.name).is_some()
                {
                    ext.on_handshake(&merged);
                }
            }
            self.peer = Some(merged.clone());
            return Ok(Incoming::Handshake(merged));
        }
        // `id` is not 0 here; local ids start at 1.
        let local = self
            .local
            .get_mut(usize::from(id) - 1)
            .ok_or(IncomingError::UnknownId(id))?;
        Ok(match &mut local.handler {
            Handler::Builtin(Builtin::UtMetadata) => {
                Incoming::Metadata(MetadataMessage::decode(payload)?)
            }
            Handler::Builtin(Builtin::UtPex) => Incoming::Pex(PexMessage::decode(payload)?),
            Handler::Builtin(Builtin::LtDonthave) => Incoming::DontHave(DontHave::decode(payload)?),
            Handler::Custom(ext) => {
                ext.on_message(payload)
                    .map_err(|source| IncomingError::Custom {
                        name: local.name.clone(),
                        source,
                    })?;
                Incoming::Custom {
                    name: local.name.clone(),
                }
            }
        })
    }

    /// A frame carrying `payload` for extension `name`, under the peer's id; `None` if
    /// the peer has not enabled it.
    #[must_use]
    pub fn message(&self, name: &str, payload: Vec<u8>) -> Option<Message<'static>> {
        Some(Message::Extended {
            id: self.peer_id(name)?,
            payload: Cow::Owned(payload),
        })
    }

    /// A `ut_metadata` frame for the peer, if it enabled the extension.
    #[must_use]
    pub fn ut_metadata(&self, message: &MetadataMessage<'_>) -> Option<Message<'static>> {
        let id = self.peer_id(UT_METADATA)?;
        Some(Message::Extended {
            id,
            payload: Cow::Owned(message.to_vec()),
        })
    }

    /// A `ut_pex` frame for the peer, if it enabled the extension.
    #[must_use]
    pub fn ut_pex(&self, message: &PexMessage) -> Option<Message<'static>> {
        let id = self.peer_id(UT_PEX)?;
        Some(Message::Extended {
            id,
            payload: Cow::Owned(message.to_vec()),
        })
    }

    /// An `lt_donthave` frame for the peer, if it enabled the extension.
    #[must_use]
    pub fn lt_donthave(&self, message: DontHave) -> Option<Message<'static>> {
        let id = self.peer_id(LT_DONTHAVE)?;
        Some(Message::Extended {
            id,
            payload: Cow::Owned(message.to_bytes().to_vec()),
        })
    }

    /// The next message a custom extension wants to send. Before the peer's handshake
    /// nothing is polled; extensions the peer did not enable are drained and their
    /// payloads dropped, so they cannot pile up.
    pub fn poll_transmit(&mut self) -> Option<Message<'static>> {
        let peer = self.peer.as_ref()?;
        for local in &mut self.local {
            let Handler::Custom(ext) = &mut local.handler else {
                continue;
            };
            match peer.extension_id(&local.name) {
                Some(id) => {
                    if let Some(payload) = ext.poll_transmit() {
                        return Some(Message::Extended {
                            id,
                            payload: Cow::Owned(payload),
                        });
                    }
                }
                None => {
                    // Bounded, in case an extension always has something to send.
                    for _ in 0..MAX_DROPPED_PER_POLL {
                        if ext.poll_transmit().is_none() {
                            break;
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(m: Message<'_>) -> (u8, Vec<u8>) {
        match m {
            Message::Extended { id, payload } => (id, payload.into_owned()),
            other => panic!("not extended: {other:?}"),
        }
    }

    #[test]
    fn state_machines_move_between_tasks() {
        fn send<T: Send + 'static>() {}
        send::<Registry>();
        send::<crate::MetadataFetcher<std::net::SocketAddr>>();
        send::<crate::MetadataServer>();
        send::<crate::PexState>();
    }

    #[test]
    fn builtins_route_both_ways() {
        let mut ours = Registry::with_builtins();
        let (id, hs) = payload(ours.handshake(ExtHandshake::ours()));
        assert_eq!(id, 0);
        let hs = ExtHandshake::decode(&hs).unwrap();
        assert_eq!(hs.extension_id(UT_METADATA), Some(1));
        assert_eq!(hs.extension_id(UT_PEX), Some(2));
        assert_eq!(hs.extension_id(LT_DONTHAVE), Some(3));

        // Nothing can be sent before the peer's handshake.
        assert_eq!(
            ours.ut_metadata(&MetadataMessage::Request { piece: 0 }),
            None
        );
        let theirs = b"d1:md11:lt_donthavei7e11:ut_metadatai2e6:ut_pexi1eee";
        assert!(matches!(ours.handle(0, theirs), Ok(Incoming::Handshake(_))));
        let (id, _) = payload(
            ours.ut_metadata(&MetadataMessage::Request { piece: 0 })
                .unwrap(),
        );
        assert_eq!(id, 2);
        assert_eq!(payload(ours.ut_pex(&PexMessage::default()).unwrap()).0, 1);
        assert_eq!(
            payload(ours.lt_donthave(DontHave(4)).unwrap()),
            (7, vec![0, 0, 0, 4])
        );

        // Incoming messages use our ids.
        assert_eq!(
            ours.handle(1, b"d8:msg_typei0e5:piecei3ee"),
            Ok(Incoming::Metadata(MetadataMessage::Request { piece: 3 }))
        );
        assert_eq!(
            ours.handle(3, &[0, 0, 1, 0]),
            Ok(Incoming::DontHave(DontHave(256)))
        );
        assert!(matches!(ours.handle(2, b"de"), Ok(Incoming::Pex(_))));
        assert_eq!(ours.handle(4, b""), Err(IncomingError::UnknownId(4)));
        assert_eq!(ours.handle(255, b""), Err(IncomingError::UnknownId(255)));
        assert!(matches!(
            ours.handle(3, b"x"),
            Err(IncomingError::DontHave(_))
        ));
    }

    #[test]
    fn update_handshake_disables() {
        let mut ours = Registry::with_builtins();
        ours.handle(0, b"d1:md6:ut_pexi1eee").unwrap();
        assert!(ours.ut_pex(&PexMessage::default()).is_some());
        ours.handle(0, b"d1:md6:ut_pexi0eee").unwrap();
        assert!(ours.ut_pex(&PexMessage::default()).is_none());
        assert!(matches!(
            ours.handle(0, b"i1e"),
            Err(IncomingError::Handshake(_))
        ));
    }

    struct Named(&'static str);

    impl Extension for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn on_message(&mut self, _payload: &[u8]) -> Result<(), ExtensionError> {
            Err(ExtensionError::new("no messages expected"))
        }
        fn poll_transmit(&mut self) -> Option<Vec<u8>> {
            Some(b"spam".to_vec())
        }
    }

    #[test]
    fn registration_errors() {
        let mut r = Registry::with_builtins();
        assert_eq!(
            r.add(Box::new(Named(UT_PEX))),
            Err(RegistryError::DuplicateName(UT_PEX.into()))
        );
        assert_eq!(
            r.add(Box::new(Named(""))),
            Err(RegistryError::BadName(String::new()))
        );
        let mut r = Registry::new();
        let names: Vec<String> = (0..256).map(|i| format!("x{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let name: &'static str = Box::leak(name.clone().into_boxed_str());
            let got = r.add(Box::new(Named(name)));
            if i < 255 {
                assert_eq!(got, Ok(u8::try_from(i + 1).unwrap()));
            } else {
                assert_eq!(got, Err(RegistryError::TooManyExtensions));
            }
        }
    }

    #[test]
    fn custom_errors_and_unsupported_outbox() {
        let mut r = Registry::new();
        r.add(Box::new(Named("x_a"))).unwrap();
        assert_eq!(
            r.handle(1, b"hi"),
            Err(IncomingError::Custom {
                name: "x_a".into(),
                source: ExtensionError::new("no messages expected")
            })
        );
        assert_eq!(
            r.poll_transmit(),
            None,
            "nothing before the peer's handshake"
        );
        r.handle(0, b"d1:md3:x_ai9eee").unwrap();
        assert_eq!(payload(r.poll_transmit().unwrap()), (9, b"spam".to_vec()));
    }
}
