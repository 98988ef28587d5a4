//! The leader's durable catalog: schemas, tables (with their distribution, sort key,
//! encodings and the list of committed segments, i.e. the table version), users. It lives
//! in one redb file; every change is one redb write transaction, so a commit is atomic and
//! survives a crash. Readers take an immutable snapshot ([`CatalogState`]) and keep it for
//! the whole statement.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use basalt_storage::segment::Codec;
use basalt_worker::protocol::{DeleteRef, SegmentRef, StoredColumn};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{LeaderError, Result, code};
use crate::sql::SortKind;
use crate::sql::types::SqlType;
use crate::sql_err;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const TABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("tables");
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Views, by id (ids come from the same sequence as tables': a view's id is its OID).
/// Catalogs written before views existed simply lack this table and the next one, so
/// adding them changed no record layout and needed no format upgrade.
const VIEWS: TableDefinition<u64, &[u8]> = TableDefinition::new("views");
/// COMMENT ON texts, by (relation id, column number or 0 for the relation itself).
const COMMENTS: TableDefinition<(u64, u32), &str> = TableDefinition::new("comments");
/// PRIMARY KEY, UNIQUE and FOREIGN KEY constraints, by constraint id (added like views:
/// older catalogs lack the table, no record layout changed).
const CONSTRAINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("constraints");
/// Version of the catalog's own record layout. Version 2 added deletion vectors to
/// segments and ANALYZE statistics to tables; version 3 the name each column is stored
/// under, its value for segments written before it was added, and the stored names of
/// dropped columns. Older catalogs are upgraded on open.
const CATALOG_FORMAT: u16 = 3;

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
    fn uses(&self, table: u64, stored: &str) -> bool {
        (self.table == table && self.columns.iter().any(|c| c == stored))
            || matches!(&self.kind, ConstraintKind::ForeignKey { table: t, columns }
                if *t == table && columns.iter().any(|c| c == stored))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    pub superuser: bool,
    /// `md5(password || username)` in hex: what MD5 authentication needs.
    pub md5_hex: String,
    /// SCRAM-SHA-256 verifier.
    pub scram_salt: Vec<u8>,
    pub scram_iterations: u32,
    pub scram_stored_key: Vec<u8>,
    pub scram_server_key: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u16,
    version: u64,
    next_table_id: u64,
    slice_count: u32,
    schemas: BTreeSet<String>,
}

/// An immutable view of the catalog at one version.
#[derive(Debug, Clone)]
pub struct CatalogState {
    pub version: u64,
    pub next_table_id: u64,
    pub slice_count: u32,
    pub schemas: BTreeSet<String>,
    pub tables: BTreeMap<u64, Arc<TableDef>>,
    pub users: BTreeMap<String, Arc<UserDef>>,
    pub views: BTreeMap<u64, Arc<ViewDef>>,
    /// COMMENT ON texts by (relation id, column number; 0 for the relation).
    pub comments: BTreeMap<(u64, u32), String>,
    pub constraints: BTreeMap<u64, Arc<ConstraintDef>>,
}

/// A table or a view, as a name in a statement can denote either.
#[derive(Debug, Clone)]
pub enum Relation {
    Table(Arc<TableDef>),
    View(Arc<ViewDef>),
}

impl Relation {
    pub fn id(&self) -> u64 {
        match self {
            Relation::Table(t) => t.id,
            Relation::View(v) => v.id,
        }
    }
}

impl CatalogState {
    pub fn view(&self, schema: &str, name: &str) -> Option<&Arc<ViewDef>> {
        self.views
            .values()
            .find(|v| v.schema == schema && v.name == name)
    }

    /// The table or view called `schema.name`.
    pub fn relation(&self, schema: &str, name: &str) -> Option<Relation> {
        self.table(schema, name)
            .map(|t| Relation::Table(t.clone()))
            .or_else(|| self.view(schema, name).map(|v| Relation::View(v.clone())))
    }

    pub fn views_in(&self, schema: &str) -> impl Iterator<Item = &Arc<ViewDef>> {
        self.views.values().filter(move |v| v.schema == schema)
    }

    /// Normal views that read relation `id`, directly or through other views, innermost
    /// first (the order in which CASCADE drops them).
    pub fn dependent_views(&self, id: u64) -> Vec<Arc<ViewDef>> {
        let mut out: Vec<Arc<ViewDef>> = vec![];
        let mut frontier = vec![id];
        while let Some(id) = frontier.pop() {
            for v in self.views.values() {
                if v.depends_on.contains(&id) && !out.iter().any(|o| o.id == v.id) {
                    out.push(v.clone());
                    frontier.push(v.id);
                }
            }
        }
        out
    }

    /// The constraints on table `id`, primary key first, then by name.
    pub fn constraints_of(&self, id: u64) -> Vec<&Arc<ConstraintDef>> {
        let mut out: Vec<&Arc<ConstraintDef>> = self
            .constraints
            .values()
            .filter(|c| c.table == id)
            .collect();
        out.sort_by_key(|c| (c.kind != ConstraintKind::PrimaryKey, c.name.clone()));
        out
    }

