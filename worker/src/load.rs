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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::FormatOptions;
use basalt_storage::layout::SliceId;
use serde::{Deserialize, Serialize};

use crate::formats::{self, JsonMapping};
use crate::objects::{self, ObjectAccess, ObjectError};
use crate::protocol::SegmentRef;
use crate::split::{self, Span, SpanRecords};

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
    /// Gather the loaded rows' statistics ([`crate::load_stats`]) for the leader.
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
    pub stats: Option<crate::load_stats::LoadStats>,
    /// CSV byte ranges read: (path, range start, quote bytes in the records read), so
    /// the leader can check that each range began outside quotes.
    #[serde(default)]
    pub range_quotes: Vec<(String, u64, u64)>,
}

/// One record of input: its fields (None = NULL) and where it came from.
pub(crate) struct Record<'a> {
    /// The line reported for it (its first line; for JSON its last, as Redshift).
    pub line: u64,
    /// Its last line (records may span lines).
    pub end_line: u64,
    pub raw: Cow<'a, str>,
    pub fields: Vec<Option<Cow<'a, str>>>,
    /// REMOVEQUOTES met a quote that was never closed.
    pub unbalanced: bool,
    /// The reader already knows the record is bad: Redshift's code and reason.
    pub error: Option<(i32, String)>,
}

/// Where a record came from and what the reader saw, without its fields.
pub(crate) struct RecordInfo<'a> {
    pub line: u64,
    pub end_line: u64,
    pub raw: Cow<'a, str>,
    /// How many fields the record had.
    pub fields: usize,
    pub unbalanced: bool,
    pub error: Option<(i32, String)>,
}

impl<'a> RecordInfo<'a> {
    /// A record that is the one input line `raw`, numbered `line`.
    fn one_line(line: u64, raw: &'a str) -> Self {
        RecordInfo {
            line,
            end_line: line,
            raw: Cow::Borrowed(raw),
            fields: 0,
            unbalanced: false,
            error: None,
        }
    }
}

/// Records in columnar form, as the converter reads them: per record its
/// [`RecordInfo`], per input field one vector of values (`None` = NULL or absent; a
/// record's fields beyond the COPY's count are counted but not kept). Each column is
/// then converted from contiguous memory, and a record costs no allocation of its own.
pub(crate) struct Records<'a> {
    pub rows: Vec<RecordInfo<'a>>,
    pub columns: Vec<Vec<Option<Cow<'a, str>>>>,
}

impl<'a> Records<'a> {
    pub fn new(fields: usize) -> Self {
        Self::with_capacity(fields, 0)
    }

    /// Room for `records` records without growing.
    pub fn with_capacity(fields: usize, records: usize) -> Self {
        Self {
            rows: Vec::with_capacity(records),
            columns: (0..fields).map(|_| Vec::with_capacity(records)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Append a record: `info` (its field count is filled in here) and its fields.
    pub fn push(
        &mut self,
        mut info: RecordInfo<'a>,
        fields: impl IntoIterator<Item = Option<Cow<'a, str>>>,
    ) {
        let mut n = 0;
        for f in fields {
            if let Some(column) = self.columns.get_mut(n) {
                column.push(f);
            }
            n += 1;
        }
        for column in self.columns.iter_mut().skip(n) {
            column.push(None);
        }
        info.fields = n;
        self.rows.push(info);
    }

    /// Records a format reader produced one by one.
    pub fn from_rows(recs: Vec<Record<'a>>, fields: usize) -> Self {
        let mut out = Self::new(fields);
        for r in recs {
            let info = RecordInfo {
                line: r.line,
                end_line: r.end_line,
                raw: r.raw,
                fields: 0,
                unbalanced: r.unbalanced,
                error: r.error,
            };
            out.push(info, r.fields);
        }
        out
    }

    /// Record `i`'s kept fields.
    #[cfg(test)]
    fn fields_of(&self, i: usize) -> Vec<Option<Cow<'a, str>>> {
        let n = self.rows[i].fields.min(self.columns.len());
        self.columns[..n].iter().map(|c| c[i].clone()).collect()
    }
}

/// A piece's records as the converter reads them: from the fast reader or the general one.
pub(crate) enum Split<'a> {
    Spans(SpanRecords<'a>),
    General(Records<'a>),
}

impl<'a> Split<'a> {
    fn len(&self) -> usize {
        match self {
            Split::Spans(s) => s.rows.len(),
            Split::General(r) => r.len(),
        }
    }

    /// Record `i`'s field count, whether REMOVEQUOTES found a quote never closed, and
    /// what the reader already knows is wrong with it.
    fn shape(&self, i: usize) -> (usize, bool, Option<&(i32, String)>) {
        match self {
            Split::Spans(s) => (s.rows[i].fields as usize, false, None),
            Split::General(r) => {
                let row = &r.rows[i];
                (row.fields, row.unbalanced, row.error.as_ref())
            }
        }
    }

    /// Record `i`'s first line number and raw text, for its load errors.
    fn origin(&self, i: usize) -> (u64, &str) {
        match self {
            Split::Spans(s) => {
                let row = &s.rows[i];
                let raw = &s.text[row.start as usize..row.end as usize];
                (u64::from(row.line), raw)
            }
            Split::General(r) => (r.rows[i].line, r.rows[i].raw.as_ref()),
        }
    }

    /// Input field `k` of every record.
    fn field(&self, k: usize) -> Fields<'_> {
        match self {
            Split::Spans(s) => Fields::Spans(s.text, &s.columns[k]),
            Split::General(r) => Fields::Values(&r.columns[k]),
        }
    }
}

/// One input field of every record of a piece.
#[derive(Clone, Copy)]
enum Fields<'r> {
    Spans(&'r str, &'r [Span]),
    Values(&'r [Option<Cow<'r, str>>]),
}

