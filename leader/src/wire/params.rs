//! Bound parameters of the extended query protocol: text and binary values decoded into
//! the scalar values DataFusion binds to `$1…`.

use super::*;

/// Decode the bound parameters of `portal` into values of the types the plan expects.
pub(super) fn bind_params(portal: &Portal<StatementInfo>) -> Result<Vec<ScalarValue>> {
    let info = &portal.statement.statement;
    let declared = &portal.statement.parameter_types;
    let mut values = Vec::with_capacity(portal.parameter_len());
    for i in 0..portal.parameter_len() {
        let dtype = info.param_types.get(i).cloned().flatten();
        let pg_type = declared
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN)
            .unwrap_or_else(|| dtype.as_ref().map_or(Type::TEXT, pg_type_of));
        let bad = |e: PgWireError| {
            sql_err!(
                code::INVALID_TEXT_REPRESENTATION,
                "invalid value for parameter ${}: {e}",
                i + 1
            )
        };
        let value = if portal.parameter_format.is_binary(i) {
            match pg_type {
                Type::INT2 => {
                    ScalarValue::Int16(portal.parameter::<i16>(i, &pg_type).map_err(bad)?)
                }
                Type::INT4 => {
                    ScalarValue::Int32(portal.parameter::<i32>(i, &pg_type).map_err(bad)?)
                }
                Type::INT8 => {
                    ScalarValue::Int64(portal.parameter::<i64>(i, &pg_type).map_err(bad)?)
                }
                Type::FLOAT4 => {
                    ScalarValue::Float32(portal.parameter::<f32>(i, &pg_type).map_err(bad)?)
                }
                Type::FLOAT8 => {
                    ScalarValue::Float64(portal.parameter::<f64>(i, &pg_type).map_err(bad)?)
                }
                Type::BOOL => {
                    ScalarValue::Boolean(portal.parameter::<bool>(i, &pg_type).map_err(bad)?)
                }
                Type::DATE => ScalarValue::Date32(
                    portal
                        .parameter::<chrono::NaiveDate>(i, &pg_type)
                        .map_err(bad)?
                        .map(|d| (d - chrono::DateTime::UNIX_EPOCH.date_naive()).num_days() as i32),
                ),
                Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
                    portal
                        .parameter::<chrono::NaiveDateTime>(i, &pg_type)
                        .map_err(bad)?
                        .map(|t| t.and_utc().timestamp_micros()),
                    None,
                ),
                Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
                    portal
                        .parameter::<chrono::DateTime<chrono::FixedOffset>>(i, &pg_type)
                        .map_err(bad)?
                        .map(|t| t.timestamp_micros()),
                    Some("+00:00".into()),
                ),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    ScalarValue::Utf8(portal.parameter::<String>(i, &pg_type).map_err(bad)?)
                }
                // Cast from its exact decimal text to the type the plan expects, below.
                Type::NUMERIC => match &portal.parameters[i] {
                    None => ScalarValue::Utf8(None),
                    Some(bytes) => {
                        ScalarValue::Utf8(Some(numeric_from_binary(bytes).ok_or_else(|| {
                            sql_err!(
                                code::INVALID_BINARY_REPRESENTATION,
                                "invalid binary numeric value for parameter ${}",
                                i + 1
                            )
                        })?))
                    }
                },
                other => {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "binary parameters of type {other} are not supported; send them as text"
                    ));
                }
            }
        } else {
            let text = portal.parameters[i]
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            ScalarValue::Utf8(text.map(|t| without_ignored_zone(t, dtype.as_ref())))
        };
        let value = match &dtype {
            Some(dt) if value.data_type() != *dt => value.cast_to(dt).map_err(|e| {
                sql_err!(
                    code::INVALID_TEXT_REPRESENTATION,
                    "invalid value for parameter ${}: {e}",
                    i + 1
                )
            })?,
            _ => value,
        };
        values.push(value);
    }
    Ok(values)
}

/// A date or timestamp (without time zone) parameter's text without the zone that
/// PostgreSQL ignores for those types, as pgjdbc sends them (`2024-02-29 +00`,
/// `2024-02-29 13:45:30.5+01`); Arrow's casts would reject the first and shift the second.
pub(super) fn without_ignored_zone(text: String, dtype: Option<&DataType>) -> String {
    match dtype {
        Some(DataType::Date32) => match text.trim().split_once(char::is_whitespace) {
            Some((date, _)) => date.to_string(),
            None => text,
        },
        Some(DataType::Timestamp(_, None)) => {
            let trimmed = text.trim();
            let zone = trimmed.find(':').and_then(|time| {
                trimmed[time..]
                    .find(['+', '-'])
                    .map(|z| time + z)
                    .or_else(|| trimmed.ends_with(['Z', 'z']).then(|| trimmed.len() - 1))
            });
            match zone {
                Some(z) => trimmed[..z].trim_end().to_string(),
                None => text,
            }
        }
        _ => text,
    }
}

/// PostgreSQL's binary NUMERIC (base-10000 digit groups with a weight, a sign and a
/// display scale) as exact decimal text; `None` when the bytes are not such a value.
pub(super) fn numeric_from_binary(bytes: &[u8]) -> Option<String> {
    let word = |i: usize| {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)? as i16, word(2)?, word(3)?);
    if bytes.len() != 8 + 2 * ndigits as usize {
        return None;
    }
    let digits: Vec<u16> = (0..ndigits as usize)
        .map(|k| word(4 + k))
        .collect::<Option<_>>()?;
    if digits.iter().any(|d| *d > 9999) {
        return None;
    }
    let group = |g: i32| {
        usize::try_from(g)
            .ok()
            .and_then(|g| digits.get(g).copied())
            .unwrap_or(0)
    };
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Some("NaN".into()),
        _ => return None,
    };
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text.push_str(&group(0).to_string());
        for g in 1..=i32::from(weight) {
            text.push_str(&format!("{:04}", group(g)));
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut g = i32::from(weight) + 1;
        while fraction.len() < dscale as usize {
            fraction.push_str(&format!("{:04}", group(g)));
            g += 1;
        }
        fraction.truncate(dscale as usize);
        text.push('.');
        text.push_str(&fraction);
    }
    Some(text)
}
