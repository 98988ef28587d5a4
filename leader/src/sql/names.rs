//! Identifiers as Redshift reads them: unquoted names fold to lower case, `schema.name`
//! defaults to `public`, and generated SQL quotes every name. A leaf: the catalog, the
//! dialect and the commands all normalise names here.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use crate::error::{Result, code};
use crate::sql_err;

/// `name` as a double-quoted identifier, for SQL that Basalt generates.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Identifiers fold to lower case unless quoted, as in Redshift.
pub fn ident_name(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    }
}

/// `schema.name` → (schema, name), defaulting the schema to `public`.
pub fn split_name(name: &ObjectName) -> Result<(String, String)> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(ident_name)
                .unwrap_or_else(|| p.to_string())
        })
        .collect();
    match parts.as_slice() {
        [t] => Ok(("public".into(), t.clone())),
        [s, t] => Ok((s.clone(), t.clone())),
        [db, s, t] if db == "dev" => Ok((s.clone(), t.clone())),
        _ => Err(sql_err!(
            code::SYNTAX_ERROR,
            "improper qualified name: {name}"
        )),
    }
}
