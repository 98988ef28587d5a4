//! Date and time functions with Redshift's date parts (names and abbreviations),
//! boundary-counting DATEDIFF, ADD_MONTHS' end-of-month rule and named time zones.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc, Weekday,
};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};

use super::{TIMESTAMP, arity, code, sql_error, timestamp_arg, udf, udf_aliased};

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf(
            TEXT_TO_TEMPORAL,
            coerce_text_to_temporal,
            ret_text_to_temporal,
            text_to_temporal,
        ),
        udf(
            TEMPORAL_TO_TEXT,
            coerce_temporal_to_text,
            |_, _| Ok(DataType::Utf8),
            temporal_to_text,
        ),
        ScalarUDF::new_from_impl(Now::new("getdate", None, true)),
        udf("dateadd", coerce_dateadd, ret_third, dateadd),
        udf(
            "datediff",
            coerce_datediff,
            |_, _| Ok(DataType::Int64),
            datediff,
        ),
        udf("date_trunc", coerce_part_ts, ret_second, date_trunc),
        udf_aliased(
            "date_part",
            &["datepart", "pgdate_part"],
            coerce_part_ts,
            |_, _| Ok(DataType::Float64),
            date_part,
        ),
        udf(
            "months_between",
            coerce_months_between,
            |_, _| Ok(DataType::Float64),
            months_between,
        ),
        udf(
            "add_months",
            coerce_add_months,
            |_, _| Ok(TIMESTAMP),
            add_months,
        ),
        udf(
            "last_day",
            coerce_one_ts,
            |_, _| Ok(DataType::Date32),
            last_day,
        ),
        udf(
            "next_day",
            coerce_next_day,
            |_, _| Ok(DataType::Date32),
            next_day,
        ),
        udf(
            "convert_timezone",
            coerce_convert_timezone,
            |_, _| Ok(TIMESTAMP),
            convert_timezone,
        ),
        ScalarUDF::new_from_impl(Trunc::new()),
    ]
}

/// Redshift's date parts; every spelling Redshift accepts maps to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Millennium,
    Century,
    Decade,
    Epoch,
    Year,
    Quarter,
    Month,
    Week,
    DayOfWeek,
    DayOfYear,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
}

fn part(name: &str) -> Result<Part> {
    use Part::*;
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "millennium" | "millennia" | "mil" | "mils" => Millennium,
        "century" | "centuries" | "c" | "cent" | "cents" => Century,
        "decade" | "decades" | "dec" | "decs" => Decade,
        "epoch" => Epoch,
        "year" | "years" | "y" | "yr" | "yrs" => Year,
        "quarter" | "quarters" | "qtr" | "qtrs" => Quarter,
        "month" | "months" | "mon" | "mons" => Month,
        "week" | "weeks" | "w" => Week,
        "dayofweek" | "dow" | "dw" | "weekday" => DayOfWeek,
        "dayofyear" | "doy" | "dy" | "yearday" => DayOfYear,
        "day" | "days" | "d" => Day,
        "hour" | "hours" | "h" | "hr" | "hrs" => Hour,
        "minute" | "minutes" | "m" | "min" | "mins" => Minute,
        "second" | "seconds" | "s" | "sec" | "secs" => Second,
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "msecond" | "mseconds"
        | "millisec" | "millisecs" | "millisecon" => Millisecond,
        "microsecond" | "microseconds" | "microsec" | "microsecs" | "usecond" | "useconds"
        | "us" | "usec" | "usecs" => Microsecond,
        _ => {
            return Err(sql_error(
                code::INVALID_PARAMETER_VALUE,
                format!("date part \"{name}\" is not recognized"),
            ));
        }
    })
}

fn unsupported_part(function: &str, p: Part) -> datafusion::error::DataFusionError {
    sql_error(
        code::INVALID_PARAMETER_VALUE,
        format!("date part {p:?} is not supported by {function}").to_lowercase(),
    )
}

pub(super) fn naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

pub(super) fn micros(n: NaiveDateTime) -> i64 {
    n.and_utc().timestamp_micros()
}

fn out_of_range() -> datafusion::error::DataFusionError {
    sql_error(code::DATETIME_OVERFLOW, "timestamp out of range")
}

fn date32(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

fn timestamps(a: &ArrayRef) -> &TimestampMicrosecondArray {
    a.as_primitive::<TimestampMicrosecondType>()
}

fn timezone_of(t: &DataType) -> Option<Arc<str>> {
    match t {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    }
}

fn ret_second(args: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    Ok(args[1].clone())
}

fn ret_third(args: &[DataType], _: &[Option<&ScalarValue>]) -> Result<DataType> {
    Ok(args[2].clone())
}

const TIME: DataType = DataType::Time64(TimeUnit::Microsecond);

fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Time32(_) | DataType::Time64(_))
}

