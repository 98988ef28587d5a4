//! What the catalog records about each object: tables and their columns, distribution,
//! sort key and segments; views; constraints; users.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use basalt_storage::segment::Codec;
use basalt_worker::protocol::{SegmentRef, StoredColumn};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Result, code};
use crate::sql::SortKind;
use crate::sql::types::SqlType;
use crate::sql_err;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DistStyle {
    Auto,
    Even,
    /// Column index of the DISTKEY.
    Key(usize),
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub seed: i64,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    /// DEFAULT expression, as SQL text.
    pub default: Option<String>,
    pub identity: Option<Identity>,
    /// ENCODE as declared (lower case), or the automatic choice.
    pub encoding: String,
    /// The name segments store the column under: its name when it was created. RENAME
    /// COLUMN keeps it, so no segment is rewritten; no two columns the table ever had
    /// share one.
    pub stored: String,
    /// The value, as text, of rows in segments written before the column was added (its
    /// DEFAULT when ADD COLUMN ran); `None` reads them as NULL.
    pub missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: u64,
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub dist: DistStyle,
    pub sort_kind: SortKind,
    /// Column indices of the sort key, in key order.
    pub sort_key: Vec<usize>,
    pub backup: bool,
    /// Whether ENCODE AUTO applies (no column had an explicit ENCODE).
    pub encode_auto: bool,
    /// The committed segments: this list *is* the table version.
    pub segments: Vec<SegmentRef>,
    /// Next IDENTITY value per column (indexed like `columns`).
    pub identity_next: Vec<i64>,
    pub owner: String,
    /// What the last ANALYZE recorded.
    pub stats: Option<TableStats>,
    /// Rows inserted, deleted or updated since the last ANALYZE (what `stats_off` uses).
    pub modified_rows: u64,
    /// Stored names of dropped columns, which older segments may still hold: a column
    /// added later never takes one.
    pub retired: Vec<String>,
}

/// Statistics recorded by ANALYZE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Live rows when ANALYZE ran.
    pub rows: u64,
    /// Microseconds since the Unix epoch.
    pub analyzed_at_us: i64,
    /// One entry per analyzed column.
    pub columns: Vec<ColumnStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub name: String,
    /// Bounds as text (NULL when the column has no non-null value).
    pub min: Option<String>,
    pub max: Option<String>,
    pub null_count: u64,
    /// Estimated number of distinct non-null values.
    pub distinct: u64,
}

impl TableDef {
    /// The table's Arrow schema. Every field is nullable: NOT NULL is enforced by the
    /// insert path with Redshift's error, not by Arrow's schema check.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.sql_type.to_arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema segments are written with: every column under its stored name.
    pub fn storage_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.stored, c.sql_type.to_arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// Where scans find each column in segments (in column order).
    pub fn stored_columns(&self) -> Vec<StoredColumn> {
        self.columns
            .iter()
            .map(|c| StoredColumn {
                stored: c.stored.clone(),
                missing: c.missing.clone(),
            })
            .collect()
    }

    /// A stored name for a new column called `name` that no column of the table, present
    /// or dropped, has used: its own name if possible.
    pub fn fresh_stored_name(&self, name: &str) -> String {
        let taken = |n: &str| {
            self.columns.iter().any(|c| c.stored == n) || self.retired.iter().any(|r| r == n)
        };
        (0..)
            .map(|i| {
                if i == 0 {
                    name.to_string()
                } else {
                    format!("{name}#{i}")
                }
            })
            .find(|n| !taken(n))
            .expect("an unused name exists")
    }

    /// Whether the table's segments are exactly the files `paths` (a rewrite or a check
    /// made on them is still current).
    pub fn has_exactly_segments(&self, paths: &[String]) -> bool {
        let now: BTreeSet<&String> = self.segments.iter().map(|s| &s.path).collect();
        now == paths.iter().collect()
    }

