//! Identities: `CREATE | ALTER | DROP USER` and `CREATE | ALTER | DROP GROUP`. Only
//! superusers manage them (a user may change its own password). Passwords are kept only
//! as hashes ([`crate::catalog::users`]); a user who owns objects or holds privileges
//! cannot be dropped.

use std::collections::BTreeSet;

use crate::catalog::privileges::dependencies_of;
use crate::catalog::users::{
    check_password_rules, disable_password, make_user, set_md5_password, set_password,
};
use datafusion::sql::sqlparser::ast::ObjectName;

use crate::catalog::{CatalogOp, CatalogState, Grantee, GroupDef, Privilege, Securable, UserDef};
use crate::commands::context::{Outcome, StatementContext};
use crate::error::{Result, code};
use crate::sql::access::{GroupChange, UserChange, UserOption};
use crate::sql_err;

/// Names no user may take: Redshift's internal superuser and PUBLIC.
const RESERVED_USERS: &[&str] = &["rdsdb", "public"];

impl StatementContext {
    /// `CREATE USER name [WITH] PASSWORD {'pw' | 'md5…' | DISABLE} [options]`.
    pub(crate) fn create_user(&mut self, name: &str, options: &[UserOption]) -> Result<Outcome> {
        self.require_system(Privilege::CreateUser, "create users")?;
        let view = self.view();
        // Only a superuser makes superusers (the CREATE USER permission does not).
        if options.contains(&UserOption::CreateUser(true)) {
            self.require_superuser("create superusers")?;
        }
        if view.users.contains_key(name) || RESERVED_USERS.contains(&name) {
            return Err(sql_err!(
                code::DUPLICATE_OBJECT,
                "user \"{name}\" already exists"
            ));
        }
        if !options.iter().any(|o| matches!(o, UserOption::Password(_))) {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "CREATE USER needs PASSWORD 'password' or PASSWORD DISABLE"
            ));
        }
        // The password is set by the options; this one is never used.
        let mut user = make_user(name, &uuid::Uuid::new_v4().to_string(), false);
        user.create_db = false;
        let mut ops = apply_user_options(&view, &mut user, options)?;
        ops.insert(0, CatalogOp::PutUser(user));
        self.record(ops)?;
        Ok(Outcome::Command("CREATE USER".into()))
    }

    /// `ALTER USER name [WITH] options | RENAME TO n | SET p TO v | RESET p`.
    pub(crate) fn alter_user(&mut self, name: &str, change: &UserChange) -> Result<Outcome> {
        let view = self.view();
        let own_password_only = matches!(change, UserChange::Options(o)
            if o.iter().all(|o| matches!(o, UserOption::Password(Some(_)))));
        if !(own_password_only && name == self.user) {
            self.require_system(Privilege::AlterUser, "alter users")?;
        }
        let mut user = existing_user(&view, name)?.clone();
        // The ALTER USER permission does not reach superusers, nor make one.
        let touches_superuser = user.superuser
            || matches!(change, UserChange::Options(o)
                if o.iter().any(|o| matches!(o, UserOption::CreateUser(_))));
        if touches_superuser && !(own_password_only && name == self.user) {
            self.require_superuser("alter superusers or make a user a superuser")?;
        }
        let ops = match change {
            UserChange::Options(options) => apply_user_options(&view, &mut user, options)?,
            UserChange::RenameTo(to) => {
                if *to == self.user || name == self.user {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "session user cannot be renamed"
                    ));
                }
                if view.users.contains_key(to) || RESERVED_USERS.contains(&to.as_str()) {
                    return Err(sql_err!(
                        code::DUPLICATE_OBJECT,
                        "user \"{to}\" already exists"
                    ));
                }
                self.record(vec![CatalogOp::RenameUser {
                    from: name.to_string(),
                    to: to.clone(),
                }])?;
                self.notices
                    .push("MD5 password cleared because of user rename".into());
                return Ok(Outcome::Command("ALTER USER".into()));
            }
            UserChange::Set(param, value) => {
                crate::commands::show::check_settable(param)?;
                match value {
                    Some(v) => user.settings.insert(param.clone(), v.clone()),
                    None => user.settings.remove(param),
                };
                vec![]
            }
            UserChange::Reset(param) => {
                if param == "all" {
                    user.settings.clear();
                } else {
                    user.settings.remove(param);
                }
                vec![]
            }
        };
        let mut all = vec![CatalogOp::PutUser(user)];
        all.extend(ops);
        self.record(all)?;
        Ok(Outcome::Command("ALTER USER".into()))
    }

    /// `DROP USER [IF EXISTS] name, …`: refused while a user owns objects or holds
    /// privileges.
    pub(crate) fn drop_users(&mut self, if_exists: bool, names: &[String]) -> Result<Outcome> {
        self.require_system(Privilege::DropUser, "drop users")?;
        let view = self.view();
        let mut ops = vec![];
        for name in names {
            if !view.users.contains_key(name) {
                if if_exists {
                    continue;
                }
                return Err(sql_err!(
                    code::UNDEFINED_OBJECT,
                    "user \"{name}\" does not exist"
                ));
            }
            if *name == self.user {
                return Err(sql_err!("55006", "current user cannot be dropped"));
            }
            let (owned, held) = dependencies_of(&view, name);
            if !owned.is_empty() {
                return Err(sql_err!(
                    code::DEPENDENT_OBJECTS_STILL_EXIST,
                    "user \"{name}\" cannot be dropped because the user owns some object: {}",
                    owned.join(", ")
                ));
            }
            if !held.is_empty() {
                return Err(sql_err!(
                    code::DEPENDENT_OBJECTS_STILL_EXIST,
                    "user \"{name}\" cannot be dropped because the user has a privilege on some object: {}",
                    held.join(", ")
                ));
            }
            ops.push(CatalogOp::DropUser(name.clone()));
        }
        self.record(ops)?;
        Ok(Outcome::Command("DROP USER".into()))
    }

    /// `CREATE GROUP g [[WITH] USER u, …]`.
    pub(crate) fn create_group(&mut self, name: &str, users: &[String]) -> Result<Outcome> {
        self.require_superuser("create groups")?;
        let view = self.view();
        if view.groups.contains_key(name) {
            return Err(sql_err!(
                code::DUPLICATE_OBJECT,
                "group \"{name}\" already exists"
            ));
        }
        for u in users {
            existing_user(&view, u)?;
        }
        self.record(vec![CatalogOp::PutGroup(GroupDef {
            name: name.to_string(),
            members: users.iter().cloned().collect(),
        })])?;
        Ok(Outcome::Command("CREATE GROUP".into()))
    }

    /// `ALTER GROUP g ADD USER … | DROP USER … | RENAME TO n`.
    pub(crate) fn alter_group(&mut self, name: &str, change: &GroupChange) -> Result<Outcome> {
        self.require_superuser("alter groups")?;
        let view = self.view();
        let mut group = existing_group(&view, name)?.clone();
        let ops = match change {
            GroupChange::Add(users) => {
                for u in users {
                    existing_user(&view, u)?;
                }
                group.members.extend(users.iter().cloned());
                vec![CatalogOp::PutGroup(group)]
            }
            GroupChange::Drop(users) => {
                for u in users {
                    existing_user(&view, u)?;
                    group.members.remove(u);
                }
                vec![CatalogOp::PutGroup(group)]
            }
            GroupChange::RenameTo(new) => {
                if view.groups.contains_key(new) {
                    return Err(sql_err!(
                        code::DUPLICATE_OBJECT,
                        "group \"{new}\" already exists"
                    ));
                }
                // The group's grants follow it to its new name.
                let mut ops = vec![CatalogOp::DropGroup(name.to_string())];
                group.name = new.clone();
                ops.push(CatalogOp::PutGroup(group));
                for ((on, to), grant) in &view.acl {
                    if *to == Grantee::Group(name.to_string()) {
                        ops.push(CatalogOp::SetGrant {
                            on: on.clone(),
                            to: Grantee::Group(new.clone()),
                            grant: Some(grant.clone()),
                        });
                    }
                }
                ops
            }
        };
        self.record(ops)?;
        Ok(Outcome::Command("ALTER GROUP".into()))
    }

    /// `DROP GROUP g, …`: refused while the group holds privileges.
    pub(crate) fn drop_groups(&mut self, names: &[String]) -> Result<Outcome> {
        self.require_superuser("drop groups")?;
        let view = self.view();
        let mut ops = vec![];
        for name in names {
            existing_group(&view, name)?;
            let grantee = Grantee::Group(name.clone());
            let held: BTreeSet<String> = view
                .acl
                .keys()
                .filter(|(_, to)| *to == grantee)
                .map(|(on, _)| crate::catalog::privileges::describe(&view, on))
                .collect();
            if !held.is_empty() {
                return Err(sql_err!(
                    code::DEPENDENT_OBJECTS_STILL_EXIST,
                    "group \"{name}\" cannot be dropped because the group has a privilege on some object: {}",
                    held.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
            ops.push(CatalogOp::DropGroup(name.clone()));
        }
        self.record(ops)?;
        Ok(Outcome::Command("DROP GROUP".into()))
    }
}

impl StatementContext {
    /// `ALTER TABLE | VIEW name OWNER TO user`: the owner or a superuser hands it over.
    pub(crate) fn alter_relation_owner(
        &mut self,
        name: &ObjectName,
        owner: Option<&str>,
    ) -> Result<Outcome> {
        let view = self.view();
        let (schema, rel) = crate::sql::names::split_name(name)?;
        let id = view
            .relation(&schema, &rel)
            .map(|r| r.id())
            .ok_or_else(|| sql_err!(code::UNDEFINED_TABLE, "relation \"{rel}\" does not exist"))?;
        self.require_owner(&view, &Securable::Relation(id))?;
        let owner = self.owner_name(&view, owner)?;
        self.record(vec![CatalogOp::SetRelationOwner {
            relation: id,
            owner,
        }])?;
        Ok(Outcome::Command("ALTER TABLE".into()))
    }

    /// `ALTER SCHEMA name OWNER TO user`.
    pub(crate) fn alter_schema_owner(
        &mut self,
        name: &ObjectName,
        owner: Option<&str>,
    ) -> Result<Outcome> {
        let view = self.view();
        let (_, schema) = crate::sql::names::split_name(name)?;
        if !view.schemas.contains(&schema) {
            return Err(sql_err!(
                code::UNDEFINED_SCHEMA,
                "Schema \"{schema}\" does not exist"
            ));
        }
        self.require_owner(&view, &Securable::Schema(schema.clone()))?;
        let owner = self.owner_name(&view, owner)?;
        self.record(vec![CatalogOp::SetSchemaOwner { schema, owner }])?;
        Ok(Outcome::Command("ALTER SCHEMA".into()))
    }

    /// The new owner an OWNER TO names (None: the current user), which must exist.
    fn owner_name(&self, view: &CatalogState, owner: Option<&str>) -> Result<String> {
        let name = owner.map_or_else(|| self.user.clone(), str::to_string);
        existing_user(view, &name)?;
        Ok(name)
    }

    /// `SET SESSION AUTHORIZATION 'user' | DEFAULT`: a superuser who logged in acts as
    /// `user` (current_user and session_user both) until DEFAULT or RESET.
    pub(crate) fn set_session_authorization(&mut self, user: Option<&str>) -> Result<Outcome> {
        let view = self.view();
        if !crate::catalog::privileges::is_superuser(&view, &self.login_user) {
            return Err(sql_err!(
                code::INSUFFICIENT_PRIVILEGE,
                "permission denied to set session authorization"
            ));
        }
        let user = match user {
            Some(u) => existing_user(&view, u)?.name.clone(),
            None => self.login_user.clone(),
        };
        self.session_user = user.clone();
        self.user = user;
        Ok(Outcome::Command("SET".into()))
    }

    /// `SET ROLE r`: the session acts as role `r` — its privileges are the role's (and
    /// those of the roles it holds) and PUBLIC's, and what it creates the role owns —
    /// until `SET ROLE NONE` / `RESET ROLE`. The session user must hold the role, or be
    /// a superuser.
    pub(crate) fn set_role(&mut self, role: Option<String>) -> Result<Outcome> {
        let Some(role) = role else {
            self.user = self.session_user.clone();
            return Ok(Outcome::Command("SET".into()));
        };
        let view = self.view();
        if !view.roles.contains_key(&role) {
            return Err(sql_err!(
                code::UNDEFINED_OBJECT,
                "role \"{role}\" does not exist"
            ));
        }
        if view.users.contains_key(&role) {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "SET ROLE to role \"{role}\", which has a user's name, is not supported"
            ));
        }
        let holds = crate::catalog::privileges::roles_of(&view, &self.session_user).contains(&role);
        if !holds && !crate::catalog::privileges::is_superuser(&view, &self.session_user) {
            return Err(sql_err!(
                code::INSUFFICIENT_PRIVILEGE,
                "permission denied to set role \"{role}\""
            ));
        }
        self.user = role;
        Ok(Outcome::Command("SET".into()))
    }
}

