//! The durable catalog: one redb file, one write transaction per commit, the current
//! version in memory, and the upgrades of older record layouts on open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use basalt_worker::protocol::SegmentRef;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::defs::*;
use super::state::*;
use crate::error::{LeaderError, Result};
use crate::sql::SortKind;
use crate::sql::types::SqlType;

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const TABLES: TableDefinition<u64, &[u8]> = TableDefinition::new("tables");
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Views, by id (ids come from the same sequence as tables': a view's id is its OID).
/// Catalogs written before views existed simply lack this table and the next one, so
/// adding them changed no record layout and needed no format upgrade.
pub(super) const VIEWS: TableDefinition<u64, &[u8]> = TableDefinition::new("views");
/// COMMENT ON texts, by (relation id, column number or 0 for the relation itself).
pub(super) const COMMENTS: TableDefinition<(u64, u32), &str> = TableDefinition::new("comments");
/// PRIMARY KEY, UNIQUE and FOREIGN KEY constraints, by constraint id (added like views:
/// older catalogs lack the table, no record layout changed).
pub(super) const CONSTRAINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("constraints");
/// `CREATE GROUP`s, by name (added in format 4).
pub(super) const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// `CREATE ROLE`s, by name (format 4).
pub(super) const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("roles");
/// Every GRANT in force, by (object, grantee), both encoded as records (format 4).
pub(super) const ACL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("acl");
/// Schema owners, by schema name (format 4).
pub(super) const SCHEMA_OWNERS: TableDefinition<&str, &str> = TableDefinition::new("schema_owners");
/// `ALTER DEFAULT PRIVILEGES` entries, by key, both encoded as records (format 5).
pub(super) const DEFAULT_ACL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("default_acl");
/// Version of the catalog's own record layout. Version 2 added deletion vectors to
/// segments and ANALYZE statistics to tables; version 3 the name each column is stored
/// under, its value for segments written before it was added, and the stored names of
/// dropped columns; version 4 users' options (CREATEDB, SYSLOG ACCESS, VALID UNTIL,
/// CONNECTION LIMIT, SESSION TIMEOUT, a disabled password, per-user settings), groups,
/// grants and schema owners; version 5 column-level grants, system privileges (the
/// privilege set widened from 16 to 64 bits, which the variable-length integer encoding
/// reads unchanged), Redshift's system roles and default privileges. Older catalogs are
/// upgraded on open.
pub(super) const CATALOG_FORMAT: u16 = 5;

/// What every catalog grants from the start, as Redshift's: PUBLIC may use the `public`
/// schema and create objects in it, and create temporary tables. (A catalog of format 3 or older had no privileges at
/// all; upgrading it grants the same.)
fn initial_grants() -> BTreeMap<(Securable, Grantee), Grant> {
    let grant = |privileges: &[Privilege]| Grant {
        privileges: Privileges::of(privileges),
        grant_option: Privileges::default(),
        grantor: "rdsdb".into(),
    };
    [
        (
            (Securable::Schema("public".into()), Grantee::Public),
            grant(&[Privilege::Usage, Privilege::Create]),
        ),
        (
            (Securable::Database, Grantee::Public),
            grant(&[Privilege::Temp]),
        ),
    ]
    .into_iter()
    .chain(system_role_grants())
    .collect()
}

/// Redshift's system-defined roles (`sys:dba`, …), which every catalog has from the
/// start (format 5; upgrading an older catalog adds them).
fn system_roles() -> BTreeMap<String, Arc<RoleDef>> {
    super::privileges::SYSTEM_ROLES
        .iter()
        .map(|(name, _)| {
            let role = RoleDef {
                name: name.to_string(),
                owner: super::privileges::BOOTSTRAP_OWNER.into(),
                users: BTreeMap::new(),
                roles: BTreeSet::new(),
            };
            (name.to_string(), Arc::new(role))
        })
        .collect()
}

/// The system privileges of the system-defined roles.
fn system_role_grants() -> impl Iterator<Item = ((Securable, Grantee), Grant)> {
    super::privileges::SYSTEM_ROLES
        .iter()
        .map(|(name, privileges)| {
            (
                (Securable::System, Grantee::Role(name.to_string())),
                Grant {
                    privileges: privileges(),
                    grant_option: Privileges::default(),
                    grantor: super::privileges::BOOTSTRAP_OWNER.into(),
                },
            )
        })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    format: u16,
    version: u64,
    next_table_id: u64,
    slice_count: u32,
    schemas: BTreeSet<String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("version", &self.snapshot().version)
            .finish()
    }
}

pub struct Catalog {
    db: Database,
    current: RwLock<Arc<CatalogState>>,
    commit_lock: Mutex<()>,
}

pub(super) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .expect("catalog records always serialize")
}

