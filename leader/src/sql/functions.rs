//! Redshift's SQL functions and the syntax around them. The functions themselves are
//! defined in `basalt_worker::functions`, because workers evaluate them inside plan
//! fragments and must decode them by name; this module registers them (plus SYSDATE,
//! which needs the session's transaction) in each statement's DataFusion session, and
//! rewrites the Redshift spellings DataFusion cannot plan into ones it can: `TOP n`,
//! `APPROXIMATE COUNT(DISTINCT …)`, bare `SYSDATE`, `EXTRACT` with Redshift's date parts,
//! unquoted date parts (`DATEADD(month, …)`), `NVL` with any number of arguments,
//! `DECODE`, `CHARINDEX`, `LISTAGG … WITHIN GROUP`, `RATIO_TO_REPORT` and postfix `ISNULL`.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{
    DateTimeField, DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, LimitClause, Query, SetExpr, Statement, TopQuantity, Value, VisitMut,
    VisitorMut, WindowType,
};
use datafusion::sql::sqlparser::parser::ParserError;

use super::dialect::{expr, simple_name};
use crate::error::Result;

/// Register Basalt's functions in a statement's session; `transaction_start` is when the
/// enclosing transaction block began (SYSDATE), if there is one.
pub(crate) fn register(
    state: &mut SessionState,
    transaction_start: Option<DateTime<Utc>>,
) -> Result<()> {
    basalt_worker::functions::register(state)?;
    state.register_udf(std::sync::Arc::new(basalt_worker::functions::sysdate(
        transaction_start,
    )))?;
    Ok(())
}

/// Rewrite the Redshift forms of one parsed statement that DataFusion does not plan.
pub(crate) fn rewrite(stmt: &mut Statement) -> Result<()> {
    let mut r = Rewriter;
    match stmt.visit(&mut r) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(crate::sql_err!(
            crate::error::code::SYNTAX_ERROR,
            "syntax error: {e}"
        )),
    }
}

struct Rewriter;

