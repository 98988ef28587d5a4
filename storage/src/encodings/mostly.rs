//! MOSTLY8, MOSTLY16 and MOSTLY32: integer-like columns (taken as i64 lanes the way AZ64
//! takes them) whose values mostly fit a narrower integer. Every row gets a slot of 1, 2
//! or 4 bytes holding its value; a value too big for its slot is an exception, kept
//! after the slots as its row position and its value in full, and its slot holds 0 (as
//! do NULL rows, which live in a bitmap). A block whose slots and exceptions would be
//! larger than its values at the column's own width is not MOSTLY-encodable (the writer
//! falls back to LZ4). Layout in `docs/format.md` ("MOSTLY8, MOSTLY16 and MOSTLY32
//! blocks").

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;

use crate::encodings::block::BLOCK_ROWS;
use crate::encodings::block::{BlockCursor, byte_width, push_int, push_validity};
use crate::encodings::block::{lane_bytes, lanes, lanes_to_array};

const LAYOUT: u8 = 1;

/// Bytes in an exception's row position: a block has at most 65,536 rows.
const POSITION_BYTES: usize = 2;

/// Which of the three codecs: the slot width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// MOSTLY8: 1-byte slots.
    B8,
    /// MOSTLY16: 2-byte slots.
    B16,
    /// MOSTLY32: 4-byte slots.
    B32,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::B8 => "MOSTLY8",
            Slot::B16 => "MOSTLY16",
            Slot::B32 => "MOSTLY32",
        }
    }

    fn bytes(self) -> u8 {
        match self {
            Slot::B8 => 1,
            Slot::B16 => 2,
            Slot::B32 => 4,
        }
    }

    fn holds(self, v: i64) -> bool {
        match self {
            Slot::B8 => i8::try_from(v).is_ok(),
            Slot::B16 => i16::try_from(v).is_ok(),
            Slot::B32 => i32::try_from(v).is_ok(),
        }
    }
}

/// Encode one block, or `None` when the type is not integer-like, the block has more
/// rows than a position can name, or it would not be smaller than its values at the
/// column's width.
pub(crate) fn encode(array: &ArrayRef, slot: Slot) -> Option<Vec<u8>> {
    let values = lanes(array)?;
    let native = lane_bytes(array.data_type())?;
    let rows = values.len();
    if rows > BLOCK_ROWS {
        return None;
    }
    let exceptions: Vec<(usize, i64)> = (0..rows)
        .filter(|&i| array.is_valid(i) && !slot.holds(values[i]))
        .map(|i| (i, values[i]))
        .collect();
    let lo = exceptions.iter().map(|e| e.1).min().unwrap_or(0);
    let hi = exceptions.iter().map(|e| e.1).max().unwrap_or(0);
    // Exceptions only need their own range, often narrower than the column type.
    let width = byte_width(lo, hi);
    let size =
        rows * usize::from(slot.bytes()) + exceptions.len() * (POSITION_BYTES + usize::from(width));
    if size > rows * native {
        return None;
    }
    let mut out = Vec::with_capacity(11 + rows.div_ceil(8) + size);
    out.push(LAYOUT);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    push_validity(&mut out, array.as_ref());
    for (i, &v) in values.iter().enumerate() {
        let fits = slot.holds(v) && array.is_valid(i);
        push_int(&mut out, if fits { v } else { 0 }, slot.bytes());
    }
    out.extend_from_slice(&(exceptions.len() as u32).to_le_bytes());
    out.push(width);
    for &(i, _) in &exceptions {
        out.extend_from_slice(&(i as u16).to_le_bytes());
    }
    for &(_, v) in &exceptions {
        push_int(&mut out, v, width);
    }
    Some(out)
}

