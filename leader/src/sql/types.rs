//! The one type mapping: Redshift SQL types ↔ Arrow types ↔ PostgreSQL wire types, and
//! the encoding of Arrow values into PostgreSQL text and binary result formats (which
//! PostgreSQL value a cell is lives in `basalt_worker::pgvalue`, shared with UNLOAD).

use std::sync::Arc;

use basalt_worker::pgvalue::{self, ValueSink};
pub use basalt_worker::pgvalue::{PgNumeric, pg_type_of, pg_type_of_field};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::ToSql;
use serde::{Deserialize, Serialize};

use crate::error::{Result, code};
use crate::sql_err;

/// A column type as Redshift names it. Lengths of CHAR/VARCHAR are in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Real,
    Double,
    Boolean,
    Char(u32),
    Varchar(u32),
    Date,
    Timestamp,
    Timestamptz,
    Time,
    /// `VARBYTE(n)` (`VARBINARY`): up to n bytes.
    Varbyte(u32),
}

/// Redshift's longest VARCHAR, in bytes.
pub const VARCHAR_MAX: u32 = 65_535;
pub const CHAR_MAX: u32 = 4_096;
/// VARBYTE's default and longest lengths, in bytes.
pub const VARBYTE_DEFAULT: u32 = 64_000;
pub const VARBYTE_MAX: u32 = 1_024_000;
/// The OID Redshift gives VARBYTE in its catalogs.
pub const VARBYTE_OID: u32 = 6_551;

