//! RUNLENGTH: a block as runs of equal consecutive values (NULL runs included), for
//! columns that repeat a value many times in a row — typically low-cardinality sort key
//! columns. Works for every type: the run values are kept as an LZ4-compressed Arrow IPC
//! column, the run lengths bit-packed. Layout in `docs/format.md` ("RUNLENGTH block").

use arrow::array::{ArrayRef, UInt32Array};

use crate::encodings::block::BlockCursor;
use crate::encodings::block::{pack, unpack, width_of};

const LAYOUT: u8 = 1;

/// Encode one block as runs. Never fails for a valid array; returns `None` only if Arrow
/// cannot partition or serialize it.
pub fn encode(array: &ArrayRef) -> Option<Vec<u8>> {
    let rows = array.len();
    let runs = arrow::compute::partition(std::slice::from_ref(array))
        .ok()?
        .ranges();
    let starts = UInt32Array::from_iter_values(runs.iter().map(|r| r.start as u32));
    let values = arrow::compute::take(array.as_ref(), &starts, None).ok()?;
    let lengths: Vec<u64> = runs.iter().map(|r| (r.end - r.start - 1) as u64).collect();
    let width = width_of(&lengths);
    let values = crate::encodings::block::pack_values(&values)?;
    let mut out = Vec::with_capacity(14 + values.len() + (runs.len() * width as usize).div_ceil(8));
    out.push(LAYOUT);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    out.push(width);
    out.extend_from_slice(&pack(&lengths, width));
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    out.extend_from_slice(&values);
    Some(out)
}

/// Decode a block of `rows` values.
pub fn decode(payload: &[u8], rows: usize) -> Result<ArrayRef, String> {
    let (values, lengths) = decode_parts(payload, rows)?;
    let indices = UInt32Array::from_iter_values(
        lengths
            .iter()
            .enumerate()
            .flat_map(|(run, len)| std::iter::repeat_n(run as u32, *len)),
    );
    arrow::compute::take(values.as_ref(), &indices, None).map_err(|e| e.to_string())
}

/// The block's run values and run lengths, without expanding them (a predicate can be
/// judged once per run instead of once per row).
pub fn decode_parts(payload: &[u8], rows: usize) -> Result<(ArrayRef, Vec<usize>), String> {
    let (mut c, _) = BlockCursor::open(payload, "RUNLENGTH", &[LAYOUT], rows)?;
    let runs = c.u32()?;
    let width = c.u8()?;
    if width > 32 || runs > rows {
        return Err("bad RUNLENGTH header".into());
    }
    let lengths = unpack(c.take((runs * width as usize).div_ceil(8))?, width, runs);
    if lengths.iter().map(|l| l + 1).sum::<u64>() != rows as u64 {
        return Err("RUNLENGTH runs do not add up to the block's rows".into());
    }
    let values_len = c.u32()?;
    let values = crate::encodings::block::unpack_values(c.take(values_len)?)?;
    if values.len() != runs {
        return Err("RUNLENGTH value count differs from run count".into());
    }
    Ok((values, lengths.iter().map(|l| *l as usize + 1).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn runs_round_trip_for_any_type_including_nulls() {
        let cases: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("a"),
                None,
                None,
                Some("b"),
                Some("a"),
            ])),
            Arc::new(Int32Array::from(vec![7; 5000])),
            Arc::new(Int32Array::from(Vec::<i32>::new())),
            Arc::new(Int32Array::from_iter_values(0..100)),
        ];
        for a in cases {
            let bytes = encode(&a).unwrap();
            assert_eq!(&decode(&bytes, a.len()).unwrap(), &a);
        }
        // 5,000 copies of one value are a single run.
        let constant: ArrayRef = Arc::new(Int32Array::from(vec![7; 5000]));
        assert!(encode(&constant).unwrap().len() < 300);
    }

    #[test]
    fn garbage_is_an_error() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x", "x", "y"]));
        let good = encode(&a).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], 3).is_err());
        }
        assert!(decode(&good, 4).is_err());
    }
}