/// Hand `apply` what changed from `old` to `next`: each entry that is new or not `same`
/// as before, and (as None) each key `next` no longer has. A commit writes only that.
fn sync<K: Ord, V>(
    old: &BTreeMap<K, V>,
    next: &BTreeMap<K, V>,
    same: impl Fn(&V, &V) -> bool,
    mut apply: impl FnMut(&K, Option<&V>) -> Result<()>,
) -> Result<()> {
    for (k, v) in next {
        if old.get(k).is_none_or(|o| !same(o, v)) {
            apply(k, Some(v))?;
        }
    }
    for k in old.keys() {
        if !next.contains_key(k) {
            apply(k, None)?;
        }
    }
    Ok(())
}

/// Write to `table` the records of `next` that are not (the same `Arc` as) those of `old`,
/// and remove those `next` no longer has.
pub(super) fn write_changes<T: Serialize>(
    table: &mut redb::Table<u64, &[u8]>,
    old: &BTreeMap<u64, Arc<T>>,
    next: &BTreeMap<u64, Arc<T>>,
) -> Result<()> {
    sync(old, next, Arc::ptr_eq, |id, v| {
        match v {
            Some(v) => drop(table.insert(*id, enc(v.as_ref()).as_slice())?),
            None => drop(table.remove(*id)?),
        }
        Ok(())
    })
}

/// [`write_changes`] for records kept by name (users, groups, roles).
fn write_named_changes<T: Serialize>(
    table: &mut redb::Table<&str, &[u8]>,
    old: &BTreeMap<String, Arc<T>>,
    next: &BTreeMap<String, Arc<T>>,
) -> Result<()> {
    sync(old, next, Arc::ptr_eq, |name, v| {
        match v {
            Some(v) => drop(table.insert(name.as_str(), enc(v.as_ref()).as_slice())?),
            None => drop(table.remove(name.as_str())?),
        }
        Ok(())
    })
}

pub(super) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(b, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| LeaderError::Catalog(format!("corrupt catalog record: {e}")))
}

