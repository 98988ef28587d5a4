//! The PostgreSQL catalog that clients read: the `pg_catalog` relations (`pg_class`,
//! `pg_attribute`, `pg_type`, `pg_namespace`, … with Redshift's extra columns such as
//! `reldiststyle` and `attisdistkey`), PostgreSQL-shaped `information_schema` tables, the
//! catalog functions clients call (`format_type`, `pg_table_is_visible`, `current_schemas`,
//! `pg_get_expr`, the privilege checks, …) and the rewrite of the PostgreSQL-only syntax
//! their queries use (`::regclass`, `COLLATE`, `pg_catalog.`-qualified function names,
//! uncorrelatable scalar subqueries) into what DataFusion plans. Every relation is built
//! from the statement's catalog snapshot when a query names it, so catalog queries see the
//! same version as the rest of the statement; relation OIDs are the table ids, so they are
//! stable and match `stv_tbl_perm.id` and `svv_table_info.table_id`.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, ListArray,
    StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Schema, UInt32Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    self as sql, DataType as SqlDataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, ObjectName, ObjectNamePart, SelectItem, SetExpr, Statement, visit_expressions_mut,
};
use pgwire::api::Type;

use crate::catalog::{
    CatalogState, ColumnDef, ConstraintDef, ConstraintKind, DistStyle, TableDef, ViewDef,
};

use crate::error::code;
use crate::sql::SortKind;
use crate::sql::types::SqlType;
use crate::sql_err;

/// The database every session is connected to.
pub const DATABASE: &str = "dev";
const DATABASE_OID: u32 = 16_384;
const PG_CATALOG_OID: u32 = 11;
const PUBLIC_OID: u32 = 2200;
const INFORMATION_SCHEMA_OID: u32 = 13_000;
/// Redshift's internal superuser, owner of the system objects.
const RDSDB: (&str, u32) = ("rdsdb", 1);
const DEFAULT_COLLATION_OID: u32 = 100;
const UTF8_ENCODING: i32 = 6;

/// The catalog relations with PostgreSQL's fixed OIDs; the views after them have OIDs
/// from PostgreSQL's range for system views (PostgreSQL does not fix those).
const RELATIONS: &[(&str, u32, &str)] = &[
    ("pg_type", 1247, "r"),
    ("pg_attribute", 1249, "r"),
    ("pg_proc", 1255, "r"),
    ("pg_class", 1259, "r"),
    ("pg_database", 1262, "r"),
    ("pg_auth_members", 1261, "r"),
    ("pg_tablespace", 1213, "r"),
    ("pg_namespace", 2615, "r"),
    ("pg_description", 2609, "r"),
    ("pg_constraint", 2606, "r"),
    ("pg_index", 2610, "r"),
    ("pg_depend", 2608, "r"),
    ("pg_rewrite", 2618, "r"),
    ("pg_attrdef", 2604, "r"),
    ("pg_am", 2601, "r"),
    ("pg_inherits", 2611, "r"),
    ("pg_language", 2612, "r"),
    ("pg_opclass", 2616, "r"),
    ("pg_sequence", 2224, "r"),
    ("pg_collation", 3456, "r"),
    ("pg_policy", 3256, "r"),
    ("pg_extension", 3079, "r"),
    ("pg_settings", 12_001, "v"),
    ("pg_user", 12_002, "v"),
    ("pg_group", 12_003, "v"),
    ("pg_roles", 12_004, "v"),
    ("pg_tables", 12_005, "v"),
    ("pg_views", 12_006, "v"),
    ("svv_tables", 12_007, "v"),
    ("svv_columns", 12_008, "v"),
    ("svv_external_schemas", 12_009, "v"),
    ("svv_external_tables", 12_010, "v"),
    ("svv_external_columns", 12_011, "v"),
];

const INFORMATION_SCHEMA: &[&str] = &["tables", "columns", "schemata", "views"];

/// Whether `name` is one of this module's relations (in any schema but
/// `information_schema`, whose own tables are only there).
pub fn exists(schema: &str, name: &str) -> bool {
    if schema == "information_schema" {
        INFORMATION_SCHEMA.contains(&name)
    } else {
        RELATIONS.iter().any(|(n, _, _)| *n == name)
    }
}

/// The relation `schema.name` over `view`, if this module has one.
pub fn table(schema: &str, name: &str, view: &CatalogState) -> Option<Arc<dyn TableProvider>> {
    if !exists(schema, name) {
        return None;
    }
    let cat = Snapshot::new(view);
    let batch = if schema == "information_schema" {
        match name {
            "tables" => cat.info_tables(),
            "columns" => cat.info_columns(),
            "schemata" => cat.info_schemata(),
            _ => cat.info_views(),
        }
    } else {
        cat.relation(name)?
    };
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).ok()?;
    Some(Arc::new(table))
}

/// A stable number in `base..base + span` for `name` (FNV-1a), for objects the catalog
/// keeps by name only (schemas, users).
fn name_oid(name: &str, base: u32, span: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    base + h % span
}

/// `usesysid` of a user: stable across restarts, since users are kept by name.
pub fn user_oid(name: &str) -> u32 {
    if name == RDSDB.0 {
        RDSDB.1
    } else {
        name_oid(name, 100, 16_000)
    }
}

/// A table's `relfilenode`/`oid`: its catalog id, as `stv_tbl_perm.id` shows it.
fn table_oid(t: &TableDef) -> u32 {
    t.id as u32
}

/// The oid of a view (its catalog id, like a table's).
fn view_oid(v: &ViewDef) -> u32 {
    v.id as u32
}

/// The oid of a view's `_RETURN` rule in `pg_rewrite`: the view's oid in a range no
/// relation's oid reaches.
fn view_rule_oid(v: &ViewDef) -> u32 {
    view_oid(v) | 0x4000_0000
}

/// The OID of a PRIMARY KEY's or UNIQUE constraint's index relation: the constraint's id
/// (ids come from the table sequence, so no relation has it).
fn index_oid(c: &ConstraintDef) -> u32 {
    c.id as u32
}

/// The OID of a constraint in `pg_constraint`: its id in a range no relation reaches.
fn constraint_oid(c: &ConstraintDef) -> u32 {
    c.id as u32 | 0x2000_0000
}

/// The constraint whose `pg_constraint.oid` (or, with `index`, index relation OID) is
/// `oid`.
fn constraint_by_oid(view: &CatalogState, oid: u32, index: bool) -> Option<&ConstraintDef> {
    view.constraints.values().map(|c| c.as_ref()).find(|c| {
        if index {
            c.has_index() && index_oid(c) == oid
        } else {
            constraint_oid(c) == oid
        }
    })
}

/// Attribute numbers (1-based) of table `table`'s columns stored as `stored`.
fn attnums(view: &CatalogState, table: u64, stored: &[String]) -> Vec<i16> {
    let t = view.tables.get(&table);
    stored
        .iter()
        .map(|s| {
            t.and_then(|t| t.columns.iter().position(|c| &c.stored == s))
                .map_or(0, |i| i as i16 + 1)
        })
        .collect()
}

/// The index of a PRIMARY KEY or UNIQUE constraint in the shape of a table, so
/// `pg_attribute` lists its columns as PostgreSQL lists an index's (clients that look up
/// primary keys join the index's attributes).
fn index_as_table(c: &ConstraintDef, t: &TableDef) -> TableDef {
    let mut columns = vec![];
    for s in &c.columns {
        if let Some(col) = t.columns.iter().find(|col| &col.stored == s) {
            columns.push(ColumnDef {
                default: None,
                identity: None,
                encoding: "none".into(),
                ..col.clone()
            });
        }
    }
    TableDef {
        id: index_oid(c) as u64,
        name: c.name.clone(),
        columns,
        dist: DistStyle::Even,
        sort_key: vec![],
        segments: vec![],
        identity_next: vec![],
        stats: None,
        retired: vec![],
        ..t.clone()
    }
}

/// A normal view's columns in the shape of a table's, so the column catalogs
/// (`pg_attribute`, `information_schema.columns`, `svv_columns`) list them the same way.
/// Late-binding views have no such columns: `pg_get_late_binding_view_cols()` has them.
fn view_as_table(v: &ViewDef) -> TableDef {
    TableDef {
        id: v.id,
        schema: v.schema.clone(),
        name: v.name.clone(),
        columns: v
            .columns
            .iter()
            .map(|c| ColumnDef {
                name: c.name.clone(),
                sql_type: c.sql_type.clone(),
                nullable: true,
                default: None,
                identity: None,
                encoding: "none".into(),
                stored: c.name.clone(),
                missing: None,
            })
            .collect(),
        dist: DistStyle::Even,
        sort_kind: SortKind::Compound,
        sort_key: vec![],
        backup: true,
        encode_auto: false,
        segments: vec![],
        identity_next: vec![],
        owner: v.owner.clone(),
        stats: None,
        modified_rows: 0,
        retired: vec![],
    }
}

/// The catalog snapshot with the OIDs of its schemas resolved.
struct Snapshot<'a> {
    view: &'a CatalogState,
    /// (name, oid, owner oid) of every schema, system schemas first.
    schemas: Vec<(String, u32, u32)>,
    /// The normal views, shaped as tables (see [`view_as_table`]).
    view_columns: Vec<Arc<TableDef>>,
    /// The indexes of PRIMARY KEY and UNIQUE constraints, shaped as tables (see
    /// [`index_as_table`]).
    index_columns: Vec<Arc<TableDef>>,
}

impl<'a> Snapshot<'a> {
    fn new(view: &'a CatalogState) -> Self {
        let mut schemas = vec![
            ("pg_catalog".to_string(), PG_CATALOG_OID, RDSDB.1),
            (
                "information_schema".to_string(),
                INFORMATION_SCHEMA_OID,
                RDSDB.1,
            ),
        ];
        let mut used: BTreeSet<u32> = schemas.iter().map(|s| s.1).collect();
        for s in &view.schemas {
            let mut oid = if s == "public" {
                PUBLIC_OID
            } else {
                name_oid(s, 16_385, 83_000)
            };
            // Two names hashing alike: the later one (in name order) takes the next free.
            while !used.insert(oid) {
                oid += 1;
            }
            schemas.push((s.clone(), oid, RDSDB.1));
        }
        let view_columns = view
            .views
            .values()
            .filter(|v| !v.late_binding)
            .map(|v| Arc::new(view_as_table(v)))
            .collect();
        let index_columns = view
            .constraints
            .values()
            .filter(|c| c.has_index())
            .filter_map(|c| {
                let t = view.tables.get(&c.table)?;
                Some(Arc::new(index_as_table(c, t)))
            })
            .collect();
        Self {
            view,
            schemas,
            view_columns,
            index_columns,
        }
    }

    /// The comment on relation `oid` (column 0) or one of its columns.
    fn comment(&self, oid: u64, column: u32) -> Option<&str> {
        self.view.comments.get(&(oid, column)).map(String::as_str)
    }

    fn schema_oid(&self, name: &str) -> u32 {
        self.schemas.iter().find(|s| s.0 == name).map_or(0, |s| s.1)
    }

