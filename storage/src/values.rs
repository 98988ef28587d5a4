//! The value arrays that dictionary- and run-based codecs keep beside their codes: one
//! Arrow IPC stream (a single field `v`, one record batch) compressed with LZ4, so any
//! column type works and a reader checks the type it gets back.

use arrow::array::ArrayRef;
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

    pub(crate) fn u32(&mut self) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}
