//! Record readers for COPY's formats other than delimited text and CSV: FIXEDWIDTH
//! (fields cut by character widths) and JSON (`'auto'`, `'auto ignorecase'` or a
//! jsonpaths file), plus the JSONPath subset Redshift accepts. Each turns input text into
//! the same [`Record`]s the delimited reader produces, so conversion, error reporting and
//! routing are shared by every text format.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::Record;

/// FIXEDWIDTH's `'label:width,…'`: the widths, in characters, in column order.
pub fn parse_fixed_width(spec: &str) -> Result<Vec<usize>, String> {
    spec.split(',')
        .map(|entry| {
            let width = entry.rsplit(':').next().unwrap_or_default().trim();
            match width.parse::<usize>() {
                Ok(w) if entry.contains(':') => Ok(w),
                _ => Err(format!(
                    "Invalid FIXEDWIDTH specification '{entry}': expected label:width"
                )),
            }
        })
        .collect()
}

/// Records of fixed-width text: one per line, field k is the next `widths[k]` characters
/// (a short line gives shorter or missing fields, which FILLRECORD may accept).
pub(crate) fn fixed_width_records(
    text: &str,
    widths: &[usize],
    null_as: &str,
    ignore_header: u64,
) -> Vec<Record<'static>> {
    let mut out = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i as u64 + 1;
        let raw = line.trim_end_matches(['\n', '\r']);
        if line_no <= ignore_header {
            continue;
        }
        let mut chars = raw.chars();
        let mut fields = Vec::with_capacity(widths.len());
        for &w in widths {
            let field: String = chars.by_ref().take(w).collect();
            if field.is_empty() && !fields.is_empty() && chars.as_str().is_empty() {
                break;
            }
            // Fixed-width fields are padded: the value is the field without its blanks.
            let value = field.trim_end_matches(' ').to_string();
            fields.push((value != null_as && field.trim() != null_as).then_some(Cow::Owned(value)));
        }
        // Characters beyond the last width make an over-long record.
        if !chars.as_str().trim_end().is_empty() {
            fields.push(Some(Cow::Owned(chars.as_str().to_string())));
        }
        out.push(Record {
            line: line_no,
            end_line: line_no,
            raw: Cow::Owned(raw.to_string()),
            fields,
            unbalanced: false,
            error: None,
        });
    }
    out
}

/// One step of a JSONPath: `.key` / `['key']`, or `[n]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JsonStep {
    Key(String),
    Index(usize),
}

/// How COPY … JSON maps objects to the input fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JsonMapping {
    /// `'auto'` / `'auto ignorecase'`: each field is the top-level key named like its
    /// column (Redshift's column names are lower case; `auto` matches them exactly).
    Auto { ignore_case: bool },
    /// A jsonpaths file: one path per field.
    Paths(Vec<Vec<JsonStep>>),
}

/// Parse one JSONPath expression (`$.a.b`, `$['a']["b"]`, `$.c[0].d`).
pub fn parse_json_path(path: &str) -> Result<Vec<JsonStep>, String> {
    let bad = || format!("Invalid JSONPath format: '{path}'");
    let rest = path.trim().strip_prefix('$').ok_or_else(bad)?;
    let b = rest.as_bytes();
    let mut i = 0;
    let mut steps = vec![];
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                let key = &rest[start..j];
                if key.is_empty() || key.contains(['*', '?']) {
                    return Err(bad());
                }
                steps.push(JsonStep::Key(key.to_string()));
                i = j;
            }
            b'[' => {
                let close = rest[i..].find(']').ok_or_else(bad)? + i;
                let inner = rest[i + 1..close].trim();
                let quoted = inner.len() >= 2
                    && ((inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"')));
                if quoted {
                    steps.push(JsonStep::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    steps.push(JsonStep::Index(inner.parse().map_err(|_| bad())?));
                }
                i = close + 1;
            }
            _ => return Err(bad()),
        }
    }
    Ok(steps)
}

