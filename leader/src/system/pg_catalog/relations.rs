//! The catalog relations built from a snapshot: `pg_class`, `pg_attribute`,
//! `pg_namespace`, `pg_constraint`, `pg_index`, `pg_description`, `pg_views`, the
//! `information_schema` tables and the other relations that list what the catalog holds.

use super::builtin::{
    pg_collation, pg_database, pg_language, pg_proc, pg_settings, pg_tablespace, pg_type,
};
use super::*;
use crate::catalog::{Grantee, Privilege, Privileges, Securable};
use datafusion::arrow::datatypes::Int32Type;

impl<'a> Snapshot<'a> {
    pub(super) fn new(view: &'a CatalogState) -> Self {
        let mut schemas = vec![
            ("pg_catalog".to_string(), PG_CATALOG_OID, RDSDB.1),
            (
                "information_schema".to_string(),
                INFORMATION_SCHEMA_OID,
                RDSDB.1,
            ),
        ];
        let mut used: BTreeSet<u32> = schemas.iter().map(|s| s.1).collect();
        for s in &view.schemas {
            let mut oid = if s == "public" {
                PUBLIC_OID
            } else {
                name_oid(s, 16_385, 83_000)
            };
            // Two names hashing alike: the later one (in name order) takes the next free.
            while !used.insert(oid) {
                oid += 1;
            }
            let owner = crate::catalog::privileges::owner_of(view, &Securable::Schema(s.clone()))
                .map_or(RDSDB.1, user_oid);
            schemas.push((s.clone(), oid, owner));
        }
        let view_columns = view
            .views
            .values()
            .filter(|v| !v.late_binding)
            .map(|v| Arc::new(view_as_table(v)))
            .collect();
        let index_columns = view
            .constraints
            .values()
            .filter(|c| c.has_index())
            .filter_map(|c| {
                let t = view.tables.get(&c.table)?;
                Some(Arc::new(index_as_table(c, t)))
            })
            .collect();
        Self {
            view,
            viewer: String::new(),
            schemas,
            view_columns,
            index_columns,
        }
    }

    /// The comment on relation `oid` (column 0) or one of its columns.
    pub(super) fn comment(&self, oid: u64, column: u32) -> Option<&str> {
        self.view.comments.get(&(oid, column)).map(String::as_str)
    }

    pub(super) fn schema_oid(&self, name: &str) -> u32 {
        self.schemas.iter().find(|s| s.0 == name).map_or(0, |s| s.1)
    }

    pub(super) fn tables(&self) -> impl Iterator<Item = &Arc<TableDef>> {
        self.view.tables.values()
    }

