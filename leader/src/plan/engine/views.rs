//! How a statement reads a view. A view is stored as its query text
//! ([`crate::catalog::ViewDef`]); each statement that names it plans that text again over
//! its own catalog snapshot ([`ViewPlanner`]) and hands DataFusion the logical plan, which
//! DataFusion inlines into the statement's plan, so filters and projections reach the
//! cluster scans underneath as for any query. A late-binding view resolves its
//! (schema-qualified) names only when read; the columns of late-binding views are what
//! `pg_get_late_binding_view_cols()` lists, resolved the same way.

use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};

use crate::catalog::{CatalogState, ViewColumn, ViewDef};
use crate::error::{Result, code};
use crate::plan::engine::{Engine, StatementCtx};
use crate::plan::statement::plan_statement;
use crate::plan::table::{ViewSource, WriteLog};
use crate::sql::types::SqlType;
use crate::sql_err;
use crate::system::pg_catalog::late_binding_columns_schema;

/// Views nested deeper than this are taken for a cycle (late-binding views can form one).
const MAX_VIEW_DEPTH: usize = 32;

/// Plans the views a statement reads, over the statement's catalog snapshot.
#[derive(Debug, Clone)]
pub struct ViewPlanner {
    pub(crate) engine: Arc<Engine>,
    pub(crate) view: Arc<CatalogState>,
    pub(crate) stmt: StatementCtx,
}

impl ViewPlanner {
    /// A fresh DataFusion session like the statement's, one view deeper, that reads with
    /// the privileges of `owner`, the view's owner.
    fn state(&self, owner: &str) -> Result<SessionState> {
        if self.stmt.view_depth >= MAX_VIEW_DEPTH {
            return Err(sql_err!(
                code::INVALID_OBJECT_DEFINITION,
                "infinite recursion detected in rules for a view"
            ));
        }
        let stmt = StatementCtx {
            view_depth: self.stmt.view_depth + 1,
            row_ids_for: None,
            acting_user: Some(owner.to_string()),
            ..self.stmt.clone()
        };
        self.engine
            .session_state(self.view.clone(), Arc::new(WriteLog::default()), stmt)
    }

    /// The view's query planned now, its columns named as the view names them.
    pub async fn plan(&self, def: &ViewDef) -> Result<PlannedView> {
        let state = self.state(&def.owner)?;
        plan_view_query(&state, &self.view, def).await
    }
}

#[async_trait::async_trait]
impl ViewSource for ViewPlanner {
    /// What DataFusion reads for view `def`.
    async fn provider(&self, def: &ViewDef) -> Result<Arc<dyn TableProvider>> {
        let plan = self.plan(def).await.map_err(|e| {
            if def.late_binding {
                // Name the view: the failing name is one of its tables, not the query's.
                let (code, message) = e.sqlstate();
                crate::error::LeaderError::Sql {
                    code,
                    message: format!("{message} (in late-binding view \"{}\")", def.name),
                }
            } else {
                e
            }
        })?;
        self.stmt.reads.record_view_plan(&def.owner, &plan.plan);
        Ok(Arc::new(ViewTable::new(plan.plan, Some(def.definition()))))
    }

    /// The rows of `pg_get_late_binding_view_cols()`: every late-binding view whose
    /// query plans now, with its columns (schema, view, column, type, position).
    async fn late_binding_columns(&self) -> Result<RecordBatch> {
        let mut rows: Vec<(String, String, String, String, i32)> = vec![];
        // Listing columns reads no rows: what these plans resolve needs no privilege.
        let listing = ViewPlanner {
            stmt: StatementCtx {
                reads: Default::default(),
                ..self.stmt.clone()
            },
            ..self.clone()
        };
        for def in self.view.views.values().filter(|v| v.late_binding) {
            let columns = match listing.plan(def).await {
                Ok(planned) => planned.columns,
                Err(_) => continue,
            };
            for (i, c) in columns.into_iter().enumerate() {
                rows.push((
                    def.schema.clone(),
                    def.name.clone(),
                    c.name,
                    c.sql_type.display_name(),
                    i as i32 + 1,
                ));
            }
        }
        let schema = late_binding_columns_schema();
        let text = |f: fn(&(String, String, String, String, i32)) -> &str| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as _
        };
        Ok(RecordBatch::try_new(
            schema,
            vec![
                text(|r| &r.0),
                text(|r| &r.1),
                text(|r| &r.2),
                text(|r| &r.3),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.4))),
            ],
        )
        .map_err(datafusion::error::DataFusionError::from)?)
    }
}

