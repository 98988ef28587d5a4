//! Deletion vectors: which rows of one immutable segment are deleted. DELETE and UPDATE
//! never rewrite a segment; they write a new deletion-vector file next to it and commit
//! its path with the table version, so readers of older versions keep seeing the rows.
//! VACUUM later rewrites the segment without them. Layout (see `docs/format.md`):
//!
//! ```text
//! "BSLTDEL1" | version u16 | reserved u16 | segment_rows u64 | deleted u64
//!   | payload_len u32 | payload (LZ4 of the bitmap, size-prepended) | crc32 u32
//! ```
//!
//! Bit `i` (byte `i / 8`, bit `i % 8`, least significant first) is set when row `i` is
//! deleted. The CRC covers every byte before it.

use arrow::array::BooleanArray;
use arrow::buffer::BooleanBuffer;
use bytes::Bytes;

use crate::corrupt;
use crate::error::{Result, StorageError};

/// First 8 bytes of a deletion-vector file.
pub const DELETE_MAGIC: &[u8; 8] = b"BSLTDEL1";
/// Newest deletion-vector layout this build reads and writes.
pub const DELETE_FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 2 + 8 + 8 + 4;

/// The deleted rows of one segment of `rows` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteVector {
    rows: u64,
    bits: Vec<u8>,
    deleted: u64,
}

impl DeleteVector {
    /// No row of a `rows`-row segment deleted.
    pub fn new(rows: u64) -> Self {
        Self {
            rows,
            bits: vec![0; rows.div_ceil(8) as usize],
            deleted: 0,
        }
    }

    pub fn segment_rows(&self) -> u64 {
        self.rows
    }

    /// Number of deleted rows.
    pub fn deleted(&self) -> u64 {
        self.deleted
    }

    pub fn contains(&self, row: u64) -> bool {
        row < self.rows && self.bits[(row / 8) as usize] & (1 << (row % 8)) != 0
    }

    /// Mark `row` deleted; returns whether it was live. Rows past the end are an error
    /// (a row id from another segment would otherwise delete the wrong row).
    pub fn insert(&mut self, row: u64) -> Result<bool> {
        if row >= self.rows {
            return Err(StorageError::Unsupported(format!(
                "row {row} is outside a segment of {} rows",
                self.rows
            )));
        }
        let (byte, bit) = ((row / 8) as usize, 1u8 << (row % 8));
        let fresh = self.bits[byte] & bit == 0;
        self.bits[byte] |= bit;
        self.deleted += u64::from(fresh);
        Ok(fresh)
    }

    /// Which of rows `start..start + len` are still live (true = keep), for filtering one
    /// decoded block.
    pub fn live_mask(&self, start: u64, len: usize) -> BooleanArray {
        let live = (0..len as u64).map(|i| !self.contains(start + i));
        BooleanArray::from(BooleanBuffer::from_iter(live))
    }

    /// Whether any of rows `start..start + len` is deleted (cheap check before filtering).
    pub fn any_in(&self, start: u64, len: usize) -> bool {
        (start..(start + len as u64).min(self.rows)).any(|r| self.contains(r))
    }

    pub fn encode(&self) -> Bytes {
        let payload = lz4_flex::compress_prepend_size(&self.bits);
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + 4);
        out.extend_from_slice(DELETE_MAGIC);
        out.extend_from_slice(&DELETE_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&self.deleted.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Bytes::from(out)
    }

    /// Parse the file at `path` (named in errors). Every inconsistency is an error: a
    /// wrong deletion vector would silently hide or resurrect rows.
    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN + 4 || &bytes[..8] != DELETE_MAGIC {
            return Err(corrupt!(path, "not a deletion-vector file"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(corrupt!(path, "deletion-vector checksum mismatch"));
        }
        let u16_at = |o: usize| u16::from_le_bytes(body[o..o + 2].try_into().expect("2 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(body[o..o + 8].try_into().expect("8 bytes"));
        let version = u16_at(8);
        if version > DELETE_FORMAT_VERSION {
            return Err(StorageError::UnsupportedVersion {
                path: path.to_string(),
                found: version,
                supported: DELETE_FORMAT_VERSION,
            });
        }
        let rows = u64_at(12);
        let deleted = u64_at(20);
        let payload_len = u32::from_le_bytes(body[28..32].try_into().expect("4 bytes")) as usize;
        if body.len() != HEADER_LEN + payload_len {
            return Err(corrupt!(path, "deletion-vector length mismatch"));
        }
        let bits = lz4_flex::decompress_size_prepended(&body[HEADER_LEN..])
            .map_err(|e| corrupt!(path, "deletion vector: {e}"))?;
        if bits.len() as u64 != rows.div_ceil(8) {
            return Err(corrupt!(path, "deletion vector covers the wrong row count"));
        }
        let counted: u64 = bits.iter().map(|b| u64::from(b.count_ones())).sum();
        if counted != deleted {
            return Err(corrupt!(path, "deletion vector count mismatch"));
        }
        Ok(Self {
            rows,
            bits,
            deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_masks_blocks() {
        let mut dv = DeleteVector::new(70_000);
        for r in [0u64, 7, 8, 65_535, 65_536, 69_999] {
            assert!(dv.insert(r).unwrap());
        }
        assert!(
            !dv.insert(7).unwrap(),
            "second delete of a row is not fresh"
        );
        assert!(dv.insert(70_000).is_err());
        let back = DeleteVector::decode("x.bdel", &dv.encode()).unwrap();
        assert_eq!(back, dv);
        assert_eq!(back.deleted(), 6);
        let mask = back.live_mask(65_536, 4464);
        assert_eq!(mask.len(), 4464);
        assert!(!mask.value(0) && mask.value(1) && !mask.value(4463));
        assert!(back.any_in(65_536, 10) && !back.any_in(100, 1000));
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let mut dv = DeleteVector::new(1000);
        dv.insert(3).unwrap();
        let bytes = dv.encode();
        for len in 0..bytes.len() {
            assert!(
                DeleteVector::decode("x", &bytes[..len]).is_err(),
                "len {len}"
            );
        }
        for i in 0..bytes.len() {
            let mut b = bytes.to_vec();
            b[i] ^= 0x10;
            assert!(DeleteVector::decode("x", &b).is_err(), "flip at {i}");
        }
    }
}
