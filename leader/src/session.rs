//! Sessions: one connection's state and the dispatch of its statements. A [`Session`]
//! parses a statement, classifies it, and runs it as one command over its
//! [`StatementContext`]; transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) is
//! handled here. A transaction keeps a private catalog view (the snapshot at BEGIN plus
//! its own changes) and a list of changes that COMMIT replays onto the newest catalog in
//! one durable catalog transaction. This is the only module that knows every command.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement, TableObject};
use tracing::{debug, warn};

pub use crate::commands::context::Outcome;
use crate::commands::context::{StatementContext, Txn, show_schema};
use crate::commands::copy::StdinCopy;
use crate::commands::query::goes_to_datafusion;
use crate::error::{Result, code};
use crate::plan::engine::Engine;
use crate::plan::statement::{alias_repeated_select_items, pg_named_schema, plan_statement};
use crate::sql::access::AccessStatement;
use crate::sql::names::ident_name;
use crate::sql::{TableAttrs, alter_encodings, alter_layout, parse_sql};
use crate::sql_err;

/// One parsed statement, ready to describe and execute.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stmt: Option<Statement>,
    pub attrs: TableAttrs,
}

pub struct Session {
    cx: StatementContext,
    /// A `COPY … FROM STDIN` waiting for the client's data.
    stdin_copy: Option<StdinCopy>,
}

impl Session {
    pub fn new(engine: Arc<Engine>, user: String) -> Self {
        Self {
            cx: StatementContext::new(engine, user),
            stdin_copy: None,
        }
    }

    /// The user this session is logged in as.
    pub fn user(&self) -> &str {
        &self.cx.user
    }

    /// A new statement starts: the query log records its queries under `text`.
    pub fn begin_statement(&mut self, text: String) {
        self.cx.begin_statement(text)
    }

    /// The queries of the statement that just ran, to finish in the query log when its
    /// result has been sent; None when it ran no query (DDL, SET, transaction control).
    pub fn take_query_guard(&mut self) -> Option<crate::system::querylog::QueryGuard> {
        self.cx.take_query_guard()
    }

    /// INFO messages the last statement left for the client.
    pub fn take_notices(&mut self) -> Vec<String> {
        self.cx.take_notices()
    }

    /// A statement failed before it ran (at parse or describe): like any failure inside a
    /// transaction block, it aborts the transaction.
    pub fn fail_transaction(&mut self) {
        self.cx.fail_transaction()
    }

    /// Rows of a `COPY … FROM STDIN` from the client.
    pub async fn copy_data(&mut self, data: &[u8]) -> Result<()> {
        let copy = self.stdin_copy.as_mut().ok_or_else(no_copy_in_progress)?;
        copy.write(&self.cx.engine.storage, data)
    }

    /// The client's `CopyDone`: load what it sent; the command tag.
    pub async fn copy_done(&mut self) -> Result<String> {
        let copy = self.stdin_copy.take().ok_or_else(no_copy_in_progress)?;
        self.cx.copy_done(copy).await
    }

    /// The client's `CopyFail` (or a failed `CopyData`): drop what it sent.
    pub fn copy_fail(&mut self) {
        self.stdin_copy = None;
    }

    /// Parse `sql` into statements.
    pub fn parse(&self, sql: &str) -> Result<Vec<Prepared>> {
        Ok(parse_sql(sql)?
            .into_iter()
            .map(|(mut stmt, attrs)| {
                crate::system::pg_catalog::rewrite(&mut stmt);
                Prepared {
                    stmt: Some(stmt),
                    attrs,
                }
            })
            .collect())
    }