/// TIME values stay times (in microseconds); anything else is a timestamp argument.
fn time_or_timestamp(name: &str, t: &DataType) -> Result<DataType> {
    match is_time(t) {
        true => Ok(TIME),
        false => timestamp_arg(name, t),
    }
}

fn coerce_part_ts(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("date_part", args, 2, 2)?;
    Ok(vec![
        DataType::Utf8,
        time_or_timestamp("date_part", &args[1])?,
    ])
}

fn coerce_dateadd(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("dateadd", args, 3, 3)?;
    Ok(vec![
        DataType::Utf8,
        DataType::Int64,
        time_or_timestamp("dateadd", &args[2])?,
    ])
}

fn coerce_datediff(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("datediff", args, 3, 3)?;
    if is_time(&args[1]) && is_time(&args[2]) {
        return Ok(vec![DataType::Utf8, TIME, TIME]);
    }
    for a in &args[1..] {
        timestamp_arg("datediff", a)?;
    }
    Ok(vec![DataType::Utf8, TIMESTAMP, TIMESTAMP])
}

/// A TIME array as timestamps on 1970-01-01 (the same microseconds), so that one code
/// path serves both; other arrays are returned as they are.
fn as_timestamps(a: &ArrayRef) -> Result<ArrayRef> {
    if !is_time(a.data_type()) {
        return Ok(a.clone());
    }
    let micros = arrow::compute::cast(a, &DataType::Int64)?;
    Ok(arrow::compute::cast(&micros, &TIMESTAMP)?)
}

/// Time values only have the parts of a day.
fn check_time_part(function: &str, p: Part) -> Result<()> {
    match p {
        Part::Hour | Part::Minute | Part::Second | Part::Millisecond | Part::Microsecond => Ok(()),
        other => Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            format!("date part {other:?} is not supported by {function} for time values")
                .to_lowercase(),
        )),
    }
}

/// Timestamps on 1970-01-01 back to TIME (wrapping around midnight), or the timestamps
/// with the zone of the result type.
fn timestamp_result(values: Vec<Option<i64>>, ret: &DataType) -> ArrayRef {
    if is_time(ret) {
        return Arc::new(Time64MicrosecondArray::from(
            values
                .into_iter()
                .map(|v| v.map(|v| v.rem_euclid(86_400_000_000)))
                .collect::<Vec<_>>(),
        ));
    }
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(timezone_of(ret)))
}

fn coerce_one_ts(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("last_day", args, 1, 1)?;
    Ok(vec![timestamp_arg("last_day", &args[0])?])
}

fn coerce_months_between(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("months_between", args, 2, 2)?;
    for a in args {
        timestamp_arg("months_between", a)?;
    }
    Ok(vec![TIMESTAMP, TIMESTAMP])
}

fn coerce_add_months(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("add_months", args, 2, 2)?;
    timestamp_arg("add_months", &args[0])?;
    Ok(vec![TIMESTAMP, DataType::Int64])
}

fn coerce_next_day(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("next_day", args, 2, 2)?;
    Ok(vec![timestamp_arg("next_day", &args[0])?, DataType::Utf8])
}

fn coerce_convert_timezone(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("convert_timezone", args, 2, 3)?;
    let mut out = vec![DataType::Utf8; args.len() - 1];
    out.push(timestamp_arg("convert_timezone", &args[args.len() - 1])?);
    Ok(out)
}

/// `n` months after `t`, the day clamped to the end of a shorter month.
fn plus_months(t: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let m = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n >= 0 {
        t.checked_add_months(m)
    } else {
        t.checked_sub_months(m)
    }
}

fn last_of_month(d: NaiveDate) -> NaiveDate {
    let first = d.with_day(1).expect("day 1 exists");
    first
        .checked_add_months(Months::new(1))
        .and_then(|n| n.pred_opt())
        .unwrap_or(NaiveDate::MAX)
}