    /// Record constraint `c`, checking what PostgreSQL checks of a declaration (Redshift
    /// checks no data: the constraint is informational).
    fn add_constraint(&mut self, c: &ConstraintDef) -> Result<()> {
        let t = self
            .tables
            .get(&c.table)
            .ok_or_else(serialization_conflict)?;
        let has = |t: &TableDef, cols: &[String]| {
            cols.iter()
                .all(|s| t.columns.iter().any(|col| &col.stored == s))
        };
        if !has(t, &c.columns) {
            return Err(serialization_conflict());
        }
        if let ConstraintKind::ForeignKey { table, columns } = &c.kind {
            let r = self.tables.get(table).ok_or_else(serialization_conflict)?;
            if !has(r, columns) {
                return Err(serialization_conflict());
            }
        }
        let mine = self.constraints_of(c.table);
        if mine.iter().any(|o| o.name == c.name) {
            return Err(sql_err!(
                code::DUPLICATE_OBJECT,
                "constraint \"{}\" for relation \"{}\" already exists",
                c.name,
                t.name
            ));
        }
        if c.kind == ConstraintKind::PrimaryKey
            && mine.iter().any(|o| o.kind == ConstraintKind::PrimaryKey)
        {
            return Err(sql_err!(
                code::INVALID_TABLE_DEFINITION,
                "multiple primary keys for table \"{}\" are not allowed",
                t.name
            ));
        }
        self.constraints.insert(c.id, Arc::new(c.clone()));
        Ok(())
    }

    /// FOREIGN KEY constraints of *other* tables that reference table `id` (only
    /// `column`, by stored name, when given): what keeps it from being dropped.
    pub fn referencing(&self, id: u64, column: Option<&str>) -> Vec<&Arc<ConstraintDef>> {
        self.constraints
            .values()
            .filter(|c| c.table != id)
            .filter(|c| match (&c.kind, column) {
                (ConstraintKind::ForeignKey { table, .. }, None) => *table == id,
                (ConstraintKind::ForeignKey { .. }, Some(col)) => c.uses(id, col),
                _ => false,
            })
            .collect()
    }

    /// PostgreSQL's error for dropping `what` while the constraints `by` depend on it.
    fn constraint_dependents_error(&self, what: &str, by: &[&Arc<ConstraintDef>]) -> LeaderError {
        let detail: Vec<String> = by
            .iter()
            .map(|c| {
                let on = self.tables.get(&c.table).map_or("", |t| t.name.as_str());
                format!("constraint {} on table {on} depends on {what}", c.name)
            })
            .collect();
        sql_err!(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            "cannot drop {what} because other objects depend on it{}{}{}Use DROP ... CASCADE to drop the dependent objects too.",
            code::DETAIL_SEPARATOR,
            detail.join("\n"),
            code::HINT_SEPARATOR
        )
    }

    fn check_no_dependents(&self, id: u64, kind: &str, name: &str) -> Result<()> {
        if self.dependent_views(id).is_empty() {
            return Ok(());
        }
        Err(sql_err!(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            "cannot drop {kind} {name} because other objects depend on it{}Use DROP ... CASCADE to drop the dependent objects too.",
            code::HINT_SEPARATOR
        ))
    }

