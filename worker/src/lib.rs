//! A Basalt worker (compute node). It owns a set of slices given to it by the leader,
//! serves an Arrow Flight endpoint on which the leader (and other workers, through exchanges) run
//! plan fragments over those slices and stream rows in for new segments, and registers
//! with the leader and heartbeats so the leader knows it is alive.
//!
//! The messages that travel between leader and worker are defined in [`protocol`]; the
//! leader depends on this crate for them, never the other way round.

pub mod codec;
pub mod error;
pub mod exchange;
pub mod formats;
pub mod functions;
pub mod liveness;
pub mod load;
pub mod load_stats;
pub mod node;
pub mod objects;
pub mod pgvalue;
pub mod protocol;
pub mod prune;
pub mod recent;
pub mod scan;
pub mod service;
mod split;
pub mod unload;
pub mod unwind;

pub use error::{Result, WorkerError};
