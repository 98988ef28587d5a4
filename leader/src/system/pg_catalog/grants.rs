//! The privilege views: `svv_user_info` (each user and its options), `svv_roles`,
//! `svv_user_grants` (roles granted to users), `svv_role_grants` (roles granted to roles),
//! `svv_relation_privileges`, `svv_schema_privileges` and `svv_database_privileges` (one
//! row per grantee and privilege held by grant). A superuser sees every row; anyone else
//! only its own user and the privileges granted to it, its groups and PUBLIC.

use super::*;
use crate::catalog::privileges::{grantees_of, is_superuser};
use crate::catalog::{Grant, Grantee, Securable};

/// (identity_id, identity_name, identity_type) of a grantee, as the views show it.
type Identity = (i32, String, &'static str);

/// One privilege row: the object, the privilege's keyword, who holds it, and whether
/// WITH GRANT OPTION.
type GrantRow<T> = (T, String, Identity, bool);

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

    pub(super) fn svv_relation_privileges(&self) -> RecordBatch {
        let rows = self.grant_rows(|on| match on {
            Securable::Relation(id) => self
                .view
                .tables
                .get(id)
                .map(|t| (t.schema.clone(), t.name.clone()))
                .or_else(|| {
                    self.view
                        .views
                        .get(id)
                        .map(|v| (v.schema.clone(), v.name.clone()))
                }),
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
        self.text(
            "privilege_type",
            rows.iter().map(|r| r.1.as_str()).collect(),
        )
        .int4("identity_id", rows.iter().map(|r| r.2.0).collect())
        .text(
            "identity_name",
            rows.iter().map(|r| r.2.1.as_str()).collect(),
        )
        .text("identity_type", rows.iter().map(|r| r.2.2).collect())
        .bool("admin_option", rows.iter().map(|r| r.3).collect())
    }
}
