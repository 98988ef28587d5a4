//! The catalog functions clients call: `format_type`, `pg_table_is_visible`,
//! `current_schemas`, `pg_get_expr`, the privilege checks, `pg_size_pretty`, … and the
//! session facts they answer from ([`SessionInfo`]).

use super::builtin::{SETTINGS, TYPES};
use super::relations::ENCODINGS;
use super::*;
use crate::catalog::privileges;
use crate::catalog::{Privilege, Securable};

/// What the catalog functions of one statement know about its session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// `current_user`.
    pub user: String,
    /// `session_user` (differs from `current_user` after SET ROLE).
    pub session_user: String,
    /// `search_path` as set (`$user, public` by default).
    pub search_path: String,
    pub pid: i32,
}

pub(super) static NEXT_PID: AtomicI32 = AtomicI32::new(1);

/// A process-unique number for a new session (`pg_backend_pid()`).
pub fn next_backend_pid() -> i32 {
    std::process::id() as i32 % 10_000 * 10_000 + NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

impl SessionInfo {
    /// The schemas of the search path that exist, in order (`$user` is the user's name).
    fn schemas(&self, view: &CatalogState) -> Vec<String> {
        self.search_path
            .split(',')
            .map(|s| s.trim().trim_matches('"').trim_matches('\''))
            .map(|s| if s == "$user" { self.user.as_str() } else { s })
            .filter(|s| view.schemas.contains(*s))
            .map(str::to_string)
            .collect()
    }
}

type Body = dyn Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync;

/// A catalog function: a name, the argument counts it takes (any types) and a body over
/// whole argument columns.
pub(super) struct PgFn {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Arc<Body>,
}

impl std::fmt::Debug for PgFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for PgFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for PgFn {}

impl Hash for PgFn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        Ok(ColumnarValue::Array((self.body)(&arrays, rows)?))
    }
}

pub(super) fn udf(
    name: &'static str,
    arities: &[usize],
    returns: DataType,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    // No arities: any number of arguments.
    let signature = if arities.is_empty() {
        Signature::variadic_any(Volatility::Stable)
    } else {
        let sigs = arities
            .iter()
            .map(|n| match n {
                0 => TypeSignature::Nullary,
                n => TypeSignature::Any(*n),
            })
            .collect();
        Signature::one_of(sigs, Volatility::Stable)
    };
    ScalarUDF::new_from_impl(PgFn {
        name,
        signature,
        returns,
        body: Arc::new(body),
    })
}

/// The list form of `information_schema._pg_expandarray(a)`, PostgreSQL's set-returning
/// function giving each element `x` of an array with its 1-based position `n`; a query's
/// call becomes `unnest(<this>(a))`. pgjdbc's getPrimaryKeys calls it on `pg_index.indkey`;
/// the arrays it is used with hold integers (attribute numbers), read here as int4.
pub(super) const EXPANDARRAY: &str = "pg_expandarray_rows";

pub(super) fn expanded_element_type() -> DataType {
    DataType::Struct(
        vec![
            Field::new("x", DataType::Int32, true),
            Field::new("n", DataType::Int32, false),
        ]
        .into(),
    )
}

pub(super) fn expand_array(array: &ArrayRef) -> Result<ArrayRef> {
    let list_type = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
    let list = cast(array, &list_type)?;
    let list = list
        .as_any()
        .downcast_ref::<ListArray>()
        .expect("cast to a list");
    let offsets = list.offsets();
    let mut positions = vec![0i32; list.values().len()];
    for w in offsets.windows(2) {
        for (k, i) in (w[0] as usize..w[1] as usize).enumerate() {
            positions[i] = k as i32 + 1;
        }
    }
    let DataType::Struct(fields) = expanded_element_type() else {
        unreachable!("a struct type")
    };
    let rows = datafusion::arrow::array::StructArray::try_new(
        fields,
        vec![list.values().clone(), Arc::new(Int32Array::from(positions))],
        None,
    )?;
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(expanded_element_type(), true)),
        offsets.clone(),
        Arc::new(rows),
        list.nulls().cloned(),
    )?))
}