/// Split `text` into records, every case. Text format: `delimiter`-separated fields, one
/// record per line, `\r\n` accepted. CSV: RFC 4180 quoting (doubled quotes, delimiters and
/// newlines inside quotes), whitespace around quoted fields ignored. Most input takes
/// the faster [`split::split_spans`], which answers the same or declines.
fn records<'a>(text: &'a str, format: &TextFormat, fields: usize) -> Records<'a> {
    // One record per line, or fewer: counting lines first saves growing every column.
    let lines = memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1;
    let mut out = Records::with_capacity(fields, lines);
    let bytes = text.as_bytes();
    let mut line_no = 0u64;
    let mut pos = 0;
    // Lines with nothing to unescape or unquote are cut in place, without copying.
    let plain = !format.escape && !format.remove_quotes;
    while pos < bytes.len() {
        if plain {
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            let line = &text[pos..end];
            let line = line.strip_suffix('\r').unwrap_or(line);
            let quoted = format
                .csv_quote
                .filter(|&q| memchr::memchr(q, line.as_bytes()).is_some());
            let fields = match quoted {
                Some(q) => simple_quoted_fields(line, format, q),
                None => Some(vec![]),
            };
            if let Some(fields) = fields {
                line_no += 1;
                pos = (end + 1).min(bytes.len());
                if line_no <= format.ignore_header || (format.ignore_blank_lines && line.is_empty())
                {
                    continue;
                }
                let info = RecordInfo::one_line(line_no, line);
                if quoted.is_some() {
                    out.push(info, fields);
                } else {
                    // Split straight into the columns, no per-record vector.
                    let split = line
                        .split(format.delimiter as char)
                        .map(|f| plain_field(f, format));
                    out.push(info, split);
                }
                continue;
            }
        }
        let start_line = line_no + 1;
        let start = pos;
        let mut fields: Vec<Option<Cow<'a, str>>> = Vec::new();
        let mut field = Vec::new();
        let mut quoted = false;
        let mut was_quoted = false;
        // The quote REMOVEQUOTES is inside, if any.
        let mut strip: Option<u8> = None;
        let mut unbalanced = false;
        loop {
            if pos >= bytes.len() {
                line_no += 1;
                unbalanced |= strip.is_some();
                break;
            }
            let b = bytes[pos];
            pos += 1;
            let quote = format.csv_quote;
            if format.escape && b == b'\\' && pos < bytes.len() && quote.is_none() {
                // `\N` alone still means NULL; any other escaped byte is literal.
                let next = bytes[pos];
                pos += 1;
                if next == b'N' && field.is_empty() {
                    field.extend_from_slice(b"\\N");
                } else {
                    if next == b'\n' {
                        line_no += 1;
                    }
                    field.push(next);
                }
            } else if let Some(q) = strip {
                if b == q {
                    strip = None;
                } else if b == b'\n' {
                    line_no += 1;
                    unbalanced = true;
                    break;
                } else {
                    field.push(b);
                }
            } else if format.remove_quotes
                && quote.is_none()
                && (b == b'"' || b == b'\'')
                && field.is_empty()
            {
                strip = Some(b);
                was_quoted = true;
            } else if quote == Some(b) && quoted {
                if bytes.get(pos) == Some(&b) {
                    field.push(b);
                    pos += 1;
                } else {
                    quoted = false;
                }
            } else if quote == Some(b) && field.iter().all(|c: &u8| c.is_ascii_whitespace()) {
                field.clear();
                quoted = true;
                was_quoted = true;
            } else if quoted {
                if b == b'\n' {
                    line_no += 1;
                }
                field.push(b);
            } else if b == b'\n' {
                line_no += 1;
                break;
            } else if b == format.delimiter {
                fields.push(finish_field(&mut field, was_quoted, format));
                was_quoted = false;
            } else if !(was_quoted && b.is_ascii_whitespace()) {
                field.push(b);
            }
        }
        let mut end = pos;
        while end > start && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        if field.last() == Some(&b'\r') && !was_quoted {
            field.pop();
        }
        let raw = Cow::Borrowed(&text[start..end]);
        fields.push(finish_field(&mut field, was_quoted, format));
        if start_line <= format.ignore_header {
            continue;
        }
        if format.ignore_blank_lines && raw.is_empty() {
            continue;
        }
        let info = RecordInfo {
            line: start_line,
            end_line: line_no,
            raw,
            fields: 0,
            unbalanced,
            error: None,
        };
        out.push(info, fields);
    }
    out
}

/// A finished field: the NULL string (unquoted) is NULL, anything else its text.
fn finish_field(
    field: &mut Vec<u8>,
    quoted: bool,
    format: &TextFormat,
) -> Option<Cow<'static, str>> {
    let text = String::from_utf8_lossy(field).into_owned();
    field.clear();
    if format.csv_quote.is_some() && !quoted {
        let trimmed = text.trim_matches([' ', '\t']);
        if trimmed == format.null_as {
            return None;
        }
        return Some(Cow::Owned(trimmed.to_string()));
    }
    if !quoted && text == format.null_as {
        return None;
    }
    Some(Cow::Owned(text))
}

/// An unquoted, unescaped field as a slice of the input: [`finish_field`] without the
/// copy.
fn plain_field<'a>(field: &'a str, format: &TextFormat) -> Option<Cow<'a, str>> {
    let field = if format.csv_quote.is_some() {
        trim_blanks(field)
    } else {
        field
    };
    (field != format.null_as).then_some(Cow::Borrowed(field))
}

/// `s` without leading and trailing spaces and tabs.
fn trim_blanks(s: &str) -> &str {
    let b = s.as_bytes();
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !blank(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !blank(c)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// The fields of a one-line CSV record whose quoted fields hold no quote and no newline
/// (`1,"a, b",x`), as slices of the line; None when the line needs the full reader
/// (doubled quotes, a quote inside a field, a quoted field that goes on past the line).
fn simple_quoted_fields<'a>(
    line: &'a str,
    format: &TextFormat,
    quote: u8,
) -> Option<Vec<Option<Cow<'a, str>>>> {
    let b = line.as_bytes();
    let d = format.delimiter;
    let blank = |c: u8| c == b' ' || c == b'\t';
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let mut j = i;
        while j < b.len() && blank(b[j]) {
            j += 1;
        }
        if j < b.len() && b[j] == quote {
            let close = memchr::memchr(quote, &b[j + 1..])? + j + 1;
            let mut k = close + 1;
            while k < b.len() && blank(b[k]) {
                k += 1;
            }
            if k < b.len() && b[k] != d {
                return None;
            }
            // A quoted field is never NULL.
            out.push(Some(Cow::Borrowed(&line[j + 1..close])));
            if k >= b.len() {
                return Some(out);
            }
            i = k + 1;
        } else {
            let e = memchr::memchr(d, &b[i..]).map_or(b.len(), |x| i + x);
            let field = &line[i..e];
            if memchr::memchr(quote, field.as_bytes()).is_some() {
                return None;
            }
            out.push(plain_field(field, format));
            if e >= b.len() {
                return Some(out);
            }
            i = e + 1;
        }
    }
}

