//! The privilege views: `svv_user_info` (each user and its options), `svv_roles`,
//! `svv_user_grants` (roles granted to users), `svv_role_grants` (roles granted to roles),
//! `svv_relation_privileges`, `svv_column_privileges`, `svv_schema_privileges`,
//! `svv_database_privileges` and `svv_system_privileges` (one row per grantee and
//! privilege held by grant), `svv_default_privileges` and `pg_default_acl` (ALTER
//! DEFAULT PRIVILEGES), and `pg_shadow`. A superuser sees every row; anyone else only its
//! own user and the privileges granted to it, its groups, its roles and PUBLIC.

use super::*;
use crate::catalog::privileges::{grantees_of, is_superuser};
use crate::catalog::{DefaultObjects, Grant, Grantee, Securable};

/// (identity_id, identity_name, identity_type) of a grantee, as the views show it.
type Identity = (i32, String, &'static str);

/// One privilege row: the object, the privilege's keyword, who holds it, and whether
/// WITH GRANT OPTION.
type GrantRow<T> = (T, String, Identity, bool);

/// What a default privilege applies to: the schema (None: every schema), the kind of
/// object and its owner.
type DefaultTarget<'a> = (Option<&'a str>, DefaultObjects, &'a str);

/// The (owner, schema, object kind) one `pg_default_acl` row covers.
type DefaultGroup<'a> = (&'a str, Option<&'a str>, DefaultObjects);

fn identity(to: &Grantee) -> Identity {
    match to {
        Grantee::Public => (0, "public".into(), "public"),
        Grantee::User(u) => (user_oid(u) as i32, u.clone(), "user"),
        Grantee::Group(g) => (user_oid(g) as i32, g.clone(), "group"),
        Grantee::Role(r) => (user_oid(r) as i32, r.clone(), "role"),
    }
}

impl Snapshot<'_> {
    fn sees_everything(&self) -> bool {
        is_superuser(self.view, &self.viewer)
    }

    /// The grants on objects `of` picks out, one row per privilege, that the viewer may
    /// see.
    fn grant_rows<'g, T: Clone>(
        &'g self,
        of: impl Fn(&Securable) -> Option<T> + 'g,
    ) -> Vec<GrantRow<T>> {
        let mine = grantees_of(self.view, &self.viewer);
        let all = self.sees_everything();
        let mut out = vec![];
        for ((on, to), grant) in &self.view.acl {
            let Some(object) = of(on) else { continue };
            if !all && !mine.contains(to) {
                continue;
            }
            let Grant {
                privileges,
                grant_option,
                ..
            } = grant;
            for p in privileges.iter() {
                out.push((
                    object.clone(),
                    p.keyword().to_string(),
                    identity(to),
                    grant_option.contains(p),
                ));
            }
        }
        out
    }

    pub(super) fn svv_user_info(&self) -> RecordBatch {
        let all = self.sees_everything();
        let users: Vec<_> = self
            .view
            .users
            .values()
            .filter(|u| all || u.name == self.viewer)
            .collect();
        Cols::default()
            .text("user_name", users.iter().map(|u| u.name.as_str()).collect())
            .int4(
                "user_id",
                users.iter().map(|u| user_oid(&u.name) as i32).collect(),
            )
            .bool(
                "createdb",
                users.iter().map(|u| u.create_db || u.superuser).collect(),
            )
            .bool("superuser", users.iter().map(|u| u.superuser).collect())
            .bool(
                "catalog_update",
                users.iter().map(|u| u.superuser).collect(),
            )
            .int4(
                "connection_limit",
                users
                    .iter()
                    .map(|u| u.connection_limit.map_or(-1, |n| n as i32))
                    .collect(),
            )
            .text(
                "syslog_access",
                users
                    .iter()
                    .map(|u| {
                        if u.syslog_unrestricted {
                            "UNRESTRICTED"
                        } else {
                            "RESTRICTED"
                        }
                    })
                    .collect(),
            )
            .text("user_type", vec!["local"; users.len()])
            .text("crypted_password", vec!["********"; users.len()])
            .batch()
    }

    /// (schema, name) of table or view `id`.
    fn relation_names(&self, id: u64) -> Option<(String, String)> {
        let r = self.view.relation_by_id(id)?;
        Some((r.schema().to_string(), r.name().to_string()))
    }

    pub(super) fn svv_relation_privileges(&self) -> RecordBatch {
        let rows = self.grant_rows(|on| match on {
            Securable::Relation(id) => self.relation_names(*id),
            _ => None,
        });
        Cols::default()
            .text(
                "namespace_name",
                rows.iter().map(|r| r.0.0.as_str()).collect(),
            )
            .text(
                "relation_name",
                rows.iter().map(|r| r.0.1.as_str()).collect(),
            )
            .grant_columns(&rows)
            .batch()
    }

    pub(super) fn svv_column_privileges(&self) -> RecordBatch {
        let rows = self.grant_rows(|on| match on {
            Securable::Column(id, stored) => {
                let (schema, name) = self.relation_names(*id)?;
                // A table's column is granted by its stored name, a view's by its name.
                let column = match self.view.tables.get(id) {
                    Some(t) => t.columns[t.stored_index(stored)?].name.clone(),
                    None => stored.clone(),
                };
                Some(((schema, name), column))
            }
            _ => None,
        });
        Cols::default()
            .text(
                "namespace_name",
                rows.iter().map(|r| r.0.0.0.as_str()).collect(),
            )
            .text(
                "relation_name",
                rows.iter().map(|r| r.0.0.1.as_str()).collect(),
            )
            .text("column_name", rows.iter().map(|r| r.0.1.as_str()).collect())
            .grant_columns(&rows)
            .batch()
    }

    /// System privileges granted to roles (a system-defined role's included).
    pub(super) fn svv_system_privileges(&self) -> RecordBatch {
        let rows = self.grant_rows(|on| (*on == Securable::System).then_some(()));
        Cols::default()
            .privilege_and_holder("system_privilege", "identity", &rows)
            .batch()
    }

    /// The default-privilege entries the viewer may see: a superuser all, anyone else
    /// those it set or that name it.
    fn default_entries(&self) -> Vec<(&crate::catalog::DefaultAclKey, &Grant)> {
        let all = self.sees_everything();
        let mine = grantees_of(self.view, &self.viewer);
        self.view
            .default_acl
            .iter()
            .filter(|(k, _)| all || k.owner == self.viewer || mine.contains(&k.grantee))
            .collect()
    }

    pub(super) fn svv_default_privileges(&self) -> RecordBatch {
        let mut rows: Vec<GrantRow<DefaultTarget>> = vec![];
        for (k, g) in self.default_entries() {
            for p in g.privileges.iter() {
                rows.push((
                    (k.schema.as_deref(), k.objects, k.owner.as_str()),
                    p.keyword().to_string(),
                    identity(&k.grantee),
                    g.grant_option.contains(p),
                ));
            }
        }
        Cols::default()
            .text_opt("schema_name", rows.iter().map(|r| r.0.0).collect())
            .text("object_type", rows.iter().map(|r| r.0.1.name()).collect())
            .int4(
                "owner_id",
                rows.iter().map(|r| user_oid(r.0.2) as i32).collect(),
            )
            .text("owner_name", rows.iter().map(|r| r.0.2).collect())
            .text("owner_type", vec!["user"; rows.len()])
            .privilege_and_holder("privilege_type", "grantee", &rows)
            .bool("admin_option", rows.iter().map(|r| r.3).collect())
            .batch()
    }

    /// One row per (owner, schema, object kind) with its aclitems, as PostgreSQL's
    /// `pg_default_acl` (`defacluser` is Redshift's name, `defaclrole` PostgreSQL's,
    /// which psql's `\ddp` reads).
    pub(super) fn pg_default_acl(&self) -> RecordBatch {
        let mut groups: std::collections::BTreeMap<DefaultGroup, Vec<Option<String>>> =
            Default::default();
        for (k, g) in self.default_entries() {
            let letters: String = crate::catalog::Privilege::ON_RELATIONS
                .iter()
                .filter(|p| g.privileges.contains(**p))
                .map(|p| {
                    let mut l = p.acl_letter().to_string();
                    if g.grant_option.contains(*p) {
                        l.push('*');
                    }
                    l
                })
                .collect();
            groups
                .entry((k.owner.as_str(), k.schema.as_deref(), k.objects))
                .or_default()
                .push(Some(format!(
                    "{}={letters}/{}",
                    super::relations::acl_grantee(&k.grantee),
                    k.owner
                )));
        }
        let keys: Vec<_> = groups.keys().copied().collect();
        Cols::default()
            .int4(
                "defacluser",
                keys.iter().map(|k| user_oid(k.0) as i32).collect(),
            )
            .oid("defaclrole", keys.iter().map(|k| user_oid(k.0)).collect())
            .oid(
                "defaclnamespace",
                keys.iter()
                    .map(|k| k.1.map_or(0, |s| self.schema_oid(s)))
                    .collect(),
            )
            .text(
                "defaclobjtype",
                keys.iter().map(|k| k.2.objtype().to_string()).collect(),
            )
            .text_lists("defaclacl", groups.into_values().map(Some).collect())
            .batch()
    }

    /// `pg_shadow`: the users with their password hashes, for superusers only (the
    /// caller refuses everyone else). MD5 hashes show as PostgreSQL stores them
    /// (`md5` + hex); a user without one shows NULL.
    pub(super) fn pg_shadow(&self) -> RecordBatch {
        let hashes: Vec<Option<String>> = self
            .user_rows()
            .iter()
            .map(|row| {
                self.view
                    .users
                    .get(&row.name)
                    .filter(|d| !d.md5_hex.is_empty() && !d.password_disabled)
                    .map(|d| format!("md5{}", d.md5_hex))
            })
            .collect();
        self.users_with_passwords(hashes)
    }

    pub(super) fn svv_schema_privileges(&self) -> RecordBatch {
        let rows = self.grant_rows(|on| match on {
            Securable::Schema(s) => Some(s.clone()),
            _ => None,
        });
        Cols::default()
            .text(
                "namespace_name",
                rows.iter().map(|r| r.0.as_str()).collect(),
            )
            .grant_columns(&rows)
            .batch()
    }

    pub(super) fn svv_database_privileges(&self) -> RecordBatch {
        let rows = self.grant_rows(|on| match on {
            Securable::Database => Some(DATABASE.to_string()),
            _ => None,
        });
        Cols::default()
            .text("database_name", rows.iter().map(|r| r.0.as_str()).collect())
            .grant_columns(&rows)
            .batch()
    }

    pub(super) fn svv_roles(&self) -> RecordBatch {
        let r: Vec<_> = self.view.roles.values().collect();
        Cols::default()
            .int4(
                "role_id",
                r.iter().map(|r| user_oid(&r.name) as i32).collect(),
            )
            .text("role_name", r.iter().map(|r| r.name.as_str()).collect())
            .text("role_owner", r.iter().map(|r| r.owner.as_str()).collect())
            .text_nulls("external_id", r.len())
            .batch()
    }

    /// Roles granted to users; a user who is no superuser sees its own.
    pub(super) fn svv_user_grants(&self) -> RecordBatch {
        let all = self.sees_everything();
        let mut rows: Vec<(&str, &str, bool)> = vec![];
        for r in self.view.roles.values() {
            for (user, admin) in &r.users {
                if all || *user == self.viewer {
                    rows.push((user.as_str(), r.name.as_str(), *admin));
                }
            }
        }
        Cols::default()
            .int4(
                "user_id",
                rows.iter().map(|r| user_oid(r.0) as i32).collect(),
            )
            .text("user_name", rows.iter().map(|r| r.0).collect())
            .int4(
                "role_id",
                rows.iter().map(|r| user_oid(r.1) as i32).collect(),
            )
            .text("role_name", rows.iter().map(|r| r.1).collect())
            .bool("admin_option", rows.iter().map(|r| r.2).collect())
            .batch()
    }

    /// Roles granted to roles: `granted_role_name` is held by members of `role_name`.
    pub(super) fn svv_role_grants(&self) -> RecordBatch {
        let mut rows: Vec<(&str, &str)> = vec![];
        for granted in self.view.roles.values() {
            for to in &granted.roles {
                rows.push((to.as_str(), granted.name.as_str()));
            }
        }
        Cols::default()
            .int4(
                "role_id",
                rows.iter().map(|r| user_oid(r.0) as i32).collect(),
            )
            .text("role_name", rows.iter().map(|r| r.0).collect())
            .int4(
                "granted_role_id",
                rows.iter().map(|r| user_oid(r.1) as i32).collect(),
            )
            .text("granted_role_name", rows.iter().map(|r| r.1).collect())
            .batch()
    }
}

impl Cols {
    /// The columns every privilege view ends with: the privilege, who holds it, and
    /// whether it may be granted on.
    fn grant_columns<T>(self, rows: &[GrantRow<T>]) -> Self {
        self.privilege_and_holder("privilege_type", "identity", rows)
            .bool("admin_option", rows.iter().map(|r| r.3).collect())
    }

    /// The privilege (as `privilege` names the column) and its holder's id, name and
    /// type (`{holder}_id`, …).
    fn privilege_and_holder<T>(self, privilege: &str, holder: &str, rows: &[GrantRow<T>]) -> Self {
        self.text(privilege, rows.iter().map(|r| r.1.as_str()).collect())
            .int4(
                &format!("{holder}_id"),
                rows.iter().map(|r| r.2.0).collect(),
            )
            .text(
                &format!("{holder}_name"),
                rows.iter().map(|r| r.2.1.as_str()).collect(),
            )
            .text(
                &format!("{holder}_type"),
                rows.iter().map(|r| r.2.2).collect(),
            )
    }
}
