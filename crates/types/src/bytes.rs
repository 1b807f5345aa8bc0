//! The byte and hex plumbing shared by the fixed-size identifiers.

/// Implements `LEN`, `from_bytes`, `as_bytes`, `to_hex` and `from_hex` for a newtype over
/// `[u8; N]`; `$what` names the bytes in the docs ("hash", "peer id").
macro_rules! fixed_bytes {
    ($ty:ident, $n:literal, $what:literal) => {
        impl $ty {
            #[doc = concat!("The length of the ", $what, " in bytes.")]
            pub const LEN: usize = $n;

            #[doc = concat!("Copies a ", stringify!($n), "-byte slice.")]
            ///
            /// # Errors
            #[doc = concat!("[`ParseError::ByteLength`](crate::ParseError::ByteLength) if `bytes` is not exactly ", stringify!($n), " bytes long.")]
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::ParseError> {
                <[u8; $n]>::try_from(bytes)
                    .map(Self)
                    .map_err(|_| crate::ParseError::ByteLength {
                        expected: Self::LEN,
                        actual: bytes.len(),
                    })
            }

            #[doc = concat!("The raw ", $what, ".")]
            pub const fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }

            #[doc = concat!(stringify!($n), " bytes as ", stringify!($n), " * 2 lowercase hex digits.")]
            pub fn to_hex(&self) -> String {
                crate::hex::encode(&self.0)
            }

            #[doc = concat!("Parses ", stringify!($n), " * 2 hex digits, any case.")]
            ///
            /// # Errors
            /// [`ParseError::TextLength`](crate::ParseError::TextLength) or
            /// [`ParseError::InvalidHex`](crate::ParseError::InvalidHex).
            pub fn from_hex(text: &str) -> Result<Self, crate::ParseError> {
                let mut out = [0; $n];
                crate::hex::decode_to_slice(text, &mut out)?;
                Ok(Self(out))
            }
        }
    };
}

pub(crate) use fixed_bytes;
