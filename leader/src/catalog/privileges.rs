//! Who may do what: the one answer to "does user `u` hold privilege `p` on object `o`",
//! read from one catalog snapshot. Superusers hold everything; an object's owner holds
//! every privilege on it; anyone else holds what was granted to them, to a group they
//! are in, to a role they hold, or to PUBLIC — and a system privilege of a role they
//! hold stands in for some object privileges (DROP TABLE for DROP on any table, …). A
//! column's privilege is held through the column's grant or its relation's. Every check
//! of every statement path, `has_*_privilege` and the catalog relations that show
//! privileges ask here.

use std::collections::BTreeSet;

use super::{CatalogState, Grantee, Privilege, Privileges, Securable};

/// The owner of every schema without a recorded owner (`public`), as in Redshift.
pub const BOOTSTRAP_OWNER: &str = "rdsdb";

/// A system-defined role: its name and its system privileges.
pub type SystemRole = (&'static str, fn() -> Privileges);

/// Redshift's system-defined roles and the system privileges each holds.
pub const SYSTEM_ROLES: &[SystemRole] = &[
    ("sys:monitor", || Privileges::of(MONITOR)),
    ("sys:operator", || {
        Privileges::of(MONITOR).union(Privileges::of(OPERATOR))
    }),
    ("sys:dba", || {
        Privileges::of(MONITOR)
            .union(Privileges::of(OPERATOR))
            .union(Privileges::of(DBA))
    }),
    ("sys:secadmin", || Privileges::of(SECADMIN)),
    ("sys:superuser", || {
        Privileges::of(&Privilege::system().collect::<Vec<_>>())
    }),
];
const MONITOR: &[Privilege] = &[Privilege::AccessSystemTable, Privilege::AccessCatalog];
const OPERATOR: &[Privilege] = &[Privilege::Analyze, Privilege::Vacuum, Privilege::Cancel];
const DBA: &[Privilege] = &[
    Privilege::CreateSchema,
    Privilege::DropSchema,
    Privilege::CreateTable,
    Privilege::DropTable,
    Privilege::TruncateTable,
    Privilege::CreateProcedure,
    Privilege::DropProcedure,
    Privilege::CreateFunction,
    Privilege::CreateExternalFunction,
    Privilege::CreateView,
    Privilege::DropView,
];
const SECADMIN: &[Privilege] = &[
    Privilege::CreateUser,
    Privilege::AlterUser,
    Privilege::DropUser,
    Privilege::CreateRole,
    Privilege::DropRole,
    Privilege::IgnoreRls,
    Privilege::ExplainRls,
    Privilege::ExplainMasking,
];

/// Whether `role` is one of Redshift's system-defined roles, which nobody creates,
/// drops, renames or changes the privileges of.
pub fn is_system_role(role: &str) -> bool {
    role.starts_with("sys:")
}

/// Whether `user` is a superuser.
pub fn is_superuser(state: &CatalogState, user: &str) -> bool {
    user == BOOTSTRAP_OWNER || state.users.get(user).is_some_and(|u| u.superuser)
}

/// The owner of `on`, if it has one (the database has none: only superusers own it).
pub fn owner_of<'a>(state: &'a CatalogState, on: &Securable) -> Option<&'a str> {
    match on {
        Securable::Database | Securable::System => None,
        Securable::Column(id, _) => owner_of(state, &Securable::Relation(*id)),
        Securable::Schema(s) => Some(
            state
                .schema_owners
                .get(s)
                .map_or(BOOTSTRAP_OWNER, String::as_str),
        ),
        Securable::Relation(id) => state
            .tables
            .get(id)
            .map(|t| t.owner.as_str())
            .or_else(|| state.views.get(id).map(|v| v.owner.as_str())),
    }
}

/// Whether `user` owns `on` (or is a superuser, who may act as any owner).
pub fn owns(state: &CatalogState, user: &str, on: &Securable) -> bool {
    is_superuser(state, user) || owner_of(state, on) == Some(user)
}

