//! Role-based access control: `CREATE ROLE`, `ALTER ROLE … RENAME TO`, `DROP ROLE [FORCE |
//! RESTRICT]`, `GRANT ROLE r TO user [WITH ADMIN OPTION] | ROLE r2` and `REVOKE ROLE`.
//! A role's privileges reach every user it is granted to, directly or through roles it
//! is granted to (cycles are refused). Superusers manage roles, as do holders of the
//! CREATE ROLE / DROP ROLE system privileges; a role's owner and a user holding it WITH
//! ADMIN OPTION may grant and revoke it. Redshift's system-defined roles (`sys:dba`, …)
//! are granted like any role but never created, dropped, renamed or changed.

use crate::catalog::privileges::{
    has_system_privilege, is_superuser, is_system_role, roles_reached,
};
use crate::catalog::{CatalogOp, CatalogState, Grantee, Privilege, RoleDef};
use crate::commands::context::{Outcome, StatementContext};
use crate::error::{Result, code};
use crate::sql::access::GranteeName;
use crate::sql_err;

impl StatementContext {
    pub(crate) fn create_role(&mut self, name: &str) -> Result<Outcome> {
        self.require_system(Privilege::CreateRole, "create roles")?;
        let view = self.view();
        if is_system_role(name) || name.starts_with("ds:") {
            return Err(sql_err!(
                code::RESERVED_NAME,
                "role name \"{name}\" is reserved: the prefixes sys: and ds: are Redshift's own"
            ));
        }
        if view.roles.contains_key(name) {
            return Err(sql_err!(
                code::DUPLICATE_OBJECT,
                "role \"{name}\" already exists"
            ));
        }
        self.record(vec![CatalogOp::PutRole(RoleDef {
            name: name.to_string(),
            owner: self.user.clone(),
            users: Default::default(),
            roles: Default::default(),
        })])?;
        Ok(Outcome::Command("CREATE ROLE".into()))
    }

    /// `DROP ROLE r [RESTRICT]` refuses while the role is granted to anyone; FORCE
    /// revokes it from everyone first. Its privileges go with it.
    pub(crate) fn drop_role(&mut self, name: &str, force: bool) -> Result<Outcome> {
        let view = self.view();
        let role = existing_role(&view, name)?;
        refuse_system_role(name)?;
        if !(role.owner == self.user
            || role.users.get(&self.user) == Some(&true)
            || has_system_privilege(&view, &self.user, Privilege::DropRole))
        {
            self.require_system(Privilege::DropRole, "drop roles")?;
        }
        // What a session created while acting as the role (SET ROLE), the role owns.
        let (owned, _) = crate::catalog::privileges::dependencies_of(&view, name);
        let owned: Vec<String> = owned
            .into_iter()
            .filter(|o| !o.starts_with("role "))
            .collect();
        if !owned.is_empty() {
            return Err(sql_err!(
                code::DEPENDENT_OBJECTS_STILL_EXIST,
                "role \"{name}\" cannot be dropped because it owns some object: {}",
                owned.join(", ")
            ));
        }
        if !force && (!role.users.is_empty() || !role.roles.is_empty()) {
            let mut to: Vec<String> = role.users.keys().cloned().collect();
            to.extend(role.roles.iter().map(|r| format!("role {r}")));
            return Err(sql_err!(
                code::DEPENDENT_OBJECTS_STILL_EXIST,
                "cannot drop role \"{name}\" because it is granted to {}; use DROP ROLE … FORCE",
                to.join(", ")
            ));
        }
        self.record(vec![CatalogOp::DropRole(name.to_string())])?;
        Ok(Outcome::Command("DROP ROLE".into()))
    }

    pub(crate) fn rename_role(&mut self, name: &str, to: &str) -> Result<Outcome> {
        let view = self.view();
        let mut role = existing_role(&view, name)?.clone();
        refuse_system_role(name)?;
        if is_system_role(to) {
            return Err(sql_err!(
                code::RESERVED_NAME,
                "role name \"{to}\" is reserved: the prefix sys: is Redshift's own"
            ));
        }
        if role.owner != self.user {
            self.require_superuser("rename roles")?;
        }
        if view.roles.contains_key(to) {
            return Err(sql_err!(
                code::DUPLICATE_OBJECT,
                "role \"{to}\" already exists"
            ));
        }
        let mut ops = vec![CatalogOp::DropRole(name.to_string())];
        role.name = to.to_string();
        ops.push(CatalogOp::PutRole(role));
        // Roles it was granted to, and its grants, follow the new name.
        for r in view.roles.values().filter(|r| r.roles.contains(name)) {
            let mut r = r.as_ref().clone();
            r.roles.remove(name);
            r.roles.insert(to.to_string());
            ops.push(CatalogOp::PutRole(r));
        }
        for ((on, grantee), grant) in &view.acl {
            if *grantee == Grantee::Role(name.to_string()) {
                ops.push(CatalogOp::SetGrant {
                    on: on.clone(),
                    to: Grantee::Role(to.to_string()),
                    grant: Some(grant.clone()),
                });
            }
        }
        self.record(ops)?;
        Ok(Outcome::Command("ALTER ROLE".into()))
    }