    fn tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.view.tables.values()
    }

    fn relation(&self, name: &str) -> Option<RecordBatch> {
        Some(match name {
            "pg_namespace" => self.pg_namespace(),
            "pg_class" => self.pg_class(),
            "pg_attribute" => self.pg_attribute(),
            "pg_attrdef" => self.pg_attrdef(),
            "pg_type" => pg_type(),
            "pg_database" => pg_database(),
            "pg_tablespace" => pg_tablespace(),
            "pg_description" => {
                // Every comment belongs to a relation (pg_class) or one of its columns.
                let c = &self.view.comments;
                Cols::default()
                    .oid("objoid", c.keys().map(|k| k.0 as u32).collect())
                    .oid("classoid", vec![1259; c.len()])
                    .int4("objsubid", c.keys().map(|k| k.1 as i32).collect())
                    .text("description", c.values().collect())
                    .batch()
            }
            "pg_constraint" => self.pg_constraint(),
            "pg_index" => self.pg_index(),
            // As in PostgreSQL, a view is its `_RETURN` rule (pg_rewrite), and the rule
            // depends on the view itself (internally) and on every relation a normal view
            // reads: dbt learns from these which views a CASCADE takes with a table.
            "pg_depend" => {
                let mut rows: Vec<(u32, u32, &str)> = vec![];
                for v in self.view.views.values() {
                    rows.push((view_rule_oid(v), view_oid(v), "i"));
                    for r in &v.depends_on {
                        rows.push((view_rule_oid(v), *r as u32, "n"));
                    }
                }
                let n = rows.len();
                Cols::default()
                    .oid("classid", vec![2618; n])
                    .oid("objid", rows.iter().map(|r| r.0).collect())
                    .int4("objsubid", vec![0; n])
                    .oid("refclassid", vec![1259; n])
                    .oid("refobjid", rows.iter().map(|r| r.1).collect())
                    .int4("refobjsubid", vec![0; n])
                    .text("deptype", rows.iter().map(|r| r.2).collect())
                    .batch()
            }
            "pg_rewrite" => {
                let v: Vec<&Arc<ViewDef>> = self.view.views.values().collect();
                let n = v.len();
                Cols::default()
                    .oid("oid", v.iter().map(|v| view_rule_oid(v)).collect())
                    .text("rulename", vec!["_RETURN"; n])
                    .oid("ev_class", v.iter().map(|v| view_oid(v)).collect())
                    .text("ev_type", vec!["1"; n])
                    .text("ev_enabled", vec!["O"; n])
                    .bool("is_instead", vec![true; n])
                    .text_nulls("ev_qual", n)
                    .text("ev_action", v.iter().map(|v| v.definition()).collect())
                    .batch()
            }
            "pg_proc" => pg_proc(),
            "pg_language" => pg_language(),
            "pg_collation" => pg_collation(),
            "pg_settings" => pg_settings(),
            "pg_user" => self.pg_user(),
            "pg_group" => Cols::default()
                .text("groname", Vec::<String>::new())
                .int4("grosysid", vec![])
                .int4_list_nulls("grolist", 0)
                .batch(),
            "pg_roles" => self.pg_roles(),
            "pg_auth_members" => Cols::default()
                .oid("oid", vec![])
                .oid("roleid", vec![])
                .oid("member", vec![])
                .oid("grantor", vec![])
                .bool("admin_option", vec![])
                .batch(),
            "pg_tables" => self.pg_tables(),
            "pg_views" => {
                let v: Vec<&Arc<ViewDef>> = self.view.views.values().collect();
                Cols::default()
                    .text("schemaname", v.iter().map(|v| v.schema.as_str()).collect())
                    .text("viewname", v.iter().map(|v| v.name.as_str()).collect())
                    .text("viewowner", v.iter().map(|v| v.owner.as_str()).collect())
                    .text("definition", v.iter().map(|v| v.definition()).collect())
                    .batch()
            }
            "pg_am" => Cols::default()
                .oid("oid", vec![2, 403])
                .text("amname", vec!["heap", "btree"])
                .text("amhandler", vec!["heap_tableam_handler", "bthandler"])
                .text("amtype", vec!["t", "i"])
                .batch(),
            "pg_opclass" => Cols::default()
                .oid("oid", vec![])
                .oid("opcmethod", vec![])
                .text("opcname", Vec::<String>::new())
                .oid("opcnamespace", vec![])
                .oid("opcowner", vec![])
                .oid("opcfamily", vec![])
                .oid("opcintype", vec![])
                .bool("opcdefault", vec![])
                .oid("opckeytype", vec![])
                .batch(),
            "pg_inherits" => Cols::default()
                .oid("inhrelid", vec![])
                .oid("inhparent", vec![])
                .int4("inhseqno", vec![])
                .bool("inhdetachpending", vec![])
                .batch(),
            "pg_policy" => Cols::default()
                .oid("oid", vec![])
                .text("polname", Vec::<String>::new())
                .oid("polrelid", vec![])
                .text("polcmd", Vec::<String>::new())
                .bool("polpermissive", vec![])
                .oid_list_nulls("polroles", 0)
                .text("polqual", Vec::<String>::new())
                .text("polwithcheck", Vec::<String>::new())
                .batch(),
            "pg_extension" => Cols::default()
                .oid("oid", vec![])
                .text("extname", Vec::<String>::new())
                .oid("extowner", vec![])
                .oid("extnamespace", vec![])
                .bool("extrelocatable", vec![])
                .text("extversion", Vec::<String>::new())
                .batch(),
            "pg_sequence" => Cols::default()
                .oid("seqrelid", vec![])
                .oid("seqtypid", vec![])
                .int8("seqstart", vec![])
                .int8("seqincrement", vec![])
                .int8("seqmax", vec![])
                .int8("seqmin", vec![])
                .int8("seqcache", vec![])
                .bool("seqcycle", vec![])
                .batch(),
            // Redshift's driver-facing views: local tables in `information_schema` shape
            // with `remarks`; Basalt has no external (Spectrum) schemas.
            "svv_tables" => {
                let t = self.info_tables();
                let n = t.num_rows();
                let mut cols = Cols::default();
                for name in ["table_catalog", "table_schema", "table_name", "table_type"] {
                    cols = cols.push(name, t.column_by_name(name)?.clone());
                }
                let remarks = self
                    .relations()
                    .map(|(oid, ..)| self.comment(oid, 0))
                    .collect();
                debug_assert_eq!(n, self.relations().count());
                cols.text_opt("remarks", remarks).batch()
            }
            "svv_columns" => {
                let c = self.info_columns();
                let n = c.num_rows();
                let mut cols = Cols::default();
                for name in [
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "column_name",
                    "ordinal_position",
                    "column_default",
                    "is_nullable",
                    "data_type",
                    "character_maximum_length",
                    "numeric_precision",
                    "numeric_precision_radix",
                    "numeric_scale",
                    "datetime_precision",
                    "interval_type",
                    "interval_precision",
                    "character_set_catalog",
                    "character_set_schema",
                    "character_set_name",
                    "collation_catalog",
                    "collation_schema",
                    "collation_name",
                    "domain_name",
                ] {
                    cols = cols.push(name, c.column_by_name(name)?.clone());
                }
                let remarks: Vec<Option<&str>> = self
                    .columns()
                    .iter()
                    .map(|(t, i)| self.comment(t.id, *i as u32 + 1))
                    .collect();
                debug_assert_eq!(n, remarks.len());
                cols.text_opt("remarks", remarks).batch()
            }
            "svv_external_schemas" => Cols::default()
                .int4("esoid", vec![])
                .int2("eskind", vec![])
                .text("schemaname", Vec::<String>::new())
                .int4("esowner", vec![])
                .text("databasename", Vec::<String>::new())
                .text("esoptions", Vec::<String>::new())
                .batch(),
            "svv_external_tables" => {
                let mut cols = Cols::default();
                for name in [
                    "schemaname",
                    "tablename",
                    "location",
                    "input_format",
                    "output_format",
                    "serialization_lib",
                    "serde_parameters",
                    "compressed",
                    "parameters",
                    "tabletype",
                ] {
                    cols = cols.text(name, Vec::<String>::new());
                }
                cols.batch()
            }
            "svv_external_columns" => Cols::default()
                .text("schemaname", Vec::<String>::new())
                .text("tablename", Vec::<String>::new())
                .text("columnname", Vec::<String>::new())
                .text("external_type", Vec::<String>::new())
                .int4("columnnum", vec![])
                .int4("part_key", vec![])
                .text("is_nullable", Vec::<String>::new())
                .batch(),
            _ => return None,
        })
    }

    fn pg_namespace(&self) -> RecordBatch {
        let s = &self.schemas;
        Cols::default()
            .oid("oid", s.iter().map(|s| s.1).collect())
            .text("nspname", s.iter().map(|s| s.0.as_str()).collect())
            .oid("nspowner", s.iter().map(|s| s.2).collect())
            .text_list_nulls("nspacl", s.len())
            .batch()
    }

    fn pg_class(&self) -> RecordBatch {
        // User tables, then the catalog's own relations (so `'pg_class'::regclass` and
        // joins on `classoid` find them).
        struct Rel {
            oid: u32,
            name: String,
            namespace: u32,
            owner: u32,
            kind: &'static str,
            natts: i16,
            tuples: f32,
            diststyle: i16,
        }
        let mut rels: Vec<Rel> = self
            .tables()
            .map(|t| Rel {
                oid: table_oid(t),
                name: t.name.clone(),
                namespace: self.schema_oid(&t.schema),
                owner: user_oid(&t.owner),
                kind: "r",
                natts: t.columns.len() as i16,
                tuples: t.rows() as f32,
                diststyle: reldiststyle(&t.dist),
            })
            .collect();
        rels.extend(self.view.views.values().map(|v| Rel {
            oid: view_oid(v),
            name: v.name.clone(),
            namespace: self.schema_oid(&v.schema),
            owner: user_oid(&v.owner),
            kind: "v",
            // A late-binding view's columns are not in pg_attribute.
            natts: if v.late_binding {
                0
            } else {
                v.columns.len() as i16
            },
            tuples: 0.0,
            diststyle: 0,
        }));
        rels.extend(self.index_columns.iter().map(|i| Rel {
            oid: table_oid(i),
            name: i.name.clone(),
            namespace: self.schema_oid(&i.schema),
            owner: user_oid(&i.owner),
            kind: "i",
            natts: i.columns.len() as i16,
            tuples: 0.0,
            diststyle: 0,
        }));
        rels.extend(RELATIONS.iter().map(|(name, oid, kind)| Rel {
            oid: *oid,
            name: name.to_string(),
            namespace: PG_CATALOG_OID,
            owner: RDSDB.1,
            kind,
            natts: 0,
            tuples: 0.0,
            diststyle: 0,
        }));
        let n = rels.len();
        // Tables with a PRIMARY KEY or UNIQUE constraint have an index.
        let indexed: BTreeSet<u64> = self
            .view
            .constraints
            .values()
            .filter(|c| c.has_index())
            .map(|c| c.table)
            .collect();
        Cols::default()
            .oid("oid", rels.iter().map(|r| r.oid).collect())
            .text("relname", rels.iter().map(|r| r.name.as_str()).collect())
            .oid("relnamespace", rels.iter().map(|r| r.namespace).collect())
            .oid("reltype", vec![0; n])
            .oid("reloftype", vec![0; n])
            .oid("relowner", rels.iter().map(|r| r.owner).collect())
            .oid(
                "relam",
                rels.iter()
                    .map(|r| match r.kind {
                        "r" => 2,
                        "i" => 403,
                        _ => 0,
                    })
                    .collect(),
            )
            .oid("relfilenode", rels.iter().map(|r| r.oid).collect())
            .oid("reltablespace", vec![0; n])
            .int4("relpages", vec![0; n])
            .float4("reltuples", rels.iter().map(|r| r.tuples).collect())
            .int4("relallvisible", vec![0; n])
            .oid("reltoastrelid", vec![0; n])
            .bool(
                "relhasindex",
                rels.iter()
                    .map(|r| r.kind == "r" && indexed.contains(&u64::from(r.oid)))
                    .collect(),
            )
            .bool("relisshared", vec![false; n])
            .text("relpersistence", vec!["p"; n])
            .text("relkind", rels.iter().map(|r| r.kind).collect())
            .int2("relnatts", rels.iter().map(|r| r.natts).collect())
            .int2("relchecks", vec![0; n])
            .bool("relhasoids", vec![false; n])
            .bool("relhasrules", vec![false; n])
            .bool("relhastriggers", vec![false; n])
            .bool("relhassubclass", vec![false; n])
            .bool("relrowsecurity", vec![false; n])
            .bool("relforcerowsecurity", vec![false; n])
            .bool("relispopulated", vec![true; n])
            .text("relreplident", vec!["d"; n])
            .bool("relispartition", vec![false; n])
            .text_list_nulls("relacl", n)
            .text_list_nulls("reloptions", n)
            .text_nulls("relpartbound", n)
            .int2("reldiststyle", rels.iter().map(|r| r.diststyle).collect())
            .batch()
    }

    fn columns(&self) -> Vec<(&TableDef, usize)> {
        self.tables()
            .chain(self.view_columns.iter())
            .flat_map(|t| (0..t.columns.len()).map(move |i| (t.as_ref(), i)))
            .collect()
    }

    fn pg_attribute(&self) -> RecordBatch {
        let mut rows = self.columns();
        rows.extend(
            self.index_columns
                .iter()
                .flat_map(|t| (0..t.columns.len()).map(move |i| (t.as_ref(), i))),
        );
        let ty = |(t, i): &(&TableDef, usize)| t.columns[*i].sql_type.clone();
        Cols::default()
            .oid("attrelid", rows.iter().map(|(t, _)| table_oid(t)).collect())
            .text(
                "attname",
                rows.iter()
                    .map(|(t, i)| t.columns[*i].name.as_str())
                    .collect(),
            )
            .oid(
                "atttypid",
                rows.iter().map(|r| ty(r).pg_type().oid()).collect(),
            )
            .int4("attstattarget", vec![-1; rows.len()])
            .int2(
                "attlen",
                rows.iter()
                    .map(|r| type_len(ty(r).pg_type().oid()))
                    .collect(),
            )
            .int2("attnum", rows.iter().map(|(_, i)| *i as i16 + 1).collect())
            .int4("attndims", vec![0; rows.len()])
            .int4("attcacheoff", vec![-1; rows.len()])
            .int4(
                "atttypmod",
                rows.iter().map(|r| ty(r).type_modifier()).collect(),
            )
            .bool(
                "attbyval",
                rows.iter()
                    .map(|r| type_len(ty(r).pg_type().oid()) > 0)
                    .collect(),
            )
            .text(
                "attstorage",
                rows.iter()
                    .map(|r| {
                        if ty(r).max_bytes().is_some() {
                            "x"
                        } else {
                            "p"
                        }
                    })
                    .collect(),
            )
            .text("attalign", rows.iter().map(|_| "i").collect())
            .bool(
                "attnotnull",
                rows.iter().map(|(t, i)| !t.columns[*i].nullable).collect(),
            )
            .bool(
                "atthasdef",
                rows.iter()
                    .map(|(t, i)| column_default(t, *i).is_some())
                    .collect(),
            )
            .bool("atthasmissing", vec![false; rows.len()])
            .text("attidentity", vec![""; rows.len()])
            .text("attgenerated", vec![""; rows.len()])
            .bool("attisdropped", vec![false; rows.len()])
            .bool("attislocal", vec![true; rows.len()])
            .int4("attinhcount", vec![0; rows.len()])
            .oid(
                "attcollation",
                rows.iter()
                    .map(|r| {
                        if ty(r).max_bytes().is_some() {
                            DEFAULT_COLLATION_OID
                        } else {
                            0
                        }
                    })
                    .collect(),
            )
            .text_list_nulls("attacl", rows.len())
            .text_list_nulls("attoptions", rows.len())
            .bool(
                "attisdistkey",
                rows.iter()
                    .map(|(t, i)| t.dist == DistStyle::Key(*i))
                    .collect(),
            )
            .int4(
                "attsortkeyord",
                rows.iter().map(|(t, i)| sort_key_ord(t, *i)).collect(),
            )
            .int4(
                "attencodingtype",
                rows.iter()
                    .map(|(t, i)| encoding_type(&t.columns[*i].encoding))
                    .collect(),
            )
            .batch()
    }

    fn pg_attrdef(&self) -> RecordBatch {
        let rows: Vec<(&TableDef, usize, String)> = self
            .columns()
            .into_iter()
            .filter_map(|(t, i)| column_default(t, i).map(|d| (t, i, d)))
            .collect();
        let exprs: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        Cols::default()
            // One default per column: the OID packs the table id and the column number (11
            // bits: Redshift allows 1,600 columns).
            .oid(
                "oid",
                rows.iter()
                    .map(|(t, i, _)| (table_oid(t) << 11) | (*i as u32 & 0x7ff))
                    .collect(),
            )
            .oid(
                "adrelid",
                rows.iter().map(|(t, _, _)| table_oid(t)).collect(),
            )
            .int2(
                "adnum",
                rows.iter().map(|(_, i, _)| *i as i16 + 1).collect(),
            )
            // `pg_get_expr(adbin, adrelid)` gives the expression's text, so adbin holds it.
            .text("adbin", exprs.clone())
            .text("adsrc", exprs)
            .batch()
    }

    fn user_rows(&self) -> Vec<(String, u32, bool)> {
        let mut users = vec![(RDSDB.0.to_string(), RDSDB.1, true)];
        users.extend(
            self.view
                .users
                .values()
                .map(|u| (u.name.clone(), user_oid(&u.name), u.superuser)),
        );
        users
    }

    fn pg_user(&self) -> RecordBatch {
        let u = self.user_rows();
        let n = u.len();
        Cols::default()
            .text("usename", u.iter().map(|u| u.0.as_str()).collect())
            .int4("usesysid", u.iter().map(|u| u.1 as i32).collect())
            .bool("usecreatedb", u.iter().map(|u| u.2).collect())
            .bool("usesuper", u.iter().map(|u| u.2).collect())
            .bool("usecatupd", u.iter().map(|u| u.2).collect())
            .text("passwd", vec!["********"; n])
            .text_nulls("valuntil", n)
            .text_list_nulls("useconfig", n)
            .batch()
    }

    fn pg_roles(&self) -> RecordBatch {
        let u = self.user_rows();
        let n = u.len();
        Cols::default()
            .text("rolname", u.iter().map(|u| u.0.as_str()).collect())
            .bool("rolsuper", u.iter().map(|u| u.2).collect())
            .bool("rolinherit", vec![true; n])
            .bool("rolcreaterole", u.iter().map(|u| u.2).collect())
            .bool("rolcreatedb", u.iter().map(|u| u.2).collect())
            // rdsdb is internal: nobody logs in as it.
            .bool("rolcanlogin", u.iter().map(|u| u.1 != RDSDB.1).collect())
            .bool("rolreplication", vec![false; n])
            .int4("rolconnlimit", vec![-1; n])
            .text("rolpassword", vec!["********"; n])
            .text_nulls("rolvaliduntil", n)
            .bool("rolbypassrls", u.iter().map(|u| u.2).collect())
            .text_list_nulls("rolconfig", n)
            .oid("oid", u.iter().map(|u| u.1).collect())
            .batch()
    }

    fn pg_tables(&self) -> RecordBatch {
        let t: Vec<&Arc<TableDef>> = self.tables().collect();
        let n = t.len();
        Cols::default()
            .text("schemaname", t.iter().map(|t| t.schema.as_str()).collect())
            .text("tablename", t.iter().map(|t| t.name.as_str()).collect())
            .text("tableowner", t.iter().map(|t| t.owner.as_str()).collect())
            .text_nulls("tablespace", n)
            .bool("hasindexes", vec![false; n])
            .bool("hasrules", vec![false; n])
            .bool("hastriggers", vec![false; n])
            .bool("rowsecurity", vec![false; n])
            .batch()
    }

    /// Every table, then every view: (oid, schema, name, is a view).
    fn relations(&self) -> impl Iterator<Item = (u64, &str, &str, bool)> {
        self.tables()
            .map(|t| (t.id, t.schema.as_str(), t.name.as_str(), false))
            .chain(
                self.view
                    .views
                    .values()
                    .map(|v| (v.id, v.schema.as_str(), v.name.as_str(), true)),
            )
    }

    fn info_tables(&self) -> RecordBatch {
        let t: Vec<(u64, &str, &str, bool)> = self.relations().collect();
        let n = t.len();
        Cols::default()
            .text("table_catalog", vec![DATABASE; n])
            .text("table_schema", t.iter().map(|t| t.1).collect())
            .text("table_name", t.iter().map(|t| t.2).collect())
            .text(
                "table_type",
                t.iter()
                    .map(|t| if t.3 { "VIEW" } else { "BASE TABLE" })
                    .collect(),
            )
            .text_nulls("self_referencing_column_name", n)
            .text_nulls("reference_generation", n)
            .text_nulls("user_defined_type_catalog", n)
            .text_nulls("user_defined_type_schema", n)
            .text_nulls("user_defined_type_name", n)
            .text(
                "is_insertable_into",
                t.iter().map(|t| if t.3 { "NO" } else { "YES" }).collect(),
            )
            .text("is_typed", vec!["NO"; n])
            .text_nulls("commit_action", n)
            .batch()
    }

    fn info_columns(&self) -> RecordBatch {
        let rows = self.columns();
        let n = rows.len();
        let ty = |(t, i): &(&TableDef, usize)| t.columns[*i].sql_type.clone();
        let numeric = |r: &(&TableDef, usize)| -> (Option<i32>, Option<i32>, Option<i32>) {
            match ty(r) {
                SqlType::SmallInt => (Some(16), Some(2), Some(0)),
                SqlType::Integer => (Some(32), Some(2), Some(0)),
                SqlType::BigInt => (Some(64), Some(2), Some(0)),
                SqlType::Real => (Some(24), Some(2), None),
                SqlType::Double => (Some(53), Some(2), None),
                SqlType::Decimal { precision, scale } => {
                    (Some(precision.into()), Some(10), Some(scale.into()))
                }
                _ => (None, None, None),
            }
        };
        let datetime = |r: &(&TableDef, usize)| match ty(r) {
            SqlType::Date => Some(0),
            SqlType::Timestamp | SqlType::Timestamptz | SqlType::Time => Some(6),
            _ => None,
        };
        Cols::default()
            .text("table_catalog", vec![DATABASE; n])
            .text(
                "table_schema",
                rows.iter().map(|(t, _)| t.schema.as_str()).collect(),
            )
            .text(
                "table_name",
                rows.iter().map(|(t, _)| t.name.as_str()).collect(),
            )
            .text(
                "column_name",
                rows.iter()
                    .map(|(t, i)| t.columns[*i].name.as_str())
                    .collect(),
            )
            .int4(
                "ordinal_position",
                rows.iter().map(|(_, i)| *i as i32 + 1).collect(),
            )
            .text_opt(
                "column_default",
                rows.iter().map(|(t, i)| column_default(t, *i)).collect(),
            )
            .text(
                "is_nullable",
                rows.iter()
                    .map(|(t, i)| if t.columns[*i].nullable { "YES" } else { "NO" })
                    .collect(),
            )
            .text(
                "data_type",
                rows.iter().map(|r| type_family(&ty(r))).collect(),
            )
            .int4_opt(
                "character_maximum_length",
                rows.iter()
                    .map(|r| ty(r).max_bytes().map(|n| n as i32))
                    .collect(),
            )
            .int4_opt(
                "character_octet_length",
                rows.iter()
                    .map(|r| ty(r).max_bytes().map(|n| n as i32))
                    .collect(),
            )
            .int4_opt(
                "numeric_precision",
                rows.iter().map(|r| numeric(r).0).collect(),
            )
            .int4_opt(
                "numeric_precision_radix",
                rows.iter().map(|r| numeric(r).1).collect(),
            )
            .int4_opt("numeric_scale", rows.iter().map(|r| numeric(r).2).collect())
            .int4_opt("datetime_precision", rows.iter().map(datetime).collect())
            .text_nulls("interval_type", n)
            .int4_opt("interval_precision", vec![None; n])
            .text_nulls("character_set_catalog", n)
            .text_nulls("character_set_schema", n)
            .text_nulls("character_set_name", n)
            .text_nulls("collation_catalog", n)
            .text_nulls("collation_schema", n)
            .text_nulls("collation_name", n)
            .text_nulls("domain_catalog", n)
            .text_nulls("domain_schema", n)
            .text_nulls("domain_name", n)
            .text("udt_catalog", vec![DATABASE; n])
            .text("udt_schema", vec!["pg_catalog"; n])
            .text(
                "udt_name",
                rows.iter()
                    .map(|r| ty(r).pg_type().name().to_string())
                    .collect(),
            )
            .text(
                "dtd_identifier",
                rows.iter().map(|(_, i)| (i + 1).to_string()).collect(),
            )
            .text("is_self_referencing", vec!["NO"; n])
            .text(
                "is_identity",
                rows.iter()
                    .map(|(t, i)| {
                        if t.columns[*i].identity.is_some() {
                            "YES"
                        } else {
                            "NO"
                        }
                    })
                    .collect(),
            )
            .text("is_generated", vec!["NEVER"; n])
            .text_nulls("generation_expression", n)
            .text("is_updatable", vec!["YES"; n])
            .batch()
    }

    fn info_schemata(&self) -> RecordBatch {
        let s = &self.schemas;
        let n = s.len();
        Cols::default()
            .text("catalog_name", vec![DATABASE; n])
            .text("schema_name", s.iter().map(|s| s.0.as_str()).collect())
            .text("schema_owner", vec![RDSDB.0; n])
            .text_nulls("default_character_set_catalog", n)
            .text_nulls("default_character_set_schema", n)
            .text_nulls("default_character_set_name", n)
            .text_nulls("sql_path", n)
            .batch()
    }

    fn info_views(&self) -> RecordBatch {
        let v: Vec<&Arc<ViewDef>> = self.view.views.values().collect();
        let n = v.len();
        Cols::default()
            .text("table_catalog", vec![DATABASE; n])
            .text(
                "table_schema",
                v.iter().map(|v| v.schema.as_str()).collect(),
            )
            .text("table_name", v.iter().map(|v| v.name.as_str()).collect())
            .text(
                "view_definition",
                v.iter().map(|v| v.definition()).collect(),
            )
            .text("check_option", vec!["NONE"; n])
            .text("is_updatable", vec!["NO"; n])
            .text("is_insertable_into", vec!["NO"; n])
            .text("is_trigger_updatable", vec!["NO"; n])
            .text("is_trigger_deletable", vec!["NO"; n])
            .text("is_trigger_insertable_into", vec!["NO"; n])
            .batch()
    }
}