/// The grantees whose grants `user` enjoys: the user, each group it is in, PUBLIC, and
/// every role it holds ([`roles_of`]). A session that `SET ROLE r` acts as `r`, a role
/// with no user of its name: it enjoys the role's grants, those of the roles the role
/// holds, and PUBLIC's.
pub fn grantees_of(state: &CatalogState, user: &str) -> Vec<Grantee> {
    if state.roles.contains_key(user) && !state.users.contains_key(user) {
        let mut out = vec![Grantee::Public];
        out.extend(
            held_from(state, BTreeSet::from([user.to_string()]))
                .into_iter()
                .map(Grantee::Role),
        );
        return out;
    }
    let mut out = vec![Grantee::User(user.to_string()), Grantee::Public];
    out.extend(
        state
            .groups
            .values()
            .filter(|g| g.members.contains(user))
            .map(|g| Grantee::Group(g.name.clone())),
    );
    out.extend(roles_of(state, user).into_iter().map(Grantee::Role));
    out
}

/// The roles `user` holds: those granted to it, and, through nesting, every role
/// granted to a role it holds.
pub fn roles_of(state: &CatalogState, user: &str) -> BTreeSet<String> {
    let held: BTreeSet<String> = state
        .roles
        .values()
        .filter(|r| r.users.contains_key(user))
        .map(|r| r.name.clone())
        .collect();
    held_from(state, held)
}

/// `held` and, through nesting, every role granted to one of them.
fn held_from(state: &CatalogState, mut held: BTreeSet<String>) -> BTreeSet<String> {
    loop {
        let more: Vec<String> = state
            .roles
            .values()
            .filter(|r| !held.contains(&r.name) && r.roles.iter().any(|to| held.contains(to)))
            .map(|r| r.name.clone())
            .collect();
        if more.is_empty() {
            return held;
        }
        held.extend(more);
    }
}

