//! CREATE TABLE in Redshift's terms: turning the parsed statement (with the dialect
//! layer's column attributes and table attributes) into a [`TableDef`], with Redshift's
//! rules for DISTSTYLE/DISTKEY, [COMPOUND|INTERLEAVED] SORTKEY, ENCODE and IDENTITY.

use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, DistStyle as AstDistStyle, Expr, Ident, ObjectName,
};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::{ColumnDef, DistStyle, Identity, TableDef};
use crate::error::{Result, code};
use crate::sql::SortKind;
use crate::sql::names::{ident_name, split_name};
use crate::sql::parse::TableAttrs;
use crate::sql::types::SqlType;
use crate::sql_err;

/// Redshift's column encodings.
pub const ENCODINGS: &[&str] = &[
    "raw",
    "az64",
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
];

/// The distribution a DISTSTYLE (`KEY`, `EVEN`, `ALL`, `AUTO`) and a DISTKEY column give,
/// for CREATE TABLE and ALTER TABLE alike; `keyed` is the DISTKEY a KEY style without one
/// keeps (ALTER DISTSTYLE KEY on a table that has one).
pub fn dist_style(
    style: Option<&str>,
    distkey: Option<usize>,
    keyed: Option<usize>,
) -> Result<DistStyle> {
    Ok(match (style, distkey) {
        (None | Some("KEY"), Some(k)) => DistStyle::Key(k),
        (Some("KEY"), None) => DistStyle::Key(keyed.ok_or_else(|| {
            sql_err!(
                code::INVALID_TABLE_DEFINITION,
                "DISTSTYLE KEY requires a DISTKEY column"
            )
        })?),
        (Some(_), Some(_)) => {
            return Err(sql_err!(
                code::INVALID_TABLE_DEFINITION,
                "DISTKEY can only be used with DISTSTYLE KEY"
            ));
        }
        (Some("EVEN"), None) => DistStyle::Even,
        (Some("ALL"), None) => DistStyle::All,
        (Some(_) | None, None) => DistStyle::Auto,
    })
}

fn expr_column(e: &Expr) -> Result<String> {
    match e {
        Expr::Identifier(id) => Ok(ident_name(id)),
        other => Err(sql_err!(
            code::SYNTAX_ERROR,
            "expected a column name, found {other}"
        )),
    }
}

/// The encoding ENCODE AUTO picks for a column.
pub fn auto_encoding(ty: &SqlType, in_sort_key: bool) -> &'static str {
    if in_sort_key {
        return "raw";
    }
    match ty {
        SqlType::Boolean | SqlType::Real | SqlType::Double => "raw",
        SqlType::Char(_) | SqlType::Varchar(_) | SqlType::Varbyte(_) => "lzo",
        _ => "az64",
    }
}

/// Reject an unknown encoding, or one Redshift does not allow on the column's type, with
/// Redshift's error text.
pub fn check_encoding(column: &str, enc: &str, ty: &SqlType) -> Result<()> {
    if !ENCODINGS.contains(&enc) {
        return Err(sql_err!(
            code::UNDEFINED_OBJECT,
            "invalid encoding type specified for column \"{column}\""
        ));
    }
    if !encoding_allowed(enc, ty) {
        return Err(sql_err!(
            code::INVALID_TABLE_DEFINITION,
            "invalid encoding type specified for column \"{column}\": {} is not allowed on {}",
            enc.to_uppercase(),
            ty.display_name()
        ));
    }
    Ok(())
}