/// Argument `i` as Int64 / Utf8 values (NULL where absent or not convertible).
pub(super) fn ints(args: &[ArrayRef], i: usize, rows: usize) -> Result<Vec<Option<i64>>> {
    let Some(a) = args.get(i) else {
        return Ok(vec![None; rows]);
    };
    let a = cast(a, &DataType::Int64)?;
    let a = a
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("cast to Int64");
    Ok(a.iter().collect())
}

pub(super) fn strs(args: &[ArrayRef], i: usize, rows: usize) -> Result<Vec<Option<String>>> {
    let Some(a) = args.get(i) else {
        return Ok(vec![None; rows]);
    };
    let a = cast(a, &DataType::Utf8)?;
    let a = a
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8");
    Ok(a.iter().map(|s| s.map(str::to_string)).collect())
}

/// A one-argument function naming an integer code (NULL stays NULL).
pub(super) fn code_name(name: &'static str, name_of: fn(i64) -> &'static str) -> ScalarUDF {
    udf(name, &[1], DataType::Utf8, move |args, rows| {
        Ok(text_array(
            ints(args, 0, rows)?
                .into_iter()
                .map(|e| e.map(|e| name_of(e).to_string()))
                .collect(),
        ))
    })
}

pub(super) fn text_array(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

pub(super) fn sql_error(e: crate::error::LeaderError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Register the catalog functions for one statement over `view`.
pub fn register_functions(
    state: &mut SessionState,
    view: Arc<CatalogState>,
    session: SessionInfo,
    system: Arc<crate::system::SystemTables>,
) -> Result<()> {
    let session = Arc::new(session);
    let mut fns: Vec<ScalarUDF> = vec![];
    let constant = |name: &'static str, value: ScalarValue| {
        let dt = value.data_type();
        udf(name, &[0], dt, move |_, rows| value.to_array_of_size(rows))
    };
    fns.push(constant(
        "current_database",
        ScalarValue::Utf8(Some(DATABASE.into())),
    ));
    for name in ["current_user", "user"] {
        fns.push(constant(
            name,
            ScalarValue::Utf8(Some(session.user.clone())),
        ));
    }
    fns.push(constant(
        "session_user",
        ScalarValue::Utf8(Some(session.session_user.clone())),
    ));
    // Redshift's `current_user_id`: the user's usesysid, as pg_user shows it.
    fns.push(constant(
        "current_user_id",
        ScalarValue::Int32(Some(super::user_oid(&session.user) as i32)),
    ));
    fns.push(constant(
        "pg_backend_pid",
        ScalarValue::Int32(Some(session.pid)),
    ));
    let path = session.schemas(&view);
    fns.push(constant(
        "current_schema",
        ScalarValue::Utf8(path.first().cloned()),
    ));
    {
        let path = path.clone();
        fns.push(udf(
            "current_schemas",
            &[1],
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            move |args, rows| {
                let implicit = args[0]
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .map(|b| b.iter().collect::<Vec<_>>())
                    .unwrap_or_else(|| vec![Some(false); rows]);
                let mut values: Vec<String> = vec![];
                let mut offsets = vec![0i32];
                for implicit in implicit {
                    if implicit == Some(true) {
                        values.push("pg_catalog".into());
                    }
                    values.extend(path.iter().cloned());
                    offsets.push(values.len() as i32);
                }
                Ok(Arc::new(ListArray::new(
                    Arc::new(Field::new_list_field(DataType::Utf8, true)),
                    OffsetBuffer::new(offsets.into()),
                    Arc::new(StringArray::from(values)),
                    None,
                )))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "pg_get_userbyid",
            &[1],
            DataType::Utf8,
            move |args, rows| {
                let users: Vec<(String, u32)> = std::iter::once((RDSDB.0.to_string(), RDSDB.1))
                    .chain(view.users.keys().map(|u| (u.clone(), user_oid(u))))
                    .collect();
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .map(|id| {
                            id.map(|id| {
                                users
                                    .iter()
                                    .find(|u| i64::from(u.1) == id)
                                    .map_or_else(|| format!("unknown (OID={id})"), |u| u.0.clone())
                            })
                        })
                        .collect(),
                ))
            },
        ));
    }
    {
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "pg_table_is_visible",
            &[1],
            DataType::Boolean,
            move |args, rows| {
                let out: BooleanArray = ints(args, 0, rows)?
                    .into_iter()
                    .map(|oid| {
                        let oid = oid?;
                        if RELATIONS.iter().any(|r| i64::from(r.1) == oid) {
                            return Some(true);
                        }
                        let (schema, name) = view
                            .tables
                            .values()
                            .find(|t| i64::from(table_oid(t)) == oid)
                            .map(|t| (&t.schema, &t.name))
                            .or_else(|| {
                                view.views
                                    .values()
                                    .find(|v| i64::from(view_oid(v)) == oid)
                                    .map(|v| (&v.schema, &v.name))
                            })?;
                        // Visible when its schema is the first on the path with that name.
                        let first = path.iter().find(|s| view.relation(s, name).is_some());
                        Some(first == Some(schema))
                    })
                    .collect();
                Ok(Arc::new(out))
            },
        ));
    }
    for name in [
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
    ] {
        fns.push(udf(name, &[1], DataType::Boolean, |args, _| {
            let out: BooleanArray = (0..args[0].len())
                .map(|i| (!args[0].is_null(i)).then_some(true))
                .collect();
            Ok(Arc::new(out))
        }));
    }
    fns.push(udf("format_type", &[2], DataType::Utf8, |args, rows| {
        let oids = ints(args, 0, rows)?;
        let mods = ints(args, 1, rows)?;
        Ok(text_array(
            oids.into_iter()
                .zip(mods)
                .map(|(oid, m)| oid.map(|oid| format_type(oid as u32, m.unwrap_or(-1) as i32)))
                .collect(),
        ))
    }));
    // `adbin`, `indpred`, … hold the expression's text already.
    fns.push(udf("pg_get_expr", &[2, 3], DataType::Utf8, |args, rows| {
        Ok(text_array(strs(args, 0, rows)?))
    }));
    {
        // `obj_description(oid [, catalog])`: only relations (pg_class) have comments.
        let view = view.clone();
        fns.push(udf(
            "obj_description",
            &[1, 2],
            DataType::Utf8,
            move |args, rows| {
                let catalogs = if args.len() == 2 {
                    strs(args, 1, rows)?
                } else {
                    vec![Some("pg_class".into()); rows]
                };
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .zip(catalogs)
                        .map(|(oid, catalog)| {
                            let oid = u64::try_from(oid?).ok()?;
                            (catalog.as_deref() == Some("pg_class"))
                                .then(|| view.comments.get(&(oid, 0)).cloned())
                                .flatten()
                        })
                        .collect(),
                ))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "col_description",
            &[2],
            DataType::Utf8,
            move |args, rows| {
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .zip(ints(args, 1, rows)?)
                        .map(|(oid, column)| {
                            let key = (u64::try_from(oid?).ok()?, u32::try_from(column?).ok()?);
                            view.comments.get(&key).cloned()
                        })
                        .collect(),
                ))
            },
        ));
    }
    {
        // `pg_get_viewdef(oid | name [, pretty])`.
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "pg_get_viewdef",
            &[1, 2],
            DataType::Utf8,
            move |args, rows| {
                let oids: Vec<Option<i64>> = if args[0].data_type().is_integer() {
                    ints(args, 0, rows)?
                } else {
                    strs(args, 0, rows)?
                        .into_iter()
                        .map(|n| {
                            n.map(|n| resolve_relation(&view, &path, &n).map(i64::from))
                                .transpose()
                        })
                        .collect::<crate::error::Result<_>>()
                        .map_err(sql_error)?
                };
                Ok(text_array(
                    oids.into_iter()
                        .map(|oid| {
                            let oid = u64::try_from(oid?).ok()?;
                            view.views.get(&oid).map(|v| v.definition())
                        })
                        .collect(),
                ))
            },
        ));
    }
    // `pg_get_constraintdef(oid [, pretty])` and `pg_get_indexdef(oid [, column, pretty])`
    // (column 0: the whole CREATE INDEX; column k: the k-th key column's name).
    for (name, index) in [("pg_get_constraintdef", false), ("pg_get_indexdef", true)] {
        let view = view.clone();
        let arities: &[usize] = if index { &[1, 3] } else { &[1, 2] };
        fns.push(udf(name, arities, DataType::Utf8, move |args, rows| {
            let oids = ints(args, 0, rows)?;
            let column = if index && args.len() == 3 {
                ints(args, 1, rows)?
            } else {
                vec![Some(0); rows]
            };
            Ok(text_array(
                oids.into_iter()
                    .zip(column)
                    .map(|(oid, column)| {
                        let c = constraint_by_oid(&view, u32::try_from(oid?).ok()?, index)?;
                        if !index {
                            return Some(crate::catalog::constraints::definition(c, &view));
                        }
                        match column? {
                            0 => Some(crate::catalog::constraints::index_definition(c, &view)),
                            k => {
                                let stored = c.columns.get(usize::try_from(k - 1).ok()?)?;
                                view.tables
                                    .get(&c.table)?
                                    .columns
                                    .iter()
                                    .find(|col| &col.stored == stored)
                                    .map(|col| col.name.clone())
                            }
                        }
                    })
                    .collect(),
            ))
        }));
    }
    // Basalt keeps no shared-object comments or functions: these describe nothing and
    // answer NULL, as PostgreSQL does for an object without one.
    for (name, arities) in [
        ("shobj_description", &[2usize][..]),
        ("pg_get_function_result", &[1][..]),
        ("pg_get_function_arguments", &[1][..]),
        ("pg_get_serial_sequence", &[2][..]),
    ] {
        fns.push(udf(name, arities, DataType::Utf8, |_, rows| {
            Ok(new_null_array(&DataType::Utf8, rows))
        }));
    }
    fns.push(udf(
        "pg_tablespace_location",
        &[1],
        DataType::Utf8,
        |_, rows| Ok(text_array(vec![Some(String::new()); rows])),
    ));
    // `format_encoding(attencodingtype)`: the encoding's name, 'none' for RAW as Redshift
    // prints it (sqlalchemy-redshift's column reflection reads it).
    fns.push(code_name("format_encoding", |e| match e {
        0 => "none",
        e => usize::try_from(e)
            .ok()
            .and_then(|e| ENCODINGS.get(e))
            .copied()
            .unwrap_or(""),
    }));
    fns.push(code_name("pg_encoding_to_char", |e| match e {
        0 => "SQL_ASCII",
        6 => "UTF8",
        _ => "",
    }));
    // `has_table_privilege([user,] table, 'select[, insert …]')` and its schema and
    // database siblings answer from the catalog's grants, for the session's user or the
    // one named. Catalog and system relations are readable by everyone.
    // `has_column_privilege([user,] table, column, privilege)` answers for the column:
    // its own grants or its table's.
    for name in [
        "has_table_privilege",
        "has_column_privilege",
        "has_schema_privilege",
        "has_database_privilege",
    ] {
        let view = view.clone();
        let path = path.clone();
        let session = session.clone();
        let system = system.clone();
        let column_arg = usize::from(name == "has_column_privilege");
        let arities = [2 + column_arg, 3 + column_arg];
        fns.push(udf(name, &arities, DataType::Boolean, move |args, rows| {
            let named_user = args.len() == 3 + column_arg;
            let users = if named_user {
                strs(args, 0, rows)?
            } else {
                vec![Some(session.user.clone()); rows]
            };
            let at = usize::from(named_user);
            let objects = strs(args, at, rows)?;
            let oids = ints(args, at, rows).unwrap_or_else(|_| vec![None; rows]);
            let columns = if column_arg == 1 {
                strs(args, at + 1, rows)?
            } else {
                vec![None; rows]
            };
            let wanted = strs(args, at + 1 + column_arg, rows)?;
            let mut out = Vec::with_capacity(rows);
            for i in 0..rows {
                let (Some(user), Some(object), Some(wanted)) = (&users[i], &objects[i], &wanted[i])
                else {
                    out.push(None);
                    continue;
                };
                // Every user may connect to the one database.
                if name == "has_database_privilege"
                    && wanted
                        .to_ascii_uppercase()
                        .split(',')
                        .any(|w| w.trim() == "CONNECT")
                {
                    out.push(Some(true));
                    continue;
                }
                let privileges = privileges_named(wanted).map_err(sql_error)?;
                let on = match name {
                    "has_table_privilege" | "has_column_privilege" => {
                        let oid = match oids[i] {
                            Some(oid) => oid as u32,
                            None if system.is_cluster_table(&object.to_lowercase()) => {
                                out.push(Some(true));
                                continue;
                            }
                            None => resolve_relation(&view, &path, object).map_err(sql_error)?,
                        };
                        let id = u64::from(oid);
                        if let (Some(column), Some(t)) = (&columns[i], view.tables.get(&id))
                            && !t.columns.iter().any(|c| c.name == column.to_lowercase())
                        {
                            return Err(sql_error(sql_err!(
                                code::UNDEFINED_COLUMN,
                                "column \"{column}\" of relation \"{}\" does not exist",
                                t.name
                            )));
                        }
                        let schema = view
                            .tables
                            .get(&id)
                            .map(|t| t.schema.clone())
                            .or_else(|| view.views.get(&id).map(|v| v.schema.clone()));
                        match schema {
                            Some(s) => {
                                if !privileges::holds(
                                    &view,
                                    user,
                                    &Securable::Schema(s),
                                    Privilege::Usage,
                                ) {
                                    out.push(Some(false));
                                    continue;
                                }
                                match (&columns[i], view.tables.get(&id)) {
                                    (Some(c), Some(t)) => {
                                        let c = c.to_lowercase();
                                        let stored = t
                                            .columns
                                            .iter()
                                            .find(|col| col.name == c)
                                            .map_or(c.clone(), |col| col.stored.clone());
                                        Securable::Column(id, stored)
                                    }
                                    (Some(c), None) => Securable::Column(id, c.to_lowercase()),
                                    _ => Securable::Relation(id),
                                }
                            }
                            None => {
                                out.push(Some(true));
                                continue;
                            }
                        }
                    }
                    "has_schema_privilege" => {
                        let s = object.to_lowercase();
                        if ["pg_catalog", "information_schema"].contains(&s.as_str()) {
                            out.push(Some(true));
                            continue;
                        }
                        Securable::Schema(s)
                    }
                    _ => Securable::Database,
                };
                out.push(Some(
                    privileges
                        .iter()
                        .any(|p| privileges::holds(&view, user, &on, *p)),
                ));
            }
            Ok(Arc::new(BooleanArray::from(out)))
        }));
    }
    {
        let view = view.clone();
        let path = path.clone();
        fns.push(udf(
            "regclass_oid",
            &[1],
            DataType::UInt32,
            move |args, rows| {
                if args[0].data_type().is_integer() {
                    return cast(&args[0], &DataType::UInt32).map_err(Into::into);
                }
                let mut out = Vec::with_capacity(rows);
                for name in strs(args, 0, rows)? {
                    out.push(match name {
                        None => None,
                        Some(n) => Some(resolve_relation(&view, &path, &n).map_err(sql_error)?),
                    });
                }
                Ok(Arc::new(UInt32Array::from(out)))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "regclass_name",
            &[1],
            DataType::Utf8,
            move |args, rows| {
                let cat = Snapshot::new(&view);
                Ok(text_array(
                    ints(args, 0, rows)?
                        .into_iter()
                        .map(|oid| {
                            let oid = oid?;
                            let name = RELATIONS
                                .iter()
                                .find(|r| i64::from(r.1) == oid)
                                .map(|r| r.0.to_string())
                                .or_else(|| {
                                    cat.relations()
                                        .find(|r| r.0 as i64 == oid)
                                        .map(|r| r.2.to_string())
                                });
                            Some(name.unwrap_or_else(|| oid.to_string()))
                        })
                        .collect(),
                ))
            },
        ));
    }
    fns.push(udf("regtype_oid", &[1], DataType::UInt32, |args, rows| {
        if args[0].data_type().is_integer() {
            return cast(&args[0], &DataType::UInt32).map_err(Into::into);
        }
        let mut out = Vec::with_capacity(rows);
        for name in strs(args, 0, rows)? {
            out.push(match name {
                None => None,
                Some(n) => Some(resolve_type(&n).map_err(sql_error)?),
            });
        }
        Ok(Arc::new(UInt32Array::from(out)))
    }));
    let search_path = session.search_path.clone();
    fns.push(udf(
        "current_setting",
        &[1, 2],
        DataType::Utf8,
        move |args, rows| {
            let mut out = Vec::with_capacity(rows);
            for name in strs(args, 0, rows)? {
                out.push(match name {
                    None => None,
                    // The search path is the session's own; the rest are fixed.
                    Some(n) if n.eq_ignore_ascii_case("search_path") => Some(search_path.clone()),
                    Some(n) => Some(
                        SETTINGS
                            .iter()
                            .find(|s| s.0.eq_ignore_ascii_case(&n))
                            .map(|s| s.1.to_string())
                            .ok_or_else(|| {
                                sql_error(sql_err!(
                                    code::UNDEFINED_OBJECT,
                                    "unrecognized configuration parameter \"{n}\""
                                ))
                            })?,
                    ),
                });
            }
            Ok(text_array(out))
        },
    ));
    {
        let view = view.clone();
        fns.push(udf(
            "pg_table_size",
            &[1],
            DataType::Int64,
            move |args, rows| {
                let out: Int64Array = ints(args, 0, rows)?
                    .into_iter()
                    .map(|oid| {
                        let oid = oid?;
                        Some(
                            view.tables
                                .values()
                                .find(|t| i64::from(table_oid(t)) == oid)
                                .map_or(0, |t| t.segments.iter().map(|s| s.bytes as i64).sum()),
                        )
                    })
                    .collect();
                Ok(Arc::new(out))
            },
        ));
    }
    {
        let view = view.clone();
        fns.push(udf(
            "pg_database_size",
            &[1],
            DataType::Int64,
            move |_, rows| {
                let total: u64 = view
                    .tables
                    .values()
                    .flat_map(|t| t.segments.iter().map(|s| s.bytes))
                    .sum();
                Ok(Arc::new(Int64Array::from(vec![total as i64; rows])))
            },
        ));
    }
    fns.push(udf(
        "prefix_elements",
        &[2],
        DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        |args, rows| {
            let prefixes = strs(args, 1, rows)?;
            let list = cast(
                &args[0],
                &DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            )?;
            let list = list
                .as_any()
                .downcast_ref::<ListArray>()
                .expect("cast to List");
            let mut values: Vec<Option<String>> = vec![];
            let mut offsets = vec![0i32];
            for (row, prefix) in prefixes.iter().enumerate() {
                if !list.is_null(row) {
                    let items = list.value(row);
                    let items = items
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("Utf8 items");
                    values.extend(
                        items
                            .iter()
                            .map(|v| v.zip(prefix.as_deref()).map(|(v, p)| format!("{p}{v}"))),
                    );
                }
                offsets.push(values.len() as i32);
            }
            Ok(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(DataType::Utf8, true)),
                OffsetBuffer::new(offsets.into()),
                Arc::new(StringArray::from(values)),
                None,
            )))
        },
    ));
    fns.push(udf(
        "json_build_object",
        &[],
        DataType::Utf8,
        |args, rows| {
            if args.len() % 2 != 0 {
                return Err(sql_error(sql_err!(
                    code::INVALID_PARAMETER_VALUE,
                    "argument list must have even number of elements"
                )));
            }
            let texts = (0..args.len())
                .map(|i| strs(args, i, rows))
                .collect::<Result<Vec<_>>>()?;
            let mut objects = vec![serde_json::Map::new(); rows];
            for pair in (0..args.len()).step_by(2) {
                let values = texts[pair].iter().zip(&texts[pair + 1]);
                for (object, (key, value)) in objects.iter_mut().zip(values) {
                    let key = key.clone().ok_or_else(|| {
                        sql_error(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "argument {} cannot be null",
                            pair + 1
                        ))
                    })?;
                    let value = match (value, args[pair + 1].data_type()) {
                        (None, _) => serde_json::Value::Null,
                        (Some(v), DataType::Boolean) => serde_json::Value::Bool(v == "true"),
                        (Some(v), t) if t.is_numeric() => {
                            serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.clone()))
                        }
                        (Some(v), _) => serde_json::Value::String(v.clone()),
                    };
                    object.insert(key, value);
                }
            }
            let out = objects
                .into_iter()
                .map(|o| Some(serde_json::Value::Object(o).to_string()))
                .collect();
            Ok(text_array(out))
        },
    ));
    fns.push(udf(
        EXPANDARRAY,
        &[1],
        DataType::List(Arc::new(Field::new_list_field(
            expanded_element_type(),
            true,
        ))),
        |args, _| expand_array(&args[0]),
    ));
    fns.push(udf("pg_size_pretty", &[1], DataType::Utf8, |args, rows| {
        Ok(text_array(
            ints(args, 0, rows)?
                .into_iter()
                .map(|b| b.map(size_pretty))
                .collect(),
        ))
    }));
    for f in fns {
        state.register_udf(Arc::new(f))?;
    }
    register_function_privilege(state, session)?;
    Ok(())
}

