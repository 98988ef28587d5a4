//! LZO (served by LZ4) and ZSTD for string blocks. Compressing a string block's Arrow IPC
//! bytes, as RAW/LZ4/ZSTD do for other types, makes the compressor chew on 4-byte offsets
//! that grow by every value's length, which LZ4 in particular barely shrinks (a CHAR(1)
//! column stayed at 85% of its Arrow size). These layouts compress value lengths, stored at
//! the narrowest width that holds them, followed by the value bytes, so repeated lengths
//! and repeated text both compress. Layout in `docs/format.md` ("String LZ4 and ZSTD
//! blocks").

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::DataType;

use crate::encodings::block::{BlockCursor, byte_width, push_int, push_validity};

const LAYOUT: u8 = 1;

/// Which general-purpose compressor wraps the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compressor {
    Lz4,
    Zstd,
}

/// Encode a Utf8 block; `None` for other types.
pub(crate) fn encode(array: &ArrayRef, compressor: Compressor) -> Option<Vec<u8>> {
    if array.data_type() != &DataType::Utf8 {
        return None;
    }
    let strings = array.as_string::<i32>();
    let rows = strings.len();
    let lengths: Vec<usize> = (0..rows)
        .map(|i| {
            if strings.is_valid(i) {
                strings.value(i).len()
            } else {
                0
            }
        })
        .collect();
    let width = byte_width(0, lengths.iter().copied().max().unwrap_or(0) as i64);
    let bytes: usize = lengths.iter().sum();
    let mut raw = Vec::with_capacity(6 + rows.div_ceil(8) + rows * usize::from(width) + bytes);
    raw.push(LAYOUT);
    raw.extend_from_slice(&(rows as u32).to_le_bytes());
    push_validity(&mut raw, strings);
    raw.push(width);
    for l in &lengths {
        push_int(&mut raw, *l as i64, width);
    }
    if strings.null_count() == 0 {
        // The values lie one after another: copy them at once.
        let offsets = strings.value_offsets();
        let (start, end) = (offsets[0] as usize, offsets[rows] as usize);
        raw.extend_from_slice(&strings.value_data()[start..end]);
    } else {
        for i in (0..rows).filter(|&i| strings.is_valid(i)) {
            raw.extend_from_slice(strings.value(i).as_bytes());
        }
    }
    match compressor {
        Compressor::Lz4 => Some(lz4_flex::compress_prepend_size(&raw)),
        Compressor::Zstd => zstd::bulk::compress(&raw, 3).ok(),
    }
}

/// Decode a block of `rows` strings. Invalid UTF-8 is an error, never an array.
pub(crate) fn decode(
    payload: &[u8],
    rows: usize,
    compressor: Compressor,
) -> Result<ArrayRef, String> {
    let raw = match compressor {
        Compressor::Lz4 => {
            lz4_flex::decompress_size_prepended(payload).map_err(|e| e.to_string())?
        }
        Compressor::Zstd => zstd::stream::decode_all(payload).map_err(|e| e.to_string())?,
    };
    let (mut c, _) = BlockCursor::open(&raw, "string", &[LAYOUT], rows)?;
    let nulls = c.validity(rows)?;
    let width = c.u8()?;
    if ![1, 2, 4, 8].contains(&width) {
        return Err(format!("bad string length width {width}"));
    }
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    let mut end = 0i64;
    for _ in 0..rows {
        let len = c.int(width)?;
        if len < 0 {
            return Err("negative string length".into());
        }
        end += len;
        offsets.push(i32::try_from(end).map_err(|_| "string block too large".to_string())?);
    }
    let values = c.take(end as usize)?;
    c.finish()?;
    let array = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from(values),
        nulls,
    )
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_shrinks_short_strings() {
        let a: ArrayRef =
            Arc::new(StringArray::from_iter((0..20_000).map(|i| {
                (i % 13 != 0).then(|| ["A", "N", "R", "", "ü€𝄞 мир"][i % 5].to_string())
            })));
        for c in [Compressor::Lz4, Compressor::Zstd] {
            let bytes = encode(&a, c).unwrap();
            assert_eq!(&decode(&bytes, a.len(), c).unwrap(), &a);
            // Far below the 80 kB of offsets alone that IPC would carry.
            assert!(bytes.len() < 20_000, "{c:?}: {}", bytes.len());
        }
        let sliced = a.slice(7, 100);
        let bytes = encode(&sliced, Compressor::Lz4).unwrap();
        assert_eq!(&decode(&bytes, 100, Compressor::Lz4).unwrap(), &sliced);
        let empty: ArrayRef = Arc::new(StringArray::from(Vec::<String>::new()));
        assert_eq!(
            &decode(
                &encode(&empty, Compressor::Zstd).unwrap(),
                0,
                Compressor::Zstd
            )
            .unwrap(),
            &empty
        );
        assert!(
            encode(
                &(Arc::new(arrow::array::Int32Array::from(vec![1])) as ArrayRef),
                Compressor::Lz4
            )
            .is_none()
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("héllo"), None, Some("x")]));
        for c in [Compressor::Lz4, Compressor::Zstd] {
            let good = encode(&a, c).unwrap();
            for cut in crate::encodings::block::cuts(good.len()) {
                assert!(decode(&good[..cut], 3, c).is_err(), "{c:?} cut at {cut}");
            }
        }
        let good = encode(&a, Compressor::Lz4).unwrap();
        for bad in crate::encodings::block::corruptions(&good) {
            // Must not panic; may decode to an error.
            let _ = decode(&bad, 3, Compressor::Lz4);
        }
        // Invalid UTF-8 inside a well-formed layout is refused.
        let mut raw = vec![LAYOUT];
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.extend_from_slice(&[0, 1, 2, 0xc3, 0x28]);
        let bytes = lz4_flex::compress_prepend_size(&raw);
        assert!(decode(&bytes, 1, Compressor::Lz4).is_err());
        assert!(decode(&bytes, 2, Compressor::Lz4).is_err());
    }
}
