//! The fast record splitter for delimited text and CSV: one pass over the input finds
//! every delimiter, newline and quote 64 bytes at a time (as bit masks), tells the
//! delimiters and newlines inside quotes from the real ones by the parity of the quotes
//! before them, and records each field as a byte range of the input, column by column.
//!
//! It handles what nearly all input is: one record per line, CSV fields either unquoted
//! or wholly quoted with no quote inside. Anything else — a doubled quote, a quote in
//! the middle of a field, a newline inside quotes, a quote never closed — makes it give
//! up on the whole piece, and the general reader in [`crate::load`] (which understands
//! every case) reads it instead. So this reader changes speed, never results: it
//! answers exactly what the general reader would, or nothing.

use super::TextFormat;

/// A field as a byte range of the piece's text, or NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    pub const NULL: Span = Span {
        start: u32::MAX,
        end: 0,
    };

    fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The field's text in `text` (the piece the span was made from); None for NULL.
    #[inline(always)]
    pub fn get<'a>(&self, text: &'a str) -> Option<&'a str> {
        if self.start == u32::MAX {
            return None;
        }
        let bytes = &text.as_bytes()[self.start as usize..self.end as usize];
        // SAFETY: a span starts and ends next to ASCII bytes (delimiters, quotes, blanks,
        // newlines) or at the ends of `text`, which is UTF-8, so `bytes` is UTF-8 too.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }
}

/// One record (one input line) of a span-split piece.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanRow {
    /// The line's number in the piece, from 1.
    pub line: u32,
    /// The line's bytes, without its `\n` or `\r\n`.
    pub start: u32,
    pub end: u32,
    /// How many fields the record had.
    pub fields: u32,
}

/// A piece split into records: per record a [`SpanRow`], per input field one vector of
/// [`Span`]s (fields beyond the COPY's count are counted, not kept; missing ones are
/// NULL).
pub(crate) struct SpanRecords<'a> {
    pub text: &'a str,
    pub rows: Vec<SpanRow>,
    pub columns: Vec<Vec<Span>>,
}

/// Split `text` into records of `fields` fields as the general reader would, or None
/// when the text (or the format) needs the general reader. `lines` (at most that many
/// records) sizes the output.
pub(crate) fn split_spans<'a>(
    text: &'a str,
    format: &TextFormat,
    fields: usize,
    lines: usize,
) -> Option<SpanRecords<'a>> {
    let bytes = text.as_bytes();
    let d = format.delimiter;
    let plain_delimiter = d.is_ascii() && d != 0 && d != b'\n' && d != b'\r';
    let quote = format.csv_quote;
    let plain_quote = quote.is_none_or(|q| q.is_ascii() && q != 0 && q != d && q != b'\n');
    if format.escape
        || format.remove_quotes
        || !plain_delimiter
        || !plain_quote
        || bytes.len() >= u32::MAX as usize
    {
        return None;
    }
    let mut splitter = Splitter {
        text,
        format,
        quote,
        null: format.null_as.as_bytes(),
        fields,
        out: SpanRecords {
            text,
            rows: Vec::with_capacity(lines),
            columns: (0..fields).map(|_| Vec::with_capacity(lines)).collect(),
        },
        line: 0,
        line_start: 0,
        field_start: 0,
        field: 0,
        quotes_at_field: 0,
    };
    let mut quotes_before = 0u32;
    // All ones while the previous block ended inside quotes.
    let mut carry = 0u64;
    let mut base = 0;
    while base < bytes.len() {
        let block = Block::at(bytes, base);
        let masks = block.masks(d, quote);
        let inside = prefix_xor(masks.quote) ^ carry;
        carry = ((inside as i64) >> 63) as u64;
        // A newline inside quotes makes a record of several lines: the general reader's.
        if masks.newline & inside != 0 {
            return None;
        }
        let mut structural = (masks.delimiter | masks.newline) & !inside & block.valid;
        while structural != 0 {
            let bit = structural.trailing_zeros();
            structural &= structural - 1;
            let below = (1u64 << bit) - 1;
            let quotes = quotes_before + (masks.quote & below).count_ones();
            let at = base + bit as usize;
            if masks.newline >> bit & 1 == 1 {
                splitter.end_line(at, quotes)?;
            } else {
                splitter.end_field(at, quotes)?;
            }
        }
        quotes_before += masks.quote.count_ones();
        base += 64;
    }
    if carry != 0 {
        return None;
    }
    if splitter.line_start < bytes.len() {
        splitter.end_line(bytes.len(), quotes_before)?;
    }
    Some(splitter.out)
}

struct Splitter<'a, 'f> {
    text: &'a str,
    format: &'f TextFormat,
    quote: Option<u8>,
    null: &'f [u8],
    fields: usize,
    out: SpanRecords<'a>,
    /// Lines ended so far.
    line: u32,
    line_start: usize,
    field_start: usize,
    /// The current field's index in its record.
    field: usize,
    /// Quotes in the text before the current field.
    quotes_at_field: u32,
}

impl Splitter<'_, '_> {
    fn in_header(&self) -> bool {
        u64::from(self.line) < self.format.ignore_header
    }

    /// The field that ends at the delimiter at `at`, with `quotes` quotes before it.
    #[inline(always)]
    fn end_field(&mut self, at: usize, quotes: u32) -> Option<()> {
        let span = self.span(self.field_start, at, quotes)?;
        if self.field < self.fields && !self.in_header() {
            self.out.columns[self.field].push(span);
        }
        self.field += 1;
        self.field_start = at + 1;
        self.quotes_at_field = quotes;
        Some(())
    }

