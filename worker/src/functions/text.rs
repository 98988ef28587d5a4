//! String, regular-expression, JSON-text and hash functions in Redshift's argument forms.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use sha1::Digest;

use super::{arity, code, is_text, sql_error, udf, udf_aliased};

pub(super) fn udfs() -> Vec<ScalarUDF> {
    vec![
        datafusion::functions::unicode::character_length()
            .as_ref()
            .clone()
            .with_aliases(["len"]),
        datafusion::functions::string::repeat()
            .as_ref()
            .clone()
            .with_aliases(["replicate"]),
        udf("sha2", coerce_sha2, |_, _| Ok(DataType::Utf8), sha2),
        udf(
            LIKE_ESCAPE,
            |a| texts(LIKE_ESCAPE, a, 2, 2),
            |_, _| Ok(DataType::Utf8),
            like_escape,
        ),
        udf_aliased(
            "func_sha1",
            &["sha1", "sha"],
            |a| texts("sha1", a, 1, 1),
            |_, _| Ok(DataType::Utf8),
            sha1,
        ),
        udf(
            "bpcharcmp",
            |a| texts("bpcharcmp", a, 2, 2),
            |_, _| Ok(DataType::Int32),
            bpcharcmp,
        ),
        udf(
            "quote_ident",
            |a| texts("quote_ident", a, 1, 1),
            |_, _| Ok(DataType::Utf8),
            |a, _| quote(a, '"'),
        ),
        udf(
            "quote_literal",
            |a| texts("quote_literal", a, 1, 1),
            |_, _| Ok(DataType::Utf8),
            |a, _| quote(a, '\''),
        ),
        udf(
            "regexp_count",
            |a| regexp_args("regexp_count", a, &[T, T, I, T]),
            |_, _| Ok(DataType::Int32),
            regexp_count,
        ),
        udf(
            "regexp_instr",
            |a| regexp_args("regexp_instr", a, &[T, T, I, I, I, T]),
            |_, _| Ok(DataType::Int32),
            regexp_instr,
        ),
        udf(
            "regexp_substr",
            |a| regexp_args("regexp_substr", a, &[T, T, I, I, T]),
            |_, _| Ok(DataType::Utf8),
            regexp_substr,
        ),
        udf(
            "regexp_replace",
            |a| regexp_args("regexp_replace", a, &[T, T, T, I, T]),
            |_, _| Ok(DataType::Utf8),
            regexp_replace,
        ),
        udf(
            "json_extract_path_text",
            coerce_json_path,
            |_, _| Ok(DataType::Utf8),
            json_extract_path_text,
        ),
        udf(
            "json_extract_array_element_text",
            |a| json_args("json_extract_array_element_text", a, 2),
            |_, _| Ok(DataType::Utf8),
            json_extract_array_element_text,
        ),
        udf(
            "json_array_length",
            |a| json_args("json_array_length", a, 1),
            |_, _| Ok(DataType::Int32),
            json_array_length,
        ),
        udf(
            "is_valid_json",
            |a| texts("is_valid_json", a, 1, 1),
            |_, _| Ok(DataType::Boolean),
            |a, _| is_valid_json(a, false),
        ),
        udf(
            "is_valid_json_array",
            |a| texts("is_valid_json_array", a, 1, 1),
            |_, _| Ok(DataType::Boolean),
            |a, _| is_valid_json(a, true),
        ),
    ]
}

const T: DataType = DataType::Utf8;
const I: DataType = DataType::Int64;

/// `basalt_like_escape(pattern, escape)`: a LIKE pattern written with escape character
/// `escape` (`ESCAPE '/'`), rewritten for `\`, the only one DataFusion's LIKE takes. The
/// leader's SQL rewrite wraps such patterns in it.
pub const LIKE_ESCAPE: &str = "basalt_like_escape";

fn like_escape(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = strings(&args[0])
        .iter()
        .zip(strings(&args[1]).iter())
        .map(|(p, e)| Some(reescape_like(p?, e?.chars().next()?)))
        .collect();
    Ok(Arc::new(out))
}