    fn check_name_free(&self, schema: &str, name: &str) -> Result<()> {
        if self.relation(schema, name).is_some() {
            return Err(sql_err!(
                code::DUPLICATE_TABLE,
                "relation \"{name}\" already exists"
            ));
        }
        Ok(())
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Arc<TableDef>> {
        self.tables
            .values()
            .find(|t| t.schema == schema && t.name == name)
    }

    /// The table a statement names, or Redshift's "does not exist" error.
    pub fn named_table(
        &self,
        name: &datafusion::sql::sqlparser::ast::ObjectName,
    ) -> Result<Arc<TableDef>> {
        let (schema, table) = crate::sql::names::split_name(name)?;
        self.table(&schema, &table)
            .cloned()
            .ok_or_else(|| sql_err!(code::UNDEFINED_TABLE, "relation \"{table}\" does not exist"))
    }

    pub fn tables_in(&self, schema: &str) -> impl Iterator<Item = &Arc<TableDef>> {
        self.tables.values().filter(move |t| t.schema == schema)
    }

    /// Apply one change; fails without modifying `self` on conflict.
    pub fn apply(&mut self, op: &CatalogOp) -> Result<()> {
        match op {
            CatalogOp::CreateSchema(s) => {
                if !self.schemas.insert(s.clone()) {
                    return Err(sql_err!(
                        code::DUPLICATE_SCHEMA,
                        "Schema \"{s}\" already exists"
                    ));
                }
            }
            CatalogOp::DropSchema(s) => {
                if self.tables_in(s).next().is_some() || self.views_in(s).next().is_some() {
                    return Err(sql_err!(
                        "2BP01",
                        "cannot drop schema {s} because other objects depend on it"
                    ));
                }
                if !self.schemas.remove(s) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "Schema \"{s}\" does not exist"
                    ));
                }
            }
            CatalogOp::CreateTable(t) => {
                if !self.schemas.contains(&t.schema) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "schema \"{}\" does not exist",
                        t.schema
                    ));
                }
                self.check_name_free(&t.schema, &t.name)?;
                self.tables.insert(t.id, Arc::new(t.clone()));
            }
            CatalogOp::DropTable(id) => {
                let name = self
                    .tables
                    .get(id)
                    .ok_or_else(serialization_conflict)?
                    .name
                    .clone();
                self.check_no_dependents(*id, "table", &name)?;
                let by = self.referencing(*id, None);
                if !by.is_empty() {
                    return Err(self.constraint_dependents_error(&format!("table {name}"), &by));
                }
                self.tables.remove(id);
                self.comments.retain(|(rel, _), _| rel != id);
                self.constraints.retain(|_, c| c.table != *id);
            }
            CatalogOp::CreateView { def, replace } => {
                if !self.schemas.contains(&def.schema) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "schema \"{}\" does not exist",
                        def.schema
                    ));
                }
                let mut def = def.clone();
                match self.relation(&def.schema, &def.name) {
                    // CREATE OR REPLACE keeps the view's OID (and so its comments).
                    Some(Relation::View(old)) if *replace => def.id = old.id,
                    Some(Relation::Table(_)) if *replace => {
                        return Err(sql_err!(
                            code::WRONG_OBJECT_TYPE,
                            "\"{}\" is not a view",
                            def.name
                        ));
                    }
                    Some(_) => self.check_name_free(&def.schema, &def.name)?,
                    None => {}
                }
                if def.depends_on.contains(&def.id) {
                    return Err(sql_err!(
                        code::INVALID_OBJECT_DEFINITION,
                        "infinite recursion detected in rules for relation \"{}\"",
                        def.name
                    ));
                }
                self.views.insert(def.id, Arc::new(def));
            }
            CatalogOp::DropView(id) => {
                let name = self
                    .views
                    .get(id)
                    .ok_or_else(serialization_conflict)?
                    .name
                    .clone();
                self.check_no_dependents(*id, "view", &name)?;
                self.views.remove(id);
                self.comments.retain(|(rel, _), _| rel != id);
            }
            CatalogOp::AddConstraint(c) => self.add_constraint(c)?,
            CatalogOp::DropConstraint { table_id, name } => {
                let id = self
                    .constraints
                    .values()
                    .find(|c| c.table == *table_id && c.name == *name)
                    .map(|c| c.id)
                    .ok_or_else(serialization_conflict)?;
                self.constraints.remove(&id);
            }
            CatalogOp::SetComment {
                relation,
                column,
                text,
            } => {
                if !self.tables.contains_key(relation) && !self.views.contains_key(relation) {
                    return Err(serialization_conflict());
                }
                match text {
                    Some(t) => {
                        self.comments.insert((*relation, *column), t.clone());
                    }
                    None => {
                        self.comments.remove(&(*relation, *column));
                    }
                }
            }
            CatalogOp::AddSegments {
                table_id,
                segments,
                placement,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if t.placement() != *placement {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                // The first segment written to an empty slice is its sorted region; later
                // ones form the unsorted region until VACUUM merges them in.
                for seg in segments {
                    let mut seg = seg.clone();
                    seg.sorted_region = !t.segments.iter().any(|s| s.slice == seg.slice);
                    t.segments.push(seg);
                }
                t.modified_rows += segments.iter().map(|s| s.rows).sum::<u64>();
            }
            CatalogOp::SetDeletes {
                table_id,
                segment,
                base,
                deletes,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                // The segment must still be there (not vacuumed away) with the deletion
                // vector this one was built on (no concurrent DELETE), or rows would come
                // back or go missing.
                let seg = t
                    .segments
                    .iter()
                    .position(|s| s.path == *segment)
                    .ok_or_else(serialization_conflict)?;
                if t.segments[seg].deletes.as_ref().map(|d| &d.path) != base.as_ref() {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                let before = t.segments[seg].live_rows();
                t.segments[seg].deletes = Some(deletes.clone());
                t.modified_rows += before - t.segments[seg].live_rows();
            }
            CatalogOp::ReplaceSegments { table_id, old, new } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                // Every replaced segment must be unchanged since it was read.
                if !old.iter().all(|o| t.segments.contains(o)) {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                t.segments.retain(|s| !old.contains(s));
                // The rewritten (sorted) segments go first: each slice's first segment is
                // its sorted region.
                let mut segments = new.clone();
                segments.append(&mut t.segments);
                t.segments = segments;
            }
            CatalogOp::RenameTable { table_id, name } => {
                // `ALTER TABLE … RENAME TO` renames views too (dbt renames every relation so).
                if let Some(v) = self.views.get(table_id) {
                    self.check_name_free(&v.schema.clone(), name)?;
                    let v = self.views.get_mut(table_id).expect("just found");
                    Arc::make_mut(v).name = name.clone();
                    return Ok(());
                }
                let schema = self
                    .tables
                    .get(table_id)
                    .ok_or_else(serialization_conflict)?
                    .schema
                    .clone();
                self.check_name_free(&schema, name)?;
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                Arc::make_mut(t).name = name.clone();
            }
            CatalogOp::Truncate(table_id) => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                t.modified_rows += t.rows();
                t.segments.clear();
            }
            CatalogOp::SetEncoding {
                table_id,
                column,
                encoding,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                if let Some(c) = t.columns.get_mut(*column) {
                    c.encoding = encoding.clone();
                }
                t.encode_auto = false;
            }
            CatalogOp::SetStats { table_id, stats } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                t.stats = Some(stats.clone());
                t.modified_rows = 0;
            }
            CatalogOp::SetIdentityNext {
                table_id,
                column,
                next,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                if let Some(v) = t.identity_next.get_mut(*column) {
                    *v = (*v).max(*next);
                }
            }
            CatalogOp::PutUser(u) => {
                self.users.insert(u.name.clone(), Arc::new(u.clone()));
            }
            CatalogOp::AddColumn { table_id, column } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if t.columns.iter().any(|c| c.name == column.name) {
                    return Err(column_exists(&column.name, &t.name));
                }
                if t.columns.iter().any(|c| c.stored == column.stored)
                    || t.retired.contains(&column.stored)
                {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                t.columns.push(column.clone());
                t.identity_next.push(0);
            }
            CatalogOp::DropColumn { table_id, stored } => {
                let by = self.referencing(*table_id, Some(stored));
                if !by.is_empty() {
                    let t = self
                        .tables
                        .get(table_id)
                        .ok_or_else(serialization_conflict)?;
                    let name = t
                        .stored_index(stored)
                        .map_or("", |i| t.columns[i].name.as_str());
                    return Err(self.constraint_dependents_error(
                        &format!("column {name} of table {}", t.name),
                        &by,
                    ));
                }
                // Its own constraints that name the column go with it, as in PostgreSQL.
                self.constraints
                    .retain(|_, c| !(c.table == *table_id && c.uses(*table_id, stored)));
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let i = t.stored_index(stored).ok_or_else(serialization_conflict)?;
                // Checked when the statement ran; a concurrent change of the keys or
                // columns makes the drop stale.
                if t.dist == DistStyle::Key(i) || t.sort_key.contains(&i) || t.columns.len() == 1 {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                let dropped = t.columns.remove(i);
                t.identity_next.remove(i);
                if let DistStyle::Key(k) = &mut t.dist
                    && *k > i
                {
                    *k -= 1;
                }
                for k in &mut t.sort_key {
                    if *k > i {
                        *k -= 1;
                    }
                }
                if let Some(stats) = &mut t.stats {
                    stats.columns.retain(|c| c.name != dropped.name);
                }
                t.retired.push(dropped.stored);
            }
            CatalogOp::SetColumnType {
                table_id,
                stored,
                sql_type,
                based_on,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if based_on
                    .as_ref()
                    .is_some_and(|p| !t.has_exactly_segments(p))
                {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                let c = t
                    .columns
                    .iter_mut()
                    .find(|c| &c.stored == stored)
                    .ok_or_else(serialization_conflict)?;
                c.sql_type = sql_type.clone();
            }
            CatalogOp::RenameColumn {
                table_id,
                stored,
                name,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if t.columns.iter().any(|c| &c.name == name) {
                    return Err(column_exists(name, &t.name));
                }
                let i = t.stored_index(stored).ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                let old = std::mem::replace(&mut t.columns[i].name, name.clone());
                if let Some(stats) = &mut t.stats {
                    for c in stats.columns.iter_mut().filter(|c| c.name == old) {
                        c.name = name.clone();
                    }
                }
            }
            CatalogOp::SetLayout {
                table_id,
                dist,
                sort_kind,
                sort_key,
                encodings,
                encode_auto,
                based_on,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if encodings.len() != t.columns.len() || !t.has_exactly_segments(based_on) {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                t.dist = dist.clone();
                t.sort_kind = *sort_kind;
                t.sort_key = sort_key.clone();
                for (c, e) in t.columns.iter_mut().zip(encodings) {
                    c.encoding = e.clone();
                }
                t.encode_auto = *encode_auto;
            }
        }
        Ok(())
    }
}

