//! Parsing Redshift SQL into statements: the shape limits of [`super::limits`] first,
//! then Basalt's dialect, the table attributes (DISTSTYLE, SORTKEY, ENCODE, …) lifted out
//! of CREATE TABLE, and the rewrites of [`super::functions`] that turn Redshift's forms
//! into ones DataFusion plans.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::dialect::SortKind;
use crate::error::{Result, code};
use crate::sql_err;

use super::access::AccessStatement;
use super::dialect::*;
use super::tokens::is_word;

/// Table attributes removed from a statement's text before sqlparser saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableAttrs {
    pub sort_kind: Option<SortKind>,
    pub encode_auto: bool,
    /// `ANALYZE COMPRESSION …` (rather than plain ANALYZE).
    pub analyze_compression: bool,
    /// `COMPROWS n` of ANALYZE COMPRESSION.
    pub comprows: Option<u64>,
    /// COPY and UNLOAD parameters sqlparser does not know, cut from a COPY or UNLOAD
    /// statement: upper-case name and its argument, if any (`MAXERROR 10`, `FILLRECORD`,
    /// `ACCESS_KEY_ID 'k'`, …).
    pub copy_params: Vec<(String, Option<String>)>,
    /// The identity or privilege statement this is (CREATE USER, GRANT, …); the parsed
    /// statement beside it is only a placeholder.
    pub access: Option<AccessStatement>,
}

/// COPY and UNLOAD parameters the dialect cuts (sqlparser parses the others), and whether
/// each takes an argument.
const COPY_EXTRA_PARAMS: &[(&str, bool)] = &[
    ("MAXERROR", true),
    ("IGNOREBLANKLINES", false),
    ("FILLRECORD", false),
    ("TRIMBLANKS", false),
    ("ROUNDEC", false),
    ("EXPLICIT_IDS", false),
    ("NOLOAD", false),
    ("COMPROWS", true),
    ("ACCESS_KEY_ID", true),
    ("SECRET_ACCESS_KEY", true),
    ("SESSION_TOKEN", true),
    ("KMS_KEY_ID", true),
    ("MASTER_SYMMETRIC_KEY", true),
];

/// Parse `sql` (one or more statements) in Basalt's Redshift dialect.
///
/// Statements come back shallow enough to plan (see [`crate::sql::limits`]): long AND / OR
/// chains balanced, anything nested deeper than the limit refused with 54001.
pub fn parse_sql(sql: &str) -> Result<Vec<(Statement, TableAttrs)>> {
    super::limits::check_statement_size(sql)?;
    super::limits::on_parse_stack(sql, || parse_shaped(sql))
}

fn parse_shaped(sql: &str) -> Result<Vec<(Statement, TableAttrs)>> {
    let dialect = BasaltDialect::default();
    let (text, attrs) = strip_table_attrs(sql, &dialect)?;
    let mut statements = Parser::new(&dialect)
        .with_recursion_limit(super::limits::PARSER_RECURSION_LIMIT)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => super::limits::stack_depth_exceeded(),
            e => sql_err!(code::SYNTAX_ERROR, "{}", syntax_message(&e)),
        })?;
    statements.iter_mut().try_for_each(super::limits::shape)?;
    statements.iter().try_for_each(refuse_unexecuted)?;
    statements
        .iter_mut()
        .try_for_each(super::functions::rewrite)?;
    let n = statements.len();
    let mut attrs = attrs;
    attrs.resize(n.max(attrs.len()), TableAttrs::default());
    let mut access = dialect.access.take().into_iter();
    for (stmt, attrs) in statements.iter().zip(attrs.iter_mut()) {
        if is_access_marker(stmt) {
            let parsed = access
                .next()
                .ok_or_else(|| sql_err!(code::INTERNAL, "lost a parsed access statement"))?;
            attrs.access = Some(parsed?);
        }
    }
    Ok(statements.into_iter().zip(attrs).collect())
}

/// Clauses the parser accepts that nothing executes (`CONNECT BY`, ClickHouse's
/// PREWHERE, BigQuery's `SELECT AS STRUCT`): refused with 0A000 naming them, never
/// dropped — a query without its CONNECT BY returns every row.
fn refuse_unexecuted(stmt: &Statement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{Query, SetExpr, Visit, Visitor};
    use std::ops::ControlFlow;
    struct Unexecuted;
    fn check(body: &SetExpr) -> ControlFlow<&'static str> {
        match body {
            SetExpr::Select(s) if !s.connect_by.is_empty() => ControlFlow::Break("CONNECT BY"),
            SetExpr::Select(s) if s.prewhere.is_some() => ControlFlow::Break("PREWHERE"),
            SetExpr::Select(s) if s.value_table_mode.is_some() => {
                ControlFlow::Break("SELECT AS STRUCT | VALUE")
            }
            SetExpr::SetOperation { left, right, .. } => {
                check(left)?;
                check(right)
            }
            _ => ControlFlow::Continue(()),
        }
    }
    impl Visitor for Unexecuted {
        type Break = &'static str;
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<&'static str> {
            check(&query.body)
        }
    }
    match stmt.visit(&mut Unexecuted) {
        ControlFlow::Break(clause) => Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "{clause} is not supported yet"
        )),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn syntax_message(e: &ParserError) -> String {
    let msg = match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".into(),
    };
    format!("syntax error: {msg}")
}

