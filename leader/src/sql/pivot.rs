//! PIVOT and UNPIVOT, as Redshift defines them. sqlparser parses both; DataFusion cannot
//! plan them, so before planning each is replaced by the query it stands for:
//!
//! - `src PIVOT (agg(e) [AS a], … FOR c IN (v [AS n], …))` groups `src` by every column
//!   that neither an aggregate nor `c` uses, and computes `agg(CASE WHEN c = v THEN e END)`
//!   per IN value and aggregate, in a column named after the value (`n`, or the value
//!   itself), followed by `_a` when the aggregate has an alias (or the function name when
//!   there are several without one);
//! - `src UNPIVOT [INCLUDE | EXCLUDE NULLS] (v FOR n IN (c [AS a], …))` is one SELECT per
//!   IN column, `UNION ALL`ed: the other columns of `src`, then `n` (the column's alias or
//!   name) and `v` (its value), without the NULL values unless INCLUDE NULLS.
//!
//! Which columns `src` has is learned by planning `SELECT * FROM src`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::execution::session_state::SessionState;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, NullInclusion, PivotValueSource,
    Statement, TableFactor, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;

use super::dialect::BasaltDialect;
use super::names::{ident_name, quote_ident};
use crate::error::{Result, code};
use crate::sql_err;

/// Replace every PIVOT and UNPIVOT in `stmt` (innermost first) by its query.
pub(crate) async fn rewrite(state: &SessionState, stmt: &mut Statement) -> Result<()> {
    // The statement's WITH clause is in scope of its FROM clauses, so of the inputs too.
    let with = match stmt {
        Statement::Query(q) => q.with.as_ref().map(|w| format!("{w} ")),
        _ => None,
    };
    // A handful of nested operators at most; each round replaces one.
    for _ in 0..32 {
        let Some(found) = first_operator(stmt) else {
            return Ok(());
        };
        let columns = input_columns(state, with.as_deref().unwrap_or(""), &found).await?;
        let replacement = match &found {
            TableFactor::Pivot {
                table,
                aggregate_functions,
                value_column,
                value_source,
                default_on_null,
                alias,
            } => {
                if default_on_null.is_some() {
                    return Err(unsupported("PIVOT … DEFAULT ON NULL"));
                }
                let [column] = value_column.as_slice() else {
                    return Err(unsupported("PIVOT FOR more than one column"));
                };
                let PivotValueSource::List(values) = value_source else {
                    return Err(unsupported("PIVOT IN (ANY …) or IN (subquery)"));
                };
                let sql = pivot_query(table, aggregate_functions, column, values, &columns)?;
                derived(&sql, alias.clone())?
            }
            TableFactor::Unpivot {
                table,
                value,
                name,
                columns: unpivoted,
                null_inclusion,
                alias,
            } => {
                let include_nulls = matches!(null_inclusion, Some(NullInclusion::IncludeNulls));
                let sql = unpivot_query(table, value, name, unpivoted, include_nulls, &columns)?;
                derived(&sql, alias.clone())?
            }
            _ => unreachable!("first_operator finds only PIVOT and UNPIVOT"),
        };
        replace_first_operator(stmt, replacement);
    }
    Err(unsupported("more than 32 PIVOT and UNPIVOT operators"))
}

fn unsupported(what: &str) -> crate::error::LeaderError {
    sql_err!(code::FEATURE_NOT_SUPPORTED, "{what} is not supported")
}

fn is_operator(t: &TableFactor) -> bool {
    matches!(t, TableFactor::Pivot { .. } | TableFactor::Unpivot { .. })
}

