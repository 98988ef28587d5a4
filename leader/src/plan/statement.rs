//! Planning one statement with PostgreSQL's and Redshift's naming rules on top of
//! DataFusion's: result column names as PostgreSQL gives them, repeated select items,
//! select-list aliases used later in the same select, integers as booleans.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::error::Result;

/// PostgreSQL's name for each unaliased item of a query's select list: a function call is
/// named after the function (`count`, not DataFusion's `count(*)`), a column after the
/// column, a cast after what it casts, anything else `?column?`. `None` keeps the planned
/// name (aliases, `*`). Returns nothing when the select list has a wildcard, since its
/// items then do not line up with the result columns.
fn pg_column_names(stmt: &Statement) -> Option<Vec<Option<String>>> {
    use datafusion::sql::sqlparser::ast::{Expr, SelectItem, SetExpr};
    let Statement::Query(q) = stmt else {
        return None;
    };
    let mut body = q.body.as_ref();
    let select = loop {
        match body {
            SetExpr::Select(s) => break s,
            SetExpr::Query(q) => body = q.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    };
    fn name_of(e: &Expr) -> String {
        match e {
            Expr::Identifier(id) => crate::sql::names::ident_name(id),
            Expr::CompoundIdentifier(ids) => ids
                .last()
                .map(crate::sql::names::ident_name)
                .unwrap_or_default(),
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(crate::sql::names::ident_name)
                .unwrap_or_else(|| "?column?".into()),
            Expr::Cast { expr, .. } | Expr::Nested(expr) => name_of(expr),
            _ => "?column?".into(),
        }
    }
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(Some(name_of(e))),
            SelectItem::ExprWithAlias { .. } | SelectItem::ExprWithAliases { .. } => Some(None),
            _ => None,
        })
        .collect()
}

/// Plan `stmt`. Redshift lets a select item use the alias of an earlier item of the same
/// select list (`select 'NO' as auto, auto as generated`), as its drivers' metadata
/// queries do. A column of the queried tables keeps precedence over such an alias, so only
/// a name the planner cannot find is replaced by the aliased expression, and planned again.
pub(crate) async fn plan_statement(state: &SessionState, stmt: Statement) -> Result<LogicalPlan> {
    use datafusion::common::SchemaError;
    use datafusion::error::DataFusionError;
    let mut stmt = stmt;
    crate::sql::pivot::rewrite(state, &mut stmt).await?;
    integers_as_booleans(&mut stmt);
    let mut first_error = None;
    // Each round resolves one alias; a select list has only so many.
    for _ in 0..64 {
        let e = match state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt.clone())))
            .await
        {
            Ok(plan) => return Ok(plan),
            Err(e) => e,
        };
        let missing = match e.find_root() {
            DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
                SchemaError::FieldNotFound { field, .. } if field.relation.is_none() => {
                    Some(field.name.clone())
                }
                _ => None,
            },
            _ => None,
        };
        first_error.get_or_insert(e);
        if !missing.is_some_and(|name| inline_lateral_alias(&mut stmt, &name)) {
            break;
        }
    }
    Err(first_error.expect("planned at least once").into())
}

/// Replace, in every select list of `stmt`, the unqualified references to `name` that
/// follow an item aliased `name` by that item's expression, and those in the select's
/// WHERE clause. Whether anything changed.
fn inline_lateral_alias(stmt: &mut Statement, name: &str) -> bool {
    use datafusion::sql::sqlparser::ast::{
        Expr, Query, SelectItem, SetExpr, VisitMut, VisitorMut, visit_expressions_mut,
    };
    use std::ops::ControlFlow;
    fn in_set_expr(body: &mut SetExpr, name: &str, changed: &mut bool) {
        match body {
            SetExpr::Select(select) => {
                let mut aliased: Option<Expr> = None;
                for item in select.projection.iter_mut() {
                    let expr = match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                        _ => continue,
                    };
                    if let Some(aliased) = &aliased {
                        let _ = visit_expressions_mut(expr, |e| {
                            if let Expr::Identifier(id) = e
                                && crate::sql::names::ident_name(id) == name
                            {
                                *e = Expr::Nested(Box::new(aliased.clone()));
                                *changed = true;
                            }
                            ControlFlow::<()>::Continue(())
                        });
                    }
                    if let SelectItem::ExprWithAlias { expr, alias } = item
                        && aliased.is_none()
                        && crate::sql::names::ident_name(alias) == name
                    {
                        aliased = Some(expr.clone());
                    }
                }
                // Redshift also resolves a select-list alias in WHERE (sqlalchemy-redshift's
                // reflection filters on `schema`, an alias of `n.nspname`).
                if let (Some(aliased), Some(selection)) = (&aliased, select.selection.as_mut()) {
                    let _ = visit_expressions_mut(selection, |e| {
                        if let Expr::Identifier(id) = e
                            && crate::sql::names::ident_name(id) == name
                        {
                            *e = Expr::Nested(Box::new(aliased.clone()));
                            *changed = true;
                        }
                        ControlFlow::<()>::Continue(())
                    });
                }
            }
            SetExpr::Query(q) => in_set_expr(q.body.as_mut(), name, changed),
            SetExpr::SetOperation { left, right, .. } => {
                in_set_expr(left.as_mut(), name, changed);
                in_set_expr(right.as_mut(), name, changed);
            }
            _ => {}
        }
    }
    struct Queries<'a>(&'a str, bool);
    impl VisitorMut for Queries<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            in_set_expr(q.body.as_mut(), self.0, &mut self.1);
            ControlFlow::Continue(())
        }
    }
    let mut queries = Queries(name, false);
    let _ = stmt.visit(&mut queries);
    queries.1
}