/// `has_function_privilege([user,] 'f(args)', 'execute')`: every function Basalt has is
/// built in, and EXECUTE on a built-in is everyone's, as PostgreSQL grants it to PUBLIC;
/// a function that does not exist is an error, as there.
fn register_function_privilege(state: &mut SessionState, session: Arc<SessionInfo>) -> Result<()> {
    // Every statement's session has the same functions: their names are gathered once.
    static KNOWN: std::sync::OnceLock<Arc<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let known = KNOWN
        .get_or_init(|| {
            Arc::new(
                state
                    .scalar_functions()
                    .keys()
                    .chain(state.aggregate_functions().keys())
                    .chain(state.window_functions().keys())
                    .map(|k| k.to_lowercase())
                    .collect(),
            )
        })
        .clone();
    let f = udf(
        "has_function_privilege",
        &[2, 3],
        DataType::Boolean,
        move |args, rows| {
            let at = usize::from(args.len() == 3);
            let users = if at == 1 {
                strs(args, 0, rows)?
            } else {
                vec![Some(session.user.clone()); rows]
            };
            let functions = strs(args, at, rows)?;
            let wanted = strs(args, at + 1, rows)?;
            let mut out = Vec::with_capacity(rows);
            for i in 0..rows {
                let (Some(_), Some(function), Some(wanted)) =
                    (&users[i], &functions[i], &wanted[i])
                else {
                    out.push(None);
                    continue;
                };
                let name = function
                    .split('(')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_lowercase();
                let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                if !known.contains(name) {
                    return Err(sql_error(sql_err!(
                        code::UNDEFINED_FUNCTION,
                        "function \"{function}\" does not exist"
                    )));
                }
                for word in wanted.split(',') {
                    let word = word.trim().to_ascii_uppercase();
                    let word = word.trim_end_matches(" WITH GRANT OPTION").trim();
                    if word != "EXECUTE" {
                        return Err(sql_error(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "unrecognized privilege type: \"{word}\""
                        )));
                    }
                }
                out.push(Some(true));
            }
            Ok(Arc::new(BooleanArray::from(out)))
        },
    );
    state.register_udf(Arc::new(f))?;
    Ok(())
}

