//! DataFusion integration: tables as DataFusion sees them ([`table`]), the distributed
//! execution that ships plan fragments to the workers ([`exec`]), and Redshift's EXPLAIN
//! ([`explain`]). It may use the catalog, the cluster and the system tables; it never
//! imports a command, the session or the wire.

pub mod engine;
pub mod exec;
pub mod explain;
pub mod statement;
pub mod table;
