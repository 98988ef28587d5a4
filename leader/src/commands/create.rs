//! `CREATE SCHEMA`, `CREATE TABLE` (with `LIKE` and `AS`), and `DROP TABLE | VIEW | SCHEMA`.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{ObjectType, SchemaName, Statement};

use crate::catalog::{CatalogOp, ColumnDef, Relation};
use crate::commands::context::{Outcome, StatementContext};
use crate::commands::ddl;
use crate::error::{Result, code};
use crate::plan::statement::plan_statement;
use crate::plan::table::WriteLog;
use crate::sql::types::SqlType;
use crate::sql::{TableAttrs, parse_sql};
use crate::sql_err;

impl StatementContext {
    /// `CREATE SCHEMA [IF NOT EXISTS] name`.
    pub(crate) fn create_schema(
        &mut self,
        schema_name: &SchemaName,
        if_not_exists: bool,
    ) -> Result<Outcome> {
        let (name, authorization) = match schema_name {
            SchemaName::Simple(n) => (crate::sql::names::split_name(n)?.1, None),
            SchemaName::NamedAuthorization(n, a) => (
                crate::sql::names::split_name(n)?.1,
                Some(crate::sql::names::ident_name(a)),
            ),
            SchemaName::UnnamedAuthorization(a) => {
                let a = crate::sql::names::ident_name(a);
                (a.clone(), Some(a))
            }
        };
        if if_not_exists && self.view().schemas.contains(&name) {
            return Ok(Outcome::Command("CREATE SCHEMA".into()));
        }
        // `AUTHORIZATION user`: that user owns the schema; only a superuser may create
        // one for somebody else.
        let owner = match authorization {
            Some(owner) if owner != self.user => {
                self.require_superuser("create a schema for another user")?;
                if !self.view().users.contains_key(&owner) {
                    return Err(sql_err!(
                        code::UNDEFINED_OBJECT,
                        "user \"{owner}\" does not exist"
                    ));
                }
                owner
            }
            _ => self.user.clone(),
        };
        self.record(vec![
            CatalogOp::CreateSchema(name.clone()),
            CatalogOp::SetSchemaOwner {
                schema: name,
                owner,
            },
        ])?;
        Ok(Outcome::Command("CREATE SCHEMA".into()))
    }