fn reescape_like(text: &str, escape: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            out.push('\\');
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

fn texts(name: &str, args: &[DataType], min: usize, max: usize) -> Result<Vec<DataType>> {
    arity(name, args, min, max)?;
    Ok(vec![DataType::Utf8; args.len()])
}

fn strings(a: &ArrayRef) -> &StringArray {
    a.as_string::<i32>()
}

fn coerce_sha2(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("sha2", args, 2, 2)?;
    Ok(vec![DataType::Utf8, DataType::Int64])
}

fn sha2(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (s, bits) = (strings(&args[0]), args[1].as_primitive::<Int64Type>());
    let mut out = StringBuilder::new();
    for i in 0..s.len() {
        if s.is_null(i) || bits.is_null(i) {
            out.append_null();
            continue;
        }
        let bytes = s.value(i).as_bytes();
        let digest = match bits.value(i) {
            0 | 256 => hex::encode(sha2::Sha256::digest(bytes)),
            224 => hex::encode(sha2::Sha224::digest(bytes)),
            384 => hex::encode(sha2::Sha384::digest(bytes)),
            512 => hex::encode(sha2::Sha512::digest(bytes)),
            other => {
                return Err(sql_error(
                    code::INVALID_PARAMETER_VALUE,
                    format!("sha2: bit length {other} is not one of 0, 224, 256, 384, 512"),
                ));
            }
        };
        out.append_value(digest);
    }
    Ok(Arc::new(out.finish()))
}

fn sha1(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = strings(&args[0])
        .iter()
        .map(|v| v.map(|v| hex::encode(sha1::Sha1::digest(v.as_bytes()))))
        .collect();
    Ok(Arc::new(out))
}

/// Compares as CHAR does: trailing blanks do not count.
fn bpcharcmp(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (a, b) = (strings(&args[0]), strings(&args[1]));
    let out: Int32Array = a
        .iter()
        .zip(b.iter())
        .map(|(a, b)| {
            Some(
                match a?.trim_end_matches(' ').cmp(b?.trim_end_matches(' ')) {
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 1,
                },
            )
        })
        .collect();
    Ok(Arc::new(out))
}

/// Surround with `q`, doubling any `q` inside.
fn quote(args: &[ArrayRef], q: char) -> Result<ArrayRef> {
    let doubled = format!("{q}{q}");
    let out: StringArray = strings(&args[0])
        .iter()
        .map(|v| v.map(|v| format!("{q}{}{q}", v.replace(q, &doubled))))
        .collect();
    Ok(Arc::new(out))
}

/// Redshift's REGEXP_* argument lists: the types of the full form, of which a call may
/// give any prefix of at least two.
fn regexp_args(name: &str, args: &[DataType], full: &[DataType]) -> Result<Vec<DataType>> {
    arity(name, args, 2, full.len())?;
    for (given, want) in args.iter().zip(full) {
        if is_text(want) != (is_text(given) || given == &DataType::Null) && !given.is_integer() {
            return Err(sql_error(
                code::UNDEFINED_FUNCTION,
                format!("function {name} does not exist for an argument of type {given}"),
            ));
        }
    }
    Ok(full[..args.len()].to_vec())
}

/// The compiled pattern of one call, kept while consecutive rows repeat it.
#[derive(Default)]
struct RegexCache {
    last: Option<(String, String, Regex)>,
}

impl RegexCache {
    fn get(&mut self, pattern: &str, params: &str) -> Result<&Regex> {
        let hit = matches!(&self.last, Some((p, f, _)) if p == pattern && f == params);
        if !hit {
            let mut builder = RegexBuilder::new(pattern);
            for c in params.chars() {
                match c {
                    'c' => builder.case_insensitive(false),
                    'i' => builder.case_insensitive(true),
                    // Subexpression extraction is handled by the caller; Rust's regex
                    // syntax already has the Perl classes `p` asks for.
                    'e' | 'p' => &mut builder,
                    other => {
                        return Err(sql_error(
                            code::INVALID_PARAMETER_VALUE,
                            format!("invalid regular expression parameter '{other}'"),
                        ));
                    }
                };
            }
            let re = builder.build().map_err(|e| {
                sql_error(
                    code::INVALID_REGULAR_EXPRESSION,
                    format!("invalid regular expression: {}", first_line(&e.to_string())),
                )
            })?;
            self.last = Some((pattern.to_string(), params.to_string(), re));
        }
        Ok(&self.last.as_ref().expect("just set").2)
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or(s)
        .to_string()
}

/// One row's REGEXP_* arguments, read from the optional argument arrays.
struct RegexpRow<'a> {
    source: &'a str,
    pattern: &'a str,
    /// Byte offset where matching starts (from the 1-based character position).
    start: usize,
    params: &'a str,
}

fn int_at(args: &[ArrayRef], k: usize, i: usize, default: i64) -> Option<i64> {
    match args.get(k) {
        None => Some(default),
        Some(a) => {
            let a = a.as_primitive::<Int64Type>();
            (!a.is_null(i)).then(|| a.value(i))
        }
    }
}

fn text_at<'a>(args: &'a [ArrayRef], k: usize, i: usize, default: &'a str) -> Option<&'a str> {
    match args.get(k) {
        None => Some(default),
        Some(a) => {
            let a = strings(a);
            (!a.is_null(i)).then(|| a.value(i))
        }
    }
}

/// The row's source, pattern, start and parameters; `None` when any of them is NULL.
fn regexp_row<'a>(
    args: &'a [ArrayRef],
    i: usize,
    position_arg: usize,
    params_arg: usize,
) -> Result<Option<RegexpRow<'a>>> {
    let (Some(source), Some(pattern), Some(position), Some(params)) = (
        text_at(args, 0, i, ""),
        text_at(args, 1, i, ""),
        int_at(args, position_arg, i, 1),
        text_at(args, params_arg, i, "c"),
    ) else {
        return Ok(None);
    };
    if position < 1 {
        return Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            "position must be greater than 0",
        ));
    }
    let start = source
        .char_indices()
        .nth(position as usize - 1)
        .map_or(source.len(), |(b, _)| b);
    Ok(Some(RegexpRow {
        source,
        pattern,
        start,
        params,
    }))
}