fn column_exists(column: &str, table: &str) -> LeaderError {
    sql_err!(
        code::DUPLICATE_COLUMN,
        "column \"{column}\" of relation \"{table}\" already exists"
    )
}

fn serialization_conflict() -> LeaderError {
    sql_err!(
        code::SERIALIZATION_FAILURE,
        "1023 Serializable isolation violation on table: the table was changed or dropped by a concurrent transaction"
    )
}

/// One catalog change. A transaction is a list of these, replayed on the newest state at
/// commit so that concurrent appends to the same table both succeed.
#[derive(Debug, Clone)]
pub enum CatalogOp {
    CreateSchema(String),
    DropSchema(String),
    CreateTable(TableDef),
    DropTable(u64),
    AddSegments {
        table_id: u64,
        segments: Vec<SegmentRef>,
        /// The table's [`TableDef::placement`] the rows were routed by: segments routed by
        /// a distribution an ALTER has since replaced would break co-located joins.
        placement: String,
    },
    /// Give `segment` (a path) the deletion vector `deletes`, which was built on `base`.
    SetDeletes {
        table_id: u64,
        segment: String,
        base: Option<String>,
        deletes: DeleteRef,
    },
    /// VACUUM: `new` segments hold exactly the live rows of `old`.
    ReplaceSegments {
        table_id: u64,
        old: Vec<SegmentRef>,
        new: Vec<SegmentRef>,
    },
    Truncate(u64),
    /// `ALTER TABLE … ALTER COLUMN … ENCODE`: the column's new encoding.
    SetEncoding {
        table_id: u64,
        column: usize,
        encoding: String,
    },
    SetStats {
        table_id: u64,
        stats: TableStats,
    },
    SetIdentityNext {
        table_id: u64,
        column: usize,
        next: i64,
    },
    PutUser(UserDef),
    /// `CREATE [OR REPLACE] VIEW`.
    CreateView {
        def: ViewDef,
        replace: bool,
    },
    DropView(u64),
    /// `COMMENT ON`: the text of a relation's (column 0) or a column's comment; None
    /// removes it.
    SetComment {
        relation: u64,
        column: u32,
        text: Option<String>,
    },
    /// `PRIMARY KEY`, `UNIQUE` or `FOREIGN KEY`, from CREATE TABLE or ALTER TABLE ADD.
    AddConstraint(ConstraintDef),
    /// `ALTER TABLE … DROP CONSTRAINT name` (and FOREIGN KEYs a CASCADE takes).
    DropConstraint {
        table_id: u64,
        name: String,
    },
    /// `ALTER TABLE … RENAME TO`: the table's (or view's) new name, in its schema.
    RenameTable {
        table_id: u64,
        name: String,
    },
    /// `ALTER TABLE … ADD COLUMN`: a new last column; existing segments lack it.
    AddColumn {
        table_id: u64,
        column: ColumnDef,
    },
    /// `ALTER TABLE … DROP COLUMN`: the column stored as `stored` goes (its data stays in
    /// older segments, unread).
    DropColumn {
        table_id: u64,
        stored: String,
    },
    /// `ALTER TABLE … RENAME COLUMN`: the column stored as `stored` is called `name`.
    RenameColumn {
        table_id: u64,
        stored: String,
        name: String,
    },
    /// `ALTER TABLE … ALTER COLUMN c TYPE varchar(n)`: the column's new length. A shrink
    /// was checked against the rows of the segments `based_on`, which must still be the
    /// table's (a row written meanwhile could be too long).
    SetColumnType {
        table_id: u64,
        stored: String,
        sql_type: SqlType,
        based_on: Option<Vec<String>>,
    },
    /// `ALTER DISTSTYLE / DISTKEY / SORTKEY / ENCODE AUTO`: the table's new layout,
    /// committed with the segments rewritten in it.
    SetLayout {
        table_id: u64,
        dist: DistStyle,
        sort_kind: SortKind,
        sort_key: Vec<usize>,
        encodings: Vec<String>,
        encode_auto: bool,
        /// Paths of the segments the rewrite read: the table must still have exactly
        /// these, or rows written meanwhile would keep the old layout.
        based_on: Vec<String>,
    },
}