/// Integer literals used as operands of AND / OR (`where 1 and …`, as sqlalchemy-redshift
/// writes) are booleans to Redshift: zero is false, anything else true.
fn integers_as_booleans(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value, visit_expressions_mut};
    use std::ops::ControlFlow;
    let _ = visit_expressions_mut(stmt, |e| {
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(op, BinaryOperator::And | BinaryOperator::Or)
        {
            for side in [left.as_mut(), right.as_mut()] {
                if let Expr::Value(v) = side
                    && let Value::Number(n, _) = &v.value
                    && let Ok(n) = n.parse::<i64>()
                {
                    *side = Expr::Value(Value::Boolean(n != 0).into());
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}
/// Give repeated unaliased select items (`select x, x …`, `insert … select v, v …`) unique
/// aliases: PostgreSQL allows them, DataFusion's projections need unique names. Result
/// columns keep their PostgreSQL names through [`pg_column_names`], computed beforehand.
pub(crate) fn alias_repeated_select_items(stmt: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};
    fn in_query(q: &mut Query) {
        let mut body = q.body.as_mut();
        loop {
            match body {
                SetExpr::Select(select) => {
                    let mut seen = std::collections::HashSet::new();
                    for (i, item) in select.projection.iter_mut().enumerate() {
                        let SelectItem::UnnamedExpr(e) = item else {
                            continue;
                        };
                        // A cast of a column is named after the column, as in PostgreSQL
                        // (DataFusion gives it the column's own name, which then clashes
                        // with the column when ORDER BY adds it).
                        let column = match e {
                            Expr::Cast { expr, .. } => match expr.as_ref() {
                                Expr::Identifier(id) => Some(id.clone()),
                                Expr::CompoundIdentifier(ids) => ids.last().cloned(),
                                _ => None,
                            },
                            _ => None,
                        };
                        let key = column
                            .as_ref()
                            .map_or_else(|| e.to_string(), |c| c.value.to_lowercase());
                        let alias = if !seen.insert(key) {
                            Ident::new(format!("?column{}?", i + 1))
                        } else if let Some(c) = column {
                            c
                        } else {
                            continue;
                        };
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias,
                        };
                    }
                    return;
                }
                SetExpr::Query(q) => body = q.body.as_mut(),
                SetExpr::SetOperation { left, .. } => body = left.as_mut(),
                _ => return,
            }
        }
    }
    match stmt {
        Statement::Query(q) => in_query(q),
        Statement::Insert(insert) => {
            if let Some(source) = insert.source.as_mut() {
                in_query(source);
            }
        }
        _ => {}
    }
}

/// The result schema of `plan`, with PostgreSQL's column names where [`pg_column_names`]
/// has them.
pub(crate) fn pg_named_schema(plan: &LogicalPlan, stmt: &Statement) -> SchemaRef {
    let arrow = plan.schema().as_arrow().clone();
    let Some(names) = pg_column_names(stmt).filter(|n| n.len() == arrow.fields().len()) else {
        return Arc::new(arrow);
    };
    let fields: Vec<Field> = arrow
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| match n {
            Some(n) => f.as_ref().clone().with_name(n),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}
