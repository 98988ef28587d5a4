//! `GRANT` and `REVOKE` on tables and views (`ON [TABLE] t, …`, `ON ALL TABLES IN
//! SCHEMA s`), their columns (`SELECT (a, b)`), schemas and the database, to users,
//! groups, roles and PUBLIC; system privileges to roles (`GRANT CREATE USER TO ROLE r`);
//! and `ALTER DEFAULT PRIVILEGES`, which the catalog applies to each table or view its
//! owner creates. Granting needs ownership (or superuser) or the privilege WITH GRANT
//! OPTION; revoking what was never granted changes nothing, as in Redshift.

use crate::catalog::privileges::{has_system_privilege, is_superuser, is_system_role, may_grant};
use crate::catalog::{
    CatalogOp, CatalogState, DefaultAclKey, DefaultObjects, Grant, Grantee, Privilege, Privileges,
    Securable,
};
use crate::commands::context::{Outcome, StatementContext};
use crate::commands::privileges::permission_denied;
use crate::error::{Result, code};
use crate::sql::access::{DefaultPrivileges, GrantObjects, GrantStatement, GranteeName};
use crate::sql::names::split_name;
use crate::sql_err;

/// Privileges that apply to schemas and to the database (those of tables, views and
/// columns are `Privilege::ON_RELATIONS` / `ON_COLUMNS`); `ALL` means every one of its
/// object's kind.
const SCHEMA_PRIVILEGES: &[Privilege] = &[
    Privilege::Create,
    Privilege::Usage,
    Privilege::Alter,
    Privilege::Drop,
];
const DATABASE_PRIVILEGES: &[Privilege] = &[Privilege::Create, Privilege::Temp, Privilege::Usage];