/// The roles `role` reaches: itself and every role it is granted to, directly or
/// through others (whose members therefore hold `role`).
pub fn roles_reached(state: &CatalogState, role: &str) -> BTreeSet<String> {
    let mut reached = BTreeSet::from([role.to_string()]);
    let mut todo = vec![role.to_string()];
    while let Some(r) = todo.pop() {
        if let Some(def) = state.roles.get(&r) {
            for to in &def.roles {
                if reached.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
    }
    reached
}

/// The privileges `user` holds on `on` through grants (not through ownership), and
/// those it may grant on.
pub fn granted(state: &CatalogState, user: &str, on: &Securable) -> (Privileges, Privileges) {
    grantees_of(state, user)
        .into_iter()
        .filter_map(|to| state.acl.get(&(on.clone(), to)))
        .fold(
            (Privileges::default(), Privileges::default()),
            |(held, grantable), g| (held.union(g.privileges), grantable.union(g.grant_option)),
        )
}

/// Whether `user` holds `privilege` on `on`: as owner (or superuser), by a grant on the
/// object (for a column, on its relation too), or by the system privilege that covers it.
pub fn holds(state: &CatalogState, user: &str, on: &Securable, privilege: Privilege) -> bool {
    owns(state, user, on)
        || granted(state, user, on).0.contains(privilege)
        || matches!(on, Securable::Column(id, _)
            if holds(state, user, &Securable::Relation(*id), privilege))
        || covering_system_privilege(state, on, privilege)
            .is_some_and(|p| has_system_privilege(state, user, p))
}

/// Whether `user` holds system privilege `p`: superusers do; others through a role.
pub fn has_system_privilege(state: &CatalogState, user: &str, p: Privilege) -> bool {
    is_superuser(state, user) || granted(state, user, &Securable::System).0.contains(p)
}

/// The system privilege that gives `privilege` on every object like `on`, as Redshift's
/// RBAC documents it: DROP TABLE / DROP VIEW, ALTER TABLE and TRUNCATE TABLE for those
/// on any relation, DROP SCHEMA for any schema, CREATE SCHEMA for CREATE on the database.
fn covering_system_privilege(
    state: &CatalogState,
    on: &Securable,
    privilege: Privilege,
) -> Option<Privilege> {
    match (on, privilege) {
        (Securable::Relation(id), Privilege::Drop) if state.views.contains_key(id) => {
            Some(Privilege::DropView)
        }
        (Securable::Relation(_), Privilege::Drop) => Some(Privilege::DropTable),
        (Securable::Relation(_), Privilege::Alter) => Some(Privilege::AlterTable),
        (Securable::Relation(_), Privilege::Truncate) => Some(Privilege::TruncateTable),
        (Securable::Schema(_), Privilege::Drop) => Some(Privilege::DropSchema),
        (Securable::Database, Privilege::Create) => Some(Privilege::CreateSchema),
        _ => None,
    }
}

/// The stored names of relation `id`'s columns `user` holds `privilege` on through
/// column-level grants (not counting grants on the whole relation).
pub fn granted_columns(
    state: &CatalogState,
    user: &str,
    id: u64,
    privilege: Privilege,
) -> BTreeSet<String> {
    let grantees = grantees_of(state, user);
    state
        .acl
        .iter()
        .filter_map(|((on, to), g)| match on {
            Securable::Column(r, c)
                if *r == id && g.privileges.contains(privilege) && grantees.contains(to) =>
            {
                Some(c.clone())
            }
            _ => None,
        })
        .collect()
}

/// Whether `user` may grant `privilege` on `on` to others: owners and superusers, and
/// holders of it WITH GRANT OPTION.
pub fn may_grant(state: &CatalogState, user: &str, on: &Securable, privilege: Privilege) -> bool {
    owns(state, user, on) || granted(state, user, on).1.contains(privilege)
}

/// Everything `user` owns or holds a privilege on, for DROP USER's refusal: each as
/// `(what, name)`.
pub fn dependencies_of(state: &CatalogState, user: &str) -> (Vec<String>, Vec<String>) {
    let mut owned: Vec<String> = state
        .tables
        .values()
        .filter(|t| t.owner == user)
        .map(|t| format!("table {}.{}", t.schema, t.name))
        .chain(
            state
                .views
                .values()
                .filter(|v| v.owner == user)
                .map(|v| format!("view {}.{}", v.schema, v.name)),
        )
        .chain(
            state
                .schema_owners
                .iter()
                .filter(|(_, o)| o.as_str() == user)
                .map(|(s, _)| format!("schema {s}")),
        )
        .chain(
            state
                .roles
                .values()
                .filter(|r| r.owner == user)
                .map(|r| format!("role {}", r.name)),
        )
        .collect();
    owned.sort();
    let holder = Grantee::User(user.to_string());
    let mut held: Vec<String> = state
        .acl
        .keys()
        .filter(|(_, to)| *to == holder)
        .map(|(on, _)| describe(state, on))
        .chain(
            state
                .default_acl
                .keys()
                .filter(|k| k.owner == user || k.grantee == holder)
                .map(|k| match &k.schema {
                    Some(s) => format!("default privileges in schema {s}"),
                    None => "default privileges".to_string(),
                }),
        )
        .collect();
    held.sort();
    held.dedup();
    (owned, held)
}

/// `table public.t`, `schema s`, `database dev`: how messages name an object.
pub fn describe(state: &CatalogState, on: &Securable) -> String {
    match on {
        Securable::Database => "database dev".into(),
        Securable::Schema(s) => format!("schema {s}"),
        Securable::Relation(id) => match (state.tables.get(id), state.views.get(id)) {
            (Some(t), _) => format!("table {}.{}", t.schema, t.name),
            (_, Some(v)) => format!("view {}.{}", v.schema, v.name),
            _ => format!("relation {id}"),
        },
        Securable::System => "system".into(),
        Securable::Column(id, stored) => {
            let column = state
                .tables
                .get(id)
                .and_then(|t| t.stored_index(stored).map(|i| t.columns[i].name.clone()))
                .unwrap_or_else(|| stored.clone());
            format!(
                "column {column} of {}",
                describe(state, &Securable::Relation(*id))
            )
        }
    }
}