    /// Position of the column stored as `stored` (see [`ColumnDef::stored`]).
    pub fn stored_index(&self, stored: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.stored == stored)
    }

    /// Position of column `name`, or Redshift's error naming the table.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                sql_err!(
                    code::UNDEFINED_COLUMN,
                    "column \"{name}\" of relation \"{}\" does not exist",
                    self.name
                )
            })
    }

    /// Positions of the columns a statement lists (every column when it lists none).
    pub fn column_indices(
        &self,
        names: &[datafusion::sql::sqlparser::ast::Ident],
    ) -> Result<Vec<usize>> {
        if names.is_empty() {
            return Ok((0..self.columns.len()).collect());
        }
        names
            .iter()
            .map(|n| self.column_index(&crate::sql::names::ident_name(n)))
            .collect()
    }

    /// Live rows (deleted rows excluded).
    pub fn rows(&self) -> u64 {
        self.segments.iter().map(SegmentRef::live_rows).sum()
    }

    /// Rows stored, including rows deleted but not yet vacuumed.
    pub fn stored_rows(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum()
    }

    /// How stale the statistics are, 0 (current) to 100 (missing or out of date), as
    /// `svv_table_info.stats_off` reports it.
    pub fn stats_off(&self) -> f64 {
        match &self.stats {
            None if self.rows() == 0 => 0.0,
            None => 100.0,
            Some(s) => {
                let pct = self.modified_rows as f64 * 100.0 / s.rows.max(1) as f64;
                (pct.min(100.0) * 100.0).round() / 100.0
            }
        }
    }

    /// Every file the table's current version references (segments and deletion vectors).
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().flat_map(|s| {
            std::iter::once(s.path.as_str()).chain(s.deletes.as_ref().map(|d| d.path.as_str()))
        })
    }

    /// Storage codec per column.
    pub fn codecs(&self) -> Vec<Codec> {
        self.columns
            .iter()
            .map(|c| codec_for(&c.encoding))
            .collect()
    }

    /// How rows are placed on slices, naming a DISTKEY by its stored name (stable across
    /// RENAME and DROP COLUMN). EVEN and AUTO place rows alike.
    pub fn placement(&self) -> String {
        match &self.dist {
            DistStyle::Auto | DistStyle::Even => "even".into(),
            DistStyle::All => "all".into(),
            DistStyle::Key(k) => format!("key:{}", self.columns[*k].stored),
        }
    }

    pub fn diststyle_name(&self) -> String {
        match &self.dist {
            DistStyle::Auto => "AUTO(EVEN)".into(),
            DistStyle::Even => "EVEN".into(),
            DistStyle::Key(i) => format!("KEY({})", self.columns[*i].name),
            DistStyle::All => "ALL".into(),
        }
    }
}

/// The segment codec that stores a Redshift encoding (lower-case name). LZO is served by
/// LZ4; every other encoding has its own codec.
pub fn codec_for(encoding: &str) -> Codec {
    match encoding {
        "raw" => Codec::Raw,
        "zstd" => Codec::Zstd,
        "az64" => Codec::Az64,
        "runlength" => Codec::RunLength,
        "bytedict" => Codec::ByteDict,
        "delta" => Codec::Delta,
        "delta32k" => Codec::Delta32k,
        "mostly8" => Codec::Mostly8,
        "mostly16" => Codec::Mostly16,
        "mostly32" => Codec::Mostly32,
        "text255" => Codec::Text255,
        "text32k" => Codec::Text32k,
        _ => Codec::Lz4,
    }
}

/// One output column of a view, as planned when the view was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewColumn {
    pub name: String,
    pub sql_type: SqlType,
}

/// `CREATE VIEW`: the stored query, planned again whenever a statement reads the view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub id: u64,
    pub schema: String,
    pub name: String,
    /// The query after AS, as SQL text.
    pub query: String,
    /// The column names the statement listed (`CREATE VIEW v (a, b) AS …`), if any.
    pub column_names: Vec<String>,
    /// The output columns when the view was created (empty for a late-binding view whose
    /// tables did not exist then).
    pub columns: Vec<ViewColumn>,
    /// `WITH NO SCHEMA BINDING`: names are resolved only when the view is read.
    pub late_binding: bool,
    /// Tables and views a normal view reads: they cannot be dropped without CASCADE.
    pub depends_on: Vec<u64>,
    pub owner: String,
}

impl ViewDef {
    /// The view's definition as `pg_views.definition` and `pg_get_viewdef` show it.
    pub fn definition(&self) -> String {
        let mut text = self.query.clone();
        if self.late_binding {
            text.push_str(" WITH NO SCHEMA BINDING");
        }
        text.push(';');
        text
    }
}