impl StatementContext {
    /// `GRANT privileges ON objects TO grantees [WITH GRANT OPTION]`.
    pub(crate) fn grant(&mut self, g: &GrantStatement) -> Result<Outcome> {
        let view = self.view();
        let targets = resolve(&view, g)?;
        let grantees = grantees(&view, &g.grantees)?;
        self.check_grantees(&view, g, &grantees)?;
        if g.with_grant_option && grantees.iter().any(|to| !matches!(to, Grantee::User(_))) {
            return Err(sql_err!(
                code::INVALID_GRANT_OPERATION,
                "grant options can only be granted to users"
            ));
        }
        if g.with_grant_option && !g.columns.is_empty() {
            return Err(sql_err!(
                code::INVALID_GRANT_OPERATION,
                "WITH GRANT OPTION cannot be used with column-level privileges"
            ));
        }
        // Redshift's WITH GRANT OPTION belongs to the user it follows; rather than guess
        // which of several grantees it meant, such a GRANT is refused.
        if g.with_grant_option && grantees.len() > 1 {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "WITH GRANT OPTION in a GRANT to several grantees is not supported yet; grant to that user in a statement of its own"
            ));
        }
        let mut ops = vec![];
        for (on, privileges) in &targets {
            self.check_may_grant(&view, on, *privileges)?;
            for to in &grantees {
                let old = view.acl.get(&(on.clone(), to.clone()));
                let grant = Grant {
                    privileges: old.map_or(*privileges, |o| o.privileges.union(*privileges)),
                    grant_option: match (old, g.with_grant_option) {
                        (Some(o), true) => o.grant_option.union(*privileges),
                        (Some(o), false) => o.grant_option,
                        (None, true) => *privileges,
                        (None, false) => Privileges::default(),
                    },
                    // A superuser's grant is recorded as the owner's, as in PostgreSQL.
                    grantor: if is_superuser(&view, &self.user) {
                        crate::catalog::privileges::owner_of(&view, on)
                            .unwrap_or(&self.user)
                            .to_string()
                    } else {
                        self.user.clone()
                    },
                };
                ops.push(CatalogOp::SetGrant {
                    on: on.clone(),
                    to: to.clone(),
                    grant: Some(grant),
                });
            }
        }
        self.record(ops)?;
        Ok(Outcome::Command("GRANT".into()))
    }

    /// `REVOKE [GRANT OPTION FOR] privileges ON objects FROM grantees [CASCADE |
    /// RESTRICT]`. Revoking a privilege on a table revokes it on the table's columns
    /// too, as in PostgreSQL. RESTRICT (the default) takes only the grantees'; CASCADE
    /// also what they granted on from the grant option they lose (each grant records its
    /// grantor), and so on down the chain.
    pub(crate) fn revoke(&mut self, g: &GrantStatement, grant_option_for: bool) -> Result<Outcome> {
        let view = self.view();
        let mut targets = resolve(&view, g)?;
        let grantees = grantees(&view, &g.grantees)?;
        self.check_grantees(&view, g, &grantees)?;
        for (on, privileges) in &targets {
            self.check_may_grant(&view, on, *privileges)?;
        }
        if !grant_option_for {
            let columns: Vec<(Securable, Privileges)> = targets
                .iter()
                .filter_map(|(on, p)| match on {
                    Securable::Relation(id) => Some((*id, *p)),
                    _ => None,
                })
                .flat_map(|(id, p)| {
                    view.acl
                        .keys()
                        .filter(move |(on, _)| matches!(on, Securable::Column(r, _) if *r == id))
                        .map(move |(on, _)| (on.clone(), p))
                })
                .collect();
            targets.extend(columns);
        }
        // The ACL as the revoke leaves it; with CASCADE, what each user that loses the
        // right to grant had granted from it goes too, down the chain.
        let mut acl = view.acl.clone();
        let mut todo: Vec<(Securable, Grantee, Privileges, bool)> = vec![];
        for (on, privileges) in &targets {
            for to in &grantees {
                todo.push((on.clone(), to.clone(), *privileges, grant_option_for));
            }
        }
        let mut changed = std::collections::BTreeSet::new();
        while let Some((on, to, privileges, option_only)) = todo.pop() {
            let key = (on.clone(), to.clone());
            let Some(old) = acl.get(&key).cloned() else {
                continue;
            };
            let lost_option = old.grant_option.intersect(privileges);
            let grant = Grant {
                privileges: if option_only {
                    old.privileges
                } else {
                    old.privileges.minus(privileges)
                },
                grant_option: old.grant_option.minus(privileges),
                grantor: old.grantor.clone(),
            };
            if grant == old {
                continue;
            }
            acl.insert(key.clone(), grant);
            changed.insert(key);
            if let (true, false, Grantee::User(u)) = (g.cascade, lost_option.is_empty(), &to) {
                for ((o, holder), dependent) in &acl {
                    if *o == on && dependent.grantor == *u && *holder != to {
                        todo.push((o.clone(), holder.clone(), lost_option, false));
                    }
                }
            }
        }
        let ops = changed
            .into_iter()
            .map(|(on, to)| {
                let grant = acl.get(&(on.clone(), to.clone())).cloned();
                CatalogOp::SetGrant { on, to, grant }
            })
            .collect();
        self.record(ops)?;
        Ok(Outcome::Command("REVOKE".into()))
    }

    /// System privileges go to roles only, from superusers; the system-defined roles'
    /// system privileges are fixed.
    fn check_grantees(
        &self,
        view: &CatalogState,
        g: &GrantStatement,
        grantees: &[Grantee],
    ) -> Result<()> {
        if g.objects != GrantObjects::System {
            return Ok(());
        }
        if !is_superuser(view, &self.user) {
            return Err(sql_err!(
                code::INSUFFICIENT_PRIVILEGE,
                "must be superuser to grant or revoke system permissions"
            ));
        }
        for to in grantees {
            match to {
                Grantee::Role(r) if is_system_role(r) => {
                    return Err(sql_err!(
                        code::INVALID_GRANT_OPERATION,
                        "the system permissions of system-defined role \"{r}\" cannot be changed"
                    ));
                }
                Grantee::Role(_) => {}
                _ => {
                    return Err(sql_err!(
                        code::INVALID_GRANT_OPERATION,
                        "system permissions can only be granted to roles"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Granting (or revoking) on an object needs its ownership or the privileges WITH
    /// GRANT OPTION; on a column, those on its relation.
    fn check_may_grant(
        &self,
        view: &CatalogState,
        on: &Securable,
        privileges: Privileges,
    ) -> Result<()> {
        let (object, shown) = match on {
            Securable::Column(id, _) => (Securable::Relation(*id), Securable::Relation(*id)),
            Securable::System => return Ok(()),
            other => (other.clone(), other.clone()),
        };
        for p in privileges.iter() {
            if !may_grant(view, &self.user, &object, p) {
                return Err(permission_denied(view, &shown));
            }
        }
        Ok(())
    }

    /// `ALTER DEFAULT PRIVILEGES [FOR USER u, …] [IN SCHEMA s, …] {GRANT | REVOKE} … ON
    /// TABLES {TO | FROM} …`. A user sets its own defaults; those of others need a
    /// superuser or the ALTER DEFAULT PRIVILEGES system privilege.
    pub(crate) fn alter_default_privileges(&mut self, d: &DefaultPrivileges) -> Result<Outcome> {
        let view = self.view();
        if d.objects != "TABLES" {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "default privileges ON {} are not supported yet",
                d.objects
            ));
        }
        let owners = if d.for_users.is_empty() {
            vec![self.user.clone()]
        } else {
            d.for_users.clone()
        };
        for owner in &owners {
            if !view.users.contains_key(owner) {
                return Err(sql_err!(
                    code::UNDEFINED_OBJECT,
                    "user \"{owner}\" does not exist"
                ));
            }
            if *owner != self.user
                && !has_system_privilege(&view, &self.user, Privilege::AlterDefaultPrivileges)
            {
                return Err(sql_err!(
                    code::INSUFFICIENT_PRIVILEGE,
                    "must be superuser to alter the default privileges of another user"
                ));
            }
        }
        for s in &d.schemas {
            existing_schema(&view, s)?;
        }
        let privileges = privileges_of(&d.privileges, Privilege::ON_RELATIONS, "relation")?;
        let grantees = grantees(&view, &d.grantees)?;
        if d.with_grant_option && grantees.iter().any(|to| !matches!(to, Grantee::User(_))) {
            return Err(sql_err!(
                code::INVALID_GRANT_OPERATION,
                "grant options can only be granted to users"
            ));
        }
        let schemas: Vec<Option<String>> = if d.schemas.is_empty() {
            vec![None]
        } else {
            d.schemas.iter().cloned().map(Some).collect()
        };
        let mut ops = vec![];
        for owner in &owners {
            for schema in &schemas {
                for to in &grantees {
                    let key = DefaultAclKey {
                        owner: owner.clone(),
                        schema: schema.clone(),
                        objects: DefaultObjects::Tables,
                        grantee: to.clone(),
                    };
                    let old = view.default_acl.get(&key);
                    let grant = match (d.revoke, old) {
                        (true, None) => continue,
                        (true, Some(o)) if d.grant_option_for => Grant {
                            grant_option: o.grant_option.minus(privileges),
                            ..o.clone()
                        },
                        (true, Some(o)) => Grant {
                            privileges: o.privileges.minus(privileges),
                            grant_option: o.grant_option.minus(privileges),
                            grantor: o.grantor.clone(),
                        },
                        (false, old) => Grant {
                            privileges: old.map_or(privileges, |o| o.privileges.union(privileges)),
                            grant_option: match (old, d.with_grant_option) {
                                (Some(o), true) => o.grant_option.union(privileges),
                                (Some(o), false) => o.grant_option,
                                (None, true) => privileges,
                                (None, false) => Privileges::default(),
                            },
                            grantor: owner.clone(),
                        },
                    };
                    ops.push(CatalogOp::SetDefaultGrant {
                        key,
                        grant: Some(grant),
                    });
                }
            }
        }
        self.record(ops)?;
        Ok(Outcome::Command("ALTER DEFAULT PRIVILEGES".into()))
    }
}

/// The objects a GRANT names and the privileges it gives on each, each privilege
/// checked against the kind of object.
fn resolve(view: &CatalogState, g: &GrantStatement) -> Result<Vec<(Securable, Privileges)>> {
    let (objects, applicable, kind): (Vec<Securable>, &[Privilege], &str) = match &g.objects {
        GrantObjects::Tables(names) => {
            let mut out = vec![];
            for n in names {
                let (schema, name) = split_name(n)?;
                let rel = view.relation(&schema, &name).ok_or_else(|| {
                    sql_err!(code::UNDEFINED_TABLE, "relation \"{name}\" does not exist")
                })?;
                out.push(Securable::Relation(rel.id()));
            }
            if !g.columns.is_empty() {
                return column_targets(view, out[0].clone(), g);
            }
            (out, Privilege::ON_RELATIONS, "relation")
        }
        GrantObjects::AllTablesInSchema(schemas) => {
            let mut out = vec![];
            for s in schemas {
                existing_schema(view, s)?;
                out.extend(view.tables_in(s).map(|t| Securable::Relation(t.id)));
                out.extend(view.views_in(s).map(|v| Securable::Relation(v.id)));
            }
            (out, Privilege::ON_RELATIONS, "relation")
        }
        GrantObjects::Schemas(schemas) => {
            for s in schemas {
                existing_schema(view, s)?;
            }
            (
                schemas
                    .iter()
                    .map(|s| Securable::Schema(s.clone()))
                    .collect(),
                SCHEMA_PRIVILEGES,
                "schema",
            )
        }
        GrantObjects::Databases(dbs) => {
            for d in dbs {
                if d != crate::system::pg_catalog::DATABASE {
                    return Err(sql_err!(
                        code::UNDEFINED_DATABASE,
                        "database \"{d}\" does not exist"
                    ));
                }
            }
            (vec![Securable::Database], DATABASE_PRIVILEGES, "database")
        }
        GrantObjects::System => {
            let system: Vec<Privilege> = Privilege::system().collect();
            let privileges = privileges_of(&g.privileges, &system, "system")?;
            return Ok(vec![(Securable::System, privileges)]);
        }
    };
    let privileges = privileges_of(&g.privileges, applicable, kind)?;
    Ok(objects.into_iter().map(|on| (on, privileges)).collect())
}

/// `GRANT SELECT (a, b), UPDATE (b) ON t`: each named column of relation `on` with the
/// privileges given on it.
fn column_targets(
    view: &CatalogState,
    on: Securable,
    g: &GrantStatement,
) -> Result<Vec<(Securable, Privileges)>> {
    let Securable::Relation(id) = on else {
        unreachable!("column privileges name one relation")
    };
    // A column is kept by its stored name (which RENAME COLUMN keeps); a view's by name.
    let (relation, columns): (&str, Vec<(&str, &str)>) = match view.tables.get(&id) {
        Some(t) => (
            &t.name,
            t.columns
                .iter()
                .map(|c| (c.name.as_str(), c.stored.as_str()))
                .collect(),
        ),
        None => {
            let v = &view.views[&id];
            if v.late_binding {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "column-level privileges on late-binding view \"{}\" are not supported",
                    v.name
                ));
            }
            (
                &v.name,
                v.columns
                    .iter()
                    .map(|c| (c.name.as_str(), c.name.as_str()))
                    .collect(),
            )
        }
    };
    let stored = |column: &str| -> Result<String> {
        columns
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, stored)| stored.to_string())
            .ok_or_else(|| {
                sql_err!(
                    code::UNDEFINED_COLUMN,
                    "column \"{column}\" of relation \"{relation}\" does not exist"
                )
            })
    };
    let words: Vec<Vec<String>> = if g.privileges.is_empty() {
        vec![vec![]]
    } else {
        g.privileges.iter().map(|p| vec![p.clone()]).collect()
    };
    let mut out: Vec<(Securable, Privileges)> = vec![];
    for (words, columns) in words.iter().zip(&g.columns) {
        let privileges = privileges_of(words, Privilege::ON_COLUMNS, "column")?;
        for c in columns {
            let on = Securable::Column(id, stored(c)?);
            match out.iter_mut().find(|(o, _)| *o == on) {
                Some((_, p)) => *p = p.union(privileges),
                None => out.push((on, privileges)),
            }
        }
    }
    Ok(out)
}

