//! The one type mapping: Redshift SQL types ↔ Arrow types ↔ PostgreSQL wire types, and
//! the encoding of Arrow values into PostgreSQL text and binary result formats.

use std::error::Error;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, IntervalUnit, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};
use serde::{Deserialize, Serialize};

use crate::error::{Result, code};
use crate::sql_err;

/// A column type as Redshift names it. Lengths of CHAR/VARCHAR are in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    Decimal { precision: u8, scale: i8 },
    Real,
    Double,
    Boolean,
    Char(u32),
    Varchar(u32),
    Date,
    Timestamp,
    Timestamptz,
    Time,
}

/// Redshift's longest VARCHAR, in bytes.
pub const VARCHAR_MAX: u32 = 65_535;
pub const CHAR_MAX: u32 = 4_096;

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
            other => pg_type_of(&other.to_arrow()),
        }
    }

    /// `atttypmod` as PostgreSQL packs it.
    pub fn type_modifier(&self) -> i32 {
        match self {
            SqlType::Char(n) | SqlType::Varchar(n) => *n as i32 + 4,
            SqlType::Decimal { precision, scale } => {
                ((i32::from(*precision) << 16) | (i32::from(*scale) & 0xffff)) + 4
            }
            _ => -1,
        }
    }
}

/// The PostgreSQL type a result column of Arrow type `dt` is sent as.
pub fn pg_type_of(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => Type::NUMERIC,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Time32(_) | DataType::Time64(_) => Type::TIME,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Null => Type::TEXT,
        _ => Type::TEXT,
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
            let ty = pg_type_of(f.data_type());
            let mut info = FieldInfo::new(f.name().clone(), None, None, ty, format_for(i));
            if let DataType::Decimal128(p, s) = f.data_type() {
                info = info.with_type_modifier(((i32::from(*p) << 16) | i32::from(*s)) + 4);
            }
            info
        })
        .collect()
}

/// A NUMERIC value: an unscaled integer and a scale.
#[derive(Debug, Clone, Copy)]
pub struct PgNumeric {
    pub unscaled: i128,
    pub scale: i8,
}

impl std::fmt::Display for PgNumeric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.unscaled < 0;
        let digits = self.unscaled.unsigned_abs().to_string();
        let scale = self.scale.max(0) as usize;
        let (int, frac) = if digits.len() > scale {
            digits.split_at(digits.len() - scale)
        } else {
            ("0", "")
        };
        let frac = if digits.len() > scale {
            frac.to_string()
        } else {
            format!("{digits:0>scale$}")
        };
        if neg {
            f.write_str("-")?;
        }
        f.write_str(int)?;
        if scale > 0 {
            write!(f, ".{frac}")?;
        }
        Ok(())
    }
}

impl ToSqlText for PgNumeric {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _opts: &FormatOptions,
    ) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.to_string().as_bytes());
        Ok(IsNull::No)
    }
}