fn char_position(s: &str, byte: usize) -> i32 {
    s[..byte].chars().count() as i32 + 1
}

fn positive_occurrence(n: i64) -> Result<usize> {
    if n < 1 {
        return Err(sql_error(
            code::INVALID_PARAMETER_VALUE,
            "occurrence must be greater than 0",
        ));
    }
    Ok(n as usize)
}

fn regexp_count(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let mut cache = RegexCache::default();
    let mut out = Vec::with_capacity(args[0].len());
    for i in 0..args[0].len() {
        let Some(r) = regexp_row(args, i, 2, 3)? else {
            out.push(None);
            continue;
        };
        let re = cache.get(r.pattern, r.params)?;
        out.push(Some(re.find_iter(&r.source[r.start..]).count() as i32));
    }
    Ok(Arc::new(Int32Array::from(out)))
}

fn regexp_instr(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let mut cache = RegexCache::default();
    let mut out = Vec::with_capacity(args[0].len());
    for i in 0..args[0].len() {
        let (Some(r), Some(occurrence), Some(option)) = (
            regexp_row(args, i, 2, 5)?,
            int_at(args, 3, i, 1),
            int_at(args, 4, i, 0),
        ) else {
            out.push(None);
            continue;
        };
        if option != 0 && option != 1 {
            return Err(sql_error(
                code::INVALID_PARAMETER_VALUE,
                "option must be 0 or 1",
            ));
        }
        let re = cache.get(r.pattern, r.params)?;
        let extract = r.params.contains('e') && re.captures_len() > 1;
        let hit = re
            .captures_iter(&r.source[r.start..])
            .nth(positive_occurrence(occurrence)? - 1)
            .and_then(|c| if extract { c.get(1) } else { c.get(0) });
        out.push(Some(match hit {
            None => 0,
            Some(m) if option == 0 => char_position(r.source, r.start + m.start()),
            Some(m) => char_position(r.source, r.start + m.end()),
        }));
    }
    Ok(Arc::new(Int32Array::from(out)))
}

fn regexp_substr(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let mut cache = RegexCache::default();
    let mut out = StringBuilder::new();
    for i in 0..args[0].len() {
        let (Some(r), Some(occurrence)) = (regexp_row(args, i, 2, 4)?, int_at(args, 3, i, 1))
        else {
            out.append_null();
            continue;
        };
        let re = cache.get(r.pattern, r.params)?;
        let extract = r.params.contains('e') && re.captures_len() > 1;
        let hit = re
            .captures_iter(&r.source[r.start..])
            .nth(positive_occurrence(occurrence)? - 1)
            .and_then(|c| if extract { c.get(1) } else { c.get(0) });
        out.append_value(hit.map_or("", |m| m.as_str()));
    }
    Ok(Arc::new(out.finish()))
}

/// Redshift's replacement text names groups `\1`…`\9`; Rust's regex says `${1}` and
/// reads a bare `$` as a group reference, so it is doubled.
fn replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regexp_replace(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let mut cache = RegexCache::default();
    let mut out = StringBuilder::new();
    for i in 0..args[0].len() {
        let (Some(r), Some(with)) = (regexp_row(args, i, 3, 4)?, text_at(args, 2, i, "")) else {
            out.append_null();
            continue;
        };
        let re = cache.get(r.pattern, r.params)?;
        let replaced = re.replace_all(&r.source[r.start..], replacement(with).as_str());
        out.append_value(format!("{}{}", &r.source[..r.start], replaced));
    }
    Ok(Arc::new(out.finish()))
}