/// Whether Redshift allows encoding `enc` on type `ty`.
pub fn encoding_allowed(enc: &str, ty: &SqlType) -> bool {
    use SqlType::*;
    let int_like = matches!(ty, SmallInt | Integer | BigInt | Decimal { .. });
    if let Varbyte(_) = ty {
        return matches!(enc, "raw" | "lzo" | "zstd");
    }
    match enc {
        "raw" | "zstd" => true,
        "lzo" => !matches!(ty, Boolean | Real | Double),
        "az64" => int_like || matches!(ty, Date | Timestamp | Timestamptz | Time),
        "bytedict" => !matches!(ty, Boolean),
        "runlength" => true,
        "delta" | "delta32k" => int_like || matches!(ty, Date | Timestamp | Timestamptz),
        "mostly8" => matches!(ty, SmallInt | Integer | BigInt | Decimal { .. }),
        "mostly16" => matches!(ty, Integer | BigInt | Decimal { .. }),
        "mostly32" => matches!(ty, BigInt | Decimal { .. }),
        "text255" | "text32k" => matches!(ty, Varchar(_)),
        _ => false,
    }
}

/// Build the definition of a new table from `CREATE TABLE`.
pub fn table_def(ct: &CreateTable, attrs: &TableAttrs, id: u64, owner: &str) -> Result<TableDef> {
    let (schema, name) = split_name(&ct.name)?;
    if ct.columns.is_empty() {
        return Err(sql_err!(
            code::SYNTAX_ERROR,
            "a table must have at least one column"
        ));
    }
    let mut columns = Vec::with_capacity(ct.columns.len());
    let mut col_distkey = None;
    let mut col_sortkey = vec![];
    let mut explicit_encoding = vec![];
    for (i, c) in ct.columns.iter().enumerate() {
        let cname = ident_name(&c.name);
        if columns.iter().any(|x: &ColumnDef| x.name == cname) {
            return Err(sql_err!(
                code::DUPLICATE_COLUMN,
                "column \"{cname}\" specified more than once"
            ));
        }
        let sql_type = SqlType::parse(&c.data_type.to_string())?;
        let mut col = ColumnDef {
            name: cname.clone(),
            sql_type,
            nullable: true,
            default: None,
            identity: None,
            encoding: String::new(),
            stored: cname.clone(),
            missing: None,
        };
        let mut encoding = None;
        for opt in &c.options {
            match &opt.option {
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Null => col.nullable = true,
                ColumnOption::Default(e) => col.default = Some(e.to_string()),
                ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_) => {
                    // Informational only in Redshift.
                }
                ColumnOption::ForeignKey(_) => {}
                ColumnOption::DialectSpecific(tokens) => match tokens.as_slice() {
                    [Token::Word(w), Token::Word(e)] if w.value == "ENCODE" => {
                        encoding = Some(e.value.clone());
                    }
                    [Token::Word(w)] if w.value == "DISTKEY" => {
                        if col_distkey.replace(i).is_some() {
                            return Err(sql_err!(
                                code::INVALID_TABLE_DEFINITION,
                                "multiple DISTKEY columns are not allowed"
                            ));
                        }
                    }
                    [Token::Word(w)] if w.value == "SORTKEY" => col_sortkey.push(i),
                    [
                        Token::Word(w),
                        Token::Number(seed, _),
                        Token::Number(step, _),
                    ] if w.value == "IDENTITY" => {
                        let parse = |s: &str| {
                            s.parse::<i64>().map_err(|_| {
                                sql_err!(
                                    code::INVALID_PARAMETER_VALUE,
                                    "invalid IDENTITY value {s}"
                                )
                            })
                        };
                        let identity = Identity {
                            seed: parse(seed)?,
                            step: parse(step)?,
                        };
                        if identity.step == 0 {
                            return Err(sql_err!(
                                code::INVALID_PARAMETER_VALUE,
                                "IDENTITY step cannot be 0"
                            ));
                        }
                        if !matches!(
                            col.sql_type,
                            SqlType::SmallInt | SqlType::Integer | SqlType::BigInt
                        ) {
                            return Err(sql_err!(
                                code::INVALID_TABLE_DEFINITION,
                                "Identity column \"{cname}\" must be of type INT or BIGINT"
                            ));
                        }
                        col.identity = Some(identity);
                    }
                    other => {
                        return Err(sql_err!(
                            code::SYNTAX_ERROR,
                            "unsupported column attribute {}",
                            other
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                    }
                },
                other => {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "column attribute {other} is not supported"
                    ));
                }
            }
        }
        if let Some(e) = &encoding {
            check_encoding(&cname, e, &col.sql_type)?;
            explicit_encoding.push(i);
        }
        col.encoding = encoding.unwrap_or_default();
        columns.push(col);
    }
    let index_of = |n: &str| -> Result<usize> {
        columns
            .iter()
            .position(|c| c.name == n)
            .ok_or_else(|| sql_err!(code::UNDEFINED_COLUMN, "column \"{n}\" does not exist"))
    };

    // Distribution.
    let table_distkey = match &ct.distkey {
        Some(e) => Some(index_of(&expr_column(e)?)?),
        None => None,
    };
    if let (Some(a), Some(b)) = (table_distkey, col_distkey)
        && a != b
    {
        return Err(sql_err!(
            code::INVALID_TABLE_DEFINITION,
            "multiple DISTKEY columns are not allowed"
        ));
    }
    let distkey = table_distkey.or(col_distkey);
    let style = ct.diststyle.as_ref().map(|d| match d {
        AstDistStyle::Key => "KEY",
        AstDistStyle::Even => "EVEN",
        AstDistStyle::All => "ALL",
        AstDistStyle::Auto => "AUTO",
    });
    let dist = dist_style(style, distkey, None)?;

    // Sort key.
    let mut sort_key = vec![];
    if let Some(keys) = &ct.sortkey {
        if !col_sortkey.is_empty() {
            return Err(sql_err!(
                code::INVALID_TABLE_DEFINITION,
                "SORTKEY cannot be given both as a column attribute and a table attribute"
            ));
        }
        for k in keys {
            let i = index_of(&expr_column(k)?)?;
            if sort_key.contains(&i) {
                return Err(sql_err!(
                    code::DUPLICATE_COLUMN,
                    "column appears twice in SORTKEY"
                ));
            }
            sort_key.push(i);
        }
    } else {
        sort_key = col_sortkey;
    }
    let sort_kind = attrs.sort_kind.unwrap_or(SortKind::Compound);
    if sort_kind == SortKind::Interleaved && sort_key.len() > 8 {
        return Err(sql_err!(
            code::INVALID_TABLE_DEFINITION,
            "an INTERLEAVED SORTKEY can have at most 8 columns"
        ));
    }
    if attrs.sort_kind.is_some() && sort_key.is_empty() {
        return Err(sql_err!(
            code::SYNTAX_ERROR,
            "SORTKEY needs at least one column"
        ));
    }
    if attrs.encode_auto && !explicit_encoding.is_empty() {
        return Err(sql_err!(
            code::INVALID_TABLE_DEFINITION,
            "ENCODE AUTO cannot be combined with column ENCODE settings"
        ));
    }
    for (i, c) in columns.iter_mut().enumerate() {
        if c.encoding.is_empty() {
            c.encoding = auto_encoding(&c.sql_type, sort_key.contains(&i)).to_string();
        }
    }
    let identity_next = columns
        .iter()
        .map(|c| c.identity.as_ref().map_or(0, |i| i.seed))
        .collect();
    Ok(TableDef {
        stats: None,
        modified_rows: 0,
        id,
        schema,
        name,
        columns,
        dist,
        sort_kind,
        sort_key,
        backup: ct.backup.unwrap_or(true),
        encode_auto: explicit_encoding.is_empty(),
        segments: vec![],
        identity_next,
        owner: owner.to_string(),
        retired: vec![],
    })
}