/// A PRIMARY KEY, UNIQUE or FOREIGN KEY constraint. As in Redshift they are informational:
/// recorded, shown to clients through the catalogs, never enforced (NOT NULL is a column
/// property and is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstraintDef {
    /// From the table id sequence, so it never repeats a relation's id: the OID of the
    /// constraint's index relation for PRIMARY KEY and UNIQUE.
    pub id: u64,
    /// The constrained table.
    pub table: u64,
    pub name: String,
    pub kind: ConstraintKind,
    /// The constrained columns by stored name (`ColumnDef::stored`), which RENAME COLUMN
    /// keeps.
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    /// REFERENCES `table` (`columns`, by stored name).
    ForeignKey {
        table: u64,
        columns: Vec<String>,
    },
}

impl ConstraintDef {
    /// `pg_constraint.contype`.
    pub fn contype(&self) -> &'static str {
        match self.kind {
            ConstraintKind::PrimaryKey => "p",
            ConstraintKind::Unique => "u",
            ConstraintKind::ForeignKey { .. } => "f",
        }
    }

    /// Whether the constraint has an index relation (PostgreSQL builds one for PRIMARY KEY
    /// and UNIQUE; clients find primary keys through `pg_index`).
    pub fn has_index(&self) -> bool {
        !matches!(self.kind, ConstraintKind::ForeignKey { .. })
    }

    /// Whether the constraint mentions relation `table`'s column stored as `stored`.
    pub(super) fn uses(&self, table: u64, stored: &str) -> bool {
        (self.table == table && self.columns.iter().any(|c| c == stored))
            || matches!(&self.kind, ConstraintKind::ForeignKey { table: t, columns }
                if *t == table && columns.iter().any(|c| c == stored))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    /// CREATEUSER: a superuser.
    pub superuser: bool,
    /// `md5(password || username)` in hex: what MD5 authentication needs.
    pub md5_hex: String,
    /// SCRAM-SHA-256 verifier (empty when the password was given as an MD5 hash, so only
    /// MD5 authentication can succeed).
    pub scram_salt: Vec<u8>,
    pub scram_iterations: u32,
    pub scram_stored_key: Vec<u8>,
    pub scram_server_key: Vec<u8>,
    /// CREATEDB.
    pub create_db: bool,
    /// `SYSLOG ACCESS UNRESTRICTED`: sees every user's rows in the system tables.
    pub syslog_unrestricted: bool,
    /// `PASSWORD DISABLE`: nobody logs in as this user.
    pub password_disabled: bool,
    /// `VALID UNTIL`: the password stops working at this instant (µs since the epoch).
    pub valid_until: Option<i64>,
    /// `CONNECTION LIMIT n` (None: UNLIMITED).
    pub connection_limit: Option<u32>,
    /// `SESSION TIMEOUT n`, in seconds.
    pub session_timeout: Option<u32>,
    /// `ALTER USER … SET name TO value`: this user's session defaults.
    pub settings: BTreeMap<String, String>,
}

/// `CREATE GROUP`: a named set of users that privileges can be granted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDef {
    pub name: String,
    pub members: BTreeSet<String>,
}

/// One privilege of GRANT and REVOKE: the object privileges (on tables, views, columns,
/// schemas and the database), then Redshift's system privileges, which are granted to
/// roles only (`GRANT CREATE USER, VACUUM TO ROLE r`). New privileges go at the end: the
/// position is the bit stored in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Drop,
    References,
    Truncate,
    Alter,
    Create,
    Usage,
    Temp,
    CreateUser,
    DropUser,
    AlterUser,
    CreateRole,
    DropRole,
    CreateSchema,
    DropSchema,
    AlterDefaultPrivileges,
    CreateTable,
    DropTable,
    AlterTable,
    CreateView,
    DropView,
    CreateFunction,
    CreateExternalFunction,
    DropFunction,
    CreateProcedure,
    DropProcedure,
    CreateModel,
    DropModel,
    CreateDatashare,
    AlterDatashare,
    DropDatashare,
    CreateLibrary,
    DropLibrary,
    Analyze,
    Cancel,
    TruncateTable,
    Vacuum,
    IgnoreRls,
    ExplainRls,
    ExplainMasking,
    AccessSystemTable,
    AccessCatalog,
}

