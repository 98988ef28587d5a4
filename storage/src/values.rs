//! The pieces codec blocks share. The value arrays that dictionary- and run-based codecs
//! keep beside their codes: one Arrow IPC stream (a single field `v`, one record batch)
//! compressed with LZ4, so any column type works and a reader checks the type it gets
//! back. The validity section (a flag byte, then a bitmap only when the block has NULLs),
//! little-endian signed integers of 1, 2, 4 or 8 bytes, and LEB128 varints, written by
//! the `push_*` functions and read back by the bounds-checked [`BlockCursor`].

use arrow::array::{Array, ArrayRef};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow::datatypes::Field;

use crate::segment::{column_to_ipc, ipc_to_column};

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
