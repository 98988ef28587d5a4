//! What one statement may ask of the leader before it is planned: its size in bytes and how
//! deeply its expressions, subqueries and set operations nest.
//!
//! Why limits at all: parsing, our rewrites, DataFusion's planner and optimizer, plan
//! serialization and expression evaluation all recurse over the statement's tree, and a
//! stack overflow aborts the whole process — no `catch_unwind` stops it. So a statement is
//! made shallow or refused right after parsing, and everything after that recurses at
//! most [`MAX_NESTING`] levels deep on threads whose stacks are sized for it
//! (`THREAD_STACK_BYTES` in the `basalt` binary).
//!
//! - Long AND / OR chains, which BI tools and ORMs generate by the thousand, parse as
//!   left-deep trees. Both operators are associative (in SQL's three-valued logic too), so
//!   a chain of [`BALANCE_MIN_TERMS`] or more terms is rebuilt as a balanced tree of the
//!   same terms in the same order: 10,000 terms nest 14 levels instead of 10,000, and
//!   short chains — every ordinary query — are left exactly as written. Long UNION ALL
//!   chains are balanced the same way.
//! - Whatever still nests deeper than [`MAX_NESTING`] fails with PostgreSQL's
//!   `54001 stack depth limit exceeded`, and a statement longer than Redshift's
//!   16 MB with Redshift's `54000 Statement is too large`.
//! - The parser builds left-deep chains (`1+1+…`, `x::t::t…`) in a loop, and dropping
//!   such a tree recurses once per level. Parsing (and so any drop of a rejected tree) runs
//!   on a thread whose stack grows with the statement's length ([`on_parse_stack`]), so no
//!   text up to the size limit can overflow it.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, SetOperator, SetQuantifier, Statement, Values, Visit,
    VisitMut, Visitor, VisitorMut,
};

use crate::error::{LeaderError, Result, code};
use crate::sql_err;

/// Redshift's limit on one statement's text (its documented quota: 16 MB).
pub const MAX_STATEMENT_BYTES: usize = 16 * 1024 * 1024;

/// How deeply expressions, subqueries and set operations may nest, counted in tree levels
/// (a scalar subquery is two: the expression and its query). Two costs set it: every
/// level is stack in the recursions of planning, serialization and evaluation (a few kB
/// to tens of kB a level in an unoptimized build), and DataFusion's planning of a
/// left-deep chain grows faster than the square of its depth (`a+a+…+a` of 400 terms
/// plans in ~9 s unoptimized, ~0.5 s optimized). 500 levels keep both small while no
/// realistic query comes near it: generated SQL is wide — long AND/OR lists, IN lists,
/// CASE branches, select lists, none of which nest — not deep.
pub const MAX_NESTING: usize = 500;

/// The parser's own recursion limit. It counts parser calls, several to a tree level
/// (a derived table is a query, a SELECT, a FROM list and a table factor), so it is set
/// well above [`MAX_NESTING`], which the tree itself is then held to; it exists so that
/// the parser's recursion is bounded too.
pub const PARSER_RECURSION_LIMIT: usize = 4 * MAX_NESTING;

/// The fewest AND / OR terms that are rebuilt as a balanced tree; shorter chains keep
/// their shape, so plans and EXPLAIN output of ordinary queries do not change.
pub const BALANCE_MIN_TERMS: usize = 64;

/// Stack a parse needs for each byte of statement text. A left-deep chain gains a level
/// per operator, so at most one level per byte of text; dropping or walking a level takes
/// under 1 kB of stack even without optimization (measured by the test below).
const PARSE_STACK_PER_BYTE: usize = 1024;

/// Statements shorter than this parse on the calling thread: their deepest possible tree
/// fits the runtime threads' stacks many times over.
const INLINE_PARSE_BYTES: usize = 8 * 1024;

/// How deeply subqueries in expressions (scalar, `IN (SELECT …)`, `EXISTS`) may nest in
/// one another. DataFusion checks the plan of every nested subquery once for each level
/// that encloses it, so each level doubles the planning work: 16 levels plan in ~20 s
/// unoptimized (~1 s optimized), 100 would never finish — and hold a runtime thread while
/// they try. Subqueries in FROM do not multiply like this and count only towards
/// [`MAX_NESTING`].
pub const MAX_SUBQUERY_NESTING: usize = 16;

