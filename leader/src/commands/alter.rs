//! ALTER TABLE: RENAME TO (of a table or a view), ADD, DROP, RENAME and ALTER COLUMN,
//! and the layout changes (ALTER … ENCODE of a column lives in `maintenance.rs`).
//!
//! ADD, DROP and RENAME COLUMN change only the catalog: segments keep every column under
//! the name it was stored with (`ColumnDef::stored`), so a renamed column is still found
//! in older segments, a dropped one is simply no longer read, and rows of segments written
//! before a column was added read as the value its DEFAULT had when ADD COLUMN ran (or
//! NULL). ALTER COLUMN … TYPE changes a VARCHAR's length in the catalog only (a shorter
//! one after checking that every stored value fits). They run in transaction blocks like
//! other DDL.
//!
//! ALTER DISTSTYLE, DISTKEY, [COMPOUND] SORTKEY and ENCODE AUTO change where rows live or
//! how they are ordered and encoded: every live row is written again, through the
//! INSERT path, into segments of the new layout, and the new definition and the new
//! segments replace the old ones in one commit.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{AlterColumnOperation, AlterTable, AlterTableOperation};

use crate::catalog::{CatalogOp, DistStyle, TableDef};

use crate::commands::context::{Outcome, StatementContext};
use crate::commands::ddl;
use crate::error::{Result, code};
use crate::sql::SortKind;
use crate::sql::{LayoutChange, TableAttrs};
use crate::sql_err;

/// Whether `at` adds, drops or renames a column.
pub(crate) fn is_column_change(at: &AlterTable) -> bool {
    at.operations.iter().any(|op| {
        matches!(
            op,
            AlterTableOperation::AddColumn { .. }
                | AlterTableOperation::DropColumn { .. }
                | AlterTableOperation::RenameColumn { .. }
                | AlterTableOperation::AlterColumn {
                    op: AlterColumnOperation::SetDataType { .. },
                    ..
                }
        )
    })
}

fn altered() -> Outcome {
    Outcome::Command("ALTER TABLE".into())
}