    pub(super) fn relation(&self, name: &str) -> Option<RecordBatch> {
        Some(match name {
            "pg_namespace" => self.pg_namespace(),
            "pg_class" => self.pg_class(),
            "pg_attribute" => self.pg_attribute(),
            "pg_attrdef" => self.pg_attrdef(),
            "pg_type" => pg_type(),
            "pg_database" => pg_database(acl_items(self.view, &Securable::Database, DATABASE_ACL)),
            "pg_tablespace" => pg_tablespace(),
            "pg_description" => {
                // Every comment belongs to a relation (pg_class) or one of its columns.
                let c = &self.view.comments;
                Cols::default()
                    .oid("objoid", c.keys().map(|k| k.0 as u32).collect())
                    .oid("classoid", vec![1259; c.len()])
                    .int4("objsubid", c.keys().map(|k| k.1 as i32).collect())
                    .text("description", c.values().collect())
                    .batch()
            }
            "pg_constraint" => self.pg_constraint(),
            "pg_index" => self.pg_index(),
            // As in PostgreSQL, a view is its `_RETURN` rule (pg_rewrite), and the rule
            // depends on the view itself (internally) and on every relation a normal view
            // reads: dbt learns from these which views a CASCADE takes with a table.
            "pg_depend" => {
                let mut rows: Vec<(u32, u32, &str)> = vec![];
                for v in self.view.views.values() {
                    rows.push((view_rule_oid(v), view_oid(v), "i"));
                    for r in &v.depends_on {
                        rows.push((view_rule_oid(v), *r as u32, "n"));
                    }
                }
                let n = rows.len();
                Cols::default()
                    .oid("classid", vec![2618; n])
                    .oid("objid", rows.iter().map(|r| r.0).collect())
                    .int4("objsubid", vec![0; n])
                    .oid("refclassid", vec![1259; n])
                    .oid("refobjid", rows.iter().map(|r| r.1).collect())
                    .int4("refobjsubid", vec![0; n])
                    .text("deptype", rows.iter().map(|r| r.2).collect())
                    .batch()
            }
            "pg_rewrite" => {
                let v: Vec<&Arc<ViewDef>> = self.view.views.values().collect();
                let n = v.len();
                Cols::default()
                    .oid("oid", v.iter().map(|v| view_rule_oid(v)).collect())
                    .text("rulename", vec!["_RETURN"; n])
                    .oid("ev_class", v.iter().map(|v| view_oid(v)).collect())
                    .text("ev_type", vec!["1"; n])
                    .text("ev_enabled", vec!["O"; n])
                    .bool("is_instead", vec![true; n])
                    .text_nulls("ev_qual", n)
                    .text("ev_action", v.iter().map(|v| v.definition()).collect())
                    .batch()
            }
            "pg_proc" => pg_proc(),
            "pg_language" => pg_language(),
            "pg_collation" => pg_collation(),
            "pg_settings" => pg_settings(),
            "pg_user" => self.pg_user(),
            "pg_group" => self.pg_group(),
            "svv_user_info" => self.svv_user_info(),
            "svv_relation_privileges" => self.svv_relation_privileges(),
            "svv_column_privileges" => self.svv_column_privileges(),
            "svv_system_privileges" => self.svv_system_privileges(),
            "svv_default_privileges" => self.svv_default_privileges(),
            "pg_default_acl" => self.pg_default_acl(),
            "pg_shadow" => self.pg_shadow(),
            "svv_schema_privileges" => self.svv_schema_privileges(),
            "svv_database_privileges" => self.svv_database_privileges(),
            "svv_roles" => self.svv_roles(),
            "svv_user_grants" => self.svv_user_grants(),
            "svv_role_grants" => self.svv_role_grants(),
            "pg_roles" => self.pg_roles(),
            "pg_auth_members" => Cols::default()
                .oid("oid", vec![])
                .oid("roleid", vec![])
                .oid("member", vec![])
                .oid("grantor", vec![])
                .bool("admin_option", vec![])
                .batch(),
            "pg_tables" => self.pg_tables(),
            "pg_views" => {
                let v: Vec<&Arc<ViewDef>> = self.view.views.values().collect();
                Cols::default()
                    .text("schemaname", v.iter().map(|v| v.schema.as_str()).collect())
                    .text("viewname", v.iter().map(|v| v.name.as_str()).collect())
                    .text("viewowner", v.iter().map(|v| v.owner.as_str()).collect())
                    .text("definition", v.iter().map(|v| v.definition()).collect())
                    .batch()
            }
            "pg_am" => Cols::default()
                .oid("oid", vec![2, 403])
                .text("amname", vec!["heap", "btree"])
                .text("amhandler", vec!["heap_tableam_handler", "bthandler"])
                .text("amtype", vec!["t", "i"])
                .batch(),
            "pg_opclass" => Cols::default()
                .oid("oid", vec![])
                .oid("opcmethod", vec![])
                .text("opcname", Vec::<String>::new())
                .oid("opcnamespace", vec![])
                .oid("opcowner", vec![])
                .oid("opcfamily", vec![])
                .oid("opcintype", vec![])
                .bool("opcdefault", vec![])
                .oid("opckeytype", vec![])
                .batch(),
            "pg_inherits" => Cols::default()
                .oid("inhrelid", vec![])
                .oid("inhparent", vec![])
                .int4("inhseqno", vec![])
                .bool("inhdetachpending", vec![])
                .batch(),
            "pg_policy" => Cols::default()
                .oid("oid", vec![])
                .text("polname", Vec::<String>::new())
                .oid("polrelid", vec![])
                .text("polcmd", Vec::<String>::new())
                .bool("polpermissive", vec![])
                .oid_list_nulls("polroles", 0)
                .text("polqual", Vec::<String>::new())
                .text("polwithcheck", Vec::<String>::new())
                .batch(),
            "pg_extension" => Cols::default()
                .oid("oid", vec![])
                .text("extname", Vec::<String>::new())
                .oid("extowner", vec![])
                .oid("extnamespace", vec![])
                .bool("extrelocatable", vec![])
                .text("extversion", Vec::<String>::new())
                .batch(),
            "pg_sequence" => Cols::default()
                .oid("seqrelid", vec![])
                .oid("seqtypid", vec![])
                .int8("seqstart", vec![])
                .int8("seqincrement", vec![])
                .int8("seqmax", vec![])
                .int8("seqmin", vec![])
                .int8("seqcache", vec![])
                .bool("seqcycle", vec![])
                .batch(),
            // Redshift's driver-facing views: local tables in `information_schema` shape
            // with `remarks`; Basalt has no external (Spectrum) schemas.
            "svv_tables" => {
                let t = self.info_tables();
                let n = t.num_rows();
                let mut cols = Cols::default();
                for name in ["table_catalog", "table_schema", "table_name", "table_type"] {
                    cols = cols.push(name, t.column_by_name(name)?.clone());
                }
                let remarks = self
                    .relations()
                    .map(|(oid, ..)| self.comment(oid, 0))
                    .collect();
                debug_assert_eq!(n, self.relations().count());
                cols.text_opt("remarks", remarks).batch()
            }
            "svv_columns" => {
                let c = self.info_columns();
                let n = c.num_rows();
                let mut cols = Cols::default();
                for name in [
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "column_name",
                    "ordinal_position",
                    "column_default",
                    "is_nullable",
                    "data_type",
                    "character_maximum_length",
                    "numeric_precision",
                    "numeric_precision_radix",
                    "numeric_scale",
                    "datetime_precision",
                    "interval_type",
                    "interval_precision",
                    "character_set_catalog",
                    "character_set_schema",
                    "character_set_name",
                    "collation_catalog",
                    "collation_schema",
                    "collation_name",
                    "domain_name",
                ] {
                    cols = cols.push(name, c.column_by_name(name)?.clone());
                }
                let remarks: Vec<Option<&str>> = self
                    .columns()
                    .iter()
                    .map(|(t, i)| self.comment(t.id, *i as u32 + 1))
                    .collect();
                debug_assert_eq!(n, remarks.len());
                cols.text_opt("remarks", remarks).batch()
            }
            "svv_external_schemas" => Cols::default()
                .int4("esoid", vec![])
                .int2("eskind", vec![])
                .text("schemaname", Vec::<String>::new())
                .int4("esowner", vec![])
                .text("databasename", Vec::<String>::new())
                .text("esoptions", Vec::<String>::new())
                .batch(),
            "svv_external_tables" => {
                let mut cols = Cols::default();
                for name in [
                    "schemaname",
                    "tablename",
                    "location",
                    "input_format",
                    "output_format",
                    "serialization_lib",
                    "serde_parameters",
                    "compressed",
                    "parameters",
                    "tabletype",
                ] {
                    cols = cols.text(name, Vec::<String>::new());
                }
                cols.batch()
            }
            "svv_external_columns" => Cols::default()
                .text("schemaname", Vec::<String>::new())
                .text("tablename", Vec::<String>::new())
                .text("columnname", Vec::<String>::new())
                .text("external_type", Vec::<String>::new())
                .int4("columnnum", vec![])
                .int4("part_key", vec![])
                .text("is_nullable", Vec::<String>::new())
                .batch(),
            _ => return None,
        })
    }

