//! Arrow cells as PostgreSQL values: the one place that decides which PostgreSQL type a
//! column of each Arrow type is ([`pg_type_of`]) and which Rust value stands for a cell
//! ([`visit`]). The leader sends those values to clients in text or binary format
//! (`basalt_leader::types`); UNLOAD writes their text form into files ([`write_text`]), so
//! an unloaded value reads exactly as a client sees it in text format.
//!
//! Text follows PostgreSQL's output: booleans `t`/`f`, dates `YYYY-MM-DD`, timestamps
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` (fraction only when non-zero, trailing zeros dropped;
//! `+00` after a TIMESTAMPTZ), NUMERIC with its scale.

use std::error::Error;
use std::sync::LazyLock;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use pgwire::api::Type;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};

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
        DataType::List(item) | DataType::LargeList(item) => {
            match pg_type_of(item.data_type()) {
                Type::BOOL => Type::BOOL_ARRAY,
                Type::INT2 => Type::INT2_ARRAY,
                Type::INT4 => Type::INT4_ARRAY,
                Type::INT8 => Type::INT8_ARRAY,
                Type::FLOAT4 => Type::FLOAT4_ARRAY,
                Type::FLOAT8 => Type::FLOAT8_ARRAY,
                Type::NUMERIC => Type::NUMERIC_ARRAY,
                Type::VARCHAR | Type::TEXT => Type::TEXT_ARRAY,
                Type::DATE => Type::DATE_ARRAY,
                Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
                Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
                // Arrays of anything else travel as their text.
                _ => Type::TEXT,
            }
        }
        DataType::Null => Type::TEXT,
        _ => Type::TEXT,
    }
}

/// Field metadata naming the PostgreSQL type of a column when its Arrow type alone does
/// not say it: the catalogs' `int2vector` columns (`pg_index.indkey`), lists of int2 whose
/// text is space-separated (`1 2`) as clients expect.
pub const PG_TYPE_METADATA: &str = "basalt.pg_type";

/// [`pg_type_of`] for a result column, honouring [`PG_TYPE_METADATA`].
pub fn pg_type_of_field(f: &arrow::datatypes::Field) -> Type {
    match f.metadata().get(PG_TYPE_METADATA).map(String::as_str) {
        Some("int2vector") if matches!(f.data_type(), DataType::List(_)) => Type::INT2_VECTOR,
        _ => pg_type_of(f.data_type()),
    }
}

/// An array cell: PostgreSQL's text (`{a,"b c"}`, or `1 2` for an `int2vector`) or its
/// binary array format, each element as its own type sends it.
#[derive(Debug)]
struct PgArray(arrow::array::ArrayRef);

impl ToSqlText for PgArray {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        _: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let text = if *ty == Type::INT2_VECTOR {
            let item_ty = pg_type_of(self.0.data_type());
            let mut parts = vec![];
            for i in 0..self.0.len() {
                let mut t = BytesMut::new();
                write_text(self.0.as_ref(), i, &item_ty, &mut t)?;
                parts.push(String::from_utf8_lossy(&t).into_owned());
            }
            parts.join(" ")
        } else {
            array_text(self.0.as_ref())?
        };
        out.put_slice(text.as_bytes());
        Ok(IsNull::No)
    }
}

impl ToSql for PgArray {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let item_ty = match ty.kind() {
            postgres_types::Kind::Array(member) => member.clone(),
            _ if *ty == Type::INT2_VECTOR => Type::INT2,
            _ => return Err(format!("{ty} is not an array type").into()),
        };
        let items = self.0.as_ref();
        // PostgreSQL's array_send: dimensions, null flag, element type, then per
        // dimension its length and lower bound, then each element length-prefixed.
        out.put_i32(1);
        out.put_i32(i32::from(items.null_count() > 0));
        out.put_u32(item_ty.oid());
        out.put_i32(i32::try_from(items.len())?);
        out.put_i32(1);
        for i in 0..items.len() {
            if items.is_null(i) {
                out.put_i32(-1);
                continue;
            }
            let at = out.len();
            out.put_i32(0);
            let mut sink = BinarySink {
                ty: &item_ty,
                out: &mut *out,
            };
            visit(items, i, &mut sink)?;
            let len = i32::try_from(out.len() - at - 4)?;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// An array element in binary format.
struct BinarySink<'a> {
    ty: &'a Type,
    out: &'a mut BytesMut,
}

impl ValueSink for BinarySink<'_> {
    type Error = Box<dyn Error + Sync + Send>;

    fn value<T: ToSql + ToSqlText>(&mut self, value: &T) -> Result<(), Self::Error> {
        value.to_sql_checked(self.ty, self.out)?;
        Ok(())
    }

    fn null(&mut self) -> Result<(), Self::Error> {
        Err("NULL array element in a non-null position".into())
    }

    fn invalid(&mut self, message: String) -> Self::Error {
        message.into()
    }
}

/// Where [`visit`] puts a cell: a client's DataRow, a text buffer, …
pub trait ValueSink {
    type Error;
    /// A non-NULL cell as the Rust value that encodes it.
    fn value<T: ToSql + ToSqlText>(&mut self, value: &T) -> Result<(), Self::Error>;
    fn null(&mut self) -> Result<(), Self::Error>;
    /// A cell that has no PostgreSQL value (a date out of range, …).
    fn invalid(&mut self, message: String) -> Self::Error;
}

/// Hand cell `row` of `col` to `sink` as its PostgreSQL value.
pub fn visit<S: ValueSink>(col: &dyn Array, row: usize, sink: &mut S) -> Result<(), S::Error> {
    if col.is_null(row) {
        return sink.null();
    }
    macro_rules! prim {
        ($t:ty, $conv:expr) => {{
            let v = col.as_primitive::<$t>().value(row);
            sink.value(&$conv(v))
        }};
    }
    match col.data_type() {
        DataType::Boolean => sink.value(&col.as_boolean().value(row)),
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
            sink.value(&PgNumeric {
                unscaled: v,
                scale: *s,
            })
        }
        DataType::Utf8 => sink.value(&col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => sink.value(&col.as_string::<i64>().value(row)),
        DataType::Utf8View => sink.value(&col.as_string_view().value(row)),
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(row);
            match NaiveDate::from_num_days_from_ce_opt(days + 719_163) {
                Some(d) => sink.value(&d),
                None => Err(sink.invalid(out_of_range("date", days))),
            }
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let us = col.as_primitive::<Time64MicrosecondType>().value(row);
            match NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                ((us % 1_000_000) * 1000) as u32,
            ) {
                Some(t) => sink.value(&PgTime(t)),
                None => Err(sink.invalid(out_of_range("time", us))),
            }
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
            match DateTime::from_timestamp_micros(micros) {
                Some(at) => sink.value(&PgTimestamp {
                    at,
                    tz: tz.is_some(),
                }),
                None => Err(sink.invalid(out_of_range("timestamp", micros))),
            }
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = col.as_primitive::<IntervalMonthDayNanoType>().value(row);
            sink.value(&pg_interval::Interval::new(
                v.months,
                v.days,
                v.nanoseconds / 1000,
            ))
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = col.as_primitive::<IntervalDayTimeType>().value(row);
            sink.value(&pg_interval::Interval::new(
                0,
                v.days,
                i64::from(v.milliseconds) * 1000,
            ))
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let v = col.as_primitive::<IntervalYearMonthType>().value(row);
            sink.value(&pg_interval::Interval::new(v, 0, 0))
        }
        DataType::Binary => sink.value(&col.as_binary::<i32>().value(row)),
        DataType::List(_) | DataType::LargeList(_) => {
            let items = match col.data_type() {
                DataType::List(_) => col.as_list::<i32>().value(row),
                _ => col.as_list::<i64>().value(row),
            };
            if pg_type_of(col.data_type()) == Type::TEXT {
                // An array of a type with no PostgreSQL array type: its text.
                match array_text(&items) {
                    Ok(text) => sink.value(&text),
                    Err(e) => Err(sink.invalid(e)),
                }
            } else {
                sink.value(&PgArray(items))
            }
        }
        DataType::Null => sink.null(),
        _ => {
            // Anything else is shown as its Arrow display text.
            match arrow::util::display::array_value_to_string(col, row) {
                Ok(text) => sink.value(&text),
                Err(e) => Err(sink.invalid(e.to_string())),
            }
        }
    }
}

/// PostgreSQL's text of an array (`{a,"b c",NULL}`): each element's own text, quoted
/// when it is empty, `NULL` or holds a delimiter, quote, backslash or space.
fn array_text(items: &dyn Array) -> Result<String, String> {
    let ty = pg_type_of(items.data_type());
    let mut out = String::from("{");
    for i in 0..items.len() {
        if i > 0 {
            out.push(',');
        }
        let mut text = BytesMut::new();
        if !write_text(items, i, &ty, &mut text)? {
            out.push_str("NULL");
            continue;
        }
        let text = String::from_utf8_lossy(&text);
        let quote = text.is_empty()
            || text.eq_ignore_ascii_case("null")
            || text
                .chars()
                .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
        if quote {
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    out.push('}');
    Ok(out)
}

fn out_of_range(kind: &str, v: impl std::fmt::Display) -> String {
    format!("{kind} value {v} is out of range")
}

/// The format options of a client that changed none (pgwire's defaults).
static TEXT_OPTIONS: LazyLock<FormatOptions> = LazyLock::new(FormatOptions::default);

/// Append the PostgreSQL text of cell `row` of `col` (whose type is `ty`, see
/// [`pg_type_of`]) to `out`; false when the cell is NULL (nothing appended).
pub fn write_text(
    col: &dyn Array,
    row: usize,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<bool, String> {
    let mut sink = TextSink {
        ty,
        out,
        present: true,
    };
    visit(col, row, &mut sink)?;
    Ok(sink.present)
}

struct TextSink<'a> {
    ty: &'a Type,
    out: &'a mut BytesMut,
    present: bool,
}

impl ValueSink for TextSink<'_> {
    type Error = String;

    fn value<T: ToSql + ToSqlText>(&mut self, value: &T) -> Result<(), String> {
        match value.to_sql_text(self.ty, self.out, &TEXT_OPTIONS) {
            Ok(IsNull::No) => Ok(()),
            Ok(IsNull::Yes) => {
                self.present = false;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn null(&mut self) -> Result<(), String> {
        self.present = false;
        Ok(())
    }

    fn invalid(&mut self, message: String) -> String {
        message
    }
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
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
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
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
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

/// `.ffffff` with trailing zeros dropped, or nothing for a whole second (PostgreSQL's
/// output of fractional seconds).
fn put_fraction(out: &mut BytesMut, nanos: u32) {
    let micros = nanos / 1000;
    if micros == 0 {
        return;
    }
    let digits = format!("{micros:06}");
    out.put_u8(b'.');
    out.put_slice(digits.trim_end_matches('0').as_bytes());
}

/// A TIMESTAMP (or, with `tz`, a TIMESTAMPTZ in UTC).
#[derive(Debug, Clone, Copy)]
pub struct PgTimestamp {
    pub at: DateTime<Utc>,
    pub tz: bool,
}

impl ToSqlText for PgTimestamp {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _opts: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        use std::fmt::Write;
        write!(out, "{}", self.at.format("%Y-%m-%d %H:%M:%S"))?;
        put_fraction(out, self.at.nanosecond());
        if self.tz {
            out.put_slice(b"+00");
        }
        Ok(IsNull::No)
    }
}

impl ToSql for PgTimestamp {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if self.tz {
            self.at.to_sql(ty, out)
        } else {
            self.at.naive_utc().to_sql(ty, out)
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ)
    }

    to_sql_checked!();
}

/// A TIME value.
#[derive(Debug, Clone, Copy)]
pub struct PgTime(pub NaiveTime);

impl ToSqlText for PgTime {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _opts: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        use std::fmt::Write;
        write!(out, "{}", self.0.format("%H:%M:%S"))?;
        put_fraction(out, self.0.nanosecond());
        Ok(IsNull::No)
    }
}

impl ToSql for PgTime {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIME
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
        StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    };

    use super::*;

    fn text(col: ArrayRef) -> Vec<Option<String>> {
        let ty = pg_type_of(col.data_type());
        (0..col.len())
            .map(|row| {
                let mut out = BytesMut::new();
                write_text(col.as_ref(), row, &ty, &mut out)
                    .unwrap()
                    .then(|| String::from_utf8(out.to_vec()).unwrap())
            })
            .collect()
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

    #[test]
    fn cells_render_as_postgresql_text() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            text(Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None
            ]))),
            [s("t"), s("f"), None]
        );
        assert_eq!(
            text(Arc::new(Int32Array::from(vec![-7, 42]))),
            [s("-7"), s("42")]
        );
        assert_eq!(
            text(Arc::new(Float64Array::from(vec![0.5, 1e300]))),
            [s("0.5"), s("1e300")]
        );
        assert_eq!(
            text(Arc::new(
                Decimal128Array::from(vec![150, -2])
                    .with_precision_and_scale(10, 2)
                    .unwrap()
            )),
            [s("1.50"), s("-0.02")]
        );
        assert_eq!(
            text(Arc::new(StringArray::from(vec![
                Some("a|b"),
                Some(""),
                None
            ]))),
            [s("a|b"), s(""), None]
        );
        assert_eq!(
            text(Arc::new(Date32Array::from(vec![0, 19723]))),
            [s("1970-01-01"), s("2024-01-01")]
        );
        let day = 19723i64 * 86_400_000_000;
        assert_eq!(
            text(Arc::new(TimestampMicrosecondArray::from(vec![
                day + 36_000_000_000,
                day + 500_000,
                day + 123_456,
            ]))),
            [
                s("2024-01-01 10:00:00"),
                s("2024-01-01 00:00:00.5"),
                s("2024-01-01 00:00:00.123456")
            ]
        );
        assert_eq!(
            text(Arc::new(
                TimestampMicrosecondArray::from(vec![day]).with_timezone("+00:00")
            )),
            [s("2024-01-01 00:00:00+00")]
        );
        assert_eq!(
            text(Arc::new(Time64MicrosecondArray::from(vec![
                45_296_000_000,
                45_296_250_000
            ]))),
            [s("12:34:56"), s("12:34:56.25")]
        );
    }
}