/// Load one file's text: the rows converted to `schema`, and its rejected rows.
pub fn convert(
    req: &LoadRequest,
    schema: &SchemaRef,
    filename: &str,
    text: &str,
) -> (Option<RecordBatch>, Vec<LoadError>) {
    convert_checked(req, schema, filename, text, &[], None)
}

/// [`convert`] for text whose lines `bad_lines` held invalid UTF-8 (now replaced):
/// their records are rejected with Redshift's 1220. `newlines`: the text's newlines, when
/// already counted.
fn convert_checked(
    req: &LoadRequest,
    schema: &SchemaRef,
    filename: &str,
    text: &str,
    bad_lines: &[u64],
    newlines: Option<u64>,
) -> (Option<RecordBatch>, Vec<LoadError>) {
    let format = &req.format;
    let fields = req.fields.len();
    if format.json.is_none() && format.fixed_widths.is_none() && bad_lines.is_empty() {
        let lines = newlines.unwrap_or_else(|| self::newlines(text.as_bytes())) + 1;
        if let Some(spans) = split::split_spans(text, format, fields, lines as usize) {
            return convert_records(req, schema, filename, Split::Spans(spans));
        }
    }
    let mut recs = if let Some(mapping) = &format.json {
        let names: Vec<String> = req
            .fields
            .iter()
            .map(|&c| schema.field(c).name().clone())
            .collect();
        Records::from_rows(formats::json_records(text, mapping, &names), fields)
    } else if let Some(widths) = &format.fixed_widths {
        let recs =
            formats::fixed_width_records(text, widths, &format.null_as, format.ignore_header);
        Records::from_rows(recs, fields)
    } else {
        records(text, format, fields)
    };
    if !bad_lines.is_empty() {
        for r in &mut recs.rows {
            let lines = r.line.min(r.end_line)..=r.end_line.max(r.line);
            if r.error.is_none() && bad_lines.iter().any(|l| lines.contains(l)) {
                r.error = Some((
                    1220,
                    "Invalid or unsupported UTF8 codepoints in the input".into(),
                ));
            }
        }
    }
    convert_records(req, schema, filename, Split::General(recs))
}

/// Decode input bytes as UTF-8. Invalid sequences become ACCEPTINVCHARS' character, one
/// per byte, when it is given; otherwise U+FFFD, and their lines are returned so the
/// records on them are rejected.
pub fn decode_text(bytes: &[u8], accept: Option<char>) -> (std::borrow::Cow<'_, str>, Vec<u64>) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (std::borrow::Cow::Borrowed(text), vec![]);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut bad_lines = vec![];
    let mut rest = bytes;
    let mut line = 1u64;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                let valid = std::str::from_utf8(valid).expect("checked prefix");
                line += valid.bytes().filter(|b| *b == b'\n').count() as u64;
                out.push_str(valid);
                let n = e.error_len().unwrap_or(after.len());
                match accept {
                    Some(c) => out.extend(std::iter::repeat_n(c, n)),
                    None => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        if bad_lines.last() != Some(&line) {
                            bad_lines.push(line);
                        }
                    }
                }
                rest = &after[n..];
            }
        }
    }
    (std::borrow::Cow::Owned(out), bad_lines)
}

/// Records are split and converted in pieces of about this many bytes: small enough that
/// a piece's records and columns stay in cache-friendly, reused memory, large enough that
/// per-piece overhead does not show.
const PIECE_BYTES: usize = 4 << 20;

/// Convert a file's (or byte range's) bytes after decompression: its rows (as one placed
/// piece per few MB of input, in input order), its rejected rows and its line count.
pub fn convert_input(
    req: &LoadRequest,
    schema: &SchemaRef,
    filename: &str,
    bytes: &[u8],
) -> (Vec<Piece>, Vec<LoadError>, u64) {
    let (text, bad_lines) = decode_text(bytes, req.format.accept_inv_chars);
    let format = &req.format;
    // A large input (a decompressed file, say) is cut at record boundaries and its
    // pieces converted in parallel; formats whose records may span lines in ways a cut
    // cannot see (JSON, ESCAPE, REMOVEQUOTES) stay whole.
    let cuttable = format.json.is_none() && !format.escape && !format.remove_quotes;
    let piece = (req.piece_bytes as usize).clamp(1 << 16, PIECE_BYTES);
    let cuts = if cuttable && text.len() > piece {
        record_cuts(text.as_bytes(), format.csv_quote, piece)
    } else {
        vec![]
    };
    if cuts.is_empty() {
        let (batch, errors) = convert_checked(req, schema, filename, &text, &bad_lines, None);
        let piece = batch.map(|b| place_piece(req, b));
        return (piece.into_iter().collect(), errors, line_count(&text));
    }
    use rayon::prelude::*;
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(cuts)
        .chain(std::iter::once(text.len()))
        .collect();
    // Each piece's first line, from the newlines of the pieces before it (counted in
    // parallel); the last piece's count gives the input's lines.
    let counts: Vec<u64> = bounds
        .par_windows(2)
        .map(|w| newlines(&text.as_bytes()[w[0]..w[1]]))
        .collect();
    let mut pieces: Vec<(usize, usize, u64, u64)> = Vec::with_capacity(counts.len());
    let mut line = 0u64;
    for (w, &count) in bounds.windows(2).zip(&counts) {
        pieces.push((w[0], w[1], line, count));
        line += count;
    }
    let lines = line + unterminated_line(&text);
    let converted: Vec<(Option<Piece>, Vec<LoadError>)> = pieces
        .par_iter()
        .map(|&(start, end, first_line, newlines)| {
            let mut local = req.clone();
            if start > 0 {
                local.format.ignore_header = local.format.ignore_header.saturating_sub(first_line);
            }
            let piece_bad: Vec<u64> = bad_lines
                .iter()
                .filter(|l| **l > first_line)
                .map(|l| l - first_line)
                .collect();
            let piece = &text[start..end];
            let (batch, mut errors) =
                convert_checked(&local, schema, filename, piece, &piece_bad, Some(newlines));
            for e in &mut errors {
                if e.line_number > 0 {
                    e.line_number += first_line as i64;
                }
            }
            (batch.map(|b| place_piece(req, b)), errors)
        })
        .collect();
    let mut batches = vec![];
    let mut errors = vec![];
    for (b, e) in converted {
        batches.extend(b);
        errors.extend(e);
    }
    (batches, errors, lines)
}