impl CatalogOp {
    /// Files this change brings into a table version: if the change is never committed
    /// they belong to nothing and can be deleted.
    pub fn new_files(&self) -> Vec<String> {
        match self {
            CatalogOp::AddSegments { segments, .. } => {
                segments.iter().map(|s| s.path.clone()).collect()
            }
            CatalogOp::SetDeletes { deletes, .. } => vec![deletes.path.clone()],
            CatalogOp::ReplaceSegments { new, .. } => new.iter().map(|s| s.path.clone()).collect(),
            _ => vec![],
        }
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("version", &self.snapshot().version)
            .finish()
    }
}

pub struct Catalog {
    db: Database,
    current: RwLock<Arc<CatalogState>>,
    commit_lock: Mutex<()>,
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .expect("catalog records always serialize")
}

/// Write to `table` the records of `next` that are not (the same `Arc` as) those of `old`,
/// and remove those `next` no longer has: a commit writes only what it changed.
fn write_changes<T: Serialize>(
    table: &mut redb::Table<u64, &[u8]>,
    old: &BTreeMap<u64, Arc<T>>,
    next: &BTreeMap<u64, Arc<T>>,
) -> Result<()> {
    for (id, v) in next {
        if old.get(id).is_none_or(|o| !Arc::ptr_eq(o, v)) {
            table.insert(*id, enc(v.as_ref()).as_slice())?;
        }
    }
    for id in old.keys() {
        if !next.contains_key(id) {
            table.remove(*id)?;
        }
    }
    Ok(())
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| LeaderError::Catalog(format!("corrupt catalog record: {e}")))
}