    pub(super) fn pg_namespace(&self) -> RecordBatch {
        let s = &self.schemas;
        Cols::default()
            .oid("oid", s.iter().map(|s| s.1).collect())
            .text("nspname", s.iter().map(|s| s.0.as_str()).collect())
            .oid("nspowner", s.iter().map(|s| s.2).collect())
            .text_lists(
                "nspacl",
                s.iter()
                    .map(|s| acl_items(self.view, &Securable::Schema(s.0.clone()), SCHEMA_ACL))
                    .collect(),
            )
            .batch()
    }

    pub(super) fn pg_class(&self) -> RecordBatch {
        // User tables, then the catalog's own relations (so `'pg_class'::regclass` and
        // joins on `classoid` find them).
        struct Rel {
            oid: u32,
            name: String,
            namespace: u32,
            owner: u32,
            kind: &'static str,
            natts: i16,
            tuples: f32,
            diststyle: i16,
        }
        let mut rels: Vec<Rel> = self
            .tables()
            .map(|t| Rel {
                oid: table_oid(t),
                name: t.name.clone(),
                namespace: self.schema_oid(&t.schema),
                owner: user_oid(&t.owner),
                kind: "r",
                natts: t.columns.len() as i16,
                tuples: t.rows() as f32,
                diststyle: reldiststyle(&t.dist),
            })
            .collect();
        rels.extend(self.view.views.values().map(|v| Rel {
            oid: view_oid(v),
            name: v.name.clone(),
            namespace: self.schema_oid(&v.schema),
            owner: user_oid(&v.owner),
            kind: "v",
            // A late-binding view's columns are not in pg_attribute.
            natts: if v.late_binding {
                0
            } else {
                v.columns.len() as i16
            },
            tuples: 0.0,
            diststyle: 0,
        }));
        rels.extend(self.index_columns.iter().map(|i| Rel {
            oid: table_oid(i),
            name: i.name.clone(),
            namespace: self.schema_oid(&i.schema),
            owner: user_oid(&i.owner),
            kind: "i",
            natts: i.columns.len() as i16,
            tuples: 0.0,
            diststyle: 0,
        }));
        rels.extend(RELATIONS.iter().map(|(name, oid, kind)| Rel {
            oid: *oid,
            name: name.to_string(),
            namespace: PG_CATALOG_OID,
            owner: RDSDB.1,
            kind,
            natts: 0,
            tuples: 0.0,
            diststyle: 0,
        }));
        let n = rels.len();
        // Tables with a PRIMARY KEY or UNIQUE constraint have an index.
        let indexed: BTreeSet<u64> = self
            .view
            .constraints
            .values()
            .filter(|c| c.has_index())
            .map(|c| c.table)
            .collect();
        Cols::default()
            .oid("oid", rels.iter().map(|r| r.oid).collect())
            .text("relname", rels.iter().map(|r| r.name.as_str()).collect())
            .oid("relnamespace", rels.iter().map(|r| r.namespace).collect())
            .oid("reltype", vec![0; n])
            .oid("reloftype", vec![0; n])
            .oid("relowner", rels.iter().map(|r| r.owner).collect())
            .oid(
                "relam",
                rels.iter()
                    .map(|r| match r.kind {
                        "r" => 2,
                        "i" => 403,
                        _ => 0,
                    })
                    .collect(),
            )
            .oid("relfilenode", rels.iter().map(|r| r.oid).collect())
            .oid("reltablespace", vec![0; n])
            .int4("relpages", vec![0; n])
            .float4("reltuples", rels.iter().map(|r| r.tuples).collect())
            .int4("relallvisible", vec![0; n])
            .oid("reltoastrelid", vec![0; n])
            .bool(
                "relhasindex",
                rels.iter()
                    .map(|r| r.kind == "r" && indexed.contains(&u64::from(r.oid)))
                    .collect(),
            )
            .bool("relisshared", vec![false; n])
            .text("relpersistence", vec!["p"; n])
            .text("relkind", rels.iter().map(|r| r.kind).collect())
            .int2("relnatts", rels.iter().map(|r| r.natts).collect())
            .int2("relchecks", vec![0; n])
            .bool("relhasoids", vec![false; n])
            .bool("relhasrules", vec![false; n])
            .bool("relhastriggers", vec![false; n])
            .bool("relhassubclass", vec![false; n])
            .bool("relrowsecurity", vec![false; n])
            .bool("relforcerowsecurity", vec![false; n])
            .bool("relispopulated", vec![true; n])
            .text("relreplident", vec!["d"; n])
            .bool("relispartition", vec![false; n])
            .text_lists(
                "relacl",
                rels.iter()
                    .map(|r| {
                        let id = u64::from(r.oid);
                        (r.kind == "r" || r.kind == "v")
                            .then(|| {
                                acl_items(
                                    self.view,
                                    &Securable::Relation(id),
                                    Privilege::ON_RELATIONS,
                                )
                            })
                            .flatten()
                    })
                    .collect(),
            )
            .text_list_nulls("reloptions", n)
            .text_nulls("relpartbound", n)
            .int2("reldiststyle", rels.iter().map(|r| r.diststyle).collect())
            .batch()
    }