/// `SHOW TABLE s.t`: the table's DDL as Redshift prints it — every column with its type,
/// NOT NULL, DEFAULT, IDENTITY and ENCODE, the DISTKEY column marked, then DISTSTYLE and
/// the sort key. `constraints` are the table's constraints as `pg_get_constraintdef` prints
/// them; they follow the columns, each on a line of its own that starts with the comma.
pub fn show_table_ddl(t: &crate::catalog::TableDef, constraints: &[String]) -> String {
    use crate::catalog::DistStyle;
    use crate::sql::SortKind;
    let columns: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut line = format!("{} {}", c.name, c.sql_type.display_name());
            if let Some(id) = &c.identity {
                line.push_str(&format!(" identity({}, {})", id.seed, id.step));
            }
            if let Some(d) = &c.default {
                line.push_str(&format!(" default {d}"));
            }
            if !c.nullable {
                line.push_str(" NOT NULL");
            }
            line.push_str(&format!(" ENCODE {}", c.encoding));
            if t.dist == DistStyle::Key(i) {
                line.push_str(" distkey");
            }
            line
        })
        .collect();
    let mut ddl = format!(
        "CREATE TABLE {}.{} (\n    {}",
        t.schema,
        t.name,
        columns.join(",\n    ")
    );
    for c in constraints {
        ddl.push_str(&format!("\n    ,{c}"));
    }
    ddl.push_str("\n)");
    ddl.push_str(match t.dist {
        DistStyle::Auto => "\nDISTSTYLE AUTO",
        DistStyle::Even => "\nDISTSTYLE EVEN",
        DistStyle::Key(_) => "\nDISTSTYLE KEY",
        DistStyle::All => "\nDISTSTYLE ALL",
    });
    if !t.sort_key.is_empty() {
        let keys: Vec<&str> = t
            .sort_key
            .iter()
            .map(|&k| t.columns[k].name.as_str())
            .collect();
        let kind = match t.sort_kind {
            SortKind::Compound => "",
            SortKind::Interleaved => "INTERLEAVED ",
        };
        ddl.push_str(&format!("\n{kind}SORTKEY ( {} )", keys.join(", ")));
    }
    ddl.push(';');
    ddl
}