/// A view's query as planned for one statement.
pub struct PlannedView {
    /// The query with its output columns named as the view names them.
    pub plan: LogicalPlan,
    /// Those columns with their SQL types.
    pub columns: Vec<ViewColumn>,
}

/// Parse and plan a view's stored query, then name its columns as the view does.
pub(crate) async fn plan_view_query(
    state: &SessionState,
    view: &CatalogState,
    def: &ViewDef,
) -> Result<PlannedView> {
    let mut parsed = crate::sql::parse::parse_sql(&def.query)?;
    let (mut stmt, _) = parsed.pop().ok_or_else(|| {
        sql_err!(
            code::INTERNAL,
            "view \"{}\" has an empty definition",
            def.name
        )
    })?;
    crate::system::pg_catalog::rewrite(&mut stmt);
    let names_from = stmt.clone();
    crate::plan::statement::alias_repeated_select_items(&mut stmt);
    let plan = plan_statement(state, stmt).await?;
    let planned = crate::plan::statement::pg_named_schema(&plan, &names_from);
    let names: Vec<String> = if !def.column_names.is_empty() {
        def.column_names.clone()
    } else {
        planned.fields().iter().map(|f| f.name().clone()).collect()
    };
    if names.len() != plan.schema().fields().len() {
        return Err(sql_err!(
            code::INVALID_OBJECT_DEFINITION,
            "the definition of view \"{}\" no longer matches its columns",
            def.name
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(sql_err!(
            code::DUPLICATE_COLUMN,
            "column \"{dup}\" specified more than once"
        ));
    }
    let columns = names
        .iter()
        .zip(declared_types(&plan, view))
        .map(|(name, sql_type)| ViewColumn {
            name: name.clone(),
            sql_type,
        })
        .collect();
    let exprs: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .zip(names)
        .map(|(c, n)| Expr::Column(c).alias(n))
        .collect();
    Ok(PlannedView {
        plan: LogicalPlanBuilder::from(plan).project(exprs)?.build()?,
        columns,
    })
}

/// The SQL type of each output column of `plan`: a column passed through from a table
/// keeps the table's declared type (`varchar(10)`, not the widest varchar its Arrow type
/// allows); anything else gets the type of its values.
pub(crate) fn declared_types(plan: &LogicalPlan, view: &CatalogState) -> Vec<SqlType> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    // What each relation name visible in the plan stands for: a table, or an alias of one.
    let mut tables: Vec<(
        datafusion::common::TableReference,
        Arc<crate::catalog::TableDef>,
    )> = vec![];
    let _ = plan.apply(|node| {
        let scan_of = |p: &LogicalPlan| match p {
            LogicalPlan::TableScan(scan) => {
                let schema = scan.table_name.schema().unwrap_or("public");
                view.table(schema, scan.table_name.table()).cloned()
            }
            _ => None,
        };
        match node {
            LogicalPlan::TableScan(scan) => {
                if let Some(t) = scan_of(node) {
                    tables.push((scan.table_name.clone(), t));
                }
            }
            LogicalPlan::SubqueryAlias(a) => {
                if let Some(t) = scan_of(&a.input) {
                    tables.push((a.alias.clone(), t));
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let schema = plan.schema();
    (0..schema.fields().len())
        .map(|i| {
            let (qualifier, field) = schema.qualified_field(i);
            let declared = qualifier.and_then(|q| {
                let (_, t) = tables.iter().find(|(name, _)| name == q)?;
                let c = t.columns.iter().find(|c| c.name == *field.name())?;
                (c.sql_type.to_arrow() == *field.data_type()).then(|| c.sql_type.clone())
            });
            declared.unwrap_or_else(|| {
                SqlType::from_arrow(field.data_type()).unwrap_or(SqlType::Varchar(256))
            })
        })
        .collect()
}