impl StatementContext {
    /// `ADD [COLUMN]`, `DROP [COLUMN]` or `RENAME COLUMN`, one per statement as in Redshift.
    pub(crate) async fn alter_columns(&mut self, at: &AlterTable) -> Result<Outcome> {
        let [op] = at.operations.as_slice() else {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "ALTER TABLE can add, drop or rename only one column per statement"
            ));
        };
        let def = self.view().named_table(&at.name)?;
        // Changes that go with the column's: other tables' foreign keys a CASCADE drops, views
        // rewritten for a renamed column.
        let mut with = vec![];
        let op = match op {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                column_position,
                ..
            } => {
                if column_position.is_some() {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER TABLE ADD COLUMN always adds the last column"
                    ));
                }
                let mut column = ddl::added_column(column_def)?;
                if def.columns.iter().any(|c| c.name == column.name) && *if_not_exists {
                    return Ok(altered());
                }
                column.missing = match &column.default {
                    Some(default) => self.default_value(&def, &column, default).await?,
                    None => None,
                };
                if !column.nullable && column.missing.is_none() {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER TABLE ADD COLUMN defined as NOT NULL must have a non-null default expression"
                    ));
                }
                column.stored = def.fresh_stored_name(&column.name);
                CatalogOp::AddColumn {
                    table_id: def.id,
                    column,
                }
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                let [name] = column_names.as_slice() else {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER TABLE DROP COLUMN drops one column per statement"
                    ));
                };
                let name = crate::sql::names::ident_name(name);
                if *if_exists && !def.columns.iter().any(|c| c.name == name) {
                    return Ok(altered());
                }
                let i = def.column_index(&name)?;
                if def.dist == DistStyle::Key(i) {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "cannot drop distkey column \"{name}\""
                    ));
                }
                if def.sort_key.contains(&i) {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "cannot drop sortkey column \"{name}\""
                    ));
                }
                if def.columns.len() == 1 {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "cannot drop the last column of table \"{}\"",
                        def.name
                    ));
                }
                let stored = def.columns[i].stored.clone();
                // CASCADE takes other tables' FOREIGN KEYs that reference the column.
                if matches!(
                    drop_behavior,
                    Some(datafusion::sql::sqlparser::ast::DropBehavior::Cascade)
                ) {
                    let view = self.view();
                    with.extend(
                        view.referencing(def.id, Some(&stored))
                            .into_iter()
                            .map(|c| CatalogOp::DropConstraint {
                                table_id: c.table,
                                name: c.name.clone(),
                            }),
                    );
                }
                CatalogOp::DropColumn {
                    table_id: def.id,
                    stored,
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let i = def.column_index(&crate::sql::names::ident_name(old_column_name))?;
                let new = crate::sql::names::ident_name(new_column_name);
                // Normal views over the table keep reading the column under its old name.
                let mut columns: Vec<String> = def.columns.iter().map(|c| c.name.clone()).collect();
                columns[i] = new.clone();
                with.extend(crate::catalog::dependencies::rename_ops(
                    &self.view(),
                    (def.id, &def.schema, &def.name),
                    crate::catalog::dependencies::Renamed::Column {
                        old: &def.columns[i].name,
                        new: &new,
                        columns: &columns,
                    },
                )?);
                CatalogOp::RenameColumn {
                    table_id: def.id,
                    stored: def.columns[i].stored.clone(),
                    name: new,
                }
            }
            AlterTableOperation::AlterColumn {
                column_name,
                op:
                    AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    },
            } => {
                let i = def.column_index(&crate::sql::names::ident_name(column_name))?;
                let column = &def.columns[i];
                let new = crate::sql::types::SqlType::parse(&data_type.to_string())?;
                // Redshift changes only the length of a VARCHAR column, in place.
                let (
                    crate::sql::types::SqlType::Varchar(old_len),
                    crate::sql::types::SqlType::Varchar(new_len),
                ) = (&column.sql_type, &new)
                else {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER TABLE ALTER COLUMN TYPE can only change the length of a VARCHAR column (\"{}\" is {})",
                        column.name,
                        column.sql_type.display_name()
                    ));
                };
                if using.is_some() {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER TABLE ALTER COLUMN TYPE … USING is not supported"
                    ));
                }
                if matches!(
                    column.encoding.as_str(),
                    "bytedict" | "runlength" | "text255" | "text32k"
                ) {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "cannot alter the type of column \"{}\": its encoding {} does not support it",
                        column.name,
                        column.encoding
                    ));
                }
                let based_on = if new_len < old_len {
                    // A shorter length must still hold every value the table has.
                    let view = self.view();
                    let longest = self
                        .query_on(
                            view.clone(),
                            &format!(
                                "SELECT CAST(max(octet_length(\"{}\")) AS BIGINT) FROM \"{}\".\"{}\"",
                                column.name, def.schema, def.name
                            ),
                        )
                        .await?
                        .iter()
                        .find(|b| b.num_rows() > 0)
                        .map(|b| {
                            let c = b.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                            if c.is_null(0) { 0 } else { c.value(0) }
                        })
                        .unwrap_or(0);
                    if longest > i64::from(*new_len) {
                        return Err(sql_err!(
                            code::STRING_TOO_LONG,
                            "cannot alter column \"{}\" of relation \"{}\": target column size {new_len} should be greater or equal to current maximum column size {longest}",
                            column.name,
                            def.name
                        ));
                    }
                    Some(
                        view.tables
                            .get(&def.id)
                            .map(|t| t.segments.iter().map(|s| s.path.clone()).collect())
                            .unwrap_or_default(),
                    )
                } else {
                    None
                };
                CatalogOp::SetColumnType {
                    table_id: def.id,
                    stored: column.stored.clone(),
                    sql_type: new,
                    based_on,
                }
            }
            other => {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "ALTER TABLE {other} is not supported together with column changes"
                ));
            }
        };
        with.push(op);
        self.record(with)?;
        Ok(altered())
    }

    /// The value, as text, that rows already in `def` get for a column added with
    /// `default`: the expression evaluated once, now, as the column's type.
    async fn default_value(
        &mut self,
        def: &TableDef,
        column: &crate::catalog::ColumnDef,
        default: &str,
    ) -> Result<Option<String>> {
        let batches = self
            .query_on(self.view(), &format!("SELECT ({default})"))
            .await?;
        let Some(value) = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| b.column(0))
        else {
            return Ok(None);
        };
        if value.is_null(0) {
            return Ok(None);
        }
        let ty = column.sql_type.to_arrow();
        let bad = |e: datafusion::arrow::error::ArrowError| {
            sql_err!(
                code::INVALID_TEXT_REPRESENTATION,
                "default for column \"{}\" is not a valid {}: {e}",
                column.name,
                column.sql_type.display_name()
            )
        };
        let strict = CastOptions {
            safe: false,
            ..Default::default()
        };
        let value = cast_with_options(&value.slice(0, 1), &ty, &strict).map_err(bad)?;
        let text = cast(&value, &DataType::Utf8).map_err(bad)?;
        let text = text.as_string::<i32>().value(0).to_string();
        if let Some(max) = column.sql_type.max_bytes()
            && text.len() > max as usize
        {
            return Err(sql_err!(
                code::STRING_TOO_LONG,
                "value too long for type {}",
                column.sql_type.display_name()
            ));
        }
        // Scans turn the text back into the value: make sure they can.
        ScalarValue::try_from_string(text.clone(), &column.sql_type.to_arrow()).map_err(|e| {
            sql_err!(
                code::INVALID_TEXT_REPRESENTATION,
                "default of column \"{}\" of relation \"{}\": {e}",
                column.name,
                def.name
            )
        })?;
        Ok(Some(text))
    }

    /// `ALTER DISTSTYLE | DISTKEY | [COMPOUND] SORTKEY | ENCODE AUTO [, …]`: the table in
    /// its new layout, rows and definition committed together.
    pub(crate) async fn relayout(
        &mut self,
        at: &AlterTable,
        changes: Vec<LayoutChange>,
        attrs: &TableAttrs,
    ) -> Result<Outcome> {
        if self.txn.is_some() {
            return Err(sql_err!(
                code::ACTIVE_SQL_TRANSACTION,
                "ALTER TABLE ALTER DISTSTYLE, DISTKEY, SORTKEY or ENCODE cannot run inside a transaction block"
            ));
        }
        if attrs.sort_kind == Some(SortKind::Interleaved) {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "ALTER SORTKEY cannot make an INTERLEAVED sort key"
            ));
        }
        // One rewrite of a table at a time, as with VACUUM.
        let engine = self.engine.clone();
        let _running = engine.vacuum_lock.lock().await;
        let view = self.view();
        let def = view.named_table(&at.name)?;
        let new = new_layout(&def, &changes)?;
        let unchanged = |a: &TableDef, b: &TableDef| {
            a.dist == b.dist
                && a.sort_kind == b.sort_kind
                && a.sort_key == b.sort_key
                && a.columns
                    .iter()
                    .zip(&b.columns)
                    .all(|(x, y)| x.encoding == y.encoding)
        };
        let layout = CatalogOp::SetLayout {
            table_id: def.id,
            dist: new.dist.clone(),
            sort_kind: new.sort_kind,
            sort_key: new.sort_key.clone(),
            encodings: new.columns.iter().map(|c| c.encoding.clone()).collect(),
            encode_auto: new.encode_auto,
            based_on: def.segments.iter().map(|s| s.path.clone()).collect(),
        };
        if unchanged(&def, &new) || def.segments.is_empty() {
            self.commit_ops(vec![layout])?;
            return Ok(altered());
        }
        // Read the rows as they are and write them as the new layout says: the INSERT
        // path routes, sorts and encodes by the definition it is given.
        let mut shadow = (*view).clone();
        shadow.tables.insert(def.id, Arc::new(new.clone()));
        let name = format!(
            "{}.{}",
            crate::sql::names::quote_ident(&def.schema),
            crate::sql::names::quote_ident(&def.name)
        );
        let sql = format!("INSERT INTO {name} SELECT * FROM {name}");
        let (rows, ops) = self.insert_on(Arc::new(shadow), &sql, None).await?;
        let mut written = vec![];
        for op in &ops {
            if let CatalogOp::AddSegments { segments, .. } = op {
                written.extend(segments.iter().cloned());
            }
        }
        if rows != def.rows() {
            self.abandon(&ops);
            return Err(sql_err!(
                code::INTERNAL,
                "ALTER TABLE rewrote {rows} rows of {} but the table has {}",
                def.name,
                def.rows()
            ));
        }
        // Each slice's first new segment is its sorted region, as after a first load.
        let mut seen = BTreeSet::new();
        for s in &mut written {
            s.sorted_region = seen.insert(s.slice);
        }
        self.commit_ops(vec![
            layout,
            CatalogOp::ReplaceSegments {
                table_id: def.id,
                old: def.segments.clone(),
                new: written,
            },
        ])?;
        Ok(altered())
    }
}