    /// `CREATE TABLE [IF NOT EXISTS] … (columns) | LIKE parent | AS query`.
    pub(crate) async fn create_table(
        &mut self,
        ct: &datafusion::sql::sqlparser::ast::CreateTable,
        attrs: &TableAttrs,
    ) -> Result<Outcome> {
        let view = self.view();
        let (schema, name) = crate::sql::names::split_name(&ct.name)?;
        if ct.if_not_exists && view.table(&schema, &name).is_some() {
            return Ok(Outcome::Command("CREATE TABLE".into()));
        }
        if let Some(query) = &ct.query {
            return self.create_table_as(ct, attrs, query).await;
        }
        use datafusion::sql::sqlparser::ast::{CreateTableLikeDefaults, CreateTableLikeKind};
        let id = self.engine.catalog.allocate_table_id()?;
        let mut def = match &ct.like {
            Some(CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like))
                if ct.columns.is_empty() =>
            {
                let parent = view.named_table(&like.name)?;
                let include_defaults = like.defaults == Some(CreateTableLikeDefaults::Including);
                ddl::table_like(&parent, (schema, name), id, &self.user, include_defaults)
            }
            _ => ddl::table_def(ct, attrs, id, &self.user)?,
        };
        let mut constraints = crate::commands::constraints::from_create(ct, &mut def, &view)?;
        for c in &mut constraints {
            c.id = self.engine.catalog.allocate_table_id()?;
        }
        let mut ops = vec![CatalogOp::CreateTable(def)];
        ops.extend(constraints.into_iter().map(CatalogOp::AddConstraint));
        self.record(ops)?;
        Ok(Outcome::Command("CREATE TABLE".into()))
    }

    pub(crate) async fn create_table_as(
        &mut self,
        ct: &datafusion::sql::sqlparser::ast::CreateTable,
        attrs: &TableAttrs,
        query: &datafusion::sql::sqlparser::ast::Query,
    ) -> Result<Outcome> {
        // Plan the query once to learn the column types.
        let (state, _, reads) =
            self.statement_state(self.view(), Arc::new(WriteLog::default()), None)?;
        let plan = plan_statement(&state, Statement::Query(Box::new(query.clone()))).await?;
        self.check_reads(&self.view(), &state, &plan, &reads, None)?;
        let mut def_stmt = ct.clone();
        def_stmt.query = None;
        def_stmt.columns = vec![];
        let id = self.engine.catalog.allocate_table_id()?;
        let mut columns = Vec::new();
        // A column copied from a table keeps its declared type (`varchar(10)`, as Redshift's
        // CTAS does); any other takes the type of its values.
        let declared = crate::plan::engine::views::declared_types(&plan, &self.view());
        for (f, declared) in plan.schema().fields().iter().zip(declared) {
            // A type no table can store fails here.
            SqlType::from_arrow(f.data_type())?;
            let sql_type = declared;
            columns.push(ColumnDef {
                name: f.name().to_lowercase(),
                stored: f.name().to_lowercase(),
                missing: None,
                encoding: String::new(),
                sql_type,
                nullable: true,
                default: None,
                identity: None,
            });
        }
        // Reuse the CREATE TABLE rules (distkey/sortkey/encodings) with a stand-in column
        // list, then put the real columns in.
        def_stmt.columns = columns
            .iter()
            .map(|c| datafusion::sql::sqlparser::ast::ColumnDef {
                name: datafusion::sql::sqlparser::ast::Ident::with_quote('"', c.name.clone()),
                data_type: datafusion::sql::sqlparser::ast::DataType::Custom(
                    datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                        datafusion::sql::sqlparser::ast::Ident::new(c.sql_type.display_name()),
                    ]),
                    vec![],
                ),
                options: vec![],
            })
            .collect();
        let def = ddl::table_def(&def_stmt, attrs, id, &self.user)?;
        let (schema, name) = (def.schema.clone(), def.name.clone());
        // The table and its rows commit together: run inside a transaction of our own
        // unless the client already has one.
        let own_txn = self.txn.is_none();
        if own_txn {
            self.begin();
        }
        let result: Result<u64> = async {
            self.record(vec![CatalogOp::CreateTable(def)])?;
            let insert = format!("INSERT INTO \"{schema}\".\"{name}\" {query}");
            let stmt = parse_sql(&insert)?
                .into_iter()
                .next()
                .ok_or_else(|| sql_err!(code::INTERNAL, "empty CTAS insert"))?
                .0;
            match self.run_datafusion(stmt, vec![]).await? {
                Outcome::Command(tag) => Ok(tag
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)),
                _ => Ok(0),
            }
        }
        .await;
        if own_txn {
            let txn = self.txn.take().expect("own transaction");
            if let Err(e) = result {
                self.abandon(&txn.ops);
                return Err(e);
            }
            self.commit_ops(txn.ops)?;
        } else {
            result?;
        }
        Ok(Outcome::Command("SELECT".into()))
    }

    pub(crate) fn drop_objects(
        &mut self,
        object_type: ObjectType,
        if_exists: bool,
        names: &[datafusion::sql::sqlparser::ast::ObjectName],
        cascade: bool,
    ) -> Result<Outcome> {
        let view = self.view();
        let mut ops = vec![];
        match object_type {
            ObjectType::Table | ObjectType::View => {
                let is_view = object_type == ObjectType::View;
                let (kind, tag) = if is_view {
                    ("View", "DROP VIEW")
                } else {
                    ("Table", "DROP TABLE")
                };
                let mut ids = vec![];
                for n in names {
                    let (schema, name) = crate::sql::names::split_name(n)?;
                    match view.relation(&schema, &name) {
                        Some(rel @ Relation::Table(_)) if !is_view => ids.push(rel.id()),
                        Some(rel @ Relation::View(_)) if is_view => ids.push(rel.id()),
                        Some(_) => {
                            let (what, other) = if is_view {
                                ("view", "DROP TABLE to remove a table")
                            } else {
                                ("table", "DROP VIEW to remove a view")
                            };
                            return Err(sql_err!(
                                code::WRONG_OBJECT_TYPE,
                                "\"{name}\" is not a {what}{}Use {other}.",
                                code::HINT_SEPARATOR
                            ));
                        }
                        None if if_exists => {}
                        None => {
                            return Err(sql_err!(
                                code::UNDEFINED_TABLE,
                                "{kind} \"{name}\" does not exist"
                            ));
                        }
                    }
                }
                ops.extend(crate::catalog::dependencies::drop_ops(
                    &view, &ids, cascade,
                )?);
                self.record(ops)?;
                Ok(Outcome::Command(tag.into()))
            }
            ObjectType::Schema => {
                for n in names {
                    let (_, name) = crate::sql::names::split_name(n)?;
                    if !view.schemas.contains(&name) {
                        if if_exists {
                            continue;
                        }
                        return Err(sql_err!(
                            code::UNDEFINED_SCHEMA,
                            "Schema \"{name}\" does not exist"
                        ));
                    }
                    if cascade {
                        let ids: Vec<u64> = view
                            .tables_in(&name)
                            .map(|t| t.id)
                            .chain(view.views_in(&name).map(|v| v.id))
                            .collect();
                        ops.extend(crate::catalog::dependencies::drop_ops(&view, &ids, true)?);
                    }
                    ops.push(CatalogOp::DropSchema(name));
                }
                self.record(ops)?;
                Ok(Outcome::Command("DROP SCHEMA".into()))
            }
            other => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "DROP {other} is not supported yet"
            )),
        }
    }
}
