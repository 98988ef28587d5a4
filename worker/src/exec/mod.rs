//! Running plan fragments over slices: the leaf that scans a slice's segments
//! ([`scan`], with zone-map pruning in [`prune`]), the exchange that moves rows between
//! slices and workers ([`exchange`]), and the codec that carries both through
//! datafusion-proto ([`codec`]).
//!
//! It may import the protocol, the Redshift functions and the leaves; never the node that
//! serves it, nor load or unload.

pub mod codec;
pub mod exchange;
pub mod prune;
pub mod scan;
