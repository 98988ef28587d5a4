//! The leader's error type and the one place where any error becomes a PostgreSQL error
//! response (SQLSTATE + message). Messages follow Redshift's wording where it has one.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use thiserror::Error;

pub type Result<T, E = LeaderError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum LeaderError {
    /// An error with a known SQLSTATE, shown to the client as is.
    #[error("{message}")]
    Sql { code: &'static str, message: String },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Storage(#[from] basalt_storage::StorageError),
    #[error(transparent)]
    Worker(#[from] basalt_worker::WorkerError),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// `sql_err!(code, fmt, args…)`: a [`LeaderError::Sql`].
#[macro_export]
macro_rules! sql_err {
    ($code:expr, $($arg:tt)*) => {
        $crate::error::LeaderError::Sql { code: $code, message: format!($($arg)*) }
    };
}

/// SQLSTATE codes Basalt uses, by name.
pub mod code {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_SCHEMA: &str = "3F000";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_SCHEMA: &str = "42P06";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const INVALID_FOREIGN_KEY: &str = "42830";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const STRING_TOO_LONG: &str = "22001";
    pub const NUMERIC_OUT_OF_RANGE: &str = "22003";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_GRANT_OPERATION: &str = "0LP01";
    pub const RESERVED_NAME: &str = "42939";
    pub const UNDEFINED_DATABASE: &str = "3D000";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const IN_FAILED_TRANSACTION: &str = "25P02";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const QUERY_CANCELED: &str = "57014";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const INTERNAL: &str = "XX000";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// PostgreSQL's `stack depth limit exceeded`.
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const IO_ERROR: &str = "58030";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const INVALID_OBJECT_DEFINITION: &str = "42P17";
    /// Not a SQLSTATE: ends an error message and starts its HINT (see
    /// [`super::LeaderError::to_pg`]).
    pub const HINT_SEPARATOR: &str = "\nHINT:  ";
    /// Like [`HINT_SEPARATOR`], for PostgreSQL's DETAIL (which comes before the HINT).
    pub const DETAIL_SEPARATOR: &str = "\nDETAIL:  ";
}

/// The error a panic in one statement's code becomes (`XX000`, with the panic's message):
/// the statement fails, its session and the node go on.
pub fn panicked(payload: &(dyn std::any::Any + Send)) -> LeaderError {
    sql_err!(
        code::INTERNAL,
        "internal error: {}",
        basalt_worker::node::unwind::panic_message(payload)
    )
}

/// A task that ended without its result: it panicked or its runtime went away.
pub fn panicked_join(e: tokio::task::JoinError) -> LeaderError {
    match e.try_into_panic() {
        Ok(payload) => panicked(payload.as_ref()),
        Err(e) => sql_err!(code::INTERNAL, "internal error: {e}"),
    }
}

impl LeaderError {
    /// The SQLSTATE and message the client sees.
    pub fn sqlstate(&self) -> (&'static str, String) {
        match self {
            LeaderError::Sql { code, message } => (code, message.clone()),
            LeaderError::DataFusion(e) => {
                marked_sqlstate(&e.to_string()).unwrap_or_else(|| datafusion_sqlstate(e))
            }
            LeaderError::Storage(e) => (code::INTERNAL, e.to_string()),
            LeaderError::Worker(e) => classify_message(&e.to_string()),
            LeaderError::Catalog(m) => (code::INTERNAL, format!("catalog: {m}")),
            LeaderError::Io(e) => (code::INTERNAL, e.to_string()),
        }
    }

    pub fn to_pg(&self) -> PgWireError {
        PgWireError::UserError(Box::new(self.error_info()))
    }

    /// The ErrorResponse fields the client sees.
    pub fn error_info(&self) -> ErrorInfo {
        let (code, message) = self.sqlstate();
        // A message may carry PostgreSQL's HINT after a `\nHINT:  ` line; it travels in
        // the error's own hint field, as psql and the drivers expect it.
        let (message, hint) = match message.split_once(code::HINT_SEPARATOR) {
            Some((m, h)) => (m.to_string(), Some(h.to_string())),
            None => (message, None),
        };
        let (message, detail) = match message.split_once(code::DETAIL_SEPARATOR) {
            Some((m, d)) => (m.to_string(), Some(d.to_string())),
            None => (message, None),
        };
        let mut info = ErrorInfo::new("ERROR".to_owned(), code.to_owned(), message);
        info.hint = hint;
        info.detail = detail;
        info
    }
}

impl From<LeaderError> for PgWireError {
    fn from(e: LeaderError) -> Self {
        e.to_pg()
    }
}

fn datafusion_sqlstate(e: &DataFusionError) -> (&'static str, String) {
    match e {
        DataFusionError::SQL(inner, _) => (code::SYNTAX_ERROR, clean(&inner.to_string())),
        DataFusionError::SchemaError(inner, _) => {
            let msg = inner.to_string();
            // The field itself, not the message: it goes on to list the valid fields.
            if let datafusion::common::SchemaError::FieldNotFound { field, .. } = inner.as_ref() {
                return (
                    code::UNDEFINED_COLUMN,
                    format!("column \"{}\" does not exist", field.name),
                );
            }
            let c = if msg.contains("No field named") || msg.contains("not found") {
                code::UNDEFINED_COLUMN
            } else if msg.contains("Duplicate") || msg.contains("duplicate") {
                code::DUPLICATE_COLUMN
            } else {
                code::SYNTAX_ERROR
            };
            (c, clean(&msg))
        }
        DataFusionError::Plan(msg) => {
            if let Some(known) = cast_failure(&clean(msg)) {
                known
            } else if msg.starts_with("Inconsistent data length") {
                classify_message(msg)
            } else if msg.contains("table") && msg.contains("not found") {
                (code::UNDEFINED_TABLE, relation_not_found(msg))
            } else if msg.contains("Invalid function") || msg.contains("No function matches") {
                (code::UNDEFINED_FUNCTION, clean(msg))
            } else if msg.contains("Cannot infer common")
                || msg.contains("type coercion")
                || msg.contains("Cannot coerce")
                || msg.contains("does not support")
            {
                (code::DATATYPE_MISMATCH, clean(msg))
            } else {
                classify_message(msg)
            }
        }
        DataFusionError::NotImplemented(msg) => (code::FEATURE_NOT_SUPPORTED, clean(msg)),
        DataFusionError::ArrowError(ae, _) => arrow_sqlstate(ae),
        // DataFusion lists the top memory consumers on lines of their own.
        DataFusionError::ResourcesExhausted(msg) => (
            code::OUT_OF_MEMORY,
            format!(
                "query exceeded its memory limit (--query-memory-mb) in a step that cannot \
                 spill to disk: {}",
                clean(msg).split_whitespace().collect::<Vec<_>>().join(" ")
            ),
        ),
        DataFusionError::Context(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Diagnostic(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::External(inner) => {
            if let Some(le) = inner.downcast_ref::<LeaderError>() {
                return le.sqlstate();
            }
            if let Some(ae) = inner.downcast_ref::<ArrowError>() {
                return arrow_sqlstate(ae);
            }
            if let Some(de) = inner.downcast_ref::<DataFusionError>() {
                return datafusion_sqlstate(de);
            }
            classify_message(&inner.to_string())
        }
        other => classify_message(&other.to_string()),
    }
}

fn arrow_sqlstate(e: &ArrowError) -> (&'static str, String) {
    match e {
        ArrowError::DivideByZero => (code::DIVISION_BY_ZERO, "division by zero".into()),
        ArrowError::CastError(m) | ArrowError::ParseError(m) => {
            if let Some(known) = cast_failure(&clean(m)) {
                known
            } else if m.contains("overflow")
                || m.contains("too large")
                || m.contains("out of range")
            {
                (code::NUMERIC_OUT_OF_RANGE, clean(m))
            } else {
                (code::INVALID_TEXT_REPRESENTATION, clean(m))
            }
        }
        ArrowError::ArithmeticOverflow(m) => (code::NUMERIC_OUT_OF_RANGE, clean(m)),
        ArrowError::ExternalError(inner) => classify_message(&inner.to_string()),
        other => classify_message(&other.to_string()),
    }
}

/// PostgreSQL's name for an Arrow type as DataFusion prints it.
fn pg_type_name(arrow: &str) -> &str {
    match arrow.trim() {
        "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float32" => "real",
        "Float64" => "double precision",
        "Boolean" => "boolean",
        "Date32" => "date",
        "Utf8" | "Utf8View" | "LargeUtf8" => "character varying",
        t if t.starts_with("Decimal128") => "numeric",
        t if t.starts_with("Timestamp") => "timestamp",
        t if t.starts_with("Time64") => "time",
        t => t,
    }
}

/// Rewrite DataFusion's cast failures in PostgreSQL's words:
/// `invalid input syntax for type integer: "abc"` and `integer out of range`.
fn cast_failure(m: &str) -> Option<(&'static str, String)> {
    if let Some(rest) = m.strip_prefix("Cannot cast string '")
        && let Some((value, tail)) = rest.rsplit_once("' to value of ")
    {
        let ty = pg_type_name(tail.trim_end_matches(" type"));
        return Some((
            code::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {ty}: \"{value}\""),
        ));
    }
    if let Some(rest) = m.strip_prefix("Can't cast value ")
        && let Some((_, ty)) = rest.rsplit_once(" to type ")
    {
        return Some((
            code::NUMERIC_OUT_OF_RANGE,
            format!("{} out of range", pg_type_name(ty)),
        ));
    }
    None
}

/// An error raised with its SQLSTATE in the text (the SQL functions do this, see
/// `basalt_worker::functions::sql_error`), wherever DataFusion wrapped it.
fn marked_sqlstate(msg: &str) -> Option<(&'static str, String)> {
    let (c, message) = basalt_worker::functions::parse_sql_error(msg)?;
    let c = [
        code::INVALID_PARAMETER_VALUE,
        code::INVALID_DATETIME_FORMAT,
        code::DATETIME_FIELD_OVERFLOW,
        code::INVALID_TEXT_REPRESENTATION,
        code::INVALID_REGULAR_EXPRESSION,
        code::NUMERIC_OUT_OF_RANGE,
        code::UNDEFINED_FUNCTION,
        code::PROGRAM_LIMIT_EXCEEDED,
    ]
    .into_iter()
    .find(|k| *k == c)?;
    Some((c, message.to_string()))
}

/// Errors that crossed a process boundary arrive as text; recover their class from it.
fn classify_message(msg: &str) -> (&'static str, String) {
    if let Some(known) = marked_sqlstate(msg) {
        return known;
    }
    let m = clean(msg);
    if let Some(known) = cast_failure(&m) {
        return known;
    }
    if m.starts_with("Inconsistent data length across values list") {
        return (
            code::SYNTAX_ERROR,
            "INSERT has more expressions than target columns".into(),
        );
    }
    let c = if m.contains("Divide by zero") || m.contains("division by zero") {
        return (code::DIVISION_BY_ZERO, "division by zero".into());
    } else if m.contains("Cannot cast") || m.contains("Cast error") || m.contains("Parser error") {
        code::INVALID_TEXT_REPRESENTATION
    } else if m.contains("overflow") {
        code::NUMERIC_OUT_OF_RANGE
    } else if m.contains("worker") && (m.contains("not available") || m.contains("failed")) {
        code::CONNECTION_FAILURE
    } else {
        code::INTERNAL
    };
    (c, m)
}

/// DataFusion's "table 'dev.public.t' not found" → PostgreSQL's `relation "t" does not exist`.
fn relation_not_found(msg: &str) -> String {
    let name = msg
        .split('\'')
        .nth(1)
        .map(|q| q.rsplit('.').next().unwrap_or(q).to_string());
    match name {
        Some(n) => format!("relation \"{n}\" does not exist"),
        None => clean(msg),
    }
}

/// Strip DataFusion's "Error during planning:" style prefixes and backtraces.
fn clean(msg: &str) -> String {
    let mut m = msg.trim();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "Arrow error: ",
        "Schema error: ",
        "This feature is not implemented: ",
        "SQL error: ",
        "External error: ",
        "Optimizer rule",
    ] {
        while let Some(rest) = m.strip_prefix(prefix) {
            m = rest;
        }
    }
    m.lines().next().unwrap_or(m).to_string()
}

impl From<redb::Error> for LeaderError {
    fn from(e: redb::Error) -> Self {
        LeaderError::Catalog(e.to_string())
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for LeaderError {
            fn from(e: $t) -> Self { LeaderError::Catalog(e.to_string()) }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::*;

    fn state(e: DataFusionError) -> (&'static str, String) {
        LeaderError::DataFusion(e).sqlstate()
    }

    #[test]
    fn datafusion_errors_get_postgres_codes_and_words() {
        assert_eq!(
            state(DataFusionError::Plan(
                "Cannot cast string 'abc' to value of Int32 type".into()
            )),
            (
                code::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type integer: \"abc\"".into()
            )
        );
        assert_eq!(
            state(DataFusionError::Plan(
                "Can't cast value 99999999999 to type Int32".into()
            )),
            (code::NUMERIC_OUT_OF_RANGE, "integer out of range".into())
        );
        assert_eq!(
            state(DataFusionError::Plan(
                "table 'dev.public.nope' not found".into()
            )),
            (
                code::UNDEFINED_TABLE,
                "relation \"nope\" does not exist".into()
            )
        );
        assert_eq!(
            state(DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None
            )),
            (code::DIVISION_BY_ZERO, "division by zero".into())
        );
        assert_eq!(
            state(DataFusionError::Execution(
                "Arrow error: Divide by zero error".into()
            ))
            .0,
            code::DIVISION_BY_ZERO
        );
        assert_eq!(
            state(DataFusionError::Plan(
                "Inconsistent data length across values list: got 3 values in row 0 but expected 2"
                    .into()
            )),
            (
                code::SYNTAX_ERROR,
                "INSERT has more expressions than target columns".into()
            )
        );
    }
}