/// The privileges `words` name (all of `applicable` when empty, as for `ALL`).
fn privileges_of(words: &[String], applicable: &[Privilege], kind: &str) -> Result<Privileges> {
    if words.is_empty() {
        return Ok(Privileges::of(applicable));
    }
    let mut list = vec![];
    for word in words {
        let p = Privilege::ALL
            .into_iter()
            .find(|p| p.keyword() == word)
            .filter(|p| applicable.contains(p))
            .ok_or_else(|| {
                sql_err!(
                    code::INVALID_GRANT_OPERATION,
                    "invalid privilege type {word} for {kind}"
                )
            })?;
        list.push(p);
    }
    Ok(Privileges::of(&list))
}

fn existing_schema(view: &CatalogState, s: &str) -> Result<()> {
    if view.schemas.contains(s) {
        Ok(())
    } else {
        Err(sql_err!(
            code::UNDEFINED_SCHEMA,
            "Schema \"{s}\" does not exist"
        ))
    }
}

fn grantees(view: &CatalogState, names: &[GranteeName]) -> Result<Vec<Grantee>> {
    names
        .iter()
        .map(|g| match g {
            GranteeName::Public => Ok(Grantee::Public),
            GranteeName::User(u) if view.users.contains_key(u) => Ok(Grantee::User(u.clone())),
            GranteeName::User(u) => Err(sql_err!(
                code::UNDEFINED_OBJECT,
                "user \"{u}\" does not exist"
            )),
            GranteeName::Group(n) if view.groups.contains_key(n) => Ok(Grantee::Group(n.clone())),
            GranteeName::Group(n) => Err(sql_err!(
                code::UNDEFINED_OBJECT,
                "group \"{n}\" does not exist"
            )),
            GranteeName::Role(r) if view.roles.contains_key(r) => Ok(Grantee::Role(r.clone())),
            GranteeName::Role(r) => Err(sql_err!(
                code::UNDEFINED_OBJECT,
                "role \"{r}\" does not exist"
            )),
        })
        .collect()
}