impl SqlType {
    /// Parse a type as written in DDL (`VARCHAR(10)`, `numeric(12,2)`, `timestamptz`, …).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim().to_ascii_uppercase();
        let (base, args) = match t.find('(') {
            Some(i) => {
                let close = t.rfind(')').unwrap_or(t.len());
                let args: Vec<String> = t[i + 1..close.max(i + 1)]
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect();
                let rest = t[close.min(t.len())..]
                    .trim_start_matches(')')
                    .trim()
                    .to_string();
                let base = format!("{} {}", t[..i].trim(), rest).trim().to_string();
                (base, args)
            }
            None => (t.clone(), vec![]),
        };
        let num = |i: usize, default: u32| -> Result<u32> {
            match args.get(i) {
                None => Ok(default),
                Some(a) if a == "MAX" => Ok(u32::MAX),
                Some(a) => a.parse::<u32>().map_err(|_| {
                    sql_err!(code::SYNTAX_ERROR, "invalid type modifier '{a}' in {text}")
                }),
            }
        };
        let ty = match base.as_str() {
            "SMALLINT" | "INT2" => SqlType::SmallInt,
            "INT" | "INTEGER" | "INT4" => SqlType::Integer,
            "BIGINT" | "INT8" => SqlType::BigInt,
            "DECIMAL" | "NUMERIC" => {
                let p = num(0, 18)?;
                let s = num(1, 0)?;
                if !(1..=38).contains(&p) {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "NUMERIC precision {p} must be between 1 and 38"
                    ));
                }
                if s > p {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "NUMERIC scale {s} must be between 0 and precision {p}"
                    ));
                }
                SqlType::Decimal {
                    precision: p as u8,
                    scale: s as i8,
                }
            }
            "REAL" | "FLOAT4" => SqlType::Real,
            "DOUBLE PRECISION" | "DOUBLE" | "FLOAT8" => SqlType::Double,
            "FLOAT" => {
                if num(0, 53)? < 25 {
                    SqlType::Real
                } else {
                    SqlType::Double
                }
            }
            "BOOLEAN" | "BOOL" => SqlType::Boolean,
            "CHAR" | "CHARACTER" | "NCHAR" | "BPCHAR" => {
                let n = num(0, 1)?;
                let n = if n == u32::MAX { CHAR_MAX } else { n };
                if n == 0 {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "length for type char must be at least 1"
                    ));
                }
                if n > CHAR_MAX {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "length for type char cannot exceed {CHAR_MAX}"
                    ));
                }
                SqlType::Char(n)
            }
            "VARCHAR" | "CHARACTER VARYING" | "NVARCHAR" | "TEXT" => {
                let n = num(0, 256)?;
                let n = if n == u32::MAX { VARCHAR_MAX } else { n };
                if n == 0 {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "length for type varchar must be at least 1"
                    ));
                }
                if n > VARCHAR_MAX {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "length for type varchar cannot exceed {VARCHAR_MAX}"
                    ));
                }
                SqlType::Varchar(n)
            }
            "DATE" => SqlType::Date,
            "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => SqlType::Timestamp,
            "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => SqlType::Timestamptz,
            "TIME" | "TIME WITHOUT TIME ZONE" => SqlType::Time,
            "VARBYTE" | "VARBINARY" | "BINARY VARYING" => {
                let n = num(0, VARBYTE_DEFAULT)?;
                let n = if n == u32::MAX { VARBYTE_MAX } else { n };
                if n == 0 || n > VARBYTE_MAX {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "length for type varbyte must be between 1 and {VARBYTE_MAX}"
                    ));
                }
                SqlType::Varbyte(n)
            }
            _ => {
                return Err(sql_err!(
                    code::UNDEFINED_OBJECT,
                    "type \"{}\" does not exist",
                    text.trim().to_ascii_lowercase()
                ));
            }
        };
        Ok(ty)
    }

    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::SmallInt => DataType::Int16,
            SqlType::Integer => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Boolean => DataType::Boolean,
            SqlType::Char(_) | SqlType::Varchar(_) => DataType::Utf8,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::Timestamptz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("+00:00")))
            }
            SqlType::Time => DataType::Time64(TimeUnit::Microsecond),
            SqlType::Varbyte(_) => DataType::Binary,
        }
    }

    /// The Redshift type a CREATE TABLE AS column of Arrow type `dt` gets.
    pub fn from_arrow(dt: &DataType) -> Result<SqlType> {
        Ok(match dt {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::SmallInt,
            DataType::Int32 | DataType::UInt16 => SqlType::Integer,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::BigInt,
            DataType::Float16 | DataType::Float32 => SqlType::Real,
            DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) => SqlType::Decimal {
                precision: (*p).min(38),
                scale: *s,
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                SqlType::Varchar(VARCHAR_MAX)
            }
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Timestamp(_, None) => SqlType::Timestamp,
            DataType::Timestamp(_, Some(_)) => SqlType::Timestamptz,
            DataType::Time64(TimeUnit::Microsecond) | DataType::Time64(_) | DataType::Time32(_) => {
                SqlType::Time
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                SqlType::Varbyte(VARBYTE_DEFAULT)
            }
            other => {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "cannot store a column of type {other} in a table"
                ));
            }
        })
    }

    /// The name Redshift shows for this type (`format_type`, `\d`, error messages).
    pub fn display_name(&self) -> String {
        match self {
            SqlType::SmallInt => "smallint".into(),
            SqlType::Integer => "integer".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
            SqlType::Real => "real".into(),
            SqlType::Double => "double precision".into(),
            SqlType::Boolean => "boolean".into(),
            SqlType::Char(n) => format!("character({n})"),
            SqlType::Varchar(n) => format!("character varying({n})"),
            SqlType::Date => "date".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::Timestamptz => "timestamp with time zone".into(),
            SqlType::Time => "time without time zone".into(),
            SqlType::Varbyte(n) => format!("varbyte({n})"),
        }
    }

    /// Longest value in bytes, for VARBYTE.
    pub fn max_binary_bytes(&self) -> Option<u32> {
        match self {
            SqlType::Varbyte(n) => Some(*n),
            _ => None,
        }
    }

    /// Longest value in bytes, for character types.
    pub fn max_bytes(&self) -> Option<u32> {
        match self {
            SqlType::Char(n) | SqlType::Varchar(n) => Some(*n),
            _ => None,
        }
    }

    pub fn pg_type(&self) -> Type {
        match self {
            SqlType::Char(_) => Type::BPCHAR,
            SqlType::Varchar(_) => Type::VARCHAR,
            // Results carry VARBYTE values as bytea (what PostgreSQL clients decode to
            // bytes); the catalogs name the column's own type.
            SqlType::Varbyte(_) => Type::new(
                "varbyte".into(),
                VARBYTE_OID,
                postgres_types::Kind::Simple,
                "pg_catalog".into(),
            ),
            other => pg_type_of(&other.to_arrow()),
        }
    }

    /// `atttypmod` as PostgreSQL packs it.
    pub fn type_modifier(&self) -> i32 {
        match self {
            SqlType::Char(n) | SqlType::Varchar(n) | SqlType::Varbyte(n) => *n as i32 + 4,
            SqlType::Decimal { precision, scale } => {
                ((i32::from(*precision) << 16) | (i32::from(*scale) & 0xffff)) + 4
            }
            _ => -1,
        }
    }
}