/// Redshift's `pg_class.reldiststyle`: 0 EVEN, 1 KEY, 8 ALL, 11 AUTO(EVEN).
fn reldiststyle(d: &DistStyle) -> i16 {
    match d {
        DistStyle::Even => 0,
        DistStyle::Key(_) => 1,
        DistStyle::All => 8,
        DistStyle::Auto => 11,
    }
}

/// `attsortkeyord`: position in the sort key from 1, negative for INTERLEAVED, 0 if none.
fn sort_key_ord(t: &TableDef, column: usize) -> i32 {
    let pos = t
        .sort_key
        .iter()
        .position(|k| *k == column)
        .map_or(0, |p| p as i32 + 1);
    match t.sort_kind {
        SortKind::Interleaved => -pos,
        SortKind::Compound => pos,
    }
}

/// `attencodingtype` numbers: Basalt numbers the encodings in the order Redshift
/// documents them, 0 for RAW; `format_encoding` turns a number back into its name.
const ENCODINGS: &[&str] = &[
    "raw",
    "bytedict",
    "delta",
    "delta32k",
    "lzo",
    "mostly8",
    "mostly16",
    "mostly32",
    "runlength",
    "text255",
    "text32k",
    "zstd",
    "az64",
];

/// A column's `attencodingtype`.
fn encoding_type(encoding: &str) -> i32 {
    ENCODINGS.iter().position(|e| *e == encoding).unwrap_or(0) as i32
}