/// `def` with the layout `changes` ask for, or Redshift's error for an impossible one.
fn new_layout(def: &TableDef, changes: &[LayoutChange]) -> Result<TableDef> {
    let mut new = def.clone();
    let mut style: Option<&str> = None;
    let mut distkey = None;
    for change in changes {
        match change {
            LayoutChange::DistStyle(s) => style = Some(s.as_str()),
            LayoutChange::DistKey(c) => distkey = Some(def.column_index(c)?),
            LayoutChange::SortKey(cols) => {
                let mut key = vec![];
                for c in cols {
                    let i = def.column_index(c)?;
                    if key.contains(&i) {
                        return Err(sql_err!(
                            code::DUPLICATE_COLUMN,
                            "column appears twice in SORTKEY"
                        ));
                    }
                    key.push(i);
                }
                new.sort_kind = SortKind::Compound;
                new.sort_key = key;
            }
            LayoutChange::SortKeyNone | LayoutChange::SortKeyAuto => {
                new.sort_kind = SortKind::Compound;
                new.sort_key = vec![];
            }
            LayoutChange::EncodeAuto => new.encode_auto = true,
        }
    }
    new.dist = match (style, distkey) {
        (None, None) => def.dist.clone(),
        _ => {
            let keyed = match def.dist {
                DistStyle::Key(k) => Some(k),
                _ => None,
            };
            ddl::dist_style(style, distkey, keyed)?
        }
    };
    // Automatic encodings follow the sort key, as CREATE TABLE chooses them.
    if new.encode_auto {
        let key = new.sort_key.clone();
        for (i, c) in new.columns.iter_mut().enumerate() {
            c.encoding = ddl::auto_encoding(&c.sql_type, key.contains(&i)).to_string();
        }
    }
    Ok(new)
}

