//! `COMMENT ON {TABLE | VIEW | COLUMN} name IS 'text' | NULL`: the texts live in the
//! catalog (by relation id and column number, 0 for the relation), commit with the
//! transaction like any other catalog change, and are what `pg_description`,
//! `obj_description`, `col_description`, psql's `\d+` and the drivers' `remarks` show.

use datafusion::sql::sqlparser::ast::{CommentObject, ObjectName};

use crate::catalog::{CatalogOp, Relation};
use crate::commands::context::{Outcome, StatementContext};
use crate::error::{Result, code};
use crate::sql_err;

impl StatementContext {
    pub(crate) fn comment(
        &mut self,
        object_type: CommentObject,
        name: &ObjectName,
        text: Option<String>,
        if_exists: bool,
    ) -> Result<Outcome> {
        let view = self.view();
        // The relation's part of the name, and the column's when commenting on one.
        let (relation_name, column) = match object_type {
            CommentObject::Table | CommentObject::View => (name.clone(), None),
            CommentObject::Column => {
                let mut parts = name.0.clone();
                let column = parts
                    .pop()
                    .filter(|_| !parts.is_empty())
                    .ok_or_else(|| sql_err!(code::SYNTAX_ERROR, "column name must be qualified"))?;
                let column = column
                    .as_ident()
                    .map(crate::sql::names::ident_name)
                    .unwrap_or_else(|| column.to_string());
                (ObjectName(parts), Some(column))
            }
            other => {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "COMMENT ON {other} is not supported yet"
                ));
            }
        };
        let (schema, rel) = crate::sql::names::split_name(&relation_name)?;
        let Some(relation) = view.relation(&schema, &rel) else {
            if if_exists {
                return Ok(Outcome::Command("COMMENT".into()));
            }
            return Err(sql_err!(
                code::UNDEFINED_TABLE,
                "relation \"{rel}\" does not exist"
            ));
        };
        match (&object_type, &relation) {
            (CommentObject::Table, Relation::View(_)) => {
                return Err(sql_err!(
                    code::WRONG_OBJECT_TYPE,
                    "\"{rel}\" is not a table"
                ));
            }
            (CommentObject::View, Relation::Table(_)) => {
                return Err(sql_err!(code::WRONG_OBJECT_TYPE, "\"{rel}\" is not a view"));
            }
            _ => {}
        }
        let column = match column {
            None => 0,
            Some(c) => {
                let names: Vec<&str> = match &relation {
                    Relation::Table(t) => t.columns.iter().map(|c| c.name.as_str()).collect(),
                    Relation::View(v) => v.columns.iter().map(|c| c.name.as_str()).collect(),
                };
                let at = names.iter().position(|n| *n == c).ok_or_else(|| {
                    sql_err!(
                        code::UNDEFINED_COLUMN,
                        "column \"{c}\" of relation \"{rel}\" does not exist"
                    )
                })?;
                at as u32 + 1
            }
        };
        // PostgreSQL removes the comment for NULL and for an empty text alike.
        let text = text.filter(|t| !t.is_empty());
        self.record(vec![CatalogOp::SetComment {
            relation: relation.id(),
            column,
            text,
        }])?;
        Ok(Outcome::Command("COMMENT".into()))
    }
}
