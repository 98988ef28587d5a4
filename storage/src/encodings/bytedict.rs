//! BYTEDICT: a per-block dictionary of at most 256 distinct values (NULL counts as one)
//! and one byte per row naming its entry — for low-cardinality columns of any type but
//! BOOLEAN. A block with more distinct values is not BYTEDICT-encodable (the writer then
//! falls back to LZ4 for it). Layout in `docs/format.md` ("BYTEDICT block").

use std::collections::HashMap;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::row::{RowConverter, SortField};

use crate::encodings::block::BlockCursor;

const LAYOUT: u8 = 1;
/// Largest dictionary, as in Redshift.
pub const MAX_ENTRIES: usize = 256;

/// Encode one block, or `None` when it has more than 256 distinct values.
pub fn encode(array: &ArrayRef) -> Option<Vec<u8>> {
    let converter = RowConverter::new(vec![SortField::new(array.data_type().clone())]).ok()?;
    let rows = converter
        .convert_columns(std::slice::from_ref(array))
        .ok()?;
    let mut entries: HashMap<&[u8], u8> = HashMap::new();
    let mut first_seen: Vec<u32> = vec![];
    let mut codes = Vec::with_capacity(array.len());
    for (i, row) in rows.iter().enumerate() {
        let next = entries.len();
        let code = match entries.get(row.as_ref()) {
            Some(c) => *c,
            None => {
                if next == MAX_ENTRIES {
                    return None;
                }
                entries.insert(row.data(), next as u8);
                first_seen.push(i as u32);
                next as u8
            }
        };
        codes.push(code);
    }
    let dict = arrow::compute::take(array.as_ref(), &UInt32Array::from(first_seen), None).ok()?;
    let dict = crate::encodings::block::pack_values(&dict)?;
    let mut out = Vec::with_capacity(13 + codes.len() + dict.len());
    out.push(LAYOUT);
    out.extend_from_slice(&(array.len() as u32).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&codes);
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    out.extend_from_slice(&dict);
    Some(out)
}

/// Decode a block of `rows` values.
pub fn decode(payload: &[u8], rows: usize) -> Result<ArrayRef, String> {
    let (dict, codes) = decode_parts(payload, rows)?;
    let indices = UInt32Array::from_iter_values(codes.into_iter().map(u32::from));
    arrow::compute::take(dict.as_ref(), &indices, None).map_err(|e| e.to_string())
}

/// The block's dictionary and its one-byte code per row, without expanding them (a
/// predicate can be judged on the ≤ 256 entries instead of every row).
pub fn decode_parts(payload: &[u8], rows: usize) -> Result<(ArrayRef, Vec<u8>), String> {
    let (mut c, _) = BlockCursor::open(payload, "BYTEDICT", &[LAYOUT], rows)?;
    let entries = c.u32()?;
    if entries > MAX_ENTRIES || (entries == 0 && rows > 0) {
        return Err(format!("bad BYTEDICT dictionary size {entries}"));
    }
    let codes = c.take(rows)?.to_vec();
    if codes.iter().any(|c| usize::from(*c) >= entries) {
        return Err("BYTEDICT code beyond the dictionary".into());
    }
    let dict_len = c.u32()?;
    let dict = crate::encodings::block::unpack_values(c.take(dict_len)?)?;
    if dict.len() != entries {
        return Err("BYTEDICT dictionary size differs from its header".into());
    }
    Ok((dict, codes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn low_cardinality_blocks_round_trip_and_high_cardinality_is_refused() {
        let colors: ArrayRef = Arc::new(StringArray::from_iter(
            (0..10_000).map(|i| (i % 7 != 0).then(|| ["red", "green", "blue"][i % 3])),
        ));
        let bytes = encode(&colors).unwrap();
        assert_eq!(&decode(&bytes, colors.len()).unwrap(), &colors);
        // One byte per row plus a small dictionary (its IPC framing is a few hundred bytes).
        assert!(bytes.len() < 10_000 + 400, "{}", bytes.len());
        let exactly_256: ArrayRef =
            Arc::new(Int64Array::from_iter_values((0..1000).map(|i| i % 256)));
        assert_eq!(
            &decode(&encode(&exactly_256).unwrap(), 1000).unwrap(),
            &exactly_256
        );
        let too_many: ArrayRef = Arc::new(Int64Array::from_iter_values(0..257));
        assert!(encode(&too_many).is_none());
        let empty: ArrayRef = Arc::new(Int64Array::from(Vec::<i64>::new()));
        assert_eq!(&decode(&encode(&empty).unwrap(), 0).unwrap(), &empty);
    }

    #[test]
    fn garbage_is_an_error() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "x"]));
        let good = encode(&a).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], 3).is_err());
        }
        let mut bad_code = good.clone();
        bad_code[9] = 9;
        assert!(decode(&bad_code, 3).is_err());
    }
}