/// `54001`: the statement nests more deeply than [`MAX_NESTING`].
pub fn stack_depth_exceeded() -> LeaderError {
    too_complex(format!(
        "Expressions, subqueries and set operations may nest at most {MAX_NESTING} levels \
         deep; long AND/OR and UNION ALL chains, IN lists and CASE branches have no such limit."
    ))
}

/// `54001` with PostgreSQL's message (its SQLSTATE is `statement_too_complex`) and `hint`.
fn too_complex(hint: String) -> LeaderError {
    sql_err!(
        code::STATEMENT_TOO_COMPLEX,
        "stack depth limit exceeded{}{hint}",
        code::HINT_SEPARATOR
    )
}

/// `54000`: the statement's text is longer than Redshift accepts.
pub fn check_statement_size(sql: &str) -> Result<()> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(sql_err!(
            code::PROGRAM_LIMIT_EXCEEDED,
            "Statement is too large. Statement Size: {} bytes. Maximum Allowed: {} bytes",
            sql.len(),
            MAX_STATEMENT_BYTES
        ));
    }
    Ok(())
}

/// Run `parse` (which parses `sql`) where a tree as deep as `sql` is long can be built and
/// dropped: inline for short text, else on a thread whose stack is sized for it.
pub fn on_parse_stack<T: Send>(sql: &str, parse: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    if sql.len() <= INLINE_PARSE_BYTES {
        return parse();
    }
    let stack = (sql.len() * PARSE_STACK_PER_BYTE).max(16 << 20);
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("basalt-parse".into())
            .stack_size(stack)
            .spawn_scoped(scope, parse)
            .map_err(|e| sql_err!(code::OUT_OF_MEMORY, "cannot start a parser thread: {e}"))?;
        handle
            .join()
            .unwrap_or_else(|panic| Err(crate::error::panicked(panic.as_ref())))
    })
}

/// Make `stmt` shallow enough to plan: balance long AND / OR chains, then refuse it with
/// [`stack_depth_exceeded`] if it still nests more than [`MAX_NESTING`] levels.
pub fn shape(stmt: &mut Statement) -> Result<()> {
    let _ = stmt.visit(&mut Balance);
    let mut depth = Depth::default();
    if Visit::visit(&*stmt, &mut depth).is_break() {
        if depth.subqueries > MAX_SUBQUERY_NESTING {
            return Err(too_complex(format!(
                "Subqueries in expressions may nest at most {MAX_SUBQUERY_NESTING} levels deep."
            )));
        }
        return Err(stack_depth_exceeded());
    }
    Ok(())
}

/// Rebuilds every AND / OR chain of [`BALANCE_MIN_TERMS`] or more terms as a balanced
/// tree, top down, so the visitor only ever descends into the balanced form.
struct Balance;

impl VisitorMut for Balance {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let op = match expr {
            Expr::BinaryOp {
                op: op @ (BinaryOperator::And | BinaryOperator::Or),
                ..
            } => op.clone(),
            _ => return ControlFlow::Continue(()),
        };
        if chain_terms(expr, &op) >= BALANCE_MIN_TERMS {
            let chain = std::mem::replace(expr, placeholder());
            *expr = balanced(as_in_lists(chain_leaves(chain, &op), &op), &op);
        }
        ControlFlow::Continue(())
    }

    /// A long chain of one set operation: `UNION ALL` is associative, so it is balanced
    /// like AND / OR (the first branch stays first, and names the columns).
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier: SetQuantifier::All,
            ..
        } = query.body.as_ref()
        else {
            return ControlFlow::Continue(());
        };
        if union_all_branches(&query.body) >= BALANCE_MIN_TERMS {
            let chain = std::mem::replace(query.body.as_mut(), SetExpr::Values(no_rows()));
            *query.body = balanced_union_all(union_all_leaves(chain));
        }
        ControlFlow::Continue(())
    }
}

fn is_union_all(e: &SetExpr) -> bool {
    matches!(
        e,
        SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier: SetQuantifier::All,
            ..
        }
    )
}

