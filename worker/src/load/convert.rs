//! Converting the fields of a piece of input to the table's column types, column by
//! column, into Arrow arrays; rejecting rows that do not convert with Redshift's load
//! error codes; and reading Parquet input the same way.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::FormatOptions;
use basalt_storage::layout::SliceId;

use super::parse::{fit_scale, parse_decimal_below, parse_int, parse_iso_date, temporal};
use super::records::{
    Fields, Records, Split, line_count, newlines, record_cuts, records, unterminated_line,
};
use super::route::{route, sort_indices};
use super::{LoadError, LoadRequest, Routing};
use super::{formats, split};

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
pub(super) fn convert_checked(
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
pub(super) const PIECE_BYTES: usize = 4 << 20;

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
pub(super) fn place_piece(req: &LoadRequest, batch: RecordBatch) -> Piece {
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
            sort_indices(&keys, false).ok()
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

pub(super) fn convert_records(
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
pub(super) struct ColumnText<'r> {
    /// The input field's values (None: the column is not in the COPY's list).
    values: Option<Fields<'r>>,
    rows: usize,
    default: Option<&'r str>,
}

impl<'r> ColumnText<'r> {
    pub(super) fn len(&self) -> usize {
        self.rows
    }

    #[inline(always)]
    pub(super) fn get(&self, row: usize) -> Option<&'r str> {
        match self.values {
            Some(Fields::Spans(text, spans)) => spans[row].get(text),
            Some(Fields::Values(values)) => values[row].as_deref(),
            None => self.default,
        }
    }

    /// The value of a non-text column: blanks around it dropped, a blank field NULL.
    #[inline(always)]
    pub(super) fn get_trimmed(&self, row: usize) -> Option<&'r str> {
        self.get(row).map(str::trim_ascii).filter(|t| !t.is_empty())
    }
}

/// A field that does not fit its column: the row is rejected with Redshift's code.
pub(super) struct Reject {
    row: usize,
    code: i32,
    reason: String,
    value: String,
}

/// Conversion of one table column's fields to its Arrow type.
pub(super) struct Column<'q> {
    req: &'q LoadRequest,
    index: usize,
    target: &'q DataType,
}

impl Column<'_> {
    /// Parse the column's fields, marking rows whose field does not fit in `bad` (a row
    /// already bad is not reported again). The common types are parsed straight into
    /// their Arrow arrays; a value their fast parser declines, and every other type, goes
    /// through Arrow's cast, so the fast paths change speed, not results.
    pub(super) fn convert(
        &self,
        text: &ColumnText,
        bad: &mut [bool],
        rejects: &mut Vec<Reject>,
    ) -> ArrayRef {
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
    pub(super) fn text(
        &self,
        text: &ColumnText,
        bad: &mut [bool],
        rejects: &mut Vec<Reject>,
    ) -> ArrayRef {
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
    pub(super) fn primitive<T: arrow::datatypes::ArrowPrimitiveType>(
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
    pub(super) fn general(
        &self,
        text: &ColumnText,
        bad: &mut [bool],
        rejects: &mut Vec<Reject>,
    ) -> ArrayRef {
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
    pub(super) fn prepare<'s>(&self, s: &'s str) -> Cow<'s, str> {
        match self.target {
            DataType::Decimal128(_, scale) if *scale >= 0 => {
                fit_scale(s, *scale as usize, self.req.format.round_decimals)
            }
            _ => Cow::Borrowed(s),
        }
    }

    pub(super) fn cast(&self, strings: &ArrayRef) -> ArrayRef {
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
    pub(super) fn unconvertible(&self, row: usize, value: &str) -> Option<Reject> {
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

pub(super) fn missing_not_null(row: usize) -> Reject {
    Reject {
        row,
        code: 1213,
        reason: "Missing data for not-null field".into(),
        value: String::new(),
    }
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
pub(super) fn truncate_bytes(s: &str, max: usize) -> &str {
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
pub(super) fn conversion_error(target: &DataType, value: &str) -> (i32, String) {
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
