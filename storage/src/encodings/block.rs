//! The pieces every codec shares, and the leaf of the encodings: it imports no codec and
//! nothing of the segment. Bit packing at a fixed width (`width_of`, `pack`, `unpack`) and
//! the i64 lanes of integer-like columns (`lanes`, `lane_bytes`, `lanes_to_array`) that
//! AZ64, DELTA, MOSTLY and RUNLENGTH build on; the value arrays that dictionary- and
//! run-based codecs keep beside their codes (one Arrow IPC stream of a single field `v`,
//! one record batch, compressed with LZ4, so any column type works and a reader checks
//! the type it gets back); the validity section (a flag byte, then a bitmap only when the
//! block has NULLs), little-endian signed integers of 1, 2, 4 or 8 bytes and LEB128
//! varints, written by the `push_*` functions and read back by the bounds-checked
//! [`BlockCursor`].

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, RecordBatch, RecordBatchOptions};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Int16Type, Int32Type,
    Int64Type, Schema, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::error::Result;

/// Rows per block written by this build. Block `i` of every column covers the same rows;
/// each block records its row count, so readers never assume this number.
pub const BLOCK_ROWS: usize = 16_384;

/// Serialize and compress `values`.
pub(crate) fn pack_values(values: &ArrayRef) -> Option<Vec<u8>> {
    let field = Field::new("v", values.data_type().clone(), true);
    let ipc = column_to_ipc(&field, values).ok()?;
    Some(lz4_flex::compress_prepend_size(&ipc))
}

/// Inverse of [`pack_values`].
pub(crate) fn unpack_values(bytes: &[u8]) -> Result<ArrayRef, String> {
    let ipc = lz4_flex::decompress_size_prepended(bytes).map_err(|e| e.to_string())?;
    ipc_to_column(&ipc)
}

/// Append the validity section: 0 when `array` has no NULLs, else 1 and a bitmap of
/// `ceil(rows/8)` bytes with bit i (LSB first) set when row i is not NULL. Built bit by
/// bit rather than copied from Arrow so that a sliced array's padding bits are zero and
/// the bytes depend only on the rows.
pub(crate) fn push_validity(out: &mut Vec<u8>, array: &dyn Array) {
    if array.null_count() == 0 {
        out.push(0);
        return;
    }
    out.push(1);
    let start = out.len();
    out.resize(start + array.len().div_ceil(8), 0);
    for i in (0..array.len()).filter(|&i| array.is_valid(i)) {
        out[start + i / 8] |= 1 << (i % 8);
    }
}

/// The narrowest of 1, 2, 4 or 8 bytes whose two's complement holds every value in
/// `min..=max`.
pub(crate) fn byte_width(min: i64, max: i64) -> u8 {
    let fits = |bytes: u8| {
        let bits = 8 * u32::from(bytes) - 1;
        min >= -(1i64 << bits) && max < (1i64 << bits)
    };
    [1, 2, 4].into_iter().find(|&b| fits(b)).unwrap_or(8)
}

/// Append the low `width` bytes of `v`, little-endian (the reader sign-extends them).
pub(crate) fn push_int(out: &mut Vec<u8>, v: i64, width: u8) {
    // Fixed sizes for the common widths: a copy of a length known only at run time is a
    // call per value.
    match width {
        1 => out.push(v as u8),
        2 => out.extend_from_slice(&(v as u16).to_le_bytes()),
        4 => out.extend_from_slice(&(v as u32).to_le_bytes()),
        _ => out.extend_from_slice(&v.to_le_bytes()[..usize::from(width)]),
    }
}

