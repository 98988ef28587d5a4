//! The leader's durable catalog and everything it stores: schemas, tables (with their
//! distribution, sort key, encodings and the list of committed segments, i.e. the table
//! version), views, constraints, comments and users. It lives in one redb file; every
//! change is one redb write transaction, so a commit is atomic and survives a crash. Readers
//! take an immutable snapshot ([`CatalogState`]) and keep it for the whole statement.
//!
//! [`defs`] holds the records, [`state`] one version and the changes between versions,
//! [`store`] the redb file; [`dependencies`] what a drop or rename implies for the views and
//! foreign keys naming a relation, [`constraints`] how constraints print, [`users`] user
//! records and their password hashes, and [`gc`] the deletion of files no version names.
//! The catalog imports only the dialect's leaf helpers (`sql`) and the error module: never
//! the planner, the system tables, the cluster, the commands or the session.

pub mod constraints;
mod defs;
pub mod dependencies;
pub mod gc;
pub mod privileges;
mod state;
mod store;
pub mod users;

pub use defs::*;
pub use state::*;
pub use store::*;