/// A column's default as `pg_get_expr` shows it: a string literal with the cast
/// PostgreSQL (and Redshift) show on it (`'x'::character varying`); IDENTITY columns show
/// Redshift's `"identity"(table, column, 'seed,step')` form.
fn column_default(t: &TableDef, i: usize) -> Option<String> {
    let c = &t.columns[i];
    if let Some(id) = &c.identity {
        return Some(format!(
            "\"identity\"({}, {}, '{},{}'::text)",
            t.id, i, id.seed, id.step
        ));
    }
    let default = c.default.as_ref()?;
    let literal = default.len() >= 2
        && default.starts_with('\'')
        && default.ends_with('\'')
        && !default[1..default.len() - 1]
            .replace("''", "")
            .contains('\'');
    let cast = match &c.sql_type {
        SqlType::Char(_) => "bpchar".to_string(),
        t @ (SqlType::Varchar(_)
        | SqlType::Date
        | SqlType::Time
        | SqlType::Timestamp
        | SqlType::Timestamptz) => type_family(t),
        _ => return Some(default.clone()),
    };
    Some(if literal {
        format!("{default}::{cast}")
    } else {
        default.clone()
    })
}

/// The type name without its modifier, as `information_schema.columns.data_type` has it.
fn type_family(t: &SqlType) -> String {
    let name = t.display_name();
    match name.find('(') {
        Some(i) => name[..i].to_string(),
        None => name,
    }
}

/// The types `pg_type` lists: the ones Basalt stores, the ones its catalog columns and
/// functions use, and their arrays.
const TYPES: &[u32] = &[
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 30, 700, 701, 705, 1042, 1043, 1082, 1083, 1114,
    1184, 1186, 1266, 1700, 2205, 2206, 2249, 2275, 2276, 2277, 2278, 2279, 1000, 1001, 1002, 1003,
    1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1231,
];

/// `typlen`: bytes of a fixed-length type, -1 for variable length, -2 for C strings.
pub(crate) fn type_len(oid: u32) -> i16 {
    match oid {
        16 | 18 => 1,
        21 => 2,
        23 | 24 | 26 | 700 | 1082 | 2205 | 2206 => 4,
        20 | 701 | 1083 | 1114 | 1184 => 8,
        19 => 64,
        1186 | 1266 => 12,
        2275 => -2,
        2276 | 2278 | 2279 | 2249 | 2277 => 4,
        _ => -1,
    }
}

fn pg_type() -> RecordBatch {
    let mut types: Vec<Type> = TYPES.iter().filter_map(|o| Type::from_oid(*o)).collect();
    types.push(SqlType::Varbyte(crate::sql::types::VARBYTE_DEFAULT).pg_type());
    let elem = |t: &Type| match t.kind() {
        postgres_types::Kind::Array(e) => e.oid(),
        _ => 0,
    };
    let array_of = |t: &Type| {
        types
            .iter()
            .find(|a| elem(a) == t.oid())
            .map_or(0, |a| a.oid())
    };
    let kind = |t: &Type| match t.kind() {
        postgres_types::Kind::Pseudo => "p",
        _ => "b",
    };
    let category = |t: &Type| match t.kind() {
        postgres_types::Kind::Array(_) => "A",
        postgres_types::Kind::Pseudo => "P",
        _ => match t.oid() {
            16 => "B",
            20 | 21 | 23 | 26 | 24 | 700 | 701 | 1700 | 2205 | 2206 => "N",
            1082 | 1083 | 1114 | 1184 | 1266 => "D",
            1186 => "T",
            17 | crate::sql::types::VARBYTE_OID => "U",
            _ => "S",
        },
    };
    let io = |t: &Type, suffix: &str| match t.kind() {
        postgres_types::Kind::Array(_) => format!("array_{suffix}"),
        _ => format!("{}{suffix}", t.name()),
    };
    let n = types.len();
    Cols::default()
        .oid("oid", types.iter().map(Type::oid).collect())
        .text(
            "typname",
            types.iter().map(|t| t.name().to_string()).collect(),
        )
        .oid("typnamespace", vec![PG_CATALOG_OID; n])
        .oid("typowner", vec![RDSDB.1; n])
        .int2("typlen", types.iter().map(|t| type_len(t.oid())).collect())
        .bool(
            "typbyval",
            types
                .iter()
                .map(|t| (1..=8).contains(&type_len(t.oid())))
                .collect(),
        )
        .text("typtype", types.iter().map(kind).collect())
        .text("typcategory", types.iter().map(category).collect())
        .bool(
            "typispreferred",
            types
                .iter()
                .map(|t| matches!(t.oid(), 25 | 701 | 1184 | 26))
                .collect(),
        )
        .bool("typisdefined", vec![true; n])
        .text("typdelim", vec![","; n])
        .oid("typrelid", vec![0; n])
        .oid("typelem", types.iter().map(elem).collect())
        .oid("typarray", types.iter().map(array_of).collect())
        .text("typinput", types.iter().map(|t| io(t, "in")).collect())
        .text("typoutput", types.iter().map(|t| io(t, "out")).collect())
        .text("typreceive", types.iter().map(|t| io(t, "recv")).collect())
        .text("typsend", types.iter().map(|t| io(t, "send")).collect())
        .text(
            "typalign",
            types
                .iter()
                .map(|t| if type_len(t.oid()) == 8 { "d" } else { "i" })
                .collect(),
        )
        .text(
            "typstorage",
            types
                .iter()
                .map(|t| if type_len(t.oid()) < 0 { "x" } else { "p" })
                .collect(),
        )
        .bool("typnotnull", vec![false; n])
        .oid("typbasetype", vec![0; n])
        .int4("typtypmod", vec![-1; n])
        .int4("typndims", vec![0; n])
        .oid(
            "typcollation",
            types
                .iter()
                .map(|t| {
                    if matches!(t.oid(), 19 | 25 | 1042 | 1043) {
                        DEFAULT_COLLATION_OID
                    } else {
                        0
                    }
                })
                .collect(),
        )
        .text_nulls("typdefault", n)
        .text_list_nulls("typacl", n)
        .batch()
}

fn pg_database() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![DATABASE_OID])
        .text("datname", vec![DATABASE])
        .oid("datdba", vec![RDSDB.1])
        .int4("encoding", vec![UTF8_ENCODING])
        .text("datcollate", vec!["C"])
        .text("datctype", vec!["C"])
        .bool("datistemplate", vec![false])
        .bool("datallowconn", vec![true])
        .int4("datconnlimit", vec![-1])
        .oid("dattablespace", vec![1663])
        .text_list_nulls("datacl", 1)
        .batch()
}

fn pg_tablespace() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![1663, 1664])
        .text("spcname", vec!["pg_default", "pg_global"])
        .oid("spcowner", vec![RDSDB.1, RDSDB.1])
        .text_list_nulls("spcacl", 2)
        .text_list_nulls("spcoptions", 2)
        .batch()
}

impl Snapshot<'_> {
    /// PRIMARY KEY, UNIQUE and FOREIGN KEY constraints (informational, as in Redshift).
    fn pg_constraint(&self) -> RecordBatch {
        let rows: Vec<&ConstraintDef> =
            self.view.constraints.values().map(|c| c.as_ref()).collect();
        let n = rows.len();
        let table = |c: &ConstraintDef| self.view.tables.get(&c.table);
        let keys = |c: &ConstraintDef| Some(attnums(self.view, c.table, &c.columns));
        let fkeys = |c: &ConstraintDef| match &c.kind {
            ConstraintKind::ForeignKey { table, columns } => {
                Some(attnums(self.view, *table, columns))
            }
            _ => None,
        };
        let fk = |c: &ConstraintDef, v: &'static str| match c.kind {
            ConstraintKind::ForeignKey { .. } => v,
            _ => " ",
        };
        Cols::default()
            .oid("oid", rows.iter().map(|c| constraint_oid(c)).collect())
            .text("conname", rows.iter().map(|c| c.name.as_str()).collect())
            .oid(
                "connamespace",
                rows.iter()
                    .map(|c| table(c).map_or(0, |t| self.schema_oid(&t.schema)))
                    .collect(),
            )
            .text("contype", rows.iter().map(|c| c.contype()).collect())
            .bool("condeferrable", vec![false; n])
            .bool("condeferred", vec![false; n])
            .bool("convalidated", vec![true; n])
            .oid("conrelid", rows.iter().map(|c| c.table as u32).collect())
            .oid("contypid", vec![0; n])
            .oid(
                "conindid",
                rows.iter()
                    .map(|c| match &c.kind {
                        ConstraintKind::ForeignKey { table, columns } => self
                            .view
                            .constraints_of(*table)
                            .into_iter()
                            .find(|k| k.has_index() && k.columns == *columns)
                            .map_or(0, |k| index_oid(k)),
                        _ => index_oid(c),
                    })
                    .collect(),
            )
            .oid("conparentid", vec![0; n])
            .oid(
                "confrelid",
                rows.iter()
                    .map(|c| match &c.kind {
                        ConstraintKind::ForeignKey { table, .. } => *table as u32,
                        _ => 0,
                    })
                    .collect(),
            )
            .text("confupdtype", rows.iter().map(|c| fk(c, "a")).collect())
            .text("confdeltype", rows.iter().map(|c| fk(c, "a")).collect())
            .text("confmatchtype", rows.iter().map(|c| fk(c, "s")).collect())
            .bool("conislocal", vec![true; n])
            .int4("coninhcount", vec![0; n])
            .bool("connoinherit", vec![true; n])
            .push("conkey", int2_lists(rows.iter().map(|c| keys(c)).collect()))
            .push(
                "confkey",
                int2_lists(rows.iter().map(|c| fkeys(c)).collect()),
            )
            .text_nulls("conbin", n)
            .text_opt(
                "consrc",
                rows.iter()
                    .map(|c| Some(crate::constraints::definition(c, self.view)))
                    .collect(),
            )
            .batch()
    }

    /// The indexes of PRIMARY KEY and UNIQUE constraints.
    fn pg_index(&self) -> RecordBatch {
        let rows: Vec<&ConstraintDef> = self
            .view
            .constraints
            .values()
            .map(|c| c.as_ref())
            .filter(|c| c.has_index())
            .collect();
        let n = rows.len();
        let natts: Vec<i16> = rows.iter().map(|c| c.columns.len() as i16).collect();
        let per_key = |v: u32| {
            let items: Vec<Option<Vec<Option<u32>>>> = rows
                .iter()
                .map(|c| Some(vec![Some(v); c.columns.len()]))
                .collect();
            Arc::new(ListArray::from_iter_primitive::<UInt32Type, _, _>(items)) as ArrayRef
        };
        Cols::default()
            .oid("indexrelid", rows.iter().map(|c| index_oid(c)).collect())
            .oid("indrelid", rows.iter().map(|c| c.table as u32).collect())
            .int2("indnatts", natts.clone())
            .int2("indnkeyatts", natts)
            .bool("indisunique", vec![true; n])
            .bool("indnullsnotdistinct", vec![false; n])
            .bool(
                "indisprimary",
                rows.iter()
                    .map(|c| c.kind == ConstraintKind::PrimaryKey)
                    .collect(),
            )
            .bool("indisexclusion", vec![false; n])
            .bool("indimmediate", vec![true; n])
            .bool("indisclustered", vec![false; n])
            .bool("indisvalid", vec![true; n])
            .bool("indcheckxmin", vec![false; n])
            .bool("indisready", vec![true; n])
            .bool("indislive", vec![true; n])
            .bool("indisreplident", vec![false; n])
            .int2vector(
                "indkey",
                rows.iter()
                    .map(|c| Some(attnums(self.view, c.table, &c.columns)))
                    .collect(),
            )
            .push("indcollation", per_key(0))
            .push("indclass", per_key(0))
            .int2vector(
                "indoption",
                rows.iter()
                    .map(|c| Some(vec![0; c.columns.len()]))
                    .collect(),
            )
            .text_nulls("indexprs", n)
            .text_nulls("indpred", n)
            .batch()
    }
}

/// An `int2[]` / `int2vector` column.
fn int2_lists(v: Vec<Option<Vec<i16>>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Int16Type, _, _>(
        v.into_iter()
            .map(|l| l.map(|l| l.into_iter().map(Some).collect::<Vec<_>>())),
    ))
}

/// Basalt has no user-defined functions; `pg_proc` lists none, with the columns both old
/// (`proisagg`, `proiswindow`) and new (`prokind`) clients read.
fn pg_proc() -> RecordBatch {
    let e = || Vec::<String>::new();
    Cols::default()
        .oid("oid", vec![])
        .text("proname", e())
        .oid("pronamespace", vec![])
        .oid("proowner", vec![])
        .oid("prolang", vec![])
        .float4("procost", vec![])
        .float4("prorows", vec![])
        .oid("provariadic", vec![])
        .text("prokind", e())
        .bool("proisagg", vec![])
        .bool("proiswindow", vec![])
        .bool("prosecdef", vec![])
        .bool("proleakproof", vec![])
        .bool("proisstrict", vec![])
        .bool("proretset", vec![])
        .text("provolatile", e())
        .text("proparallel", e())
        .int2("pronargs", vec![])
        .int2("pronargdefaults", vec![])
        .oid("prorettype", vec![])
        .oid_list_nulls("proargtypes", 0)
        .oid_list_nulls("proallargtypes", 0)
        .text_list_nulls("proargmodes", 0)
        .text_list_nulls("proargnames", 0)
        .text("prosrc", e())
        .text("probin", e())
        .text_list_nulls("proconfig", 0)
        .text_list_nulls("proacl", 0)
        .batch()
}