/// A converted piece of input, and for a KEY distribution each row's target slice,
/// found where the piece was converted (in parallel) rather than by the one task that
/// routes every piece.
pub struct Piece {
    pub batch: RecordBatch,
    /// None: route the rows when they are loaded (EVEN and ALL depend on the rows before;
    /// IDENTITY values, which a key may be, are numbered then).
    pub targets: Option<Vec<SliceId>>,
}

/// A converted piece, placed: its KEY targets, and its rows in sort-key order grouped by
/// target slice when the table has a compound sort key. Sorting while the piece is still
/// in cache makes each slice's rows of it one contiguous sorted run, so the segment
/// writer, which merges the runs, reads every run front to back instead of gathering
/// rows from all over memory. (The writer sorts all rows anyway: a piece left unsorted
/// only costs speed.) Nothing is placed while IDENTITY values are numbered in input order.
fn place_piece(req: &LoadRequest, batch: RecordBatch) -> Piece {
    let keyed = matches!(req.routing, Routing::Key { .. });
    if !req.identity.is_empty() || !keyed && req.sort_key.is_empty() {
        return Piece {
            batch,
            targets: None,
        };
    }
    let targets = keyed.then(|| route(&batch, &req.routing, 0));
    let sorted = (!req.sort_key.is_empty() && !req.interleaved)
        .then(|| {
            let keys: Vec<ArrayRef> = req
                .sort_key
                .iter()
                .map(|&c| batch.column(c).clone())
                .collect();
            crate::service::sort_indices(&keys, false).ok()
        })
        .flatten();
    let Some(sorted) = sorted else {
        return Piece { batch, targets };
    };
    let order: Vec<u32> = match (&targets, &req.routing) {
        // Group the sorted rows by target slice, keeping their order within each.
        (Some(targets), Routing::Key { slice_count, .. }) => {
            let slice = |row: u32| match targets[row as usize] {
                SliceId::Slice(s) => (s as usize).min(*slice_count as usize),
                SliceId::All => 0,
            };
            let mut starts = vec![0u32; *slice_count as usize + 2];
            for &row in sorted.values() {
                starts[slice(row) + 1] += 1;
            }
            for k in 1..starts.len() {
                starts[k] += starts[k - 1];
            }
            let mut grouped = vec![0u32; sorted.len()];
            for &row in sorted.values() {
                let at = &mut starts[slice(row)];
                grouped[*at as usize] = row;
                *at += 1;
            }
            grouped
        }
        _ => sorted.values().to_vec(),
    };
    let indices = arrow::array::UInt32Array::from(order.clone());
    match arrow::compute::take_record_batch(&batch, &indices) {
        Ok(sorted) => Piece {
            batch: sorted,
            targets: targets.map(|t| order.iter().map(|&r| t[r as usize]).collect()),
        },
        Err(_) => Piece { batch, targets },
    }
}

/// Finds record boundaries about every `chunk` bytes of input fed to it in order:
/// offsets right after a newline outside quotes. For CSV the quote parity at each target
/// comes from counting quote bytes (doubled quotes count twice, so parity is exact), then
/// the cut is the first newline at even parity from there. The leader uses it to cut a
/// local CSV file into byte ranges, a worker to cut a large decompressed input into
/// pieces.
pub struct RecordCuts {
    quote: Option<u8>,
    chunk: u64,
    /// Input bytes fed so far.
    pos: u64,
    inside: bool,
    target: u64,
    cuts: Vec<u64>,
}

impl RecordCuts {
    pub fn new(quote: Option<u8>, chunk: u64) -> Self {
        let chunk = chunk.max(1);
        Self {
            quote,
            chunk,
            pos: 0,
            inside: false,
            target: chunk,
            cuts: vec![],
        }
    }

    /// The next bytes of the input.
    pub fn feed(&mut self, buf: &[u8]) {
        let mut i = 0;
        while i < buf.len() {
            let to_target = self.target.saturating_sub(self.pos + i as u64) as usize;
            if to_target > 0 {
                // Before the target only the parity matters: count quotes in bulk.
                let stop = (i + to_target).min(buf.len());
                if let Some(q) = self.quote {
                    self.inside ^= memchr::memchr_iter(q, &buf[i..stop]).count() % 2 == 1;
                }
                i = stop;
                continue;
            }
            let b = buf[i];
            i += 1;
            if Some(b) == self.quote {
                self.inside = !self.inside;
            } else if b == b'\n' && !self.inside {
                let cut = self.pos + i as u64;
                self.cuts.push(cut);
                self.target = cut + self.chunk;
            }
        }
        self.pos += buf.len() as u64;
    }

    /// The cuts strictly inside the input fed.
    pub fn finish(self) -> Vec<u64> {
        let end = self.pos;
        self.cuts.into_iter().filter(|c| *c < end).collect()
    }
}

/// [`RecordCuts`] over one in-memory input.
fn record_cuts(text: &[u8], quote: Option<u8>, chunk: usize) -> Vec<usize> {
    let mut cuts = RecordCuts::new(quote, chunk as u64);
    cuts.feed(text);
    cuts.finish().into_iter().map(|c| c as usize).collect()
}