fn dateadd(args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let parts = args[0].as_string::<i32>();
    let counts = args[1].as_primitive::<Int64Type>();
    let time = is_time(args[2].data_type());
    let values = as_timestamps(&args[2])?;
    let ts = timestamps(&values);
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if parts.is_null(i) || counts.is_null(i) || ts.is_null(i) {
            out.push(None);
            continue;
        }
        let p = part(parts.value(i))?;
        if time {
            check_time_part("dateadd", p)?;
        }
        let n = counts.value(i);
        let t = naive(ts.value(i)).ok_or_else(out_of_range)?;
        let unit = |u: i64| n.checked_mul(u).map(Duration::microseconds);
        let shifted = match p {
            Part::Millennium => n.checked_mul(12_000).and_then(|m| plus_months(t, m)),
            Part::Century => n.checked_mul(1_200).and_then(|m| plus_months(t, m)),
            Part::Decade => n.checked_mul(120).and_then(|m| plus_months(t, m)),
            Part::Year => n.checked_mul(12).and_then(|m| plus_months(t, m)),
            Part::Quarter => n.checked_mul(3).and_then(|m| plus_months(t, m)),
            Part::Month => plus_months(t, n),
            Part::Week => unit(7 * 86_400_000_000).and_then(|d| t.checked_add_signed(d)),
            Part::Day => unit(86_400_000_000).and_then(|d| t.checked_add_signed(d)),
            Part::Hour => unit(3_600_000_000).and_then(|d| t.checked_add_signed(d)),
            Part::Minute => unit(60_000_000).and_then(|d| t.checked_add_signed(d)),
            Part::Second => unit(1_000_000).and_then(|d| t.checked_add_signed(d)),
            Part::Millisecond => unit(1_000).and_then(|d| t.checked_add_signed(d)),
            Part::Microsecond => unit(1).and_then(|d| t.checked_add_signed(d)),
            other => return Err(unsupported_part("dateadd", other)),
        };
        out.push(Some(micros(shifted.ok_or_else(out_of_range)?)));
    }
    Ok(timestamp_result(out, ret))
}

/// The number of `p` boundaries from the start of time up to `t`: DATEDIFF is the
/// difference of two of these.
fn boundaries(p: Part, t: NaiveDateTime) -> Result<i64> {
    let y = t.year() as i64;
    let us = micros(t);
    Ok(match p {
        Part::Millennium => (y - 1).div_euclid(1000),
        Part::Century => (y - 1).div_euclid(100),
        Part::Decade => y.div_euclid(10),
        Part::Year => y,
        Part::Quarter => y * 4 + (t.month0() / 3) as i64,
        Part::Month => y * 12 + t.month0() as i64,
        // Weeks begin on Monday; day 1 of the common era was a Monday.
        Part::Week => (t.date().num_days_from_ce() as i64 - 1).div_euclid(7),
        Part::Day => t.date().num_days_from_ce() as i64,
        Part::Hour => us.div_euclid(3_600_000_000),
        Part::Minute => us.div_euclid(60_000_000),
        Part::Second => us.div_euclid(1_000_000),
        Part::Millisecond => us.div_euclid(1_000),
        Part::Microsecond => us,
        other => return Err(unsupported_part("datediff", other)),
    })
}

fn datediff(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let parts = args[0].as_string::<i32>();
    let (a, b) = (as_timestamps(&args[1])?, as_timestamps(&args[2])?);
    let (a, b) = (timestamps(&a), timestamps(&b));
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if parts.is_null(i) || a.is_null(i) || b.is_null(i) {
            out.push(None);
            continue;
        }
        let p = part(parts.value(i))?;
        let ta = naive(a.value(i)).ok_or_else(out_of_range)?;
        let tb = naive(b.value(i)).ok_or_else(out_of_range)?;
        out.push(Some(boundaries(p, tb)? - boundaries(p, ta)?));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn truncate(p: Part, t: NaiveDateTime) -> Result<NaiveDateTime> {
    let day = t.date().and_hms_opt(0, 0, 0).expect("midnight");
    let year_start = |y: i32| {
        NaiveDate::from_ymd_opt(y, 1, 1)
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
            .ok_or_else(out_of_range)
    };
    let us = micros(t);
    let floor = |unit: i64| naive(us - us.rem_euclid(unit)).ok_or_else(out_of_range);
    match p {
        Part::Microsecond => Ok(t),
        Part::Millisecond => floor(1_000),
        Part::Second => floor(1_000_000),
        Part::Minute => floor(60_000_000),
        Part::Hour => floor(3_600_000_000),
        Part::Day => Ok(day),
        Part::Week => Ok(day - Duration::days(t.weekday().num_days_from_monday() as i64)),
        Part::Month => Ok(day.with_day(1).expect("day 1")),
        Part::Quarter => Ok(day
            .with_day(1)
            .and_then(|d| d.with_month(t.month0() / 3 * 3 + 1))
            .expect("quarter start")),
        Part::Year => year_start(t.year()),
        Part::Decade => year_start(t.year() - t.year().rem_euclid(10)),
        Part::Century => year_start((t.year() - 1).div_euclid(100) * 100 + 1),
        Part::Millennium => year_start((t.year() - 1).div_euclid(1000) * 1000 + 1),
        other => Err(unsupported_part("date_trunc", other)),
    }
}

fn date_trunc(args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let parts = args[0].as_string::<i32>();
    let time = is_time(args[1].data_type());
    let values = as_timestamps(&args[1])?;
    let ts = timestamps(&values);
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if parts.is_null(i) || ts.is_null(i) {
            out.push(None);
            continue;
        }
        let p = part(parts.value(i))?;
        if time {
            check_time_part("date_trunc", p)?;
        }
        let t = naive(ts.value(i)).ok_or_else(out_of_range)?;
        out.push(Some(micros(truncate(p, t)?)));
    }
    Ok(timestamp_result(out, ret))
}

