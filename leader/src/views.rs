//! Views: `CREATE [OR REPLACE] VIEW … [WITH NO SCHEMA BINDING]`, `DROP VIEW`, `SHOW VIEW`
//! and how a statement reads a view. A view is stored as its query text
//! ([`crate::catalog::ViewDef`]); each statement that names it plans that text again over
//! its own catalog snapshot ([`ViewPlanner`]) and hands DataFusion the logical plan, which
//! DataFusion inlines into the statement's plan, so filters and projections reach the
//! cluster scans underneath as for any query. A normal view is checked when created and
//! records the relations it reads, which then cannot be dropped without CASCADE; a
//! late-binding view records nothing and resolves its (schema-qualified) names only when
//! read. The columns of late-binding views are what `pg_get_late_binding_view_cols()`
//! lists, resolved the same way.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{CreateView, ObjectName, Query, Visit, Visitor};

use crate::catalog::{CatalogOp, CatalogState, Relation, ViewColumn, ViewDef};
use crate::error::{Result, code};
use crate::session::{Engine, Outcome, Session, StatementCtx, plan_statement, rows_outcome};
use crate::sql::types::SqlType;
use crate::sql_err;
use crate::table::WriteLog;

/// Views nested deeper than this are taken for a cycle (late-binding views can form one).
const MAX_VIEW_DEPTH: usize = 32;

/// The name under which `pg_get_late_binding_view_cols()` is read as a relation (the
/// catalog rewrite turns the function call into a query of it).
pub const LATE_BINDING_COLUMNS_RELATION: &str = "basalt_late_binding_view_cols";

/// Plans the views a statement reads, over the statement's catalog snapshot.
#[derive(Debug, Clone)]
pub struct ViewPlanner {
    pub(crate) engine: Arc<Engine>,
    pub(crate) view: Arc<CatalogState>,
    pub(crate) stmt: StatementCtx,
}

impl ViewPlanner {
    /// A fresh DataFusion session like the statement's, one view deeper.
    fn state(&self) -> Result<SessionState> {
        if self.stmt.view_depth >= MAX_VIEW_DEPTH {
            return Err(sql_err!(
                code::INVALID_OBJECT_DEFINITION,
                "infinite recursion detected in rules for a view"
            ));
        }
        let stmt = StatementCtx {
            view_depth: self.stmt.view_depth + 1,
            row_ids_for: None,
            ..self.stmt.clone()
        };
        self.engine
            .session_state(self.view.clone(), Arc::new(WriteLog::default()), stmt)
    }

    /// The view's query planned now, its columns named as the view names them.
    pub async fn plan(&self, def: &ViewDef) -> Result<PlannedView> {
        let state = self.state()?;
        plan_view_query(&state, &self.view, def).await
    }

    /// What DataFusion reads for view `def`.
    pub async fn provider(&self, def: &ViewDef) -> Result<Arc<dyn TableProvider>> {
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
        Ok(Arc::new(ViewTable::new(plan.plan, Some(def.definition()))))
    }

    /// The rows of `pg_get_late_binding_view_cols()`: every late-binding view whose
    /// query plans now, with its columns (schema, view, column, type, position).
    pub async fn late_binding_columns(&self) -> Result<RecordBatch> {
        let mut rows: Vec<(String, String, String, String, i32)> = vec![];
        for def in self.view.views.values().filter(|v| v.late_binding) {
            let columns = match self.plan(def).await {
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

/// Columns of [`LATE_BINDING_COLUMNS_RELATION`], in Redshift's record order.
pub fn late_binding_columns_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("view_schema", DataType::Utf8, false),
        Field::new("view_name", DataType::Utf8, false),
        Field::new("col_name", DataType::Utf8, false),
        Field::new("col_type", DataType::Utf8, false),
        Field::new("col_num", DataType::Int32, false),
    ]))
}

/// A view's query as planned for one statement.
pub struct PlannedView {
    /// The query with its output columns named as the view names them.
    pub plan: LogicalPlan,
    /// Those columns with their SQL types.
    pub columns: Vec<ViewColumn>,
}