fn coerce_json_path(args: &[DataType]) -> Result<Vec<DataType>> {
    arity("json_extract_path_text", args, 2, usize::MAX)?;
    let mut out = vec![DataType::Utf8; args.len()];
    if args.len() > 2 && args[args.len() - 1] == DataType::Boolean {
        out[args.len() - 1] = DataType::Boolean;
    }
    Ok(out)
}

fn json_args(name: &str, args: &[DataType], required: usize) -> Result<Vec<DataType>> {
    arity(name, args, required, required + 1)?;
    let mut out = vec![DataType::Utf8];
    if required == 2 {
        out.push(DataType::Int64);
    }
    if args.len() > required {
        out.push(DataType::Boolean);
    }
    Ok(out)
}

/// Whether the row's trailing `null_if_invalid` argument (at `k`, if given) is true.
fn null_if_invalid(args: &[ArrayRef], k: usize, i: usize) -> bool {
    args.get(k)
        .filter(|a| a.data_type() == &DataType::Boolean)
        .is_some_and(|a| {
            let a = a.as_boolean();
            !a.is_null(i) && a.value(i)
        })
}

/// Parse one JSON text: `Ok(None)` when it is invalid and the caller asked for NULL.
fn parse_json(text: &str, null_if_invalid: bool) -> Result<Option<Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(Some(v)),
        Err(_) if null_if_invalid => Ok(None),
        Err(e) => Err(sql_error(
            code::INVALID_TEXT_REPRESENTATION,
            format!("JSON parsing error: {e}"),
        )),
    }
}

/// A JSON value as Redshift's text functions return it: strings without their quotes,
/// JSON null as NULL, anything else as compact JSON.
fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn json_extract_path_text(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let has_flag = args.len() > 2 && args[args.len() - 1].data_type() == &DataType::Boolean;
    let paths = &args[1..args.len() - usize::from(has_flag)];
    let json = strings(&args[0]);
    let mut out = StringBuilder::new();
    'rows: for i in 0..json.len() {
        if json.is_null(i) {
            out.append_null();
            continue;
        }
        let Some(mut v) = parse_json(json.value(i), null_if_invalid(args, args.len() - 1, i))?
        else {
            out.append_null();
            continue;
        };
        for p in paths {
            let p = strings(p);
            match (p.is_null(i), v.get_mut(p.value(i)).map(Value::take)) {
                (false, Some(next)) => v = next,
                _ => {
                    out.append_null();
                    continue 'rows;
                }
            }
        }
        out.append_option(json_text(&v));
    }
    Ok(Arc::new(out.finish()))
}

fn not_an_array() -> datafusion::error::DataFusionError {
    sql_error(
        code::INVALID_PARAMETER_VALUE,
        "JSON parsing error: the value is not a JSON array",
    )
}

fn json_extract_array_element_text(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let json = strings(&args[0]);
    let index = args[1].as_primitive::<Int64Type>();
    let mut out = StringBuilder::new();
    for i in 0..json.len() {
        if json.is_null(i) || index.is_null(i) {
            out.append_null();
            continue;
        }
        let lax = null_if_invalid(args, 2, i);
        match parse_json(json.value(i), lax)? {
            Some(Value::Array(items)) => out.append_option(
                usize::try_from(index.value(i))
                    .ok()
                    .and_then(|k| items.get(k))
                    .and_then(json_text),
            ),
            Some(_) if !lax => return Err(not_an_array()),
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn json_array_length(args: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let json = strings(&args[0]);
    let mut out = Vec::with_capacity(json.len());
    for i in 0..json.len() {
        if json.is_null(i) {
            out.push(None);
            continue;
        }
        let lax = null_if_invalid(args, 1, i);
        out.push(match parse_json(json.value(i), lax)? {
            Some(Value::Array(items)) => Some(items.len() as i32),
            Some(_) if !lax => return Err(not_an_array()),
            _ => None,
        });
    }
    Ok(Arc::new(Int32Array::from(out)))
}

fn is_valid_json(args: &[ArrayRef], array: bool) -> Result<ArrayRef> {
    let out: BooleanArray = strings(&args[0])
        .iter()
        .map(|v| {
            v.map(|v| match serde_json::from_str::<Value>(v) {
                Ok(Value::Array(_)) => true,
                Ok(_) => !array,
                Err(_) => false,
            })
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_text_uses_rust_group_syntax() {
        assert_eq!(replacement(r"\1-\2"), "${1}-${2}");
        assert_eq!(replacement("$5"), "$$5");
        assert_eq!(replacement(r"a\\b"), r"a\b");
    }
}
