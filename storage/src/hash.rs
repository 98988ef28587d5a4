//! The one distribution hash. `slice = basalt_hash(key) mod slice_count` decides where a
//! row of a DISTSTYLE KEY table lives, and every exchange that repartitions by key must use
//! the same function so that co-located joins stay correct. It is part of the on-disk
//! format (see `docs/format.md`, "Distribution hash"): never change it silently.
//!
//! Canonical key bytes, so that equal SQL values hash equally across types:
//! - all integer types, DATE (days) and TIMESTAMP (microseconds): the value widened to i64,
//!   8 bytes little-endian;
//! - DECIMAL: the unscaled i128, 16 bytes little-endian;
//! - REAL / DOUBLE: the value as f64 (with -0.0 folded to 0.0), its IEEE bits little-endian;
//! - CHAR / VARCHAR: the UTF-8 bytes with trailing blanks removed (Redshift compares CHAR
//!   and VARCHAR ignoring trailing blanks);
//! - BOOLEAN: one byte 0 or 1.
//!
//! The hash is 64-bit FNV-1a over those bytes followed by the MurmurHash3 `fmix64`
//! finalizer (FNV alone spreads consecutive integers poorly). NULL keys go to slice 0.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};

use crate::error::{Result, StorageError};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`, then `fmix64`.
pub fn basalt_hash(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

fn slice_of(hash: u64, slice_count: u32) -> u32 {
    (hash % u64::from(slice_count)) as u32
}

/// The slice of every row of `keys`, for a cluster of `slice_count` slices.
pub fn slices_for_keys(keys: &ArrayRef, slice_count: u32) -> Result<Vec<u32>> {
    if slice_count == 0 {
        return Err(StorageError::Unsupported("cluster has no slices".into()));
    }
    macro_rules! ints {
        ($t:ty) => {{
            let a = keys.as_primitive::<$t>();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        0
                    } else {
                        slice_of(basalt_hash(&(a.value(i) as i64).to_le_bytes()), slice_count)
                    }
                })
                .collect()
        }};
    }
    macro_rules! floats {
        ($t:ty) => {{
            let a = keys.as_primitive::<$t>();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        0
                    } else {
                        let v = a.value(i) as f64;
                        let v = if v == 0.0 { 0.0 } else { v };
                        slice_of(basalt_hash(&v.to_bits().to_le_bytes()), slice_count)
                    }
                })
                .collect()
        }};
    }
    macro_rules! strings {
        ($a:expr) => {{
            let a = $a;
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        0
                    } else {
                        let s: &str = a.value(i);
                        slice_of(basalt_hash(s.trim_end_matches(' ').as_bytes()), slice_count)
                    }
                })
                .collect()
        }};
    }
    let out = match keys.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Date32 => ints!(Date32Type),
        DataType::Date64 => ints!(Date64Type),
        DataType::Timestamp(TimeUnit::Microsecond, _) => ints!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => ints!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => ints!(TimestampNanosecondType),
        DataType::Timestamp(TimeUnit::Second, _) => ints!(TimestampSecondType),
        DataType::Float32 => floats!(Float32Type),
        DataType::Float64 => floats!(Float64Type),
        DataType::Decimal128(_, _) => {
            let a = keys.as_primitive::<Decimal128Type>();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        0
                    } else {
                        slice_of(basalt_hash(&a.value(i).to_le_bytes()), slice_count)
                    }
                })
                .collect()
        }
        DataType::Utf8 => strings!(keys.as_string::<i32>()),
        DataType::LargeUtf8 => strings!(keys.as_string::<i64>()),
        DataType::Utf8View => strings!(keys.as_string_view()),
        DataType::Boolean => {
            let a = keys.as_boolean();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        0
                    } else {
                        slice_of(basalt_hash(&[u8::from(a.value(i))]), slice_count)
                    }
                })
                .collect()
        }
        other => {
            return Err(StorageError::Unsupported(format!(
                "type {other} cannot be a distribution key"
            )));
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};
    use std::sync::Arc;

    /// Pinned values: if these change, every KEY-distributed table on disk is misplaced.
    #[test]
    fn hash_is_stable() {
        // Computed independently (see docs/format.md); these are part of the format.
        assert_eq!(basalt_hash(&1i64.to_le_bytes()), 0x4a3a_3a4b_a652_3826);
        assert_eq!(basalt_hash(b"hello"), 0xe9c5_62c0_fdb2_3244);
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![1, 42]));
        assert_eq!(slices_for_keys(&keys, 4).unwrap(), vec![2, 0]);
    }

    #[test]
    fn int_widths_agree_and_strings_ignore_trailing_blanks() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3, 42]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 42]));
        assert_eq!(
            slices_for_keys(&a, 4).unwrap(),
            slices_for_keys(&b, 4).unwrap()
        );
        let s: ArrayRef = Arc::new(StringArray::from(vec!["ab", "ab  "]));
        let got = slices_for_keys(&s, 7).unwrap();
        assert_eq!(got[0], got[1]);
    }

    #[test]
    fn spreads_consecutive_integers() {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..10_000));
        let slices = slices_for_keys(&a, 4).unwrap();
        let mut counts = [0usize; 4];
        for s in slices {
            counts[s as usize] += 1;
        }
        for c in counts {
            assert!((2300..2700).contains(&c), "uneven spread {counts:?}");
        }
    }
}
