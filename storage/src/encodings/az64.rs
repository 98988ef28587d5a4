//! AZ64, Basalt's codec for SMALLINT, INTEGER, BIGINT, DECIMAL (up to 18 digits of
//! unscaled value), DATE, TIME and TIMESTAMP. Each block is stored in the smaller of two
//! layouts: frame of reference (the block minimum once, then every `value - min` in the
//! fewest bits that hold the largest difference) or delta (the first value, then every
//! `value - previous` the same way), which suits sorted columns. Layouts in
//! `docs/format.md` ("AZ64 block").

use arrow::array::{Array, ArrayRef};

use crate::encodings::block::{
    BlockCursor, lanes, lanes_to_array, pack, push_validity, unpack, width_of,
};
use arrow::datatypes::DataType;

/// Layout tags of an AZ64 block payload.
const LAYOUT_FOR: u8 = 1;
const LAYOUT_DELTA: u8 = 2;

/// Encode one block, or `None` if AZ64 does not apply to it.
pub fn encode(array: &ArrayRef) -> Option<Vec<u8>> {
    let values = lanes(array)?;
    let rows = values.len();
    // The validity bitmap, read directly (a dynamic `is_valid` per value costs more than
    // the encoding itself); None when every row is valid.
    let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
    let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
    let mut header = Vec::with_capacity(6 + rows.div_ceil(8));
    header.extend_from_slice(&(rows as u32).to_le_bytes());
    push_validity(&mut header, array.as_ref());

    // Frame of reference: value - min.
    let base = (0..rows)
        .filter(|&i| valid(i))
        .map(|i| values[i])
        .min()
        .unwrap_or(0);
    let offsets: Vec<u64> = (0..rows)
        .map(|i| {
            if valid(i) {
                (i128::from(values[i]) - i128::from(base)) as u64
            } else {
                0
            }
        })
        .collect();
    let for_width = width_of(&offsets);
    let mut best = Vec::with_capacity(header.len() + 10 + (rows * for_width as usize).div_ceil(8));
    best.push(LAYOUT_FOR);
    best.extend_from_slice(&header);
    best.extend_from_slice(&base.to_le_bytes());
    best.push(for_width);
    best.extend_from_slice(&pack(&offsets, for_width));

    // Delta: value - previous (a null repeats the previous value), shifted by the
    // smallest delta so that every packed number is non-negative.
    if rows > 1 {
        let mut filled = Vec::with_capacity(rows);
        let mut last = (0..rows).find(|&i| valid(i)).map_or(0, |i| values[i]);
        for (i, v) in values.iter().enumerate() {
            if valid(i) {
                last = *v;
            }
            filled.push(last);
        }
        let deltas: Vec<i128> = filled
            .windows(2)
            .map(|w| i128::from(w[1]) - i128::from(w[0]))
            .collect();
        let min_delta = deltas.iter().copied().min().unwrap_or(0);
        let max_delta = deltas.iter().copied().max().unwrap_or(0);
        if let (Ok(min64), Ok(span)) = (
            i64::try_from(min_delta),
            u64::try_from(max_delta - min_delta),
        ) {
            let shifted: Vec<u64> = deltas.iter().map(|d| (d - min_delta) as u64).collect();
            let width = 64 - span.leading_zeros() as u8;
            let size = header.len() + 18 + ((rows - 1) * width as usize).div_ceil(8);
            if size < best.len() {
                let mut out = Vec::with_capacity(size);
                out.push(LAYOUT_DELTA);
                out.extend_from_slice(&header);
                out.extend_from_slice(&filled[0].to_le_bytes());
                out.extend_from_slice(&min64.to_le_bytes());
                out.push(width);
                out.extend_from_slice(&pack(&shifted, width));
                best = out;
            }
        }
    }
    Some(best)
}