fn no_rows() -> Values {
    Values {
        explicit_row: false,
        value_keyword: false,
        rows: vec![],
    }
}

/// How many branches the UNION ALL chain `body` joins, without recursion.
fn union_all_branches(body: &SetExpr) -> usize {
    let mut branches = 0;
    let mut pending = vec![body];
    while let Some(e) = pending.pop() {
        match e {
            SetExpr::SetOperation { left, right, .. } if is_union_all(e) => {
                pending.push(right);
                pending.push(left);
            }
            _ => branches += 1,
        }
    }
    branches
}

/// The branches of the UNION ALL chain `body`, in order, taken apart without recursion.
fn union_all_leaves(body: SetExpr) -> Vec<SetExpr> {
    let mut leaves = Vec::new();
    let mut pending = vec![body];
    while let Some(e) = pending.pop() {
        if is_union_all(&e) {
            let SetExpr::SetOperation { left, right, .. } = e else {
                unreachable!("a set operation")
            };
            pending.push(*right);
            pending.push(*left);
        } else {
            leaves.push(e);
        }
    }
    leaves
}

fn balanced_union_all(mut branches: Vec<SetExpr>) -> SetExpr {
    if branches.len() == 1 {
        return branches.pop().expect("one branch");
    }
    let right = branches.split_off(branches.len() / 2);
    SetExpr::SetOperation {
        left: Box::new(balanced_union_all(branches)),
        op: SetOperator::Union,
        set_quantifier: SetQuantifier::All,
        right: Box::new(balanced_union_all(right)),
    }
}

/// A cheap expression to stand in while a tree is taken apart.
fn placeholder() -> Expr {
    Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into())
}

/// How many terms the `op` chain rooted at `expr` joins, counted without recursion (and
/// without looking inside parentheses, which are a term of their own).
fn chain_terms(expr: &Expr, op: &BinaryOperator) -> usize {
    let mut terms = 0;
    let mut pending = vec![expr];
    while let Some(e) = pending.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                pending.push(right);
                pending.push(left);
            }
            _ => terms += 1,
        }
    }
    terms
}

/// The terms of the `op` chain `expr`, left to right, taken apart without recursion.
fn chain_leaves(expr: Expr, op: &BinaryOperator) -> Vec<Expr> {
    let mut leaves = Vec::new();
    let mut pending = vec![expr];
    while let Some(e) = pending.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if &o == op => {
                pending.push(*right);
                pending.push(*left);
            }
            other => leaves.push(other),
        }
    }
    leaves
}

/// The terms of an OR chain that compare one expression for equality with a literal
/// (`x = 1 OR x = 2 …`) as one `x IN (1, 2, …)`, and those of an AND chain that compare it
/// for inequality as one `x NOT IN (…)` — the same truth value, NULLs included — in the
/// place of the first such term; the other terms stay as they are. A flat list is what
/// planning and evaluation handle best: a long chain of comparisons costs them far more
/// than its length.
fn as_in_lists(terms: Vec<Expr>, chain: &BinaryOperator) -> Vec<Expr> {
    let (compare, negated) = match chain {
        BinaryOperator::Or => (BinaryOperator::Eq, false),
        _ => (BinaryOperator::NotEq, true),
    };
    // Per term: the expression it compares with a literal, if it is such a comparison.
    let mut lists: Vec<(Expr, Vec<Expr>)> = Vec::new();
    let mut out: Vec<Result<Expr, usize>> = Vec::with_capacity(terms.len());
    for term in terms {
        match term {
            Expr::BinaryOp { left, op, right } if op == compare && is_literal(&right) => {
                match lists.iter().position(|(x, _)| *x == *left) {
                    Some(i) => lists[i].1.push(*right),
                    None => {
                        out.push(Err(lists.len()));
                        lists.push((*left, vec![*right]));
                    }
                }
            }
            other => out.push(Ok(other)),
        }
    }
    let mut lists: Vec<Option<(Expr, Vec<Expr>)>> = lists.into_iter().map(Some).collect();
    out.into_iter()
        .map(|t| match t {
            Ok(term) => term,
            Err(i) => {
                let (x, mut values) = lists[i].take().expect("each list is placed once");
                if values.len() == 1 {
                    Expr::BinaryOp {
                        left: Box::new(x),
                        op: compare.clone(),
                        right: Box::new(values.remove(0)),
                    }
                } else {
                    Expr::InList {
                        expr: Box::new(x),
                        list: values,
                        negated,
                    }
                }
            }
        })
        .collect()
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    }
}

