//! The Redshift dialect: parsing (with the shape limits that keep one statement from
//! taking a node down), the rewrites of Redshift's forms, Redshift's functions, PIVOT and
//! UNPIVOT, identifier normalisation, and the one SQL ↔ Arrow ↔ PostgreSQL type map.
//!
//! It imports only the error module: the catalog, the commands and the planner build on
//! it, never the other way round.

pub mod access;
pub mod dialect;
pub mod functions;
pub mod limits;
pub mod names;
pub mod parse;
pub mod pivot;
pub mod tokens;
pub mod types;

pub use dialect::{BasaltDialect, LayoutChange, SortKind, alter_encodings, alter_layout};
pub use parse::{TableAttrs, parse_sql};
