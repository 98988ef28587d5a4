//! One immutable version of the catalog ([`CatalogState`]) and the changes between
//! versions ([`CatalogOp`]): applying a change checks it against the version it applies to,
//! so a transaction's changes replay onto a newer version only when they still make sense.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use basalt_worker::protocol::{DeleteRef, SegmentRef};

use super::defs::*;
use crate::error::{LeaderError, Result, code};
use crate::sql::SortKind;
use crate::sql::types::SqlType;
use crate::sql_err;

/// An immutable view of the catalog at one version.
#[derive(Debug, Clone)]
pub struct CatalogState {
    pub version: u64,
    pub next_table_id: u64,
    pub slice_count: u32,
    pub schemas: BTreeSet<String>,
    pub tables: BTreeMap<u64, Arc<TableDef>>,
    pub users: BTreeMap<String, Arc<UserDef>>,
    pub views: BTreeMap<u64, Arc<ViewDef>>,
    /// COMMENT ON texts by (relation id, column number; 0 for the relation).
    pub comments: BTreeMap<(u64, u32), String>,
    pub constraints: BTreeMap<u64, Arc<ConstraintDef>>,
    /// `CREATE GROUP`s, by name.
    pub groups: BTreeMap<String, Arc<GroupDef>>,
    /// `CREATE ROLE`s, by name.
    pub roles: BTreeMap<String, Arc<RoleDef>>,
    /// Every GRANT in force: what each grantee holds on each object.
    pub acl: BTreeMap<(Securable, Grantee), Grant>,
    /// Each schema's owner; a schema without an entry (`public`, and schemas of catalogs
    /// written before owners were recorded) is owned by `rdsdb`, as Redshift's `public`.
    pub schema_owners: BTreeMap<String, String>,
    /// `ALTER DEFAULT PRIVILEGES`: what objects each user creates are granted from the
    /// start (applied when a table or view is created, so every path gets them).
    pub default_acl: BTreeMap<DefaultAclKey, Grant>,
}

/// A table or a view, as a name in a statement can denote either.
#[derive(Debug, Clone)]
pub enum Relation {
    Table(Arc<TableDef>),
    View(Arc<ViewDef>),
}

impl Relation {
    pub fn id(&self) -> u64 {
        match self {
            Relation::Table(t) => t.id,
            Relation::View(v) => v.id,
        }
    }

    pub fn schema(&self) -> &str {
        match self {
            Relation::Table(t) => &t.schema,
            Relation::View(v) => &v.schema,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Relation::Table(t) => &t.name,
            Relation::View(v) => &v.name,
        }
    }
}

impl CatalogState {
    /// Grant a new relation what its owner's default privileges give (`ALTER DEFAULT
    /// PRIVILEGES [FOR USER owner] [IN SCHEMA schema] … ON TABLES`).
    fn grant_defaults(&mut self, relation: u64, owner: &str, schema: &str) {
        let defaults: Vec<(Grantee, Grant)> = self
            .default_acl
            .iter()
            .filter(|(k, _)| {
                k.owner == owner
                    && k.objects == DefaultObjects::Tables
                    && k.schema.as_deref().is_none_or(|s| s == schema)
            })
            .map(|(k, g)| (k.grantee.clone(), g.clone()))
            .collect();
        for (grantee, grant) in defaults {
            let key = (Securable::Relation(relation), grantee);
            let merged = match self.acl.get(&key) {
                Some(old) => Grant {
                    privileges: old.privileges.union(grant.privileges),
                    grant_option: old.grant_option.union(grant.grant_option),
                    grantor: owner.to_string(),
                },
                None => Grant {
                    grantor: owner.to_string(),
                    ..grant
                },
            };
            self.acl.insert(key, merged);
        }
    }

    /// The table or view with id `id`.
    pub fn relation_by_id(&self, id: u64) -> Option<Relation> {
        self.tables
            .get(&id)
            .map(|t| Relation::Table(t.clone()))
            .or_else(|| self.views.get(&id).map(|v| Relation::View(v.clone())))
    }

