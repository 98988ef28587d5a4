//! DELETE, UPDATE and TRUNCATE. Segments are immutable, so a DELETE finds the addresses
//! of the doomed rows with an ordinary distributed scan (the target table's scans add the
//! virtual [`ROW_ID_COLUMN`]), writes one new deletion vector per touched segment, and
//! commits them with the table version. An UPDATE is that DELETE plus an INSERT of the
//! new row values, both planned over the same catalog snapshot and committed together.
//! Concurrent DELETEs of the same segment, or a VACUUM that rewrote it meanwhile, make
//! the later commit fail with a serialization error instead of losing a change.

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_storage::deletes::DeleteVector;
use basalt_storage::layout::new_delete_path;
use basalt_worker::exec::scan::{ROW_ID_COLUMN, split_row_id};
use basalt_worker::protocol::DeleteRef;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::collect;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, FromTable, ObjectName, TableFactor, TableWithJoins, Truncate, Update,
    UpdateTableFromKind,
};
use object_store::ObjectStoreExt;

use crate::catalog::{CatalogOp, CatalogState, TableDef};
use crate::commands::context::{Outcome, StatementContext};
use crate::error::{LeaderError, Result, code};
use crate::plan::table::WriteLog;
use crate::sql::parse::parse_sql;
use crate::sql_err;

/// The table a DELETE or UPDATE changes, as the statement names it.
struct Target {
    def: Arc<TableDef>,
    /// `FROM` text for the target (name and alias as written).
    relation: String,
    /// How the statement's expressions refer to the target (its alias, else its name).
    qualifier: String,
}

fn target(view: &CatalogState, t: &TableWithJoins, verb: &str) -> Result<Target> {
    let TableFactor::Table { name, alias, .. } = &t.relation else {
        return Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "{verb} needs a table name as its target"
        ));
    };
    if !t.joins.is_empty() {
        return Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "{verb} of a join is not supported; name other tables in USING/FROM"
        ));
    }
    let verb_on = if verb == "DELETE" {
        "delete from"
    } else {
        "update"
    };
    crate::catalog::dependencies::refuse_write_to_view(view, name, verb_on)?;
    let def = view.named_table(name)?;
    let qualifier = match alias {
        Some(a) => a.name.to_string(),
        None => name.to_string(),
    };
    Ok(Target {
        def,
        relation: t.relation.to_string(),
        qualifier,
    })
}

/// ` FROM target[, others] [WHERE …]`: the rows a DELETE or UPDATE touches.
fn from_where(
    target: &Target,
    others: &[TableWithJoins],
    selection: Option<&datafusion::sql::sqlparser::ast::Expr>,
) -> String {
    let mut sql = format!(" FROM {}", target.relation);
    for o in others {
        sql.push_str(", ");
        sql.push_str(&o.to_string());
    }
    if let Some(w) = selection {
        sql.push_str(&format!(" WHERE {w}"));
    }
    sql
}