fn field(p: Part, t: NaiveDateTime) -> f64 {
    let y = t.year() as f64;
    let secs = t.second() as f64;
    let sub_us = (t.nanosecond() / 1_000) as f64;
    match p {
        Part::Millennium => ((t.year() - 1).div_euclid(1000) + 1) as f64,
        Part::Century => ((t.year() - 1).div_euclid(100) + 1) as f64,
        Part::Decade => t.year().div_euclid(10) as f64,
        Part::Epoch => micros(t) as f64 / 1e6,
        Part::Year => y,
        Part::Quarter => (t.month0() / 3 + 1) as f64,
        Part::Month => t.month() as f64,
        Part::Week => t.iso_week().week() as f64,
        Part::DayOfWeek => t.weekday().num_days_from_sunday() as f64,
        Part::DayOfYear => t.ordinal() as f64,
        Part::Day => t.day() as f64,
        Part::Hour => t.hour() as f64,
        Part::Minute => t.minute() as f64,
        Part::Second => secs + sub_us / 1e6,
        Part::Millisecond => secs * 1e3 + sub_us / 1e3,
        Part::Microsecond => secs * 1e6 + sub_us,
    }
}

fn date_part(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let parts = args[0].as_string::<i32>();
    let time = is_time(args[1].data_type());
    let values = as_timestamps(&args[1])?;
    let ts = timestamps(&values);
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if parts.is_null(i) || ts.is_null(i) {
            out.push(None);
            continue;
        }
        let p = part(parts.value(i))?;
        if time && p != Part::Epoch {
            check_time_part("date_part", p)?;
        }
        let t = naive(ts.value(i)).ok_or_else(out_of_range)?;
        out.push(Some(field(p, t)));
    }
    Ok(Arc::new(Float64Array::from(out)))
}

/// Months from `b` to `a`: whole when both fall on the same day of the month or both on
/// the last day of their months, otherwise with the day difference over a 31-day month.
fn months_between(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (a, b) = (timestamps(&args[0]), timestamps(&args[1]));
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if a.is_null(i) || b.is_null(i) {
            out.push(None);
            continue;
        }
        let da = naive(a.value(i)).ok_or_else(out_of_range)?.date();
        let db = naive(b.value(i)).ok_or_else(out_of_range)?.date();
        let whole = (da.year() as i64 * 12 + da.month0() as i64)
            - (db.year() as i64 * 12 + db.month0() as i64);
        let same_day = da.day() == db.day() || (da == last_of_month(da) && db == last_of_month(db));
        out.push(Some(if same_day {
            whole as f64
        } else {
            whole as f64 + (da.day() as f64 - db.day() as f64) / 31.0
        }));
    }
    Ok(Arc::new(Float64Array::from(out)))
}

fn add_months(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let ts = timestamps(&args[0]);
    let counts = args[1].as_primitive::<Int64Type>();
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if ts.is_null(i) || counts.is_null(i) {
            out.push(None);
            continue;
        }
        let t = naive(ts.value(i)).ok_or_else(out_of_range)?;
        let mut r = plus_months(t, counts.value(i)).ok_or_else(out_of_range)?;
        if t.date() == last_of_month(t.date()) {
            r = last_of_month(r.date()).and_time(r.time());
        }
        out.push(Some(micros(r)));
    }
    Ok(Arc::new(TimestampMicrosecondArray::from(out)))
}

fn last_day(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let ts = timestamps(&args[0]);
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        out.push(match ts.is_null(i) {
            true => None,
            false => Some(date32(last_of_month(
                naive(ts.value(i)).ok_or_else(out_of_range)?.date(),
            ))),
        });
    }
    Ok(Arc::new(Date32Array::from(out)))
}