    pub(super) fn columns(&self) -> Vec<(&TableDef, usize)> {
        self.tables()
            .chain(self.view_columns.iter())
            .flat_map(|t| (0..t.columns.len()).map(move |i| (t.as_ref(), i)))
            .collect()
    }

    pub(super) fn pg_attribute(&self) -> RecordBatch {
        let mut rows = self.columns();
        rows.extend(
            self.index_columns
                .iter()
                .flat_map(|t| (0..t.columns.len()).map(move |i| (t.as_ref(), i))),
        );
        let ty = |(t, i): &(&TableDef, usize)| t.columns[*i].sql_type.clone();
        Cols::default()
            .oid("attrelid", rows.iter().map(|(t, _)| table_oid(t)).collect())
            .text(
                "attname",
                rows.iter()
                    .map(|(t, i)| t.columns[*i].name.as_str())
                    .collect(),
            )
            .oid(
                "atttypid",
                rows.iter().map(|r| ty(r).pg_type().oid()).collect(),
            )
            .int4("attstattarget", vec![-1; rows.len()])
            .int2(
                "attlen",
                rows.iter()
                    .map(|r| type_len(ty(r).pg_type().oid()))
                    .collect(),
            )
            .int2("attnum", rows.iter().map(|(_, i)| *i as i16 + 1).collect())
            .int4("attndims", vec![0; rows.len()])
            .int4("attcacheoff", vec![-1; rows.len()])
            .int4(
                "atttypmod",
                rows.iter().map(|r| ty(r).type_modifier()).collect(),
            )
            .bool(
                "attbyval",
                rows.iter()
                    .map(|r| type_len(ty(r).pg_type().oid()) > 0)
                    .collect(),
            )
            .text(
                "attstorage",
                rows.iter()
                    .map(|r| {
                        if ty(r).max_bytes().is_some() {
                            "x"
                        } else {
                            "p"
                        }
                    })
                    .collect(),
            )
            .text("attalign", rows.iter().map(|_| "i").collect())
            .bool(
                "attnotnull",
                rows.iter().map(|(t, i)| !t.columns[*i].nullable).collect(),
            )
            .bool(
                "atthasdef",
                rows.iter()
                    .map(|(t, i)| column_default(t, *i).is_some())
                    .collect(),
            )
            .bool("atthasmissing", vec![false; rows.len()])
            .text("attidentity", vec![""; rows.len()])
            .text("attgenerated", vec![""; rows.len()])
            .bool("attisdropped", vec![false; rows.len()])
            .bool("attislocal", vec![true; rows.len()])
            .int4("attinhcount", vec![0; rows.len()])
            .oid(
                "attcollation",
                rows.iter()
                    .map(|r| {
                        if ty(r).max_bytes().is_some() {
                            DEFAULT_COLLATION_OID
                        } else {
                            0
                        }
                    })
                    .collect(),
            )
            .text_lists(
                "attacl",
                rows.iter()
                    .map(|(t, i)| {
                        let on = Securable::Column(t.id, t.columns[*i].stored.clone());
                        acl_items(self.view, &on, Privilege::ON_COLUMNS)
                    })
                    .collect(),
            )
            .text_list_nulls("attoptions", rows.len())
            .bool(
                "attisdistkey",
                rows.iter()
                    .map(|(t, i)| t.dist == DistStyle::Key(*i))
                    .collect(),
            )
            .int4(
                "attsortkeyord",
                rows.iter().map(|(t, i)| sort_key_ord(t, *i)).collect(),
            )
            .int4(
                "attencodingtype",
                rows.iter()
                    .map(|(t, i)| encoding_type(&t.columns[*i].encoding))
                    .collect(),
            )
            .batch()
    }

    pub(super) fn pg_attrdef(&self) -> RecordBatch {
        let rows: Vec<(&TableDef, usize, String)> = self
            .columns()
            .into_iter()
            .filter_map(|(t, i)| column_default(t, i).map(|d| (t, i, d)))
            .collect();
        let exprs: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        Cols::default()
            // One default per column: the OID packs the table id and the column number (11
            // bits: Redshift allows 1,600 columns).
            .oid(
                "oid",
                rows.iter()
                    .map(|(t, i, _)| (table_oid(t) << 11) | (*i as u32 & 0x7ff))
                    .collect(),
            )
            .oid(
                "adrelid",
                rows.iter().map(|(t, _, _)| table_oid(t)).collect(),
            )
            .int2(
                "adnum",
                rows.iter().map(|(_, i, _)| *i as i16 + 1).collect(),
            )
            // `pg_get_expr(adbin, adrelid)` gives the expression's text, so adbin holds it.
            .text("adbin", exprs.clone())
            .text("adsrc", exprs)
            .batch()
    }

    /// Every user as the catalog relations show it, `rdsdb` first.
    pub(super) fn user_rows(&self) -> Vec<UserRow> {
        let mut users = vec![UserRow {
            name: RDSDB.0.to_string(),
            oid: RDSDB.1,
            superuser: true,
            create_db: true,
            valid_until: None,
            connection_limit: -1,
        }];
        users.extend(self.view.users.values().map(|u| UserRow {
            name: u.name.clone(),
            oid: user_oid(&u.name),
            superuser: u.superuser,
            create_db: u.create_db || u.superuser,
            valid_until: u.valid_until.and_then(|us| {
                chrono::DateTime::from_timestamp_micros(us)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S+00").to_string())
            }),
            connection_limit: u.connection_limit.map_or(-1, |n| n as i32),
        }));
        users
    }