fn pg_language() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![12, 13, 14])
        .text("lanname", vec!["internal", "c", "sql"])
        .oid("lanowner", vec![RDSDB.1; 3])
        .bool("lanispl", vec![false; 3])
        .bool("lanpltrusted", vec![false, false, true])
        .batch()
}

fn pg_collation() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![DEFAULT_COLLATION_OID, 950, 951])
        .text("collname", vec!["default", "C", "POSIX"])
        .oid("collnamespace", vec![PG_CATALOG_OID; 3])
        .oid("collowner", vec![RDSDB.1; 3])
        .text("collprovider", vec!["d", "c", "c"])
        .bool("collisdeterministic", vec![true; 3])
        .int4("collencoding", vec![-1; 3])
        .text_opt("collcollate", vec![None, Some("C"), Some("POSIX")])
        .text_opt("collctype", vec![None, Some("C"), Some("POSIX")])
        .batch()
}

/// Settings clients look up in `pg_settings` or with `current_setting()`.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("server_version", "8.0.2", "string"),
    ("server_encoding", "UNICODE", "string"),
    ("client_encoding", "UTF8", "string"),
    ("DateStyle", "ISO, MDY", "string"),
    ("TimeZone", "UTC", "string"),
    ("search_path", "$user, public", "string"),
    ("standard_conforming_strings", "on", "bool"),
    ("integer_datetimes", "on", "bool"),
    ("max_index_keys", "32", "integer"),
    ("max_identifier_length", "127", "integer"),
    ("default_table_access_method", "heap", "string"),
    ("transaction_isolation", "serializable", "string"),
];

fn pg_settings() -> RecordBatch {
    let n = SETTINGS.len();
    Cols::default()
        .text("name", SETTINGS.iter().map(|s| s.0).collect())
        .text("setting", SETTINGS.iter().map(|s| s.1).collect())
        .text_nulls("unit", n)
        .text("category", vec!["Client Connection Defaults"; n])
        .text("short_desc", vec![""; n])
        .text("context", vec!["user"; n])
        .text("vartype", SETTINGS.iter().map(|s| s.2).collect())
        .text("source", vec!["default"; n])
        .text("boot_val", SETTINGS.iter().map(|s| s.1).collect())
        .text("reset_val", SETTINGS.iter().map(|s| s.1).collect())
        .batch()
}

/// The columns of one catalog relation, built in order.
#[derive(Default)]
struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn push(mut self, name: &str, array: ArrayRef) -> Self {
        self.fields
            .push(Field::new(name, array.data_type().clone(), true));
        self.arrays.push(array);
        self
    }
    /// An `int2vector` column (`pg_index.indkey`): a list of int2 that clients read as
    /// space-separated text.
    fn int2vector(mut self, name: &str, v: Vec<Option<Vec<i16>>>) -> Self {
        let array = int2_lists(v);
        let metadata = [(
            basalt_worker::pgvalue::PG_TYPE_METADATA.to_string(),
            "int2vector".to_string(),
        )]
        .into_iter()
        .collect();
        self.fields
            .push(Field::new(name, array.data_type().clone(), true).with_metadata(metadata));
        self.arrays.push(array);
        self
    }
    /// OIDs are unsigned 32-bit, as in PostgreSQL.
    fn oid(self, name: &str, v: Vec<u32>) -> Self {
        self.push(name, Arc::new(UInt32Array::from(v)))
    }
    fn int2(self, name: &str, v: Vec<i16>) -> Self {
        self.push(name, Arc::new(Int16Array::from(v)))
    }
    fn int4(self, name: &str, v: Vec<i32>) -> Self {
        self.push(name, Arc::new(Int32Array::from(v)))
    }
    fn int4_opt(self, name: &str, v: Vec<Option<i32>>) -> Self {
        self.push(name, Arc::new(Int32Array::from(v)))
    }
    fn int8(self, name: &str, v: Vec<i64>) -> Self {
        self.push(name, Arc::new(Int64Array::from(v)))
    }
    fn float4(self, name: &str, v: Vec<f32>) -> Self {
        self.push(name, Arc::new(Float32Array::from(v)))
    }
    fn bool(self, name: &str, v: Vec<bool>) -> Self {
        self.push(name, Arc::new(BooleanArray::from(v)))
    }
    fn text<T: AsRef<str>>(self, name: &str, v: Vec<T>) -> Self {
        self.push(name, Arc::new(StringArray::from_iter_values(v)))
    }
    fn text_opt<T: AsRef<str>>(self, name: &str, v: Vec<Option<T>>) -> Self {
        self.push(name, Arc::new(StringArray::from_iter(v)))
    }
    fn text_nulls(self, name: &str, n: usize) -> Self {
        self.push(name, new_null_array(&DataType::Utf8, n))
    }
    /// An array-valued column whose every value is NULL (ACLs, options: Basalt has none).
    fn list_nulls(self, name: &str, item: DataType, n: usize) -> Self {
        let field = Arc::new(Field::new_list_field(item, true));
        self.push(name, new_null_array(&DataType::List(field), n))
    }
    fn text_list_nulls(self, name: &str, n: usize) -> Self {
        self.list_nulls(name, DataType::Utf8, n)
    }
    fn int4_list_nulls(self, name: &str, n: usize) -> Self {
        self.list_nulls(name, DataType::Int32, n)
    }
    fn oid_list_nulls(self, name: &str, n: usize) -> Self {
        self.list_nulls(name, DataType::UInt32, n)
    }
    fn batch(self) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
            .expect("catalog columns have equal lengths")
    }
}

// ---------------------------------------------------------------------------------------
// Functions

/// What the catalog functions of one statement know about its session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub user: String,
    /// `search_path` as set (`$user, public` by default).
    pub search_path: String,
    pub pid: i32,
}

static NEXT_PID: AtomicI32 = AtomicI32::new(1);

/// A process-unique number for a new session (`pg_backend_pid()`).
pub fn next_backend_pid() -> i32 {
    std::process::id() as i32 % 10_000 * 10_000 + NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

impl SessionInfo {
    /// The schemas of the search path that exist, in order (`$user` is the user's name).
    fn schemas(&self, view: &CatalogState) -> Vec<String> {
        self.search_path
            .split(',')
            .map(|s| s.trim().trim_matches('"').trim_matches('\''))
            .map(|s| if s == "$user" { self.user.as_str() } else { s })
            .filter(|s| view.schemas.contains(*s))
            .map(str::to_string)
            .collect()
    }
}

type Body = dyn Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync;

/// A catalog function: a name, the argument counts it takes (any types) and a body over
/// whole argument columns.
struct PgFn {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Arc<Body>,
}

impl std::fmt::Debug for PgFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for PgFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for PgFn {}

impl Hash for PgFn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        Ok(ColumnarValue::Array((self.body)(&arrays, rows)?))
    }
}

fn udf(
    name: &'static str,
    arities: &[usize],
    returns: DataType,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    // No arities: any number of arguments.
    let signature = if arities.is_empty() {
        Signature::variadic_any(Volatility::Stable)
    } else {
        let sigs = arities
            .iter()
            .map(|n| match n {
                0 => TypeSignature::Nullary,
                n => TypeSignature::Any(*n),
            })
            .collect();
        Signature::one_of(sigs, Volatility::Stable)
    };
    ScalarUDF::new_from_impl(PgFn {
        name,
        signature,
        returns,
        body: Arc::new(body),
    })
}

/// The list form of `information_schema._pg_expandarray(a)`, PostgreSQL's set-returning
/// function giving each element `x` of an array with its 1-based position `n`; a query's
/// call becomes `unnest(<this>(a))`. pgjdbc's getPrimaryKeys calls it on `pg_index.indkey`;
/// the arrays it is used with hold integers (attribute numbers), read here as int4.
const EXPANDARRAY: &str = "pg_expandarray_rows";

fn expanded_element_type() -> DataType {
    DataType::Struct(
        vec![
            Field::new("x", DataType::Int32, true),
            Field::new("n", DataType::Int32, false),
        ]
        .into(),
    )
}

fn expand_array(array: &ArrayRef) -> Result<ArrayRef> {
    let list_type = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
    let list = cast(array, &list_type)?;
    let list = list
        .as_any()
        .downcast_ref::<ListArray>()
        .expect("cast to a list");
    let offsets = list.offsets();
    let mut positions = vec![0i32; list.values().len()];
    for w in offsets.windows(2) {
        for (k, i) in (w[0] as usize..w[1] as usize).enumerate() {
            positions[i] = k as i32 + 1;
        }
    }
    let DataType::Struct(fields) = expanded_element_type() else {
        unreachable!("a struct type")
    };
    let rows = datafusion::arrow::array::StructArray::try_new(
        fields,
        vec![list.values().clone(), Arc::new(Int32Array::from(positions))],
        None,
    )?;
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(expanded_element_type(), true)),
        offsets.clone(),
        Arc::new(rows),
        list.nulls().cloned(),
    )?))
}

/// Argument `i` as Int64 / Utf8 values (NULL where absent or not convertible).
fn ints(args: &[ArrayRef], i: usize, rows: usize) -> Result<Vec<Option<i64>>> {
    let Some(a) = args.get(i) else {
        return Ok(vec![None; rows]);
    };
    let a = cast(a, &DataType::Int64)?;
    let a = a
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("cast to Int64");
    Ok(a.iter().collect())
}

fn strs(args: &[ArrayRef], i: usize, rows: usize) -> Result<Vec<Option<String>>> {
    let Some(a) = args.get(i) else {
        return Ok(vec![None; rows]);
    };
    let a = cast(a, &DataType::Utf8)?;
    let a = a
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8");
    Ok(a.iter().map(|s| s.map(str::to_string)).collect())
}

/// A one-argument function naming an integer code (NULL stays NULL).
fn code_name(name: &'static str, name_of: fn(i64) -> &'static str) -> ScalarUDF {
    udf(name, &[1], DataType::Utf8, move |args, rows| {
        Ok(text_array(
            ints(args, 0, rows)?
                .into_iter()
                .map(|e| e.map(|e| name_of(e).to_string()))
                .collect(),
        ))
    })
}