/// A day name, or any unambiguous prefix of one (`Tu`, `Thurs`, `F`), in any case.
fn weekday(name: &str) -> Result<Weekday> {
    const DAYS: [(&str, Weekday); 7] = [
        ("sunday", Weekday::Sun),
        ("monday", Weekday::Mon),
        ("tuesday", Weekday::Tue),
        ("wednesday", Weekday::Wed),
        ("thursday", Weekday::Thu),
        ("friday", Weekday::Fri),
        ("saturday", Weekday::Sat),
    ];
    let n = name.trim().to_ascii_lowercase();
    let mut hits = DAYS
        .iter()
        .filter(|(full, _)| !n.is_empty() && full.starts_with(n.as_str()));
    match (hits.next(), hits.next()) {
        (Some((_, d)), None) => Ok(*d),
        _ => Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"day\": \"{name}\""),
        )),
    }
}

fn next_day(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let ts = timestamps(&args[0]);
    let names = args[1].as_string::<i32>();
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if ts.is_null(i) || names.is_null(i) {
            out.push(None);
            continue;
        }
        let d = naive(ts.value(i)).ok_or_else(out_of_range)?.date();
        let want = weekday(names.value(i))?;
        let ahead =
            (want.num_days_from_monday() as i64 - d.weekday().num_days_from_monday() as i64 + 6)
                .rem_euclid(7)
                + 1;
        out.push(Some(date32(d + Duration::days(ahead))));
    }
    Ok(Arc::new(Date32Array::from(out)))
}

/// A time zone by IANA name (any case) or by one of the common fixed abbreviations.
#[derive(Clone, Copy)]
enum Zone {
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

fn zone(name: &str) -> Result<Zone> {
    let n = name.trim();
    if let Ok(tz) = chrono_tz::Tz::from_str(n) {
        return Ok(Zone::Named(tz));
    }
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|t| t.name().eq_ignore_ascii_case(n))
    {
        return Ok(Zone::Named(*tz));
    }
    const ABBREVIATIONS: [(&str, i32); 22] = [
        ("UTC", 0),
        ("GMT", 0),
        ("Z", 0),
        ("PST", -8 * 60),
        ("PDT", -7 * 60),
        ("MST", -7 * 60),
        ("MDT", -6 * 60),
        ("CST", -6 * 60),
        ("CDT", -5 * 60),
        ("EST", -5 * 60),
        ("EDT", -4 * 60),
        ("AKST", -9 * 60),
        ("AKDT", -8 * 60),
        ("HST", -10 * 60),
        ("WET", 0),
        ("BST", 60),
        ("CET", 60),
        ("CEST", 2 * 60),
        ("EET", 2 * 60),
        ("EEST", 3 * 60),
        ("JST", 9 * 60),
        ("AEST", 10 * 60),
    ];
    ABBREVIATIONS
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(n))
        .and_then(|(_, minutes)| FixedOffset::east_opt(minutes * 60))
        .map(Zone::Fixed)
        .ok_or_else(|| {
            sql_error(
                code::INVALID_PARAMETER_VALUE,
                format!("time zone \"{name}\" not recognized"),
            )
        })
}

impl Zone {
    /// Offset of this zone at UTC instant `t`.
    fn offset_at_utc(self, t: NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Named(tz) => tz.offset_from_utc_datetime(&t).fix(),
            Zone::Fixed(f) => f,
        }
    }
    /// Offset of this zone at its local wall time `t` (the earlier one when the clock
    /// goes back; the one before the gap when it goes forward).
    fn offset_at_local(self, t: NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Named(tz) => tz
                .offset_from_local_datetime(&t)
                .earliest()
                .map(|o| o.fix())
                .unwrap_or_else(|| tz.offset_from_utc_datetime(&t).fix()),
            Zone::Fixed(f) => f,
        }
    }
}

fn convert_timezone(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let ts_arg = &args[args.len() - 1];
    let ts = timestamps(ts_arg);
    // A TIMESTAMPTZ is an instant already; a TIMESTAMP is wall time in the source zone.
    let is_instant = timezone_of(ts_arg.data_type()).is_some();
    let (src, tgt) = match args.len() {
        3 => (Some(args[0].as_string::<i32>()), args[1].as_string::<i32>()),
        _ => (None, args[0].as_string::<i32>()),
    };
    let mut out = Vec::with_capacity(ts.len());
    for i in 0..ts.len() {
        if ts.is_null(i) || tgt.is_null(i) || src.is_some_and(|s| s.is_null(i)) {
            out.push(None);
            continue;
        }
        let t = naive(ts.value(i)).ok_or_else(out_of_range)?;
        let utc = match src {
            Some(s) if !is_instant => {
                let offset = zone(s.value(i))?.offset_at_local(t);
                t - Duration::seconds(offset.local_minus_utc() as i64)
            }
            _ => t,
        };
        let offset = zone(tgt.value(i))?.offset_at_utc(utc);
        out.push(Some(micros(
            utc + Duration::seconds(offset.local_minus_utc() as i64),
        )));
    }
    Ok(Arc::new(TimestampMicrosecondArray::from(out)))
}