    pub(super) fn pg_user(&self) -> RecordBatch {
        let n = self.user_rows().len();
        self.users_with_passwords(vec![Some("********".to_string()); n])
    }

    /// `pg_user`'s columns with `passwd` as given (masked there, hashes in pg_shadow).
    pub(super) fn users_with_passwords(&self, passwd: Vec<Option<String>>) -> RecordBatch {
        let u = self.user_rows();
        let n = u.len();
        Cols::default()
            .text("usename", u.iter().map(|u| u.name.as_str()).collect())
            .int4("usesysid", u.iter().map(|u| u.oid as i32).collect())
            .bool("usecreatedb", u.iter().map(|u| u.create_db).collect())
            .bool("usesuper", u.iter().map(|u| u.superuser).collect())
            .bool("usecatupd", u.iter().map(|u| u.superuser).collect())
            .text_opt("passwd", passwd)
            .text_opt(
                "valuntil",
                u.iter().map(|u| u.valid_until.as_deref()).collect(),
            )
            .text_list_nulls("useconfig", n)
            .batch()
    }

    pub(super) fn pg_roles(&self) -> RecordBatch {
        let u = self.user_rows();
        let n = u.len();
        Cols::default()
            .text("rolname", u.iter().map(|u| u.name.as_str()).collect())
            .bool("rolsuper", u.iter().map(|u| u.superuser).collect())
            .bool("rolinherit", vec![true; n])
            .bool("rolcreaterole", u.iter().map(|u| u.superuser).collect())
            .bool("rolcreatedb", u.iter().map(|u| u.create_db).collect())
            // rdsdb is internal: nobody logs in as it.
            .bool("rolcanlogin", u.iter().map(|u| u.oid != RDSDB.1).collect())
            .bool("rolreplication", vec![false; n])
            .int4(
                "rolconnlimit",
                u.iter().map(|u| u.connection_limit).collect(),
            )
            .text("rolpassword", vec!["********"; n])
            .text_opt(
                "rolvaliduntil",
                u.iter().map(|u| u.valid_until.as_deref()).collect(),
            )
            .bool("rolbypassrls", u.iter().map(|u| u.superuser).collect())
            .text_list_nulls("rolconfig", n)
            .oid("oid", u.iter().map(|u| u.oid).collect())
            .batch()
    }

