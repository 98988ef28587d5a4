//! VARBYTE functions: `FROM_HEX`, `TO_HEX` (of a VARBYTE or an integer), `TO_VARBYTE` and
//! `FROM_VARBYTE` with the formats `'hex'`, `'utf8'`/`'utf-8'` and `'base64'`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use arrow::datatypes::{DataType, Int64Type};
use base64::Engine;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;

use super::{arity, code, sql_error, udf};

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![
        udf(
            "from_hex",
            |a| {
                arity("from_hex", a, 1, 1)?;
                Ok(vec![DataType::Utf8])
            },
            |_, _| Ok(DataType::Binary),
            |a, _| to_bytes(&a[0], "hex"),
        ),
        udf("to_hex", coerce_to_hex, |_, _| Ok(DataType::Utf8), to_hex),
        udf(
            "to_varbyte",
            |a| {
                arity("to_varbyte", a, 2, 2)?;
                Ok(vec![DataType::Utf8, DataType::Utf8])
            },
            |_, _| Ok(DataType::Binary),
            |a, _| per_format(&a[1], |f| to_bytes(&a[0], f)),
        ),
        udf(
            "from_varbyte",
            |a| {
                arity("from_varbyte", a, 2, 2)?;
                Ok(vec![DataType::Binary, DataType::Utf8])
            },
            |_, _| Ok(DataType::Utf8),
            |a, _| per_format(&a[1], |f| from_bytes(&a[0], f)),
        ),
    ]
}

/// The format argument must be one constant for the whole call.
fn per_format(format: &ArrayRef, f: impl Fn(&str) -> Result<ArrayRef>) -> Result<ArrayRef> {
    let formats = format.as_string::<i32>();
    let first = (0..formats.len())
        .find(|&i| formats.is_valid(i))
        .map(|i| formats.value(i).to_ascii_lowercase());
    match first {
        Some(name) => f(&name),
        None => Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            "the VARBYTE format must be 'hex', 'utf8' or 'base64'",
        )),
    }
}

/// Text in `format` as bytes.
fn to_bytes(text: &ArrayRef, format: &str) -> Result<ArrayRef> {
    let text = text.as_string::<i32>();
    let out: BinaryArray = text
        .iter()
        .map(|v| v.map(|s| decode(s, format)).transpose())
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// Bytes in `format` as text.
fn from_bytes(bytes: &ArrayRef, format: &str) -> Result<ArrayRef> {
    let bytes = bytes.as_binary::<i32>();
    let out: StringArray = bytes
        .iter()
        .map(|v| v.map(|b| encode(b, format)).transpose())
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// `s` read in `format` (`hex` takes an optional `\x` prefix, as PostgreSQL's bytea text).
pub fn decode(s: &str, format: &str) -> Result<Vec<u8>> {
    match format {
        "hex" => hex::decode(s.strip_prefix("\\x").unwrap_or(s)).map_err(|e| {
            sql_error(
                code::INVALID_TEXT_REPRESENTATION,
                format!("invalid hexadecimal data \"{s}\": {e}"),
            )
        }),
        "utf8" | "utf-8" => Ok(s.as_bytes().to_vec()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| {
                sql_error(
                    code::INVALID_TEXT_REPRESENTATION,
                    format!("invalid base64 data \"{s}\": {e}"),
                )
            }),
        other => Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            format!("unknown VARBYTE format '{other}': use 'hex', 'utf8' or 'base64'"),
        )),
    }
}

fn encode(b: &[u8], format: &str) -> Result<String> {
    match format {
        "hex" => Ok(hex::encode(b)),
        "utf8" | "utf-8" => String::from_utf8(b.to_vec()).map_err(|_| {
            sql_error(
                code::INVALID_TEXT_REPRESENTATION,
                "the VARBYTE value is not valid UTF-8",
            )
        }),
        "base64" => Ok(base64::engine::general_purpose::STANDARD.encode(b)),
        other => Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            format!("unknown VARBYTE format '{other}': use 'hex', 'utf8' or 'base64'"),
        )),
    }
}

fn coerce_to_hex(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("to_hex", args, 1, 1)?;
    Ok(vec![match &args[0] {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        _ => DataType::Int64,
    }])
}

/// `TO_HEX(varbyte)`: its bytes in hex; `TO_HEX(integer)`: the number in hex (two's
/// complement for negatives, as PostgreSQL's).
fn to_hex(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = match args[0].data_type() {
        DataType::Binary => args[0]
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(hex::encode))
            .collect(),
        _ => args[0]
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| format!("{:x}", v as u64)))
            .collect(),
    };
    Ok(Arc::new(out))
}
