//! Basalt's storage library: the on-disk segment format, the distribution hash that
//! places rows on slices, and the object-store layout of table data.
//!
//! Nothing here opens a socket. Workers call it to write and read segments; the leader
//! calls it to name paths and to route rows. The byte layout is documented in
//! `storage/docs/format.md`; changing it means bumping [`segment::FORMAT_VERSION`].

pub mod deletes;
pub mod encodings;
pub mod error;
mod gather;
pub mod hash;
pub mod layout;
pub mod segment;
pub mod zorder;

pub use error::{Result, StorageError};