    /// `pg_group`: each group with the ids of its members.
    pub(super) fn pg_group(&self) -> RecordBatch {
        let g: Vec<_> = self.view.groups.values().collect();
        let members: Vec<Option<Vec<Option<i32>>>> = g
            .iter()
            .map(|g| Some(g.members.iter().map(|m| Some(user_oid(m) as i32)).collect()))
            .collect();
        Cols::default()
            .text("groname", g.iter().map(|g| g.name.as_str()).collect())
            .int4(
                "grosysid",
                g.iter().map(|g| user_oid(&g.name) as i32).collect(),
            )
            .push(
                "grolist",
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(members)),
            )
            .batch()
    }

    pub(super) fn pg_tables(&self) -> RecordBatch {
        let t: Vec<&Arc<TableDef>> = self.tables().collect();
        let n = t.len();
        Cols::default()
            .text("schemaname", t.iter().map(|t| t.schema.as_str()).collect())
            .text("tablename", t.iter().map(|t| t.name.as_str()).collect())
            .text("tableowner", t.iter().map(|t| t.owner.as_str()).collect())
            .text_nulls("tablespace", n)
            .bool("hasindexes", vec![false; n])
            .bool("hasrules", vec![false; n])
            .bool("hastriggers", vec![false; n])
            .bool("rowsecurity", vec![false; n])
            .batch()
    }

    /// Every table, then every view: (oid, schema, name, is a view).
    pub(super) fn relations(&self) -> impl Iterator<Item = (u64, &str, &str, bool)> {
        self.tables()
            .map(|t| (t.id, t.schema.as_str(), t.name.as_str(), false))
            .chain(
                self.view
                    .views
                    .values()
                    .map(|v| (v.id, v.schema.as_str(), v.name.as_str(), true)),
            )
    }

    pub(super) fn info_tables(&self) -> RecordBatch {
        let t: Vec<(u64, &str, &str, bool)> = self.relations().collect();
        let n = t.len();
        Cols::default()
            .text("table_catalog", vec![DATABASE; n])
            .text("table_schema", t.iter().map(|t| t.1).collect())
            .text("table_name", t.iter().map(|t| t.2).collect())
            .text(
                "table_type",
                t.iter()
                    .map(|t| if t.3 { "VIEW" } else { "BASE TABLE" })
                    .collect(),
            )
            .text_nulls("self_referencing_column_name", n)
            .text_nulls("reference_generation", n)
            .text_nulls("user_defined_type_catalog", n)
            .text_nulls("user_defined_type_schema", n)
            .text_nulls("user_defined_type_name", n)
            .text(
                "is_insertable_into",
                t.iter().map(|t| if t.3 { "NO" } else { "YES" }).collect(),
            )
            .text("is_typed", vec!["NO"; n])
            .text_nulls("commit_action", n)
            .batch()
    }

    pub(super) fn info_columns(&self) -> RecordBatch {
        let rows = self.columns();
        let n = rows.len();
        let ty = |(t, i): &(&TableDef, usize)| t.columns[*i].sql_type.clone();
        let numeric = |r: &(&TableDef, usize)| -> (Option<i32>, Option<i32>, Option<i32>) {
            match ty(r) {
                SqlType::SmallInt => (Some(16), Some(2), Some(0)),
                SqlType::Integer => (Some(32), Some(2), Some(0)),
                SqlType::BigInt => (Some(64), Some(2), Some(0)),
                SqlType::Real => (Some(24), Some(2), None),
                SqlType::Double => (Some(53), Some(2), None),
                SqlType::Decimal { precision, scale } => {
                    (Some(precision.into()), Some(10), Some(scale.into()))
                }
                _ => (None, None, None),
            }
        };
        let datetime = |r: &(&TableDef, usize)| match ty(r) {
            SqlType::Date => Some(0),
            SqlType::Timestamp | SqlType::Timestamptz | SqlType::Time => Some(6),
            _ => None,
        };
        Cols::default()
            .text("table_catalog", vec![DATABASE; n])
            .text(
                "table_schema",
                rows.iter().map(|(t, _)| t.schema.as_str()).collect(),
            )
            .text(
                "table_name",
                rows.iter().map(|(t, _)| t.name.as_str()).collect(),
            )
            .text(
                "column_name",
                rows.iter()
                    .map(|(t, i)| t.columns[*i].name.as_str())
                    .collect(),
            )
            .int4(
                "ordinal_position",
                rows.iter().map(|(_, i)| *i as i32 + 1).collect(),
            )
            .text_opt(
                "column_default",
                rows.iter().map(|(t, i)| column_default(t, *i)).collect(),
            )
            .text(
                "is_nullable",
                rows.iter()
                    .map(|(t, i)| if t.columns[*i].nullable { "YES" } else { "NO" })
                    .collect(),
            )
            .text(
                "data_type",
                rows.iter().map(|r| type_family(&ty(r))).collect(),
            )
            .int4_opt(
                "character_maximum_length",
                rows.iter()
                    .map(|r| ty(r).max_bytes().map(|n| n as i32))
                    .collect(),
            )
            .int4_opt(
                "character_octet_length",
                rows.iter()
                    .map(|r| ty(r).max_bytes().map(|n| n as i32))
                    .collect(),
            )
            .int4_opt(
                "numeric_precision",
                rows.iter().map(|r| numeric(r).0).collect(),
            )
            .int4_opt(
                "numeric_precision_radix",
                rows.iter().map(|r| numeric(r).1).collect(),
            )
            .int4_opt("numeric_scale", rows.iter().map(|r| numeric(r).2).collect())
            .int4_opt("datetime_precision", rows.iter().map(datetime).collect())
            .text_nulls("interval_type", n)
            .int4_opt("interval_precision", vec![None; n])
            .text_nulls("character_set_catalog", n)
            .text_nulls("character_set_schema", n)
            .text_nulls("character_set_name", n)
            .text_nulls("collation_catalog", n)
            .text_nulls("collation_schema", n)
            .text_nulls("collation_name", n)
            .text_nulls("domain_catalog", n)
            .text_nulls("domain_schema", n)
            .text_nulls("domain_name", n)
            .text("udt_catalog", vec![DATABASE; n])
            .text("udt_schema", vec!["pg_catalog"; n])
            .text(
                "udt_name",
                rows.iter()
                    .map(|r| ty(r).pg_type().name().to_string())
                    .collect(),
            )
            .text(
                "dtd_identifier",
                rows.iter().map(|(_, i)| (i + 1).to_string()).collect(),
            )
            .text("is_self_referencing", vec!["NO"; n])
            .text(
                "is_identity",
                rows.iter()
                    .map(|(t, i)| {
                        if t.columns[*i].identity.is_some() {
                            "YES"
                        } else {
                            "NO"
                        }
                    })
                    .collect(),
            )
            .text("is_generated", vec!["NEVER"; n])
            .text_nulls("generation_expression", n)
            .text("is_updatable", vec!["YES"; n])
            .batch()
    }

    pub(super) fn info_schemata(&self) -> RecordBatch {
        let s = &self.schemas;
        let n = s.len();
        Cols::default()
            .text("catalog_name", vec![DATABASE; n])
            .text("schema_name", s.iter().map(|s| s.0.as_str()).collect())
            .text(
                "schema_owner",
                s.iter()
                    .map(|s| {
                        crate::catalog::privileges::owner_of(
                            self.view,
                            &Securable::Schema(s.0.clone()),
                        )
                        .filter(|_| self.view.schemas.contains(&s.0))
                        .unwrap_or(RDSDB.0)
                    })
                    .collect(),
            )
            .text_nulls("default_character_set_catalog", n)
            .text_nulls("default_character_set_schema", n)
            .text_nulls("default_character_set_name", n)
            .text_nulls("sql_path", n)
            .batch()
    }

    pub(super) fn info_views(&self) -> RecordBatch {
        let v: Vec<&Arc<ViewDef>> = self.view.views.values().collect();
        let n = v.len();
        Cols::default()
            .text("table_catalog", vec![DATABASE; n])
            .text(
                "table_schema",
                v.iter().map(|v| v.schema.as_str()).collect(),
            )
            .text("table_name", v.iter().map(|v| v.name.as_str()).collect())
            .text(
                "view_definition",
                v.iter().map(|v| v.definition()).collect(),
            )
            .text("check_option", vec!["NONE"; n])
            .text("is_updatable", vec!["NO"; n])
            .text("is_insertable_into", vec!["NO"; n])
            .text("is_trigger_updatable", vec!["NO"; n])
            .text("is_trigger_deletable", vec!["NO"; n])
            .text("is_trigger_insertable_into", vec!["NO"; n])
            .batch()
    }
}