/// A jsonpaths file: `{"jsonpaths": ["$.a", …]}`. `None` when its key is not
/// `jsonpaths` (Redshift then ignores the file and maps as 'auto').
pub fn parse_json_paths_file(text: &str) -> Result<Option<Vec<Vec<JsonStep>>>, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("Invalid jsonpaths file: {e}"))?;
    let Some(paths) = doc.get("jsonpaths") else {
        return Ok(None);
    };
    let paths = paths
        .as_array()
        .ok_or("Invalid jsonpaths file: \"jsonpaths\" must be an array")?;
    paths
        .iter()
        .map(|p| {
            p.as_str()
                .ok_or_else(|| "Invalid jsonpaths file: every path must be a string".to_string())
                .and_then(parse_json_path)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A JSON value as the text of a field: strings as they are, numbers and booleans as
/// written, objects and arrays as JSON, null as NULL.
fn field_text(v: &Value) -> Option<Cow<'static, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Owned(s.clone())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// Records of JSON input: every root-level object (or array) is one record whose line is
/// the object's last line, as Redshift reports it. `names` are the field's column names.
pub(crate) fn json_records<'a>(
    text: &'a str,
    mapping: &JsonMapping,
    names: &[String],
) -> Vec<Record<'a>> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    // Line numbers by counting newlines once, up to offsets that only grow.
    let (mut counted, mut newlines) = (0usize, 0u64);
    let mut line_at = |offset: usize| -> u64 {
        let offset = offset.min(text.len());
        if offset > counted {
            newlines +=
                memchr::memchr_iter(b'\n', &text.as_bytes()[counted..offset]).count() as u64;
            counted = offset;
        }
        newlines + 1
    };
    let mut start = 0;
    loop {
        let next = stream.next();
        let end = stream.byte_offset();
        let Some(next) = next else { break };
        let raw = text[start..end].trim();
        let start_line =
            line_at(start + (text[start..end].len() - text[start..end].trim_start().len()));
        let line = line_at(end.saturating_sub(1));
        start = end;
        let value = match next {
            Ok(v) => v,
            Err(e) => {
                // The rest of the file cannot be resynchronized: one error for it.
                let line = e.line() as u64;
                out.push(Record {
                    line,
                    end_line: line,
                    raw: text
                        .lines()
                        .nth(line.saturating_sub(1) as usize)
                        .unwrap_or_default()
                        .into(),
                    fields: vec![],
                    unbalanced: false,
                    error: Some((1224, format!("Invalid JSON: {e}"))),
                });
                break;
            }
        };
        let mut error = None;
        let fields: Vec<Option<Cow<'a, str>>> = match (mapping, &value) {
            (_, Value::Object(_) | Value::Array(_)) => match mapping {
                JsonMapping::Auto { ignore_case } => names
                    .iter()
                    .map(|name| {
                        let obj = value.as_object()?;
                        let v = match obj.get(name) {
                            Some(v) => Some(v),
                            None if *ignore_case => obj
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v),
                            None => None,
                        };
                        v.and_then(field_text)
                    })
                    .collect(),
                JsonMapping::Paths(paths) => paths
                    .iter()
                    .map(|steps| {
                        let mut at = &value;
                        for s in steps {
                            match (s, at) {
                                (JsonStep::Key(k), Value::Object(o)) => match o.get(k) {
                                    Some(v) => at = v,
                                    None => return None,
                                },
                                (JsonStep::Index(i), Value::Array(a)) if *i < a.len() => {
                                    at = &a[*i];
                                }
                                (JsonStep::Index(_), _) => {
                                    error.get_or_insert((
                                        1224,
                                        "Invalid JSONPath format: Not an array or index out of range."
                                            .to_string(),
                                    ));
                                    return None;
                                }
                                _ => return None,
                            }
                        }
                        field_text(at)
                    })
                    .collect(),
            },
            _ => {
                error = Some((
                    1224,
                    "Invalid JSON: a record must be a JSON object or array".to_string(),
                ));
                vec![]
            }
        };
        out.push(Record {
            line,
            end_line: line.max(start_line),
            raw: Cow::Borrowed(raw),
            fields,
            unbalanced: false,
            error,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_paths() {
        assert_eq!(
            parse_json_path("$.a.b").unwrap(),
            vec![JsonStep::Key("a".into()), JsonStep::Key("b".into())]
        );
        assert_eq!(
            parse_json_path("$['a b'][\"c\"][2]").unwrap(),
            vec![
                JsonStep::Key("a b".into()),
                JsonStep::Key("c".into()),
                JsonStep::Index(2)
            ]
        );
        assert_eq!(
            parse_json_path("$.c[0].d").unwrap(),
            vec![
                JsonStep::Key("c".into()),
                JsonStep::Index(0),
                JsonStep::Key("d".into())
            ]
        );
        assert!(parse_json_path("a.b").is_err());
        assert!(parse_json_path("$.a[*]").is_err());
        assert!(parse_json_path("$..a").is_err());
        assert_eq!(parse_json_paths_file(r#"{"paths": []}"#).unwrap(), None);
    }

    #[test]
    fn reads_json_objects_and_fixed_width_lines() {
        let names = vec!["id".to_string(), "name".to_string()];
        let text = "{\"id\": 1, \"name\": \"a\"}\n{\"ID\": 2,\n \"extra\": true}\n[1]";
        let r = json_records(text, &JsonMapping::Auto { ignore_case: false }, &names);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].fields, vec![Some("1".into()), Some("a".into())]);
        assert_eq!(r[1].fields, vec![None, None]);
        assert_eq!((r[1].line, r[2].line), (3, 4));
        let r = json_records(text, &JsonMapping::Auto { ignore_case: true }, &names);
        assert_eq!(r[1].fields, vec![Some("2".into()), None]);
        let r = json_records(
            "{\"a\": [1, {\"b\": \"x\"}]} {",
            &JsonMapping::Paths(vec![
                parse_json_path("$.a[1].b").unwrap(),
                parse_json_path("$.a[5]").unwrap(),
            ]),
            &names,
        );
        assert_eq!(r[0].fields, vec![Some("x".into()), None]);
        assert_eq!(r[0].error.as_ref().map(|e| e.0), Some(1224));
        assert_eq!(r[1].error.as_ref().map(|e| e.0), Some(1224));

        let widths = parse_fixed_width("id:3,name:5").unwrap();
        let r = fixed_width_records("  1abc  \n 22héllo\n333\n", &widths, "\\N", 0);
        assert_eq!(r[0].fields, vec![Some("  1".into()), Some("abc".into())]);
        assert_eq!(r[1].fields, vec![Some(" 22".into()), Some("héllo".into())]);
        assert_eq!(r[2].fields, vec![Some("333".into())]);
        assert!(parse_fixed_width("id:x").is_err());
    }
}