impl Catalog {
    /// Open (or create) the catalog in `dir`. A new catalog gets `slice_count` slices and
    /// the `public` schema; an existing one keeps the slice count it was created with.
    pub fn open(dir: &Path, slice_count: u32) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join("catalog.redb"))?;
        let w = db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            if meta.get("meta")?.is_none() {
                let m = Meta {
                    format: CATALOG_FORMAT,
                    version: 1,
                    next_table_id: 100_000,
                    slice_count,
                    schemas: ["public".to_string()].into_iter().collect(),
                };
                meta.insert("meta", enc(&m).as_slice())?;
                let mut acl = w.open_table(ACL)?;
                for (key, grant) in initial_grants() {
                    acl.insert(enc(&key).as_slice(), enc(&grant).as_slice())?;
                }
                let mut roles = w.open_table(ROLES)?;
                for (name, role) in system_roles() {
                    roles.insert(name.as_str(), enc(role.as_ref()).as_slice())?;
                }
            }
            w.open_table(TABLES)?;
            w.open_table(USERS)?;
            w.open_table(VIEWS)?;
            w.open_table(COMMENTS)?;
            w.open_table(CONSTRAINTS)?;
            w.open_table(GROUPS)?;
            w.open_table(ROLES)?;
            w.open_table(ACL)?;
            w.open_table(SCHEMA_OWNERS)?;
            w.open_table(DEFAULT_ACL)?;
        }
        w.commit()?;
        let state = Self::load(&db)?;
        Self::upgrade(&db, &state)?;
        Ok(Self {
            db,
            current: RwLock::new(Arc::new(state)),
            commit_lock: Mutex::new(()),
        })
    }

    fn load(db: &Database) -> Result<CatalogState> {
        let r = db.begin_read()?;
        let meta_t = r.open_table(META)?;
        let meta: Meta = dec(meta_t
            .get("meta")?
            .ok_or_else(|| LeaderError::Catalog("missing meta record".into()))?
            .value())?;
        if meta.format > CATALOG_FORMAT {
            return Err(LeaderError::Catalog(format!(
                "catalog format {} is newer than this build supports ({CATALOG_FORMAT})",
                meta.format
            )));
        }
        let mut tables = BTreeMap::new();
        for entry in r.open_table(TABLES)?.iter()? {
            let (k, v) = entry?;
            let def = match meta.format {
                1 => dec::<v1::TableDef>(v.value())?.upgrade().upgrade(),
                2 => dec::<v2::TableDef>(v.value())?.upgrade(),
                _ => dec::<TableDef>(v.value())?,
            };
            tables.insert(k.value(), Arc::new(def));
        }
        let mut users = BTreeMap::new();
        for entry in r.open_table(USERS)?.iter()? {
            let (k, v) = entry?;
            let user = match meta.format {
                ..=3 => dec::<v3::UserDef>(v.value())?.upgrade(),
                _ => dec::<UserDef>(v.value())?,
            };
            users.insert(k.value().to_string(), Arc::new(user));
        }
        let mut groups = BTreeMap::new();
        for entry in r.open_table(GROUPS)?.iter()? {
            let (k, v) = entry?;
            groups.insert(k.value().to_string(), Arc::new(dec::<GroupDef>(v.value())?));
        }
        let mut roles = if meta.format <= 4 {
            system_roles()
        } else {
            BTreeMap::new()
        };
        for entry in r.open_table(ROLES)?.iter()? {
            let (k, v) = entry?;
            roles.insert(k.value().to_string(), Arc::new(dec::<RoleDef>(v.value())?));
        }
        let mut acl = match meta.format {
            ..=3 => initial_grants(),
            4 => system_role_grants().collect(),
            _ => BTreeMap::new(),
        };
        for entry in r.open_table(ACL)?.iter()? {
            let (k, v) = entry?;
            acl.insert(dec(k.value())?, dec::<Grant>(v.value())?);
        }
        let mut schema_owners = BTreeMap::new();
        for entry in r.open_table(SCHEMA_OWNERS)?.iter()? {
            let (k, v) = entry?;
            schema_owners.insert(k.value().to_string(), v.value().to_string());
        }
        let mut default_acl = BTreeMap::new();
        if meta.format >= 5 {
            for entry in r.open_table(DEFAULT_ACL)?.iter()? {
                let (k, v) = entry?;
                default_acl.insert(dec(k.value())?, dec::<Grant>(v.value())?);
            }
        }
        let mut views = BTreeMap::new();
        for entry in r.open_table(VIEWS)?.iter()? {
            let (k, v) = entry?;
            views.insert(k.value(), Arc::new(dec::<ViewDef>(v.value())?));
        }
        let mut comments = BTreeMap::new();
        for entry in r.open_table(COMMENTS)?.iter()? {
            let (k, v) = entry?;
            comments.insert(k.value(), v.value().to_string());
        }
        let mut constraints = BTreeMap::new();
        for entry in r.open_table(CONSTRAINTS)?.iter()? {
            let (k, v) = entry?;
            constraints.insert(k.value(), Arc::new(dec::<ConstraintDef>(v.value())?));
        }
        Ok(CatalogState {
            version: meta.version,
            next_table_id: meta.next_table_id,
            slice_count: meta.slice_count,
            schemas: meta.schemas,
            tables,
            users,
            views,
            comments,
            constraints,
            groups,
            roles,
            acl,
            schema_owners,
            default_acl,
        })
    }

    /// Rewrite an older catalog's records in the current layout (one write transaction,
    /// so a crash leaves either the old or the new catalog).
    fn upgrade(db: &Database, state: &CatalogState) -> Result<()> {
        let r = db.begin_read()?;
        let meta: Meta = dec(r
            .open_table(META)?
            .get("meta")?
            .ok_or_else(|| LeaderError::Catalog("missing meta record".into()))?
            .value())?;
        drop(r);
        if meta.format == CATALOG_FORMAT {
            return Ok(());
        }
        let w = db.begin_write()?;
        {
            let mut tables = w.open_table(TABLES)?;
            for (id, t) in &state.tables {
                tables.insert(*id, enc(t.as_ref()).as_slice())?;
            }
            let mut users = w.open_table(USERS)?;
            for (name, u) in &state.users {
                users.insert(name.as_str(), enc(u.as_ref()).as_slice())?;
            }
            let mut acl = w.open_table(ACL)?;
            for (key, grant) in &state.acl {
                acl.insert(enc(key).as_slice(), enc(grant).as_slice())?;
            }
            w.open_table(GROUPS)?;
            let mut roles = w.open_table(ROLES)?;
            for (name, r) in &state.roles {
                roles.insert(name.as_str(), enc(r.as_ref()).as_slice())?;
            }
            w.open_table(SCHEMA_OWNERS)?;
            w.open_table(DEFAULT_ACL)?;
            let mut meta_t = w.open_table(META)?;
            let m = Meta {
                format: CATALOG_FORMAT,
                ..meta
            };
            meta_t.insert("meta", enc(&m).as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<CatalogState> {
        self.current.read().expect("catalog lock").clone()
    }

    /// Reserve a table id (ids are never reused, so files of dropped tables never mix).
    pub fn allocate_table_id(&self) -> Result<u64> {
        let mut id = 0;
        self.commit_with(|s| {
            id = s.next_table_id;
            s.next_table_id += 1;
            Ok(())
        })?;
        Ok(id)
    }

    /// Atomically apply `ops` to the newest state and make them durable.
    pub fn commit(&self, ops: &[CatalogOp]) -> Result<Arc<CatalogState>> {
        Ok(self.commit_diff(ops)?.1)
    }

    /// Like [`Self::commit`], returning the state the ops were applied to as well.
    pub fn commit_diff(&self, ops: &[CatalogOp]) -> Result<(Arc<CatalogState>, Arc<CatalogState>)> {
        self.commit_with(|s| ops.iter().try_for_each(|op| s.apply(op)))
    }

    fn commit_with(
        &self,
        f: impl FnOnce(&mut CatalogState) -> Result<()>,
    ) -> Result<(Arc<CatalogState>, Arc<CatalogState>)> {
        let _guard = self.commit_lock.lock().expect("commit lock");
        let old = self.snapshot();
        let mut next = (*old).clone();
        f(&mut next)?;
        next.version = old.version + 1;
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            let m = Meta {
                format: CATALOG_FORMAT,
                version: next.version,
                next_table_id: next.next_table_id,
                slice_count: next.slice_count,
                schemas: next.schemas.clone(),
            };
            meta.insert("meta", enc(&m).as_slice())?;
            write_changes(&mut w.open_table(TABLES)?, &old.tables, &next.tables)?;
            write_named_changes(&mut w.open_table(USERS)?, &old.users, &next.users)?;
            write_named_changes(&mut w.open_table(GROUPS)?, &old.groups, &next.groups)?;
            write_named_changes(&mut w.open_table(ROLES)?, &old.roles, &next.roles)?;
            let mut acl = w.open_table(ACL)?;
            sync(&old.acl, &next.acl, PartialEq::eq, |key, grant| {
                match grant {
                    Some(g) => drop(acl.insert(enc(key).as_slice(), enc(g).as_slice())?),
                    None => drop(acl.remove(enc(key).as_slice())?),
                }
                Ok(())
            })?;
            let mut defaults = w.open_table(DEFAULT_ACL)?;
            sync(
                &old.default_acl,
                &next.default_acl,
                PartialEq::eq,
                |key, grant| {
                    match grant {
                        Some(g) => drop(defaults.insert(enc(key).as_slice(), enc(g).as_slice())?),
                        None => drop(defaults.remove(enc(key).as_slice())?),
                    }
                    Ok(())
                },
            )?;
            let mut owners = w.open_table(SCHEMA_OWNERS)?;
            sync(
                &old.schema_owners,
                &next.schema_owners,
                PartialEq::eq,
                |schema, owner| {
                    match owner {
                        Some(o) => drop(owners.insert(schema.as_str(), o.as_str())?),
                        None => drop(owners.remove(schema.as_str())?),
                    }
                    Ok(())
                },
            )?;
            write_changes(&mut w.open_table(VIEWS)?, &old.views, &next.views)?;
            let mut comments = w.open_table(COMMENTS)?;
            sync(&old.comments, &next.comments, PartialEq::eq, |key, text| {
                match text {
                    Some(t) => drop(comments.insert(*key, t.as_str())?),
                    None => drop(comments.remove(*key)?),
                }
                Ok(())
            })?;
            write_changes(
                &mut w.open_table(CONSTRAINTS)?,
                &old.constraints,
                &next.constraints,
            )?;
        }
        w.commit()?;
        let next = Arc::new(next);
        *self.current.write().expect("catalog lock") = next.clone();
        Ok((old, next))
    }
}

/// Catalog format 3 records, kept to read (and upgrade) catalogs written before format 4.
pub(super) mod v3 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct UserDef {
        pub name: String,
        pub superuser: bool,
        pub md5_hex: String,
        pub scram_salt: Vec<u8>,
        pub scram_iterations: u32,
        pub scram_stored_key: Vec<u8>,
        pub scram_server_key: Vec<u8>,
    }

    impl UserDef {
        /// A format 3 user had a password, no limits and no options.
        pub fn upgrade(self) -> super::UserDef {
            super::UserDef {
                name: self.name,
                superuser: self.superuser,
                md5_hex: self.md5_hex,
                scram_salt: self.scram_salt,
                scram_iterations: self.scram_iterations,
                scram_stored_key: self.scram_stored_key,
                scram_server_key: self.scram_server_key,
                create_db: self.superuser,
                syslog_unrestricted: false,
                password_disabled: false,
                valid_until: None,
                connection_limit: None,
                session_timeout: None,
                settings: BTreeMap::new(),
            }
        }
    }
}