    pub fn view(&self, schema: &str, name: &str) -> Option<&Arc<ViewDef>> {
        self.views
            .values()
            .find(|v| v.schema == schema && v.name == name)
    }

    /// The table or view called `schema.name`.
    pub fn relation(&self, schema: &str, name: &str) -> Option<Relation> {
        self.table(schema, name)
            .map(|t| Relation::Table(t.clone()))
            .or_else(|| self.view(schema, name).map(|v| Relation::View(v.clone())))
    }

    pub fn views_in(&self, schema: &str) -> impl Iterator<Item = &Arc<ViewDef>> {
        self.views.values().filter(move |v| v.schema == schema)
    }

    /// Normal views that read relation `id`, directly or through other views, innermost
    /// first (the order in which CASCADE drops them).
    pub fn dependent_views(&self, id: u64) -> Vec<Arc<ViewDef>> {
        let mut out: Vec<Arc<ViewDef>> = vec![];
        let mut frontier = vec![id];
        while let Some(id) = frontier.pop() {
            for v in self.views.values() {
                if v.depends_on.contains(&id) && !out.iter().any(|o| o.id == v.id) {
                    out.push(v.clone());
                    frontier.push(v.id);
                }
            }
        }
        out
    }

    /// The constraints on table `id`, primary key first, then by name.
    pub fn constraints_of(&self, id: u64) -> Vec<&Arc<ConstraintDef>> {
        let mut out: Vec<&Arc<ConstraintDef>> = self
            .constraints
            .values()
            .filter(|c| c.table == id)
            .collect();
        out.sort_by_key(|c| (c.kind != ConstraintKind::PrimaryKey, c.name.clone()));
        out
    }

    /// Record constraint `c`, checking what PostgreSQL checks of a declaration (Redshift
    /// checks no data: the constraint is informational).
    fn add_constraint(&mut self, c: &ConstraintDef) -> Result<()> {
        let t = self
            .tables
            .get(&c.table)
            .ok_or_else(serialization_conflict)?;
        let has = |t: &TableDef, cols: &[String]| {
            cols.iter()
                .all(|s| t.columns.iter().any(|col| &col.stored == s))
        };
        if !has(t, &c.columns) {
            return Err(serialization_conflict());
        }
        if let ConstraintKind::ForeignKey { table, columns } = &c.kind {
            let r = self.tables.get(table).ok_or_else(serialization_conflict)?;
            if !has(r, columns) {
                return Err(serialization_conflict());
            }
        }
        let mine = self.constraints_of(c.table);
        if mine.iter().any(|o| o.name == c.name) {
            return Err(sql_err!(
                code::DUPLICATE_OBJECT,
                "constraint \"{}\" for relation \"{}\" already exists",
                c.name,
                t.name
            ));
        }
        if c.kind == ConstraintKind::PrimaryKey
            && mine.iter().any(|o| o.kind == ConstraintKind::PrimaryKey)
        {
            return Err(sql_err!(
                code::INVALID_TABLE_DEFINITION,
                "multiple primary keys for table \"{}\" are not allowed",
                t.name
            ));
        }
        self.constraints.insert(c.id, Arc::new(c.clone()));
        Ok(())
    }

    /// FOREIGN KEY constraints of *other* tables that reference table `id` (only
    /// `column`, by stored name, when given): what keeps it from being dropped.
    pub fn referencing(&self, id: u64, column: Option<&str>) -> Vec<&Arc<ConstraintDef>> {
        self.constraints
            .values()
            .filter(|c| c.table != id)
            .filter(|c| match (&c.kind, column) {
                (ConstraintKind::ForeignKey { table, .. }, None) => *table == id,
                (ConstraintKind::ForeignKey { .. }, Some(col)) => c.uses(id, col),
                _ => false,
            })
            .collect()
    }

    /// PostgreSQL's error for dropping `what` while the constraints `by` depend on it.
    fn constraint_dependents_error(&self, what: &str, by: &[&Arc<ConstraintDef>]) -> LeaderError {
        let detail: Vec<String> = by
            .iter()
            .map(|c| {
                let on = self.tables.get(&c.table).map_or("", |t| t.name.as_str());
                format!("constraint {} on table {on} depends on {what}", c.name)
            })
            .collect();
        sql_err!(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            "cannot drop {what} because other objects depend on it{}{}{}Use DROP ... CASCADE to drop the dependent objects too.",
            code::DETAIL_SEPARATOR,
            detail.join("\n"),
            code::HINT_SEPARATOR
        )
    }

