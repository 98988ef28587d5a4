//! AZ64, Basalt's codec for SMALLINT, INTEGER, BIGINT, DECIMAL (up to 18 digits of
//! unscaled value), DATE, TIME and TIMESTAMP: frame of reference plus bit packing. Each
//! block stores its minimum once and every value as `value - min` in the fewest bits
//! that hold the block's largest difference, so sorted or narrow-ranged columns shrink to
//! a few bits per value. Layout in `docs/format.md` ("AZ64 block").

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};

/// Layout version of an AZ64 block payload.
const AZ64_LAYOUT: u8 = 1;

/// The column as i64 lanes, or `None` when AZ64 does not apply (type, or a DECIMAL value
/// beyond i64).
fn lanes(array: &ArrayRef) -> Option<Vec<i64>> {
    fn widen<T: ArrowPrimitiveType>(
        a: &ArrayRef,
        f: impl Fn(T::Native) -> Option<i64>,
    ) -> Option<Vec<i64>> {
        let p = a.as_primitive::<T>();
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
    let valid = |i: usize| array.is_valid(i);
    let base = (0..rows)
        .filter(|&i| valid(i))
        .map(|i| values[i])
        .min()
        .unwrap_or(0);
    let deltas: Vec<u64> = (0..rows)
        .map(|i| {
            if valid(i) {
                (i128::from(values[i]) - i128::from(base)) as u64
            } else {
                0
            }
        })
        .collect();
    let width = 64 - deltas.iter().copied().max().unwrap_or(0).leading_zeros() as u8;
    let mut out = Vec::with_capacity(16 + rows.div_ceil(8) + (rows * width as usize).div_ceil(8));
    out.push(AZ64_LAYOUT);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    if array.null_count() > 0 {
        out.push(1);
        let mut bitmap = vec![0u8; rows.div_ceil(8)];
        for i in (0..rows).filter(|&i| valid(i)) {
            bitmap[i / 8] |= 1 << (i % 8);
        }
        out.extend_from_slice(&bitmap);
    } else {
        out.push(0);
    }
    out.extend_from_slice(&base.to_le_bytes());
    out.push(width);
    out.extend_from_slice(&pack(&deltas, width));
    Some(out)
}

fn pack(values: &[u64], width: u8) -> Vec<u8> {
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

fn unpack(bytes: &[u8], width: u8, rows: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(rows);
    let mut bit = 0usize;
    for _ in 0..rows {
        let mut v = 0u64;
        let mut got = 0usize;
        while got < width as usize {
            let (byte, offset) = (bit / 8, bit % 8);
            let take = (8 - offset).min(width as usize - got);
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
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8], String> {
        let s = payload
            .get(pos..pos + n)
            .ok_or_else(|| "AZ64 block is truncated".to_string())?;
        pos += n;
        Ok(s)
    };
    let layout = take(1)?[0];
    if layout != AZ64_LAYOUT {
        return Err(format!("unknown AZ64 block layout {layout}"));
    }
    let stored_rows = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    if stored_rows != rows {
        return Err(format!(
            "AZ64 block holds {stored_rows} rows, footer says {rows}"
        ));
    }
    let nulls = match take(1)?[0] {
        0 => None,
        1 => {
            let bitmap = take(rows.div_ceil(8))?.to_vec();
            Some(NullBuffer::new(BooleanBuffer::new(
                Buffer::from_vec(bitmap),
                0,
                rows,
            )))
        }
        other => return Err(format!("bad AZ64 validity flag {other}")),
    };
    let base = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
    let width = take(1)?[0];
    if width > 64 {
        return Err(format!("bad AZ64 bit width {width}"));
    }
    let packed = take((rows * width as usize).div_ceil(8))?;
    let values: Vec<i64> = unpack(packed, width, rows)
        .into_iter()
        .map(|d| (i128::from(base) + i128::from(d)) as i64)
        .collect();
    fn build<T: ArrowPrimitiveType>(
        values: &[i64],
        nulls: Option<NullBuffer>,
        data_type: &DataType,
        narrow: impl Fn(i64) -> Option<T::Native>,
    ) -> Result<ArrayRef, String> {
        let is_valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
        let native: Vec<T::Native> = values
            .iter()
            .enumerate()
            .map(|(i, v)| match narrow(*v) {
                Some(n) => Ok(n),
                None if !is_valid(i) => Ok(T::Native::default()),
                None => Err(format!("AZ64 value {v} does not fit {data_type}")),
            })
            .collect::<Result<_, _>>()?;
        let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(native), nulls)
            .map_err(|e| e.to_string())?
            .with_data_type(data_type.clone());
        Ok(Arc::new(array))
    }
    match data_type {
        DataType::Int16 => build::<Int16Type>(&values, nulls, data_type, |v| i16::try_from(v).ok()),
        DataType::Int32 => build::<Int32Type>(&values, nulls, data_type, |v| i32::try_from(v).ok()),
        DataType::Int64 => build::<Int64Type>(&values, nulls, data_type, Some),
        DataType::Date32 => {
            build::<Date32Type>(&values, nulls, data_type, |v| i32::try_from(v).ok())
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            build::<Time64MicrosecondType>(&values, nulls, data_type, Some)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            build::<TimestampMicrosecondType>(&values, nulls, data_type, Some)
        }
        DataType::Decimal128(_, _) => {
            build::<Decimal128Type>(&values, nulls, data_type, |v| Some(i128::from(v)))
        }
        other => Err(format!("AZ64 cannot hold {other}")),
    }
}

#[cfg(test)]
mod tests {
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
        bad_width[14] = 200;
        assert!(decode(&bad_width, &DataType::Int64, 3).is_err());
    }
}
