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
//!
//! [`relations`] builds the relations that list what the catalog holds, [`builtin`] the
//! ones whose rows are the same in every database, [`functions`] the catalog functions and
//! [`rewrite`] the syntax rewrite; this module maps names to relations and relations to OIDs.

mod builtin;
mod functions;
mod grants;
mod relations;
mod rewrite;

pub(crate) use builtin::type_len;
pub use functions::{SessionInfo, format_type, next_backend_pid, register_functions};
pub use rewrite::rewrite;

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
    ("svv_user_info", 12_012, "v"),
    ("svv_relation_privileges", 12_013, "v"),
    ("svv_schema_privileges", 12_014, "v"),
    ("svv_database_privileges", 12_015, "v"),
    ("svv_roles", 12_016, "v"),
    ("svv_user_grants", 12_017, "v"),
    ("svv_role_grants", 12_018, "v"),
    ("svv_column_privileges", 12_019, "v"),
    ("svv_system_privileges", 12_020, "v"),
    ("svv_default_privileges", 12_021, "v"),
    ("pg_default_acl", 826, "r"),
    ("pg_shadow", 12_022, "v"),
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

/// The relation `schema.name` over `view` as `viewer` sees it, if this module has one.
pub fn table(
    schema: &str,
    name: &str,
    view: &CatalogState,
    viewer: &str,
) -> Option<Arc<dyn TableProvider>> {
    if !exists(schema, name) {
        return None;
    }
    let mut cat = Snapshot::new(view);
    cat.viewer = viewer.to_string();
    let batch = if schema == "information_schema" {
        let batch = match name {
            "tables" => cat.info_tables(),
            "columns" => cat.info_columns(),
            "schemata" => cat.info_schemata(),
            _ => cat.info_views(),
        };
        visible_in_information_schema(batch, view, viewer)
    } else {
        cat.relation(name)?
    };
    // Password hashes are for superusers: anyone else reading pg_shadow fails.
    if name == "pg_shadow" && !crate::catalog::privileges::is_superuser(view, viewer) {
        return Some(Arc::new(DeniedTable {
            schema: batch.schema(),
            relation: "pg_shadow",
        }));
    }
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).ok()?;
    Some(Arc::new(table))
}

/// A catalog relation the reader may not read: planning it works (so the statement's
/// shape is checked as usual), scanning it fails with 42501.
#[derive(Debug)]
struct DeniedTable {
    schema: datafusion::arrow::datatypes::SchemaRef,
    relation: &'static str,
}

#[async_trait::async_trait]
impl TableProvider for DeniedTable {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        Err(functions::sql_error(crate::sql_err!(
            crate::error::code::INSUFFICIENT_PRIVILEGE,
            "permission denied for relation {}",
            self.relation
        )))
    }
}

/// `information_schema` lists only what the user has some privilege on (or owns), as
/// PostgreSQL's does: relations by `table_schema`/`table_name`, schemas by `schema_name`.
fn visible_in_information_schema(
    batch: RecordBatch,
    view: &CatalogState,
    viewer: &str,
) -> RecordBatch {
    use crate::catalog::Securable;
    use crate::catalog::privileges::{granted, is_superuser, owns};
    if is_superuser(view, viewer) {
        return batch;
    }
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
    };
    let some_privilege =
        |on: &Securable| owns(view, viewer, on) || !granted(view, viewer, on).0.is_empty();
    let keep: BooleanArray = match (
        text("table_schema"),
        text("table_name"),
        text("schema_name"),
    ) {
        (Some(schemas), Some(names), _) => schemas
            .iter()
            .zip(names.iter())
            .map(|(s, n)| {
                let (Some(s), Some(n)) = (s, n) else {
                    return Some(false);
                };
                Some(match view.relation(s, n) {
                    Some(rel) => some_privilege(&Securable::Relation(rel.id())),
                    // Catalog relations are everyone's.
                    None => true,
                })
            })
            .collect(),
        (_, _, Some(schemas)) => schemas
            .iter()
            .map(|s| {
                Some(s.is_some_and(|s| {
                    !view.schemas.contains(s) || some_privilege(&Securable::Schema(s.to_string()))
                }))
            })
            .collect(),
        _ => return batch,
    };
    datafusion::arrow::compute::filter_record_batch(&batch, &keep)
        .unwrap_or_else(|_| RecordBatch::new_empty(batch.schema()))
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
    /// Who reads: the privilege views show other users' rows only to superusers.
    viewer: String,
    /// (name, oid, owner oid) of every schema, system schemas first.
    schemas: Vec<(String, u32, u32)>,
    /// The normal views, shaped as tables (see [`view_as_table`]).
    view_columns: Vec<Arc<TableDef>>,
    /// The indexes of PRIMARY KEY and UNIQUE constraints, shaped as tables (see
    /// [`index_as_table`]).
    index_columns: Vec<Arc<TableDef>>,
}

/// The name under which `pg_get_late_binding_view_cols()` is read as a relation (the
/// catalog rewrite turns the function call into a query of it).
pub const LATE_BINDING_COLUMNS_RELATION: &str = "basalt_late_binding_view_cols";

/// Columns of [`LATE_BINDING_COLUMNS_RELATION`], in Redshift's record order.
pub fn late_binding_columns_schema() -> datafusion::arrow::datatypes::SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("view_schema", DataType::Utf8, false),
        Field::new("view_name", DataType::Utf8, false),
        Field::new("col_name", DataType::Utf8, false),
        Field::new("col_type", DataType::Utf8, false),
        Field::new("col_num", DataType::Int32, false),
    ]))
}

/// An `int2[]` / `int2vector` column.
fn int2_lists(v: Vec<Option<Vec<i16>>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Int16Type, _, _>(
        v.into_iter()
            .map(|l| l.map(|l| l.into_iter().map(Some).collect::<Vec<_>>())),
    ))
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
    /// A `text[]` column (aclitem lists): None is a NULL array.
    fn text_lists(self, name: &str, v: Vec<Option<Vec<Option<String>>>>) -> Self {
        use datafusion::arrow::array::{ListBuilder, StringBuilder};
        let mut b = ListBuilder::new(StringBuilder::new());
        for row in v {
            match row {
                Some(items) => {
                    for item in items {
                        b.values().append_option(item);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        self.push(name, Arc::new(b.finish()))
    }
    fn text_list_nulls(self, name: &str, n: usize) -> Self {
        self.list_nulls(name, DataType::Utf8, n)
    }
    fn oid_list_nulls(self, name: &str, n: usize) -> Self {
        self.list_nulls(name, DataType::UInt32, n)
    }
    fn batch(self) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
            .expect("catalog columns have equal lengths")
    }
}

#[cfg(test)]
mod tests {
    use super::functions::size_pretty;
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