impl Privilege {
    pub const ALL: [Privilege; 45] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Drop,
        Privilege::References,
        Privilege::Truncate,
        Privilege::Alter,
        Privilege::Create,
        Privilege::Usage,
        Privilege::Temp,
        Privilege::CreateUser,
        Privilege::DropUser,
        Privilege::AlterUser,
        Privilege::CreateRole,
        Privilege::DropRole,
        Privilege::CreateSchema,
        Privilege::DropSchema,
        Privilege::AlterDefaultPrivileges,
        Privilege::CreateTable,
        Privilege::DropTable,
        Privilege::AlterTable,
        Privilege::CreateView,
        Privilege::DropView,
        Privilege::CreateFunction,
        Privilege::CreateExternalFunction,
        Privilege::DropFunction,
        Privilege::CreateProcedure,
        Privilege::DropProcedure,
        Privilege::CreateModel,
        Privilege::DropModel,
        Privilege::CreateDatashare,
        Privilege::AlterDatashare,
        Privilege::DropDatashare,
        Privilege::CreateLibrary,
        Privilege::DropLibrary,
        Privilege::Analyze,
        Privilege::Cancel,
        Privilege::TruncateTable,
        Privilege::Vacuum,
        Privilege::IgnoreRls,
        Privilege::ExplainRls,
        Privilege::ExplainMasking,
        Privilege::AccessSystemTable,
        Privilege::AccessCatalog,
    ];

    /// What applies to a table or view (`ALL` on one), in PostgreSQL's aclitem letter order.
    pub const ON_RELATIONS: &[Privilege] = &[
        Privilege::Insert,
        Privilege::Select,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Drop,
        Privilege::References,
        Privilege::Truncate,
        Privilege::Alter,
    ];

    /// What applies to one column (`GRANT SELECT (c)`), in aclitem letter order.
    pub const ON_COLUMNS: &[Privilege] = &[Privilege::Select, Privilege::Update];

    /// The system privileges, in the order `svv_system_privileges` lists them.
    pub fn system() -> impl Iterator<Item = Privilege> {
        Privilege::ALL.into_iter().filter(|p| p.is_system())
    }

    pub fn is_system(self) -> bool {
        self >= Privilege::CreateUser
    }

    fn bit(self) -> u64 {
        1 << (self as u64)
    }

    /// The keyword, as GRANT spells it.
    pub fn keyword(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Drop => "DROP",
            Privilege::References => "REFERENCES",
            Privilege::Truncate => "TRUNCATE",
            Privilege::Alter => "ALTER",
            Privilege::Create => "CREATE",
            Privilege::Usage => "USAGE",
            Privilege::Temp => "TEMP",
            Privilege::CreateUser => "CREATE USER",
            Privilege::DropUser => "DROP USER",
            Privilege::AlterUser => "ALTER USER",
            Privilege::CreateRole => "CREATE ROLE",
            Privilege::DropRole => "DROP ROLE",
            Privilege::CreateSchema => "CREATE SCHEMA",
            Privilege::DropSchema => "DROP SCHEMA",
            Privilege::AlterDefaultPrivileges => "ALTER DEFAULT PRIVILEGES",
            Privilege::CreateTable => "CREATE TABLE",
            Privilege::DropTable => "DROP TABLE",
            Privilege::AlterTable => "ALTER TABLE",
            Privilege::CreateView => "CREATE OR REPLACE VIEW",
            Privilege::DropView => "DROP VIEW",
            Privilege::CreateFunction => "CREATE OR REPLACE FUNCTION",
            Privilege::CreateExternalFunction => "CREATE OR REPLACE EXTERNAL FUNCTION",
            Privilege::DropFunction => "DROP FUNCTION",
            Privilege::CreateProcedure => "CREATE OR REPLACE PROCEDURE",
            Privilege::DropProcedure => "DROP PROCEDURE",
            Privilege::CreateModel => "CREATE MODEL",
            Privilege::DropModel => "DROP MODEL",
            Privilege::CreateDatashare => "CREATE DATASHARE",
            Privilege::AlterDatashare => "ALTER DATASHARE",
            Privilege::DropDatashare => "DROP DATASHARE",
            Privilege::CreateLibrary => "CREATE LIBRARY",
            Privilege::DropLibrary => "DROP LIBRARY",
            Privilege::Analyze => "ANALYZE",
            Privilege::Cancel => "CANCEL",
            Privilege::TruncateTable => "TRUNCATE TABLE",
            Privilege::Vacuum => "VACUUM",
            Privilege::IgnoreRls => "IGNORE RLS",
            Privilege::ExplainRls => "EXPLAIN RLS",
            Privilege::ExplainMasking => "EXPLAIN MASKING",
            Privilege::AccessSystemTable => "ACCESS SYSTEM TABLE",
            Privilege::AccessCatalog => "ACCESS CATALOG",
        }
    }

    /// The letter of PostgreSQL's aclitem text (`r` SELECT, `a` INSERT, …); Redshift's
    /// own letters for DROP (`D`), TRUNCATE (`t`) and ALTER (`A`). System privileges
    /// never appear in an aclitem.
    pub fn acl_letter(self) -> char {
        match self {
            Privilege::Select => 'r',
            Privilege::Insert => 'a',
            Privilege::Update => 'w',
            Privilege::Delete => 'd',
            Privilege::Drop => 'D',
            Privilege::References => 'x',
            Privilege::Truncate => 't',
            Privilege::Alter => 'A',
            Privilege::Create => 'C',
            Privilege::Usage => 'U',
            Privilege::Temp => 'T',
            _ => '?',
        }
    }
}

