//! COPY's work on a worker: read input files, split them into records and fields
//! (Redshift's delimited text or CSV), convert the fields to the table's column types,
//! report every rejected row with Redshift's load error codes, route the good rows to
//! their slices by the table's distribution, and write sorted, encoded segments.
//!
//! Conversion is columnar: input is cut into pieces of a few MB at record boundaries,
//! each piece's records are split into one vector of fields per column, and each column
//! is parsed straight into its Arrow array (integers, decimals, ISO dates and text by
//! hand-written fast paths; anything else, and any value a fast path declines, through
//! Arrow's cast). A row whose field does not convert (or is too long, or NULL in a NOT
//! NULL column) is an error row, dropped and reported.
//! Segments may be written for any slice: they land in the shared storage root and only
//! become part of the table when the leader commits the whole COPY.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::objects::{self, ObjectAccess, ObjectError};
use crate::protocol::SegmentRef;
use formats::JsonMapping;

mod convert;
pub mod formats;
mod parse;
mod records;
mod route;
mod split;
pub mod stats;

pub use convert::*;
#[cfg(test)]
use parse::*;
pub use records::*;
pub use route::*;

/// How input text is split into records and fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextFormat {
    pub delimiter: u8,
    /// `Some(quote)` for CSV.
    pub csv_quote: Option<u8>,
    /// Lines skipped at the start of every file.
    pub ignore_header: u64,
    /// A field equal to this is NULL.
    pub null_as: String,
    pub empty_as_null: bool,
    pub blanks_as_null: bool,
    pub truncate_columns: bool,
    pub ignore_blank_lines: bool,
    pub fill_record: bool,
    /// How every input file is compressed.
    pub compression: Compression,
    /// ESCAPE: a backslash takes the next character literally.
    pub escape: bool,
    /// REMOVEQUOTES: strip surrounding single or double quotes, keeping delimiters inside.
    pub remove_quotes: bool,
    /// TRIMBLANKS: drop trailing blanks of CHAR/VARCHAR values.
    pub trim_blanks: bool,
    /// DATEFORMAT / TIMEFORMAT: a Redshift format string, `auto`, or for TIMEFORMAT
    /// `epochsecs` / `epochmillisecs` (None: the defaults, which `auto` also accepts).
    pub date_format: Option<String>,
    pub time_format: Option<String>,
    /// ACCEPTANYDATE: an unparseable date or timestamp loads as NULL.
    pub accept_any_date: bool,
    /// FIXEDWIDTH: field widths in characters, in column order.
    pub fixed_widths: Option<Vec<usize>>,
    /// JSON input and how objects map to fields.
    pub json: Option<JsonMapping>,
    /// ACCEPTINVCHARS: each byte of an invalid UTF-8 sequence becomes this character
    /// (default `?`); without it a line with invalid UTF-8 is rejected (1220).
    pub accept_inv_chars: Option<char>,
    /// ROUNDEC: round a decimal with more digits than the column's scale (the default
    /// truncates, as Redshift).
    pub round_decimals: bool,
    /// PARQUET input: columns by position.
    pub parquet: bool,
}

impl Default for TextFormat {
    /// Redshift's defaults: `|`-delimited text, `\N` for NULL, nothing else on.
    fn default() -> Self {
        Self {
            delimiter: b'|',
            csv_quote: None,
            ignore_header: 0,
            null_as: "\\N".into(),
            empty_as_null: false,
            blanks_as_null: false,
            truncate_columns: false,
            ignore_blank_lines: false,
            fill_record: false,
            compression: Compression::None,
            escape: false,
            remove_quotes: false,
            trim_blanks: false,
            date_format: None,
            time_format: None,
            accept_any_date: false,
            fixed_widths: None,
            json: None,
            accept_inv_chars: None,
            round_decimals: false,
            parquet: false,
        }
    }
}

/// COPY's GZIP, BZIP2 and ZSTD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Zstd,
}