/// Redshift's `pg_class.reldiststyle`: 0 EVEN, 1 KEY, 8 ALL, 11 AUTO(EVEN).
pub(super) fn reldiststyle(d: &DistStyle) -> i16 {
    match d {
        DistStyle::Even => 0,
        DistStyle::Key(_) => 1,
        DistStyle::All => 8,
        DistStyle::Auto => 11,
    }
}

/// `attsortkeyord`: position in the sort key from 1, negative for INTERLEAVED, 0 if none.
pub(super) fn sort_key_ord(t: &TableDef, column: usize) -> i32 {
    let pos = t
        .sort_key
        .iter()
        .position(|k| *k == column)
        .map_or(0, |p| p as i32 + 1);
    match t.sort_kind {
        SortKind::Interleaved => -pos,
        SortKind::Compound => pos,
    }
}

/// `attencodingtype` numbers: Basalt numbers the encodings in the order Redshift
/// documents them, 0 for RAW; `format_encoding` turns a number back into its name.
pub(super) const ENCODINGS: &[&str] = &[
    "raw",
    "bytedict",
    "delta",
    "delta32k",
    "lzo",
    "mostly8",
    "mostly16",
    "mostly32",
    "runlength",
    "text255",
    "text32k",
    "zstd",
    "az64",
];

/// A column's `attencodingtype`.
pub(super) fn encoding_type(encoding: &str) -> i32 {
    ENCODINGS.iter().position(|e| *e == encoding).unwrap_or(0) as i32
}

/// A column's default as `pg_get_expr` shows it: a string literal with the cast
/// PostgreSQL (and Redshift) show on it (`'x'::character varying`); IDENTITY columns show
/// Redshift's `"identity"(table, column, 'seed,step')` form.
pub(super) fn column_default(t: &TableDef, i: usize) -> Option<String> {
    let c = &t.columns[i];
    if let Some(id) = &c.identity {
        return Some(format!(
            "\"identity\"({}, {}, '{},{}'::text)",
            t.id, i, id.seed, id.step
        ));
    }
    let default = c.default.as_ref()?;
    let literal = default.len() >= 2
        && default.starts_with('\'')
        && default.ends_with('\'')
        && !default[1..default.len() - 1]
            .replace("''", "")
            .contains('\'');
    let cast = match &c.sql_type {
        SqlType::Char(_) => "bpchar".to_string(),
        t @ (SqlType::Varchar(_)
        | SqlType::Date
        | SqlType::Time
        | SqlType::Timestamp
        | SqlType::Timestamptz) => type_family(t),
        _ => return Some(default.clone()),
    };
    Some(if literal {
        format!("{default}::{cast}")
    } else {
        default.clone()
    })
}

/// The type name without its modifier, as `information_schema.columns.data_type` has it.
pub(super) fn type_family(t: &SqlType) -> String {
    let name = t.display_name();
    match name.find('(') {
        Some(i) => name[..i].to_string(),
        None => name,
    }
}