impl Catalog {
    /// Open (or create) the catalog in `dir`. A new catalog gets `slice_count` slices and
    /// the `public` schema; an existing one keeps the slice count it was created with.
    pub fn open(dir: &Path, slice_count: u32) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("catalog.redb"))?;
        let w = db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            if meta.get("meta")?.is_none() {
                let m = Meta {
                    format: CATALOG_FORMAT,
                    version: 1,
                    next_table_id: 100_000,
                    slice_count,
                    schemas: ["public".to_string()].into_iter().collect(),
                };
                meta.insert("meta", enc(&m).as_slice())?;
            }
            w.open_table(TABLES)?;
            w.open_table(USERS)?;
            w.open_table(VIEWS)?;
            w.open_table(COMMENTS)?;
            w.open_table(CONSTRAINTS)?;
        }
        w.commit()?;
        let state = Self::load(&db)?;
        Self::upgrade(&db, &state)?;
        Ok(Self {
            db,
            current: RwLock::new(Arc::new(state)),
            commit_lock: Mutex::new(()),
        })
    }

    fn load(db: &Database) -> Result<CatalogState> {
        let r = db.begin_read()?;
        let meta_t = r.open_table(META)?;
        let meta: Meta = dec(meta_t
            .get("meta")?
            .ok_or_else(|| LeaderError::Catalog("missing meta record".into()))?
            .value())?;
        if meta.format > CATALOG_FORMAT {
            return Err(LeaderError::Catalog(format!(
                "catalog format {} is newer than this build supports ({CATALOG_FORMAT})",
                meta.format
            )));
        }
        let mut tables = BTreeMap::new();
        for entry in r.open_table(TABLES)?.iter()? {
            let (k, v) = entry?;
            let def = match meta.format {
                1 => dec::<v1::TableDef>(v.value())?.upgrade().upgrade(),
                2 => dec::<v2::TableDef>(v.value())?.upgrade(),
                _ => dec::<TableDef>(v.value())?,
            };
            tables.insert(k.value(), Arc::new(def));
        }
        let mut users = BTreeMap::new();
        for entry in r.open_table(USERS)?.iter()? {
            let (k, v) = entry?;
            users.insert(k.value().to_string(), Arc::new(dec::<UserDef>(v.value())?));
        }
        let mut views = BTreeMap::new();
        for entry in r.open_table(VIEWS)?.iter()? {
            let (k, v) = entry?;
            views.insert(k.value(), Arc::new(dec::<ViewDef>(v.value())?));
        }
        let mut comments = BTreeMap::new();
        for entry in r.open_table(COMMENTS)?.iter()? {
            let (k, v) = entry?;
            comments.insert(k.value(), v.value().to_string());
        }
        let mut constraints = BTreeMap::new();
        for entry in r.open_table(CONSTRAINTS)?.iter()? {
            let (k, v) = entry?;
            constraints.insert(k.value(), Arc::new(dec::<ConstraintDef>(v.value())?));
        }
        Ok(CatalogState {
            version: meta.version,
            next_table_id: meta.next_table_id,
            slice_count: meta.slice_count,
            schemas: meta.schemas,
            tables,
            users,
            views,
            comments,
            constraints,
        })
    }

    /// Rewrite an older catalog's records in the current layout (one write transaction,
    /// so a crash leaves either the old or the new catalog).
    fn upgrade(db: &Database, state: &CatalogState) -> Result<()> {
        let r = db.begin_read()?;
        let meta: Meta = dec(r
            .open_table(META)?
            .get("meta")?
            .ok_or_else(|| LeaderError::Catalog("missing meta record".into()))?
            .value())?;
        drop(r);
        if meta.format == CATALOG_FORMAT {
            return Ok(());
        }
        let w = db.begin_write()?;
        {
            let mut tables = w.open_table(TABLES)?;
            for (id, t) in &state.tables {
                tables.insert(*id, enc(t.as_ref()).as_slice())?;
            }
            let mut meta_t = w.open_table(META)?;
            let m = Meta {
                format: CATALOG_FORMAT,
                ..meta
            };
            meta_t.insert("meta", enc(&m).as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<CatalogState> {
        self.current.read().expect("catalog lock").clone()
    }

    /// Reserve a table id (ids are never reused, so files of dropped tables never mix).
    pub fn allocate_table_id(&self) -> Result<u64> {
        let mut id = 0;
        self.commit_with(|s| {
            id = s.next_table_id;
            s.next_table_id += 1;
            Ok(())
        })?;
        Ok(id)
    }

    /// Atomically apply `ops` to the newest state and make them durable.
    pub fn commit(&self, ops: &[CatalogOp]) -> Result<Arc<CatalogState>> {
        Ok(self.commit_diff(ops)?.1)
    }

    /// Like [`Self::commit`], returning the state the ops were applied to as well.
    pub fn commit_diff(&self, ops: &[CatalogOp]) -> Result<(Arc<CatalogState>, Arc<CatalogState>)> {
        self.commit_with(|s| ops.iter().try_for_each(|op| s.apply(op)))
    }

    fn commit_with(
        &self,
        f: impl FnOnce(&mut CatalogState) -> Result<()>,
    ) -> Result<(Arc<CatalogState>, Arc<CatalogState>)> {
        let _guard = self.commit_lock.lock().expect("commit lock");
        let old = self.snapshot();
        let mut next = (*old).clone();
        f(&mut next)?;
        next.version = old.version + 1;
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            let m = Meta {
                format: CATALOG_FORMAT,
                version: next.version,
                next_table_id: next.next_table_id,
                slice_count: next.slice_count,
                schemas: next.schemas.clone(),
            };
            meta.insert("meta", enc(&m).as_slice())?;
            write_changes(&mut w.open_table(TABLES)?, &old.tables, &next.tables)?;
            let mut users = w.open_table(USERS)?;
            for (name, u) in &next.users {
                if old.users.get(name).is_none_or(|o| !Arc::ptr_eq(o, u)) {
                    users.insert(name.as_str(), enc(u.as_ref()).as_slice())?;
                }
            }
            write_changes(&mut w.open_table(VIEWS)?, &old.views, &next.views)?;
            let mut comments = w.open_table(COMMENTS)?;
            for (key, text) in &next.comments {
                if old.comments.get(key) != Some(text) {
                    comments.insert(*key, text.as_str())?;
                }
            }
            for key in old.comments.keys() {
                if !next.comments.contains_key(key) {
                    comments.remove(*key)?;
                }
            }
            write_changes(
                &mut w.open_table(CONSTRAINTS)?,
                &old.constraints,
                &next.constraints,
            )?;
        }
        w.commit()?;
        let next = Arc::new(next);
        *self.current.write().expect("catalog lock") = next.clone();
        Ok((old, next))
    }
}

/// Catalog format 2 records, kept to read (and upgrade) catalogs written before format 3.
mod v2 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct ColumnDef {
        pub name: String,
        pub sql_type: SqlType,
        pub nullable: bool,
        pub default: Option<String>,
        pub identity: Option<Identity>,
        pub encoding: String,
    }

    #[derive(Serialize, Deserialize)]
    pub struct TableDef {
        pub id: u64,
        pub schema: String,
        pub name: String,
        pub columns: Vec<ColumnDef>,
        pub dist: DistStyle,
        pub sort_kind: SortKind,
        pub sort_key: Vec<usize>,
        pub backup: bool,
        pub encode_auto: bool,
        pub segments: Vec<SegmentRef>,
        pub identity_next: Vec<i64>,
        pub owner: String,
        pub stats: Option<TableStats>,
        pub modified_rows: u64,
    }

    impl TableDef {
        pub fn upgrade(self) -> super::TableDef {
            super::TableDef {
                id: self.id,
                schema: self.schema,
                name: self.name,
                columns: self
                    .columns
                    .into_iter()
                    .map(|c| super::ColumnDef {
                        // Format 2 segments store every column under its name, and
                        // columns were never renamed or added.
                        stored: c.name.clone(),
                        missing: None,
                        name: c.name,
                        sql_type: c.sql_type,
                        nullable: c.nullable,
                        default: c.default,
                        identity: c.identity,
                        encoding: c.encoding,
                    })
                    .collect(),
                dist: self.dist,
                sort_kind: self.sort_kind,
                sort_key: self.sort_key,
                backup: self.backup,
                encode_auto: self.encode_auto,
                segments: self.segments,
                identity_next: self.identity_next,
                owner: self.owner,
                stats: self.stats,
                modified_rows: self.modified_rows,
                retired: vec![],
            }
        }
    }
}

/// Catalog format 1 records, kept to read (and upgrade) catalogs written before format 2.
mod v1 {
    use super::v2::ColumnDef;
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct SegmentRef {
        pub slice: basalt_storage::layout::SliceId,
        pub path: String,
        pub rows: u64,
        pub bytes: u64,
    }

    #[derive(Serialize, Deserialize)]
    pub struct TableDef {
        pub id: u64,
        pub schema: String,
        pub name: String,
        pub columns: Vec<ColumnDef>,
        pub dist: DistStyle,
        pub sort_kind: SortKind,
        pub sort_key: Vec<usize>,
        pub backup: bool,
        pub encode_auto: bool,
        pub segments: Vec<SegmentRef>,
        pub identity_next: Vec<i64>,
        pub owner: String,
    }