/// Decompress one input file.
pub fn decompress(bytes: bytes::Bytes, compression: Compression) -> std::io::Result<bytes::Bytes> {
    use std::io::Read;
    let mut out = Vec::new();
    match compression {
        Compression::None => return Ok(bytes),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(bytes.as_ref()).read_to_end(&mut out)?;
        }
        Compression::Bzip2 => {
            bzip2::read::MultiBzDecoder::new(bytes.as_ref()).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(bytes.as_ref())?.read_to_end(&mut out)?;
        }
    }
    Ok(out.into())
}

/// How rows reach slices, mirroring the table's DISTSTYLE.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Routing {
    Key { column: usize, slice_count: u32 },
    Even { slice_count: u32, start: u64 },
    All,
}

/// `DoAction(load)` body: load `files` into a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadRequest {
    pub query: u64,
    pub table_id: u64,
    /// Table schema (Arrow IPC).
    pub schema_ipc: Vec<u8>,
    /// For each input field in order, the table column it fills.
    pub fields: Vec<usize>,
    /// Per table column: NOT NULL, and its length limit in bytes for CHAR/VARCHAR.
    pub not_null: Vec<bool>,
    pub max_bytes: Vec<Option<u32>>,
    /// SQL type names for error reports (`int4`, `varchar`, …).
    pub type_names: Vec<String>,
    pub format: TextFormat,
    pub files: Vec<InputPart>,
    /// Credentials and endpoint for `s3://` inputs.
    pub access: ObjectAccess,
    pub routing: Routing,
    pub sort_key: Vec<usize>,
    pub interleaved: bool,
    pub codecs: Vec<basalt_storage::segment::Codec>,
    /// NOLOAD: check the input, write nothing.
    pub noload: bool,
    /// Per table column: the DEFAULT value, as text, for columns not in `fields`.
    pub defaults: Vec<Option<String>>,
    /// Text inputs larger than this (after decompression) are converted in pieces of
    /// about this size, in parallel.
    pub piece_bytes: u64,
    /// IDENTITY columns the input does not fill: (column, first value, step). The
    /// worker numbers its good rows in the order it reads them.
    pub identity: Vec<(usize, i64, i64)>,
    /// Per table column, the name segments store it under (it differs from the schema's
    /// after RENAME COLUMN). Empty: the schema's names.
    pub stored_names: Vec<String>,
    /// Gather the loaded rows' statistics ([`crate::load::stats`]) for the leader.
    #[serde(default)]
    pub gather_stats: bool,
}

/// `batches` with their columns named as segments store them.
pub fn as_stored(
    batches: Vec<RecordBatch>,
    stored_names: &[String],
) -> arrow::error::Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let schema = first.schema();
    if stored_names.is_empty()
        || schema
            .fields()
            .iter()
            .zip(stored_names)
            .all(|(f, n)| f.name() == n)
    {
        return Ok(batches);
    }
    let renamed = Arc::new(arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .zip(stored_names)
            .map(|(f, n)| f.as_ref().clone().with_name(n))
            .collect::<Vec<_>>(),
    ));
    batches
        .into_iter()
        .map(|b| RecordBatch::try_new(renamed.clone(), b.columns().to_vec()))
        .collect()
}

impl LoadRequest {
    /// A rejected row as `stl_load_errors` reports it: where it is (file, line, raw
    /// line), the column at fault if any, Redshift's code and reason, the field's value.
    fn row_error(
        &self,
        schema: &SchemaRef,
        (filename, line, raw): (&str, i64, &str),
        col: Option<usize>,
        (code, reason): (i32, String),
        value: &str,
    ) -> LoadError {
        LoadError {
            filename: filename.to_string(),
            line_number: line,
            colname: col
                .map(|c| schema.field(c).name().clone())
                .unwrap_or_default(),
            col_type: col.map(|c| self.type_names[c].clone()).unwrap_or_default(),
            col_length: col
                .and_then(|c| self.max_bytes[c])
                .map(|b| b.to_string())
                .unwrap_or_default(),
            position: 0,
            raw_line: raw.to_string(),
            raw_field_value: value.to_string(),
            err_code: code,
            err_reason: reason,
        }
    }
}