/// Newline bytes in `bytes` (counted with SIMD).
fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Lines in `text` (a last line without a newline counts).
pub fn line_count(text: &str) -> u64 {
    newlines(text.as_bytes()) + unterminated_line(text)
}

/// 1 when `text` ends with a line that has no newline.
fn unterminated_line(text: &str) -> u64 {
    u64::from(!text.is_empty() && !text.ends_with('\n'))
}

fn convert_records(
    req: &LoadRequest,
    schema: &SchemaRef,
    filename: &str,
    recs: Split<'_>,
) -> (Option<RecordBatch>, Vec<LoadError>) {
    let mut errors = Vec::new();
    let ncols = schema.fields().len();
    let mut bad = vec![false; recs.len()];
    let error = |i: usize, col: Option<usize>, code: i32, reason: String, value: &str| {
        let (line, raw) = recs.origin(i);
        req.row_error(
            schema,
            (filename, line as i64, raw),
            col,
            (code, reason),
            value,
        )
    };
    // Field count: Redshift's 1214 (too few) and 1202 (too many).
    for (i, is_bad) in bad.iter_mut().enumerate() {
        let (n, unbalanced, known) = recs.shape(i);
        let problem = if let Some((code, reason)) = known {
            Some((*code, reason.clone()))
        } else if unbalanced {
            Some((1216, "Invalid input line: unbalanced quote".into()))
        } else if n < req.fields.len() && !req.format.fill_record {
            Some((1214, "Delimiter not found".into()))
        } else if n > req.fields.len() {
            Some((1202, "Extra column(s) found".into()))
        } else {
            None
        };
        if let Some((code, reason)) = problem {
            errors.push(error(i, None, code, reason, ""));
            *is_bad = true;
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(ncols);
    for c in 0..ncols {
        let text = ColumnText {
            values: req
                .fields
                .iter()
                .position(|&f| f == c)
                .map(|k| recs.field(k)),
            rows: recs.len(),
            default: req.defaults.get(c).and_then(|d| d.as_deref()),
        };
        let mut rejects = Vec::new();
        let column = Column {
            req,
            index: c,
            target: schema.field(c).data_type(),
        };
        columns.push(column.convert(&text, &mut bad, &mut rejects));
        // Each column's rejects in input order, as the rows were read.
        rejects.sort_by_key(|r| r.row);
        for r in rejects {
            errors.push(error(r.row, Some(c), r.code, r.reason, &r.value));
        }
    }
    if recs.len() == 0 {
        return (None, errors);
    }
    let batch = match RecordBatch::try_new(schema.clone(), columns) {
        Ok(b) => b,
        Err(e) => {
            errors.push(LoadError::file(
                filename,
                0,
                1200,
                format!("Unknown parse error: {e}"),
            ));
            return (None, errors);
        }
    };
    if !bad.contains(&true) {
        return (Some(batch), errors);
    }
    let keep = BooleanArray::from(bad.iter().map(|b| !b).collect::<Vec<_>>());
    let batch = filter_record_batch(&batch, &keep).ok();
    (batch, errors)
}

/// One table column's text in every record: its input field, or for a column not in the
/// COPY's list its DEFAULT (as text). `None` is NULL.
struct ColumnText<'r> {
    /// The input field's values (None: the column is not in the COPY's list).
    values: Option<Fields<'r>>,
    rows: usize,
    default: Option<&'r str>,
}

impl<'r> ColumnText<'r> {
    fn len(&self) -> usize {
        self.rows
    }

    #[inline(always)]
    fn get(&self, row: usize) -> Option<&'r str> {
        match self.values {
            Some(Fields::Spans(text, spans)) => spans[row].get(text),
            Some(Fields::Values(values)) => values[row].as_deref(),
            None => self.default,
        }
    }

    /// The value of a non-text column: blanks around it dropped, a blank field NULL.
    #[inline(always)]
    fn get_trimmed(&self, row: usize) -> Option<&'r str> {
        self.get(row).map(str::trim_ascii).filter(|t| !t.is_empty())
    }
}

/// A field that does not fit its column: the row is rejected with Redshift's code.
struct Reject {
    row: usize,
    code: i32,
    reason: String,
    value: String,
}

/// Conversion of one table column's fields to its Arrow type.
struct Column<'q> {
    req: &'q LoadRequest,
    index: usize,
    target: &'q DataType,
}