/// Append `v` as an unsigned LEB128 varint: 7 bits a byte, low bits first, the high bit
/// set on every byte but the last.
pub(crate) fn push_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes [`push_varint`] writes for `v`.
pub(crate) fn varint_len(v: usize) -> usize {
    (usize::BITS - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// Reads a codec block's fields in order and refuses to run past its end, so corrupt
/// payloads become errors instead of panics.
pub(crate) struct BlockCursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    codec: &'static str,
}

impl<'a> BlockCursor<'a> {
    /// Start reading a `codec` block: check its layout byte is one of `layouts` and that
    /// it holds `rows` rows; returns the cursor and the layout found.
    pub(crate) fn open(
        bytes: &'a [u8],
        codec: &'static str,
        layouts: &[u8],
        rows: usize,
    ) -> Result<(Self, u8), String> {
        let mut c = Self {
            bytes,
            pos: 0,
            codec,
        };
        let layout = c.u8()?;
        if !layouts.contains(&layout) {
            return Err(format!("unknown {codec} block layout {layout}"));
        }
        let stored = c.u32()?;
        if stored != rows {
            return Err(format!(
                "{codec} block holds {stored} rows, footer says {rows}"
            ));
        }
        Ok((c, layout))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .bytes
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| format!("{} block is truncated", self.codec))?;
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<usize, String> {
        Ok(usize::from(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        )))
    }

    pub(crate) fn u32(&mut self) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A `width`-byte little-endian signed integer written by [`push_int`], sign-extended.
    pub(crate) fn int(&mut self, width: u8) -> Result<i64, String> {
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(format!("bad {} value width {width}", self.codec));
        }
        let bytes = self.take(usize::from(width))?;
        let fill = if bytes[bytes.len() - 1] & 0x80 != 0 {
            0xff
        } else {
            0
        };
        let mut full = [fill; 8];
        full[..bytes.len()].copy_from_slice(bytes);
        Ok(i64::from_le_bytes(full))
    }

    /// A varint written by [`push_varint`]; anything beyond u32 is corrupt (no block
    /// field needs more).
    pub(crate) fn varint(&mut self) -> Result<usize, String> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(v)
                    .ok()
                    .filter(|&v| v <= u32::MAX as usize)
                    .ok_or_else(|| format!("{} varint out of range", self.codec));
            }
        }
        Err(format!("{} varint is too long", self.codec))
    }

    /// The validity section written by [`push_validity`] for a block of `rows` rows:
    /// `None` when no row is NULL.
    pub(crate) fn validity(&mut self, rows: usize) -> Result<Option<NullBuffer>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let bitmap = self.take(rows.div_ceil(8))?.to_vec();
                let nulls = NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bitmap), 0, rows));
                Ok((nulls.null_count() > 0).then_some(nulls))
            }
            other => Err(format!("bad {} validity flag {other}", self.codec)),
        }
    }

    /// Bytes not yet read: a decoder that needs at least one byte per row checks its row
    /// count against this before allocating for the rows.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Refuse bytes after the last field: a block that decodes but leaves some behind
    /// was not written by this layout.
    pub(crate) fn finish(&self) -> Result<(), String> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} block has {} bytes after its last field",
                self.codec,
                self.bytes.len() - self.pos
            ))
        }
    }
}