/// Cut `COMPOUND`/`INTERLEAVED` (before `SORTKEY`), table-level `ENCODE AUTO`, ANALYZE's
/// Redshift-only words and the COPY/UNLOAD parameters of [`COPY_EXTRA_PARAMS`] out of
/// `sql`, returning the remaining text and, per statement, what was cut.
fn strip_table_attrs(sql: &str, dialect: &BasaltDialect) -> Result<(String, Vec<TableAttrs>)> {
    let upper = sql.to_ascii_uppercase();
    if !upper.contains("COMPOUND")
        && !upper.contains("INTERLEAVED")
        && !upper.contains("AUTO")
        && !upper.contains("ANALYZE")
        && !upper.contains("COPY")
        && !upper.contains("UNLOAD")
    {
        return Ok((sql.to_string(), vec![]));
    }
    let tokens = Tokenizer::new(dialect, sql)
        .tokenize_with_location()
        .map_err(|e| sql_err!(code::SYNTAX_ERROR, "syntax error: {e}"))?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |t: &TokenWithSpan| -> Option<(usize, usize)> {
        let pos = |l: u64, c: u64| -> Option<usize> {
            let start = *line_starts.get(l.checked_sub(1)? as usize)?;
            let line = &sql[start..];
            Some(
                start
                    + line
                        .char_indices()
                        .nth(c.checked_sub(1)? as usize)
                        .map_or(line.len(), |(i, _)| i),
            )
        };
        Some((
            pos(t.span.start.line, t.span.start.column)?,
            pos(t.span.end.line, t.span.end.column)?,
        ))
    };
    let significant: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut cuts: Vec<(usize, usize)> = vec![];
    let mut attrs = vec![TableAttrs::default()];
    let mut depth = 0i32;
    // Whether the current statement is an ANALYZE, whose Redshift-only words
    // (VERBOSE, COMPRESSION, COMPROWS n, PREDICATE/ALL COLUMNS) are cut as well.
    let mut analyze = false;
    let mut copy = false;
    let mut statement_start = true;
    for (i, t) in significant.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon => {
                attrs.push(TableAttrs::default());
                statement_start = true;
                analyze = false;
                copy = false;
                continue;
            }
            _ => {}
        }
        let next = significant.get(i + 1);
        let cur = attrs.last_mut().expect("non-empty");
        if std::mem::take(&mut statement_start) {
            copy = is_word(t, "COPY") || is_word(t, "UNLOAD");
            analyze = is_word(t, "ANALYZE");
            if analyze
                && let Some(n) = next
                && is_word(n, "VERBOSE")
                && let Some(span) = offset(n)
            {
                cuts.push(span);
            }
            continue;
        }
        if copy && depth == 0 {
            if let Token::Word(w) = &t.token
                && let Some((name, takes_arg)) = COPY_EXTRA_PARAMS
                    .iter()
                    .find(|(n, _)| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(n))
                && let Some((a, mut b)) = offset(t)
            {
                let mut arg = None;
                if *takes_arg {
                    let mut k = i + 1;
                    if significant.get(k).is_some_and(|n| is_word(n, "AS")) {
                        k += 1;
                    }
                    if let Some(n) = significant.get(k)
                        && let Token::Number(v, _) | Token::SingleQuotedString(v) = &n.token
                        && let Some((_, end)) = offset(n)
                    {
                        arg = Some(v.clone());
                        b = end;
                    }
                }
                cur.copy_params.push((name.to_string(), arg));
                cuts.push((a, b));
            }
            continue;
        }
        if analyze && depth == 0 {
            let prev = significant.get(i - 1);
            if is_word(t, "COMPRESSION")
                && prev.is_some_and(|p| is_word(p, "ANALYZE") || is_word(p, "VERBOSE"))
                && let Some(span) = offset(t)
            {
                cur.analyze_compression = true;
                cuts.push(span);
            } else if is_word(t, "COMPROWS")
                && let Some(n) = next
                && let Token::Number(v, _) = &n.token
                && let (Some(a), Some(b)) = (offset(t), offset(n))
            {
                cur.comprows = v.parse().ok();
                cuts.push((a.0, b.1));
            } else if (is_word(t, "PREDICATE") || is_word(t, "ALL"))
                && let Some(n) = next
                && is_word(n, "COLUMNS")
                && let (Some(a), Some(b)) = (offset(t), offset(n))
            {
                cuts.push((a.0, b.1));
            }
            continue;
        }
        if depth == 0 && next.is_some_and(|n| is_word(n, "SORTKEY")) {
            let kind = if is_word(t, "COMPOUND") {
                Some(SortKind::Compound)
            } else if is_word(t, "INTERLEAVED") {
                Some(SortKind::Interleaved)
            } else {
                None
            };
            if let (Some(kind), Some(span)) = (kind, offset(t)) {
                cur.sort_kind = Some(kind);
                cuts.push(span);
            }
        }
        if depth == 0
            && is_word(t, "ENCODE")
            && let Some(n) = next
            && is_word(n, "AUTO")
            && let (Some(a), Some(b)) = (offset(t), offset(n))
        {
            cur.encode_auto = true;
            cuts.push((a.0, b.1));
        }
    }
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (a, b) in cuts {
        out.push_str(&sql[last..a]);
        out.push(' ');
        last = b;
    }
    out.push_str(&sql[last..]);
    Ok((out, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alter_table_layout_changes() {
        let layout = |sql: &str| {
            let (stmt, _) = parse_sql(sql).unwrap().remove(0);
            let Statement::AlterTable(at) = stmt else {
                panic!("not an ALTER TABLE: {sql}")
            };
            alter_layout(&at)
        };
        assert_eq!(
            layout("alter table s.t alter diststyle key distkey \"K\", alter sortkey (a, b)"),
            Some(vec![
                LayoutChange::DistStyle("KEY".into()),
                LayoutChange::DistKey("K".into()),
                LayoutChange::SortKey(vec!["a".into(), "b".into()]),
            ])
        );
        assert_eq!(
            layout("ALTER TABLE t ALTER ENCODE AUTO, ALTER SORTKEY NONE"),
            Some(vec![LayoutChange::EncodeAuto, LayoutChange::SortKeyNone])
        );
        assert_eq!(
            layout("alter table t alter compound sortkey (x)"),
            Some(vec![LayoutChange::SortKey(vec!["x".into()])])
        );
        // Other ALTER TABLEs are not layout changes.
        assert_eq!(layout("alter table t add column c int"), None);
        assert!(parse_sql("alter table t alter diststyle sideways").is_err());
    }

    #[test]
    fn show_listings_become_catalog_queries() {
        for sql in [
            "SHOW SCHEMAS FROM DATABASE $1 LIKE $2",
            "show tables from schema $1.$2 like $3 limit $4",
            "show columns from table dev.public.t like 'a%' limit 5",
            "show databases",
        ] {
            let (stmt, _) = parse_sql(sql).unwrap().remove(0);
            assert!(matches!(stmt, Statement::Query(_)), "{sql}: {stmt}");
        }
        assert!(parse_sql("show tables from schema dev.public extra").is_err());
    }

    #[test]
    fn parses_redshift_ddl() {
        let sql = "create table t (id bigint identity(1,1) encode az64, k int distkey sortkey, \
                   s varchar(10) encode lzo not null, g bigint generated by default as identity(0, -1)) \
                   diststyle key interleaved sortkey(k, id) encode auto; select 1";
        let parsed = parse_sql(sql).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].1.sort_kind, Some(SortKind::Interleaved));
        assert!(parsed[0].1.encode_auto);
        assert_eq!(parsed[1].1, TableAttrs::default());
        let Statement::CreateTable(ct) = &parsed[0].0 else {
            panic!("not a create table")
        };
        assert_eq!(ct.columns.len(), 4);
        let opts: Vec<String> = ct.columns[0]
            .options
            .iter()
            .map(|o| o.option.to_string())
            .collect();
        assert_eq!(opts, vec!["IDENTITY 1 1", "ENCODE az64"]);
    }

    #[test]
    fn cuts_unload_credentials() {
        let sql = "unload ('select * from t where s = ''ACCESS_KEY_ID''') to 's3://b/p_' \
                   access_key_id 'k' secret_access_key 's' session_token 't' parallel off";
        let parsed = parse_sql(sql).unwrap();
        assert_eq!(
            parsed[0].1.copy_params,
            vec![
                ("ACCESS_KEY_ID".to_string(), Some("k".to_string())),
                ("SECRET_ACCESS_KEY".to_string(), Some("s".to_string())),
                ("SESSION_TOKEN".to_string(), Some("t".to_string())),
            ]
        );
        let Statement::Unload {
            query_text,
            options,
            ..
        } = &parsed[0].0
        else {
            panic!("not an unload")
        };
        assert_eq!(
            query_text.as_deref(),
            Some("select * from t where s = 'ACCESS_KEY_ID'")
        );
        assert_eq!(options.len(), 1);
    }

    #[test]
    fn reports_syntax_errors() {
        let err = parse_sql("selec 1").unwrap_err();
        assert_eq!(err.sqlstate().0, code::SYNTAX_ERROR);
    }

    #[test]
    fn parses_psql_operators_and_escape_strings() {
        let (stmt, _) = parse_sql(
            "select 1 from pg_class c where c.relname OPERATOR(pg_catalog.~) '^(t)$' \
             and c.relname OPERATOR(pg_catalog.!~) 'x' or E'a\\nb' = 'c'",
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            stmt.to_string(),
            "SELECT 1 FROM pg_class c WHERE c.relname ~ '^(t)$' AND c.relname !~ 'x' OR E'a\\nb' = 'c'"
        );
        let err = parse_sql("select 1 where 'a' OPERATOR(pg_catalog.%%) 'b'").unwrap_err();
        assert_eq!(err.sqlstate().0, code::SYNTAX_ERROR);
    }
}