impl Column<'_> {
    /// Parse the column's fields, marking rows whose field does not fit in `bad` (a row
    /// already bad is not reported again). The common types are parsed straight into
    /// their Arrow arrays; a value their fast parser declines, and every other type, goes
    /// through Arrow's cast, so the fast paths change speed, not results.
    fn convert(&self, text: &ColumnText, bad: &mut [bool], rejects: &mut Vec<Reject>) -> ArrayRef {
        use arrow::datatypes::{Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type};
        let format = &self.req.format;
        // 'auto' reads other forms too: those dates take the general path.
        let default_dates = format.date_format.is_none();
        match self.target {
            DataType::Utf8 => self.text(text, bad, rejects),
            DataType::Int16 => self.primitive::<Int16Type>(text, bad, rejects, |s| {
                parse_int(s).and_then(|v| i16::try_from(v).ok())
            }),
            DataType::Int32 => self.primitive::<Int32Type>(text, bad, rejects, |s| {
                parse_int(s).and_then(|v| i32::try_from(v).ok())
            }),
            DataType::Int64 => self.primitive::<Int64Type>(text, bad, rejects, parse_int),
            DataType::Decimal128(precision, scale) if *scale >= 0 => {
                let (precision, scale) = (*precision, *scale as u32);
                let round = format.round_decimals;
                // 10^precision, the first value too large, once per column.
                let limit = 10i128.checked_pow(u32::from(precision));
                self.primitive::<Decimal128Type>(text, bad, rejects, |s| {
                    parse_decimal_below(s, limit?, scale, round)
                })
            }
            DataType::Date32 if default_dates => {
                self.primitive::<Date32Type>(text, bad, rejects, parse_iso_date)
            }
            _ => self.general(text, bad, rejects),
        }
    }

    /// CHAR/VARCHAR: EMPTYASNULL, BLANKSASNULL, TRIMBLANKS, then the length limit in
    /// bytes (TRUNCATECOLUMNS cuts at a character boundary instead of rejecting).
    fn text(&self, text: &ColumnText, bad: &mut [bool], rejects: &mut Vec<Reject>) -> ArrayRef {
        let format = &self.req.format;
        let max = self.req.max_bytes[self.index].map(|m| m as usize);
        let not_null = self.req.not_null[self.index];
        let bytes: usize = (0..text.len())
            .map(|i| text.get(i).map_or(0, str::len))
            .sum();
        let mut builder = arrow::array::StringBuilder::with_capacity(text.len(), bytes);
        for (i, is_bad) in bad.iter_mut().enumerate() {
            let value = text.get(i).filter(|s| {
                !((format.empty_as_null && s.is_empty())
                    || (format.blanks_as_null && s.trim().is_empty()))
            });
            let Some(mut s) = value else {
                builder.append_null();
                if not_null && !*is_bad {
                    rejects.push(missing_not_null(i));
                    *is_bad = true;
                }
                continue;
            };
            if format.trim_blanks {
                s = s.trim_end_matches([' ', '\t']);
            }
            match max {
                Some(m) if s.len() > m && format.truncate_columns => {
                    builder.append_value(truncate_bytes(s, m));
                }
                Some(m) if s.len() > m => {
                    builder.append_value(s);
                    if !*is_bad {
                        rejects.push(Reject {
                            row: i,
                            code: 1204,
                            reason: "String length exceeds DDL length".into(),
                            value: s.to_string(),
                        });
                        *is_bad = true;
                    }
                }
                _ => builder.append_value(s),
            }
        }
        Arc::new(builder.finish())
    }

    /// A fixed-width type parsed by `fast`; what `fast` declines is cast by Arrow (after
    /// the decimal scale rule), and what Arrow cannot cast either is rejected.
    fn primitive<T: arrow::datatypes::ArrowPrimitiveType>(
        &self,
        text: &ColumnText,
        bad: &mut [bool],
        rejects: &mut Vec<Reject>,
        fast: impl Fn(&str) -> Option<T::Native>,
    ) -> ArrayRef {
        use arrow::array::{BooleanBufferBuilder, PrimitiveArray};
        use arrow::buffer::NullBuffer;
        let n = text.len();
        let not_null = self.req.not_null[self.index];
        let mut values: Vec<T::Native> = Vec::with_capacity(n);
        // Rows without a value so far: the validity bitmap is built only when there are
        // any (most columns have none).
        let mut missing: Vec<usize> = Vec::new();
        let mut slow: Vec<(usize, &str)> = Vec::new();
        for (i, is_bad) in bad.iter_mut().enumerate() {
            match text.get_trimmed(i) {
                None => {
                    values.push(T::Native::default());
                    missing.push(i);
                    if not_null && !*is_bad {
                        rejects.push(missing_not_null(i));
                        *is_bad = true;
                    }
                }
                Some(s) => match fast(s) {
                    Some(v) => values.push(v),
                    None => {
                        values.push(T::Native::default());
                        missing.push(i);
                        slow.push((i, s));
                    }
                },
            }
        }
        let mut recovered: Vec<usize> = Vec::new();
        if !slow.is_empty() {
            let strings: Vec<Cow<'_, str>> = slow.iter().map(|(_, s)| self.prepare(s)).collect();
            let strings: ArrayRef = Arc::new(StringArray::from_iter_values(strings.iter()));
            let cast = self.cast(&strings);
            let cast = cast.as_primitive::<T>();
            let prepared = strings.as_string::<i32>();
            for (k, &(i, _)) in slow.iter().enumerate() {
                if cast.is_valid(k) {
                    values[i] = cast.value(k);
                    recovered.push(i);
                    continue;
                }
                if bad[i] {
                    continue;
                }
                if let Some(reject) = self.unconvertible(i, prepared.value(k)) {
                    rejects.push(reject);
                    bad[i] = true;
                }
            }
        }
        let nulls = if missing.is_empty() {
            None
        } else {
            let mut valid = BooleanBufferBuilder::new(n);
            valid.append_n(n, true);
            for &i in &missing {
                valid.set_bit(i, false);
            }
            for &i in &recovered {
                valid.set_bit(i, true);
            }
            let valid = valid.finish();
            (valid.count_set_bits() < n).then(|| NullBuffer::new(valid))
        };
        Arc::new(PrimitiveArray::<T>::new(values.into(), nulls).with_data_type(self.target.clone()))
    }

    /// Every other type: the fields gathered as strings and cast (or parsed by a
    /// DATEFORMAT/TIMEFORMAT) as one column.
    fn general(&self, text: &ColumnText, bad: &mut [bool], rejects: &mut Vec<Reject>) -> ArrayRef {
        let not_null = self.req.not_null[self.index];
        let mut builder = arrow::array::StringBuilder::with_capacity(text.len(), text.len() * 8);
        for i in 0..text.len() {
            match text.get_trimmed(i) {
                Some(s) => builder.append_value(self.prepare(s)),
                None => builder.append_null(),
            }
        }
        let strings: ArrayRef = Arc::new(builder.finish());
        let converted = temporal(&strings, self.target, &self.req.format)
            .unwrap_or_else(|| self.cast(&strings));
        let input = strings.as_string::<i32>();
        for (i, is_bad) in bad.iter_mut().enumerate() {
            if *is_bad || converted.is_valid(i) {
                continue;
            }
            let reject = if input.is_valid(i) {
                self.unconvertible(i, input.value(i))
            } else if not_null {
                Some(missing_not_null(i))
            } else {
                None
            };
            if let Some(reject) = reject {
                rejects.push(reject);
                *is_bad = true;
            }
        }
        converted
    }

    /// A value as Arrow's parser should see it: decimals cut to the column's scale.
    fn prepare<'s>(&self, s: &'s str) -> Cow<'s, str> {
        match self.target {
            DataType::Decimal128(_, scale) if *scale >= 0 => {
                fit_scale(s, *scale as usize, self.req.format.round_decimals)
            }
            _ => Cow::Borrowed(s),
        }
    }

    fn cast(&self, strings: &ArrayRef) -> ArrayRef {
        if self.target == &DataType::Binary {
            // VARBYTE fields are hexadecimal text, as Redshift's COPY reads them (and
            // UNLOAD writes them); a value too long for the column is rejected too.
            let max = self.req.max_bytes[self.index].map_or(usize::MAX, |m| m as usize);
            let out: arrow::array::BinaryArray = strings
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.and_then(|s| crate::functions::decode_varbyte(s, "hex").ok())
                        .filter(|b| b.len() <= max)
                })
                .collect();
            return Arc::new(out);
        }
        let options = CastOptions {
            safe: true,
            format_options: FormatOptions::default(),
        };
        cast_with_options(strings, self.target, &options)
            .unwrap_or_else(|_| arrow::array::new_null_array(self.target, strings.len()))
    }

    /// The reject for a value that did not convert; None when ACCEPTANYDATE loads an
    /// unparseable date or timestamp as NULL (and the column allows NULL).
    fn unconvertible(&self, row: usize, value: &str) -> Option<Reject> {
        let temporal = matches!(self.target, DataType::Date32 | DataType::Timestamp(_, _));
        if temporal && self.req.format.accept_any_date {
            return self.req.not_null[self.index].then(|| missing_not_null(row));
        }
        let (code, reason) = conversion_error(self.target, value);
        Some(Reject {
            row,
            code,
            reason,
            value: value.to_string(),
        })
    }
}