/// `CREATE TABLE t (LIKE parent [INCLUDING | EXCLUDING DEFAULTS])`: the parent's columns
/// (types, NOT NULL, IDENTITY, encodings), distribution and sort key, and none of its rows,
/// as Redshift does. DEFAULT expressions only with INCLUDING DEFAULTS (Redshift's default
/// is EXCLUDING); IDENTITY columns start again at their seed.
pub fn table_like(
    parent: &TableDef,
    (schema, name): (String, String),
    id: u64,
    owner: &str,
    include_defaults: bool,
) -> TableDef {
    let mut columns = parent.columns.clone();
    for c in &mut columns {
        // A new table's segments store columns under their current names.
        c.stored = c.name.clone();
        c.missing = None;
        if !include_defaults {
            c.default = None;
        }
    }
    let identity_next = columns
        .iter()
        .map(|c| c.identity.as_ref().map_or(0, |i| i.seed))
        .collect();
    TableDef {
        id,
        schema,
        name,
        columns,
        dist: parent.dist.clone(),
        sort_kind: parent.sort_kind,
        sort_key: parent.sort_key.clone(),
        backup: parent.backup,
        encode_auto: parent.encode_auto,
        segments: vec![],
        identity_next,
        owner: owner.to_string(),
        stats: None,
        modified_rows: 0,
        retired: vec![],
    }
}

/// The column `ALTER TABLE … ADD COLUMN` describes, with CREATE TABLE's rules for its type,
/// ENCODE (the automatic choice when none is given), NOT NULL and DEFAULT. Redshift adds
/// neither key columns nor IDENTITY columns this way.
pub fn added_column(c: &datafusion::sql::sqlparser::ast::ColumnDef) -> Result<ColumnDef> {
    use datafusion::sql::sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
    let ct = CreateTableBuilder::new(ObjectName::from(vec![Ident::new("t")]))
        .columns(vec![c.clone()])
        .build();
    let def = table_def(&ct, &TableAttrs::default(), 0, "")?;
    if def.dist != DistStyle::Auto || !def.sort_key.is_empty() {
        return Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "ALTER TABLE ADD COLUMN cannot add a DISTKEY or SORTKEY column"
        ));
    }
    let column = def.columns.into_iter().next().expect("one column");
    if column.identity.is_some() {
        return Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "ALTER TABLE ADD COLUMN cannot add an IDENTITY column"
        ));
    }
    Ok(column)
}
