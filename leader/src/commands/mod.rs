//! One module per statement family, each a set of methods of the
//! [`context::StatementContext`] that return a [`context::Outcome`]:
//!
//! | module | statements |
//! |---|---|
//! | [`create`] | CREATE SCHEMA, CREATE TABLE [LIKE / AS], DROP TABLE / VIEW / SCHEMA |
//! | [`ddl`] | Redshift's table attributes (DISTSTYLE, SORTKEY, ENCODE, IDENTITY) → table definitions, SHOW TABLE's DDL |
//! | [`alter`] | ALTER TABLE RENAME, ADD / DROP / RENAME / ALTER COLUMN, ALTER DISTSTYLE / DISTKEY / SORTKEY / ENCODE AUTO |
//! | [`constraints`] | PRIMARY KEY / UNIQUE / FOREIGN KEY in CREATE TABLE, ALTER TABLE ADD / DROP CONSTRAINT |
//! | [`views`] | CREATE [OR REPLACE] VIEW, SHOW VIEW |
//! | [`comments`] | COMMENT ON |
//! | [`query`] | SELECT, INSERT, EXPLAIN (planned whole by DataFusion) |
//! | [`dml`] | DELETE, UPDATE, TRUNCATE |
//! | [`copy`] | COPY (files, S3, FROM STDIN) |
//! | [`unload`] | UNLOAD |
//! | [`maintenance`] | VACUUM, ANALYZE [COMPRESSION], ALTER COLUMN … ENCODE |
//! | [`show`] | SET, RESET, SHOW |
//! | [`users`] | CREATE / ALTER / DROP USER and GROUP |
//! | [`grants`] | GRANT, REVOKE |
//! | [`roles`] | CREATE / ALTER / DROP ROLE, GRANT / REVOKE ROLE |
//!
//! [`privileges`] is the one privilege check every command calls before it changes or
//! returns anything. A command sees only its statement context: it never imports the session or the wire
//! (`tests/layout.rs` fails if one does). What several commands share lives in `context`
//! or below, in `plan`, `catalog`, `system` and `sql`.

pub mod alter;
pub mod comments;
pub mod constraints;
pub mod context;
pub mod copy;
pub mod create;
pub mod ddl;
pub mod dml;
pub mod grants;
pub mod maintenance;
pub mod privileges;
pub mod query;
pub mod roles;
pub mod show;
pub mod unload;
pub mod users;
pub mod views;