/// The OID of relation `name` (`rel` or `schema.rel`, either part quoted), looked up on
/// the search path like PostgreSQL's `regclass` input.
pub(super) fn resolve_relation(
    view: &CatalogState,
    path: &[String],
    name: &str,
) -> crate::error::Result<u32> {
    let parts: Vec<String> = name
        .split('.')
        .map(|p| {
            if p.starts_with('"') {
                p.trim_matches('"').to_string()
            } else {
                p.to_lowercase()
            }
        })
        .collect();
    let (schema, rel) = match parts.as_slice() {
        [r] => (None, r.as_str()),
        [s, r] => (Some(s.as_str()), r.as_str()),
        _ => {
            return Err(sql_err!(
                code::INVALID_PARAMETER_VALUE,
                "invalid name syntax"
            ));
        }
    };
    let catalog = || RELATIONS.iter().find(|r| r.0 == rel).map(|r| r.1);
    let found = match schema {
        Some("pg_catalog") => catalog(),
        Some(s) => view.relation(s, rel).map(|r| r.id() as u32),
        None => catalog().or_else(|| {
            path.iter()
                .find_map(|s| view.relation(s, rel).map(|r| r.id() as u32))
        }),
    };
    found.ok_or_else(|| sql_err!(code::UNDEFINED_TABLE, "relation \"{name}\" does not exist"))
}