    fn check_no_dependents(&self, id: u64, kind: &str, name: &str) -> Result<()> {
        if self.dependent_views(id).is_empty() {
            return Ok(());
        }
        Err(sql_err!(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            "cannot drop {kind} {name} because other objects depend on it{}Use DROP ... CASCADE to drop the dependent objects too.",
            code::HINT_SEPARATOR
        ))
    }

    fn check_name_free(&self, schema: &str, name: &str) -> Result<()> {
        if self.relation(schema, name).is_some() {
            return Err(sql_err!(
                code::DUPLICATE_TABLE,
                "relation \"{name}\" already exists"
            ));
        }
        Ok(())
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Arc<TableDef>> {
        self.tables
            .values()
            .find(|t| t.schema == schema && t.name == name)
    }

    /// The table a statement names, or Redshift's "does not exist" error.
    pub fn named_table(
        &self,
        name: &datafusion::sql::sqlparser::ast::ObjectName,
    ) -> Result<Arc<TableDef>> {
        let (schema, table) = crate::sql::names::split_name(name)?;
        self.table(&schema, &table)
            .cloned()
            .ok_or_else(|| sql_err!(code::UNDEFINED_TABLE, "relation \"{table}\" does not exist"))
    }

    pub fn tables_in(&self, schema: &str) -> impl Iterator<Item = &Arc<TableDef>> {
        self.tables.values().filter(move |t| t.schema == schema)
    }

    /// Apply one change; fails without modifying `self` on conflict.
    pub fn apply(&mut self, op: &CatalogOp) -> Result<()> {
        match op {
            CatalogOp::CreateSchema(s) => {
                if !self.schemas.insert(s.clone()) {
                    return Err(sql_err!(
                        code::DUPLICATE_SCHEMA,
                        "Schema \"{s}\" already exists"
                    ));
                }
            }
            CatalogOp::DropSchema(s) => {
                if self.tables_in(s).next().is_some() || self.views_in(s).next().is_some() {
                    return Err(sql_err!(
                        "2BP01",
                        "cannot drop schema {s} because other objects depend on it"
                    ));
                }
                if !self.schemas.remove(s) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "Schema \"{s}\" does not exist"
                    ));
                }
                self.schema_owners.remove(s);
                self.acl
                    .retain(|(on, _), _| *on != Securable::Schema(s.clone()));
            }
            CatalogOp::CreateTable(t) => {
                if !self.schemas.contains(&t.schema) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "schema \"{}\" does not exist",
                        t.schema
                    ));
                }
                self.check_name_free(&t.schema, &t.name)?;
                self.tables.insert(t.id, Arc::new(t.clone()));
                self.grant_defaults(t.id, &t.owner, &t.schema);
            }
            CatalogOp::DropTable(id) => {
                let name = self
                    .tables
                    .get(id)
                    .ok_or_else(serialization_conflict)?
                    .name
                    .clone();
                self.check_no_dependents(*id, "table", &name)?;
                let by = self.referencing(*id, None);
                if !by.is_empty() {
                    return Err(self.constraint_dependents_error(&format!("table {name}"), &by));
                }
                self.tables.remove(id);
                self.comments.retain(|(rel, _), _| rel != id);
                self.constraints.retain(|_, c| c.table != *id);
                self.acl.retain(|(on, _), _| !on.is_of_relation(*id));
            }
            CatalogOp::CreateView { def, replace } => {
                if !self.schemas.contains(&def.schema) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "schema \"{}\" does not exist",
                        def.schema
                    ));
                }
                let mut def = def.clone();
                let new = self.relation(&def.schema, &def.name).is_none();
                match self.relation(&def.schema, &def.name) {
                    // CREATE OR REPLACE keeps the view's OID (and so its comments).
                    Some(Relation::View(old)) if *replace => def.id = old.id,
                    Some(Relation::Table(_)) if *replace => {
                        return Err(sql_err!(
                            code::WRONG_OBJECT_TYPE,
                            "\"{}\" is not a view",
                            def.name
                        ));
                    }
                    Some(_) => self.check_name_free(&def.schema, &def.name)?,
                    None => {}
                }
                if def.depends_on.contains(&def.id) {
                    return Err(sql_err!(
                        code::INVALID_OBJECT_DEFINITION,
                        "infinite recursion detected in rules for relation \"{}\"",
                        def.name
                    ));
                }
                if new {
                    self.grant_defaults(def.id, &def.owner, &def.schema);
                }
                self.views.insert(def.id, Arc::new(def));
            }
            CatalogOp::DropView(id) => {
                let name = self
                    .views
                    .get(id)
                    .ok_or_else(serialization_conflict)?
                    .name
                    .clone();
                self.check_no_dependents(*id, "view", &name)?;
                self.views.remove(id);
                self.comments.retain(|(rel, _), _| rel != id);
                self.acl.retain(|(on, _), _| !on.is_of_relation(*id));
            }
            CatalogOp::AddConstraint(c) => self.add_constraint(c)?,
            CatalogOp::DropConstraint { table_id, name } => {
                let id = self
                    .constraints
                    .values()
                    .find(|c| c.table == *table_id && c.name == *name)
                    .map(|c| c.id)
                    .ok_or_else(serialization_conflict)?;
                self.constraints.remove(&id);
            }
            CatalogOp::SetComment {
                relation,
                column,
                text,
            } => {
                if !self.tables.contains_key(relation) && !self.views.contains_key(relation) {
                    return Err(serialization_conflict());
                }
                match text {
                    Some(t) => {
                        self.comments.insert((*relation, *column), t.clone());
                    }
                    None => {
                        self.comments.remove(&(*relation, *column));
                    }
                }
            }
            CatalogOp::AddSegments {
                table_id,
                segments,
                placement,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if t.placement() != *placement {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                // The first segment written to an empty slice is its sorted region; later
                // ones form the unsorted region until VACUUM merges them in.
                for seg in segments {
                    let mut seg = seg.clone();
                    seg.sorted_region = !t.segments.iter().any(|s| s.slice == seg.slice);
                    t.segments.push(seg);
                }
                t.modified_rows += segments.iter().map(|s| s.rows).sum::<u64>();
            }
            CatalogOp::SetDeletes {
                table_id,
                segment,
                base,
                deletes,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                // The segment must still be there (not vacuumed away) with the deletion
                // vector this one was built on (no concurrent DELETE), or rows would come
                // back or go missing.
                let seg = t
                    .segments
                    .iter()
                    .position(|s| s.path == *segment)
                    .ok_or_else(serialization_conflict)?;
                if t.segments[seg].deletes.as_ref().map(|d| &d.path) != base.as_ref() {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                let before = t.segments[seg].live_rows();
                t.segments[seg].deletes = Some(deletes.clone());
                t.modified_rows += before - t.segments[seg].live_rows();
            }
            CatalogOp::ReplaceSegments { table_id, old, new } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                // Every replaced segment must be unchanged since it was read.
                if !old.iter().all(|o| t.segments.contains(o)) {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                t.segments.retain(|s| !old.contains(s));
                // The rewritten (sorted) segments go first: each slice's first segment is
                // its sorted region.
                let mut segments = new.clone();
                segments.append(&mut t.segments);
                t.segments = segments;
            }
            CatalogOp::RenameTable { table_id, name } => {
                // `ALTER TABLE … RENAME TO` renames views too (dbt renames every relation so).
                if let Some(v) = self.views.get(table_id) {
                    self.check_name_free(&v.schema.clone(), name)?;
                    let v = self.views.get_mut(table_id).expect("just found");
                    Arc::make_mut(v).name = name.clone();
                    return Ok(());
                }
                let schema = self
                    .tables
                    .get(table_id)
                    .ok_or_else(serialization_conflict)?
                    .schema
                    .clone();
                self.check_name_free(&schema, name)?;
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                Arc::make_mut(t).name = name.clone();
            }
            CatalogOp::Truncate(table_id) => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                t.modified_rows += t.rows();
                t.segments.clear();
            }
            CatalogOp::SetEncoding {
                table_id,
                column,
                encoding,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                if let Some(c) = t.columns.get_mut(*column) {
                    c.encoding = encoding.clone();
                }
                t.encode_auto = false;
            }
            CatalogOp::SetStats { table_id, stats } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                t.stats = Some(stats.clone());
                t.modified_rows = 0;
            }
            CatalogOp::SetIdentityNext {
                table_id,
                column,
                next,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                if let Some(v) = t.identity_next.get_mut(*column) {
                    *v = (*v).max(*next);
                }
            }
            CatalogOp::PutUser(u) => {
                self.users.insert(u.name.clone(), Arc::new(u.clone()));
            }
            CatalogOp::DropUser(name) => {
                if self.users.remove(name).is_none() {
                    return Err(sql_err!(
                        code::UNDEFINED_OBJECT,
                        "user \"{name}\" does not exist"
                    ));
                }
                for g in self.groups.values_mut() {
                    if g.members.contains(name) {
                        Arc::make_mut(g).members.remove(name);
                    }
                }
                for r in self.roles.values_mut() {
                    if r.users.contains_key(name) {
                        Arc::make_mut(r).users.remove(name);
                    }
                }
            }
            CatalogOp::RenameUser { from, to } => {
                if self.users.contains_key(to) {
                    return Err(sql_err!(
                        code::DUPLICATE_OBJECT,
                        "user \"{to}\" already exists"
                    ));
                }
                let mut user = self
                    .users
                    .remove(from)
                    .ok_or_else(|| {
                        sql_err!(code::UNDEFINED_OBJECT, "user \"{from}\" does not exist")
                    })?
                    .as_ref()
                    .clone();
                user.name = to.clone();
                user.md5_hex.clear();
                user.scram_salt.clear();
                user.scram_stored_key.clear();
                user.scram_server_key.clear();
                user.password_disabled = true;
                self.users.insert(to.clone(), Arc::new(user));
                let rename = |name: &mut String| {
                    if name == from {
                        *name = to.clone();
                    }
                };
                for t in self.tables.values_mut() {
                    if t.owner == *from {
                        Arc::make_mut(t).owner = to.clone();
                    }
                }
                for v in self.views.values_mut() {
                    if v.owner == *from {
                        Arc::make_mut(v).owner = to.clone();
                    }
                }
                self.schema_owners.values_mut().for_each(rename);
                for g in self.groups.values_mut() {
                    if g.members.contains(from) {
                        let g = Arc::make_mut(g);
                        g.members.remove(from);
                        g.members.insert(to.clone());
                    }
                }
                for r in self.roles.values_mut() {
                    if r.owner == *from || r.users.contains_key(from) {
                        let r = Arc::make_mut(r);
                        rename(&mut r.owner);
                        if let Some(admin) = r.users.remove(from) {
                            r.users.insert(to.clone(), admin);
                        }
                    }
                }
                self.acl = std::mem::take(&mut self.acl)
                    .into_iter()
                    .map(|((on, grantee), mut grant)| {
                        rename(&mut grant.grantor);
                        let grantee = match grantee {
                            Grantee::User(u) if u == *from => Grantee::User(to.clone()),
                            other => other,
                        };
                        ((on, grantee), grant)
                    })
                    .collect();
                self.default_acl = std::mem::take(&mut self.default_acl)
                    .into_iter()
                    .map(|(mut key, mut grant)| {
                        rename(&mut grant.grantor);
                        rename(&mut key.owner);
                        if key.grantee == Grantee::User(from.clone()) {
                            key.grantee = Grantee::User(to.clone());
                        }
                        (key, grant)
                    })
                    .collect();
            }
            CatalogOp::PutGroup(g) => {
                self.groups.insert(g.name.clone(), Arc::new(g.clone()));
            }
            CatalogOp::DropGroup(name) => {
                if self.groups.remove(name).is_none() {
                    return Err(sql_err!(
                        code::UNDEFINED_OBJECT,
                        "group \"{name}\" does not exist"
                    ));
                }
                self.acl
                    .retain(|(_, grantee), _| *grantee != Grantee::Group(name.clone()));
                self.default_acl
                    .retain(|key, _| key.grantee != Grantee::Group(name.clone()));
            }
            CatalogOp::PutRole(r) => {
                self.roles.insert(r.name.clone(), Arc::new(r.clone()));
            }
            CatalogOp::DropRole(name) => {
                if self.roles.remove(name).is_none() {
                    return Err(sql_err!(
                        code::UNDEFINED_OBJECT,
                        "role \"{name}\" does not exist"
                    ));
                }
                for r in self.roles.values_mut() {
                    if r.roles.contains(name) {
                        Arc::make_mut(r).roles.remove(name);
                    }
                }
                self.acl
                    .retain(|(_, grantee), _| *grantee != Grantee::Role(name.clone()));
                self.default_acl
                    .retain(|key, _| key.grantee != Grantee::Role(name.clone()));
            }
            CatalogOp::SetGrant { on, to, grant } => {
                let key = (on.clone(), to.clone());
                match grant {
                    Some(g) if !g.privileges.is_empty() => {
                        self.acl.insert(key, g.clone());
                    }
                    _ => {
                        self.acl.remove(&key);
                    }
                }
            }
            CatalogOp::SetDefaultGrant { key, grant } => match grant {
                Some(g) if !g.privileges.is_empty() => {
                    self.default_acl.insert(key.clone(), g.clone());
                }
                _ => {
                    self.default_acl.remove(key);
                }
            },
            CatalogOp::SetRelationOwner { relation, owner } => {
                if let Some(t) = self.tables.get_mut(relation) {
                    Arc::make_mut(t).owner = owner.clone();
                } else if let Some(v) = self.views.get_mut(relation) {
                    Arc::make_mut(v).owner = owner.clone();
                } else {
                    return Err(serialization_conflict());
                }
            }
            CatalogOp::SetSchemaOwner { schema, owner } => {
                if !self.schemas.contains(schema) {
                    return Err(sql_err!(
                        code::UNDEFINED_SCHEMA,
                        "Schema \"{schema}\" does not exist"
                    ));
                }
                self.schema_owners.insert(schema.clone(), owner.clone());
            }
            CatalogOp::AddColumn { table_id, column } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if t.columns.iter().any(|c| c.name == column.name) {
                    return Err(column_exists(&column.name, &t.name));
                }
                if t.columns.iter().any(|c| c.stored == column.stored)
                    || t.retired.contains(&column.stored)
                {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                t.columns.push(column.clone());
                t.identity_next.push(0);
            }
            CatalogOp::DropColumn { table_id, stored } => {
                let by = self.referencing(*table_id, Some(stored));
                if !by.is_empty() {
                    let t = self
                        .tables
                        .get(table_id)
                        .ok_or_else(serialization_conflict)?;
                    let name = t
                        .stored_index(stored)
                        .map_or("", |i| t.columns[i].name.as_str());
                    return Err(self.constraint_dependents_error(
                        &format!("column {name} of table {}", t.name),
                        &by,
                    ));
                }
                self.acl
                    .retain(|(on, _), _| *on != Securable::Column(*table_id, stored.clone()));
                // Its own constraints that name the column go with it, as in PostgreSQL.
                self.constraints
                    .retain(|_, c| !(c.table == *table_id && c.uses(*table_id, stored)));
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                let i = t.stored_index(stored).ok_or_else(serialization_conflict)?;
                // Checked when the statement ran; a concurrent change of the keys or
                // columns makes the drop stale.
                if t.dist == DistStyle::Key(i) || t.sort_key.contains(&i) || t.columns.len() == 1 {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                let dropped = t.columns.remove(i);
                t.identity_next.remove(i);
                if let DistStyle::Key(k) = &mut t.dist
                    && *k > i
                {
                    *k -= 1;
                }
                for k in &mut t.sort_key {
                    if *k > i {
                        *k -= 1;
                    }
                }
                if let Some(stats) = &mut t.stats {
                    stats.columns.retain(|c| c.name != dropped.name);
                }
                t.retired.push(dropped.stored);
            }
            CatalogOp::SetColumnType {
                table_id,
                stored,
                sql_type,
                based_on,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if based_on
                    .as_ref()
                    .is_some_and(|p| !t.has_exactly_segments(p))
                {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                let c = t
                    .columns
                    .iter_mut()
                    .find(|c| &c.stored == stored)
                    .ok_or_else(serialization_conflict)?;
                c.sql_type = sql_type.clone();
            }
            CatalogOp::RenameColumn {
                table_id,
                stored,
                name,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if t.columns.iter().any(|c| &c.name == name) {
                    return Err(column_exists(name, &t.name));
                }
                let i = t.stored_index(stored).ok_or_else(serialization_conflict)?;
                let t = Arc::make_mut(t);
                let old = std::mem::replace(&mut t.columns[i].name, name.clone());
                if let Some(stats) = &mut t.stats {
                    for c in stats.columns.iter_mut().filter(|c| c.name == old) {
                        c.name = name.clone();
                    }
                }
            }
            CatalogOp::SetLayout {
                table_id,
                dist,
                sort_kind,
                sort_key,
                encodings,
                encode_auto,
                based_on,
            } => {
                let t = self
                    .tables
                    .get_mut(table_id)
                    .ok_or_else(serialization_conflict)?;
                if encodings.len() != t.columns.len() || !t.has_exactly_segments(based_on) {
                    return Err(serialization_conflict());
                }
                let t = Arc::make_mut(t);
                t.dist = dist.clone();
                t.sort_kind = *sort_kind;
                t.sort_key = sort_key.clone();
                for (c, e) in t.columns.iter_mut().zip(encodings) {
                    c.encoding = e.clone();
                }
                t.encode_auto = *encode_auto;
            }
        }
        Ok(())
    }
}