fn missing_not_null(row: usize) -> Reject {
    Reject {
        row,
        code: 1213,
        reason: "Missing data for not-null field".into(),
        value: String::new(),
    }
}

/// Plain decimal digits with an optional minus sign, up to 18 of them (so no overflow);
/// anything else is left to Arrow's parser.
fn parse_int(s: &str) -> Option<i64> {
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
fn digits_value<'b>(digits: impl IntoIterator<Item = &'b u8>) -> Option<u64> {
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
fn parse_decimal(s: &str, precision: u8, scale: u32, round: bool) -> Option<i128> {
    parse_decimal_below(s, 10i128.checked_pow(u32::from(precision))?, scale, round)
}

/// [`parse_decimal`] with its precision given as `limit` = 10^precision.
fn parse_decimal_below(s: &str, limit: i128, scale: u32, round: bool) -> Option<i128> {
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
fn parse_iso_date(s: &str) -> Option<i32> {
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
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
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
fn temporal(strings: &ArrayRef, target: &DataType, format: &TextFormat) -> Option<ArrayRef> {
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
fn chrono_format(spec: &str) -> String {
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
fn fit_scale(s: &str, scale: usize, round: bool) -> Cow<'_, str> {
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

/// PARQUET input: the file's columns by position fill the COPY's fields, each cast to
/// its column's type; values that do not fit are rejected rows (line = row number), as
/// for text. Returns the rows, the rejected rows and the file's row count.
pub fn convert_parquet(
    req: &LoadRequest,
    schema: &SchemaRef,
    filename: &str,
    bytes: bytes::Bytes,
) -> (Option<RecordBatch>, Vec<LoadError>, u64) {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file_error = |code: i32, reason: String| LoadError::file(filename, 0, code, reason);
    let reader = match ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(1 << 16).build())
    {
        Ok(r) => r,
        Err(e) => {
            return (
                None,
                vec![file_error(1200, format!("Invalid Parquet file: {e}"))],
                0,
            );
        }
    };
    let found = arrow::array::RecordBatchReader::schema(&reader)
        .fields()
        .len();
    if found != req.fields.len() {
        let reason = format!(
            "Parquet file has {found} column(s); the COPY loads {} (columns match by position)",
            req.fields.len()
        );
        let code = if found > req.fields.len() { 1202 } else { 1214 };
        return (None, vec![file_error(code, reason)], 0);
    }
    let ncols = schema.fields().len();
    let mut out = vec![];
    let mut errors = vec![];
    let mut row_base = 0u64;
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                errors.push(file_error(1200, format!("Invalid Parquet file: {e}")));
                return (None, errors, row_base);
            }
        };
        let n = batch.num_rows();
        let mut bad = vec![false; n];
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(ncols);
        for c in 0..ncols {
            let target = schema.field(c).data_type();
            let Some(k) = req.fields.iter().position(|&f| f == c) else {
                let default = req.defaults.get(c).cloned().flatten();
                let text: ArrayRef = Arc::new(StringArray::from(vec![default; n]));
                columns.push(
                    cast_with_options(&text, target, &CastOptions::default())
                        .unwrap_or_else(|_| arrow::array::new_null_array(target, n)),
                );
                continue;
            };
            let source = batch.column(k);
            let mut converted = match cast_with_options(source, target, &CastOptions::default()) {
                Ok(a) => a,
                Err(_) => arrow::array::new_null_array(target, n),
            };
            if let (DataType::Utf8, Some(max), true) =
                (target, req.max_bytes[c], req.format.truncate_columns)
            {
                converted = Arc::new(StringArray::from_iter(
                    converted
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.map(|s| truncate_bytes(s, max as usize).to_string())),
                ));
            }
            let shown = arrow::util::display::ArrayFormatter::try_new(
                source.as_ref(),
                &FormatOptions::default(),
            )
            .ok();
            for (i, is_bad) in bad.iter_mut().enumerate() {
                if *is_bad {
                    continue;
                }
                let value = || {
                    shown
                        .as_ref()
                        .map_or(String::new(), |f| f.value(i).to_string())
                };
                let fail = if source.is_valid(i) && converted.is_null(i) {
                    let v = value();
                    Some((conversion_error(target, &v), v))
                } else if converted.is_valid(i)
                    && !req.format.truncate_columns
                    && matches!(target, DataType::Utf8)
                    && req.max_bytes[c]
                        .is_some_and(|m| converted.as_string::<i32>().value(i).len() > m as usize)
                {
                    Some(((1204, "String length exceeds DDL length".into()), value()))
                } else if converted.is_null(i) && req.not_null[c] {
                    Some((
                        (1213, "Missing data for not-null field".into()),
                        String::new(),
                    ))
                } else {
                    None
                };
                if let Some(((code, reason), v)) = fail {
                    *is_bad = true;
                    let at = (filename, (row_base + i as u64 + 1) as i64, "");
                    errors.push(req.row_error(schema, at, Some(c), (code, reason), &v));
                }
            }
            columns.push(converted);
        }
        row_base += n as u64;
        match RecordBatch::try_new(schema.clone(), columns) {
            Ok(b) => {
                let keep = BooleanArray::from(bad.iter().map(|b| !b).collect::<Vec<_>>());
                if let Ok(b) = filter_record_batch(&b, &keep) {
                    out.push(b);
                }
            }
            Err(e) => errors.push(file_error(1200, format!("Unknown parse error: {e}"))),
        }
    }
    let batch = arrow::compute::concat_batches(schema, &out).ok();
    (batch, errors, row_base)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Redshift's load error code and reason for a field that does not convert to `target`.
fn conversion_error(target: &DataType, value: &str) -> (i32, String) {
    let digits_ok = |c: char| c.is_ascii_digit() || c == '-' || c == '+';
    match target {
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            match value.char_indices().find(|(_, c)| !digits_ok(*c)) {
                Some((pos, _)) => (
                    1207,
                    format!("Invalid digit, Value '{value}', Pos {pos}, Type: Integer"),
                ),
                None => (1222, format!("Overflow, Value: {value}, Type: Integer")),
            }
        }
        DataType::Decimal128(_, _) => (
            1209,
            format!("Invalid decimal format, Value '{value}', Type: Decimal"),
        ),
        DataType::Float32 | DataType::Float64 => (1208, "Invalid float format".into()),
        DataType::Boolean => (1210, "Invalid boolean format".into()),
        DataType::Date32 => (1205, format!("Invalid Date Format - value '{value}'")),
        DataType::Timestamp(_, _) | DataType::Time64(_) => (
            1206,
            format!("Invalid timestamp format or value [YYYY-MM-DD HH24:MI:SS]: '{value}'"),
        ),
        DataType::Binary => (
            1204,
            format!("Invalid hexadecimal VARBYTE value, or longer than the column: '{value}'"),
        ),
        _ => (1223, "Invalid data type".into()),
    }
}

