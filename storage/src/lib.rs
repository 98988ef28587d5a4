//! Basalt's storage library: the on-disk segment format, the distribution hash that
//! places rows on slices, and the object-store layout of table data.
//!
//! Nothing here opens a socket. Workers call it to write and read segments; the leader
//! calls it to name paths and to route rows. The byte layout is documented in
//! `storage/docs/format.md`; changing it means bumping [`segment::FORMAT_VERSION`].

pub mod az64;
pub mod bytedict;
pub mod deletes;
mod delta;
pub mod error;
mod gather;
pub mod hash;
pub mod layout;
mod mostly;
pub mod runlength;
pub mod segment;
mod strings;
mod text_dict;
mod values;
pub mod zorder;

pub use error::{Result, StorageError};
