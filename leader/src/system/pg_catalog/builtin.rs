//! The catalog relations that hold the same rows in every database: `pg_type`,
//! `pg_proc`, `pg_database`, `pg_tablespace`, `pg_language`, `pg_collation`,
//! `pg_settings`.

use super::*;

/// The types `pg_type` lists: the ones Basalt stores, the ones its catalog columns and
/// functions use, and their arrays.
pub(super) const TYPES: &[u32] = &[
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 30, 700, 701, 705, 1042, 1043, 1082, 1083, 1114,
    1184, 1186, 1266, 1700, 2205, 2206, 2249, 2275, 2276, 2277, 2278, 2279, 1000, 1001, 1002, 1003,
    1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1231,
];

/// `typlen`: bytes of a fixed-length type, -1 for variable length, -2 for C strings.
pub(crate) fn type_len(oid: u32) -> i16 {
    match oid {
        16 | 18 => 1,
        21 => 2,
        23 | 24 | 26 | 700 | 1082 | 2205 | 2206 => 4,
        20 | 701 | 1083 | 1114 | 1184 => 8,
        19 => 64,
        1186 | 1266 => 12,
        2275 => -2,
        2276 | 2278 | 2279 | 2249 | 2277 => 4,
        _ => -1,
    }
}

pub(super) fn pg_type() -> RecordBatch {
    let mut types: Vec<Type> = TYPES.iter().filter_map(|o| Type::from_oid(*o)).collect();
    types.push(SqlType::Varbyte(crate::sql::types::VARBYTE_DEFAULT).pg_type());
    let elem = |t: &Type| match t.kind() {
        postgres_types::Kind::Array(e) => e.oid(),
        _ => 0,
    };
    let array_of = |t: &Type| {
        types
            .iter()
            .find(|a| elem(a) == t.oid())
            .map_or(0, |a| a.oid())
    };
    let kind = |t: &Type| match t.kind() {
        postgres_types::Kind::Pseudo => "p",
        _ => "b",
    };
    let category = |t: &Type| match t.kind() {
        postgres_types::Kind::Array(_) => "A",
        postgres_types::Kind::Pseudo => "P",
        _ => match t.oid() {
            16 => "B",
            20 | 21 | 23 | 26 | 24 | 700 | 701 | 1700 | 2205 | 2206 => "N",
            1082 | 1083 | 1114 | 1184 | 1266 => "D",
            1186 => "T",
            17 | crate::sql::types::VARBYTE_OID => "U",
            _ => "S",
        },
    };
    let io = |t: &Type, suffix: &str| match t.kind() {
        postgres_types::Kind::Array(_) => format!("array_{suffix}"),
        _ => format!("{}{suffix}", t.name()),
    };
    let n = types.len();
    Cols::default()
        .oid("oid", types.iter().map(Type::oid).collect())
        .text(
            "typname",
            types.iter().map(|t| t.name().to_string()).collect(),
        )
        .oid("typnamespace", vec![PG_CATALOG_OID; n])
        .oid("typowner", vec![RDSDB.1; n])
        .int2("typlen", types.iter().map(|t| type_len(t.oid())).collect())
        .bool(
            "typbyval",
            types
                .iter()
                .map(|t| (1..=8).contains(&type_len(t.oid())))
                .collect(),
        )
        .text("typtype", types.iter().map(kind).collect())
        .text("typcategory", types.iter().map(category).collect())
        .bool(
            "typispreferred",
            types
                .iter()
                .map(|t| matches!(t.oid(), 25 | 701 | 1184 | 26))
                .collect(),
        )
        .bool("typisdefined", vec![true; n])
        .text("typdelim", vec![","; n])
        .oid("typrelid", vec![0; n])
        .oid("typelem", types.iter().map(elem).collect())
        .oid("typarray", types.iter().map(array_of).collect())
        .text("typinput", types.iter().map(|t| io(t, "in")).collect())
        .text("typoutput", types.iter().map(|t| io(t, "out")).collect())
        .text("typreceive", types.iter().map(|t| io(t, "recv")).collect())
        .text("typsend", types.iter().map(|t| io(t, "send")).collect())
        .text(
            "typalign",
            types
                .iter()
                .map(|t| if type_len(t.oid()) == 8 { "d" } else { "i" })
                .collect(),
        )
        .text(
            "typstorage",
            types
                .iter()
                .map(|t| if type_len(t.oid()) < 0 { "x" } else { "p" })
                .collect(),
        )
        .bool("typnotnull", vec![false; n])
        .oid("typbasetype", vec![0; n])
        .int4("typtypmod", vec![-1; n])
        .int4("typndims", vec![0; n])
        .oid(
            "typcollation",
            types
                .iter()
                .map(|t| {
                    if matches!(t.oid(), 19 | 25 | 1042 | 1043) {
                        DEFAULT_COLLATION_OID
                    } else {
                        0
                    }
                })
                .collect(),
        )
        .text_nulls("typdefault", n)
        .text_list_nulls("typacl", n)
        .batch()
}

