//! DELTA and DELTA32K: integer-like columns (SMALLINT, INTEGER, BIGINT, DECIMAL whose
//! unscaled values fit an i64, DATE, TIME, TIMESTAMP, taken as i64 lanes the way AZ64
//! takes them) stored as the first non-NULL value in full and then, for every later
//! non-NULL value, its difference from the previous non-NULL value in one signed byte
//! (DELTA, -127..=127) or two (DELTA32K, -32767..=32767). A difference out of that range
//! is written as the escape code (the one value the range leaves out: -128 / -32768)
//! followed by the value in full, as Redshift's "falls back to full value". NULLs live
//! in a bitmap and take no delta. A block whose deltas would be larger than its values
//! at the column's own width is not DELTA-encodable (the writer falls back to LZ4).
//! Layout in `docs/format.md` ("DELTA and DELTA32K blocks").

use arrow::array::{Array, ArrayRef};

use crate::encodings::block::{BlockCursor, byte_width, push_int, push_validity};
use crate::encodings::block::{lane_bytes, lanes, lanes_to_array};

const LAYOUT: u8 = 1;

/// Which of the two delta codecs: how many bytes a delta takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// DELTA: 1-byte deltas.
    Byte,
    /// DELTA32K: 2-byte deltas.
    Short,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Byte => "DELTA",
            Step::Short => "DELTA32K",
        }
    }

    /// The escape code; every other code of the width is a delta.
    fn escape(self) -> i64 {
        match self {
            Step::Byte => i64::from(i8::MIN),
            Step::Short => i64::from(i16::MIN),
        }
    }

    fn bytes(self) -> u8 {
        match self {
            Step::Byte => 1,
            Step::Short => 2,
        }
    }
}

/// Encode one block, or `None` when the type is not integer-like or the block would not
/// be smaller than its values at the column's width.
pub(crate) fn encode(array: &ArrayRef, step: Step) -> Option<Vec<u8>> {
    let values = lanes(array)?;
    let native = lane_bytes(array.data_type())?;
    let rows = values.len();
    let valid: Vec<i64> = (0..rows)
        .filter(|&i| array.is_valid(i))
        .map(|i| values[i])
        .collect();
    let lo = valid.iter().copied().min().unwrap_or(0);
    let hi = valid.iter().copied().max().unwrap_or(0);
    // Full values only need the block's own range, often narrower than the column type.
    let width = byte_width(lo, hi);
    let mut out = Vec::with_capacity(7 + rows.div_ceil(8) + valid.len() * 2);
    out.push(LAYOUT);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    push_validity(&mut out, array.as_ref());
    out.push(width);
    let header = out.len();
    let budget = valid.len() * native;
    let limit = -step.escape() - 1;
    let mut prev: Option<i64> = None;
    for &v in &valid {
        match prev {
            None => push_int(&mut out, v, width),
            Some(p) => {
                // i128: the difference of two i64 extremes does not fit an i64.
                let d = i128::from(v) - i128::from(p);
                if d.unsigned_abs() <= limit as u128 {
                    push_int(&mut out, d as i64, step.bytes());
                } else {
                    push_int(&mut out, step.escape(), step.bytes());
                    push_int(&mut out, v, width);
                }
            }
        }
        prev = Some(v);
        if out.len() - header > budget {
            return None;
        }
    }
    Some(out)
}