/// GETDATE() (the statement's start, whole seconds) and SYSDATE (the transaction's start):
/// both become a constant when the statement is planned.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Now {
    name: &'static str,
    fixed: Option<i64>,
    whole_seconds: bool,
    signature: Signature,
}

impl Now {
    fn new(name: &'static str, fixed: Option<i64>, whole_seconds: bool) -> Self {
        Self {
            name,
            fixed,
            whole_seconds,
            signature: Signature::nullary(Volatility::Stable),
        }
    }

    fn value(&self, statement_start: Option<DateTime<Utc>>) -> ScalarValue {
        let t = self
            .fixed
            .unwrap_or_else(|| statement_start.unwrap_or_else(Utc::now).timestamp_micros());
        let t = if self.whole_seconds {
            t - t.rem_euclid(1_000_000)
        } else {
            t
        };
        ScalarValue::TimestampMicrosecond(Some(t), None)
    }
}

/// SYSDATE for a statement of a transaction that began at `transaction_start` (the
/// statement's own start when there is no explicit transaction). Only the leader needs
/// it: the value is folded into the plan before any fragment is cut.
pub fn sysdate(transaction_start: Option<DateTime<Utc>>) -> ScalarUDF {
    ScalarUDF::new_from_impl(Now::new(
        "sysdate",
        transaction_start.map(|t| t.timestamp_micros()),
        false,
    ))
}

impl ScalarUDFImpl for Now {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(TIMESTAMP)
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Ok(match info.query_execution_start_time() {
            Some(start) => ExprSimplifyResult::Simplified(lit(self.value(Some(start)))),
            None => ExprSimplifyResult::Original(args),
        })
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value(None)))
    }
}

/// TRUNC: of a date or timestamp, its date; of a number, DataFusion's numeric TRUNC.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Trunc {
    numeric: ScalarUDF,
    signature: Signature,
}

impl Trunc {
    fn new() -> Self {
        Self {
            numeric: datafusion::functions::math::trunc().as_ref().clone(),
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    )
}

impl ScalarUDFImpl for Trunc {
    fn name(&self) -> &str {
        "trunc"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() == 1 && is_temporal(&args[0]) {
            return Ok(vec![timestamp_arg("trunc", &args[0])?]);
        }
        let fields: Vec<_> = args
            .iter()
            .map(|t| Arc::new(arrow::datatypes::Field::new("a", t.clone(), true)))
            .collect();
        Ok(
            datafusion::logical_expr::type_coercion::functions::fields_with_udf(
                &fields,
                &self.numeric,
            )?
            .iter()
            .map(|f| f.data_type().clone())
            .collect(),
        )
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() == 1 && is_temporal(&args[0]) {
            return Ok(DataType::Date32);
        }
        self.numeric.inner().return_type(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 1 || !is_temporal(&args.args[0].data_type()) {
            return self.numeric.invoke_with_args(args);
        }
        let to_date = |v: Option<i64>| -> Result<Option<i32>> {
            v.map(|v| Ok(date32(naive(v).ok_or_else(out_of_range)?.date())))
                .transpose()
        };
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(v, _)) => {
                ColumnarValue::Scalar(ScalarValue::Date32(to_date(*v)?))
            }
            other => {
                let a = other.to_array(args.number_rows)?;
                let ts = timestamps(&a);
                let out = ts.iter().map(to_date).collect::<Result<Date32Array>>()?;
                ColumnarValue::Array(Arc::new(out))
            }
        })
    }
}

/// The function the leader puts where a plan casts text to a DATE, TIMESTAMP or
/// TIMESTAMPTZ (`basalt_text_to_temporal(text, 'date' | 'timestamp' | 'timestamptz')`):
/// Arrow's cast takes ISO 8601 only, Redshift (as PostgreSQL) also reads `2024-05-17
/// 10:00`, `05/17/2024`, `17-May-2024`, `May 17, 2024 1:30 PM`, ….
pub const TEXT_TO_TEMPORAL: &str = "basalt_text_to_temporal";

/// `(timestamp, is_timestamptz)` as text, as Redshift prints it (and the wire sends it):
/// `YYYY-MM-DD HH:MI:SS[.ffffff]` with trailing zeros of the fraction dropped, and `+00`
/// after a TIMESTAMPTZ (kept in UTC) — never Arrow's ISO `T`. Casts of timestamps to
/// text go through it.
pub const TEMPORAL_TO_TEXT: &str = "basalt_temporal_to_text";