fn text_array(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn sql_error(e: crate::error::LeaderError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Register the catalog functions for one statement over `view`.
pub fn register_functions(
    state: &mut SessionState,
    view: Arc<CatalogState>,
    session: SessionInfo,
    system: Arc<crate::system::SystemTables>,
) -> Result<()> {
    let session = Arc::new(session);
    let mut fns: Vec<ScalarUDF> = vec![];
    let constant = |name: &'static str, value: ScalarValue| {
        let dt = value.data_type();
        udf(name, &[0], dt, move |_, rows| value.to_array_of_size(rows))
    };
    fns.push(constant(
        "current_database",
        ScalarValue::Utf8(Some(DATABASE.into())),
    ));
    for name in ["current_user", "session_user", "user"] {
        fns.push(constant(
            name,
            ScalarValue::Utf8(Some(session.user.clone())),
        ));
    }
    fns.push(constant(
        "pg_backend_pid",
        ScalarValue::Int32(Some(session.pid)),
    ));
    let path = session.schemas(&view);
    fns.push(constant(
        "current_schema",
        ScalarValue::Utf8(path.first().cloned()),
    ));
    {
        let path = path.clone();
        fns.push(udf(
            "current_schemas",
            &[1],
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            move |args, rows| {
                let implicit = args[0]
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .map(|b| b.iter().collect::<Vec<_>>())
                    .unwrap_or_else(|| vec![Some(false); rows]);
                let mut values: Vec<String> = vec![];
                let mut offsets = vec![0i32];
                for implicit in implicit {
                    if implicit == Some(true) {
                        values.push("pg_catalog".into());
                    }
                    values.extend(path.iter().cloned());
                    offsets.push(values.len() as i32);
                }
                Ok(Arc::new(ListArray::new(
                    Arc::new(Field::new_list_field(DataType::Utf8, true)),
                    OffsetBuffer::new(offsets.into()),
                    Arc::new(StringArray::from(values)),
                    None,
                )))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "pg_get_userbyid",
            &[1],
            DataType::Utf8,
            move |args, rows| {
                let users: Vec<(String, u32)> = std::iter::once((RDSDB.0.to_string(), RDSDB.1))
                    .chain(view.users.keys().map(|u| (u.clone(), user_oid(u))))
                    .collect();
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .map(|id| {
                            id.map(|id| {
                                users
                                    .iter()
                                    .find(|u| i64::from(u.1) == id)
                                    .map_or_else(|| format!("unknown (OID={id})"), |u| u.0.clone())
                            })
                        })
                        .collect(),
                ))
            },
        ));
    }
    {
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "pg_table_is_visible",
            &[1],
            DataType::Boolean,
            move |args, rows| {
                let out: BooleanArray = ints(args, 0, rows)?
                    .into_iter()
                    .map(|oid| {
                        let oid = oid?;
                        if RELATIONS.iter().any(|r| i64::from(r.1) == oid) {
                            return Some(true);
                        }
                        let (schema, name) = view
                            .tables
                            .values()
                            .find(|t| i64::from(table_oid(t)) == oid)
                            .map(|t| (&t.schema, &t.name))
                            .or_else(|| {
                                view.views
                                    .values()
                                    .find(|v| i64::from(view_oid(v)) == oid)
                                    .map(|v| (&v.schema, &v.name))
                            })?;
                        // Visible when its schema is the first on the path with that name.
                        let first = path.iter().find(|s| view.relation(s, name).is_some());
                        Some(first == Some(schema))
                    })
                    .collect();
                Ok(Arc::new(out))
            },
        ));
    }
    for name in [
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
    ] {
        fns.push(udf(name, &[1], DataType::Boolean, |args, _| {
            let out: BooleanArray = (0..args[0].len())
                .map(|i| (!args[0].is_null(i)).then_some(true))
                .collect();
            Ok(Arc::new(out))
        }));
    }
    fns.push(udf("format_type", &[2], DataType::Utf8, |args, rows| {
        let oids = ints(args, 0, rows)?;
        let mods = ints(args, 1, rows)?;
        Ok(text_array(
            oids.into_iter()
                .zip(mods)
                .map(|(oid, m)| oid.map(|oid| format_type(oid as u32, m.unwrap_or(-1) as i32)))
                .collect(),
        ))
    }));
    // `adbin`, `indpred`, … hold the expression's text already.
    fns.push(udf("pg_get_expr", &[2, 3], DataType::Utf8, |args, rows| {
        Ok(text_array(strs(args, 0, rows)?))
    }));
    {
        // `obj_description(oid [, catalog])`: only relations (pg_class) have comments.
        let view = view.clone();
        fns.push(udf(
            "obj_description",
            &[1, 2],
            DataType::Utf8,
            move |args, rows| {
                let catalogs = if args.len() == 2 {
                    strs(args, 1, rows)?
                } else {
                    vec![Some("pg_class".into()); rows]
                };
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .zip(catalogs)
                        .map(|(oid, catalog)| {
                            let oid = u64::try_from(oid?).ok()?;
                            (catalog.as_deref() == Some("pg_class"))
                                .then(|| view.comments.get(&(oid, 0)).cloned())
                                .flatten()
                        })
                        .collect(),
                ))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "col_description",
            &[2],
            DataType::Utf8,
            move |args, rows| {
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .zip(ints(args, 1, rows)?)
                        .map(|(oid, column)| {
                            let key = (u64::try_from(oid?).ok()?, u32::try_from(column?).ok()?);
                            view.comments.get(&key).cloned()
                        })
                        .collect(),
                ))
            },
        ));
    }
    {
        // `pg_get_viewdef(oid | name [, pretty])`.
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "pg_get_viewdef",
            &[1, 2],
            DataType::Utf8,
            move |args, rows| {
                let oids: Vec<Option<i64>> = if args[0].data_type().is_integer() {
                    ints(args, 0, rows)?
                } else {
                    strs(args, 0, rows)?
                        .into_iter()
                        .map(|n| {
                            n.map(|n| resolve_relation(&view, &path, &n).map(i64::from))
                                .transpose()
                        })
                        .collect::<crate::error::Result<_>>()
                        .map_err(sql_error)?
                };
                Ok(text_array(
                    oids.into_iter()
                        .map(|oid| {
                            let oid = u64::try_from(oid?).ok()?;
                            view.views.get(&oid).map(|v| v.definition())
                        })
                        .collect(),
                ))
            },
        ));
    }
    // `pg_get_constraintdef(oid [, pretty])` and `pg_get_indexdef(oid [, column, pretty])`
    // (column 0: the whole CREATE INDEX; column k: the k-th key column's name).
    for (name, index) in [("pg_get_constraintdef", false), ("pg_get_indexdef", true)] {
        let view = view.clone();
        let arities: &[usize] = if index { &[1, 3] } else { &[1, 2] };
        fns.push(udf(name, arities, DataType::Utf8, move |args, rows| {
            let oids = ints(args, 0, rows)?;
            let column = if index && args.len() == 3 {
                ints(args, 1, rows)?
            } else {
                vec![Some(0); rows]
            };
            Ok(text_array(
                oids.into_iter()
                    .zip(column)
                    .map(|(oid, column)| {
                        let c = constraint_by_oid(&view, u32::try_from(oid?).ok()?, index)?;
                        if !index {
                            return Some(crate::constraints::definition(c, &view));
                        }
                        match column? {
                            0 => Some(crate::constraints::index_definition(c, &view)),
                            k => {
                                let stored = c.columns.get(usize::try_from(k - 1).ok()?)?;
                                view.tables
                                    .get(&c.table)?
                                    .columns
                                    .iter()
                                    .find(|col| &col.stored == stored)
                                    .map(|col| col.name.clone())
                            }
                        }
                    })
                    .collect(),
            ))
        }));
    }
    // Basalt keeps no shared-object comments or functions: these describe nothing and
    // answer NULL, as PostgreSQL does for an object without one.
    for (name, arities) in [
        ("shobj_description", &[2usize][..]),
        ("pg_get_function_result", &[1][..]),
        ("pg_get_function_arguments", &[1][..]),
        ("pg_get_serial_sequence", &[2][..]),
    ] {
        fns.push(udf(name, arities, DataType::Utf8, |_, rows| {
            Ok(new_null_array(&DataType::Utf8, rows))
        }));
    }
    fns.push(udf(
        "pg_tablespace_location",
        &[1],
        DataType::Utf8,
        |_, rows| Ok(text_array(vec![Some(String::new()); rows])),
    ));
    // `format_encoding(attencodingtype)`: the encoding's name, 'none' for RAW as Redshift
    // prints it (sqlalchemy-redshift's column reflection reads it).
    fns.push(code_name("format_encoding", |e| match e {
        0 => "none",
        e => usize::try_from(e)
            .ok()
            .and_then(|e| ENCODINGS.get(e))
            .copied()
            .unwrap_or(""),
    }));
    fns.push(code_name("pg_encoding_to_char", |e| match e {
        0 => "SQL_ASCII",
        6 => "UTF8",
        _ => "",
    }));
    // Basalt has no GRANT yet: every user may use every object that exists.
    {
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "has_table_privilege",
            &[2, 3],
            DataType::Boolean,
            move |args, rows| {
                let rel = if args.len() == 3 { 1 } else { 0 };
                let names = strs(args, rel, rows)?;
                let oids = ints(args, rel, rows).unwrap_or_else(|_| vec![None; rows]);
                let mut out = Vec::with_capacity(rows);
                for (name, oid) in names.into_iter().zip(oids) {
                    let Some(name) = name else {
                        out.push(None);
                        continue;
                    };
                    let system_table = system.exists(&name.to_lowercase());
                    if oid.is_none() && !system_table {
                        resolve_relation(&view, &path, &name).map_err(sql_error)?;
                    }
                    out.push(Some(true));
                }
                Ok(Arc::new(BooleanArray::from(out)))
            },
        ));
    }
    for name in ["has_schema_privilege", "has_database_privilege"] {
        fns.push(udf(name, &[2, 3], DataType::Boolean, |args, rows| {
            let out: BooleanArray = (0..rows)
                .map(|i| args.iter().all(|a| !a.is_null(i)).then_some(true))
                .collect();
            Ok(Arc::new(out))
        }));
    }
    {
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "regclass_oid",
            &[1],
            DataType::UInt32,
            move |args, rows| {
                if args[0].data_type().is_integer() {
                    return cast(&args[0], &DataType::UInt32).map_err(Into::into);
                }
                let mut out = Vec::with_capacity(rows);
                for name in strs(args, 0, rows)? {
                    out.push(match name {
                        None => None,
                        Some(n) => Some(resolve_relation(&view, &path, &n).map_err(sql_error)?),
                    });
                }
                Ok(Arc::new(UInt32Array::from(out)))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "regclass_name",
            &[1],
            DataType::Utf8,
            move |args, rows| {
                let cat = Snapshot::new(&view);
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .map(|oid| {
                            let oid = oid?;
                            let name = RELATIONS
                                .iter()
                                .find(|r| i64::from(r.1) == oid)
                                .map(|r| r.0.to_string())
                                .or_else(|| {
                                    cat.relations()
                                        .find(|r| r.0 as i64 == oid)
                                        .map(|r| r.2.to_string())
                                });
                            Some(name.unwrap_or_else(|| oid.to_string()))
                        })
                        .collect(),
                ))
            },
        ));
    }
    fns.push(udf("regtype_oid", &[1], DataType::UInt32, |args, rows| {
        if args[0].data_type().is_integer() {
            return cast(&args[0], &DataType::UInt32).map_err(Into::into);
        }
        let mut out = Vec::with_capacity(rows);
        for name in strs(args, 0, rows)? {
            out.push(match name {
                None => None,
                Some(n) => Some(resolve_type(&n).map_err(sql_error)?),
            });
        }
        Ok(Arc::new(UInt32Array::from(out)))
    }));
    let search_path = session.search_path.clone();
    fns.push(udf(
        "current_setting",
        &[1, 2],
        DataType::Utf8,
        move |args, rows| {
            let mut out = Vec::with_capacity(rows);
            for name in strs(args, 0, rows)? {
                out.push(match name {
                    None => None,
                    // The search path is the session's own; the rest are fixed.
                    Some(n) if n.eq_ignore_ascii_case("search_path") => Some(search_path.clone()),
                    Some(n) => Some(
                        SETTINGS
                            .iter()
                            .find(|s| s.0.eq_ignore_ascii_case(&n))
                            .map(|s| s.1.to_string())
                            .ok_or_else(|| {
                                sql_error(sql_err!(
                                    code::UNDEFINED_OBJECT,
                                    "unrecognized configuration parameter \"{n}\""
                                ))
                            })?,
                    ),
                });
            }
            Ok(text_array(out))
        },
    ));
    {
        let view = view.clone();
        fns.push(udf(
            "pg_table_size",
            &[1],
            DataType::Int64,
            move |args, rows| {
                let out: Int64Array = ints(args, 0, rows)?
                    .into_iter()
                    .map(|oid| {
                        let oid = oid?;
                        Some(
                            view.tables
                                .values()
                                .find(|t| i64::from(table_oid(t)) == oid)
                                .map_or(0, |t| t.segments.iter().map(|s| s.bytes as i64).sum()),
                        )
                    })
                    .collect();
                Ok(Arc::new(out))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "pg_database_size",
            &[1],
            DataType::Int64,
            move |_, rows| {
                let total: u64 = view
                    .tables
                    .values()
                    .flat_map(|t| t.segments.iter().map(|s| s.bytes))
                    .sum();
                Ok(Arc::new(Int64Array::from(vec![total as i64; rows])))
            },
        ));
    }
    fns.push(udf(
        "prefix_elements",
        &[2],
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        |args, rows| {
            let prefixes = strs(args, 1, rows)?;
            let list = cast(
                &args[0],
                &DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            )?;
            let list = list
                .as_any()
                .downcast_ref::<ListArray>()
                .expect("cast to List");
            let mut values: Vec<Option<String>> = vec![];
            let mut offsets = vec![0i32];
            for (row, prefix) in prefixes.iter().enumerate() {
                if !list.is_null(row) {
                    let items = list.value(row);
                    let items = items
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("Utf8 items");
                    values.extend(
                        items
                            .iter()
                            .map(|v| v.zip(prefix.as_deref()).map(|(v, p)| format!("{p}{v}"))),
                    );
                }
                offsets.push(values.len() as i32);
            }
            Ok(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(DataType::Utf8, true)),
                OffsetBuffer::new(offsets.into()),
                Arc::new(StringArray::from(values)),
                None,
            )))
        },
    ));
    fns.push(udf(
        "json_build_object",
        &[],
        DataType::Utf8,
        |args, rows| {
            if args.len() % 2 != 0 {
                return Err(sql_error(sql_err!(
                    code::INVALID_PARAMETER_VALUE,
                    "argument list must have even number of elements"
                )));
            }
            let texts = (0..args.len())
                .map(|i| strs(args, i, rows))
                .collect::<Result<Vec<_>>>()?;
            let mut objects = vec![serde_json::Map::new(); rows];
            for pair in (0..args.len()).step_by(2) {
                let values = texts[pair].iter().zip(&texts[pair + 1]);
                for (object, (key, value)) in objects.iter_mut().zip(values) {
                    let key = key.clone().ok_or_else(|| {
                        sql_error(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "argument {} cannot be null",
                            pair + 1
                        ))
                    })?;
                    let value = match (value, args[pair + 1].data_type()) {
                        (None, _) => serde_json::Value::Null,
                        (Some(v), DataType::Boolean) => serde_json::Value::Bool(v == "true"),
                        (Some(v), t) if t.is_numeric() => {
                            serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.clone()))
                        }
                        (Some(v), _) => serde_json::Value::String(v.clone()),
                    };
                    object.insert(key, value);
                }
            }
            let out = objects
                .into_iter()
                .map(|o| Some(serde_json::Value::Object(o).to_string()))
                .collect();
            Ok(text_array(out))
        },
    ));
    fns.push(udf(
        EXPANDARRAY,
        &[1],
        DataType::List(Arc::new(Field::new_list_field(
            expanded_element_type(),
            true,
        ))),
        |args, _| expand_array(&args[0]),
    ));
    fns.push(udf("pg_size_pretty", &[1], DataType::Utf8, |args, rows| {
        Ok(text_array(
            ints(args, 0, rows)?
                .into_iter()
                .map(|b| b.map(size_pretty))
                .collect(),
        ))
    }));
    for f in fns {
        state.register_udf(Arc::new(f))?;
    }
    Ok(())
}