impl StatementContext {
    /// `ALTER TABLE name RENAME TO new_name`, of a table or (dbt renames relations so) of a
    /// view.
    pub(crate) fn rename_relation(&mut self, at: &AlterTable) -> Result<Outcome> {
        let (new_schema, new_name) = renamed_to(at).ok_or_else(|| {
            sql_err!(
                code::INTERNAL,
                "ALTER TABLE without RENAME TO taken for a rename"
            )
        })??;
        let (schema, name) = crate::sql::names::split_name(&at.name)?;
        if let Some(def) = self.view().view(&schema, &name).cloned() {
            self.record(vec![CatalogOp::RenameTable {
                table_id: def.id,
                name: new_name,
            }])?;
            return Ok(Outcome::Command("ALTER TABLE".into()));
        }
        let def = self.view().named_table(&at.name)?;
        // Redshift renames within the schema; a qualified new name must agree.
        if new_schema.is_some_and(|s| s != def.schema) {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "ALTER TABLE RENAME cannot move a table to another schema"
            ));
        }
        // Normal views over the table keep reading it, under its new name.
        let views = crate::catalog::dependencies::rename_ops(
            &self.view(),
            (def.id, &def.schema, &def.name),
            crate::catalog::dependencies::Renamed::Relation {
                new_name: &new_name,
            },
        )?;
        let mut ops = vec![CatalogOp::RenameTable {
            table_id: def.id,
            name: new_name,
        }];
        ops.extend(views);
        self.record(ops)?;
        Ok(Outcome::Command("ALTER TABLE".into()))
    }
}

/// `ALTER TABLE t RENAME TO [schema.]name` alone: the new name (and schema, if given).
pub(crate) fn renamed_to(
    at: &datafusion::sql::sqlparser::ast::AlterTable,
) -> Option<Result<(Option<String>, String)>> {
    use datafusion::sql::sqlparser::ast::{AlterTableOperation, RenameTableNameKind};
    match at.operations.as_slice() {
        [AlterTableOperation::RenameTable { table_name }] => {
            let (RenameTableNameKind::To(name) | RenameTableNameKind::As(name)) = table_name;
            let qualified = name.0.len() > 1;
            Some(
                crate::sql::names::split_name(name)
                    .map(|(schema, table)| (qualified.then_some(schema), table)),
            )
        }
        _ => None,
    }
}