/// `datacl`: the database's aclitems (None while nothing was granted).
pub(super) fn pg_database(datacl: Option<Vec<Option<String>>>) -> RecordBatch {
    Cols::default()
        .oid("oid", vec![DATABASE_OID])
        .text("datname", vec![DATABASE])
        .oid("datdba", vec![RDSDB.1])
        .int4("encoding", vec![UTF8_ENCODING])
        .text("datcollate", vec!["C"])
        .text("datctype", vec!["C"])
        .bool("datistemplate", vec![false])
        .bool("datallowconn", vec![true])
        .int4("datconnlimit", vec![-1])
        .oid("dattablespace", vec![1663])
        .text_lists("datacl", vec![datacl])
        .batch()
}

pub(super) fn pg_tablespace() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![1663, 1664])
        .text("spcname", vec!["pg_default", "pg_global"])
        .oid("spcowner", vec![RDSDB.1, RDSDB.1])
        .text_list_nulls("spcacl", 2)
        .text_list_nulls("spcoptions", 2)
        .batch()
}

/// Basalt has no user-defined functions; `pg_proc` lists none, with the columns both old
/// (`proisagg`, `proiswindow`) and new (`prokind`) clients read.
pub(super) fn pg_proc() -> RecordBatch {
    let e = || Vec::<String>::new();
    Cols::default()
        .oid("oid", vec![])
        .text("proname", e())
        .oid("pronamespace", vec![])
        .oid("proowner", vec![])
        .oid("prolang", vec![])
        .float4("procost", vec![])
        .float4("prorows", vec![])
        .oid("provariadic", vec![])
        .text("prokind", e())
        .bool("proisagg", vec![])
        .bool("proiswindow", vec![])
        .bool("prosecdef", vec![])
        .bool("proleakproof", vec![])
        .bool("proisstrict", vec![])
        .bool("proretset", vec![])
        .text("provolatile", e())
        .text("proparallel", e())
        .int2("pronargs", vec![])
        .int2("pronargdefaults", vec![])
        .oid("prorettype", vec![])
        .oid_list_nulls("proargtypes", 0)
        .oid_list_nulls("proallargtypes", 0)
        .text_list_nulls("proargmodes", 0)
        .text_list_nulls("proargnames", 0)
        .text("prosrc", e())
        .text("probin", e())
        .text_list_nulls("proconfig", 0)
        .text_list_nulls("proacl", 0)
        .batch()
}

pub(super) fn pg_language() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![12, 13, 14])
        .text("lanname", vec!["internal", "c", "sql"])
        .oid("lanowner", vec![RDSDB.1; 3])
        .bool("lanispl", vec![false; 3])
        .bool("lanpltrusted", vec![false, false, true])
        .batch()
}

pub(super) fn pg_collation() -> RecordBatch {
    Cols::default()
        .oid("oid", vec![DEFAULT_COLLATION_OID, 950, 951])
        .text("collname", vec!["default", "C", "POSIX"])
        .oid("collnamespace", vec![PG_CATALOG_OID; 3])
        .oid("collowner", vec![RDSDB.1; 3])
        .text("collprovider", vec!["d", "c", "c"])
        .bool("collisdeterministic", vec![true; 3])
        .int4("collencoding", vec![-1; 3])
        .text_opt("collcollate", vec![None, Some("C"), Some("POSIX")])
        .text_opt("collctype", vec![None, Some("C"), Some("POSIX")])
        .batch()
}

/// Settings clients look up in `pg_settings` or with `current_setting()`.
pub(super) const SETTINGS: &[(&str, &str, &str)] = &[
    ("server_version", "8.0.2", "string"),
    ("server_encoding", "UNICODE", "string"),
    ("client_encoding", "UTF8", "string"),
    ("DateStyle", "ISO, MDY", "string"),
    ("TimeZone", "UTC", "string"),
    ("search_path", "$user, public", "string"),
    ("standard_conforming_strings", "off", "bool"),
    ("integer_datetimes", "on", "bool"),
    ("max_index_keys", "32", "integer"),
    ("max_identifier_length", "127", "integer"),
    ("default_table_access_method", "heap", "string"),
    ("transaction_isolation", "serializable", "string"),
];

pub(super) fn pg_settings() -> RecordBatch {
    let n = SETTINGS.len();
    Cols::default()
        .text("name", SETTINGS.iter().map(|s| s.0).collect())
        .text("setting", SETTINGS.iter().map(|s| s.1).collect())
        .text_nulls("unit", n)
        .text("category", vec!["Client Connection Defaults"; n])
        .text("short_desc", vec![""; n])
        .text("context", vec!["user"; n])
        .text("vartype", SETTINGS.iter().map(|s| s.2).collect())
        .text("source", vec!["default"; n])
        .text("boot_val", SETTINGS.iter().map(|s| s.1).collect())
        .text("reset_val", SETTINGS.iter().map(|s| s.1).collect())
        .batch()
}