/// Result-column descriptions for `schema`, each in the format the client asked for.
pub fn field_infos(
    schema: &datafusion::arrow::datatypes::Schema,
    format_for: impl Fn(usize) -> FieldFormat,
) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = pg_type_of_field(f);
            let mut info = FieldInfo::new(f.name().clone(), None, None, ty, format_for(i));
            if let DataType::Decimal128(p, s) = f.data_type() {
                info = info.with_type_modifier(((i32::from(*p) << 16) | i32::from(*s)) + 4);
            }
            info
        })
        .collect()
}

/// Encode every row of `batch` as DataRows described by `fields`.
pub fn encode_batch(
    batch: &RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
) -> PgWireResult<Vec<DataRow>> {
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for col in batch.columns() {
            encode_value(&mut encoder, col, row)?;
        }
        rows.push(encoder.take_row());
    }
    Ok(rows)
}

/// A client row being encoded: each cell in its field's format (text or binary).
struct RowSink<'a>(&'a mut DataRowEncoder);

impl ValueSink for RowSink<'_> {
    type Error = PgWireError;

    fn value<T: ToSql + ToSqlText>(&mut self, value: &T) -> PgWireResult<()> {
        self.0.encode_field(value)
    }

    fn null(&mut self) -> PgWireResult<()> {
        self.0.encode_field(&None::<i32>)
    }

    fn invalid(&mut self, message: String) -> PgWireError {
        PgWireError::ApiError(message.into())
    }
}

fn encode_value(enc: &mut DataRowEncoder, col: &ArrayRef, row: usize) -> PgWireResult<()> {
    pgvalue::visit(col.as_ref(), row, &mut RowSink(enc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redshift_type_names() {
        assert_eq!(SqlType::parse("varchar(10)").unwrap(), SqlType::Varchar(10));
        assert_eq!(SqlType::parse("TEXT").unwrap(), SqlType::Varchar(256));
        assert_eq!(
            SqlType::parse("varchar(max)").unwrap(),
            SqlType::Varchar(65535)
        );
        assert_eq!(
            SqlType::parse("character varying(3)").unwrap(),
            SqlType::Varchar(3)
        );
        assert_eq!(SqlType::parse("char").unwrap(), SqlType::Char(1));
        assert_eq!(
            SqlType::parse("numeric(12, 2)").unwrap(),
            SqlType::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            SqlType::parse("DECIMAL").unwrap(),
            SqlType::Decimal {
                precision: 18,
                scale: 0
            }
        );
        assert_eq!(
            SqlType::parse("timestamp with time zone").unwrap(),
            SqlType::Timestamptz
        );
        assert_eq!(SqlType::parse("float4").unwrap(), SqlType::Real);
        assert!(SqlType::parse("varchar(70000)").is_err());
        assert!(SqlType::parse("blob").is_err());
    }
}
