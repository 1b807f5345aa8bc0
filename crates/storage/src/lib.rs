//! Work in progress: see the crate README once it lands.
#![forbid(unsafe_code)]