/// The OID of type `name` as `regtype` input accepts it.
pub(super) fn resolve_type(name: &str) -> crate::error::Result<u32> {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
    let oid = match SqlType::parse(n) {
        Ok(t) => Some(t.pg_type().oid()),
        Err(_) => TYPES
            .iter()
            .copied()
            .find(|o| Type::from_oid(*o).is_some_and(|t| t.name() == n)),
    };
    oid.ok_or_else(|| sql_err!(code::UNDEFINED_OBJECT, "type \"{name}\" does not exist"))
}

/// PostgreSQL's `format_type(oid, typmod)`: the types Basalt stores are named by
/// [`SqlType::display_name`], with their modifier when one is given.
pub fn format_type(oid: u32, typmod: i32) -> String {
    let m = (typmod >= 4).then(|| typmod - 4);
    let stored = match oid {
        21 => Some(SqlType::SmallInt),
        23 => Some(SqlType::Integer),
        20 => Some(SqlType::BigInt),
        700 => Some(SqlType::Real),
        701 => Some(SqlType::Double),
        16 => Some(SqlType::Boolean),
        1082 => Some(SqlType::Date),
        1114 => Some(SqlType::Timestamp),
        1184 => Some(SqlType::Timestamptz),
        1083 => Some(SqlType::Time),
        1042 => m.map(|n| SqlType::Char(n as u32)),
        1043 => m.map(|n| SqlType::Varchar(n as u32)),
        crate::sql::types::VARBYTE_OID => m.map(|n| SqlType::Varbyte(n as u32)),
        1700 => m.map(|m| SqlType::Decimal {
            precision: (m >> 16) as u8,
            scale: (m & 0xffff) as i8,
        }),
        _ => None,
    };
    if let Some(t) = stored {
        return t.display_name();
    }
    match oid {
        1042 => "character".into(),
        1043 => "character varying".into(),
        1700 => "numeric".into(),
        crate::sql::types::VARBYTE_OID => "varbyte".into(),
        _ => match Type::from_oid(oid) {
            Some(t) => match t.kind() {
                postgres_types::Kind::Array(e) => format!("{}[]", format_type(e.oid(), typmod)),
                _ => t.name().to_string(),
            },
            None => "???".into(),
        },
    }
}

