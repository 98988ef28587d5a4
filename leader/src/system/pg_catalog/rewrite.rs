//! The rewrite of the PostgreSQL-only syntax catalog queries use (`::regclass`,
//! `COLLATE`, `pg_catalog.`-qualified function names, functions in FROM, correlated
//! scalar subqueries) into what DataFusion plans.

use super::functions::EXPANDARRAY;
use super::*;

pub(super) const AGGREGATES: &[&str] = &[
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

pub(super) fn func_name(f: &sql::Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_default()
}

pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
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
pub(super) fn pg_only_type(t: &SqlDataType) -> Option<String> {
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

pub(super) fn is_text_type(t: &SqlDataType) -> bool {
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
pub(super) const FROM_FUNCTIONS: &[&str] = &[
    "current_database",
    "current_schema",
    "current_user",
    "session_user",
    "version",
    "pg_backend_pid",
];

/// Redshift's record-returning function listing the columns of late-binding views,
/// called with a column definition list (`… cols(view_schema name, …)`).
pub(super) const LATE_BINDING_VIEW_COLUMNS: &str = "pg_get_late_binding_view_cols";

/// `FROM f()` for a scalar function `f`: PostgreSQL makes it a one-row relation with
/// one column named `f`; here it becomes `(SELECT f() AS f) AS f`. And
/// `FROM pg_get_late_binding_view_cols() cols(c type, …)` becomes an empty relation of
/// those columns.
pub(super) struct ScalarFunctionsInFrom;

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
            let source = late_binding_columns_schema();
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
                LATE_BINDING_COLUMNS_RELATION
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

pub(super) fn display_args(args: &[FunctionArg]) -> String {
    args.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn rewrite_expr(e: &mut Expr) {
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
                && matches!(
                    name.as_str(),
                    "current_user" | "session_user" | "user" | "current_user_id"
                )
            {
                *e = call(&name, vec![]);
            }
        }
        Expr::Identifier(id)
            if id.quote_style.is_none()
                && matches!(
                    id.value.to_lowercase().as_str(),
                    "current_user" | "session_user" | "user" | "current_user_id"
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
pub(super) fn wrap_projection(q: &mut sql::Query, agg: &str) -> bool {
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
pub(super) fn prefix_each_element(q: &sql::Query) -> Option<Expr> {
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
pub(super) fn from_names(select: &sql::Select) -> Vec<String> {
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

pub(super) fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
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
pub(super) fn references(e: &Expr, inner: &[String]) -> (bool, bool) {
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
pub(super) fn lift_correlated_conditions(q: &sql::Query) -> Option<Expr> {
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