/// `terms` joined by `op` as a balanced tree (depth ⌈log₂ n⌉), in the same order.
fn balanced(mut terms: Vec<Expr>, op: &BinaryOperator) -> Expr {
    if terms.len() == 1 {
        return terms.pop().expect("one term");
    }
    let right = terms.split_off(terms.len() / 2);
    Expr::BinaryOp {
        left: Box::new(balanced(terms, op)),
        op: op.clone(),
        right: Box::new(balanced(right, op)),
    }
}

/// Counts the levels of expressions and queries open on the way down, and stops at the
/// first that exceeds [`MAX_NESTING`]; a query's set operations count as the levels of
/// their chain (after balancing, a 1,000-way UNION ALL nests 10 deep).
#[derive(Default)]
struct Depth {
    open: usize,
    /// Subquery expressions open on the way down.
    subqueries: usize,
    /// The levels each open query added (1 + its set operations' depth).
    queries: Vec<usize>,
}

fn is_subquery(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
    )
}

impl Depth {
    fn enter(&mut self, levels: usize) -> ControlFlow<()> {
        self.open += levels;
        if self.open > MAX_NESTING {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if is_subquery(expr) {
            self.subqueries += 1;
            if self.subqueries > MAX_SUBQUERY_NESTING {
                return ControlFlow::Break(());
            }
        }
        self.enter(1)
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if is_subquery(expr) {
            self.subqueries -= 1;
        }
        self.open -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let levels = 1 + set_operation_depth(&query.body);
        self.queries.push(levels);
        self.enter(levels)
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.open -= self.queries.pop().unwrap_or(0);
        ControlFlow::Continue(())
    }
}

/// How many set operations deep `body` nests (0 for a plain SELECT), without recursion.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 0)];
    while let Some((e, depth)) = pending.pop() {
        if let SetExpr::SetOperation { left, right, .. } = e {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        } else {
            deepest = deepest.max(depth);
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_sql;

    fn or_chain(n: usize) -> String {
        let terms: Vec<String> = (0..n).map(|i| format!("a = {i}")).collect();
        format!("select count(*) from t where {}", terms.join(" or "))
    }

    fn where_expr(sql: &str) -> Expr {
        let (stmt, _) = parse_sql(sql).unwrap().remove(0);
        let Statement::Query(q) = stmt else {
            panic!("a query")
        };
        let SetExpr::Select(s) = *q.body else {
            panic!("a select")
        };
        s.selection.expect("a WHERE")
    }

    fn depth_of(e: &Expr) -> usize {
        match e {
            Expr::BinaryOp { left, right, .. } => 1 + depth_of(left).max(depth_of(right)),
            _ => 1,
        }
    }

    #[test]
    fn long_chains_are_balanced_in_order() {
        let terms: Vec<String> = (0..10_000).map(|i| format!("a{i} > {i}")).collect();
        let e = where_expr(&format!("select 1 from t where {}", terms.join(" or ")));
        // ⌈log₂ 10,000⌉ = 14 levels of OR, then each term's `>` and its operands.
        assert_eq!(depth_of(&e), 16);
        let leaves = chain_leaves(e, &BinaryOperator::Or);
        assert_eq!(leaves.len(), 10_000);
        assert_eq!(leaves[0].to_string(), "a0 > 0");
        assert_eq!(leaves[9_999].to_string(), "a9999 > 9999");
    }

    #[test]
    fn long_comparison_chains_become_in_lists() {
        let e = where_expr(&or_chain(10_000));
        let Expr::InList {
            expr,
            list,
            negated: false,
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!(expr.to_string(), "a");
        assert_eq!(list.len(), 10_000);
        assert_eq!(list[9_999].to_string(), "9999");
        let terms: Vec<String> = (0..100)
            .map(|i| format!("a <> {i} and b <> -{i}"))
            .collect();
        let sql = format!("select 1 from t where c and {}", terms.join(" and "));
        let e = where_expr(&sql);
        let leaves = chain_leaves(e, &BinaryOperator::And);
        assert_eq!(leaves.len(), 3);
        assert_eq!(leaves[0].to_string(), "c");
        assert!(leaves[1].to_string().starts_with("a NOT IN (0, 1, 2"));
        assert!(leaves[2].to_string().starts_with("b NOT IN (-0, -1, -2"));
    }

    #[test]
    fn long_union_all_chains_are_balanced_in_order() {
        let sql = (0..1_000)
            .map(|i| format!("select {i} as x"))
            .collect::<Vec<_>>()
            .join(" union all ");
        let (stmt, _) = parse_sql(&sql).unwrap().remove(0);
        let Statement::Query(q) = stmt else {
            panic!("a query")
        };
        assert_eq!(set_operation_depth(&q.body), 10);
        let branches = union_all_leaves(*q.body);
        assert_eq!(branches.len(), 1_000);
        assert_eq!(branches[0].to_string(), "SELECT 0 AS x");
        assert_eq!(branches[999].to_string(), "SELECT 999 AS x");
    }

    #[test]
    fn short_chains_keep_their_shape() {
        let sql = or_chain(BALANCE_MIN_TERMS - 1);
        assert_eq!(depth_of(&where_expr(&sql)), BALANCE_MIN_TERMS);
        let (stmt, _) = parse_sql("select 1 where a = 1 or b = 2 and c = 3")
            .unwrap()
            .remove(0);
        assert_eq!(stmt.to_string(), "SELECT 1 WHERE a = 1 OR b = 2 AND c = 3");
    }

    #[test]
    fn deep_statements_fail_with_54001_and_long_ones_with_54000() {
        for sql in [
            format!("select {}", vec!["1"; 5_000].join("+")),
            format!("select {}1{}", "(".repeat(5_000), ")".repeat(5_000)),
            format!("select {}", vec!["'a'::text"; 2_000].join("||")),
            format!("select {}1{}", "(select ".repeat(17), ")".repeat(17)),
            format!(
                "select 1 from t where a in {}1{}",
                "(select ".repeat(17),
                ")".repeat(17)
            ),
            format!("select 1 from t where {} = 1", vec!["a"; 600].join("+")),
        ] {
            let err = parse_sql(&sql).unwrap_err();
            assert_eq!(err.sqlstate().0, "54001", "{}", &sql[..40]);
            assert!(err.sqlstate().1.starts_with("stack depth limit exceeded"));
        }
        let at_limit = format!("select {}", vec!["1"; MAX_NESTING - 2].join("+"));
        parse_sql(&at_limit).unwrap();
        let nested = format!("select {}1{}", "(select ".repeat(16), ")".repeat(16));
        parse_sql(&nested).unwrap();
        let derived = format!(
            "select * from {}t{}",
            "(select * from ".repeat(100),
            ") s".repeat(100)
        );
        parse_sql(&derived).unwrap();
        let long = format!("select '{}'", "x".repeat(MAX_STATEMENT_BYTES));
        let err = parse_sql(&long).unwrap_err();
        assert_eq!(err.sqlstate().0, "54000");
        assert_eq!(
            err.sqlstate().1,
            format!(
                "Statement is too large. Statement Size: {} bytes. Maximum Allowed: 16777216 bytes",
                MAX_STATEMENT_BYTES + 9
            )
        );
    }

    /// A chain of a million levels (one per two bytes of text, the densest there is) is
    /// parsed, refused and dropped on the parse thread without overflowing it.
    const TEST_CHAIN: usize = 1_000_000;

    #[test]
    fn the_longest_chain_is_refused_without_overflow() {
        let sql = format!("select 1{}", "+1".repeat(TEST_CHAIN));
        let err = parse_sql(&sql).unwrap_err();
        assert_eq!(err.sqlstate().0, "54001");
        // A syntax error at the very end: the parser drops the whole chain itself.
        let err = parse_sql(&format!("{sql} +")).unwrap_err();
        assert_eq!(err.sqlstate().0, "42601");
    }
}