/// A file, or a byte range of one: the records that *start* in `start..end` (a record
/// straddling `end` is read to its end; one straddling `start` belongs to the range
/// before). Large uncompressed text files are cut this way so several workers load them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputPart {
    /// A server-local path or an `s3://` URL (see [`crate::objects`]).
    pub path: String,
    /// The whole object's size, as listed.
    pub size: u64,
    pub start: u64,
    /// `None`: to the end of the file (and the whole file when `start` is 0).
    pub end: Option<u64>,
}

impl InputPart {
    pub fn whole(path: String, size: u64) -> Self {
        Self {
            path,
            size,
            start: 0,
            end: None,
        }
    }

    pub fn is_whole(&self) -> bool {
        self.start == 0 && self.end.is_none()
    }
}

/// The bytes of `part`: the whole object, or for a byte range its records from the first
/// that starts at or after `start` through the end of the record that straddles `end`.
/// The bytes read are not copied again (input is the largest thing a COPY holds).
pub async fn read_part(
    part: &InputPart,
    access: &ObjectAccess,
) -> Result<bytes::Bytes, ObjectError> {
    if part.is_whole() {
        return objects::read(&part.path, access).await;
    }
    let loc = objects::open(&part.path, access)?;
    let len = part.size;
    let end = part.end.unwrap_or(len).min(len);
    // One byte before `start` tells whether a record begins exactly at `start`.
    let from = part.start.saturating_sub(1).min(end);
    let first = objects::read_range(&loc, from..end, len).await?;
    if end < len && first.last() != Some(&b'\n') {
        // Finish the record that straddles `end`.
        let mut buf = Vec::from(first);
        let mut at = end;
        while at < len {
            let chunk = objects::read_range(&loc, at..at + (1 << 16), len).await?;
            at += chunk.len() as u64;
            if let Some(i) = chunk.iter().position(|b| *b == b'\n') {
                buf.extend_from_slice(&chunk[..=i]);
                break;
            }
            buf.extend_from_slice(&chunk);
        }
        return Ok(skip_partial_record(part, bytes::Bytes::from(buf)));
    }
    Ok(skip_partial_record(part, first))
}

/// `buf` (read from one byte before `part.start`) without the record that began before
/// `start`, which belongs to the range before.
fn skip_partial_record(part: &InputPart, buf: bytes::Bytes) -> bytes::Bytes {
    if part.start == 0 {
        return buf;
    }
    let begin = memchr::memchr(b'\n', &buf).map_or(buf.len(), |i| i + 1);
    buf.slice(begin..)
}

/// One rejected row, as `stl_load_errors` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadError {
    pub filename: String,
    /// -1 when unknown: a row of a byte range that does not start the file.
    pub line_number: i64,
    pub colname: String,
    pub col_type: String,
    pub col_length: String,
    pub position: i32,
    pub raw_line: String,
    pub raw_field_value: String,
    pub err_code: i32,
    pub err_reason: String,
}

impl LoadError {
    /// An error about a whole file (or its line `line`) rather than one field.
    pub fn file(filename: &str, line: i64, code: i32, reason: String) -> Self {
        Self {
            filename: filename.to_string(),
            line_number: line,
            colname: String::new(),
            col_type: String::new(),
            col_length: String::new(),
            position: 0,
            raw_line: String::new(),
            raw_field_value: String::new(),
            err_code: code,
            err_reason: reason,
        }
    }
}

/// How far a worker is with its share of a running COPY (`stv_load_state`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadProgress {
    pub query: u64,
    /// Input bytes read and converted so far (compressed size for compressed input).
    pub bytes_loaded: u64,
    pub lines: u64,
    pub files_complete: u64,
    /// The input most recently finished.
    pub current_file: String,
}