/// Where codec tests cut a payload to check truncation is an error: every length for
/// small payloads, and for big ones (where every length would take minutes) 300 spread
/// over the payload plus every length in its first and last 64 bytes.
/// One column as an Arrow IPC stream: a one-field schema message and one record batch.
pub(crate) fn column_to_ipc(field: &Field, array: &ArrayRef) -> Result<Vec<u8>> {
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let batch = RecordBatch::try_new_with_options(
        schema.clone(),
        vec![array.clone()],
        &RecordBatchOptions::new().with_row_count(Some(array.len())),
    )?;
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new(&mut buf, &schema)?;
    w.write(&batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// Inverse of [`column_to_ipc`].
pub(crate) fn ipc_to_column(ipc: &[u8]) -> std::result::Result<ArrayRef, String> {
    let mut r = StreamReader::try_new(Cursor::new(ipc), None).map_err(|e| e.to_string())?;
    let batch = r
        .next()
        .ok_or_else(|| "empty block".to_string())?
        .map_err(|e| e.to_string())?;
    if batch.num_columns() != 1 {
        return Err("block holds more than one column".into());
    }
    Ok(batch.column(0).clone())
}

/// The column as i64 lanes (0 for NULL rows), or `None` when the integer codecs (AZ64,
/// DELTA, MOSTLY) do not apply: another type, or a DECIMAL value beyond i64.
pub(crate) fn lanes(array: &ArrayRef) -> Option<Vec<i64>> {
    fn widen<T: ArrowPrimitiveType>(
        a: &ArrayRef,
        f: impl Fn(T::Native) -> Option<i64>,
    ) -> Option<Vec<i64>> {
        let p = a.as_primitive::<T>();
        if p.null_count() == 0 {
            // No validity to consult per value.
            return p.values().iter().map(|&v| f(v)).collect();
        }
        (0..p.len())
            .map(|i| if p.is_null(i) { Some(0) } else { f(p.value(i)) })
            .collect()
    }
    match array.data_type() {
        DataType::Int16 => widen::<Int16Type>(array, |v| Some(i64::from(v))),
        DataType::Int32 => widen::<Int32Type>(array, |v| Some(i64::from(v))),
        DataType::Int64 => widen::<Int64Type>(array, Some),
        DataType::Date32 => widen::<Date32Type>(array, |v| Some(i64::from(v))),
        DataType::Time64(TimeUnit::Microsecond) => widen::<Time64MicrosecondType>(array, Some),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            widen::<TimestampMicrosecondType>(array, Some)
        }
        DataType::Decimal128(_, _) => widen::<Decimal128Type>(array, |v| i64::try_from(v).ok()),
        _ => None,
    }
}

/// Bits needed for the largest of `values`.
pub(crate) fn width_of(values: &[u64]) -> u8 {
    64 - values.iter().copied().max().unwrap_or(0).leading_zeros() as u8
}

/// Pack `values` at `width` bits each, LSB first (shared by the integer codecs): bits
/// gather in a 128-bit accumulator that is written out 8 bytes at a time.
pub(crate) fn pack(values: &[u64], width: u8) -> Vec<u8> {
    let w = usize::from(width.min(64));
    let mut out = vec![0u8; (values.len() * w).div_ceil(8)];
    if w == 0 {
        return out;
    }
    let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let mut acc: u128 = 0;
    let mut bits = 0usize;
    let mut pos = 0usize;
    for &v in values {
        acc |= u128::from(v & mask) << bits;
        bits += w;
        if bits >= 64 {
            out[pos..pos + 8].copy_from_slice(&(acc as u64).to_le_bytes());
            pos += 8;
            acc >>= 64;
            bits -= 64;
        }
    }
    let rest = bits.div_ceil(8);
    out[pos..pos + rest].copy_from_slice(&(acc as u64).to_le_bytes()[..rest]);
    out
}

/// Inverse of [`pack`]; `bytes` must hold at least `rows * width` bits.
pub(crate) fn unpack(bytes: &[u8], width: u8, rows: usize) -> Vec<u64> {
    let w = usize::from(width);
    if w == 0 {
        return vec![0; rows];
    }
    let mut out = Vec::with_capacity(rows);
    // Fast path: one unaligned little-endian 8-byte load per value, while 8 bytes remain
    // from the value's first byte (and the value fits in the 64 bits loaded).
    let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let mut i = 0;
    while i < rows {
        let bit = i * w;
        let (byte, shift) = (bit / 8, bit % 8);
        if byte + 8 > bytes.len() || shift + w > 64 {
            break;
        }
        let word = u64::from_le_bytes(bytes[byte..byte + 8].try_into().expect("8 bytes"));
        out.push((word >> shift) & mask);
        i += 1;
    }
    // The last few values (and widths above 56 bits at odd offsets) byte by byte.
    for i in i..rows {
        let mut bit = i * w;
        let mut v = 0u64;
        let mut got = 0usize;
        while got < w {
            let (byte, offset) = (bit / 8, bit % 8);
            let take = (8 - offset).min(w - got);
            let chunk = (u64::from(bytes[byte]) >> offset) & ((1u64 << take) - 1);
            v |= chunk << got;
            bit += take;
            got += take;
        }
        out.push(v);
    }
    out
}

/// Bytes per value of an integer-like column in Arrow, or `None` for other types: what
/// the integer codecs must beat to be worth keeping.
pub(crate) fn lane_bytes(data_type: &DataType) -> Option<usize> {
    match data_type {
        DataType::Int16 => Some(2),
        DataType::Int32 | DataType::Date32 => Some(4),
        DataType::Int64
        | DataType::Time64(TimeUnit::Microsecond)
        | DataType::Timestamp(TimeUnit::Microsecond, _) => Some(8),
        DataType::Decimal128(_, _) => Some(16),
        _ => None,
    }
}

/// Inverse of [`lanes`]: an Arrow array of `data_type` holding `values` (anything for
/// NULL rows). A value that does not fit the type means the `codec` block is corrupt.
/// The 64-bit types take the vector as their buffer without copying.
pub(crate) fn lanes_to_array(
    values: Vec<i64>,
    nulls: Option<NullBuffer>,
    data_type: &DataType,
    codec: &str,
) -> Result<ArrayRef, String> {
    fn build<T: ArrowPrimitiveType>(
        native: Vec<T::Native>,
        nulls: Option<NullBuffer>,
        data_type: &DataType,
    ) -> Result<ArrayRef, String> {
        let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(native), nulls)
            .map_err(|e| e.to_string())?
            .with_data_type(data_type.clone());
        Ok(Arc::new(array))
    }
    /// `values` as a narrower type: one pass to find a value that does not fit (an error
    /// unless its row is NULL), one branch-free pass to convert.
    fn narrow<N: Default + Copy>(
        values: &[i64],
        nulls: &Option<NullBuffer>,
        data_type: &DataType,
        codec: &str,
        range: (i64, i64),
        cast: impl Fn(i64) -> N,
    ) -> Result<Vec<N>, String> {
        let fits = |v: i64| v >= range.0 && v <= range.1;
        if let Some((_, v)) = values
            .iter()
            .enumerate()
            .find(|(i, v)| !fits(**v) && nulls.as_ref().is_none_or(|n| n.is_valid(*i)))
        {
            return Err(format!("{codec} value {v} does not fit {data_type}"));
        }
        Ok(values
            .iter()
            .map(|&v| if fits(v) { cast(v) } else { N::default() })
            .collect())
    }
    let (v, n, t) = (&values, &nulls, data_type);
    match data_type {
        DataType::Int16 => {
            let range = (i64::from(i16::MIN), i64::from(i16::MAX));
            build::<Int16Type>(narrow(v, n, t, codec, range, |v| v as i16)?, nulls, t)
        }
        DataType::Int32 | DataType::Date32 => {
            let range = (i64::from(i32::MIN), i64::from(i32::MAX));
            let native = narrow(v, n, t, codec, range, |v| v as i32)?;
            if matches!(data_type, DataType::Int32) {
                build::<Int32Type>(native, nulls, t)
            } else {
                build::<Date32Type>(native, nulls, t)
            }
        }
        DataType::Decimal128(_, _) => {
            build::<Decimal128Type>(values.into_iter().map(i128::from).collect(), nulls, t)
        }
        DataType::Int64 => build::<Int64Type>(values, nulls, t),
        DataType::Time64(TimeUnit::Microsecond) => build::<Time64MicrosecondType>(values, nulls, t),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            build::<TimestampMicrosecondType>(values, nulls, t)
        }
        other => Err(format!("{codec} cannot hold {other}")),
    }
}

#[cfg(test)]
pub(crate) fn cuts(len: usize) -> Vec<usize> {
    if len <= 4096 {
        return (0..len).collect();
    }
    let mut cuts: Vec<usize> = (0..64).chain(len - 64..len).collect();
    cuts.extend((1..300).map(|i| i * len / 300));
    cuts
}

/// Copies of `bytes` with one byte corrupted, at every position of payloads up to 1 KiB:
/// codec tests decode each and only ask that it returns, Ok or Err, without panicking.
#[cfg(test)]
pub(crate) fn corruptions(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.len() > 1024 {
        return vec![];
    }
    let mut out = vec![];
    for pos in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut v = bytes.to_vec();
            v[pos] ^= mask;
            out.push(v);
        }
    }
    out
}