    /// The line that ends at the newline at `at` (or the end of the text).
    fn end_line(&mut self, at: usize, quotes: u32) -> Option<()> {
        let bytes = self.text.as_bytes();
        // `\r\n` ends a line too; the `\r` is no part of the last field.
        let end = if at > self.line_start && bytes[at - 1] == b'\r' {
            at - 1
        } else {
            at
        };
        let last = self.span(self.field_start.min(end), end, quotes)?;
        let header = self.in_header();
        let blank = self.format.ignore_blank_lines && end == self.line_start;
        if !header && !blank {
            if self.field < self.fields {
                self.out.columns[self.field].push(last);
            }
            for column in self.out.columns.iter_mut().skip(self.field + 1) {
                column.push(Span::NULL);
            }
            self.out.rows.push(SpanRow {
                line: self.line + 1,
                start: self.line_start as u32,
                end: end as u32,
                fields: (self.field + 1) as u32,
            });
        }
        // (A blank line has no delimiter, so no field of it was pushed before.)
        self.line += 1;
        self.line_start = at + 1;
        self.field_start = at + 1;
        self.field = 0;
        self.quotes_at_field = quotes;
        Some(())
    }

    /// The field `start..end` holding `quotes - self.quotes_at_field` quotes: an unquoted
    /// field (blanks around it dropped in CSV; the NULL string is NULL), or a quoted one
    /// (never NULL). None for any other shape. (Inlined: a span returned through memory
    /// is read back before its two halves are stored, which stalls every field.)
    #[inline(always)]
    fn span(&self, mut start: usize, mut end: usize, quotes: u32) -> Option<Span> {
        let bytes = self.text.as_bytes();
        if let Some(q) = self.quote {
            let blank = |c: u8| c == b' ' || c == b'\t';
            while start < end && blank(bytes[start]) {
                start += 1;
            }
            while end > start && blank(bytes[end - 1]) {
                end -= 1;
            }
            match quotes - self.quotes_at_field {
                0 => {}
                2 if end - start >= 2 && bytes[start] == q && bytes[end - 1] == q => {
                    return Some(Span::new(start + 1, end - 1));
                }
                _ => return None,
            }
        }
        if end - start == self.null.len() && &bytes[start..end] == self.null {
            return Some(Span::NULL);
        }
        Some(Span::new(start, end))
    }
}

/// Where the delimiters, newlines and quotes of one 64-byte block are: bit `i` of a
/// mask is byte `i` of the block.
struct Masks {
    delimiter: u64,
    newline: u64,
    quote: u64,
}

/// 64 bytes of the input (the last block zero-padded); `valid` has a bit per real byte.
struct Block<'t> {
    bytes: std::borrow::Cow<'t, [u8; 64]>,
    valid: u64,
}

impl<'t> Block<'t> {
    #[inline]
    fn at(text: &'t [u8], base: usize) -> Self {
        if let Some(full) = text.get(base..base + 64) {
            let bytes = full.try_into().expect("64 bytes");
            return Block {
                bytes: std::borrow::Cow::Borrowed(bytes),
                valid: u64::MAX,
            };
        }
        let mut bytes = [0u8; 64];
        let n = text.len() - base;
        bytes[..n].copy_from_slice(&text[base..]);
        Block {
            bytes: std::borrow::Cow::Owned(bytes),
            valid: (1u64 << n) - 1,
        }
    }

    /// Padding bytes are zero, which is never a delimiter, quote or newline.
    #[inline]
    fn masks(&self, delimiter: u8, quote: Option<u8>) -> Masks {
        let bytes: &[u8; 64] = &self.bytes;
        Masks {
            delimiter: byte_mask(bytes, delimiter),
            newline: byte_mask(bytes, b'\n'),
            quote: quote.map_or(0, |q| byte_mask(bytes, q)),
        }
    }
}

/// Bit `i` set where `block[i] == c`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn byte_mask(block: &[u8; 64], c: u8) -> u64 {
    use std::arch::x86_64::_mm_set1_epi8;
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of every x86_64 CPU; each load reads 16 bytes inside `block`.
    unsafe {
        let needle = _mm_set1_epi8(c as i8);
        for k in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
            let hits = _mm_movemask_epi8(_mm_cmpeq_epi8(v, needle)) as u16;
            mask |= u64::from(hits) << (16 * k);
        }
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn byte_mask(block: &[u8; 64], c: u8) -> u64 {
    byte_mask_scalar(block, c)
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn byte_mask_scalar(block: &[u8; 64], c: u8) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0, |m, (i, &b)| m | (u64::from(b == c) << i))
}

/// Bit `i` of the result is the parity of the set bits `0..=i` of `x`: inside quotes
/// from an opening quote up to (not including) its closing one.
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_a_byte_by_byte_scan() {
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate() {
            *b = [b',', b'a', b'"', b'\n', 0x80, 0xff][i * 7 % 6];
        }
        for c in [b',', b'"', b'\n', 0x80, 0xff, b'z'] {
            assert_eq!(byte_mask(&block, c), byte_mask_scalar(&block, c), "{c}");
        }
        assert_eq!(prefix_xor(0b1001), 0b0111);
        assert_eq!(prefix_xor(1 << 63), 1 << 63);
    }
}