/// What a worker reports for its share of a COPY.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub segments: Vec<SegmentRef>,
    pub rows_loaded: u64,
    pub errors: Vec<LoadError>,
    /// Input bytes read (for progress and throughput).
    pub bytes_read: u64,
    /// Per input file: its name and the lines it had (`stl_load_commits`).
    pub files: Vec<(String, u64)>,
    /// Statistics of the loaded rows, when asked for and every column's type allows.
    #[serde(default)]
    pub stats: Option<crate::load::stats::LoadStats>,
    /// CSV byte ranges read: (path, range start, quote bytes in the records read), so
    /// the leader can check that each range began outside quotes.
    #[serde(default)]
    pub range_quotes: Vec<(String, u64, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, AsArray, StringArray};
    use arrow::compute::{CastOptions, cast_with_options};
    use arrow::datatypes::{DataType, Field, Schema};
    use basalt_storage::layout::SliceId;

    /// A request to load `|`-delimited text, input field `k` filling column `k`, whose
    /// NOT NULL, byte limit and type name `columns[k]` gives.
    fn request(columns: &[(bool, Option<u32>, &str)]) -> LoadRequest {
        LoadRequest {
            query: 1,
            table_id: 1,
            schema_ipc: vec![],
            fields: (0..columns.len()).collect(),
            not_null: columns.iter().map(|c| c.0).collect(),
            max_bytes: columns.iter().map(|c| c.1).collect(),
            type_names: columns.iter().map(|c| c.2.to_string()).collect(),
            format: format(false),
            files: vec![],
            access: ObjectAccess::default(),
            routing: Routing::All,
            sort_key: vec![],
            interleaved: false,
            codecs: vec![],
            noload: false,
            defaults: vec![],
            piece_bytes: 16 << 20,
            identity: vec![],
            stored_names: vec![],
            gather_stats: false,
        }
    }

    fn format(csv: bool) -> TextFormat {
        TextFormat {
            delimiter: if csv { b',' } else { b'|' },
            csv_quote: csv.then_some(b'"'),
            ..TextFormat::default()
        }
    }

    #[tokio::test]
    async fn byte_ranges_partition_the_records() {
        let dir = std::env::temp_dir().join(format!("basalt-part-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.txt");
        let text: String = (0..500)
            .map(|i| format!("{i}|{}\n", "x".repeat(i % 37)))
            .collect();
        std::fs::write(&path, &text).unwrap();
        let len = text.len() as u64;
        for cuts in [vec![1u64], vec![7, 8, 9], vec![100, 101, 2000, 2001, 5000]] {
            let mut bounds = vec![0];
            bounds.extend(cuts.into_iter().filter(|c| *c < len));
            bounds.push(len);
            let mut joined = Vec::new();
            for w in bounds.windows(2) {
                let part = InputPart {
                    path: path.to_string_lossy().into_owned(),
                    size: len,
                    start: w[0],
                    end: Some(w[1]),
                };
                let access = ObjectAccess::default();
                joined.extend_from_slice(&read_part(&part, &access).await.unwrap());
            }
            assert_eq!(String::from_utf8(joined).unwrap(), text);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn simple_quoted_lines_match_the_full_reader() {
        let f = format(true);
        for line in [
            "1,\"a, b\",x",
            "1, \"q\" ,",
            "\"\",2,\\N",
            ",,",
            "1,\"a\"\"b\",c",
            "1,a\"b,c",
            "1,\"open",
            "\"x\" y,1",
        ] {
            // ESCAPE has no effect on CSV but keeps the reader off its fast path.
            let text = format!("{line}\n");
            let slow = TextFormat {
                escape: true,
                ..f.clone()
            };
            let full = records(&text, &slow, 8);
            let fast = simple_quoted_fields(line, &f, b'"');
            if let Some(fast) = fast {
                assert_eq!(fast, full.fields_of(0), "{line}");
            }
        }
        assert!(simple_quoted_fields("1,\"a\"\"b\",c", &f, b'"').is_none());
        assert!(simple_quoted_fields("1,\"open", &f, b'"').is_none());
        assert_eq!(trim_blanks(" \ta b\t "), "a b");
        assert_eq!(trim_blanks("  "), "");
    }

    /// Whether the fast reader splits `text` exactly as the general reader does (None
    /// when it declines), comparing every record: where it came from, its raw text, its
    /// field count and its fields.
    fn spans_agree(text: &str, f: &TextFormat, fields: usize) -> Option<()> {
        let fast = split::split_spans(text, f, fields, line_count(text) as usize + 1)?;
        let slow = records(text, f, fields);
        let fast = Split::Spans(fast);
        let what = format!("{text:?} {f:?} fields={fields}");
        assert_eq!(fast.len(), slow.len(), "{what}");
        for i in 0..fast.len() {
            let b = &slow.rows[i];
            assert_eq!(b.line, b.end_line, "{what} record {i}");
            assert_eq!(
                fast.origin(i),
                (b.line, b.raw.as_ref()),
                "{what} record {i}"
            );
            assert_eq!(
                fast.shape(i),
                (b.fields, b.unbalanced, None),
                "{what} record {i}"
            );
            let got: Vec<Option<&str>> = (0..b.fields.min(fields))
                .map(|k| match fast.field(k) {
                    Fields::Spans(text, spans) => spans[i].get(text),
                    Fields::Values(_) => unreachable!(),
                })
                .collect();
            let want = slow.fields_of(i);
            let want: Vec<Option<&str>> = want.iter().map(|v| v.as_deref()).collect();
            assert_eq!(got, want, "{what} record {i}");
            for k in b.fields..fields {
                assert!(matches!(fast.field(k), Fields::Spans(t, s) if s[i].get(t).is_none()));
            }
        }
        Some(())
    }

    /// The fast reader agrees with the general reader on every record, and declines only
    /// input whose quotes it does not handle.
    #[test]
    fn span_reader_matches_the_general_reader() {
        let long = format!("{}|{}\n", "x".repeat(70), "y".repeat(130));
        let quoted_long = format!("1,\"{}\",2\n\"{}\" , x\n", "a,".repeat(40), "b ".repeat(33));
        // (input, whether CSV must take the fast reader)
        let inputs: Vec<(&str, bool)> = vec![
            ("a|b|c\n1|2|3\n", true),
            ("a|b|c\n1|2|3", true),
            ("h1|h2\n\n x | y \n\\N||\n", true),
            ("1|2\r\n3|4\r\n\r\n5\r", true),
            ("|\n||\n|||\n", true),
            ("\n\n\n", true),
            ("x", true),
            ("", true),
            ("é|ü|日本\n\\N|\\N\n", true),
            ("1,2, 3 ,\t4\t\n, ,\n", true),
            ("1,\"a, b\",x\n2, \"q\" ,\n\"\",2,\\N\n", true),
            ("\"x\"\r\n\"\\N\",\"\"\r\n", true),
            (&long, true),
            (&quoted_long, true),
            ("1,\"a\"\"b\",c\n", false),
            ("1,a\"b,c\n", false),
            ("1,\"open\n", false),
            ("1,\"two\nlines\",3\n", false),
            ("\"x\" y,1\n", false),
        ];
        for (text, csv_fast) in &inputs {
            for csv in [false, true] {
                for (header, blanks) in [(0, false), (1, false), (0, true), (2, true)] {
                    let f = TextFormat {
                        ignore_header: header,
                        ignore_blank_lines: blanks,
                        ..format(csv)
                    };
                    for fields in [1, 2, 3, 5] {
                        let done = spans_agree(text, &f, fields).is_some();
                        assert!(done || (csv && !csv_fast), "{text:?} declined, csv={csv}");
                    }
                }
            }
        }
        // Many records of mixed fields, so quotes and delimiters fall on every position
        // of the 64-byte blocks.
        let pool = [
            "", "7", " 12 ", "\"a,b\"", "\\N", "\" \"", " \"q\" ", "xyz,", "é",
        ];
        let mut text = String::new();
        let mut seed = 7u64;
        for line in 0..400 {
            let n = 1 + line % 4;
            for k in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if k > 0 {
                    text.push(',');
                }
                text.push_str(pool[(seed >> 33) as usize % pool.len()]);
            }
            text.push_str(if line % 5 == 0 { "\r\n" } else { "\n" });
        }
        for fields in [2, 3, 4] {
            spans_agree(&text, &format(true), fields).expect("CSV of simple quoted fields");
        }
    }

    #[test]
    fn record_cuts_respect_quotes() {
        let text = b"1,\"a\nb\"\n2,x\n3,\"\"\"q\n\"\n4,y\n";
        for chunk in 1..text.len() {
            for cut in record_cuts(text, Some(b'"'), chunk) {
                assert!([8, 12, 21].contains(&cut), "chunk {chunk}: cut {cut}");
            }
        }
        assert_eq!(record_cuts(b"a\nb\nc\n", None, 1), vec![2, 4]);
    }

    #[test]
    fn decimals_truncate_or_round_to_the_scale() {
        assert_eq!(fit_scale("20.259", 2, false), "20.25");
        assert_eq!(fit_scale("20.259", 2, true), "20.26");
        assert_eq!(fit_scale("-9.995", 2, true), "-10.00");
        assert_eq!(fit_scale("99.5", 0, true), "100");
        assert_eq!(fit_scale(".996", 2, true), "1.00");
        assert_eq!(fit_scale("1.5", 2, true), "1.5");
        assert_eq!(fit_scale("1e5", 2, true), "1e5");
    }

    /// The hand-written ISO date parser agrees with chrono on every day of many years,
    /// leap rules included, and rejects what chrono rejects.
    #[test]
    fn iso_dates_match_chrono() {
        use chrono::Datelike;
        for year in [
            0, 1, 3, 4, 99, 100, 399, 400, 1582, 1899, 1900, 1969, 1970, 1971, 1992, 1996, 1998,
            1999, 2000, 2001, 2023, 2024, 2100, 2400, 9999,
        ] {
            for month in 0..=13u32 {
                for day in 0..=32u32 {
                    let s = format!("{year:04}-{month:02}-{day:02}");
                    let want = chrono::NaiveDate::from_ymd_opt(year, month, day)
                        .map(|d| d.num_days_from_ce() - 719_163);
                    assert_eq!(parse_iso_date(&s), want, "{s}");
                }
            }
        }
    }

    /// The fast parsers agree with Arrow's cast (after the scale rule) wherever they
    /// answer, and decline what they do not fully understand.
    #[test]
    fn fast_parsers_match_arrows_cast() {
        use arrow::datatypes::{Date32Type, Decimal128Type, Int16Type, Int64Type};
        let cast = |s: &str, target: &DataType| {
            let strings: ArrayRef = Arc::new(StringArray::from(vec![s]));
            cast_with_options(&strings, target, &CastOptions::default()).ok()
        };
        let decimals = [
            "0",
            "-0",
            "12",
            "12.5",
            "12.50",
            "12.505",
            "12.995",
            "-12.995",
            "999.99",
            "999.995",
            "1000",
            "0.001",
            "-0.005",
            "00012.30",
            "1e3",
            "1.2.3",
            "",
            "-",
            ".5",
            "5.",
            "+5",
            " 5",
            "12.3x",
            "99999999999999999999999999999999999999",
            "9999999999999999.99",
            "123456789012345678.5",
            "-1234567890123456.785",
        ];
        for round in [false, true] {
            for (p, sc) in [(5u8, 2i8), (15, 2), (38, 10), (3, 0)] {
                let target = DataType::Decimal128(p, sc);
                for s in decimals {
                    let Some(fast) = parse_decimal(s, p, sc as u32, round) else {
                        continue;
                    };
                    let slow = cast(&fit_scale(s, sc as usize, round), &target)
                        .unwrap_or_else(|| panic!("{s} parsed fast but Arrow rejects it"));
                    let slow = slow.as_primitive::<Decimal128Type>();
                    assert!(slow.is_valid(0), "{s} as {target}");
                    assert_eq!(fast, slow.value(0), "{s} as {target} round={round}");
                }
            }
        }
        assert_eq!(parse_decimal("12.505", 4, 2, true), Some(1251));
        assert_eq!(parse_decimal("12.505", 4, 2, false), Some(1250));
        assert_eq!(parse_decimal("99.995", 4, 2, true), None);
        assert_eq!(parse_decimal("-0.005", 4, 2, true), Some(-1));
        for s in [
            "0",
            "-1",
            "32767",
            "-32768",
            "123456789012345678",
            "12a",
            "",
            "-",
        ] {
            if let Some(v) = parse_int(s) {
                let slow = cast(s, &DataType::Int64).expect("Arrow parses it");
                assert_eq!(v, slow.as_primitive::<Int64Type>().value(0), "{s}");
            }
        }
        assert_eq!(
            parse_int("-32768").and_then(|v| i16::try_from(v).ok()),
            Some(-32768)
        );
        assert!(
            cast("32768", &DataType::Int16)
                .is_some_and(|a| a.as_primitive::<Int16Type>().is_null(0))
        );
        for s in [
            "1970-01-01",
            "2024-02-29",
            "1900-03-01",
            "9999-12-31",
            "0001-01-01",
        ] {
            let slow = cast(s, &DataType::Date32).expect("Arrow parses it");
            assert_eq!(
                parse_iso_date(s),
                Some(slow.as_primitive::<Date32Type>().value(0)),
                "{s}"
            );
        }
        for s in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "20240101",
            "2024-01-0x",
        ] {
            assert_eq!(parse_iso_date(s), None, "{s}");
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_or_marks_its_line() {
        let input = b"ok\nbad \xff\xfe\nfine \xe2\x82\n";
        let (text, bad) = decode_text(input, None);
        assert_eq!(bad, vec![2, 3]);
        assert!(text.starts_with("ok\nbad \u{fffd}"));
        let (text, bad) = decode_text(input, Some('^'));
        assert!(bad.is_empty());
        assert_eq!(text, "ok\nbad ^^\nfine ^^\n");
    }

    #[test]
    fn splits_text_and_csv_records() {
        let r = records("1|a|\\N\n2||x\r\n", &format(false), 3);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.fields_of(0),
            vec![Some("1".into()), Some("a".into()), None]
        );
        assert_eq!(
            r.fields_of(1),
            vec![Some("2".into()), Some("".into()), Some("x".into())]
        );
        let c = records(
            "1,\"a,b\",\"say \"\"hi\"\"\"\n2, \"multi\nline\" ,\n",
            &format(true),
            3,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.fields_of(0),
            vec![
                Some("1".into()),
                Some("a,b".into()),
                Some("say \"hi\"".into())
            ]
        );
        assert_eq!(c.rows[1].line, 2);
        assert_eq!(c.fields_of(1)[1], Some("multi\nline".into()));
    }

    #[test]
    fn converts_and_reports_bad_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
        ]));
        let req = request(&[
            (true, None, "int4"),
            (false, Some(3), "varchar"),
            (false, None, "date"),
        ]);
        let text = "1|abc|2024-01-02\nx|a|2024-01-02\n3|abcd|2024-01-02\n4|a|2024-13-45\n|a|\n5|b\n6|c|2024-01-01|extra\n";
        let (batch, errors) = convert(&req, &schema, "f.txt", text);
        let batch = batch.unwrap();
        assert_eq!(batch.num_rows(), 1);
        let codes: Vec<(i64, i32)> = errors.iter().map(|e| (e.line_number, e.err_code)).collect();
        assert_eq!(
            codes,
            vec![
                (6, 1214),
                (7, 1202),
                (2, 1207),
                (5, 1213),
                (3, 1204),
                (4, 1205)
            ]
        );
        assert_eq!(errors[2].raw_field_value, "x");
        assert_eq!(errors[2].colname, "id");
        assert_eq!(errors[2].raw_line, "x|a|2024-01-02");
    }

    /// A converted piece, sorted, holds the same rows, grouped by slice and sorted by the
    /// sort key within each.
    #[test]
    fn sorted_pieces_keep_their_rows_grouped_by_slice() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
        ]));
        let mut text = String::new();
        for i in 0..300u32 {
            let id = if i % 37 == 5 {
                "x".to_string()
            } else {
                (i * 7 % 101).to_string()
            };
            let name = if i % 41 == 3 { "toolong" } else { "ab" };
            let day = if i % 29 == 4 || i % 37 == 5 {
                "2024-02-30".to_string()
            } else {
                format!("2024-01-{:02}", i % 28 + 1)
            };
            let amount = if i % 31 == 6 || i % 41 == 3 {
                "1.5e".to_string()
            } else {
                format!("{}.{:02}", i, i % 100)
            };
            let line = match i % 53 {
                7 => format!("{id}|{name}"),
                _ => format!("{id}|{name}|{day}|{amount}"),
            };
            text.push_str(&line);
            text.push('\n');
        }
        let base = request(&[
            (true, None, "int8"),
            (false, Some(4), "varchar"),
            (true, None, "date"),
            (false, None, "numeric"),
        ]);
        let sorted_req = LoadRequest {
            routing: Routing::Key {
                column: 0,
                slice_count: 4,
            },
            sort_key: vec![2, 3],
            ..base.clone()
        };
        let (plain, errors) = convert(&base, &schema, "f.txt", &text);
        assert!(errors.len() > 20, "{}", errors.len());
        let plain = plain.unwrap();
        let placed = place_piece(&sorted_req, plain.clone());
        let sorted = placed.batch;
        // The targets found before sorting travel with their rows.
        assert_eq!(placed.targets, Some(route(&sorted, &sorted_req.routing, 0)));
        let unplaced = place_piece(&base, plain.clone());
        assert_eq!((unplaced.batch, unplaced.targets), (plain.clone(), None));
        let rows = |b: &RecordBatch| -> Vec<String> {
            (0..b.num_rows())
                .map(|r| {
                    (0..b.num_columns())
                        .map(|c| {
                            arrow::util::display::array_value_to_string(b.column(c), r).unwrap()
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect()
        };
        let (mut want, got) = (rows(&plain), rows(&sorted));
        assert!(want.len() > 200);
        let mut all = got.clone();
        all.sort();
        want.sort();
        assert_eq!(all, want);
        let slices = basalt_storage::hash::slices_for_keys(sorted.column(0), 4).unwrap();
        let days = sorted
            .column(2)
            .as_primitive::<arrow::datatypes::Date32Type>();
        let amounts = sorted
            .column(3)
            .as_primitive::<arrow::datatypes::Decimal128Type>();
        for r in 1..sorted.num_rows() {
            let key = |r: usize| (slices[r], days.value(r), amounts.value(r));
            assert!(
                key(r - 1) <= key(r),
                "row {r}: {:?} > {:?}",
                key(r - 1),
                key(r)
            );
        }
    }

    /// Each slice gets exactly its rows, in order, whether the rows come grouped by slice
    /// (slices of the batch) or mixed (row numbers).
    #[test]
    fn split_by_slice_keeps_each_slices_rows_in_order() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let values: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(0..8));
        let batch = RecordBatch::try_new(schema, vec![values]).unwrap();
        let s = SliceId::Slice;
        for targets in [
            vec![s(2), s(2), s(0), s(0), s(0), s(1), s(3), s(3)],
            vec![s(2), s(0), s(2), s(0), s(0), s(1), s(3), s(3)],
            vec![s(1); 8],
        ] {
            let parts = split_by_slice(&batch, &targets);
            for (slice, part) in &parts {
                let want: Vec<i64> = (0..8).filter(|&i| targets[i as usize] == *slice).collect();
                let got = part.column(0).unwrap();
                let got: Vec<i64> = got
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec();
                assert_eq!(got, want, "{targets:?} {slice:?}");
                let rows: Vec<i64> = (0..part.len())
                    .map(|i| {
                        let v = part
                            .batch
                            .column(0)
                            .as_primitive::<arrow::datatypes::Int64Type>();
                        v.value(part.row(i))
                    })
                    .collect();
                assert_eq!(rows, want);
            }
            let total: usize = parts.values().map(SliceRows::len).sum();
            assert_eq!(total, 8);
        }
    }
}