/// A set of privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Privileges(u64);

impl Privileges {
    pub fn of(privileges: &[Privilege]) -> Self {
        Self(privileges.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn contains(self, p: Privilege) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn intersect(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Privilege> {
        Privilege::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

/// What a privilege is held on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Securable {
    /// The database (`dev`).
    Database,
    Schema(String),
    /// A table or view, by id.
    Relation(u64),
    /// The cluster, for system privileges.
    System,
    /// One column of a table or view: the relation's id and the column's stored name
    /// (which RENAME COLUMN keeps). Only SELECT, UPDATE and REFERENCES apply.
    Column(u64, String),
}

impl Securable {
    /// Whether this is relation `id` or one of its columns.
    pub fn is_of_relation(&self, id: u64) -> bool {
        matches!(self, Securable::Relation(r) | Securable::Column(r, _) if *r == id)
    }
}

/// Who a privilege is granted to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grantee {
    Public,
    User(String),
    Group(String),
    Role(String),
}

/// `CREATE ROLE`: a named set of privileges, granted to users and to other roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: String,
    /// Who created it.
    pub owner: String,
    /// Users the role is granted to, and whether each may grant it on (WITH ADMIN OPTION).
    pub users: BTreeMap<String, bool>,
    /// Roles this role is granted to: their members hold it too.
    pub roles: BTreeSet<String>,
}

/// The privileges one grantee holds on one object, and which of them it may grant on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub privileges: Privileges,
    /// `WITH GRANT OPTION`: a subset of `privileges`.
    pub grant_option: Privileges,
    /// Who granted them (last).
    pub grantor: String,
}

/// What `ALTER DEFAULT PRIVILEGES` applies to: the objects a user will create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DefaultObjects {
    Tables,
    Functions,
    Procedures,
}

impl DefaultObjects {
    /// `pg_default_acl.defaclobjtype`.
    pub fn objtype(self) -> char {
        match self {
            DefaultObjects::Tables => 'r',
            DefaultObjects::Functions => 'f',
            DefaultObjects::Procedures => 'p',
        }
    }

    /// As `svv_default_privileges.object_type` names it.
    pub fn name(self) -> &'static str {
        match self {
            DefaultObjects::Tables => "RELATION",
            DefaultObjects::Functions => "FUNCTION",
            DefaultObjects::Procedures => "PROCEDURE",
        }
    }
}

/// The key of one default-privilege entry: objects `owner` creates (in `schema`, or in
/// any schema when None), of one kind, get the entry's grant for `grantee`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DefaultAclKey {
    pub owner: String,
    pub schema: Option<String>,
    pub objects: DefaultObjects,
    pub grantee: Grantee,
}