impl Snapshot<'_> {
    /// PRIMARY KEY, UNIQUE and FOREIGN KEY constraints (informational, as in Redshift).
    pub(super) fn pg_constraint(&self) -> RecordBatch {
        let rows: Vec<&ConstraintDef> =
            self.view.constraints.values().map(|c| c.as_ref()).collect();
        let n = rows.len();
        let table = |c: &ConstraintDef| self.view.tables.get(&c.table);
        let keys = |c: &ConstraintDef| Some(attnums(self.view, c.table, &c.columns));
        let fkeys = |c: &ConstraintDef| match &c.kind {
            ConstraintKind::ForeignKey { table, columns } => {
                Some(attnums(self.view, *table, columns))
            }
            _ => None,
        };
        let fk = |c: &ConstraintDef, v: &'static str| match c.kind {
            ConstraintKind::ForeignKey { .. } => v,
            _ => " ",
        };
        Cols::default()
            .oid("oid", rows.iter().map(|c| constraint_oid(c)).collect())
            .text("conname", rows.iter().map(|c| c.name.as_str()).collect())
            .oid(
                "connamespace",
                rows.iter()
                    .map(|c| table(c).map_or(0, |t| self.schema_oid(&t.schema)))
                    .collect(),
            )
            .text("contype", rows.iter().map(|c| c.contype()).collect())
            .bool("condeferrable", vec![false; n])
            .bool("condeferred", vec![false; n])
            .bool("convalidated", vec![true; n])
            .oid("conrelid", rows.iter().map(|c| c.table as u32).collect())
            .oid("contypid", vec![0; n])
            .oid(
                "conindid",
                rows.iter()
                    .map(|c| match &c.kind {
                        ConstraintKind::ForeignKey { table, columns } => self
                            .view
                            .constraints_of(*table)
                            .into_iter()
                            .find(|k| k.has_index() && k.columns == *columns)
                            .map_or(0, |k| index_oid(k)),
                        _ => index_oid(c),
                    })
                    .collect(),
            )
            .oid("conparentid", vec![0; n])
            .oid(
                "confrelid",
                rows.iter()
                    .map(|c| match &c.kind {
                        ConstraintKind::ForeignKey { table, .. } => *table as u32,
                        _ => 0,
                    })
                    .collect(),
            )
            .text("confupdtype", rows.iter().map(|c| fk(c, "a")).collect())
            .text("confdeltype", rows.iter().map(|c| fk(c, "a")).collect())
            .text("confmatchtype", rows.iter().map(|c| fk(c, "s")).collect())
            .bool("conislocal", vec![true; n])
            .int4("coninhcount", vec![0; n])
            .bool("connoinherit", vec![true; n])
            .push("conkey", int2_lists(rows.iter().map(|c| keys(c)).collect()))
            .push(
                "confkey",
                int2_lists(rows.iter().map(|c| fkeys(c)).collect()),
            )
            .text_nulls("conbin", n)
            .text_opt(
                "consrc",
                rows.iter()
                    .map(|c| Some(crate::catalog::constraints::definition(c, self.view)))
                    .collect(),
            )
            .batch()
    }

    /// The indexes of PRIMARY KEY and UNIQUE constraints.
    pub(super) fn pg_index(&self) -> RecordBatch {
        let rows: Vec<&ConstraintDef> = self
            .view
            .constraints
            .values()
            .map(|c| c.as_ref())
            .filter(|c| c.has_index())
            .collect();
        let n = rows.len();
        let natts: Vec<i16> = rows.iter().map(|c| c.columns.len() as i16).collect();
        let per_key = |v: u32| {
            let items: Vec<Option<Vec<Option<u32>>>> = rows
                .iter()
                .map(|c| Some(vec![Some(v); c.columns.len()]))
                .collect();
            Arc::new(ListArray::from_iter_primitive::<UInt32Type, _, _>(items)) as ArrayRef
        };
        Cols::default()
            .oid("indexrelid", rows.iter().map(|c| index_oid(c)).collect())
            .oid("indrelid", rows.iter().map(|c| c.table as u32).collect())
            .int2("indnatts", natts.clone())
            .int2("indnkeyatts", natts)
            .bool("indisunique", vec![true; n])
            .bool("indnullsnotdistinct", vec![false; n])
            .bool(
                "indisprimary",
                rows.iter()
                    .map(|c| c.kind == ConstraintKind::PrimaryKey)
                    .collect(),
            )
            .bool("indisexclusion", vec![false; n])
            .bool("indimmediate", vec![true; n])
            .bool("indisclustered", vec![false; n])
            .bool("indisvalid", vec![true; n])
            .bool("indcheckxmin", vec![false; n])
            .bool("indisready", vec![true; n])
            .bool("indislive", vec![true; n])
            .bool("indisreplident", vec![false; n])
            .int2vector(
                "indkey",
                rows.iter()
                    .map(|c| Some(attnums(self.view, c.table, &c.columns)))
                    .collect(),
            )
            .push("indcollation", per_key(0))
            .push("indclass", per_key(0))
            .int2vector(
                "indoption",
                rows.iter()
                    .map(|c| Some(vec![0; c.columns.len()]))
                    .collect(),
            )
            .text_nulls("indexprs", n)
            .text_nulls("indpred", n)
            .batch()
    }
}

// ---------------------------------------------------------------------------------------
// Functions

/// A user as `pg_user` and `pg_roles` show it.
pub(super) struct UserRow {
    pub(super) name: String,
    pub(super) oid: u32,
    pub(super) superuser: bool,
    pub(super) create_db: bool,
    /// `VALID UNTIL` as PostgreSQL prints an abstime.
    pub(super) valid_until: Option<String>,
    /// -1: unlimited.
    pub(super) connection_limit: i32,
}

/// The privileges schemas' and the database's aclitems list, in PostgreSQL's letter order
/// (those of relations and columns are `Privilege::ON_RELATIONS` / `ON_COLUMNS`).
const SCHEMA_ACL: &[Privilege] = &[Privilege::Usage, Privilege::Create];
const DATABASE_ACL: &[Privilege] = &[Privilege::Create, Privilege::Temp];

/// A grantee as aclitem text names it: PUBLIC is empty, groups `group g`, roles `role r`.
pub(super) fn acl_grantee(to: &Grantee) -> String {
    match to {
        Grantee::Public => String::new(),
        Grantee::User(u) => u.clone(),
        Grantee::Group(g) => format!("group {g}"),
        Grantee::Role(r) => format!("role {r}"),
    }
}

/// `relacl` / `nspacl` as PostgreSQL prints aclitems: NULL while nothing was granted
/// (the owner's default privileges), else the owner's entry and one per grantee,
/// `grantee=letters/grantor`, with `*` after a letter held WITH GRANT OPTION; PUBLIC is
/// the empty grantee and groups are `group g`, as Redshift prints them.
pub(super) fn acl_items(
    view: &CatalogState,
    on: &Securable,
    applicable: &[Privilege],
) -> Option<Vec<Option<String>>> {
    let grants: Vec<_> = view.acl.iter().filter(|((o, _), _)| o == on).collect();
    if grants.is_empty() {
        return None;
    }
    let owner = crate::catalog::privileges::owner_of(view, on).unwrap_or("rdsdb");
    let letters = |held: Privileges, grantable: Privileges| -> String {
        applicable
            .iter()
            .filter(|p| held.contains(**p))
            .map(|p| {
                let mut s = p.acl_letter().to_string();
                if grantable.contains(*p) {
                    s.push('*');
                }
                s
            })
            .collect()
    };
    // A column's ACL lists only its grants; other objects' begin with the owner's.
    let mut items = if matches!(on, Securable::Column(..)) {
        vec![]
    } else {
        vec![Some(format!(
            "{owner}={}/{owner}",
            letters(Privileges::of(applicable), Privileges::default())
        ))]
    };
    for ((_, to), grant) in grants {
        let who = acl_grantee(to);
        items.push(Some(format!(
            "{who}={}/{}",
            letters(grant.privileges, grant.grant_option),
            grant.grantor
        )));
    }
    Some(items)
}
