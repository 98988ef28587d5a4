//! The one privilege check every statement path goes through before it changes or
//! returns anything. What a user holds is the catalog's answer
//! ([`crate::catalog::privileges`]); this module turns a missing privilege into
//! Redshift's 42501 error. SELECT, INSERT, EXPLAIN, CTAS, UNLOAD, UPDATE and DELETE check
//! the relations their planning resolved ([`StatementContext::check_reads`]: USAGE on each
//! schema and SELECT on each table or view, inside a view with the view owner's
//! privileges); writes check the target; DDL checks CREATE on the schema or ownership.

use std::sync::Arc;

use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::sql::sqlparser::ast::{
    CopySource, FromTable, ObjectName, ObjectType, Statement, TableFactor, TableWithJoins,
};

use crate::catalog::privileges::{self, describe, granted_columns, holds, owns};
use crate::catalog::{CatalogState, Privilege, Securable};
use crate::commands::context::StatementContext;
use crate::error::{LeaderError, Result, code};
use crate::plan::table::ReadLog;
use crate::sql_err;

impl StatementContext {
    /// Fail unless the statement's user holds `privilege` on `on`.
    pub(crate) fn require(
        &self,
        view: &CatalogState,
        on: &Securable,
        privilege: Privilege,
    ) -> Result<()> {
        require_for(view, &self.user, on, privilege)
    }

    /// Fail unless the statement's user may use relation `id`: USAGE on its schema and
    /// `privilege` on the relation.
    pub(crate) fn require_relation(
        &self,
        view: &CatalogState,
        id: u64,
        privilege: Privilege,
    ) -> Result<()> {
        relation_for(view, &self.user, id, privilege)
    }

    /// UPDATE needs UPDATE on the table, or on every column it sets (`GRANT UPDATE (c)`).
    fn require_update(
        &self,
        view: &CatalogState,
        id: u64,
        assignments: &[datafusion::sql::sqlparser::ast::Assignment],
    ) -> Result<()> {
        use datafusion::sql::sqlparser::ast::AssignmentTarget;
        let on = Securable::Relation(id);
        if holds(view, &self.user, &on, Privilege::Update) {
            return relation_for(view, &self.user, id, Privilege::Update);
        }
        let granted = granted_columns(view, &self.user, id, Privilege::Update);
        let def = view.tables.get(&id);
        let all_granted = !granted.is_empty()
            && assignments.iter().all(|a| match &a.target {
                AssignmentTarget::ColumnName(n) => n.0.last().is_some_and(|part| {
                    let name = part
                        .as_ident()
                        .map(crate::sql::names::ident_name)
                        .unwrap_or_default();
                    def.and_then(|d| d.columns.iter().find(|c| c.name == name))
                        .is_some_and(|c| granted.contains(&c.stored))
                }),
                AssignmentTarget::Tuple(_) => false,
            });
        if !all_granted {
            return Err(permission_denied(view, &on));
        }
        match schema_of(view, id) {
            Some(s) => require_for(view, &self.user, &Securable::Schema(s), Privilege::Usage),
            None => Ok(()),
        }
    }

    /// Fail unless the statement's user owns `on` (or is a superuser).
    pub(crate) fn require_owner(&self, view: &CatalogState, on: &Securable) -> Result<()> {
        if owns(view, &self.user, on) {
            return Ok(());
        }
        Err(sql_err!(
            code::INSUFFICIENT_PRIVILEGE,
            "must be owner of {}",
            object_name(view, on)
        ))
    }

    /// Fail unless the statement's user is a superuser; `action` completes "must be
    /// superuser to …".
    pub(crate) fn require_superuser(&self, action: &str) -> Result<()> {
        if privileges::is_superuser(&self.view(), &self.user) {
            return Ok(());
        }
        Err(sql_err!(
            code::INSUFFICIENT_PRIVILEGE,
            "must be superuser to {action}"
        ))
    }

    /// Fail unless the statement's user holds system privilege `p` (superusers hold
    /// every one; others through a role); `action` completes "must be superuser or hold
    /// the … permission to …".
    pub(crate) fn require_system(&self, p: Privilege, action: &str) -> Result<()> {
        if privileges::has_system_privilege(&self.view(), &self.user, p) {
            return Ok(());
        }
        Err(sql_err!(
            code::INSUFFICIENT_PRIVILEGE,
            "must be superuser or hold the {} permission to {action}",
            p.keyword()
        ))
    }