/// The unnamed plain arguments of a call, or `None` for any other form.
fn plain_args(f: &mut Function) -> Option<Vec<&mut Expr>> {
    let FunctionArguments::List(list) = &mut f.args else {
        return None;
    };
    list.args
        .iter_mut()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// Table functions whose one column PostgreSQL names after the function's alias
/// (`generate_series(1, 10) g` has column `g`).
const SCALAR_SET_FUNCTIONS: &[&str] = &["generate_series", "unnest"];

impl VisitorMut for Rewriter {
    type Break = ParserError;

    /// `FROM generate_series(1, 10) g`: PostgreSQL's rule names the column `g` too.
    fn pre_visit_table_factor(
        &mut self,
        factor: &mut datafusion::sql::sqlparser::ast::TableFactor,
    ) -> ControlFlow<ParserError> {
        if let datafusion::sql::sqlparser::ast::TableFactor::Table {
            name,
            args: Some(_),
            alias: Some(alias),
            ..
        } = factor
            && alias.columns.is_empty()
            && name.0.len() == 1
            && name.0[0]
                .as_ident()
                .is_some_and(|i| SCALAR_SET_FUNCTIONS.contains(&i.value.to_lowercase().as_str()))
        {
            alias.columns = vec![datafusion::sql::sqlparser::ast::TableAliasColumnDef {
                name: alias.name.clone(),
                data_type: None,
            }];
        }
        ControlFlow::Continue(())
    }

    /// `SELECT TOP n …` is `SELECT … LIMIT n`.
    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<ParserError> {
        if let SetExpr::Select(select) = query.body.as_mut()
            && query.limit_clause.is_none()
            && let Some(top) = &select.top
            && !top.percent
            && !top.with_ties
        {
            let limit = match &top.quantity {
                Some(TopQuantity::Constant(n)) => Expr::value(Value::Number(n.to_string(), false)),
                Some(TopQuantity::Expr(e)) => e.clone(),
                None => return ControlFlow::Continue(()),
            };
            select.top = None;
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(limit),
                offset: None,
                limit_by: vec![],
            });
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<ParserError> {
        match rewrite_expr(e) {
            Ok(Some(new)) => *e = new,
            Ok(None) => {}
            Err(err) => return ControlFlow::Break(err),
        }
        ControlFlow::Continue(())
    }
}

/// The replacement of one expression, if it is a Redshift form that needs one.
fn rewrite_expr(e: &mut Expr) -> std::result::Result<Option<Expr>, ParserError> {
    if let Expr::Extract {
        field, expr: inner, ..
    } = e
    {
        // Redshift's EXTRACT returns an integer (epoch seconds need 64 bits); the date part
        // keeps Redshift's spelling for date_part to interpret.
        let part = match field {
            DateTimeField::Custom(i) => i.value.clone(),
            other => other.to_string(),
        };
        let ty = if part.eq_ignore_ascii_case("epoch") {
            "BIGINT"
        } else {
            "INTEGER"
        };
        let part = part.replace('\'', "''");
        return expr(&format!("CAST(date_part('{part}', {inner}) AS {ty})")).map(Some);
    }
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    let Some(name) = simple_name(f) else {
        return Ok(None);
    };
    match name.as_str() {
        // Redshift's date parts may be bare words: DATEADD(month, 1, d).
        "dateadd" | "datediff" | "date_part" | "datepart" | "date_trunc" => {
            if let Some(mut args) = plain_args(f)
                && let Some(first) = args.first_mut()
                && let Expr::Identifier(part) = &**first
                && part.quote_style.is_none()
            {
                **first = Expr::value(Value::SingleQuotedString(part.value.clone()));
            }
            Ok(None)
        }
        "nvl" => {
            f.name = datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                datafusion::sql::sqlparser::ast::Ident::new("coalesce"),
            ]);
            Ok(None)
        }
        "charindex" => {
            if let Some(args) = plain_args(f)
                && let [needle, haystack] = args.as_slice()
            {
                return expr(&format!("strpos({haystack}, {needle})")).map(Some);
            }
            Ok(None)
        }
        "decode" => {
            let Some(args) = plain_args(f) else {
                return Ok(None);
            };
            if args.len() < 3 {
                // Two arguments: DataFusion's decode(bytes, encoding).
                return Ok(None);
            }
            // NULL matches NULL in DECODE, unlike in CASE.
            let subject = &args[0];
            let mut sql = String::from("CASE");
            for pair in args[1..].chunks(2) {
                match pair {
                    [search, result] => sql.push_str(&format!(
                        " WHEN ({subject}) IS NOT DISTINCT FROM ({search}) THEN {result}"
                    )),
                    [default] => sql.push_str(&format!(" ELSE {default}")),
                    _ => unreachable!("chunks of two"),
                }
            }
            sql.push_str(" END");
            expr(&sql).map(Some)
        }
        "listagg" => {
            let distinct = matches!(
                &f.args,
                FunctionArguments::List(l) if l.duplicate_treatment == Some(DuplicateTreatment::Distinct)
            );
            let within = f.within_group.clone();
            let over = f.over.clone();
            let Some(args) = plain_args(f) else {
                return Ok(None);
            };
            let (value, delimiter) = match args.as_slice() {
                [v] => (v.to_string(), "''".to_string()),
                [v, d] => (v.to_string(), d.to_string()),
                _ => return Ok(None),
            };
            // string_agg takes text. With DISTINCT, DataFusion orders only by the argument
            // itself, so ordering by the value becomes ordering by that text.
            let text = format!("CAST({value} AS VARCHAR)");
            let within: Vec<String> = within
                .iter()
                .map(|o| match distinct && o.expr.to_string() == value {
                    true => format!("{text}{}", o.options),
                    false => o.to_string(),
                })
                .collect();
            let order = if within.is_empty() {
                String::new()
            } else {
                format!(" ORDER BY {}", within.join(", "))
            };
            match over {
                None => {
                    let distinct = if distinct { "DISTINCT " } else { "" };
                    expr(&format!("string_agg({distinct}{text}, {delimiter}{order})")).map(Some)
                }
                // The window form: DataFusion has no ordered aggregates over windows, so the
                // values are gathered in the window's own order over the whole partition.
                Some(WindowType::WindowSpec(spec)) if !distinct && spec.order_by.is_empty() => {
                    let partition = if spec.partition_by.is_empty() {
                        String::new()
                    } else {
                        let p: Vec<String> =
                            spec.partition_by.iter().map(|e| e.to_string()).collect();
                        format!("PARTITION BY {}", p.join(", "))
                    };
                    expr(&format!(
                        "CASE WHEN count({value}) OVER ({partition}) = 0 THEN NULL \
                         ELSE array_to_string(array_agg({text}) OVER ({partition}{order} \
                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), {delimiter}) END"
                    ))
                    .map(Some)
                }
                Some(_) => Ok(None),
            }
        }
        // The window form of an inverse distribution function: DataFusion refuses OVER
        // with WITHIN GROUP, but takes the ordering key as the first argument.
        "percentile_cont" | "percentile_disc"
            if f.over.is_some()
                && f.within_group.len() == 1
                && f.within_group[0].options.asc != Some(false) =>
        {
            let key = f.within_group[0].expr.clone();
            if let FunctionArguments::List(list) = &mut f.args
                && list.args.len() == 1
            {
                list.args
                    .insert(0, FunctionArg::Unnamed(FunctionArgExpr::Expr(key)));
                f.within_group.clear();
            }
            Ok(None)
        }
        "ratio_to_report" => {
            let over = f.over.as_ref().map(|o| o.to_string());
            if let (Some(over), Some(args)) = (over, plain_args(f))
                && let [value] = args.as_slice()
            {
                return expr(&format!(
                    "(CAST({value} AS DOUBLE PRECISION) / \
                     SUM(CAST({value} AS DOUBLE PRECISION)) OVER {over})"
                ))
                .map(Some);
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    fn rewritten(sql: &str) -> String {
        let mut stmts = crate::sql::parse::parse_sql(sql).unwrap();
        stmts.remove(0).0.to_string()
    }

    #[test]
    fn redshift_forms_become_datafusion_ones() {
        assert_eq!(
            rewritten("select top 3 a from t order by a"),
            "SELECT a FROM t ORDER BY a LIMIT 3"
        );
        assert_eq!(
            rewritten("select approximate count(distinct a) from t"),
            "SELECT CAST(approx_distinct(a) AS BIGINT) FROM t"
        );
        assert_eq!(
            rewritten("select sysdate, dateadd(month, 1, d) from t"),
            "SELECT sysdate(), dateadd('month', 1, d) FROM t"
        );
        assert_eq!(
            rewritten("select decode(a, 1, 'x', 'y')"),
            "SELECT CASE WHEN (a) IS NOT DISTINCT FROM (1) THEN 'x' ELSE 'y' END"
        );
        assert_eq!(
            rewritten("select listagg(a, ',') within group (order by b desc) from t"),
            "SELECT string_agg(CAST(a AS VARCHAR), ',' ORDER BY b DESC) FROM t"
        );
        assert_eq!(
            rewritten("select listagg(distinct a) within group (order by a) from t"),
            "SELECT string_agg(DISTINCT CAST(a AS VARCHAR), '' ORDER BY CAST(a AS VARCHAR)) FROM t"
        );
        assert_eq!(
            rewritten("select extract(mins from ts) from t"),
            "SELECT CAST(date_part('mins', ts) AS INTEGER) FROM t"
        );
        assert!(crate::sql::parse::parse_sql("select approximate sum(a) from t").is_err());
    }
}

/// Text cast to DATE, TIMESTAMP or TIMESTAMPTZ anywhere in a plan — written
/// (`'…'::timestamp`) or added by DataFusion's type coercion (an INSERT's values, a
/// comparison with a string) — goes through Redshift's datetime input
/// ([`basalt_worker::functions::TEXT_TO_TEMPORAL`]) instead of Arrow's ISO-only parser;
/// a timestamp cast to text through Redshift's output
/// ([`basalt_worker::functions::TEMPORAL_TO_TEXT`], `2024-05-17 10:00:00`) instead of
/// Arrow's ISO form with its `T`. Runs after type coercion, which is what adds the
/// implicit casts.
#[derive(Debug, Default)]
pub(crate) struct RedshiftDatetimeInput;

impl datafusion::optimizer::AnalyzerRule for RedshiftDatetimeInput {
    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _: &datafusion::config::ConfigOptions,
    ) -> datafusion::error::Result<datafusion::logical_expr::LogicalPlan> {
        use datafusion::arrow::datatypes::DataType;
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::logical_expr::{Cast, Expr as LExpr, ExprSchemable, lit};
        let udf = basalt_worker::functions::scalar_udf(basalt_worker::functions::TEXT_TO_TEMPORAL)
            .expect("the datetime input function is defined");
        let to_text =
            basalt_worker::functions::scalar_udf(basalt_worker::functions::TEMPORAL_TO_TEXT)
                .expect("the datetime output function is defined");
        plan.transform_up_with_subqueries(|node| {
            let inputs = node.inputs();
            let schema = if inputs.is_empty() {
                node.schema().as_ref().clone()
            } else {
                datafusion::logical_expr::utils::merge_schema(&inputs)
            };
            // The rewritten expressions keep their names: the plan above refers to them.
            let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| {
                    let LExpr::Cast(Cast { expr, field }) = &e else {
                        return Ok(Transformed::no(e));
                    };
                    if matches!(
                        field.data_type(),
                        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                    ) {
                        let Ok(DataType::Timestamp(_, zone)) = expr.get_type(&schema) else {
                            return Ok(Transformed::no(e));
                        };
                        let call = to_text.call(vec![(**expr).clone(), lit(zone.is_some())]);
                        return Ok(Transformed::yes(LExpr::Cast(Cast::new_from_field(
                            Box::new(call),
                            field.clone(),
                        ))));
                    }
                    let target = match field.data_type() {
                        DataType::Date32 => "date",
                        DataType::Timestamp(_, None) => "timestamp",
                        DataType::Timestamp(_, Some(_)) => "timestamptz",
                        _ => return Ok(Transformed::no(e)),
                    };
                    let is_text = matches!(
                        expr.get_type(&schema),
                        Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
                    );
                    if !is_text {
                        return Ok(Transformed::no(e));
                    }
                    let call = udf.call(vec![(**expr).clone(), lit(target)]);
                    // Keep the cast's exact type (its unit, a TIMESTAMPTZ's zone name).
                    Ok(Transformed::yes(LExpr::Cast(Cast::new_from_field(
                        Box::new(call),
                        field.clone(),
                    ))))
                })
                .map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "redshift_datetime_input"
    }
}
