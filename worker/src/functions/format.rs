//! TO_CHAR, TO_DATE, TO_TIMESTAMP and TO_NUMBER with Redshift's (PostgreSQL's) format
//! patterns: `YYYY MM DD HH24 HH12 MI SS MS US AM Mon Month Dy Day Q WW W IW DDD D CC`
//! and `FM` for dates and times; `9 0 . D , G S MI PL SG $ FM` for numbers.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{
    DataType, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;

use super::datetime::{micros, naive};
use super::{arity, code, is_text, sql_error, timestamp_arg, udf};

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf(
            "to_char",
            coerce_to_char,
            |_, _| Ok(DataType::Utf8),
            to_char,
        ),
        udf(
            "to_date",
            |a| coerce_parse("to_date", a),
            |_, _| Ok(DataType::Date32),
            |a, _| parse_datetimes(a, true),
        ),
        udf(
            "to_timestamp",
            |a| coerce_parse("to_timestamp", a),
            |_, _| {
                Ok(DataType::Timestamp(
                    arrow::datatypes::TimeUnit::Microsecond,
                    Some(Arc::from("+00:00")),
                ))
            },
            |a, _| parse_datetimes(a, false),
        ),
        udf("to_number", coerce_to_number, to_number_type, to_number),
    ]
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// One element of a date/time pattern.
#[derive(Debug, Clone, PartialEq)]
enum DtItem {
    /// A numeric field and whether `FM` precedes it.
    Field(DtField, bool),
    /// A month or day name: which, its letter case, abbreviated, and `FM`.
    Name(NameKind, Case, bool, bool),
    Meridiem(Case, bool),
    Literal(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DtField {
    Year4,
    Year3,
    Year2,
    Year1,
    Month,
    Day,
    DayOfYear,
    DayOfWeek,
    IsoDayOfWeek,
    Hour24,
    Hour12,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    Quarter,
    WeekOfYear,
    WeekOfMonth,
    IsoWeek,
    Century,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NameKind {
    Month,
    Day,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Capital,
    Lower,
}

fn datetime_pattern(fmt: &str) -> Vec<DtItem> {
    use DtField::*;
    const FIELDS: [(&str, DtField); 23] = [
        ("YYYY", Year4),
        ("YYY", Year3),
        ("YY", Year2),
        ("Y", Year1),
        ("MM", Month),
        ("DDD", DayOfYear),
        ("DD", Day),
        ("HH24", Hour24),
        ("HH12", Hour12),
        ("HH", Hour12),
        ("MI", Minute),
        ("SS", Second),
        ("MS", Millisecond),
        ("US", Microsecond),
        ("IW", IsoWeek),
        ("ID", IsoDayOfWeek),
        ("WW", WeekOfYear),
        ("W", WeekOfMonth),
        ("Q", Quarter),
        ("CC", Century),
        ("D", DayOfWeek),
        ("J", Day),
        ("I", Year1),
    ];
    let mut items = vec![];
    let mut rest = fmt;
    let mut fm = false;
    while !rest.is_empty() {
        let upper = rest.to_ascii_uppercase();
        if upper.starts_with("FM") {
            fm = true;
            rest = &rest[2..];
            continue;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            items.push(DtItem::Literal(quoted[..end].to_string()));
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        let case = |n: usize| {
            let word = &rest[..n];
            if word.chars().all(|c| !c.is_ascii_lowercase()) {
                Case::Upper
            } else if word.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                Case::Capital
            } else {
                Case::Lower
            }
        };
        let names = [
            ("MONTH", NameKind::Month, false),
            ("MON", NameKind::Month, true),
            ("DAY", NameKind::Day, false),
            ("DY", NameKind::Day, true),
        ];
        if let Some((w, kind, short)) = names.iter().find(|(w, ..)| upper.starts_with(w)) {
            items.push(DtItem::Name(*kind, case(w.len()), *short, fm));
            rest = &rest[w.len()..];
            fm = false;
            continue;
        }
        if let Some(w) = ["A.M.", "P.M.", "AM", "PM"]
            .iter()
            .find(|w| upper.starts_with(*w))
        {
            items.push(DtItem::Meridiem(case(1), w.contains('.')));
            rest = &rest[w.len()..];
            continue;
        }
        // The J and I patterns (Julian day, ISO year) are not supported; they stay text.
        if let Some((w, f)) = FIELDS[..21].iter().find(|(w, _)| upper.starts_with(w)) {
            items.push(DtItem::Field(*f, fm));
            rest = &rest[w.len()..];
            fm = false;
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        match items.last_mut() {
            Some(DtItem::Literal(s)) => s.push(c),
            _ => items.push(DtItem::Literal(c.to_string())),
        }
        rest = &rest[c.len_utf8()..];
    }
    items
}

fn cased(s: &str, case: Case) -> String {
    match case {
        Case::Upper => s.to_uppercase(),
        Case::Lower => s.to_lowercase(),
        Case::Capital => s.to_string(),
    }
}

fn format_datetime(t: NaiveDateTime, items: &[DtItem]) -> String {
    use DtField::*;
    let mut out = String::new();
    for item in items {
        match item {
            DtItem::Literal(s) => out.push_str(s),
            DtItem::Meridiem(case, dots) => {
                let pm = t.hour() >= 12;
                let s = match (pm, dots) {
                    (false, false) => "AM",
                    (true, false) => "PM",
                    (false, true) => "A.M.",
                    (true, true) => "P.M.",
                };
                out.push_str(&cased(s, *case));
            }
            DtItem::Name(kind, case, short, fm) => {
                let full = match kind {
                    NameKind::Month => MONTHS[t.month0() as usize],
                    NameKind::Day => DAYS[t.weekday().num_days_from_sunday() as usize],
                };
                let s = cased(if *short { &full[..3] } else { full }, *case);
                if *short || *fm {
                    out.push_str(&s);
                } else {
                    out.push_str(&format!("{s:<9}"));
                }
            }
            DtItem::Field(f, fm) => {
                let (v, width): (i64, usize) = match f {
                    Year4 => (t.year() as i64, 4),
                    Year3 => (t.year().rem_euclid(1000) as i64, 3),
                    Year2 => (t.year().rem_euclid(100) as i64, 2),
                    Year1 => (t.year().rem_euclid(10) as i64, 1),
                    Month => (t.month() as i64, 2),
                    Day => (t.day() as i64, 2),
                    DayOfYear => (t.ordinal() as i64, 3),
                    DayOfWeek => (t.weekday().number_from_sunday() as i64, 1),
                    IsoDayOfWeek => (t.weekday().number_from_monday() as i64, 1),
                    Hour24 => (t.hour() as i64, 2),
                    Hour12 => (t.hour12().1 as i64, 2),
                    Minute => (t.minute() as i64, 2),
                    Second => (t.second() as i64, 2),
                    Millisecond => ((t.nanosecond() / 1_000_000) as i64, 3),
                    Microsecond => ((t.nanosecond() / 1_000) as i64, 6),
                    Quarter => ((t.month0() / 3 + 1) as i64, 1),
                    WeekOfYear => ((t.ordinal0() / 7 + 1) as i64, 2),
                    WeekOfMonth => ((t.day0() / 7 + 1) as i64, 1),
                    IsoWeek => (t.iso_week().week() as i64, 2),
                    Century => (((t.year() - 1).div_euclid(100) + 1) as i64, 2),
                };
                if *fm {
                    out.push_str(&v.to_string());
                } else {
                    out.push_str(&format!("{v:0width$}"));
                }
            }
        }
    }
    out
}

/// One element of a number pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumItem {
    /// `9` or `0`, and whether it is after the decimal point.
    Digit {
        zero: bool,
        fraction: bool,
    },
    Point,
    Group,
    Sign(SignKind),
    Dollar,
    Literal(char),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SignKind {
    /// `S`: `+` or `-`.
    Both,
    /// `MI`: `-` or a space.
    Minus,
    /// `PL`: `+` or a space.
    Plus,
}

#[derive(Debug)]
struct NumPattern {
    items: Vec<NumItem>,
    fm: bool,
    integer_digits: usize,
    fraction_digits: usize,
    /// Index (among the integer digits) of the first `0`: leading zeros print from there.
    zeros_from: Option<usize>,
}

fn number_pattern(fmt: &str) -> NumPattern {
    let mut items = vec![];
    let mut fm = false;
    let mut fraction = false;
    let upper = fmt.to_ascii_uppercase();
    let mut i = 0;
    while i < upper.len() {
        let rest = &upper[i..];
        let (item, len) = if rest.starts_with("FM") {
            fm = true;
            i += 2;
            continue;
        } else if rest.starts_with("MI") {
            (NumItem::Sign(SignKind::Minus), 2)
        } else if rest.starts_with("PL") {
            (NumItem::Sign(SignKind::Plus), 2)
        } else if rest.starts_with("SG") {
            (NumItem::Sign(SignKind::Both), 2)
        } else {
            let c = rest.chars().next().expect("non-empty");
            let item = match c {
                '9' => NumItem::Digit {
                    zero: false,
                    fraction,
                },
                '0' => NumItem::Digit {
                    zero: true,
                    fraction,
                },
                '.' | 'D' if !fraction => {
                    fraction = true;
                    NumItem::Point
                }
                ',' | 'G' => NumItem::Group,
                'S' => NumItem::Sign(SignKind::Both),
                '$' | 'L' => NumItem::Dollar,
                _ => NumItem::Literal(fmt[i..].chars().next().expect("non-empty")),
            };
            (item, c.len_utf8())
        };
        items.push(item);
        i += len;
    }
    let integer: Vec<bool> = items
        .iter()
        .filter_map(|it| match it {
            NumItem::Digit {
                zero,
                fraction: false,
            } => Some(*zero),
            _ => None,
        })
        .collect();
    let fraction_digits = items
        .iter()
        .filter(|it| matches!(it, NumItem::Digit { fraction: true, .. }))
        .count();
    NumPattern {
        fm,
        integer_digits: integer.len(),
        fraction_digits,
        zeros_from: integer.iter().position(|z| *z),
        items,
    }
}

/// A number as its sign, integer digits (no leading zeros) and exactly `scale` fraction
/// digits, rounded half away from zero.
fn decimal_digits(unscaled: i128, from_scale: i8, scale: usize) -> (bool, String, String) {
    let negative = unscaled < 0;
    let mut v = unscaled.unsigned_abs();
    let from = from_scale as i64;
    let to = scale as i64;
    if from > to {
        let div = 10u128.pow((from - to) as u32);
        let (q, r) = (v / div, v % div);
        v = q + u128::from(r * 2 >= div);
    } else {
        v = v.saturating_mul(10u128.pow((to - from) as u32));
    }
    let s = v.to_string();
    let s = format!("{s:0>width$}", width = scale + 1);
    let (int, frac) = s.split_at(s.len() - scale);
    let int = int.trim_start_matches('0').to_string();
    (negative && v != 0, int, frac.to_string())
}

fn format_number(negative: bool, int: &str, frac: &str, p: &NumPattern) -> String {
    let overflow = int.len() > p.integer_digits;
    let first_digit = p.integer_digits.saturating_sub(int.len());
    let explicit_sign = p.items.iter().any(|i| matches!(i, NumItem::Sign(_)));
    let mut out = String::new();
    let mut sign_done = explicit_sign;
    let mut started = false;
    let mut k = 0; // integer digit index
    let mut f = 0; // fraction digit index
    let fraction_end = frac.trim_end_matches('0').len();
    let put_sign = |out: &mut String, done: &mut bool| {
        if !*done {
            if negative {
                out.push('-');
            } else if !p.fm {
                out.push(' ');
            }
            *done = true;
        }
    };
    if overflow {
        put_sign(&mut out, &mut sign_done);
    }
    for item in &p.items {
        match *item {
            NumItem::Digit {
                fraction: false, ..
            } => {
                if overflow {
                    out.push('#');
                } else if k >= first_digit {
                    if !started {
                        put_sign(&mut out, &mut sign_done);
                    }
                    started = true;
                    out.push(int.as_bytes()[k - first_digit] as char);
                } else if p.zeros_from.is_some_and(|z| k >= z) {
                    if !started {
                        put_sign(&mut out, &mut sign_done);
                    }
                    started = true;
                    out.push('0');
                } else if !p.fm {
                    out.push(' ');
                }
                k += 1;
            }
            NumItem::Digit {
                fraction: true,
                zero,
            } => {
                if overflow {
                    out.push('#');
                } else if !p.fm || zero || f < fraction_end {
                    out.push(frac.as_bytes()[f] as char);
                }
                f += 1;
            }
            NumItem::Point => {
                if !started && !overflow {
                    put_sign(&mut out, &mut sign_done);
                    started = true;
                }
                out.push('.');
            }
            NumItem::Group => {
                if started || overflow {
                    out.push(',');
                } else if !p.fm {
                    out.push(' ');
                }
            }
            NumItem::Sign(kind) => out.push_str(match (kind, negative) {
                (SignKind::Both, false) => "+",
                (SignKind::Plus, false) => "+",
                (_, true) if kind != SignKind::Plus => "-",
                _ if p.fm => "",
                _ => " ",
            }),
            NumItem::Dollar => out.push('$'),
            NumItem::Literal(c) => out.push(c),
        }
    }
    if !sign_done {
        put_sign(&mut out, &mut sign_done);
    }
    out
}

fn coerce_to_char(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("to_char", args, 2, 2)?;
    let value = match &args[0] {
        t if t.is_integer() => DataType::Int64,
        t @ DataType::Decimal128(..) => t.clone(),
        t if t.is_numeric() => DataType::Float64,
        t => timestamp_arg("to_char", t)?,
    };
    Ok(vec![value, DataType::Utf8])
}

/// The parsed pattern of one call, kept while consecutive rows repeat it.
struct Cached<T> {
    last: Option<(String, T)>,
}

impl<T> Cached<T> {
    fn new() -> Self {
        Self { last: None }
    }
    fn get(&mut self, fmt: &str, parse: impl Fn(&str) -> T) -> &T {
        if !matches!(&self.last, Some((f, _)) if f == fmt) {
            self.last = Some((fmt.to_string(), parse(fmt)));
        }
        &self.last.as_ref().expect("just set").1
    }
}

fn to_char(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let fmts = args[1].as_string::<i32>();
    let values = &args[0];
    let mut out = StringBuilder::new();
    let mut dt = Cached::new();
    let mut num = Cached::new();
    for i in 0..values.len() {
        if values.is_null(i) || fmts.is_null(i) {
            out.append_null();
            continue;
        }
        let fmt = fmts.value(i);
        let text = match values.data_type() {
            DataType::Timestamp(..) => {
                let v = values.as_primitive::<TimestampMicrosecondType>().value(i);
                let t = naive(v)
                    .ok_or_else(|| sql_error(code::DATETIME_OVERFLOW, "timestamp out of range"))?;
                format_datetime(t, dt.get(fmt, datetime_pattern))
            }
            DataType::Int64 => {
                let p = num.get(fmt, number_pattern);
                let v = values.as_primitive::<Int64Type>().value(i);
                let (neg, int, frac) = decimal_digits(v as i128, 0, p.fraction_digits);
                format_number(neg, &int, &frac, p)
            }
            DataType::Decimal128(_, scale) => {
                let p = num.get(fmt, number_pattern);
                let v = values.as_primitive::<Decimal128Type>().value(i);
                let (neg, int, frac) = decimal_digits(v, *scale, p.fraction_digits);
                format_number(neg, &int, &frac, p)
            }
            _ => {
                let p = num.get(fmt, number_pattern);
                let v = values.as_primitive::<Float64Type>().value(i);
                let s = format!("{:.*}", p.fraction_digits, v.abs());
                let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
                let int = int.trim_start_matches('0');
                format_number(
                    v < 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0'),
                    int,
                    frac,
                    p,
                )
            }
        };
        out.append_value(text);
    }
    Ok(Arc::new(out.finish()))
}

fn coerce_parse(name: &str, args: &[DataType]) -> Result<Vec<DataType>> {
    arity(name, args, 2, 3)?;
    for a in &args[..2] {
        if !is_text(a) && a != &DataType::Null {
            return Err(sql_error(
                code::UNDEFINED_FUNCTION,
                format!("function {name} does not exist for an argument of type {a}"),
            ));
        }
    }
    let mut out = vec![DataType::Utf8, DataType::Utf8];
    if args.len() == 3 {
        out.push(DataType::Boolean);
    }
    Ok(out)
}

fn bad_value(value: &str, pattern: &str) -> datafusion::error::DataFusionError {
    sql_error(
        code::INVALID_DATETIME_FORMAT,
        format!("invalid value \"{value}\" for \"{pattern}\""),
    )
}

/// Read up to `max` digits (after optional spaces) from the front of `s`.
fn take_number(s: &mut &str, max: usize, pattern: &str) -> Result<i64> {
    let trimmed = s.trim_start();
    let n = trimmed
        .bytes()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 {
        let shown: String = trimmed.chars().take(max.min(8)).collect();
        return Err(bad_value(&shown, pattern));
    }
    let v = trimmed[..n].parse().expect("digits");
    *s = &trimmed[n..];
    Ok(v)
}

fn take_name(s: &mut &str, names: &[&str], short: bool, pattern: &str) -> Result<usize> {
    let trimmed = s.trim_start();
    for (k, name) in names.iter().enumerate() {
        let want = if short { &name[..3] } else { name };
        if trimmed.len() >= want.len() && trimmed[..want.len()].eq_ignore_ascii_case(want) {
            *s = &trimmed[want.len()..];
            return Ok(k);
        }
    }
    let shown: String = trimmed.chars().take(9).collect();
    Err(bad_value(&shown, pattern))
}

/// Parse `text` by the date/time pattern `items`. A day past the end of its month rolls
/// into the next unless `strict`.
fn parse_datetime(text: &str, items: &[DtItem], strict: bool) -> Result<NaiveDateTime> {
    use DtField::*;
    let (mut year, mut month, mut day) = (1i64, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut micro) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut doy: Option<i64> = None;
    let mut s = text;
    for item in items {
        match item {
            DtItem::Literal(lit) => {
                // A separator in the pattern skips one character of input, whatever it is.
                for c in lit.chars() {
                    if c.is_whitespace() {
                        s = s.trim_start();
                    } else if let Some(ch) = s.chars().next() {
                        s = &s[ch.len_utf8()..];
                    }
                }
            }
            DtItem::Meridiem(_, dots) => {
                let t = s.trim_start();
                let w = if *dots { 4 } else { 2 };
                let word = t.get(..w).unwrap_or(t).to_ascii_uppercase();
                pm = Some(match word.as_str() {
                    "AM" | "A.M." => false,
                    "PM" | "P.M." => true,
                    _ => return Err(bad_value(&word, "AM")),
                });
                s = t.get(w..).unwrap_or("");
            }
            DtItem::Name(NameKind::Month, _, short, _) => {
                month = take_name(&mut s, &MONTHS, *short, "Mon")? as i64 + 1;
            }
            DtItem::Name(NameKind::Day, _, short, _) => {
                take_name(&mut s, &DAYS, *short, "Day")?;
            }
            DtItem::Field(f, _) => match f {
                Year4 => year = take_number(&mut s, 4, "YYYY")?,
                Year3 => year = 2000 + take_number(&mut s, 3, "YYY")?,
                Year2 => {
                    let y = take_number(&mut s, 2, "YY")?;
                    year = if y < 70 { 2000 + y } else { 1900 + y };
                }
                Year1 => year = 2000 + take_number(&mut s, 1, "Y")?,
                Month => month = take_number(&mut s, 2, "MM")?,
                Day => day = take_number(&mut s, 2, "DD")?,
                DayOfYear => doy = Some(take_number(&mut s, 3, "DDD")?),
                Hour24 => hour = take_number(&mut s, 2, "HH24")?,
                Hour12 => hour = take_number(&mut s, 2, "HH12")?,
                Minute => minute = take_number(&mut s, 2, "MI")?,
                Second => second = take_number(&mut s, 2, "SS")?,
                Millisecond => micro = take_number(&mut s, 3, "MS")? * 1000,
                Microsecond => {
                    let before = s.trim_start().len();
                    let v = take_number(&mut s, 6, "US")?;
                    let digits = before - s.len();
                    micro = v * 10i64.pow(6 - digits as u32);
                }
                DayOfWeek | IsoDayOfWeek | Quarter | WeekOfYear | WeekOfMonth | IsoWeek
                | Century => {
                    take_number(&mut s, 2, "D")?;
                }
            },
        }
    }
    if let Some(is_pm) = pm {
        if !(1..=12).contains(&hour) {
            return Err(sql_error(
                code::DATETIME_OVERFLOW,
                format!("hour \"{hour}\" is invalid for the 12-hour clock"),
            ));
        }
        hour = hour % 12 + if is_pm { 12 } else { 0 };
    }
    let out_of_range = || {
        sql_error(
            code::DATETIME_OVERFLOW,
            format!("date/time field value out of range: \"{text}\""),
        )
    };
    let date = match doy {
        Some(d) => NaiveDate::from_yo_opt(year as i32, d as u32),
        None if strict => NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32),
        None if (1..=12).contains(&month) && (1..=31).contains(&day) => {
            NaiveDate::from_ymd_opt(year as i32, month as u32, 1)
                .and_then(|d| d.checked_add_signed(Duration::days(day - 1)))
        }
        None => None,
    }
    .ok_or_else(out_of_range)?;
    let time =
        NaiveTime::from_hms_micro_opt(hour as u32, minute as u32, second as u32, micro as u32)
            .ok_or_else(out_of_range)?;
    Ok(date.and_time(time))
}

fn parse_datetimes(args: &[ArrayRef], date: bool) -> Result<ArrayRef> {
    let (texts, fmts) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let strict = args.get(2).map(|a| a.as_boolean());
    let mut pattern = Cached::new();
    let mut out = Vec::with_capacity(texts.len());
    for i in 0..texts.len() {
        if texts.is_null(i) || fmts.is_null(i) {
            out.push(None);
            continue;
        }
        let is_strict = strict.is_some_and(|s| !s.is_null(i) && s.value(i));
        let items = pattern.get(fmts.value(i), datetime_pattern);
        out.push(Some(parse_datetime(texts.value(i), items, is_strict)?));
    }
    Ok(if date {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
        Arc::new(
            out.into_iter()
                .map(|t| t.map(|t| (t.date() - epoch).num_days() as i32))
                .collect::<Date32Array>(),
        )
    } else {
        Arc::new(
            out.into_iter()
                .map(|t| t.map(micros))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("+00:00"),
        )
    })
}

fn coerce_to_number(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("to_number", args, 2, 2)?;
    Ok(vec![DataType::Utf8, DataType::Utf8])
}

/// NUMERIC(38, s) where `s` is the number of fraction digits of a constant pattern.
fn to_number_type(_: &[DataType], scalars: &[Option<&ScalarValue>]) -> Result<DataType> {
    let scale = match scalars.get(1) {
        Some(Some(ScalarValue::Utf8(Some(f)))) => number_pattern(f).fraction_digits,
        _ => 0,
    };
    Ok(DataType::Decimal128(38, scale.min(37) as i8))
}

fn to_number(args: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
    let DataType::Decimal128(precision, scale) = *ret else {
        unreachable!("to_number returns NUMERIC")
    };
    let (texts, fmts) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut out = Vec::with_capacity(texts.len());
    for i in 0..texts.len() {
        if texts.is_null(i) || fmts.is_null(i) {
            out.push(None);
            continue;
        }
        let text = texts.value(i);
        let invalid = || {
            sql_error(
                code::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type numeric: \"{text}\""),
            )
        };
        // The pattern decides nothing the text does not show, so keep its digits, its
        // decimal point and a minus sign (leading, trailing or in angle brackets).
        let negative = text.contains('-') || (text.contains('<') && text.contains('>'));
        let mut digits = String::new();
        let mut point = None;
        for c in text.chars() {
            match c {
                '0'..='9' => digits.push(c),
                '.' if point.is_none() => point = Some(digits.len()),
                ',' | ' ' | '$' | '+' | '-' | '<' | '>' => {}
                _ => return Err(invalid()),
            }
        }
        if digits.is_empty() {
            return Err(invalid());
        }
        let given_scale = point.map_or(0, |p| digits.len() - p);
        let unscaled: i128 = digits.parse().map_err(|_| invalid())?;
        let (neg, int, frac) = decimal_digits(
            if negative { -unscaled } else { unscaled },
            given_scale as i8,
            scale as usize,
        );
        let v: i128 = format!("{int}{frac}").parse().unwrap_or(0);
        out.push(Some(if neg { -v } else { v }));
    }
    Ok(Arc::new(
        Decimal128Array::from(out).with_precision_and_scale(precision, scale)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: i128, scale: i8, fmt: &str) -> String {
        let p = number_pattern(fmt);
        let (neg, int, frac) = decimal_digits(v, scale, p.fraction_digits);
        format_number(neg, &int, &frac, &p)
    }

    #[test]
    fn numbers_format_like_postgresql() {
        assert_eq!(num(125_800, 2, "999D99"), " ###.##");
        assert_eq!(num(12_580, 2, "999.99"), " 125.80");
        assert_eq!(num(-12_580, 2, "999.99"), "-125.80");
        assert_eq!(num(5, 0, "999"), "   5");
        assert_eq!(num(5, 0, "FM999"), "5");
        assert_eq!(num(5, 0, "009"), " 005");
        assert_eq!(num(1_234_567, 0, "9,999,999"), " 1,234,567");
        assert_eq!(num(1234, 0, "9,999,999"), "     1,234");
        assert_eq!(num(-485, 0, "999S"), "485-");
        assert_eq!(num(485, 0, "S999"), "+485");
        assert_eq!(num(50, 2, "9.99"), "  .50");
        assert_eq!(num(50, 2, "0.99"), " 0.50");
        assert_eq!(num(100, 2, "FM9.99"), "1.");
        assert_eq!(num(-1, 0, "9MI"), "1-");
    }

    #[test]
    fn datetimes_format_and_parse() {
        let t = NaiveDate::from_ymd_opt(2008, 2, 5)
            .unwrap()
            .and_hms_micro_opt(15, 4, 9, 123_456)
            .unwrap();
        let f = |p: &str| format_datetime(t, &datetime_pattern(p));
        assert_eq!(f("YYYY-MM-DD HH24:MI:SS.US"), "2008-02-05 15:04:09.123456");
        assert_eq!(f("HH12:MI AM"), "03:04 PM");
        assert_eq!(f("Mon DD, YYYY"), "Feb 05, 2008");
        assert_eq!(f("FMMonth FMDD"), "February 5");
        assert_eq!(f("Day|DY|Q|WW|D|MS"), "Tuesday  |TUE|1|06|3|123");
        assert_eq!(f("\"year\" YYYY"), "year 2008");
        let p = |s: &str, fmt: &str, strict| parse_datetime(s, &datetime_pattern(fmt), strict);
        assert_eq!(
            p(
                "2008-02-05 15:04:09.123456",
                "YYYY-MM-DD HH24:MI:SS.US",
                false
            )
            .unwrap(),
            t
        );
        assert_eq!(
            p("20010631", "YYYYMMDD", false).unwrap().date(),
            NaiveDate::from_ymd_opt(2001, 7, 1).unwrap()
        );
        assert!(p("20010631", "YYYYMMDD", true).is_err());
        assert_eq!(
            p("05 Feb 2008 03:04 pm", "DD Mon YYYY HH:MI AM", true).unwrap(),
            NaiveDate::from_ymd_opt(2008, 2, 5)
                .unwrap()
                .and_hms_opt(15, 4, 0)
                .unwrap()
        );
        assert!(p("xx", "YYYY", false).is_err());
    }
}