/// Parse and plan a view's stored query, then name its columns as the view does.
async fn plan_view_query(
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
    crate::pg_catalog::rewrite(&mut stmt);
    let names_from = stmt.clone();
    crate::session::alias_repeated_select_items(&mut stmt);
    let plan = plan_statement(state, stmt).await?;
    let planned = crate::session::pg_named_schema(&plan, &names_from);
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

/// Relations a query names, without the names of its own CTEs.
fn referenced_relations(query: &Query) -> Vec<ObjectName> {
    struct Names {
        relations: Vec<ObjectName>,
        ctes: Vec<String>,
    }
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                self.ctes.extend(
                    with.cte_tables
                        .iter()
                        .map(|c| crate::sql::names::ident_name(&c.alias.name)),
                );
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
            self.relations.push(name.clone());
            ControlFlow::Continue(())
        }
    }
    let mut names = Names {
        relations: vec![],
        ctes: vec![],
    };
    let _ = query.visit(&mut names);
    let ctes = names.ctes;
    names
        .relations
        .into_iter()
        .filter(|n| {
            !(n.0.len() == 1
                && ctes.contains(&crate::sql::names::split_name(n).unwrap_or_default().1))
        })
        .collect()
}

impl Session {
    /// `CREATE [OR REPLACE] VIEW name [(cols)] AS query [WITH NO SCHEMA BINDING]`.
    pub(crate) async fn create_view(&mut self, cv: CreateView) -> Result<Outcome> {
        if cv.materialized {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "CREATE MATERIALIZED VIEW is not supported yet"
            ));
        }
        let (schema, name) = crate::sql::names::split_name(&cv.name)?;
        let view = self.view();
        if !view.schemas.contains(&schema) {
            return Err(sql_err!(
                code::UNDEFINED_SCHEMA,
                "schema \"{schema}\" does not exist"
            ));
        }
        let late_binding = cv.with_no_schema_binding;
        let relations = referenced_relations(&cv.query);
        if late_binding && relations.iter().any(|r| r.0.len() < 2) {
            return Err(sql_err!(
                code::INVALID_OBJECT_DEFINITION,
                "All the relation names inside should be qualified when creating VIEW WITH NO SCHEMA BINDING."
            ));
        }
        let existing = view.relation(&schema, &name);
        match &existing {
            Some(Relation::View(_)) if cv.or_replace => {}
            Some(Relation::Table(_)) if cv.or_replace => {
                return Err(sql_err!(
                    code::WRONG_OBJECT_TYPE,
                    "\"{name}\" is not a view"
                ));
            }
            Some(_) => {
                return Err(sql_err!(
                    code::DUPLICATE_TABLE,
                    "relation \"{name}\" already exists"
                ));
            }
            None => {}
        }
        let query = cv.query.to_string();
        let column_names: Vec<String> = cv
            .columns
            .iter()
            .map(|c| crate::sql::names::ident_name(&c.name))
            .collect();
        let mut def = ViewDef {
            id: 0,
            schema,
            name: name.clone(),
            query,
            column_names,
            columns: vec![],
            late_binding,
            depends_on: vec![],
            owner: self.user.clone(),
        };
        // Plan it now: a normal view must be valid, and either kind's columns are kept.
        let (state, _) = self.statement_state(view.clone(), Arc::new(WriteLog::default()), None)?;
        let named = def.column_names.clone();
        def.column_names = vec![];
        match plan_view_query(&state, &view, &def).await {
            Ok(planned) => {
                let mut columns = planned.columns;
                if named.len() > columns.len() {
                    return Err(sql_err!(
                        code::SYNTAX_ERROR,
                        "CREATE VIEW specifies more column names than columns"
                    ));
                }
                for (c, n) in columns.iter_mut().zip(&named) {
                    c.name = n.clone();
                }
                // Fewer names than columns: the rest keep their own (PostgreSQL's rule).
                def.column_names = if named.is_empty() {
                    vec![]
                } else {
                    columns.iter().map(|c| c.name.clone()).collect()
                };
                let mut seen = std::collections::HashSet::new();
                if let Some(dup) = columns.iter().find(|c| !seen.insert(c.name.clone())) {
                    return Err(sql_err!(
                        code::DUPLICATE_COLUMN,
                        "column \"{}\" specified more than once",
                        dup.name
                    ));
                }
                def.columns = columns;
            }
            Err(e) if !late_binding => return Err(e),
            // A late-binding view's tables may come later.
            Err(_) => def.column_names = named,
        }
        if !late_binding {
            for r in &relations {
                let (s, n) = crate::sql::names::split_name(r)?;
                if let Some(rel) = view.relation(&s, &n) {
                    let id = rel.id();
                    if !def.depends_on.contains(&id) {
                        def.depends_on.push(id);
                    }
                }
            }
        }
        // OR REPLACE keeps what other views may read: the old columns, in order, with
        // their names and types (new ones may follow), as PostgreSQL requires.
        if let Some(Relation::View(old)) = &existing
            && !old.late_binding
            && !late_binding
        {
            if def.columns.len() < old.columns.len() {
                return Err(sql_err!(
                    code::INVALID_TABLE_DEFINITION,
                    "cannot drop columns from view"
                ));
            }
            for (o, n) in old.columns.iter().zip(&def.columns) {
                if o.name != n.name {
                    return Err(sql_err!(
                        code::INVALID_TABLE_DEFINITION,
                        "cannot change name of view column \"{}\" to \"{}\"",
                        o.name,
                        n.name
                    ));
                }
                if o.sql_type != n.sql_type {
                    return Err(sql_err!(
                        code::INVALID_TABLE_DEFINITION,
                        "cannot change data type of view column \"{}\" from {} to {}",
                        o.name,
                        o.sql_type.display_name(),
                        n.sql_type.display_name()
                    ));
                }
            }
        }
        def.id = match existing {
            Some(rel) => rel.id(),
            None => self.engine.catalog.allocate_table_id()?,
        };
        self.record(vec![CatalogOp::CreateView {
            def,
            replace: cv.or_replace,
        }])?;
        Ok(Outcome::Command("CREATE VIEW".into()))
    }

    /// `SHOW VIEW [schema.]name`: the statement that would create the view again.
    pub(crate) fn show_view(&self, name: &ObjectName) -> Result<Outcome> {
        let (schema, view_name) = crate::sql::names::split_name(name)?;
        let def = self
            .view()
            .view(&schema, &view_name)
            .cloned()
            .ok_or_else(|| {
                sql_err!(
                    code::UNDEFINED_TABLE,
                    "relation \"{view_name}\" does not exist"
                )
            })?;
        let columns = if def.column_names.is_empty() {
            String::new()
        } else {
            format!(" ({})", def.column_names.join(", "))
        };
        let text = format!(
            "CREATE OR REPLACE VIEW {}.{}{columns} AS {}",
            def.schema,
            def.name,
            def.definition()
        );
        let schema = Arc::new(Schema::new(vec![Field::new(
            "Show View DDL statement",
            DataType::Utf8,
            true,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![text]))],
        )
        .map_err(datafusion::error::DataFusionError::from)?;
        Ok(rows_outcome(schema, vec![batch]))
    }
}