fn existing_user<'a>(view: &'a CatalogState, name: &str) -> Result<&'a UserDef> {
    view.users
        .get(name)
        .map(|u| u.as_ref())
        .ok_or_else(|| sql_err!(code::UNDEFINED_OBJECT, "user \"{name}\" does not exist"))
}

fn existing_group<'a>(view: &'a CatalogState, name: &str) -> Result<&'a GroupDef> {
    view.groups
        .get(name)
        .map(|g| g.as_ref())
        .ok_or_else(|| sql_err!(code::UNDEFINED_OBJECT, "group \"{name}\" does not exist"))
}

/// Apply CREATE USER / ALTER USER options to `user`; the group changes `IN GROUP` asks
/// for come back as catalog changes.
fn apply_user_options(
    view: &CatalogState,
    user: &mut UserDef,
    options: &[UserOption],
) -> Result<Vec<CatalogOp>> {
    let mut seen = BTreeSet::new();
    let mut ops = vec![];
    for option in options {
        let kind = std::mem::discriminant(option);
        if !seen.insert(format!("{kind:?}")) {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "conflicting or redundant options"
            ));
        }
        match option {
            UserOption::Password(None) => disable_password(user),
            UserOption::Password(Some(p)) => {
                let md5 = p
                    .strip_prefix("md5")
                    .filter(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()));
                if let Some(hash) = md5 {
                    set_md5_password(user, hash);
                } else if let Some(rest) = p.strip_prefix("sha256|") {
                    // `sha256|password`: Redshift hashes the password with a salt of its
                    // own; Basalt keeps its MD5 and SCRAM hashes instead. A ready
                    // digest (`sha256|digest|salt`) can serve neither login method.
                    if rest.contains('|') {
                        return Err(sql_err!(
                            code::FEATURE_NOT_SUPPORTED,
                            "PASSWORD 'sha256|digest|salt' is not supported: logins use MD5 or SCRAM-SHA-256, which a SHA-256 digest cannot serve; give 'sha256|password', the password, its md5 hash, or DISABLE"
                        ));
                    }
                    check_password_rules(rest)
                        .map_err(|m| sql_err!(code::INVALID_PARAMETER_VALUE, "{m}"))?;
                    set_password(user, rest);
                } else {
                    check_password_rules(p)
                        .map_err(|m| sql_err!(code::INVALID_PARAMETER_VALUE, "{m}"))?;
                    set_password(user, p);
                }
            }
            UserOption::CreateDb(v) => user.create_db = *v,
            UserOption::CreateUser(v) => user.superuser = *v,
            UserOption::SyslogUnrestricted(v) => user.syslog_unrestricted = *v,
            // Enforced as each login completes (wire::live).
            UserOption::ConnectionLimit(limit) => user.connection_limit = *limit,
            // Redshift's range: a minute to 20 days; 0 removes the timeout.
            UserOption::SessionTimeout(0) => user.session_timeout = None,
            UserOption::SessionTimeout(secs) if (60..=1_728_000).contains(secs) => {
                user.session_timeout = Some(*secs)
            }
            UserOption::SessionTimeout(secs) => {
                return Err(sql_err!(
                    code::INVALID_PARAMETER_VALUE,
                    "SESSION TIMEOUT {secs} is out of range: give 60 to 1728000 seconds, or 0 for none"
                ));
            }
            UserOption::ValidUntil(text) => user.valid_until = valid_until(text)?,
            UserOption::InGroup(groups) => {
                for g in groups {
                    let mut group = existing_group(view, g)?.clone();
                    group.members.insert(user.name.clone());
                    ops.push(CatalogOp::PutGroup(group));
                }
            }
        }
    }
    Ok(ops)
}

/// `VALID UNTIL 'abstime'`: a date or timestamp (UTC), or `'infinity'` for no end.
fn valid_until(text: &str) -> Result<Option<i64>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("infinity") {
        return Ok(None);
    }
    let parsed = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| {
        sql_err!(
            code::INVALID_DATETIME_FORMAT,
            "invalid input syntax for type abstime: \"{text}\""
        )
    })?;
    Ok(Some(parsed.and_utc().timestamp_micros()))
}
