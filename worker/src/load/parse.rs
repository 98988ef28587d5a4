//! The hand-written fast paths of conversion: integers, DECIMALs, ISO dates and
//! temporal formats, each declining (None) whatever it does not handle exactly so Arrow's
//! cast takes over.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::DataType;

use super::TextFormat;

/// Plain decimal digits with an optional minus sign, up to 18 of them (so no overflow);
/// anything else is left to Arrow's parser.
pub(super) fn parse_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let v = digits_value(digits)? as i64;
    Some(if negative { -v } else { v })
}

/// The value of at most 18 ASCII decimal digits (so no overflow); None if any byte is not
/// a digit.
pub(super) fn digits_value<'b>(digits: impl IntoIterator<Item = &'b u8>) -> Option<u64> {
    let mut v: u64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// `[-]digits[.digits]` as a decimal of `scale` with at most `precision` digits, extra
/// fractional digits truncated or, with ROUNDEC, rounded half away from zero (as
/// [`fit_scale`] does for Arrow's parser). None for anything else, or a value that does
/// not fit, which Arrow's parser then judges.
#[cfg(test)]
pub(super) fn parse_decimal(s: &str, precision: u8, scale: u32, round: bool) -> Option<i128> {
    parse_decimal_below(s, 10i128.checked_pow(u32::from(precision))?, scale, round)
}

/// [`parse_decimal`] with its precision given as `limit` = 10^precision.
pub(super) fn parse_decimal_below(s: &str, limit: i128, scale: u32, round: bool) -> Option<i128> {
    let b = s.as_bytes();
    let (negative, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = match memchr::memchr(b'.', b) {
        Some(dot) => (&b[..dot], Some(&b[dot + 1..])),
        None => (b, None),
    };
    if int.is_empty() || int.len() > 38 || frac.is_some_and(|f| f.is_empty()) {
        return None;
    }
    let frac = frac.unwrap_or(&[]);
    let digit = |d: u8| {
        let d = d.wrapping_sub(b'0');
        (d <= 9).then_some(i128::from(d))
    };
    let scaled = int.iter().chain(
        frac.iter()
            .chain(std::iter::repeat(&b'0'))
            .take(scale as usize),
    );
    let mut v: i128 = if int.len() + scale as usize <= 18 {
        // Up to 18 digits fit in 64 bits, which multiply faster than 128.
        i128::from(digits_value(scaled)?)
    } else {
        let mut v: i128 = 0;
        for &d in scaled {
            v = v.checked_mul(10)?.checked_add(digit(d)?)?;
        }
        v
    };
    if let Some(rest) = frac.get(scale as usize..) {
        if !rest.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if round && rest.first().is_some_and(|&d| d >= b'5') {
            v += 1;
        }
    }
    if v >= limit {
        return None;
    }
    Some(if negative { -v } else { v })
}

/// `YYYY-MM-DD` as days since 1970-01-01; other spellings are left to Arrow's parser.
pub(super) fn parse_iso_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |v, &d| {
            let d = d.wrapping_sub(b'0');
            (d <= 9).then_some(v * 10 + u32::from(d))
        })
    };
    let (year, month, day) = (num(0..4)? as i32, num(5..7)?, num(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`: years counted from March, so the leap day ends a year).
pub(super) fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400) as u32;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era as i32 - 719_468
}

/// Dates and timestamps in a DATEFORMAT/TIMEFORMAT other than the defaults: each value
/// parsed with the Redshift format translated to chrono's, or as epoch seconds or
/// milliseconds. `None` when the defaults (Arrow's parser) apply.
pub(super) fn temporal(
    strings: &ArrayRef,
    target: &DataType,
    format: &TextFormat,
) -> Option<ArrayRef> {
    use arrow::array::{Date32Array, TimestampMicrosecondArray};
    let spec = match target {
        DataType::Date32 => format.date_format.as_deref(),
        DataType::Timestamp(_, _) => format.time_format.as_deref(),
        _ => None,
    }?;
    if spec.eq_ignore_ascii_case("auto") {
        // Redshift's 'auto' reads more than ISO 8601: `05/17/2024`, `May 17, 2024`, …
        return crate::functions::parse_temporal_text(strings, target).ok();
    }
    let input = strings.as_string::<i32>();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    if let DataType::Timestamp(_, tz) = target {
        let micros = |s: &str| -> Option<i64> {
            match spec {
                "epochsecs" => s.trim().parse::<i64>().ok()?.checked_mul(1_000_000),
                "epochmillisecs" => s.trim().parse::<i64>().ok()?.checked_mul(1_000),
                _ => chrono::NaiveDateTime::parse_from_str(s, &chrono_format(spec))
                    .ok()
                    .map(|t| t.and_utc().timestamp_micros()),
            }
        };
        let out: TimestampMicrosecondArray = input.iter().map(|v| v.and_then(micros)).collect();
        return Some(Arc::new(out.with_timezone_opt(tz.clone())));
    }
    let days = |s: &str| -> Option<i32> {
        let d = chrono::NaiveDate::parse_from_str(s, &chrono_format(spec)).ok()?;
        i32::try_from((d - epoch).num_days()).ok()
    };
    let out: Date32Array = input.iter().map(|v| v.and_then(days)).collect();
    Some(Arc::new(out))
}

/// A Redshift DATEFORMAT/TIMEFORMAT string as a chrono format string.
pub(super) fn chrono_format(spec: &str) -> String {
    let mut out = spec.to_string();
    for (from, to) in [
        ("YYYY", "%Y"),
        ("YY", "%y"),
        ("MON", "%b"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("HH", "%H"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("AM", "%p"),
        ("PM", "%p"),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// A decimal literal cut to `scale` fractional digits: truncated (Redshift's COPY
/// default: 20.259 → 20.25) or rounded half away from zero (ROUNDEC: 20.26). Anything
/// that is not plain digits is left for the parser to judge.
pub(super) fn fit_scale(s: &str, scale: usize, round: bool) -> Cow<'_, str> {
    let t = s.trim_ascii();
    let Some(dot) = memchr::memchr(b'.', t.as_bytes()) else {
        return Cow::Borrowed(s);
    };
    let frac = &t[dot + 1..];
    if frac.len() <= scale || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(s);
    }
    let mut kept: Vec<u8> = if scale == 0 {
        t.as_bytes()[..dot].to_vec()
    } else {
        t.as_bytes()[..dot + 1 + scale].to_vec()
    };
    if round && frac.as_bytes()[scale] >= b'5' {
        // Add one unit in the last kept place, carrying leftwards.
        let mut i = kept.len();
        loop {
            if i == 0 || !(kept[i - 1].is_ascii_digit() || kept[i - 1] == b'.') {
                kept.insert(i, b'1');
                break;
            }
            i -= 1;
            match kept[i] {
                b'.' => continue,
                b'9' => kept[i] = b'0',
                d => {
                    kept[i] = d + 1;
                    break;
                }
            }
        }
    }
    String::from_utf8(kept).map_or(Cow::Borrowed(s), Cow::Owned)
}