/// Decode a block of `rows` values of type `data_type`.
pub(crate) fn decode(
    payload: &[u8],
    data_type: &arrow::datatypes::DataType,
    rows: usize,
    step: Step,
) -> Result<ArrayRef, String> {
    let name = step.name();
    let (mut c, _) = BlockCursor::open(payload, name, &[LAYOUT], rows)?;
    let nulls = c.validity(rows)?;
    let width = c.u8()?;
    // Every non-NULL row takes at least a byte: a row count the payload cannot back is
    // refused before it is allocated for.
    let present = rows - nulls.as_ref().map_or(0, |n| n.null_count());
    if present > c.remaining() {
        return Err(format!("{name} block is truncated"));
    }
    let mut values = vec![0i64; rows];
    let mut prev: Option<i64> = None;
    for (i, slot) in values.iter_mut().enumerate() {
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            continue;
        }
        let v = match prev {
            None => c.int(width)?,
            Some(p) => match c.int(step.bytes())? {
                d if d == step.escape() => c.int(width)?,
                d => p
                    .checked_add(d)
                    .ok_or_else(|| format!("{name} delta overflows"))?,
            },
        };
        *slot = v;
        prev = Some(v);
    }
    c.finish()?;
    lanes_to_array(values, nulls, data_type, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encodings::block::{corruptions, cuts};
    use arrow::array::{
        Date32Array, Decimal128Array, Float64Array, Int16Array, Int32Array, Int64Array,
        StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::DataType;
    use std::sync::Arc;

    const STEPS: [Step; 2] = [Step::Byte, Step::Short];

    fn round_trip(a: ArrayRef, step: Step) -> usize {
        let bytes = encode(&a, step).unwrap_or_else(|| panic!("{step:?} applies to {a:?}"));
        let back = decode(&bytes, a.data_type(), a.len(), step).unwrap();
        assert_eq!(&back, &a, "{step:?}");
        // Every truncation is an error, never a panic or a shorter array.
        for cut in cuts(bytes.len()) {
            assert!(
                decode(&bytes[..cut], a.data_type(), a.len(), step).is_err(),
                "{step:?} accepted a cut at {cut} of {}",
                bytes.len()
            );
        }
        for bad in corruptions(&bytes) {
            let _ = decode(&bad, a.data_type(), a.len(), step);
        }
        bytes.len()
    }

    /// Sorted values with small steps, a NULL or two, and one far jump each way.
    fn mostly_small_steps(lo: i64, hi: i64) -> Vec<Option<i64>> {
        let mut v: Vec<Option<i64>> = (0..40).map(|i| Some(lo + i * 3)).collect();
        v.insert(5, None);
        v.push(Some(hi));
        v.extend((0..40).map(|i| Some(hi - i * 100)));
        v.push(None);
        v.push(Some(lo));
        v
    }

    #[test]
    fn round_trips_every_type_with_nulls_and_extremes() {
        for step in STEPS {
            let wide = mostly_small_steps(i64::MIN, i64::MAX);
            round_trip(Arc::new(Int64Array::from(wide.clone())), step);
            let mid = mostly_small_steps(i32::MIN.into(), i32::MAX.into());
            let narrow = |v: &[Option<i64>]| -> Vec<Option<i32>> {
                v.iter().map(|x| x.map(|x| x as i32)).collect()
            };
            round_trip(Arc::new(Int32Array::from(narrow(&mid))), step);
            round_trip(Arc::new(Date32Array::from(narrow(&mid))), step);
            round_trip(
                Arc::new(TimestampMicrosecondArray::from(wide.clone()).with_timezone("+00:00")),
                step,
            );
            round_trip(
                Arc::new(TimestampMicrosecondArray::from(wide.clone())),
                step,
            );
            round_trip(Arc::new(Time64MicrosecondArray::from(wide.clone())), step);
            round_trip(
                Arc::new(
                    Decimal128Array::from_iter(wide.iter().map(|x| x.map(i128::from)))
                        .with_precision_and_scale(38, 4)
                        .unwrap(),
                ),
                step,
            );
            // Empty, all-NULL, a single value.
            round_trip(Arc::new(Int64Array::from(Vec::<i64>::new())), step);
            round_trip(Arc::new(Int32Array::from(vec![None, None, None])), step);
            round_trip(Arc::new(Int64Array::from(vec![i64::MIN])), step);
            // A slice of a bigger array (offset bitmap).
            let big: ArrayRef = Arc::new(Int64Array::from(mostly_small_steps(-5, 5000)));
            round_trip(big.slice(3, 50), step);
        }
    }

    #[test]
    fn smallint_takes_delta_and_delta32k_only_when_it_saves_space() {
        let small: ArrayRef = Arc::new(Int16Array::from_iter(
            mostly_small_steps(i16::MIN.into(), i16::MAX.into())
                .iter()
                .map(|x| x.map(|x| x as i16)),
        ));
        round_trip(small.clone(), Step::Byte);
        // Two-byte deltas are no smaller than two-byte values (Redshift does not offer
        // DELTA32K for SMALLINT either), unless the first value fits a byte.
        assert!(encode(&small, Step::Short).is_none());
        round_trip(Arc::new(Int16Array::from(vec![1, 2, 3])), Step::Short);
    }

    #[test]
    fn deltas_at_the_range_edges() {
        // ±127 fit DELTA's byte, ±128 escape; ±32767 fit DELTA32K's two bytes.
        let edges = Arc::new(Int64Array::from(vec![0, 127, 0, -127, 0, 128, 0, -128, 0]));
        round_trip(edges.clone(), Step::Byte);
        round_trip(edges, Step::Short);
        let edges = Arc::new(Int32Array::from(vec![
            0, 32767, 0, -32767, 0, 32768, 0, -32768, 0,
        ]));
        round_trip(edges, Step::Short);
    }

    #[test]
    fn sorted_columns_take_a_byte_or_two_per_row() {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
            (0..10_000).map(|i| 1_000_000_000 + 3 * i),
        ));
        // 1 + 4 + 1 + 1 header, a 4-byte first value, then one byte per later row.
        assert_eq!(round_trip(ids.clone(), Step::Byte), 7 + 4 + 9_999);
        assert_eq!(round_trip(ids, Step::Short), 7 + 4 + 2 * 9_999);
        let days: ArrayRef = Arc::new(Date32Array::from_iter_values(
            (0..5_000).map(|i| 18_000 + i / 10),
        ));
        assert_eq!(round_trip(days, Step::Byte), 7 + 2 + 4_999);
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        for step in STEPS {
            let refused: [ArrayRef; 4] = [
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(Float64Array::from(vec![1.0])),
                Arc::new(
                    Decimal128Array::from(vec![i128::MAX])
                        .with_precision_and_scale(38, 0)
                        .unwrap(),
                ),
                // Every delta escapes: 1 + 8 bytes a row is more than the 8 of a BIGINT.
                Arc::new(Int64Array::from_iter_values(
                    (0..100).map(|i| if i % 2 == 0 { i64::MIN } else { i64::MAX }),
                )),
            ];
            for a in refused {
                assert!(encode(&a, step).is_none(), "{step:?} took {a:?}");
            }
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let a: ArrayRef = Arc::new(Int16Array::from(vec![Some(1), None, Some(3)]));
        let good = encode(&a, Step::Byte).unwrap();
        assert!(decode(&good, &DataType::Int16, 4, Step::Byte).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing, &DataType::Int16, 3, Step::Byte).is_err());
        // A width byte that is not 1, 2, 4 or 8.
        let mut bad_width = good.clone();
        bad_width[7] = 3;
        assert!(decode(&bad_width, &DataType::Int16, 3, Step::Byte).is_err());
        // A value that does not fit the column type.
        let wide = encode(
            &(Arc::new(Int32Array::from(vec![100_000, 100_001])) as ArrayRef),
            Step::Byte,
        )
        .unwrap();
        assert!(decode(&wide, &DataType::Int16, 2, Step::Byte).is_err());
        // Deltas that run past i64::MAX.
        let mut over = vec![LAYOUT, 3, 0, 0, 0, 0, 8];
        over.extend_from_slice(&i64::MAX.to_le_bytes());
        over.extend_from_slice(&[1, 1]);
        assert!(decode(&over, &DataType::Int64, 3, Step::Byte).is_err());
    }
}