    impl TableDef {
        pub fn upgrade(self) -> super::v2::TableDef {
            let mut seen = std::collections::HashSet::new();
            super::v2::TableDef {
                id: self.id,
                schema: self.schema,
                name: self.name,
                columns: self.columns,
                dist: self.dist,
                sort_kind: self.sort_kind,
                sort_key: self.sort_key,
                backup: self.backup,
                encode_auto: self.encode_auto,
                segments: self
                    .segments
                    .into_iter()
                    .map(|s| super::SegmentRef {
                        // Format 1 treated each slice's first segment as its sorted region.
                        sorted_region: seen.insert(s.slice),
                        slice: s.slice,
                        path: s.path,
                        rows: s.rows,
                        bytes: s.bytes,
                        deletes: None,
                    })
                    .collect(),
                identity_next: self.identity_next,
                owner: self.owner,
                stats: None,
                modified_rows: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(id: u64, name: &str) -> TableDef {
        TableDef {
            id,
            schema: "public".into(),
            name: name.into(),
            columns: vec![ColumnDef {
                name: "a".into(),
                sql_type: SqlType::Integer,
                nullable: true,
                default: None,
                identity: None,
                encoding: "az64".into(),
                stored: "a".into(),
                missing: None,
            }],
            dist: DistStyle::Even,
            sort_kind: SortKind::Compound,
            sort_key: vec![],
            backup: true,
            encode_auto: true,
            segments: vec![],
            identity_next: vec![0],
            owner: "admin".into(),
            stats: None,
            modified_rows: 0,
            retired: vec![],
        }
    }

    fn v2_column(name: &str) -> v2::ColumnDef {
        v2::ColumnDef {
            name: name.into(),
            sql_type: SqlType::Integer,
            nullable: true,
            default: None,
            identity: None,
            encoding: "az64".into(),
        }
    }

    /// A catalog file holding `table` as format `format` wrote it.
    fn write_old_catalog(dir: &Path, format: u16, table: &[u8]) {
        let db = Database::create(dir.join("catalog.redb")).unwrap();
        let w = db.begin_write().unwrap();
        {
            let meta = Meta {
                format,
                version: 7,
                next_table_id: 100_001,
                slice_count: 4,
                schemas: ["public".to_string()].into_iter().collect(),
            };
            w.open_table(META)
                .unwrap()
                .insert("meta", enc(&meta).as_slice())
                .unwrap();
            w.open_table(TABLES)
                .unwrap()
                .insert(100_000, table)
                .unwrap();
            w.open_table(USERS).unwrap();
        }
        w.commit().unwrap();
    }

    #[test]
    fn commits_survive_reopen_and_conflicts_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let id = c.allocate_table_id().unwrap();
            c.commit(&[CatalogOp::CreateTable(table(id, "t"))]).unwrap();
            let seg = SegmentRef {
                slice: basalt_storage::layout::SliceId::Slice(1),
                path: "tables/x".into(),
                rows: 10,
                bytes: 100,
                deletes: None,
                sorted_region: false,
            };
            c.commit(&[CatalogOp::AddSegments {
                table_id: id,
                segments: vec![seg],
                placement: "even".into(),
            }])
            .unwrap();
            let before = c.snapshot().version;
            let err = c
                .commit(&[
                    CatalogOp::CreateSchema("s2".into()),
                    CatalogOp::CreateTable(table(id + 1, "t")),
                ])
                .unwrap_err();
            assert_eq!(err.sqlstate().0, code::DUPLICATE_TABLE);
            assert_eq!(c.snapshot().version, before);
            assert!(!c.snapshot().schemas.contains("s2"));
        }
        let c = Catalog::open(dir.path(), 99).unwrap();
        let s = c.snapshot();
        assert_eq!(s.slice_count, 4);
        assert_eq!(s.table("public", "t").unwrap().rows(), 10);
    }