/// The OID of relation `name` (`rel` or `schema.rel`, either part quoted), looked up on
/// the search path like PostgreSQL's `regclass` input.
fn resolve_relation(view: &CatalogState, path: &[String], name: &str) -> crate::error::Result<u32> {
    let parts: Vec<String> = name
        .split('.')
        .map(|p| {
            if p.starts_with('"') {
                p.trim_matches('"').to_string()
            } else {
                p.to_lowercase()
            }
        })
        .collect();
    let (schema, rel) = match parts.as_slice() {
        [r] => (None, r.as_str()),
        [s, r] => (Some(s.as_str()), r.as_str()),
        _ => {
            return Err(sql_err!(
                code::INVALID_PARAMETER_VALUE,
                "invalid name syntax"
            ));
        }
    };
    let catalog = || RELATIONS.iter().find(|r| r.0 == rel).map(|r| r.1);
    let found = match schema {
        Some("pg_catalog") => catalog(),
        Some(s) => view.relation(s, rel).map(|r| r.id() as u32),
        None => catalog().or_else(|| {
            path.iter()
                .find_map(|s| view.relation(s, rel).map(|r| r.id() as u32))
        }),
    };
    found.ok_or_else(|| sql_err!(code::UNDEFINED_TABLE, "relation \"{name}\" does not exist"))
}

/// The OID of type `name` as `regtype` input accepts it.
fn resolve_type(name: &str) -> crate::error::Result<u32> {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
    let oid = match SqlType::parse(n) {
        Ok(t) => Some(t.pg_type().oid()),
        Err(_) => TYPES
            .iter()
            .copied()
            .find(|o| Type::from_oid(*o).is_some_and(|t| t.name() == n)),
    };
    oid.ok_or_else(|| sql_err!(code::UNDEFINED_OBJECT, "type \"{name}\" does not exist"))
}

/// PostgreSQL's `format_type(oid, typmod)`: the types Basalt stores are named by
/// [`SqlType::display_name`], with their modifier when one is given.
pub fn format_type(oid: u32, typmod: i32) -> String {
    let m = (typmod >= 4).then(|| typmod - 4);
    let stored = match oid {
        21 => Some(SqlType::SmallInt),
        23 => Some(SqlType::Integer),
        20 => Some(SqlType::BigInt),
        700 => Some(SqlType::Real),
        701 => Some(SqlType::Double),
        16 => Some(SqlType::Boolean),
        1082 => Some(SqlType::Date),
        1114 => Some(SqlType::Timestamp),
        1184 => Some(SqlType::Timestamptz),
        1083 => Some(SqlType::Time),
        1042 => m.map(|n| SqlType::Char(n as u32)),
        1043 => m.map(|n| SqlType::Varchar(n as u32)),
        crate::sql::types::VARBYTE_OID => m.map(|n| SqlType::Varbyte(n as u32)),
        1700 => m.map(|m| SqlType::Decimal {
            precision: (m >> 16) as u8,
            scale: (m & 0xffff) as i8,
        }),
        _ => None,
    };
    if let Some(t) = stored {
        return t.display_name();
    }
    match oid {
        1042 => "character".into(),
        1043 => "character varying".into(),
        1700 => "numeric".into(),
        crate::sql::types::VARBYTE_OID => "varbyte".into(),
        _ => match Type::from_oid(oid) {
            Some(t) => match t.kind() {
                postgres_types::Kind::Array(e) => format!("{}[]", format_type(e.oid(), typmod)),
                _ => t.name().to_string(),
            },
            None => "???".into(),
        },
    }
}

/// PostgreSQL's `pg_size_pretty(bigint)`.
fn size_pretty(bytes: i64) -> String {
    let mut size = bytes;
    // Each unit is used while the value is below 10240 of it, rounding half up.
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if size.abs() < 10 * 1024 || unit == "TB" {
            return format!("{size} {unit}");
        }
        let next = size / 512;
        size = (next + next.signum()) / 2;
    }
    unreachable!("TB ends the loop")
}

// ---------------------------------------------------------------------------------------
// Rewrite

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "bool_and",
    "bool_or",
    "string_agg",
    "listagg",
    "first_value",
    "last_value",
];

fn func_name(f: &sql::Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_default()
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(sql::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sql::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// The PostgreSQL type a cast names, when it is one DataFusion does not know.
fn pg_only_type(t: &SqlDataType) -> Option<String> {
    match t {
        SqlDataType::Regclass => Some("regclass".into()),
        SqlDataType::Custom(name, _) => name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_lowercase())
            .filter(|n| {
                matches!(
                    n.as_str(),
                    "regclass" | "regtype" | "regproc" | "oid" | "name" | "char" | "text"
                )
            }),
        _ => None,
    }
}

fn is_text_type(t: &SqlDataType) -> bool {
    matches!(
        t,
        SqlDataType::Text | SqlDataType::Varchar(_) | SqlDataType::CharacterVarying(_)
    ) || pg_only_type(t).is_some_and(|n| n == "text" || n == "name")
}

/// Rewrite what PostgreSQL clients send into what DataFusion plans with the functions of
/// [`register_functions`]:
/// - `pg_catalog.f(…)` calls `f` (DataFusion looks qualified names up whole);
/// - `x::regclass` / `::regtype` become `regclass_oid(x)` / `regtype_oid(x)`, and their
///   text (`::regclass::text`) `regclass_name(…)` / `format_type(…, NULL)`; `::regproc`
///   is the procedure's name without `pg_catalog.`; `::oid`, `::name` and `::"char"`
///   become BIGINT or TEXT casts;
/// - `array_upper(a, 1)` is `array_length(a, 1)`;
/// - `generate_subscripts(a, 1)` is `unnest(range(1, cardinality(a) + 1))`;
/// - `(array)[i]`, which the Redshift dialect reads as SUPER navigation, is
///   `array_element(array, i)`;
/// - `LIKE … ESCAPE 'c'` with a literal pattern is re-escaped with `\`;
/// - `COLLATE …` is dropped (Basalt compares bytes, like the C collation);
/// - `current_user`, `session_user` and `user` without parentheses are calls;
/// - `ARRAY(SELECT x …)` becomes `coalesce((SELECT array_agg(x) …), make_array())`;
/// - a scalar subquery of one plain column gets `first_value(…)`: DataFusion plans a
///   correlated scalar subquery only over an aggregate, and catalog queries (`\d`) use
///   ones that match at most one row.
pub fn rewrite(stmt: &mut Statement) {
    if !matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    ) {
        return;
    }
    let _ = visit_expressions_mut(stmt, |e| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
    let _ = sql::VisitMut::visit(stmt, &mut ScalarFunctionsInFrom);
}

/// Session functions clients call in FROM (`select current_database as table_cat from
/// current_database()`, redshift_connector's `get_catalogs`).
const FROM_FUNCTIONS: &[&str] = &[
    "current_database",
    "current_schema",
    "current_user",
    "session_user",
    "version",
    "pg_backend_pid",
];

/// Redshift's record-returning function listing the columns of late-binding views,
/// called with a column definition list (`… cols(view_schema name, …)`).
const LATE_BINDING_VIEW_COLUMNS: &str = "pg_get_late_binding_view_cols";

/// `FROM f()` for a scalar function `f`: PostgreSQL makes it a one-row relation with
/// one column named `f`; here it becomes `(SELECT f() AS f) AS f`. And
/// `FROM pg_get_late_binding_view_cols() cols(c type, …)` becomes an empty relation of
/// those columns.
struct ScalarFunctionsInFrom;

impl sql::VisitorMut for ScalarFunctionsInFrom {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut sql::TableFactor) -> ControlFlow<()> {
        let sql::TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let Some(function) = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_lowercase())
        else {
            return ControlFlow::Continue(());
        };
        let text = if function == LATE_BINDING_VIEW_COLUMNS {
            // The relation of late-binding view columns, its five columns renamed (and
            // cast) as the caller's column definition list says.
            let Some(columns) = alias.as_ref().map(|a| &a.columns).filter(|c| !c.is_empty()) else {
                return ControlFlow::Continue(());
            };
            let source = crate::views::late_binding_columns_schema();
            let columns: Vec<String> = columns
                .iter()
                .zip(source.fields())
                .map(|(c, f)| {
                    let ty = match &c.data_type {
                        Some(t) if pg_only_type(t).is_none() => t.to_string(),
                        _ => "TEXT".into(),
                    };
                    format!("CAST({} AS {ty}) AS {}", f.name(), c.name)
                })
                .collect();
            format!(
                "SELECT {} FROM {}",
                columns.join(", "),
                crate::views::LATE_BINDING_COLUMNS_RELATION
            )
        } else if FROM_FUNCTIONS.contains(&function.as_str()) {
            format!(
                "SELECT {function}({}) AS {function}",
                display_args(&args.args)
            )
        } else {
            return ControlFlow::Continue(());
        };
        let Ok(mut parsed) = crate::sql::parse::parse_sql(&text) else {
            return ControlFlow::Continue(());
        };
        let Some((Statement::Query(subquery), _)) = parsed.pop() else {
            return ControlFlow::Continue(());
        };
        let alias = alias.clone().map(|mut a| {
            a.columns.clear();
            a
        });
        let alias = alias.unwrap_or(sql::TableAlias {
            explicit: true,
            name: Ident::new(&function),
            columns: vec![],
            at: None,
        });
        *factor = sql::TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

fn display_args(args: &[FunctionArg]) -> String {
    args.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn rewrite_expr(e: &mut Expr) {
    match e {
        Expr::Function(f) => {
            if f.name.0.len() == 2
                && f.name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"))
            {
                f.name.0.remove(0);
            }
            if f.name.0.len() == 2
                && f.name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("information_schema"))
                && f.name.0[1]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("_pg_expandarray"))
                && let FunctionArguments::List(list) = &f.args
                && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(arr))] = list.args.as_slice()
            {
                *e = call("unnest", vec![call(EXPANDARRAY, vec![arr.clone()])]);
                return;
            }
            let name = func_name(f);
            if name == "array"
                && let FunctionArguments::Subquery(q) = &f.args
            {
                if let Some(mapped) = prefix_each_element(q) {
                    *e = mapped;
                    return;
                }
                let mut q = q.clone();
                // No rows make an empty array, not NULL.
                if wrap_projection(&mut q, "array_agg") {
                    *e = call(
                        "coalesce",
                        vec![Expr::Subquery(q), call("make_array", vec![])],
                    );
                }
            } else if name == "generate_subscripts"
                && let FunctionArguments::List(list) = &f.args
                && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arr))) = list.args.first()
            {
                // One subscript per element, from 1: unnest(range(1, cardinality + 1)).
                let upper = Expr::BinaryOp {
                    left: Box::new(Expr::Cast {
                        kind: sql::CastKind::Cast,
                        expr: Box::new(call("cardinality", vec![arr.clone()])),
                        data_type: SqlDataType::BigInt(None),
                        array: false,
                        format: None,
                    }),
                    op: sql::BinaryOperator::Plus,
                    right: Box::new(Expr::value(sql::Value::Number("1".into(), false))),
                };
                *e = call(
                    "unnest",
                    vec![call(
                        "range",
                        vec![Expr::value(sql::Value::Number("1".into(), false)), upper],
                    )],
                );
            } else if name == "array_upper" {
                // Basalt's arrays are one-dimensional and start at 1.
                f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("array_length"))]);
            } else if matches!(f.args, FunctionArguments::None)
                && matches!(name.as_str(), "current_user" | "session_user" | "user")
            {
                *e = call(&name, vec![]);
            }
        }
        Expr::Identifier(id)
            if id.quote_style.is_none()
                && matches!(
                    id.value.to_lowercase().as_str(),
                    "current_user" | "session_user" | "user"
                ) =>
        {
            *e = call(&id.value.to_lowercase(), vec![]);
        }
        Expr::Collate { expr, .. } => *e = (**expr).clone(),
        // PostgreSQL's field of a composite value, `(expr).field` (pgjdbc's
        // `(information_schema._pg_expandarray(i.indkey)).n`): DataFusion's `get_field`.
        Expr::CompoundFieldAccess { root, access_chain }
            if matches!(root.as_ref(), Expr::Nested(_))
                && access_chain
                    .iter()
                    .all(|a| matches!(a, sql::AccessExpr::Dot(Expr::Identifier(_)))) =>
        {
            let mut out = (**root).clone();
            for access in access_chain.iter() {
                if let sql::AccessExpr::Dot(Expr::Identifier(field)) = access {
                    let name = crate::sql::names::ident_name(field);
                    out = call(
                        "get_field",
                        vec![out, Expr::value(sql::Value::SingleQuotedString(name))],
                    );
                }
            }
            *e = out;
        }
        // The Redshift dialect reads `(current_schemas(true))[1]` as SUPER navigation;
        // on an array it is PostgreSQL's 1-based subscript.
        Expr::JsonAccess { value, path }
            if path
                .path
                .iter()
                .all(|p| matches!(p, sql::JsonPathElem::Bracket { .. })) =>
        {
            let mut out = (**value).clone();
            for p in &path.path {
                if let sql::JsonPathElem::Bracket { key } = p {
                    out = call("array_element", vec![out, key.clone()]);
                }
            }
            *e = out;
        }
        Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } => {
            // DataFusion takes only `\` as the escape character: a pattern written with
            // another one (SQLAlchemy's `ESCAPE '/'`, also on `$1 || '%'`) is re-escaped
            // by a function (folded away when the pattern is a constant).
            let escape = escape_char.as_ref().and_then(|v| match &v.value {
                sql::Value::SingleQuotedString(c) if c.chars().count() == 1 => c.chars().next(),
                _ => None,
            });
            if let Some(escape) = escape.filter(|c| *c != '\\') {
                **pattern = call(
                    basalt_worker::functions::LIKE_ESCAPE,
                    vec![
                        (**pattern).clone(),
                        Expr::value(sql::Value::SingleQuotedString(escape.to_string())),
                    ],
                );
                *escape_char = None;
            }
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            if is_text_type(data_type)
                && let Expr::Function(inner) = expr.as_ref()
            {
                let inner_name = func_name(inner);
                {
                    let inner_call = Expr::Function(inner.clone());
                    match inner_name.as_str() {
                        "regclass_oid" => {
                            *e = call("regclass_name", vec![inner_call]);
                            return;
                        }
                        "regtype_oid" => {
                            *e = call(
                                "format_type",
                                vec![inner_call, Expr::value(sql::Value::Null)],
                            );
                            return;
                        }
                        _ => {}
                    }
                }
            }
            // Redshift's VARBYTE is DataFusion's binary.
            let varbyte = match data_type {
                SqlDataType::Varbinary(_) => true,
                SqlDataType::Custom(name, _) => {
                    name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
                        i.value.eq_ignore_ascii_case("varbyte")
                            || i.value.eq_ignore_ascii_case("varbinary")
                    })
                }
                _ => false,
            };
            if varbyte {
                *data_type = SqlDataType::Bytea;
                return;
            }
            let Some(ty) = pg_only_type(data_type) else {
                return;
            };
            let x = (**expr).clone();
            *e = match ty.as_str() {
                "regclass" => call("regclass_oid", vec![x]),
                "regtype" => call("regtype_oid", vec![x]),
                // `typinput = 'pg_catalog.array_in'::regproc`: procedures compare by name.
                "regproc" => call(
                    "regexp_replace",
                    vec![
                        Expr::Cast {
                            kind: sql::CastKind::Cast,
                            expr: Box::new(x),
                            data_type: SqlDataType::Text,
                            array: false,
                            format: None,
                        },
                        Expr::value(sql::Value::SingleQuotedString("^pg_catalog\\.".into())),
                        Expr::value(sql::Value::SingleQuotedString(String::new())),
                    ],
                ),
                "oid" => Expr::Cast {
                    kind: sql::CastKind::Cast,
                    expr: Box::new(x),
                    data_type: SqlDataType::BigInt(None),
                    array: false,
                    format: None,
                },
                _ => Expr::Cast {
                    kind: sql::CastKind::Cast,
                    expr: Box::new(x),
                    data_type: SqlDataType::Text,
                    array: false,
                    format: None,
                },
            };
        }
        Expr::Subquery(q) => {
            if let Some(lifted) = lift_correlated_conditions(q) {
                *e = lifted;
            } else {
                wrap_projection(q, "first_value");
            }
        }
        _ => {}
    }
}