/// The first PIVOT or UNPIVOT whose input holds no other one.
fn first_operator(stmt: &Statement) -> Option<TableFactor> {
    struct Find(Option<TableFactor>);
    impl Visitor for Find {
        type Break = ();
        fn post_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if is_operator(t) {
                self.0 = Some(t.clone());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(None);
    let _ = stmt.visit(&mut find);
    find.0
}

/// Put `replacement` where [`first_operator`] found its operator.
fn replace_first_operator(stmt: &mut Statement, replacement: TableFactor) {
    struct Replace(Option<TableFactor>);
    impl VisitorMut for Replace {
        type Break = ();
        fn post_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if is_operator(t) {
                if let Some(r) = self.0.take() {
                    *t = r;
                }
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let _ = stmt.visit(&mut Replace(Some(replacement)));
}

/// The column names of the operator's input, in order (`with`: the statement's WITH
/// clause, if any, as text).
async fn input_columns(
    state: &SessionState,
    with: &str,
    operator: &TableFactor,
) -> Result<Vec<String>> {
    let (TableFactor::Pivot { table, .. } | TableFactor::Unpivot { table, .. }) = operator else {
        return Ok(vec![]);
    };
    let Statement::Query(q) = parse(&format!("{with}SELECT * FROM {table}"))? else {
        return Err(sql_err!(code::INTERNAL, "PIVOT input is not a query"));
    };
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(Statement::Query(q))))
        .await?;
    Ok(plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

fn parse(sql: &str) -> Result<Statement> {
    let (stmt, _) = crate::sql::parse::parse_sql(sql)?
        .into_iter()
        .next()
        .ok_or_else(|| sql_err!(code::INTERNAL, "empty generated statement"))?;
    Ok(stmt)
}

fn parse_expr(sql: &str) -> Result<Expr> {
    Parser::new(&BasaltDialect::default())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| sql_err!(code::SYNTAX_ERROR, "syntax error: {e}"))
}

/// `sql` (a query) as a derived table called `alias`.
fn derived(
    sql: &str,
    alias: Option<datafusion::sql::sqlparser::ast::TableAlias>,
) -> Result<TableFactor> {
    let Statement::Query(subquery) = parse(sql)? else {
        return Err(sql_err!(code::INTERNAL, "generated PIVOT is not a query"));
    };
    Ok(TableFactor::Derived {
        lateral: false,
        subquery,
        alias,
        sample: None,
    })
}

/// Names of the columns `exprs` refer to (lower case, the last part of qualified names).
fn referenced<'a>(exprs: impl Iterator<Item = &'a Expr>) -> BTreeSet<String> {
    struct Refs(BTreeSet<String>);
    impl Visitor for Refs {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(i) => {
                    self.0.insert(ident_name(i));
                }
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.0.insert(ident_name(last));
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs(BTreeSet::new());
    for e in exprs {
        let _ = e.visit(&mut refs);
    }
    refs.0
}

/// What a PIVOT IN value names its column: its alias, a string's text, or the value.
fn value_name(e: &datafusion::sql::sqlparser::ast::ExprWithAlias) -> String {
    if let Some(a) = &e.alias {
        return ident_name(a);
    }
    match &e.expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.to_lowercase(),
            other => other.to_string(),
        },
        other => other.to_string().to_lowercase(),
    }
}

fn pivot_query(
    input: &TableFactor,
    aggregates: &[datafusion::sql::sqlparser::ast::ExprWithAlias],
    column: &Expr,
    values: &[datafusion::sql::sqlparser::ast::ExprWithAlias],
    columns: &[String],
) -> Result<String> {
    let used = referenced(aggregates.iter().map(|a| &a.expr).chain([column]));
    let groups: Vec<String> = columns
        .iter()
        .filter(|c| !used.contains(c.as_str()))
        .map(|c| quote_ident(c))
        .collect();
    let mut select = groups.clone();
    for v in values {
        for a in aggregates {
            let Expr::Function(f) = &a.expr else {
                return Err(sql_err!(
                    code::SYNTAX_ERROR,
                    "PIVOT needs aggregate functions, not {}",
                    a.expr
                ));
            };
            let mut f = f.clone();
            let when = |then: &str| format!("CASE WHEN ({column}) = ({}) THEN {then} END", v.expr);
            if let FunctionArguments::List(list) = &mut f.args {
                for arg in &mut list.args {
                    if let FunctionArg::Unnamed(arg) = arg {
                        let then = match arg {
                            FunctionArgExpr::Expr(e) => format!("({e})"),
                            // COUNT(*): the rows of this value.
                            _ => "1".into(),
                        };
                        *arg = FunctionArgExpr::Expr(parse_expr(&when(&then))?);
                    }
                }
            }
            let mut name = value_name(v);
            match &a.alias {
                Some(alias) => name = format!("{name}_{}", ident_name(alias)),
                None if aggregates.len() > 1 => {
                    name = format!("{name}_{}", f.name.to_string().to_lowercase())
                }
                None => {}
            }
            select.push(format!("{f} AS {}", quote_ident(&name)));
        }
    }
    let mut sql = format!("SELECT {} FROM {input}", select.join(", "));
    if !groups.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", groups.join(", ")));
    }
    Ok(sql)
}

fn unpivot_query(
    input: &TableFactor,
    value: &Expr,
    name: &datafusion::sql::sqlparser::ast::Ident,
    unpivoted: &[datafusion::sql::sqlparser::ast::ExprWithAlias],
    include_nulls: bool,
    columns: &[String],
) -> Result<String> {
    let Expr::Identifier(value) = value else {
        return Err(unsupported("UNPIVOT into more than one value column"));
    };
    let used = referenced(unpivoted.iter().map(|c| &c.expr));
    let others: Vec<String> = columns
        .iter()
        .filter(|c| !used.contains(c.as_str()))
        .map(|c| quote_ident(c))
        .collect();
    let branches: Vec<String> = unpivoted
        .iter()
        .map(|c| {
            let label = match (&c.alias, &c.expr) {
                (Some(a), _) => ident_name(a),
                (None, Expr::Identifier(i)) => ident_name(i),
                (None, e) => e.to_string(),
            };
            let mut items = others.clone();
            items.push(format!(
                "'{}' AS {}",
                label.replace('\'', "''"),
                quote_ident(&ident_name(name))
            ));
            items.push(format!("{} AS {}", c.expr, quote_ident(&ident_name(value))));
            let mut branch = format!("SELECT {} FROM {input}", items.join(", "));
            if !include_nulls {
                branch.push_str(&format!(" WHERE {} IS NOT NULL", c.expr));
            }
            branch
        })
        .collect();
    if branches.is_empty() {
        return Err(sql_err!(
            code::SYNTAX_ERROR,
            "UNPIVOT needs at least one column"
        ));
    }
    Ok(branches.join(" UNION ALL "))
}