    /// Parameter types and result schema of a statement, without running it.
    pub async fn describe(
        &self,
        p: &Prepared,
    ) -> Result<(Vec<Option<DataType>>, Option<SchemaRef>)> {
        let Some(stmt) = &p.stmt else {
            return Ok((vec![], None));
        };
        if let Statement::ShowVariable { variable } = stmt {
            let name = variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            return Ok((vec![], Some(show_schema(&name))));
        }
        if matches!(stmt, Statement::Analyze(_)) && p.attrs.analyze_compression {
            return Ok((
                vec![],
                Some(crate::commands::maintenance::analyze_compression_schema()),
            ));
        }
        if !goes_to_datafusion(stmt) {
            return Ok((vec![], None));
        }
        let state = self.cx.describe_state()?;
        let mut planned = stmt.clone();
        alias_repeated_select_items(&mut planned);
        let plan = plan_statement(&state, planned).await?;
        let params = plan.get_parameter_types()?;
        let mut ordered: Vec<(usize, Option<DataType>)> = params
            .into_iter()
            .filter_map(|(k, v)| {
                k.trim_start_matches('$')
                    .parse::<usize>()
                    .ok()
                    .map(|i| (i, v))
            })
            .collect();
        ordered.sort_by_key(|(i, _)| *i);
        let n = ordered.last().map_or(0, |(i, _)| *i);
        let mut types = vec![None; n];
        for (i, t) in ordered {
            types[i - 1] = t;
        }
        let schema = match &plan {
            LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) => None,
            LogicalPlan::Explain(e) if !e.verbose => {
                Some(crate::plan::explain::query_plan_schema())
            }
            other => Some(pg_named_schema(other, stmt)),
        };
        Ok((types, schema))
    }

    /// Execute one statement, with `params` bound to `$1…`.
    pub async fn execute(&mut self, p: &Prepared, params: Vec<ScalarValue>) -> Result<Outcome> {
        let Some(stmt) = p.stmt.clone() else {
            return Ok(Outcome::Empty);
        };
        let is_txn_end = matches!(stmt, Statement::Commit { .. } | Statement::Rollback { .. });
        if self.cx.txn.as_ref().is_some_and(|t| t.failed) && !is_txn_end {
            return Err(sql_err!(
                code::IN_FAILED_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block"
            ));
        }
        let result = self.dispatch(stmt, &p.attrs, params).await;
        if let (Err(e), Some(t)) = (&result, self.cx.txn.as_mut()) {
            debug!("statement failed inside a transaction: {e}");
            t.failed = true;
        }
        result
    }

    async fn dispatch(
        &mut self,
        stmt: Statement,
        attrs: &TableAttrs,
        params: Vec<ScalarValue>,
    ) -> Result<Outcome> {
        let Self { cx, stdin_copy } = self;
        if let Some(access) = &attrs.access {
            return match access {
                AccessStatement::CreateUser { name, options } => cx.create_user(name, options),
                AccessStatement::AlterUser { name, change } => cx.alter_user(name, change),
                AccessStatement::DropUser { if_exists, names } => cx.drop_users(*if_exists, names),
                AccessStatement::CreateGroup { name, users } => cx.create_group(name, users),
                AccessStatement::AlterGroup { name, change } => cx.alter_group(name, change),
                AccessStatement::DropGroup { names } => cx.drop_groups(names),
                AccessStatement::Grant(g) => cx.grant(g),
                AccessStatement::AlterDefaultPrivileges(d) => cx.alter_default_privileges(d),
                AccessStatement::Revoke {
                    grant,
                    grant_option_for,
                } => cx.revoke(grant, *grant_option_for),
                AccessStatement::CreateRole { name } => cx.create_role(name),
                AccessStatement::DropRole { name, force } => cx.drop_role(name, *force),
                AccessStatement::RenameRole { name, to } => cx.rename_role(name, to),
                AccessStatement::AlterRoleOwner { name, owner } => cx.alter_role_owner(name, owner),
                AccessStatement::GrantRole {
                    roles,
                    to,
                    admin_option,
                } => cx.grant_roles(roles, to, *admin_option),
                AccessStatement::RevokeRole {
                    roles,
                    from,
                    admin_option_only,
                } => cx.revoke_roles(roles, from, *admin_option_only),
                AccessStatement::ResetSessionAuthorization => cx
                    .set_session_authorization(None)
                    .map(|_| Outcome::Command("RESET".into())),
                AccessStatement::AlterOwner {
                    schema: true,
                    name,
                    owner,
                } => cx.alter_schema_owner(name, owner.as_deref()),
                AccessStatement::AlterOwner { name, owner, .. } => {
                    cx.alter_relation_owner(name, owner.as_deref())
                }
            };
        }
        if let Statement::Insert(ins) = &stmt
            && let TableObject::TableName(n) = &ins.table
        {
            crate::catalog::dependencies::refuse_write_to_view(&cx.view(), n, "insert into")?;
        }
        cx.authorize(&stmt)?;
        match stmt {
            Statement::StartTransaction { .. } => {
                if cx.txn.is_some() {
                    warn!("BEGIN inside a transaction block is ignored");
                } else {
                    cx.begin();
                }
                Ok(Outcome::Begin)
            }
            Statement::Commit { .. } => {
                let Some(txn) = cx.txn.take() else {
                    return Ok(Outcome::End("COMMIT"));
                };
                if txn.failed {
                    cx.abandon(&txn.ops);
                    return Ok(Outcome::End("ROLLBACK"));
                }
                cx.commit_ops(txn.ops)?;
                Ok(Outcome::End("COMMIT"))
            }
            Statement::Savepoint { name } => {
                let txn = cx.txn_for_savepoint("SAVEPOINT")?;
                let point = (ident_name(&name), txn.ops.len(), txn.view.clone());
                txn.savepoints.push(point);
                Ok(Outcome::Command("SAVEPOINT".into()))
            }
            Statement::ReleaseSavepoint { name } => {
                let txn = cx.txn_for_savepoint("RELEASE SAVEPOINT")?;
                let at = savepoint_position(txn, &ident_name(&name))?;
                // Releasing a savepoint also releases every savepoint set after it.
                txn.savepoints.truncate(at);
                Ok(Outcome::Command("RELEASE".into()))
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let txn = cx.txn_for_savepoint("ROLLBACK TO SAVEPOINT")?;
                let at = savepoint_position(txn, &ident_name(&name))?;
                // The savepoint itself stays, so it can be rolled back to again.
                txn.savepoints.truncate(at + 1);
                let (_, count, view) = txn.savepoints[at].clone();
                let undone = txn.ops.split_off(count);
                txn.view = view;
                txn.failed = false;
                cx.abandon(&undone);
                Ok(Outcome::Command("ROLLBACK".into()))
            }
            Statement::Rollback { .. } => {
                if let Some(txn) = cx.txn.take() {
                    cx.abandon(&txn.ops);
                }
                Ok(Outcome::End("ROLLBACK"))
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => cx.create_schema(&schema_name, if_not_exists),
            Statement::CreateTable(ct) => cx.create_table(&ct, attrs).await,
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => cx.drop_objects(object_type, if_exists, &names, cascade),
            Statement::CreateView(cv) => cx.create_view(cv).await,
            Statement::Comment {
                object_type,
                object_name,
                comment,
                if_exists,
            } => cx.comment(object_type, &object_name, comment, if_exists),
            Statement::ShowVariable { variable }
                if variable.len() >= 2 && variable[0].value.eq_ignore_ascii_case("view") =>
            {
                cx.show_view(&ObjectName::from(variable[1..].to_vec()))
            }
            Statement::Set(set) => cx.set(set),
            Statement::Reset(reset) => cx.reset(reset.reset),
            Statement::ShowVariable { variable }
                if variable.len() >= 2 && variable[0].value.eq_ignore_ascii_case("table") =>
            {
                cx.show_table(&ObjectName::from(variable[1..].to_vec()))
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                cx.show_variable(&name)
            }
            // Protocol-level prepared statements live in the connection; the wire layer
            // removes named ones. `DEALLOCATE ALL` leaves unnamed leftovers to be replaced.
            Statement::Deallocate { .. } => Ok(Outcome::Command("DEALLOCATE".into())),
            Statement::Delete(d) => cx.delete(d).await,
            Statement::Update(u) => cx.update(u).await,
            Statement::Truncate(t) => cx.truncate(t),
            Statement::Vacuum(v) => cx.vacuum(v).await,
            Statement::Copy {
                source,
                to,
                target,
                legacy_options,
                options,
                ..
            } => {
                let spec = crate::commands::copy::CopySpec::from_statement(
                    &source,
                    to,
                    &target,
                    &legacy_options,
                    &options,
                )?;
                cx.copy(spec, attrs, stdin_copy).await
            }
            Statement::Unload {
                query,
                query_text,
                to,
                auth,
                with,
                options,
            } => {
                let stmt = crate::commands::unload::UnloadStatement {
                    query,
                    query_text,
                    to,
                    auth,
                    with,
                    options,
                };
                cx.unload(stmt, attrs).await
            }
            Statement::Analyze(a) => cx.analyze(a, attrs).await,
            Statement::AlterTable(at) if crate::commands::alter::renamed_to(&at).is_some() => {
                cx.rename_relation(&at)
            }
            Statement::AlterTable(at) if alter_encodings(&at).is_some() => {
                let changes = alter_encodings(&at).unwrap_or_default();
                cx.alter_encode(&at.name, changes).await
            }
            Statement::AlterTable(at) if alter_layout(&at).is_some() => {
                let changes = alter_layout(&at).unwrap_or_default();
                cx.relayout(&at, changes, attrs).await
            }
            Statement::AlterTable(at)
                if crate::commands::constraints::is_constraint_change(&at) =>
            {
                cx.alter_constraints(&at)
            }
            Statement::AlterTable(at) if crate::commands::alter::is_column_change(&at) => {
                cx.alter_columns(&at).await
            }
            s if goes_to_datafusion(&s) => cx.run_datafusion(s, params).await,
            other => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "{} is not supported yet",
                statement_kind(&other)
            )),
        }
    }
}

fn no_copy_in_progress() -> crate::error::LeaderError {
    sql_err!(code::PROTOCOL_VIOLATION, "no COPY FROM STDIN in progress")
}

/// Where the newest savepoint called `name` is in the transaction's list.
fn savepoint_position(txn: &Txn, name: &str) -> Result<usize> {
    txn.savepoints
        .iter()
        .rposition(|(n, _, _)| n == name)
        .ok_or_else(|| {
            sql_err!(
                code::INVALID_SAVEPOINT_SPECIFICATION,
                "savepoint \"{name}\" does not exist"
            )
        })
}

fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}
