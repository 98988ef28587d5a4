//! `GRANT` and `REVOKE` on tables and views (`ON [TABLE] t, …`, `ON ALL TABLES IN
//! SCHEMA s`), schemas and the database, to users, groups and PUBLIC. Granting needs
//! ownership (or superuser) or the privilege WITH GRANT OPTION; revoking what was never
//! granted changes nothing, as in Redshift.

use crate::catalog::privileges::may_grant;
use crate::catalog::{CatalogOp, CatalogState, Grant, Grantee, Privilege, Privileges, Securable};
use crate::commands::context::{Outcome, StatementContext};
use crate::commands::privileges::permission_denied;
use crate::error::{Result, code};
use crate::sql::access::{GrantObjects, GrantStatement, GranteeName};
use crate::sql::names::split_name;
use crate::sql_err;

/// Privileges that apply to tables and views, to schemas and to the database; `ALL`
/// means every one of its object's kind.
const TABLE_PRIVILEGES: &[Privilege] = &[
    Privilege::Select,
    Privilege::Insert,
    Privilege::Update,
    Privilege::Delete,
    Privilege::Drop,
    Privilege::References,
    Privilege::Truncate,
    Privilege::Alter,
];
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
        let (objects, privileges) = resolve(&view, g)?;
        let grantees = grantees(&view, &g.grantees)?;
        if g.with_grant_option && grantees.iter().any(|to| !matches!(to, Grantee::User(_))) {
            return Err(sql_err!(
                code::INVALID_GRANT_OPERATION,
                "grant options can only be granted to users"
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
        for on in &objects {
            for p in privileges.iter() {
                if !may_grant(&view, &self.user, on, p) {
                    return Err(permission_denied(&view, on));
                }
            }
            for to in &grantees {
                let old = view.acl.get(&(on.clone(), to.clone()));
                let grant = Grant {
                    privileges: old.map_or(privileges, |o| o.privileges.union(privileges)),
                    grant_option: match (old, g.with_grant_option) {
                        (Some(o), true) => o.grant_option.union(privileges),
                        (Some(o), false) => o.grant_option,
                        (None, true) => privileges,
                        (None, false) => Privileges::default(),
                    },
                    // A superuser's grant is recorded as the owner's, as in PostgreSQL.
                    grantor: if crate::catalog::privileges::is_superuser(&view, &self.user) {
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
    /// RESTRICT]`.
    pub(crate) fn revoke(&mut self, g: &GrantStatement, grant_option_for: bool) -> Result<Outcome> {
        let view = self.view();
        let (objects, privileges) = resolve(&view, g)?;
        let grantees = grantees(&view, &g.grantees)?;
        let mut ops = vec![];
        for on in &objects {
            for p in privileges.iter() {
                if !may_grant(&view, &self.user, on, p) {
                    return Err(permission_denied(&view, on));
                }
            }
            for to in &grantees {
                let Some(old) = view.acl.get(&(on.clone(), to.clone())) else {
                    continue;
                };
                let grant = if grant_option_for {
                    Grant {
                        grant_option: old.grant_option.minus(privileges),
                        ..old.clone()
                    }
                } else {
                    Grant {
                        privileges: old.privileges.minus(privileges),
                        grant_option: old.grant_option.minus(privileges),
                        grantor: old.grantor.clone(),
                    }
                };
                ops.push(CatalogOp::SetGrant {
                    on: on.clone(),
                    to: to.clone(),
                    grant: Some(grant),
                });
            }
        }
        self.record(ops)?;
        Ok(Outcome::Command("REVOKE".into()))
    }
}

/// The objects a GRANT names and the privileges it gives on them, each privilege
/// checked against the kind of object.
fn resolve(view: &CatalogState, g: &GrantStatement) -> Result<(Vec<Securable>, Privileges)> {
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
            (out, TABLE_PRIVILEGES, "relation")
        }
        GrantObjects::AllTablesInSchema(schemas) => {
            let mut out = vec![];
            for s in schemas {
                existing_schema(view, s)?;
                out.extend(view.tables_in(s).map(|t| Securable::Relation(t.id)));
                out.extend(view.views_in(s).map(|v| Securable::Relation(v.id)));
            }
            (out, TABLE_PRIVILEGES, "relation")
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
    };
    let privileges = if g.privileges.is_empty() {
        Privileges::of(applicable)
    } else {
        let mut list = vec![];
        for word in &g.privileges {
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
        Privileges::of(&list)
    };
    Ok((objects, privileges))
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