pub(super) fn column_exists(column: &str, table: &str) -> LeaderError {
    sql_err!(
        code::DUPLICATE_COLUMN,
        "column \"{column}\" of relation \"{table}\" already exists"
    )
}

pub(super) fn serialization_conflict() -> LeaderError {
    sql_err!(
        code::SERIALIZATION_FAILURE,
        "1023 Serializable isolation violation on table: the table was changed or dropped by a concurrent transaction"
    )
}

/// One catalog change. A transaction is a list of these, replayed on the newest state at
/// commit so that concurrent appends to the same table both succeed.
#[derive(Debug, Clone)]
pub enum CatalogOp {
    CreateSchema(String),
    DropSchema(String),
    CreateTable(TableDef),
    DropTable(u64),
    AddSegments {
        table_id: u64,
        segments: Vec<SegmentRef>,
        /// The table's [`TableDef::placement`] the rows were routed by: segments routed by
        /// a distribution an ALTER has since replaced would break co-located joins.
        placement: String,
    },
    /// Give `segment` (a path) the deletion vector `deletes`, which was built on `base`.
    SetDeletes {
        table_id: u64,
        segment: String,
        base: Option<String>,
        deletes: DeleteRef,
    },
    /// VACUUM: `new` segments hold exactly the live rows of `old`.
    ReplaceSegments {
        table_id: u64,
        old: Vec<SegmentRef>,
        new: Vec<SegmentRef>,
    },
    Truncate(u64),
    /// `ALTER TABLE … ALTER COLUMN … ENCODE`: the column's new encoding.
    SetEncoding {
        table_id: u64,
        column: usize,
        encoding: String,
    },
    SetStats {
        table_id: u64,
        stats: TableStats,
    },
    SetIdentityNext {
        table_id: u64,
        column: usize,
        next: i64,
    },
    PutUser(UserDef),
    /// `DROP USER` (the user's group memberships go with it).
    DropUser(String),
    /// `ALTER USER … RENAME TO`: everything the user owns, holds or granted follows the
    /// new name; the password is cleared (its MD5 hash covers the name).
    RenameUser {
        from: String,
        to: String,
    },
    /// `CREATE GROUP` / `ALTER GROUP`: the group as it is now.
    PutGroup(GroupDef),
    /// `DROP GROUP` (and every privilege granted to it).
    DropGroup(String),
    /// `CREATE ROLE` / `GRANT ROLE` / `REVOKE ROLE`: the role as it is now.
    PutRole(RoleDef),
    /// `DROP ROLE` (its grants, and its memberships in other roles, go with it).
    DropRole(String),
    /// GRANT / REVOKE: what `to` now holds on `on` (None or no privileges: nothing).
    SetGrant {
        on: Securable,
        to: Grantee,
        grant: Option<Grant>,
    },
    /// `ALTER DEFAULT PRIVILEGES … GRANT | REVOKE`: the entry as it is now (None or no
    /// privileges: gone).
    SetDefaultGrant {
        key: DefaultAclKey,
        grant: Option<Grant>,
    },
    /// `ALTER TABLE | VIEW … OWNER TO`.
    SetRelationOwner {
        relation: u64,
        owner: String,
    },
    /// `CREATE SCHEMA` records its creator; `ALTER SCHEMA … OWNER TO` changes it.
    SetSchemaOwner {
        schema: String,
        owner: String,
    },
    /// `CREATE [OR REPLACE] VIEW`.
    CreateView {
        def: ViewDef,
        replace: bool,
    },
    DropView(u64),
    /// `COMMENT ON`: the text of a relation's (column 0) or a column's comment; None
    /// removes it.
    SetComment {
        relation: u64,
        column: u32,
        text: Option<String>,
    },
    /// `PRIMARY KEY`, `UNIQUE` or `FOREIGN KEY`, from CREATE TABLE or ALTER TABLE ADD.
    AddConstraint(ConstraintDef),
    /// `ALTER TABLE … DROP CONSTRAINT name` (and FOREIGN KEYs a CASCADE takes).
    DropConstraint {
        table_id: u64,
        name: String,
    },
    /// `ALTER TABLE … RENAME TO`: the table's (or view's) new name, in its schema.
    RenameTable {
        table_id: u64,
        name: String,
    },
    /// `ALTER TABLE … ADD COLUMN`: a new last column; existing segments lack it.
    AddColumn {
        table_id: u64,
        column: ColumnDef,
    },
    /// `ALTER TABLE … DROP COLUMN`: the column stored as `stored` goes (its data stays in
    /// older segments, unread).
    DropColumn {
        table_id: u64,
        stored: String,
    },
    /// `ALTER TABLE … RENAME COLUMN`: the column stored as `stored` is called `name`.
    RenameColumn {
        table_id: u64,
        stored: String,
        name: String,
    },
    /// `ALTER TABLE … ALTER COLUMN c TYPE varchar(n)`: the column's new length. A shrink
    /// was checked against the rows of the segments `based_on`, which must still be the
    /// table's (a row written meanwhile could be too long).
    SetColumnType {
        table_id: u64,
        stored: String,
        sql_type: SqlType,
        based_on: Option<Vec<String>>,
    },
    /// `ALTER DISTSTYLE / DISTKEY / SORTKEY / ENCODE AUTO`: the table's new layout,
    /// committed with the segments rewritten in it.
    SetLayout {
        table_id: u64,
        dist: DistStyle,
        sort_kind: SortKind,
        sort_key: Vec<usize>,
        encodings: Vec<String>,
        encode_auto: bool,
        /// Paths of the segments the rewrite read: the table must still have exactly
        /// these, or rows written meanwhile would keep the old layout.
        based_on: Vec<String>,
    },
}

impl CatalogOp {
    /// Files this change brings into a table version: if the change is never committed
    /// they belong to nothing and can be deleted.
    pub fn new_files(&self) -> Vec<String> {
        match self {
            CatalogOp::AddSegments { segments, .. } => {
                segments.iter().map(|s| s.path.clone()).collect()
            }
            CatalogOp::SetDeletes { deletes, .. } => vec![deletes.path.clone()],
            CatalogOp::ReplaceSegments { new, .. } => new.iter().map(|s| s.path.clone()).collect(),
            _ => vec![],
        }
    }
}