/// `batch` with IDENTITY columns numbered: row i gets `start + (offset + i) * step`.
pub fn fill_identity(
    batch: &RecordBatch,
    identity: &[(usize, i64, i64)],
    offset: u64,
) -> arrow::error::Result<RecordBatch> {
    if identity.is_empty() {
        return Ok(batch.clone());
    }
    let mut columns = batch.columns().to_vec();
    for &(column, start, step) in identity {
        let values = arrow::array::Int64Array::from_iter_values(
            (0..batch.num_rows() as i64).map(|i| start + (offset as i64 + i) * step),
        );
        let target = batch.schema().field(column).data_type().clone();
        columns[column] = arrow::compute::cast(&values, &target)?;
    }
    RecordBatch::try_new(batch.schema(), columns)
}

/// Target slice of every row of `batch`.
pub fn route(batch: &RecordBatch, routing: &Routing, offset: u64) -> Vec<SliceId> {
    match routing {
        Routing::Key {
            column,
            slice_count,
        } => basalt_storage::hash::slices_for_keys(batch.column(*column), *slice_count)
            .map(|s| s.into_iter().map(SliceId::Slice).collect())
            .unwrap_or_else(|_| vec![SliceId::Slice(0); batch.num_rows()]),
        Routing::Even { slice_count, start } => (0..batch.num_rows() as u64)
            .map(|i| SliceId::Slice(((start + offset + i) % u64::from(*slice_count)) as u32))
            .collect(),
        Routing::All => vec![SliceId::All; batch.num_rows()],
    }
}

/// The rows of one converted batch that go to one slice: all of them, or those at
/// `rows` (in input order). Kept as row numbers rather than copied out, so a row is
/// copied only once, when its segment is written.
#[derive(Debug, Clone)]
pub struct SliceRows {
    pub batch: RecordBatch,
    pub rows: Option<Arc<[u32]>>,
}

impl SliceRows {
    pub fn len(&self) -> usize {
        self.rows
            .as_ref()
            .map_or(self.batch.num_rows(), |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row number in `batch` of this part's `i`th row.
    pub fn row(&self, i: usize) -> usize {
        self.rows.as_ref().map_or(i, |r| r[i] as usize)
    }

    /// This part's values of column `c`, in order.
    pub fn column(&self, c: usize) -> arrow::error::Result<ArrayRef> {
        let column = self.batch.column(c);
        match &self.rows {
            None => Ok(column.clone()),
            Some(rows) => {
                let indices = arrow::array::UInt32Array::from(rows.to_vec());
                arrow::compute::take(column, &indices, None)
            }
        }
    }
}

/// Rows of `batch` per target slice: the whole batch when all go to one slice, a slice
/// of it per target when the rows are grouped by target (as sorted pieces are), else
/// row numbers.
pub fn split_by_slice(batch: &RecordBatch, targets: &[SliceId]) -> BTreeMap<SliceId, SliceRows> {
    let mut runs: Vec<(SliceId, usize, usize)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match runs.last_mut() {
            Some((slice, _, end)) if slice == t => *end = i + 1,
            _ => runs.push((*t, i, i + 1)),
        }
    }
    let grouped: BTreeMap<SliceId, (usize, usize)> =
        runs.iter().map(|&(s, a, b)| (s, (a, b))).collect();
    if grouped.len() == runs.len() {
        return grouped
            .into_iter()
            .map(|(s, (a, b))| {
                let part = SliceRows {
                    batch: batch.slice(a, b - a),
                    rows: None,
                };
                (s, part)
            })
            .collect();
    }
    let mut rows: BTreeMap<SliceId, Vec<u32>> = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        rows.entry(*t).or_default().push(i as u32);
    }
    let whole = rows.len() == 1;
    rows.into_iter()
        .map(|(s, indices)| {
            let rows = (!whole).then(|| Arc::from(indices));
            let part = SliceRows {
                batch: batch.clone(),
                rows,
            };
            (s, part)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

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
