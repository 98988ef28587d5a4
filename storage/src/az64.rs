//! AZ64, Basalt's codec for SMALLINT, INTEGER, BIGINT, DECIMAL (up to 18 digits of
//! unscaled value), DATE, TIME and TIMESTAMP. Each block is stored in the smaller of two
//! layouts: frame of reference (the block minimum once, then every `value - min` in the
//! fewest bits that hold the largest difference) or delta (the first value, then every
//! `value - previous` the same way), which suits sorted columns. Layouts in
//! `docs/format.md` ("AZ64 block").

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};

use crate::values::{BlockCursor, push_validity};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};

/// Layout tags of an AZ64 block payload.
const LAYOUT_FOR: u8 = 1;
const LAYOUT_DELTA: u8 = 2;

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
mod tests {
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