/// Decode a block of `rows` values of type `data_type`.
pub fn decode(payload: &[u8], data_type: &DataType, rows: usize) -> Result<ArrayRef, String> {
    let (mut c, layout) = BlockCursor::open(payload, "AZ64", &[LAYOUT_FOR, LAYOUT_DELTA], rows)?;
    let nulls = c.validity(rows)?;
    let first = c.i64()?;
    let min_delta = if layout == LAYOUT_DELTA { c.i64()? } else { 0 };
    let width = c.u8()?;
    if width > 64 {
        return Err(format!("bad AZ64 bit width {width}"));
    }
    let values: Vec<i64> = if layout == LAYOUT_FOR {
        let packed = c.take((rows * width as usize).div_ceil(8))?;
        // Wrapping i64 addition is the two's complement truncation of the exact sum.
        unpack(packed, width, rows)
            .into_iter()
            .map(|d| first.wrapping_add(d as i64))
            .collect()
    } else {
        let n = rows.saturating_sub(1);
        let packed = c.take((n * width as usize).div_ceil(8))?;
        let mut out = Vec::with_capacity(rows);
        if rows > 0 {
            out.push(first);
        }
        let mut cur = first;
        for d in unpack(packed, width, n) {
            cur = cur.wrapping_add(min_delta).wrapping_add(d as i64);
            out.push(cur);
        }
        out
    };
    lanes_to_array(values, nulls, data_type, "AZ64")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    /// The straightforward bit-at-a-time packing [`pack`] must reproduce byte for byte.
    fn pack_reference(values: &[u64], width: u8) -> Vec<u8> {
        let mut out = vec![0u8; (values.len() * width as usize).div_ceil(8)];
        let mut bit = 0usize;
        for &v in values {
            let mut v = v;
            let mut remaining = width as usize;
            while remaining > 0 {
                let (byte, offset) = (bit / 8, bit % 8);
                let take = (8 - offset).min(remaining);
                out[byte] |= ((v & ((1u64 << take) - 1)) as u8) << offset;
                v >>= take;
                bit += take;
                remaining -= take;
            }
        }
        out
    }

    #[test]
    fn pack_matches_the_bitwise_reference() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for width in 0..=64u8 {
            for n in [0usize, 1, 2, 7, 8, 9, 63, 64, 65, 1000] {
                let values: Vec<u64> = (0..n).map(|_| next()).collect();
                assert_eq!(
                    pack(&values, width),
                    pack_reference(&values, width),
                    "width {width}, {n} values"
                );
                let masked: Vec<u64> = values
                    .iter()
                    .map(|v| {
                        if width == 64 {
                            *v
                        } else {
                            v & ((1u64 << width) - 1)
                        }
                    })
                    .collect();
                assert_eq!(unpack(&pack(&values, width), width, n), masked);
            }
        }
    }

    #[test]
    fn unpack_matches_pack_for_every_width_and_tail() {
        for width in 0..=64u8 {
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            for rows in [0usize, 1, 7, 8, 9, 63, 64, 65, 1000] {
                let values: Vec<u64> = (0..rows as u64)
                    .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask)
                    .collect();
                let packed = pack(&values, width);
                assert_eq!(
                    unpack(&packed, width, rows),
                    values,
                    "width {width}, {rows} rows"
                );
            }
        }
    }

    use super::*;
    use arrow::array::{
        Date32Array, Decimal128Array, Int16Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };

    fn round_trip(a: ArrayRef) -> usize {
        let bytes = encode(&a).expect("az64 applies");
        let back = decode(&bytes, a.data_type(), a.len()).unwrap();
        assert_eq!(&back, &a);
        bytes.len()
    }

    #[test]
    fn round_trips_every_type_with_nulls_and_extremes() {
        round_trip(Arc::new(Int64Array::from(vec![
            Some(i64::MIN),
            None,
            Some(i64::MAX),
            Some(0),
        ])));
        round_trip(Arc::new(Int16Array::from(vec![Some(-5), Some(7), None])));
        round_trip(Arc::new(Date32Array::from(vec![19_000, 19_001, 19_365])));
        round_trip(Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1_700_000_000_000_000), None])
                .with_timezone("+00:00"),
        ));
        round_trip(Arc::new(
            Decimal128Array::from(vec![Some(12345), Some(-1), None])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ));
        round_trip(Arc::new(Int64Array::from(Vec::<i64>::new())));
        round_trip(Arc::new(Int64Array::from(vec![None, None])));
    }

    #[test]
    fn sorted_and_constant_columns_pack_tightly() {
        // 65,536 consecutive BIGINTs need 16 bits each instead of 64.
        let n = 65_536;
        let size = round_trip(Arc::new(Int64Array::from_iter_values(
            1_000_000..1_000_000 + n,
        )));
        assert!(size < 2 * n as usize + 32, "{size}");
        // A constant column needs no value bits at all.
        let size = round_trip(Arc::new(Int64Array::from(vec![42; 1000])));
        assert_eq!(size, 1 + 4 + 1 + 8 + 1);
        // Sorted values with a fixed stride use the delta layout: 0 bits per value.
        let strided = Arc::new(Int64Array::from_iter_values(
            (0..10_000).map(|i| 5_000_000 + 4 * i),
        ));
        assert_eq!(round_trip(strided), 1 + 4 + 1 + 8 + 8 + 1);
        // Descending runs and nulls inside a delta block.
        round_trip(Arc::new(Int64Array::from(vec![
            Some(9),
            None,
            Some(7),
            Some(7),
            None,
            Some(1),
        ])));
        round_trip(Arc::new(Int64Array::from(vec![
            None,
            Some(i64::MAX),
            Some(i64::MIN),
        ])));
    }

    #[test]
    fn refuses_what_it_cannot_hold_and_survives_garbage() {
        assert!(encode(&(Arc::new(StringArray::from(vec!["a"])) as ArrayRef)).is_none());
        let wide = Decimal128Array::from(vec![i128::MAX])
            .with_precision_and_scale(38, 0)
            .unwrap();
        assert!(encode(&(Arc::new(wide) as ArrayRef)).is_none());
        let good = encode(&(Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef)).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], &DataType::Int64, 3).is_err());
        }
        assert!(decode(&good, &DataType::Int64, 4).is_err());
        let mut bad_width = good.clone();
        let width_at = good.len() - 1 - (3 * width_of(&[2]) as usize).div_ceil(8);
        bad_width[width_at] = 200;
        assert!(decode(&bad_width, &DataType::Int64, 3).is_err());
    }
}