    /// `ALTER ROLE r OWNER TO user`: the owner, or a superuser, hands the role on.
    pub(crate) fn alter_role_owner(&mut self, name: &str, owner: &str) -> Result<Outcome> {
        let view = self.view();
        let mut role = existing_role(&view, name)?.clone();
        refuse_system_role(name)?;
        if role.owner != self.user {
            self.require_superuser("change the owner of a role")?;
        }
        if !view.users.contains_key(owner) {
            return Err(sql_err!(
                code::UNDEFINED_OBJECT,
                "user \"{owner}\" does not exist"
            ));
        }
        role.owner = owner.to_string();
        self.record(vec![CatalogOp::PutRole(role)])?;
        Ok(Outcome::Command("ALTER ROLE".into()))
    }

    /// `GRANT ROLE r, … TO user [WITH ADMIN OPTION] | ROLE r2, …`.
    pub(crate) fn grant_roles(
        &mut self,
        roles: &[String],
        to: &[GranteeName],
        admin_option: bool,
    ) -> Result<Outcome> {
        let view = self.view();
        let mut changed: std::collections::BTreeMap<String, RoleDef> = Default::default();
        for name in roles {
            self.require_role_admin(&view, name)?;
            let mut role = existing_role(&view, name)?.clone();
            for grantee in to {
                match grantee {
                    GranteeName::User(u) => {
                        if !view.users.contains_key(u) {
                            return Err(sql_err!(
                                code::UNDEFINED_OBJECT,
                                "user \"{u}\" does not exist"
                            ));
                        }
                        let admin = admin_option || role.users.get(u).copied().unwrap_or(false);
                        role.users.insert(u.clone(), admin);
                    }
                    GranteeName::Role(r) => {
                        existing_role(&view, r)?;
                        refuse_system_role(r)?;
                        // r gains `name`; refused when `name` already reaches r.
                        if roles_reached(&view, r).contains(name.as_str()) || r == name {
                            return Err(sql_err!(
                                code::INVALID_GRANT_OPERATION,
                                "granting role \"{name}\" to role \"{r}\" would create a cycle"
                            ));
                        }
                        role.roles.insert(r.clone());
                    }
                    GranteeName::Group(_) | GranteeName::Public => {
                        return Err(sql_err!(
                            code::FEATURE_NOT_SUPPORTED,
                            "roles can be granted only to users and roles"
                        ));
                    }
                }
            }
            changed.insert(name.clone(), role);
        }
        self.record(changed.into_values().map(CatalogOp::PutRole).collect())?;
        Ok(Outcome::Command("GRANT".into()))
    }

    /// `REVOKE [ADMIN OPTION FOR] ROLE r, … FROM user | ROLE r2, …`.
    pub(crate) fn revoke_roles(
        &mut self,
        roles: &[String],
        from: &[GranteeName],
        admin_option_only: bool,
    ) -> Result<Outcome> {
        let view = self.view();
        let mut ops = vec![];
        for name in roles {
            self.require_role_admin(&view, name)?;
            let mut role = existing_role(&view, name)?.clone();
            for grantee in from {
                match grantee {
                    GranteeName::User(u) if admin_option_only => {
                        if let Some(admin) = role.users.get_mut(u) {
                            *admin = false;
                        }
                    }
                    GranteeName::User(u) => {
                        role.users.remove(u);
                    }
                    GranteeName::Role(r) => {
                        role.roles.remove(r);
                    }
                    GranteeName::Group(_) | GranteeName::Public => {}
                }
            }
            ops.push(CatalogOp::PutRole(role));
        }
        self.record(ops)?;
        Ok(Outcome::Command("REVOKE".into()))
    }

    /// Superusers, the role's owner and holders of the role WITH ADMIN OPTION grant
    /// and revoke it (a system-defined role: superusers and its admins).
    fn require_role_admin(&self, view: &CatalogState, role: &str) -> Result<()> {
        let def = view.roles.get(role);
        let admin = def
            .and_then(|r| r.users.get(&self.user))
            .copied()
            .unwrap_or(false);
        let owner = def.is_some_and(|r| r.owner == self.user) && !is_system_role(role);
        if admin || owner || is_superuser(view, &self.user) {
            return Ok(());
        }
        Err(sql_err!(
            code::INSUFFICIENT_PRIVILEGE,
            "must have admin option on role \"{role}\""
        ))
    }
}

fn existing_role<'a>(view: &'a CatalogState, name: &str) -> Result<&'a RoleDef> {
    view.roles
        .get(name)
        .map(|r| r.as_ref())
        .ok_or_else(|| sql_err!(code::UNDEFINED_OBJECT, "role \"{name}\" does not exist"))
}

/// A system-defined role cannot be dropped, renamed or given roles.
fn refuse_system_role(name: &str) -> Result<()> {
    if is_system_role(name) {
        return Err(sql_err!(
            code::INSUFFICIENT_PRIVILEGE,
            "system-defined role \"{name}\" cannot be changed"
        ));
    }
    Ok(())
}