fn coerce_temporal_to_text(args: &[DataType]) -> Result<Vec<DataType>> {
    arity(TEMPORAL_TO_TEXT, args, 2, 2)?;
    match &args[0] {
        DataType::Timestamp(_, tz) => Ok(vec![
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            DataType::Boolean,
        ]),
        other => Err(sql_error(
            code::UNDEFINED_FUNCTION,
            format!("{TEMPORAL_TO_TEXT} takes a timestamp, not {other}"),
        )),
    }
}

fn temporal_to_text(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let DataType::Timestamp(_, tz) = args[0].data_type() else {
        return Err(sql_error(
            code::UNDEFINED_FUNCTION,
            format!("{TEMPORAL_TO_TEXT} takes a timestamp"),
        ));
    };
    // Whether the value is a TIMESTAMPTZ, as planned (a folded constant's array can have
    // lost its zone by now).
    let zoned = tz.is_some() || args[1].as_boolean().iter().any(|z| z == Some(true));
    // The planner inserts this call after type coercion: the argument keeps its unit.
    let micros = arrow::compute::cast(
        &args[0],
        &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
    )?;
    let micros = micros.as_primitive::<TimestampMicrosecondType>();
    let text: arrow::array::StringArray = micros
        .iter()
        .map(|v| {
            v.and_then(DateTime::from_timestamp_micros).map(|at| {
                let mut s = at.format("%Y-%m-%d %H:%M:%S").to_string();
                let us = at.timestamp_subsec_micros();
                if us != 0 {
                    s.push('.');
                    s.push_str(format!("{us:06}").trim_end_matches('0'));
                }
                if zoned {
                    s.push_str("+00");
                }
                s
            })
        })
        .collect();
    Ok(Arc::new(text))
}

fn coerce_text_to_temporal(args: &[DataType]) -> Result<Vec<DataType>> {
    arity(TEXT_TO_TEMPORAL, args, 2, 2)?;
    Ok(vec![DataType::Utf8, DataType::Utf8])
}

fn temporal_target(name: &str) -> Option<DataType> {
    match name {
        "date" => Some(DataType::Date32),
        "timestamp" => Some(TIMESTAMP),
        "timestamptz" => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some(Arc::from("+00:00")),
        )),
        _ => None,
    }
}

fn ret_text_to_temporal(_: &[DataType], scalars: &[Option<&ScalarValue>]) -> Result<DataType> {
    match scalars.get(1) {
        Some(Some(ScalarValue::Utf8(Some(t)))) => temporal_target(t),
        _ => None,
    }
    .ok_or_else(|| {
        sql_error(
            code::INVALID_PARAMETER_VALUE,
            format!("{TEXT_TO_TEMPORAL} needs 'date', 'timestamp' or 'timestamptz'"),
        )
    })
}

fn text_to_temporal(args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let out = parse_temporal_text(&args[0], ret)?;
    let strings = args[0].as_string::<i32>();
    if let Some(i) = (0..out.len()).find(|&i| strings.is_valid(i) && out.is_null(i)) {
        let type_name = match ret {
            DataType::Date32 => "date",
            DataType::Timestamp(_, None) => "timestamp",
            _ => "timestamp with time zone",
        };
        return Err(sql_error(
            code::INVALID_DATETIME_FORMAT,
            format!(
                "invalid input syntax for type {type_name}: \"{}\"",
                strings.value(i)
            ),
        ));
    }
    Ok(out)
}

/// Text (Utf8) as `ret` (Date32 or a microsecond Timestamp), each value read by Arrow's
/// ISO 8601 parser or else by [`parse_datetime_text`]; NULL where neither can read it.
/// COPY's `DATEFORMAT 'auto'` / `TIMEFORMAT 'auto'` use it too.
pub fn parse_temporal_text(strings: &ArrayRef, ret: &DataType) -> Result<ArrayRef> {
    let safe = arrow::compute::CastOptions {
        safe: true,
        ..Default::default()
    };
    let fast = arrow::compute::cast_with_options(strings, ret, &safe)?;
    if fast.null_count() == strings.null_count() {
        return Ok(fast);
    }
    let strings = strings.as_string::<i32>();
    let slow = |i: usize| {
        strings
            .is_valid(i)
            .then(|| parse_datetime_text(strings.value(i)))
            .flatten()
    };
    if let DataType::Date32 = ret {
        let fast = fast.as_primitive::<arrow::datatypes::Date32Type>();
        let out: Date32Array = (0..strings.len())
            .map(|i| match fast.is_valid(i) {
                true => Some(fast.value(i)),
                false => slow(i).map(|t| date32(t.date())),
            })
            .collect();
        return Ok(Arc::new(out));
    }
    let fast = fast.as_primitive::<TimestampMicrosecondType>();
    let out: TimestampMicrosecondArray = (0..strings.len())
        .map(|i| match fast.is_valid(i) {
            true => Some(fast.value(i)),
            false => slow(i).map(|t| t.and_utc().timestamp_micros()),
        })
        .collect();
    Ok(Arc::new(out.with_timezone_opt(timezone_of(ret))))
}