    #[test]
    fn views_and_comments_survive_reopen_and_views_keep_their_tables() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let t = c.allocate_table_id().unwrap();
            let v = c.allocate_table_id().unwrap();
            let view = ViewDef {
                id: v,
                schema: "public".into(),
                name: "v".into(),
                query: "SELECT a FROM t".into(),
                column_names: vec![],
                columns: vec![ViewColumn {
                    name: "a".into(),
                    sql_type: SqlType::Integer,
                }],
                late_binding: false,
                depends_on: vec![t],
                owner: "admin".into(),
            };
            c.commit(&[
                CatalogOp::CreateTable(table(t, "t")),
                CatalogOp::CreateView {
                    def: view,
                    replace: false,
                },
                CatalogOp::SetComment {
                    relation: v,
                    column: 1,
                    text: Some("the a".into()),
                },
            ])
            .unwrap();
            let err = c.commit(&[CatalogOp::DropTable(t)]).unwrap_err();
            assert_eq!(err.sqlstate().0, code::DEPENDENT_OBJECTS_STILL_EXIST);
            let err = c
                .commit(&[CatalogOp::CreateTable(table(t + 5, "v"))])
                .unwrap_err();
            assert_eq!(err.sqlstate().0, code::DUPLICATE_TABLE);
        }
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let v = s.view("public", "v").unwrap().clone();
            assert_eq!(v.definition(), "SELECT a FROM t;");
            assert_eq!(
                s.comments.get(&(v.id, 1)).map(String::as_str),
                Some("the a")
            );
            // Dropping the view first frees the table; the view's comments go with it.
            c.commit(&[
                CatalogOp::DropView(v.id),
                CatalogOp::DropTable(v.depends_on[0]),
            ])
            .unwrap();
        }
        let c = Catalog::open(dir.path(), 4).unwrap();
        assert!(c.snapshot().views.is_empty() && c.snapshot().comments.is_empty());
    }

    #[test]
    fn constraints_survive_reopen_and_go_with_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let (t, r) = {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let t = c.allocate_table_id().unwrap();
            let r = c.allocate_table_id().unwrap();
            let pk = c.allocate_table_id().unwrap();
            let fk = c.allocate_table_id().unwrap();
            let stored = table(t, "t").columns[0].stored.clone();
            c.commit(&[
                CatalogOp::CreateTable(table(t, "t")),
                CatalogOp::CreateTable(table(r, "r")),
                CatalogOp::AddConstraint(ConstraintDef {
                    id: pk,
                    table: t,
                    name: "t_pkey".into(),
                    kind: ConstraintKind::PrimaryKey,
                    columns: vec![stored.clone()],
                }),
                CatalogOp::AddConstraint(ConstraintDef {
                    id: fk,
                    table: r,
                    name: "r_fkey".into(),
                    kind: ConstraintKind::ForeignKey {
                        table: t,
                        columns: vec![stored.clone()],
                    },
                    columns: vec![stored],
                }),
            ])
            .unwrap();
            (t, r)
        };
        let c = Catalog::open(dir.path(), 4).unwrap();
        let s = c.snapshot();
        assert_eq!(
            s.constraints_of(t)
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["t_pkey"]
        );
        assert_eq!(s.referencing(t, None).len(), 1);
        // The referenced table cannot go while the foreign key stands.
        let err = c.commit(&[CatalogOp::DropTable(t)]).unwrap_err();
        assert_eq!(err.sqlstate().0, code::DEPENDENT_OBJECTS_STILL_EXIST);
        c.commit(&[CatalogOp::DropTable(r), CatalogOp::DropTable(t)])
            .unwrap();
        drop(c);
        let c = Catalog::open(dir.path(), 4).unwrap();
        assert!(c.snapshot().constraints.is_empty());
    }

    #[test]
    fn format_1_catalogs_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = v1::TableDef {
            id: 100_000,
            schema: "public".into(),
            name: "old".into(),
            columns: vec![v2_column("a")],
            dist: DistStyle::Even,
            sort_kind: SortKind::Compound,
            sort_key: vec![],
            backup: true,
            encode_auto: true,
            segments: vec![v1::SegmentRef {
                slice: basalt_storage::layout::SliceId::Slice(2),
                path: "tables/100000/slice-2/a.bseg".into(),
                rows: 42,
                bytes: 900,
            }],
            identity_next: vec![0],
            owner: "admin".into(),
        };
        write_old_catalog(dir.path(), 1, &enc(&old));
        for _ in 0..2 {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let t = s.table("public", "old").unwrap();
            assert_eq!((t.rows(), s.version), (42, 7));
            assert_eq!(t.segments[0].deletes, None);
            assert!(t.segments[0].sorted_region);
            assert_eq!(t.stats_off(), 100.0);
            assert_eq!(
                (t.columns[0].stored.as_str(), &t.columns[0].missing),
                ("a", &None)
            );
        }
    }

    #[test]
    fn format_2_catalogs_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = v2::TableDef {
            id: 100_000,
            schema: "public".into(),
            name: "old".into(),
            columns: vec![v2_column("a"), v2_column("b")],
            dist: DistStyle::Key(1),
            sort_kind: SortKind::Compound,
            sort_key: vec![0],
            backup: true,
            encode_auto: true,
            segments: vec![],
            identity_next: vec![0, 0],
            owner: "admin".into(),
            stats: None,
            modified_rows: 3,
        };
        write_old_catalog(dir.path(), 2, &enc(&old));
        for _ in 0..2 {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let t = s.table("public", "old").unwrap();
            let stored: Vec<&str> = t.columns.iter().map(|c| c.stored.as_str()).collect();
            assert_eq!(stored, ["a", "b"]);
            assert_eq!((t.dist.clone(), t.modified_rows), (DistStyle::Key(1), 3));
            assert!(t.retired.is_empty());
        }
    }

    #[test]
    fn columns_keep_their_stored_names_through_drop_rename_and_add() {
        let mut state = CatalogState {
            version: 1,
            next_table_id: 2,
            slice_count: 4,
            schemas: ["public".to_string()].into_iter().collect(),
            tables: BTreeMap::new(),
            users: BTreeMap::new(),
            views: BTreeMap::new(),
            comments: BTreeMap::new(),
            constraints: BTreeMap::new(),
        };
        let mut t = table(1, "t");
        let mut b = t.columns[0].clone();
        b.name = "b".into();
        b.stored = "b".into();
        t.columns.push(b);
        t.identity_next.push(0);
        t.dist = DistStyle::Key(1);
        state.apply(&CatalogOp::CreateTable(t)).unwrap();
        state
            .apply(&CatalogOp::DropColumn {
                table_id: 1,
                stored: "a".into(),
            })
            .unwrap();
        let t = state.tables[&1].clone();
        assert_eq!(
            (t.dist.clone(), t.retired.clone()),
            (DistStyle::Key(0), vec!["a".into()])
        );
        // A new column called "a" must not read the dropped column's data.
        let mut a = t.columns[0].clone();
        a.name = "a".into();
        a.stored = t.fresh_stored_name("a");
        assert_eq!(a.stored, "a#1");
        state
            .apply(&CatalogOp::AddColumn {
                table_id: 1,
                column: a.clone(),
            })
            .unwrap();
        let err = state
            .apply(&CatalogOp::AddColumn {
                table_id: 1,
                column: a,
            })
            .unwrap_err();
        assert_eq!(err.sqlstate().0, code::DUPLICATE_COLUMN);
        let err = state
            .apply(&CatalogOp::RenameColumn {
                table_id: 1,
                stored: "b".into(),
                name: "a".into(),
            })
            .unwrap_err();
        assert_eq!(err.sqlstate().0, code::DUPLICATE_COLUMN);
        state
            .apply(&CatalogOp::RenameColumn {
                table_id: 1,
                stored: "b".into(),
                name: "c".into(),
            })
            .unwrap();
        let t = &state.tables[&1];
        let names: Vec<(&str, &str)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.stored.as_str()))
            .collect();
        assert_eq!(names, [("c", "b"), ("a", "a#1")]);
        assert_eq!(t.fresh_stored_name("b"), "b#1");
    }
}