/// Catalog format 2 records, kept to read (and upgrade) catalogs written before format 3.
pub(super) mod v2 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct ColumnDef {
        pub name: String,
        pub sql_type: SqlType,
        pub nullable: bool,
        pub default: Option<String>,
        pub identity: Option<Identity>,
        pub encoding: String,
    }

    #[derive(Serialize, Deserialize)]
    pub struct TableDef {
        pub id: u64,
        pub schema: String,
        pub name: String,
        pub columns: Vec<ColumnDef>,
        pub dist: DistStyle,
        pub sort_kind: SortKind,
        pub sort_key: Vec<usize>,
        pub backup: bool,
        pub encode_auto: bool,
        pub segments: Vec<SegmentRef>,
        pub identity_next: Vec<i64>,
        pub owner: String,
        pub stats: Option<TableStats>,
        pub modified_rows: u64,
    }

    impl TableDef {
        pub fn upgrade(self) -> super::TableDef {
            super::TableDef {
                id: self.id,
                schema: self.schema,
                name: self.name,
                columns: self
                    .columns
                    .into_iter()
                    .map(|c| super::ColumnDef {
                        // Format 2 segments store every column under its name, and
                        // columns were never renamed or added.
                        stored: c.name.clone(),
                        missing: None,
                        name: c.name,
                        sql_type: c.sql_type,
                        nullable: c.nullable,
                        default: c.default,
                        identity: c.identity,
                        encoding: c.encoding,
                    })
                    .collect(),
                dist: self.dist,
                sort_kind: self.sort_kind,
                sort_key: self.sort_key,
                backup: self.backup,
                encode_auto: self.encode_auto,
                segments: self.segments,
                identity_next: self.identity_next,
                owner: self.owner,
                stats: self.stats,
                modified_rows: self.modified_rows,
                retired: vec![],
            }
        }
    }
}