/// A date or timestamp written the ways PostgreSQL's (and so Redshift's) input accepts
/// beyond ISO 8601: seconds optional, `T` or space, `/` `-` `.` separators, month/day/year
/// order, month names, 12-hour clock, a trailing `Z`/`UTC`/`±hh[:mm]` zone (the result is
/// in UTC). `None` when it is none of these.
pub fn parse_datetime_text(s: &str) -> Option<NaiveDateTime> {
    const DATES: &[&str] = &[
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%Y.%m.%d",
        "%m/%d/%Y",
        "%m-%d-%Y",
        "%m.%d.%Y",
        "%Y%m%d",
        "%d-%b-%Y",
        "%d %b %Y",
        "%b %d %Y",
        "%b %d, %Y",
        "%B %d %Y",
        "%B %d, %Y",
        "%d %B %Y",
        "%Y-%b-%d",
    ];
    const TIMES: &[&str] = &[
        "%H:%M:%S%.f",
        "%H:%M",
        "%I:%M:%S%.f %p",
        "%I:%M %p",
        "%I %p",
    ];
    let s = s.trim();
    let (body, offset) = split_zone(s);
    let body = body.trim();
    for d in DATES {
        if let Ok(date) = NaiveDate::parse_from_str(body, d) {
            return Some(date.and_hms_opt(0, 0, 0)? - offset);
        }
        for sep in [" ", "T"] {
            for t in TIMES {
                let f = format!("{d}{sep}{t}");
                if let Ok(ts) = NaiveDateTime::parse_from_str(body, &f) {
                    return Some(ts - offset);
                }
            }
        }
    }
    None
}

/// `text` without a trailing time zone, and that zone's offset from UTC.
fn split_zone(text: &str) -> (&str, Duration) {
    let upper = text.to_ascii_uppercase();
    for z in [" UTC", " GMT", "Z", "UTC", "GMT"] {
        if upper.ends_with(z) && text.len() > z.len() {
            return (&text[..text.len() - z.len()], Duration::zero());
        }
    }
    // ±hh, ±hhmm or ±hh:mm after a time (the date's own `-`s are earlier).
    if let Some(at) = text.rfind(['+', '-'])
        && text[..at].contains(':')
    {
        let zone = text[at + 1..].replace(':', "");
        let sign = if &text[at..=at] == "-" { -1 } else { 1 };
        let (h, m) = match zone.len() {
            2 => (zone.parse::<i64>().ok(), Some(0)),
            4 => (zone[..2].parse::<i64>().ok(), zone[2..].parse::<i64>().ok()),
            _ => (None, None),
        };
        if let (Some(h), Some(m)) = (h, m) {
            return (&text[..at], Duration::minutes(sign * (h * 60 + m)));
        }
    }
    (text, Duration::zero())
}

#[cfg(test)]
mod text_input_tests {
    use super::*;

    #[test]
    fn reads_the_datetime_forms_postgres_accepts() {
        let at = |y, mo, d, h, mi, s| {
            NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap()
        };
        for (text, want) in [
            ("2024-05-17 10:00", at(2024, 5, 17, 10, 0, 0)),
            ("2024-05-17T10:00", at(2024, 5, 17, 10, 0, 0)),
            ("05/17/2024", at(2024, 5, 17, 0, 0, 0)),
            ("05/17/2024 13:04:05", at(2024, 5, 17, 13, 4, 5)),
            ("17-May-2024", at(2024, 5, 17, 0, 0, 0)),
            ("May 17, 2024", at(2024, 5, 17, 0, 0, 0)),
            ("may 17 2024 1:30 PM", at(2024, 5, 17, 13, 30, 0)),
            ("2024/05/17 10:00:00", at(2024, 5, 17, 10, 0, 0)),
            ("20240517", at(2024, 5, 17, 0, 0, 0)),
            ("2024-05-17 10:00 +02:00", at(2024, 5, 17, 8, 0, 0)),
            ("2024-05-17 10:00-0130", at(2024, 5, 17, 11, 30, 0)),
            ("2024-05-17 10:00 UTC", at(2024, 5, 17, 10, 0, 0)),
        ] {
            assert_eq!(parse_datetime_text(text), Some(want), "{text}");
        }
        for bad in ["", "soon", "2024-13-01", "2024-05-17 25:00", "05/17"] {
            assert_eq!(parse_datetime_text(bad), None, "{bad}");
        }
    }
}