/// PostgreSQL's error for a write (`verb`: "insert into", "update", "delete from") whose
/// target `name` is a view: Redshift's views are never updatable.
pub fn refuse_write_to_view(
    view: &CatalogState,
    name: &datafusion::sql::sqlparser::ast::ObjectName,
    verb: &str,
) -> Result<()> {
    let (schema, table) = crate::sql::names::split_name(name)?;
    if view.view(&schema, &table).is_some() {
        return Err(crate::sql_err!(
            crate::error::code::OBJECT_NOT_IN_PREREQUISITE_STATE,
            "cannot {verb} view \"{table}\""
        ));
    }
    Ok(())
}

/// The catalog changes that drop `ids` (tables and views) and, with `cascade`, every
/// view depending on them, in an order the catalog accepts (dependents first). Without
/// `cascade`, a dependent view makes the drop fail with PostgreSQL's error.
pub fn drop_ops(view: &CatalogState, ids: &[u64], cascade: bool) -> Result<Vec<CatalogOp>> {
    let op = |id: u64| {
        if view.views.contains_key(&id) {
            CatalogOp::DropView(id)
        } else {
            CatalogOp::DropTable(id)
        }
    };
    let mut wanted: Vec<u64> = vec![];
    for &id in ids {
        if cascade {
            for v in view.dependent_views(id) {
                if !wanted.contains(&v.id) {
                    wanted.push(v.id);
                }
            }
        }
        if !wanted.contains(&id) {
            wanted.push(id);
        }
    }
    // Drop whatever nothing left depends on, until all are gone; what can never go
    // reports the catalog's own error.
    let mut scratch = view.clone();
    let mut ops = vec![];
    if cascade {
        // FOREIGN KEYs of other tables that reference a dropped table go; their tables stay.
        for &id in ids {
            for op in crate::constraints::cascade_ops(&scratch, id) {
                scratch.apply(&op)?;
                ops.push(op);
            }
        }
    }
    while !wanted.is_empty() {
        let mut progressed = false;
        let mut last_error = None;
        for id in wanted.clone() {
            let candidate = op(id);
            let mut next = scratch.clone();
            match next.apply(&candidate) {
                Ok(()) => {
                    scratch = next;
                    ops.push(candidate);
                    wanted.retain(|w| *w != id);
                    progressed = true;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if !progressed {
            return Err(last_error.expect("something failed"));
        }
    }
    Ok(ops)
}

/// How a relation that normal views read is being renamed.
pub enum Renamed<'a> {
    /// `ALTER TABLE … RENAME TO new` (of a table or a view).
    Relation { new_name: &'a str },
    /// `ALTER TABLE … RENAME COLUMN old TO new`; `columns` are the table's column names
    /// after the rename.
    Column {
        old: &'a str,
        new: &'a str,
        columns: &'a [String],
    },
}

/// The normal views that read relation `id` (`schema.name`), their stored queries
/// rewritten for `renamed` so that they read the same data as before, as PostgreSQL's
/// views (bound to the relation, not its name) do: a renamed relation is read under its
/// new name, aliased with the old one; a renamed column through a derived table that gives
/// it its old name back. Late-binding views resolve names when read and are left alone.
pub fn rename_ops(
    view: &CatalogState,
    (id, schema, name): (u64, &str, &str),
    renamed: Renamed,
) -> Result<Vec<CatalogOp>> {
    use datafusion::sql::sqlparser::ast::{SetExpr, Statement, TableFactor, VisitMut, VisitorMut};
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    // The relation as a FROM item, aliased as `alias`.
    let replacement = |alias: &str| -> Result<TableFactor> {
        let from = match &renamed {
            Renamed::Relation { new_name } => format!("{}.{}", quote(schema), quote(new_name)),
            Renamed::Column { old, new, columns } => {
                let items: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        if c == new {
                            format!("{} AS {}", quote(new), quote(old))
                        } else {
                            quote(c)
                        }
                    })
                    .collect();
                format!(
                    "(SELECT {} FROM {}.{})",
                    items.join(", "),
                    quote(schema),
                    quote(name)
                )
            }
        };
        let sql = format!("SELECT * FROM {from} AS {}", quote(alias));
        let mut parsed = crate::sql::parse::parse_sql(&sql)?;
        let Some((Statement::Query(q), _)) = parsed.pop() else {
            return Err(sql_err!(code::INTERNAL, "could not rewrite a view: {sql}"));
        };
        match *q.body {
            SetExpr::Select(mut s) if s.from.len() == 1 => Ok(s.from.remove(0).relation),
            _ => Err(sql_err!(code::INTERNAL, "could not rewrite a view: {sql}")),
        }
    };
    struct Rewrite<'a> {
        schema: &'a str,
        name: &'a str,
        replacement: &'a dyn Fn(&str) -> Result<TableFactor>,
        error: Option<crate::error::LeaderError>,
    }
    impl VisitorMut for Rewrite<'_> {
        type Break = ();
        fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = factor
            else {
                return ControlFlow::Continue(());
            };
            if crate::sql::names::split_name(name).ok()
                != Some((self.schema.into(), self.name.into()))
            {
                return ControlFlow::Continue(());
            }
            let alias = alias
                .as_ref()
                .map_or_else(|| self.name.to_string(), |a| a.name.value.clone());
            match (self.replacement)(&alias) {
                Ok(new) => *factor = new,
                Err(e) => {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut ops = vec![];
    for v in view.views.values() {
        if v.late_binding || !v.depends_on.contains(&id) {
            continue;
        }
        let mut parsed = crate::sql::parse::parse_sql(&v.query)?;
        let Some((mut stmt, _)) = parsed.pop() else {
            continue;
        };
        let mut rewrite = Rewrite {
            schema,
            name,
            replacement: &replacement,
            error: None,
        };
        let _ = VisitMut::visit(&mut stmt, &mut rewrite);
        if let Some(e) = rewrite.error {
            return Err(e);
        }
        let mut def = (**v).clone();
        def.query = stmt.to_string();
        if def.query != v.query {
            ops.push(CatalogOp::CreateView { def, replace: true });
        }
    }
    Ok(ops)
}