/// Decode a block of `rows` values of type `data_type`.
pub(crate) fn decode(
    payload: &[u8],
    data_type: &DataType,
    rows: usize,
    slot: Slot,
) -> Result<ArrayRef, String> {
    let name = slot.name();
    let (mut c, _) = BlockCursor::open(payload, name, &[LAYOUT], rows)?;
    if rows > BLOCK_ROWS {
        return Err(format!("{name} block of {rows} rows is too big"));
    }
    let nulls = c.validity(rows)?;
    let slots = c.take(rows * usize::from(slot.bytes()))?;
    // One loop per width so that each is a plain widening copy.
    let mut values: Vec<i64> = match slot {
        Slot::B8 => slots.iter().map(|b| i64::from(*b as i8)).collect(),
        Slot::B16 => slots
            .chunks_exact(2)
            .map(|b| i64::from(i16::from_le_bytes([b[0], b[1]])))
            .collect(),
        Slot::B32 => slots
            .chunks_exact(4)
            .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
    };
    let count = c.u32()?;
    if count > rows {
        return Err(format!(
            "{name} block has {count} exceptions in {rows} rows"
        ));
    }
    let width = c.u8()?;
    let positions = c.take(count * POSITION_BYTES)?;
    let mut next = 0usize;
    for p in positions.chunks_exact(POSITION_BYTES) {
        let row = usize::from(u16::from_le_bytes([p[0], p[1]]));
        // Ascending, inside the block, on non-NULL rows: anything else is not from us.
        if row < next || row >= rows || nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            return Err(format!("bad {name} exception position {row}"));
        }
        values[row] = c.int(width)?;
        next = row + 1;
    }
    c.finish()?;
    lanes_to_array(values, nulls, data_type, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encodings::block::{corruptions, cuts};
    use arrow::array::{
        Date32Array, Decimal128Array, Float32Array, Int16Array, Int32Array, Int64Array,
        StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    const SLOTS: [Slot; 3] = [Slot::B8, Slot::B16, Slot::B32];

    fn round_trip(a: ArrayRef, slot: Slot) -> usize {
        let bytes = encode(&a, slot).unwrap_or_else(|| panic!("{slot:?} applies to {a:?}"));
        let back = decode(&bytes, a.data_type(), a.len(), slot).unwrap();
        assert_eq!(&back, &a, "{slot:?}");
        for cut in cuts(bytes.len()) {
            assert!(
                decode(&bytes[..cut], a.data_type(), a.len(), slot).is_err(),
                "{slot:?} accepted a cut at {cut} of {}",
                bytes.len()
            );
        }
        for bad in corruptions(&bytes) {
            let _ = decode(&bad, a.data_type(), a.len(), slot);
        }
        bytes.len()
    }

    /// Small values with NULLs and a few far ones at both ends of `lo..=hi`.
    fn mostly_small(lo: i64, hi: i64) -> Vec<Option<i64>> {
        let mut v: Vec<Option<i64>> = (0..60)
            .map(|i| (i % 9 != 4).then_some((i % 50) - 25))
            .collect();
        v[3] = Some(lo);
        v[30] = Some(hi);
        v.push(Some(hi));
        v.push(Some(-129));
        v.push(Some(128));
        v
    }

    #[test]
    fn round_trips_every_type_with_nulls_and_extremes() {
        for slot in SLOTS {
            let wide = mostly_small(i64::MIN, i64::MAX);
            round_trip(Arc::new(Int64Array::from(wide.clone())), slot);
            round_trip(
                Arc::new(TimestampMicrosecondArray::from(wide.clone()).with_timezone("+00:00")),
                slot,
            );
            round_trip(
                Arc::new(
                    Decimal128Array::from_iter(wide.iter().map(|x| x.map(i128::from)))
                        .with_precision_and_scale(20, 2)
                        .unwrap(),
                ),
                slot,
            );
            let mid: Vec<Option<i32>> = mostly_small(i32::MIN.into(), i32::MAX.into())
                .iter()
                .map(|x| x.map(|x| x as i32))
                .collect();
            if slot != Slot::B32 {
                round_trip(Arc::new(Int32Array::from(mid.clone())), slot);
                round_trip(Arc::new(Date32Array::from(mid)), slot);
            }
            round_trip(Arc::new(Int64Array::from(Vec::<i64>::new())), slot);
            round_trip(Arc::new(Int64Array::from(vec![None, None, None])), slot);
            let big: ArrayRef = Arc::new(Int64Array::from(mostly_small(-1 << 40, 1 << 40)));
            round_trip(big.slice(2, 40), slot);
        }
        let small: Vec<Option<i16>> = mostly_small(i16::MIN.into(), i16::MAX.into())
            .iter()
            .map(|x| x.map(|x| x as i16))
            .collect();
        round_trip(Arc::new(Int16Array::from(small.clone())), Slot::B8);
        // MOSTLY16 holds any SMALLINT: same size as the column, no exceptions.
        round_trip(Arc::new(Int16Array::from(small)), Slot::B16);
    }

    #[test]
    fn slot_edges_and_sizes() {
        let edges: ArrayRef = Arc::new(Int64Array::from(vec![
            -128, 127, -128, 127, -32768, 32767, 0, 0, 0, 0, 0, 0,
        ]));
        // Two exceptions of 2 bytes each, at 2-byte positions.
        assert_eq!(
            round_trip(edges.clone(), Slot::B8),
            6 + 12 + 5 + 2 * (2 + 2)
        );
        assert_eq!(round_trip(edges.clone(), Slot::B16), 6 + 24 + 5);
        let edges32: ArrayRef = Arc::new(Int64Array::from(vec![
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            1 << 31,
            0,
        ]));
        assert_eq!(round_trip(edges32, Slot::B32), 6 + 16 + 5 + (2 + 8));
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        for slot in SLOTS {
            let refused: [ArrayRef; 4] = [
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(Float32Array::from(vec![1.0])),
                Arc::new(
                    Decimal128Array::from(vec![i128::MIN])
                        .with_precision_and_scale(38, 0)
                        .unwrap(),
                ),
                // Every value an exception: more bytes than plain BIGINTs.
                Arc::new(Int64Array::from(vec![i64::MAX; 50])),
            ];
            for a in refused {
                assert!(encode(&a, slot).is_none(), "{slot:?} took {a:?}");
            }
        }
        // Positions are u16: a block may not exceed 65,536 rows.
        let huge: ArrayRef = Arc::new(Int64Array::from(vec![0; BLOCK_ROWS + 1]));
        assert!(encode(&huge, Slot::B8).is_none());
        let full: ArrayRef = Arc::new(Int64Array::from_iter_values(
            (0..BLOCK_ROWS as i64).map(|i| i % 1000),
        ));
        let bytes = encode(&full, Slot::B8).unwrap();
        assert_eq!(
            &decode(&bytes, &DataType::Int64, BLOCK_ROWS, Slot::B8).unwrap(),
            &full
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![
            Some(1),
            None,
            Some(1000),
            Some(2000),
        ]));
        let good = encode(&a, Slot::B8).unwrap();
        assert_eq!(&decode(&good, &DataType::Int32, 4, Slot::B8).unwrap(), &a);
        assert!(decode(&good, &DataType::Int32, 5, Slot::B8).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing, &DataType::Int32, 4, Slot::B8).is_err());
        // Layout: 1 + 4 header, 1 + 1 validity, 4 slots, 4 count, 1 width, positions.
        let positions = 16;
        assert_eq!(&good[positions..positions + 4], &[2, 0, 3, 0]);
        let mut descending = good.clone();
        descending[positions..positions + 4].copy_from_slice(&[3, 0, 2, 0]);
        assert!(decode(&descending, &DataType::Int32, 4, Slot::B8).is_err());
        let mut on_null = good.clone();
        on_null[positions] = 1;
        assert!(decode(&on_null, &DataType::Int32, 4, Slot::B8).is_err());
        let mut outside = good.clone();
        outside[positions + 2] = 9;
        assert!(decode(&outside, &DataType::Int32, 4, Slot::B8).is_err());
        let mut bad_width = good.clone();
        bad_width[positions - 1] = 5;
        assert!(decode(&bad_width, &DataType::Int32, 4, Slot::B8).is_err());
        // An exception too big for the column type.
        let wide = encode(
            &(Arc::new(Int64Array::from(vec![0, 1 << 40])) as ArrayRef),
            Slot::B8,
        )
        .unwrap();
        assert!(decode(&wide, &DataType::Int32, 2, Slot::B8).is_err());
    }
}