/// PostgreSQL's `pg_size_pretty(bigint)`.
pub(super) fn size_pretty(bytes: i64) -> String {
    let mut size = bytes;
    // Each unit is used while the value is below 10240 of it, rounding half up.
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if size.abs() < 10 * 1024 || unit == "TB" {
            return format!("{size} {unit}");
        }
        let next = size / 512;
        size = (next + next.signum()) / 2;
    }
    unreachable!("TB ends the loop")
}

// ---------------------------------------------------------------------------------------
// Rewrite

/// The privileges a `has_*_privilege` call asks about: `'select'`, `'SELECT, INSERT'`,
/// `'usage WITH GRANT OPTION'` (any one of them suffices, as in PostgreSQL).
fn privileges_named(text: &str) -> crate::error::Result<Vec<Privilege>> {
    text.split(',')
        .map(|word| {
            let word = word.trim().to_ascii_uppercase();
            let word = word.trim_end_matches(" WITH GRANT OPTION").trim();
            let word = if word == "TEMPORARY" { "TEMP" } else { word };
            Privilege::ALL
                .into_iter()
                .filter(|p| !p.is_system())
                .find(|p| p.keyword() == word)
                .ok_or_else(|| {
                    sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "unrecognized privilege type: \"{word}\""
                    )
                })
        })
        .collect()
}