/// Catalog format 1 records, kept to read (and upgrade) catalogs written before format 2.
pub(super) mod v1 {
    use super::v2::ColumnDef;
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct SegmentRef {
        pub slice: basalt_storage::layout::SliceId,
        pub path: String,
        pub rows: u64,
        pub bytes: u64,
    }

    #[derive(Serialize, Deserialize)]
    pub struct TableDef {
        pub id: u64,
        pub schema: String,
        pub name: String,
        pub columns: Vec<ColumnDef>,
        pub dist: DistStyle,
        pub sort_kind: SortKind,
        pub sort_key: Vec<usize>,
        pub backup: bool,
        pub encode_auto: bool,
        pub segments: Vec<SegmentRef>,
        pub identity_next: Vec<i64>,
        pub owner: String,
    }

    impl TableDef {
        pub fn upgrade(self) -> super::v2::TableDef {
            let mut seen = std::collections::HashSet::new();
            super::v2::TableDef {
                id: self.id,
                schema: self.schema,
                name: self.name,
                columns: self.columns,
                dist: self.dist,
                sort_kind: self.sort_kind,
                sort_key: self.sort_key,
                backup: self.backup,
                encode_auto: self.encode_auto,
                segments: self
                    .segments
                    .into_iter()
                    .map(|s| super::SegmentRef {
                        // Format 1 treated each slice's first segment as its sorted region.
                        sorted_region: seen.insert(s.slice),
                        slice: s.slice,
                        path: s.path,
                        rows: s.rows,
                        bytes: s.bytes,
                        deletes: None,
                    })
                    .collect(),
                identity_next: self.identity_next,
                owner: self.owner,
                stats: None,
                modified_rows: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    fn table(id: u64, name: &str) -> TableDef {
        TableDef {
            id,
            schema: "public".into(),
            name: name.into(),
            columns: vec![ColumnDef {
                name: "a".into(),
                sql_type: SqlType::Integer,
                nullable: true,
                default: None,
                identity: None,
                encoding: "az64".into(),
                stored: "a".into(),
                missing: None,
            }],
            dist: DistStyle::Even,
            sort_kind: SortKind::Compound,
            sort_key: vec![],
            backup: true,
            encode_auto: true,
            segments: vec![],
            identity_next: vec![0],
            owner: "admin".into(),
            stats: None,
            modified_rows: 0,
            retired: vec![],
        }
    }

    fn v2_column(name: &str) -> v2::ColumnDef {
        v2::ColumnDef {
            name: name.into(),
            sql_type: SqlType::Integer,
            nullable: true,
            default: None,
            identity: None,
            encoding: "az64".into(),
        }
    }

    /// A catalog file holding `table` as format `format` wrote it.
    fn write_old_catalog(dir: &Path, format: u16, table: &[u8]) {
        let db = Database::create(dir.join("catalog.redb")).unwrap();
        let w = db.begin_write().unwrap();
        {
            let meta = Meta {
                format,
                version: 7,
                next_table_id: 100_001,
                slice_count: 4,
                schemas: ["public".to_string()].into_iter().collect(),
            };
            w.open_table(META)
                .unwrap()
                .insert("meta", enc(&meta).as_slice())
                .unwrap();
            w.open_table(TABLES)
                .unwrap()
                .insert(100_000, table)
                .unwrap();
            w.open_table(USERS).unwrap();
        }
        w.commit().unwrap();
    }

    #[test]
    fn commits_survive_reopen_and_conflicts_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let id = c.allocate_table_id().unwrap();
            c.commit(&[CatalogOp::CreateTable(table(id, "t"))]).unwrap();
            let seg = SegmentRef {
                slice: basalt_storage::layout::SliceId::Slice(1),
                path: "tables/x".into(),
                rows: 10,
                bytes: 100,
                deletes: None,
                sorted_region: false,
            };
            c.commit(&[CatalogOp::AddSegments {
                table_id: id,
                segments: vec![seg],
                placement: "even".into(),
            }])
            .unwrap();
            let before = c.snapshot().version;
            let err = c
                .commit(&[
                    CatalogOp::CreateSchema("s2".into()),
                    CatalogOp::CreateTable(table(id + 1, "t")),
                ])
                .unwrap_err();
            assert_eq!(err.sqlstate().0, code::DUPLICATE_TABLE);
            assert_eq!(c.snapshot().version, before);
            assert!(!c.snapshot().schemas.contains("s2"));
        }
        let c = Catalog::open(dir.path(), 99).unwrap();
        let s = c.snapshot();
        assert_eq!(s.slice_count, 4);
        assert_eq!(s.table("public", "t").unwrap().rows(), 10);
    }

