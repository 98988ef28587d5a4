//! `CREATE [OR REPLACE] VIEW … [WITH NO SCHEMA BINDING]` and `SHOW VIEW`. A normal view
//! is checked when created and records the relations it reads, which then cannot be
//! dropped without CASCADE; a late-binding view records nothing and resolves its
//! (schema-qualified) names only when read ([`crate::plan::engine::views`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{CreateView, ObjectName, Query, Visit, Visitor};

use crate::catalog::{CatalogOp, Relation, ViewDef};
use crate::commands::context::{Outcome, StatementContext, rows_outcome};
use crate::error::{Result, code};
use crate::plan::engine::views::plan_view_query;
use crate::plan::table::WriteLog;
use crate::sql_err;

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

impl StatementContext {
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
        let (state, _, _) =
            self.statement_state(view.clone(), Arc::new(WriteLog::default()), None)?;
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
