//! Redshift's column encodings, one module per codec, each turning one block of an Arrow
//! column into its payload bytes and back: AZ64 (`az64`), RUNLENGTH (`runlength`),
//! BYTEDICT (`bytedict`), DELTA and DELTA32K (`delta`), MOSTLY8/16/32 (`mostly`),
//! TEXT255/TEXT32K (`text_dict`) and the LZO/ZSTD string layouts (`strings`). Their
//! layouts are in `docs/format.md`.
//!
//! Arrows point one way: the segment chooses a codec per block and calls in here; the
//! codecs build on the shared helpers in [`block`], which import no codec. Nothing here
//! imports the segment.

pub mod az64;
pub mod block;
pub mod bytedict;
pub(crate) mod delta;
pub(crate) mod mostly;
pub mod runlength;
pub(crate) mod strings;
pub(crate) mod text_dict;
