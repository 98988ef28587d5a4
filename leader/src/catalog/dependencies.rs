//! What depends on what in one catalog snapshot: the changes a DROP or a rename implies
//! for the views and foreign keys that name a relation, and the refusal of writes to a
//! view.

use super::{CatalogOp, CatalogState};
use std::ops::ControlFlow;

use crate::error::{Result, code};
use crate::sql_err;

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
            for op in crate::catalog::dependencies::cascade_ops(&scratch, id) {
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

/// The catalog changes that drop, with CASCADE, the FOREIGN KEYs of other tables that
/// reference table `id` (PostgreSQL drops just those constraints, not their tables).
pub fn cascade_ops(view: &CatalogState, id: u64) -> Vec<CatalogOp> {
    view.referencing(id, None)
        .into_iter()
        .map(|c| CatalogOp::DropConstraint {
            table_id: c.table,
            name: c.name.clone(),
        })
        .collect()
}
