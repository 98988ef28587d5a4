//! A Basalt worker (compute node). It owns a set of slices given to it by the leader,
//! serves an Arrow Flight endpoint on which the leader (and other workers, through
//! exchanges) run plan fragments over those slices and stream rows in for new segments,
//! and registers with the leader and heartbeats so the leader knows it is alive.
//!
//! The layers, top to bottom (a module imports only from the ones below it; the
//! `layout` test in the workspace keeps it so):
//! - [`node`]: the process — Flight service, registration, heartbeat, panic guards.
//! - [`exec`], [`load`], [`unload`]: the work the node does — plan fragments over slices
//!   and the exchanges between them, COPY's reading and conversion, UNLOAD's writing.
//! - [`protocol`] (the messages between leader and worker, and how nodes reach each
//!   other), [`functions`], [`objects`], [`pgvalue`], [`recent`], [`error`]: leaves.
//!
//! The leader depends on this crate for the messages, never the other way round.

pub mod error;
pub mod exec;
pub mod functions;
pub mod load;
pub mod node;
pub mod objects;
pub mod pgvalue;
pub mod protocol;
pub mod recent;
pub mod unload;

pub use error::{Result, WorkerError};