/// Wrap the single plain select item of `q` in aggregate `agg`; false when `q` is not a
/// simple `SELECT x FROM … [WHERE …]` (grouped, limited, distinct or already aggregated).
fn wrap_projection(q: &mut sql::Query, agg: &str) -> bool {
    if q.limit_clause.is_some() || q.order_by.is_some() || q.with.is_some() {
        return false;
    }
    let SetExpr::Select(select) = q.body.as_mut() else {
        return false;
    };
    let grouped = !matches!(&select.group_by, sql::GroupByExpr::Expressions(g, _) if g.is_empty());
    if select.projection.len() != 1
        || grouped
        || select.having.is_some()
        || select.distinct.is_some()
    {
        return false;
    }
    let (expr, alias) = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) => (e.clone(), None),
        SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
        _ => return false,
    };
    let mut aggregated = false;
    let _ = sql::visit_expressions(&expr, |x| {
        if let Expr::Function(f) = x
            && (AGGREGATES.contains(&func_name(f).as_str()) || f.over.is_some())
        {
            aggregated = true;
        }
        ControlFlow::<()>::Continue(())
    });
    if aggregated {
        return false;
    }
    let wrapped = call(agg, vec![expr]);
    select.projection[0] = match alias {
        Some(alias) => SelectItem::ExprWithAlias {
            expr: wrapped,
            alias,
        },
        None => SelectItem::UnnamedExpr(wrapped),
    };
    true
}

/// `ARRAY(SELECT 'p' || x FROM unnest(arr) x)` (psql's `\\d+` builds its options list
/// so) is `prefix_elements(arr, 'p')`: DataFusion cannot run a subquery per row over an
/// outer array.
fn prefix_each_element(q: &sql::Query) -> Option<Expr> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if select.from.len() != 1 || !select.from[0].joins.is_empty() || select.selection.is_some() {
        return None;
    }
    let sql::TableFactor::Table {
        name,
        args: Some(args),
        alias: Some(alias),
        ..
    } = &select.from[0].relation
    else {
        return None;
    };
    let is_unnest = name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .is_some_and(|i| i.value.eq_ignore_ascii_case("unnest"));
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] = args.args.as_slice() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(Expr::BinaryOp { left, op, right })] =
        select.projection.as_slice()
    else {
        return None;
    };
    let element_is_alias =
        matches!(right.as_ref(), Expr::Identifier(i) if i.value == alias.name.value);
    if !is_unnest || *op != sql::BinaryOperator::StringConcat || !element_is_alias {
        return None;
    }
    Some(call(
        "prefix_elements",
        vec![array.clone(), (**left).clone()],
    ))
}

/// The names a subquery's FROM clause introduces (aliases, or table names).
fn from_names(select: &sql::Select) -> Vec<String> {
    let name_of = |f: &sql::TableFactor| -> Option<String> {
        match f {
            sql::TableFactor::Table { name, alias, .. } => Some(match alias {
                Some(a) => a.name.value.clone(),
                None => name.0.last()?.as_ident()?.value.clone(),
            }),
            sql::TableFactor::Derived { alias, .. } => alias.as_ref().map(|a| a.name.value.clone()),
            _ => None,
        }
    };
    select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(name_of)
        .collect()
}

fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: sql::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.clone()),
    }
}

/// Whether `e` refers to the subquery's own relations and to outer ones.
fn references(e: &Expr, inner: &[String]) -> (bool, bool) {
    let (mut own, mut outer) = (false, false);
    let _ = sql::visit_expressions(e, |x| {
        match x {
            Expr::CompoundIdentifier(ids) if ids.len() >= 2 => {
                if inner.contains(&ids[ids.len() - 2].value) {
                    own = true;
                } else {
                    outer = true;
                }
            }
            Expr::Identifier(_) => own = true,
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    (own, outer)
}

/// A scalar subquery DataFusion cannot decorrelate, rewritten so it can: correlated
/// WHERE conditions other than `inner = outer` (`… AND a.atthasdef`, `… AND
/// a.attcollation <> t.typcollation` in psql's `\\d`) and outer columns in the select
/// item (SQLAlchemy's `json_build_object('always', a.attidentity = 'a', …)`) move out:
/// `CASE WHEN <conditions> THEN <item> END`, where each inner column they read becomes a
/// subquery of its own over the remaining FROM/WHERE (guarded by a `count(*)` when the
/// item itself moves out, so no match still gives NULL). The same answer whenever the
/// subquery matches at most one row, which is when PostgreSQL accepts it at all.
fn lift_correlated_conditions(q: &sql::Query) -> Option<Expr> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let inner = from_names(select);
    let item = match select.projection.as_slice() {
        [SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. }] => x.clone(),
        _ => return None,
    };
    let mut all = vec![];
    if let Some(w) = &select.selection {
        conjuncts(w, &mut all);
    }
    let (mut kept, mut lifted) = (vec![], vec![]);
    for c in all {
        let (own, outer) = references(&c, &inner);
        let joins_outer = match &c {
            Expr::BinaryOp {
                left,
                op: sql::BinaryOperator::Eq,
                right,
            } => {
                let (l, r) = (references(left, &inner), references(right, &inner));
                (l.0 && !l.1 && !r.0) || (r.0 && !r.1 && !l.0)
            }
            _ => false,
        };
        if !outer || (own && joins_outer) {
            kept.push(c);
        } else {
            lifted.push(c);
        }
    }
    let item_reads_outer = references(&item, &inner).1;
    if lifted.is_empty() && !item_reads_outer {
        return None;
    }
    let and = |a: Expr, b: Expr| Expr::BinaryOp {
        left: Box::new(a),
        op: sql::BinaryOperator::And,
        right: Box::new(b),
    };
    let mut rest = q.clone();
    if let SetExpr::Select(s) = rest.body.as_mut() {
        s.selection = kept.into_iter().reduce(and);
    }
    // `(SELECT agg(x) FROM <rest>)`.
    let reading = |x: Expr, agg: &str| -> Option<Expr> {
        let mut q = rest.clone();
        if let SetExpr::Select(s) = q.body.as_mut() {
            s.projection = vec![SelectItem::UnnamedExpr(x)];
        }
        wrap_projection(&mut q, agg).then(|| Expr::Subquery(Box::new(q)))
    };
    let mut failed = false;
    let mut inner_columns_read_outside = |mut e: Expr| -> Expr {
        let _ = visit_expressions_mut(&mut e, |x| {
            if let Expr::CompoundIdentifier(ids) = x
                && ids.len() >= 2
                && inner.contains(&ids[ids.len() - 2].value)
            {
                match reading(x.clone(), "first_value") {
                    Some(sub) => *x = sub,
                    None => failed = true,
                }
            }
            ControlFlow::<()>::Continue(())
        });
        e
    };
    let mut conditions: Vec<Expr> = lifted
        .into_iter()
        .map(&mut inner_columns_read_outside)
        .collect();
    let value = if item_reads_outer {
        let matches = reading(Expr::value(sql::Value::Number("1".into(), false)), "count")?;
        conditions.insert(
            0,
            Expr::BinaryOp {
                left: Box::new(matches),
                op: sql::BinaryOperator::Gt,
                right: Box::new(Expr::value(sql::Value::Number("0".into(), false))),
            },
        );
        inner_columns_read_outside(item)
    } else {
        reading(item, "first_value")?
    };
    if failed {
        return None;
    }
    Some(Expr::Case {
        case_token: sql::helpers::attached_token::AttachedToken::empty(),
        end_token: sql::helpers::attached_token::AttachedToken::empty(),
        operand: None,
        conditions: vec![sql::CaseWhen {
            condition: conditions.into_iter().reduce(and)?,
            result: value,
        }],
        else_result: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_types_like_postgres() {
        assert_eq!(format_type(23, -1), "integer");
        assert_eq!(format_type(1043, 36), "character varying(32)");
        assert_eq!(format_type(1043, -1), "character varying");
        assert_eq!(format_type(1700, (12 << 16 | 2) + 4), "numeric(12,2)");
        assert_eq!(format_type(1042, 5), "character(1)");
        assert_eq!(format_type(1007, -1), "integer[]");
        assert_eq!(format_type(25, -1), "text");
    }

    #[test]
    fn pretty_sizes_round_like_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(1_500_000), "1465 kB");
        assert_eq!(size_pretty(20 * 1024 * 1024), "20 MB");
    }

    #[test]
    fn rewrites_postgres_only_syntax() {
        let sql = "SELECT c.reloftype::pg_catalog.regtype::pg_catalog.text, \
                   'pg_class'::regclass, pg_catalog.pg_table_is_visible(c.oid), current_user, \
                   (SELECT n.nspname FROM pg_namespace n WHERE n.oid = c.relnamespace) \
                   FROM pg_class c WHERE c.relname = 't' COLLATE pg_catalog.default";
        let mut stmt = crate::sql::parse::parse_sql(sql).unwrap().remove(0).0;
        rewrite(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT format_type(regtype_oid(c.reloftype), NULL), regclass_oid('pg_class'), \
             pg_table_is_visible(c.oid), current_user(), \
             (SELECT first_value(n.nspname) FROM pg_namespace n WHERE n.oid = c.relnamespace) \
             FROM pg_class c WHERE c.relname = 't'"
        );
    }
}