    /// Fail unless the user owns `on` or holds system privilege `p` (VACUUM, ANALYZE).
    fn require_owner_or_system(
        &self,
        view: &CatalogState,
        on: &Securable,
        p: Privilege,
    ) -> Result<()> {
        if privileges::has_system_privilege(view, &self.user, p) {
            return Ok(());
        }
        self.require_owner(view, on)
    }

    /// Check what a statement's planning resolved: each read needs USAGE on the
    /// relation's schema and SELECT on it, for the user it was resolved for — or, where
    /// that user holds SELECT only on some columns (`GRANT SELECT (a, b)`), SELECT on
    /// every column the plan reads of it (`select *` then fails, as in Redshift).
    /// `written` is a relation the statement writes and does not read (an INSERT's
    /// target), which needs no SELECT.
    pub(crate) fn check_reads(
        &self,
        view: &CatalogState,
        state: &SessionState,
        plan: &LogicalPlan,
        reads: &ReadLog,
        written: Option<u64>,
    ) -> Result<()> {
        let mut partial = vec![];
        for read in reads.reads() {
            if Some(read.relation) == written && read.user == self.user {
                continue;
            }
            if let Some(schema) = schema_of(view, read.relation) {
                require_for(
                    view,
                    &read.user,
                    &Securable::Schema(schema),
                    Privilege::Usage,
                )?;
            }
            let on = Securable::Relation(read.relation);
            if holds(view, &read.user, &on, Privilege::Select) {
                continue;
            }
            if granted_columns(view, &read.user, read.relation, Privilege::Select).is_empty() {
                return Err(permission_denied(view, &on));
            }
            partial.push(read);
        }
        if partial.is_empty() {
            return Ok(());
        }
        // Which columns each plan reads: the statement's, as its user, and each view's,
        // as the view's owner.
        let view_plans = reads.view_plans();
        let inlined: Vec<&LogicalPlan> = view_plans.iter().map(|(_, p)| p).collect();
        let mut plans = vec![(self.user.clone(), plan.clone())];
        plans.extend(view_plans.iter().cloned());
        let mut used: Vec<(String, u64, Vec<String>)> = vec![];
        for (user, plan) in plans {
            for (id, columns) in columns_read(state, view, &plan, &inlined)? {
                used.push((user.clone(), id, columns));
            }
        }
        for read in partial {
            let granted = granted_columns(view, &read.user, read.relation, Privilege::Select);
            let reads_ungranted = used
                .iter()
                .filter(|(u, id, _)| *u == read.user && *id == read.relation)
                .any(|(_, _, columns)| columns.iter().any(|c| !granted.contains(c)));
            if reads_ungranted {
                return Err(permission_denied(view, &Securable::Relation(read.relation)));
            }
        }
        Ok(())
    }
}

