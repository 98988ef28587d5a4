//! Reading records and fields out of input text: Redshift's delimited text and CSV,
//! with quotes, escapes, blank trimming and the general cases the fast splitter in
//! [`super::split`] gives up on; and cutting input into pieces at record boundaries.

use std::borrow::Cow;

use super::TextFormat;
use super::split::{Span, SpanRecords};

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
    pub(super) fn one_line(line: u64, raw: &'a str) -> Self {
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
    pub(super) fn fields_of(&self, i: usize) -> Vec<Option<Cow<'a, str>>> {
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
    pub(super) fn len(&self) -> usize {
        match self {
            Split::Spans(s) => s.rows.len(),
            Split::General(r) => r.len(),
        }
    }

    /// Record `i`'s field count, whether REMOVEQUOTES found a quote never closed, and
    /// what the reader already knows is wrong with it.
    pub(super) fn shape(&self, i: usize) -> (usize, bool, Option<&(i32, String)>) {
        match self {
            Split::Spans(s) => (s.rows[i].fields as usize, false, None),
            Split::General(r) => {
                let row = &r.rows[i];
                (row.fields, row.unbalanced, row.error.as_ref())
            }
        }
    }

    /// Record `i`'s first line number and raw text, for its load errors.
    pub(super) fn origin(&self, i: usize) -> (u64, &str) {
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
    pub(super) fn field(&self, k: usize) -> Fields<'_> {
        match self {
            Split::Spans(s) => Fields::Spans(s.text, &s.columns[k]),
            Split::General(r) => Fields::Values(&r.columns[k]),
        }
    }
}

/// One input field of every record of a piece.
#[derive(Clone, Copy)]
pub(super) enum Fields<'r> {
    Spans(&'r str, &'r [Span]),
    Values(&'r [Option<Cow<'r, str>>]),
}

/// Split `text` into records, every case. Text format: `delimiter`-separated fields, one
/// record per line, `\r\n` accepted. CSV: RFC 4180 quoting (doubled quotes, delimiters and
/// newlines inside quotes), whitespace around quoted fields ignored. Most input takes
/// the faster [`split::split_spans`], which answers the same or declines.
pub(super) fn records<'a>(text: &'a str, format: &TextFormat, fields: usize) -> Records<'a> {
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
pub(super) fn finish_field(
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
pub(super) fn plain_field<'a>(field: &'a str, format: &TextFormat) -> Option<Cow<'a, str>> {
    let field = if format.csv_quote.is_some() {
        trim_blanks(field)
    } else {
        field
    };
    (field != format.null_as).then_some(Cow::Borrowed(field))
}

/// `s` without leading and trailing spaces and tabs.
pub(super) fn trim_blanks(s: &str) -> &str {
    let b = s.as_bytes();
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !blank(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !blank(c)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// The fields of a one-line CSV record whose quoted fields hold no quote and no newline
/// (`1,"a, b",x`), as slices of the line; None when the line needs the full reader
/// (doubled quotes, a quote inside a field, a quoted field that goes on past the line).
pub(super) fn simple_quoted_fields<'a>(
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
pub(super) fn record_cuts(text: &[u8], quote: Option<u8>, chunk: usize) -> Vec<usize> {
    let mut cuts = RecordCuts::new(quote, chunk as u64);
    cuts.feed(text);
    cuts.finish().into_iter().map(|c| c as usize).collect()
}

/// Newline bytes in `bytes` (counted with SIMD).
pub(super) fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Lines in `text` (a last line without a newline counts).
pub fn line_count(text: &str) -> u64 {
    newlines(text.as_bytes()) + unterminated_line(text)
}

/// 1 when `text` ends with a line that has no newline.
pub(super) fn unterminated_line(text: &str) -> u64 {
    u64::from(!text.is_empty() && !text.ends_with('\n'))
}