impl ToSql for PgNumeric {
    /// PostgreSQL's binary NUMERIC: base-10000 digits, weight, sign, display scale.
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn Error + Sync + Send>> {
        let scale = self.scale.max(0) as u32;
        let mut int_part = self.unscaled.unsigned_abs() / 10u128.pow(scale);
        let mut frac = self.unscaled.unsigned_abs() % 10u128.pow(scale);
        let mut int_groups = Vec::new();
        while int_part > 0 {
            int_groups.push((int_part % 10_000) as i16);
            int_part /= 10_000;
        }
        int_groups.reverse();
        // Pad the fraction to whole base-10000 groups.
        let frac_groups_n = scale.div_ceil(4);
        frac *= 10u128.pow(frac_groups_n * 4 - scale);
        let mut frac_groups = vec![0i16; frac_groups_n as usize];
        for g in frac_groups.iter_mut().rev() {
            *g = (frac % 10_000) as i16;
            frac /= 10_000;
        }
        let weight = int_groups.len() as i16 - 1;
        let mut digits: Vec<i16> = int_groups.into_iter().chain(frac_groups).collect();
        let mut weight = weight;
        while digits.first() == Some(&0) {
            digits.remove(0);
            weight -= 1;
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            weight = 0;
        }
        out.put_i16(digits.len() as i16);
        out.put_i16(weight);
        out.put_u16(if self.unscaled < 0 { 0x4000 } else { 0 });
        out.put_u16(scale as u16);
        for d in digits {
            out.put_i16(d);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
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

fn encode_value(enc: &mut DataRowEncoder, col: &ArrayRef, row: usize) -> PgWireResult<()> {
    if col.is_null(row) {
        return enc.encode_field(&None::<i32>);
    }
    macro_rules! prim {
        ($t:ty, $conv:expr) => {{
            let v = col.as_primitive::<$t>().value(row);
            enc.encode_field(&$conv(v))
        }};
    }
    match col.data_type() {
        DataType::Boolean => enc.encode_field(&col.as_boolean().value(row)),
        DataType::Int8 => prim!(Int8Type, i16::from),
        DataType::UInt8 => prim!(UInt8Type, i16::from),
        DataType::Int16 => prim!(Int16Type, |v: i16| v),
        DataType::UInt16 => prim!(UInt16Type, i32::from),
        DataType::Int32 => prim!(Int32Type, |v: i32| v),
        DataType::UInt32 => prim!(UInt32Type, i64::from),
        DataType::Int64 => prim!(Int64Type, |v: i64| v),
        DataType::UInt64 => prim!(UInt64Type, |v: u64| v as i64),
        DataType::Float32 => prim!(Float32Type, |v: f32| v),
        DataType::Float64 => prim!(Float64Type, |v: f64| v),
        DataType::Decimal128(_, s) => {
            let v = col.as_primitive::<Decimal128Type>().value(row);
            enc.encode_field(&PgNumeric {
                unscaled: v,
                scale: *s,
            })
        }
        DataType::Utf8 => enc.encode_field(&col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => enc.encode_field(&col.as_string::<i64>().value(row)),
        DataType::Utf8View => enc.encode_field(&col.as_string_view().value(row)),
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(row);
            let d = NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .ok_or_else(|| bad_value("date", days))?;
            enc.encode_field(&d)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let us = col.as_primitive::<Time64MicrosecondType>().value(row);
            let t = NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                ((us % 1_000_000) * 1000) as u32,
            )
            .ok_or_else(|| bad_value("time", us))?;
            enc.encode_field(&t)
        }
        DataType::Timestamp(unit, tz) => {
            let micros = match unit {
                TimeUnit::Second => {
                    col.as_primitive::<TimestampSecondType>().value(row) * 1_000_000
                }
                TimeUnit::Millisecond => {
                    col.as_primitive::<TimestampMillisecondType>().value(row) * 1000
                }
                TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => {
                    col.as_primitive::<TimestampNanosecondType>().value(row) / 1000
                }
            };
            let dt: DateTime<Utc> = DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| bad_value("timestamp", micros))?;
            if tz.is_some() {
                enc.encode_field(&dt)
            } else {
                let naive: NaiveDateTime = dt.naive_utc();
                enc.encode_field(&naive)
            }
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = col
                .as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>()
                .value(row);
            enc.encode_field(&pg_interval::Interval::new(
                v.months,
                v.days,
                v.nanoseconds / 1000,
            ))
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = col
                .as_primitive::<datafusion::arrow::datatypes::IntervalDayTimeType>()
                .value(row);
            enc.encode_field(&pg_interval::Interval::new(
                0,
                v.days,
                i64::from(v.milliseconds) * 1000,
            ))
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let v = col
                .as_primitive::<datafusion::arrow::datatypes::IntervalYearMonthType>()
                .value(row);
            enc.encode_field(&pg_interval::Interval::new(v, 0, 0))
        }
        DataType::Binary => enc.encode_field(&col.as_binary::<i32>().value(row)),
        DataType::Null => enc.encode_field(&None::<i32>),
        _ => {
            // Anything else is shown as its Arrow display text.
            let text = datafusion::arrow::util::display::array_value_to_string(col, row)
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            enc.encode_field(&text)
        }
    }
}

fn bad_value(kind: &str, v: impl std::fmt::Display) -> PgWireError {
    PgWireError::ApiError(format!("{kind} value {v} is out of range").into())
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

    #[test]
    fn numeric_text() {
        let n = |u, s| {
            PgNumeric {
                unscaled: u,
                scale: s,
            }
            .to_string()
        };
        assert_eq!(n(12345, 2), "123.45");
        assert_eq!(n(-5, 3), "-0.005");
        assert_eq!(n(7, 0), "7");
        assert_eq!(n(0, 2), "0.00");
    }
}