/// The relations (by id) a plan scans and, for each scan, the columns it reads (stored
/// names for a table, names for a view). Every scan is planned over an empty table of
/// its schema, and so is every view: planning inlines a view as its query under an alias
/// of the view's name (one of the `inlined` plans, which are checked for the view's
/// owner on their own), and that becomes a scan of the view again. The optimizer's
/// projection pushdown then says which columns the plan reads of each.
fn columns_read(
    state: &SessionState,
    view: &CatalogState,
    plan: &LogicalPlan,
    inlined: &[&LogicalPlan],
) -> Result<Vec<(u64, Vec<String>)>> {
    let empty = |schema| provider_as_source(Arc::new(EmptyTable::new(schema)));
    let stubbed = plan
        .clone()
        .transform_down_with_subqueries(|p| match p {
            LogicalPlan::SubqueryAlias(a)
                if inlined.contains(&a.input.as_ref())
                    && resolve_reference(view, &a.alias)
                        .is_some_and(|id| view.views.contains_key(&id)) =>
            {
                let schema = Arc::new(a.input.schema().as_arrow().clone());
                let scan =
                    datafusion::logical_expr::TableScanBuilder::new(a.alias.clone(), empty(schema))
                        .build()?;
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            LogicalPlan::TableScan(mut scan) => {
                scan.source = empty(scan.source.schema());
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data;
    let optimized = state.optimize(&stubbed)?;
    let mut out = vec![];
    optimized.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(t) = p
            && let Some(id) = resolve_reference(view, &t.table_name)
        {
            let schema = t.source.schema();
            let names: Vec<String> = match &t.projection {
                Some(p) => p.iter().map(|i| schema.field(*i).name().clone()).collect(),
                None => schema.fields().iter().map(|f| f.name().clone()).collect(),
            };
            let columns = match view.tables.get(&id) {
                Some(def) => names
                    .iter()
                    .filter_map(|n| def.columns.iter().find(|c| c.name == *n))
                    .map(|c| c.stored.clone())
                    .collect(),
                None => names,
            };
            out.push((id, columns));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(out)
}

/// The schema relation `id` is in.
fn schema_of(view: &CatalogState, id: u64) -> Option<String> {
    view.relation_by_id(id).map(|r| r.schema().to_string())
}

impl StatementContext {
    /// The privileges a statement needs on what it names, checked before it runs (the
    /// reads of planned statements are checked after planning, [`Self::check_plan`]):
    /// CREATE on the schema a CREATE TABLE / VIEW adds to and on the database for CREATE
    /// SCHEMA; DROP, ALTER, TRUNCATE, DELETE, UPDATE or INSERT (COPY) on the target;
    /// SELECT for SHOW TABLE / SHOW VIEW; ownership for COMMENT ON, VACUUM and ANALYZE. A name that does not resolve is
    /// left to the command, which reports it as it always has.
    pub(crate) fn authorize(&self, stmt: &Statement) -> Result<()> {
        let view = self.view();
        let relation = |name: &ObjectName| -> Option<u64> {
            let (schema, rel) = crate::sql::names::split_name(name).ok()?;
            view.relation(&schema, &rel).map(|r| r.id())
        };
        let schema_of = |name: &ObjectName| -> Option<String> {
            crate::sql::names::split_name(name).ok().map(|(s, _)| s)
        };
        let on_relation = |name: &ObjectName, p: Privilege| -> Result<()> {
            match relation(name) {
                Some(id) => self.require_relation(&view, id, p),
                None => Ok(()),
            }
        };
        // CREATE on the schema, or the system privilege to create anywhere.
        let in_schema = |name: &ObjectName, anywhere: Privilege| -> Result<()> {
            match schema_of(name).filter(|s| view.schemas.contains(s)) {
                Some(_) if privileges::has_system_privilege(&view, &self.user, anywhere) => Ok(()),
                Some(s) => self.require(&view, &Securable::Schema(s), Privilege::Create),
                None => Ok(()),
            }
        };
        match stmt {
            Statement::CreateTable(ct) => in_schema(&ct.name, Privilege::CreateTable),
            Statement::CreateView(cv) => in_schema(&cv.name, Privilege::CreateView),
            Statement::CreateSchema { .. } => {
                self.require(&view, &Securable::Database, Privilege::Create)
            }
            Statement::Drop {
                object_type, names, ..
            } => {
                for n in names {
                    match object_type {
                        ObjectType::Table | ObjectType::View => on_relation(n, Privilege::Drop)?,
                        ObjectType::Schema => {
                            let (_, s) = crate::sql::names::split_name(n)?;
                            if view.schemas.contains(&s) {
                                self.require(&view, &Securable::Schema(s), Privilege::Drop)?;
                            }
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Statement::AlterTable(at) => on_relation(&at.name, Privilege::Alter),
            // SHOW TABLE / SHOW VIEW print a definition: they need what reading it does.
            Statement::ShowVariable { variable }
                if variable.len() >= 2
                    && (variable[0].value.eq_ignore_ascii_case("table")
                        || variable[0].value.eq_ignore_ascii_case("view")) =>
            {
                on_relation(&ObjectName::from(variable[1..].to_vec()), Privilege::Select)
            }
            Statement::Truncate(t) => {
                for target in &t.table_names {
                    on_relation(&target.name, Privilege::Truncate)?;
                }
                Ok(())
            }
            Statement::Delete(d) => {
                let (FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t)) = &d.from;
                match t.first().and_then(table_name) {
                    Some(n) => on_relation(n, Privilege::Delete),
                    None => Ok(()),
                }
            }
            Statement::Update(u) => match table_name(&u.table).and_then(&relation) {
                Some(id) => self.require_update(&view, id, &u.assignments),
                None => Ok(()),
            },
            Statement::Copy {
                source: CopySource::Table { table_name, .. },
                to: false,
                ..
            } => on_relation(table_name, Privilege::Insert),
            Statement::Comment { object_name, .. } => {
                // `COMMENT ON COLUMN t.c`: the relation is all but the last part.
                let mut candidates = vec![object_name.clone()];
                if object_name.0.len() > 1 {
                    candidates.push(ObjectName(
                        object_name.0[..object_name.0.len() - 1].to_vec(),
                    ));
                }
                match candidates.iter().find_map(&relation) {
                    Some(id) => self.require_owner(&view, &Securable::Relation(id)),
                    None => Ok(()),
                }
            }
            Statement::Vacuum(v) => match v.table_name.as_ref().and_then(&relation) {
                Some(id) => {
                    self.require_owner_or_system(&view, &Securable::Relation(id), Privilege::Vacuum)
                }
                None if v.table_name.is_none() => {
                    self.require_system(Privilege::Vacuum, "vacuum every table")
                }
                None => Ok(()),
            },
            Statement::Analyze(a) => match a.table_name.as_ref().and_then(&relation) {
                Some(id) => self.require_owner_or_system(
                    &view,
                    &Securable::Relation(id),
                    Privilege::Analyze,
                ),
                None if a.table_name.is_none() => {
                    self.require_system(Privilege::Analyze, "analyze every table")
                }
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// The privileges a planned SELECT, INSERT or EXPLAIN needs: INSERT on an INSERT's
    /// target, and USAGE and SELECT on everything its planning resolved (inside views,
    /// the view owner's).
    pub(crate) fn check_plan(
        &self,
        view: &CatalogState,
        state: &SessionState,
        plan: &LogicalPlan,
        reads: &ReadLog,
    ) -> Result<()> {
        let inner = match plan {
            LogicalPlan::Explain(e) => e.plan.as_ref(),
            LogicalPlan::Analyze(a) => a.input.as_ref(),
            p => p,
        };
        let mut written = None;
        if let LogicalPlan::Dml(d) = inner
            && matches!(d.op, WriteOp::Insert(_))
            && let Some(id) = resolve_reference(view, &d.table_name)
        {
            self.require_relation(view, id, Privilege::Insert)?;
            if !scans(&d.input, view, id) {
                written = Some(id);
            }
        }
        self.check_reads(view, state, inner, reads, written)
    }
}

/// The table a DELETE or UPDATE names.
fn table_name(t: &TableWithJoins) -> Option<&ObjectName> {
    match &t.relation {
        TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

/// The table or view a plan's table reference names.
fn resolve_reference(view: &CatalogState, r: &TableReference) -> Option<u64> {
    let schema = r.schema().unwrap_or("public");
    view.relation(schema, r.table()).map(|rel| rel.id())
}

/// Whether `plan` (or a subquery in it) scans relation `id`.
fn scans(plan: &LogicalPlan, view: &CatalogState, id: u64) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(t) = p
            && resolve_reference(view, &t.table_name) == Some(id)
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn require_for(
    view: &CatalogState,
    user: &str,
    on: &Securable,
    privilege: Privilege,
) -> Result<()> {
    if holds(view, user, on, privilege) {
        return Ok(());
    }
    Err(permission_denied(view, on))
}

fn relation_for(view: &CatalogState, user: &str, id: u64, privilege: Privilege) -> Result<()> {
    if let Some(schema) = schema_of(view, id) {
        require_for(view, user, &Securable::Schema(schema), Privilege::Usage)?;
    }
    require_for(view, user, &Securable::Relation(id), privilege)
}

/// Redshift's error for a missing privilege: `permission denied for relation t`,
/// `… for schema s`, `… for database dev`.
pub(crate) fn permission_denied(view: &CatalogState, on: &Securable) -> LeaderError {
    sql_err!(
        code::INSUFFICIENT_PRIVILEGE,
        "permission denied for {}",
        object_name(view, on)
    )
}

/// `relation t`, `schema s`, `database dev`.
fn object_name(view: &CatalogState, on: &Securable) -> String {
    match on {
        Securable::Relation(id) => match view.relation_by_id(*id) {
            Some(r) => format!("relation {}", r.name()),
            None => format!("relation {id}"),
        },
        other => describe(view, other),
    }
}