    #[test]
    fn views_and_comments_survive_reopen_and_views_keep_their_tables() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let t = c.allocate_table_id().unwrap();
            let v = c.allocate_table_id().unwrap();
            let view = ViewDef {
                id: v,
                schema: "public".into(),
                name: "v".into(),
                query: "SELECT a FROM t".into(),
                column_names: vec![],
                columns: vec![ViewColumn {
                    name: "a".into(),
                    sql_type: SqlType::Integer,
                }],
                late_binding: false,
                depends_on: vec![t],
                owner: "admin".into(),
            };
            c.commit(&[
                CatalogOp::CreateTable(table(t, "t")),
                CatalogOp::CreateView {
                    def: view,
                    replace: false,
                },
                CatalogOp::SetComment {
                    relation: v,
                    column: 1,
                    text: Some("the a".into()),
                },
            ])
            .unwrap();
            let err = c.commit(&[CatalogOp::DropTable(t)]).unwrap_err();
            assert_eq!(err.sqlstate().0, code::DEPENDENT_OBJECTS_STILL_EXIST);
            let err = c
                .commit(&[CatalogOp::CreateTable(table(t + 5, "v"))])
                .unwrap_err();
            assert_eq!(err.sqlstate().0, code::DUPLICATE_TABLE);
        }
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let v = s.view("public", "v").unwrap().clone();
            assert_eq!(v.definition(), "SELECT a FROM t;");
            assert_eq!(
                s.comments.get(&(v.id, 1)).map(String::as_str),
                Some("the a")
            );
            // Dropping the view first frees the table; the view's comments go with it.
            c.commit(&[
                CatalogOp::DropView(v.id),
                CatalogOp::DropTable(v.depends_on[0]),
            ])
            .unwrap();
        }
        let c = Catalog::open(dir.path(), 4).unwrap();
        assert!(c.snapshot().views.is_empty() && c.snapshot().comments.is_empty());
    }

    #[test]
    fn constraints_survive_reopen_and_go_with_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let (t, r) = {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let t = c.allocate_table_id().unwrap();
            let r = c.allocate_table_id().unwrap();
            let pk = c.allocate_table_id().unwrap();
            let fk = c.allocate_table_id().unwrap();
            let stored = table(t, "t").columns[0].stored.clone();
            c.commit(&[
                CatalogOp::CreateTable(table(t, "t")),
                CatalogOp::CreateTable(table(r, "r")),
                CatalogOp::AddConstraint(ConstraintDef {
                    id: pk,
                    table: t,
                    name: "t_pkey".into(),
                    kind: ConstraintKind::PrimaryKey,
                    columns: vec![stored.clone()],
                }),
                CatalogOp::AddConstraint(ConstraintDef {
                    id: fk,
                    table: r,
                    name: "r_fkey".into(),
                    kind: ConstraintKind::ForeignKey {
                        table: t,
                        columns: vec![stored.clone()],
                    },
                    columns: vec![stored],
                }),
            ])
            .unwrap();
            (t, r)
        };
        let c = Catalog::open(dir.path(), 4).unwrap();
        let s = c.snapshot();
        assert_eq!(
            s.constraints_of(t)
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["t_pkey"]
        );
        assert_eq!(s.referencing(t, None).len(), 1);
        // The referenced table cannot go while the foreign key stands.
        let err = c.commit(&[CatalogOp::DropTable(t)]).unwrap_err();
        assert_eq!(err.sqlstate().0, code::DEPENDENT_OBJECTS_STILL_EXIST);
        c.commit(&[CatalogOp::DropTable(r), CatalogOp::DropTable(t)])
            .unwrap();
        drop(c);
        let c = Catalog::open(dir.path(), 4).unwrap();
        assert!(c.snapshot().constraints.is_empty());
    }

    #[test]
    fn format_1_catalogs_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = v1::TableDef {
            id: 100_000,
            schema: "public".into(),
            name: "old".into(),
            columns: vec![v2_column("a")],
            dist: DistStyle::Even,
            sort_kind: SortKind::Compound,
            sort_key: vec![],
            backup: true,
            encode_auto: true,
            segments: vec![v1::SegmentRef {
                slice: basalt_storage::layout::SliceId::Slice(2),
                path: "tables/100000/slice-2/a.bseg".into(),
                rows: 42,
                bytes: 900,
            }],
            identity_next: vec![0],
            owner: "admin".into(),
        };
        write_old_catalog(dir.path(), 1, &enc(&old));
        for _ in 0..2 {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let t = s.table("public", "old").unwrap();
            assert_eq!((t.rows(), s.version), (42, 7));
            assert_eq!(t.segments[0].deletes, None);
            assert!(t.segments[0].sorted_region);
            assert_eq!(t.stats_off(), 100.0);
            assert_eq!(
                (t.columns[0].stored.as_str(), &t.columns[0].missing),
                ("a", &None)
            );
        }
    }

    #[test]
    fn format_2_catalogs_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = v2::TableDef {
            id: 100_000,
            schema: "public".into(),
            name: "old".into(),
            columns: vec![v2_column("a"), v2_column("b")],
            dist: DistStyle::Key(1),
            sort_kind: SortKind::Compound,
            sort_key: vec![0],
            backup: true,
            encode_auto: true,
            segments: vec![],
            identity_next: vec![0, 0],
            owner: "admin".into(),
            stats: None,
            modified_rows: 3,
        };
        write_old_catalog(dir.path(), 2, &enc(&old));
        for _ in 0..2 {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let t = s.table("public", "old").unwrap();
            let stored: Vec<&str> = t.columns.iter().map(|c| c.stored.as_str()).collect();
            assert_eq!(stored, ["a", "b"]);
            assert_eq!((t.dist.clone(), t.modified_rows), (DistStyle::Key(1), 3));
            assert!(t.retired.is_empty());
        }
    }

    #[test]
    fn format_3_catalogs_are_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        write_old_catalog(dir.path(), 3, &enc(&table(100_000, "old")));
        {
            let db = Database::create(dir.path().join("catalog.redb")).unwrap();
            let w = db.begin_write().unwrap();
            let user = v3::UserDef {
                name: "admin".into(),
                superuser: true,
                md5_hex: "0123456789abcdef0123456789abcdef".into(),
                scram_salt: vec![1, 2],
                scram_iterations: 4096,
                scram_stored_key: vec![3],
                scram_server_key: vec![4],
            };
            w.open_table(USERS)
                .unwrap()
                .insert("admin", enc(&user).as_slice())
                .unwrap();
            w.commit().unwrap();
        }
        for _ in 0..2 {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let admin = &s.users["admin"];
            assert!(admin.superuser && admin.create_db && !admin.password_disabled);
            assert_eq!(admin.md5_hex, "0123456789abcdef0123456789abcdef");
            assert_eq!((admin.valid_until, admin.connection_limit), (None, None));
            // PUBLIC keeps what every user could do before privileges existed.
            let public = &s.acl[&(Securable::Schema("public".into()), Grantee::Public)];
            assert!(public.privileges.contains(Privilege::Usage));
            assert!(public.privileges.contains(Privilege::Create));
            assert!(s.table("public", "old").is_some());
        }
    }

    #[test]
    fn format_4_catalogs_are_upgraded_on_open() {
        // A format 4 grant: its privilege sets were 16-bit.
        #[derive(Serialize)]
        struct GrantV4 {
            privileges: u16,
            grant_option: u16,
            grantor: String,
        }
        let dir = tempfile::tempdir().unwrap();
        write_old_catalog(dir.path(), 4, &enc(&table(100_000, "old")));
        {
            let db = Database::create(dir.path().join("catalog.redb")).unwrap();
            let w = db.begin_write().unwrap();
            let select_insert = GrantV4 {
                privileges: 0b11,
                grant_option: 0b10,
                grantor: "admin".into(),
            };
            w.open_table(ACL)
                .unwrap()
                .insert(
                    enc(&(Securable::Relation(100_000), Grantee::Public)).as_slice(),
                    enc(&select_insert).as_slice(),
                )
                .unwrap();
            w.commit().unwrap();
        }
        for _ in 0..2 {
            let c = Catalog::open(dir.path(), 4).unwrap();
            let s = c.snapshot();
            let g = &s.acl[&(Securable::Relation(100_000), Grantee::Public)];
            assert_eq!(
                g.privileges,
                Privileges::of(&[Privilege::Select, Privilege::Insert])
            );
            assert_eq!(g.grant_option, Privileges::of(&[Privilege::Insert]));
            // The system roles arrive with their system privileges.
            let dba = &s.acl[&(Securable::System, Grantee::Role("sys:dba".into()))];
            assert!(dba.privileges.contains(Privilege::CreateTable));
            assert!(!dba.privileges.contains(Privilege::CreateUser));
            assert!(s.roles.contains_key("sys:secadmin"));
            assert!(s.default_acl.is_empty());
        }
    }

    #[test]
    fn default_privileges_apply_to_new_tables_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = DefaultAclKey {
            owner: "alice".into(),
            schema: None,
            objects: DefaultObjects::Tables,
            grantee: Grantee::User("bob".into()),
        };
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            c.commit(&[CatalogOp::SetDefaultGrant {
                key: key.clone(),
                grant: Some(Grant {
                    privileges: Privileges::of(&[Privilege::Select]),
                    grant_option: Privileges::default(),
                    grantor: "alice".into(),
                }),
            }])
            .unwrap();
        }
        let c = Catalog::open(dir.path(), 4).unwrap();
        assert!(c.snapshot().default_acl.contains_key(&key));
        let mut t = table(100_000, "t");
        t.owner = "alice".into();
        let mut other = table(100_001, "u");
        other.owner = "carol".into();
        c.commit(&[CatalogOp::CreateTable(t), CatalogOp::CreateTable(other)])
            .unwrap();
        let s = c.snapshot();
        let bob = Grantee::User("bob".into());
        assert_eq!(
            s.acl[&(Securable::Relation(100_000), bob.clone())].privileges,
            Privileges::of(&[Privilege::Select])
        );
        assert!(!s.acl.contains_key(&(Securable::Relation(100_001), bob)));
    }

    #[test]
    fn users_groups_and_grants_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let on = Securable::Relation(100_000);
        {
            let c = Catalog::open(dir.path(), 4).unwrap();
            c.commit(&[
                CatalogOp::CreateTable(table(100_000, "t")),
                CatalogOp::PutUser(crate::catalog::users::make_user(
                    "alice",
                    "Secret123",
                    false,
                )),
                CatalogOp::PutUser(crate::catalog::users::make_user("bob", "Secret123", false)),
                CatalogOp::PutGroup(GroupDef {
                    name: "analysts".into(),
                    members: ["alice".to_string(), "bob".to_string()].into(),
                }),
                CatalogOp::SetGrant {
                    on: on.clone(),
                    to: Grantee::Group("analysts".into()),
                    grant: Some(Grant {
                        privileges: Privileges::of(&[Privilege::Select]),
                        grant_option: Privileges::default(),
                        grantor: "admin".into(),
                    }),
                },
                CatalogOp::PutRole(RoleDef {
                    name: "readers".into(),
                    owner: "admin".into(),
                    users: [("alice".to_string(), true)].into(),
                    roles: Default::default(),
                }),
                CatalogOp::CreateSchema("s".into()),
                CatalogOp::SetSchemaOwner {
                    schema: "s".into(),
                    owner: "alice".into(),
                },
            ])
            .unwrap();
            c.commit(&[CatalogOp::DropUser("bob".into())]).unwrap();
        }
        let c = Catalog::open(dir.path(), 4).unwrap();
        let s = c.snapshot();
        assert!(s.users.contains_key("alice") && !s.users.contains_key("bob"));
        let members: Vec<&str> = s.groups["analysts"]
            .members
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(members, ["alice"]);
        assert!(crate::catalog::privileges::holds(
            &s,
            "alice",
            &on,
            Privilege::Select
        ));
        assert!(!crate::catalog::privileges::holds(
            &s,
            "alice",
            &on,
            Privilege::Insert
        ));
        assert_eq!(s.schema_owners["s"], "alice");
        assert_eq!(s.roles["readers"].users.get("alice"), Some(&true));
        // Dropping the table takes its grants with it.
        c.commit(&[CatalogOp::DropTable(100_000)]).unwrap();
        drop(c);
        let c = Catalog::open(dir.path(), 4).unwrap();
        assert!(!c.snapshot().acl.keys().any(|(o, _)| *o == on));
    }

    #[test]
    fn columns_keep_their_stored_names_through_drop_rename_and_add() {
        let mut state = CatalogState {
            version: 1,
            next_table_id: 2,
            slice_count: 4,
            schemas: ["public".to_string()].into_iter().collect(),
            tables: BTreeMap::new(),
            users: BTreeMap::new(),
            views: BTreeMap::new(),
            comments: BTreeMap::new(),
            constraints: BTreeMap::new(),
            groups: BTreeMap::new(),
            roles: BTreeMap::new(),
            acl: BTreeMap::new(),
            schema_owners: BTreeMap::new(),
            default_acl: BTreeMap::new(),
        };
        let mut t = table(1, "t");
        let mut b = t.columns[0].clone();
        b.name = "b".into();
        b.stored = "b".into();
        t.columns.push(b);
        t.identity_next.push(0);
        t.dist = DistStyle::Key(1);
        state.apply(&CatalogOp::CreateTable(t)).unwrap();
        state
            .apply(&CatalogOp::DropColumn {
                table_id: 1,
                stored: "a".into(),
            })
            .unwrap();
        let t = state.tables[&1].clone();
        assert_eq!(
            (t.dist.clone(), t.retired.clone()),
            (DistStyle::Key(0), vec!["a".into()])
        );
        // A new column called "a" must not read the dropped column's data.
        let mut a = t.columns[0].clone();
        a.name = "a".into();
        a.stored = t.fresh_stored_name("a");
        assert_eq!(a.stored, "a#1");
        state
            .apply(&CatalogOp::AddColumn {
                table_id: 1,
                column: a.clone(),
            })
            .unwrap();
        let err = state
            .apply(&CatalogOp::AddColumn {
                table_id: 1,
                column: a,
            })
            .unwrap_err();
        assert_eq!(err.sqlstate().0, code::DUPLICATE_COLUMN);
        let err = state
            .apply(&CatalogOp::RenameColumn {
                table_id: 1,
                stored: "b".into(),
                name: "a".into(),
            })
            .unwrap_err();
        assert_eq!(err.sqlstate().0, code::DUPLICATE_COLUMN);
        state
            .apply(&CatalogOp::RenameColumn {
                table_id: 1,
                stored: "b".into(),
                name: "c".into(),
            })
            .unwrap();
        let t = &state.tables[&1];
        let names: Vec<(&str, &str)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.stored.as_str()))
            .collect();
        assert_eq!(names, [("c", "b"), ("a", "a#1")]);
        assert_eq!(t.fresh_stored_name("b"), "b#1");
    }
}