impl StatementContext {
    pub(crate) async fn delete(&mut self, d: Delete) -> Result<Outcome> {
        let tables = match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
        };
        let [table] = tables.as_slice() else {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "DELETE from several tables is not supported"
            ));
        };
        if d.returning.is_some() || d.limit.is_some() || !d.order_by.is_empty() {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "DELETE with RETURNING, ORDER BY or LIMIT is not supported"
            ));
        }
        let (view, _pin) = self.pinned_view();
        let target = target(&view, table, "DELETE")?;
        let using = d.using.clone().unwrap_or_default();
        let sql = format!(
            "SELECT {}.\"{ROW_ID_COLUMN}\"{}",
            target.qualifier,
            from_where(&target, &using, d.selection.as_ref())
        );
        let ids = self.row_ids(view, &target.def, &sql).await?;
        let (ops, count) = self.delete_rows(&target.def, ids).await?;
        self.record(ops)?;
        Ok(Outcome::Command(format!("DELETE {count}")))
    }

    pub(crate) async fn update(&mut self, u: Update) -> Result<Outcome> {
        if u.returning.is_some() || u.limit.is_some() || !u.order_by.is_empty() {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "UPDATE with RETURNING, ORDER BY or LIMIT is not supported"
            ));
        }
        let (view, _pin) = self.pinned_view();
        let target = target(&view, &u.table, "UPDATE")?;
        let def = target.def.clone();
        let mut values: BTreeMap<usize, String> = BTreeMap::new();
        for a in &u.assignments {
            let AssignmentTarget::ColumnName(name) = &a.target else {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "UPDATE of a column tuple is not supported"
                ));
            };
            let column = column_name(name);
            let idx = def.column_index(&column)?;
            if def.columns[idx].identity.is_some() {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "cannot update an identity column"
                ));
            }
            if values.insert(idx, a.value.to_string()).is_some() {
                return Err(sql_err!(
                    code::SYNTAX_ERROR,
                    "multiple assignments to same column \"{column}\""
                ));
            }
        }
        let others = match &u.from {
            Some(UpdateTableFromKind::BeforeSet(t) | UpdateTableFromKind::AfterSet(t)) => t.clone(),
            None => vec![],
        };
        let rows = from_where(&target, &others, u.selection.as_ref());
        let ids_sql = format!("SELECT {}.\"{ROW_ID_COLUMN}\"{rows}", target.qualifier);
        let ids = self.row_ids(view.clone(), &def, &ids_sql).await?;
        // The new version of every matched row: assigned values, other columns as they
        // were. INSERT's casts, NOT NULL and length checks apply to it unchanged.
        let select: Vec<String> = def
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match values.get(&i) {
                Some(v) => v.clone(),
                None => format!("{}.\"{}\"", target.qualifier, c.name),
            })
            .collect();
        let insert_sql = format!(
            "INSERT INTO \"{}\".\"{}\" SELECT {}{rows}",
            def.schema,
            def.name,
            select.join(", ")
        );
        let (mut ops, count) = self.delete_rows(&def, ids).await?;
        let (inserted, insert_ops) = match self.insert_on(view, &insert_sql, Some(def.id)).await {
            Ok(r) => r,
            Err(e) => {
                self.abandon(&ops);
                return Err(e);
            }
        };
        ops.extend(insert_ops);
        if inserted != count {
            self.abandon(&ops);
            // A row joined to several FROM rows would be inserted more than once.
            return Err(sql_err!(
                code::CARDINALITY_VIOLATION,
                "UPDATE matched {count} row(s) but produced {inserted}: a target row joins more than one FROM row"
            ));
        }
        self.record(ops)?;
        Ok(Outcome::Command(format!("UPDATE {count}")))
    }

    /// TRUNCATE empties tables at once and, as in Redshift, commits the transaction it
    /// runs in.
    pub(crate) fn truncate(&mut self, t: Truncate) -> Result<Outcome> {
        let view = self.view();
        let mut ops = vec![];
        for target in &t.table_names {
            let (schema, name) = crate::sql::names::split_name(&target.name)?;
            match view.table(&schema, &name) {
                Some(def) => ops.push(CatalogOp::Truncate(def.id)),
                None if t.if_exists => {}
                None => {
                    return Err(sql_err!(
                        code::UNDEFINED_TABLE,
                        "relation \"{name}\" does not exist"
                    ));
                }
            }
        }
        self.record(ops)?;
        if let Some(txn) = self.take_txn() {
            self.commit_ops(txn)?;
        }
        Ok(Outcome::Command("TRUNCATE TABLE".into()))
    }

    /// Run `sql` (a SELECT of the target's row ids) over `view` and collect the ids.
    async fn row_ids(
        &mut self,
        view: Arc<CatalogState>,
        def: &TableDef,
        sql: &str,
    ) -> Result<Vec<u64>> {
        let batches = self
            .run_internal(view, sql, Some(def.id), Arc::default(), Some(def.id))
            .await?
            .1;
        let mut ids = Vec::new();
        for b in &batches {
            let col = b.column(0);
            if col.data_type() != &DataType::UInt64 {
                return Err(sql_err!(
                    code::INTERNAL,
                    "row ids have type {}",
                    col.data_type()
                ));
            }
            ids.extend(col.as_primitive::<UInt64Type>().iter().flatten());
        }
        Ok(ids)
    }

    /// Run the INSERT `sql` over `view`; returns the rows inserted and the catalog
    /// changes to commit. With `for_user`, the user's statement wrote the SQL's reads
    /// (an UPDATE's FROM and SET), so they are checked for the user, all but the target's.
    pub(crate) async fn insert_on(
        &mut self,
        view: Arc<CatalogState>,
        sql: &str,
        for_user: Option<u64>,
    ) -> Result<(u64, Vec<CatalogOp>)> {
        let writes = Arc::new(WriteLog::default());
        let (_, batches) = self
            .run_internal(view, sql, None, writes.clone(), for_user)
            .await?;
        Ok((inserted_count(&batches), writes.take()))
    }

    /// Run a query Basalt generated over `view` and collect its rows.
    pub(crate) async fn query_on(
        &mut self,
        view: Arc<CatalogState>,
        sql: &str,
    ) -> Result<Vec<RecordBatch>> {
        Ok(self
            .run_internal(view, sql, None, Arc::default(), None)
            .await?
            .1)
    }

    /// Plan and run one statement Basalt generated, over a given catalog view. With
    /// `for_user`, the statement carries what the user's own statement reads, which the
    /// user must be allowed to read (all but that target relation); without, it is
    /// Basalt's own (ANALYZE's, a layout change's) and the command checked ownership.
    async fn run_internal(
        &mut self,
        view: Arc<CatalogState>,
        sql: &str,
        row_ids_for: Option<u64>,
        writes: Arc<WriteLog>,
        for_user: Option<u64>,
    ) -> Result<(LogicalPlan, Vec<RecordBatch>)> {
        let (stmt, _) = parse_sql(sql)?
            .into_iter()
            .next()
            .ok_or_else(|| sql_err!(code::INTERNAL, "empty generated statement"))?;
        let (state, _, reads) = self.statement_state(view.clone(), writes, row_ids_for)?;
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
            .await?;
        if let Some(target) = for_user {
            self.check_reads(&view, &state, &plan, &reads, Some(target))?;
        }
        let physical = state.create_physical_plan(&plan).await?;
        let batches = collect(physical, state.task_ctx()).await?;
        Ok((plan, batches))
    }

    /// Write deletion vectors that add `ids` (row ids of `def`'s segments, as its scans
    /// reported them) to what each segment already has deleted. Returns the catalog
    /// changes and how many rows were newly deleted.
    async fn delete_rows(&self, def: &TableDef, ids: Vec<u64>) -> Result<(Vec<CatalogOp>, u64)> {
        let mut by_segment: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for id in ids {
            let (segment, row) = split_row_id(id);
            by_segment.entry(segment).or_default().push(row);
        }
        let store = &self.engine.storage;
        let mut ops = Vec::new();
        let mut count = 0;
        for (ordinal, rows) in by_segment {
            let seg = def.segments.get(ordinal as usize).ok_or_else(|| {
                sql_err!(
                    code::INTERNAL,
                    "row id names segment {ordinal} of {} segments",
                    def.segments.len()
                )
            })?;
            let mut dv = match &seg.deletes {
                Some(d) => {
                    let bytes = store
                        .store
                        .get(&object_store::path::Path::from(d.path.as_str()))
                        .await
                        .map_err(storage_err)?
                        .bytes()
                        .await
                        .map_err(storage_err)?;
                    DeleteVector::decode(&d.path, &bytes).map_err(storage_err)?
                }
                None => DeleteVector::new(seg.rows),
            };
            let before = dv.deleted();
            for r in rows {
                dv.insert(r).map_err(storage_err)?;
            }
            if dv.deleted() == before {
                continue;
            }
            count += dv.deleted() - before;
            let path = new_delete_path(def.id, seg.slice);
            store
                .put_durable(&path, dv.encode())
                .await
                .map_err(storage_err)?;
            ops.push(CatalogOp::SetDeletes {
                table_id: def.id,
                segment: seg.path.clone(),
                base: seg.deletes.as_ref().map(|d| d.path.clone()),
                deletes: DeleteRef {
                    path: path.to_string(),
                    count: dv.deleted(),
                },
            });
        }
        Ok((ops, count))
    }
}

/// The row count a DataFusion INSERT reports (one `count` row per output batch).
pub(crate) fn inserted_count(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_primitive::<UInt64Type>().value(0))
        .sum()
}

fn column_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(crate::sql::names::ident_name)
        .unwrap_or_else(|| name.to_string())
}

fn storage_err(e: impl std::fmt::Display) -> LeaderError {
    sql_err!(code::IO_ERROR, "storage: {e}")
}
