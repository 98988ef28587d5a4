//! TEXT255 and TEXT32K: VARCHAR/CHAR columns in which the same words recur, stored as a
//! per-block dictionary of words and, for every row, its words as dictionary codes. A
//! row's words are what splitting it on the space byte gives, so joining them with single
//! spaces gives the row back exactly: leading, trailing and repeated spaces are empty
//! words, and the empty string is one empty word. TEXT255 keeps at most 245 words of at
//! most 255 bytes and 1-byte codes; TEXT32K keeps words up to 32,768 bytes in all and
//! 2-byte codes. A word outside the dictionary is written literally after a literal code.
//! Redshift fills the dictionary with the first words it meets; this writer picks the
//! words that save the most bytes (the layout does not care which). A block that would be
//! larger than its strings' bytes plus Arrow's 4-byte offset per row is not encodable
//! (the writer falls back to LZ4). Layout in `docs/format.md` ("TEXT255 and TEXT32K
//! blocks").

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::DataType;

use crate::encodings::block::{BlockCursor, push_validity, push_varint, varint_len};

const LAYOUT: u8 = 1;

/// Which of the two codecs: the dictionary's limits and the code width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Words {
    /// TEXT255: up to 245 words of up to 255 bytes, 1-byte codes.
    T255,
    /// TEXT32K: up to 32,768 bytes of words, 2-byte codes.
    T32k,
}

impl Words {
    fn name(self) -> &'static str {
        match self {
            Words::T255 => "TEXT255",
            Words::T32k => "TEXT32K",
        }
    }

    fn code_bytes(self) -> usize {
        match self {
            Words::T255 => 1,
            Words::T32k => 2,
        }
    }

    /// The code that announces a literal word; dictionary codes are below it.
    fn literal(self) -> usize {
        match self {
            Words::T255 => 0xff,
            Words::T32k => 0xffff,
        }
    }

    fn max_entries(self) -> usize {
        match self {
            Words::T255 => 245,
            // Bounded in practice by the byte cap: one empty word plus 32,768 1-byte words.
            Words::T32k => 0xffff,
        }
    }

    fn max_word(self) -> usize {
        match self {
            Words::T255 => 255,
            Words::T32k => 32_768,
        }
    }

    fn max_dict_bytes(self) -> usize {
        match self {
            Words::T255 => 245 * 255,
            Words::T32k => 32_768,
        }
    }

    fn push_code(self, out: &mut Vec<u8>, code: usize) {
        match self {
            Words::T255 => out.push(code as u8),
            Words::T32k => out.extend_from_slice(&(code as u16).to_le_bytes()),
        }
    }
}

/// Encode one block, or `None` when it is not UTF-8 text or would not be smaller than its
/// strings in an Arrow array.
pub(crate) fn encode(array: &ArrayRef, words: Words) -> Option<Vec<u8>> {
    if array.data_type() != &DataType::Utf8 {
        return None;
    }
    let strings = array.as_string::<i32>();
    let present = || strings.iter().flatten();

    // Number the distinct words in first-seen order, count them, and keep every row's
    // words as numbers so that each word is hashed once.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut distinct: Vec<&str> = vec![];
    let mut counts: Vec<usize> = vec![];
    let mut stream: Vec<u32> = vec![];
    let mut row_words: Vec<usize> = vec![];
    for s in present() {
        let before = stream.len();
        for word in s.split(' ') {
            let id = *ids.entry(word).or_insert_with(|| {
                distinct.push(word);
                counts.push(0);
                distinct.len() - 1
            });
            counts[id] += 1;
            stream.push(id as u32);
        }
        row_words.push(stream.len() - before);
    }
    drop(ids);

    // An entry costs its bytes once; each use then saves them against a literal (the
    // code costs the same either way), so a word is worth (count - 1) * its bytes. Ties
    // go to the earlier word, so the output depends only on the rows.
    let bytes = |id: usize| varint_len(distinct[id].len()) + distinct[id].len();
    let saving = |id: usize| (counts[id] - 1) * bytes(id);
    let mut ranked: Vec<usize> = (0..distinct.len())
        .filter(|&id| counts[id] > 1 && distinct[id].len() <= words.max_word())
        .collect();
    ranked.sort_unstable_by(|&a, &b| saving(b).cmp(&saving(a)).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = vec![];
    let mut dict_bytes = 0;
    for id in ranked {
        if chosen.len() == words.max_entries() {
            break;
        }
        if dict_bytes + distinct[id].len() <= words.max_dict_bytes() {
            chosen.push(id);
            dict_bytes += distinct[id].len();
        }
    }
    chosen.sort_unstable();
    let mut code_of = vec![words.literal(); distinct.len()];
    for (code, &id) in chosen.iter().enumerate() {
        code_of[id] = code;
    }

    let rows = strings.len();
    let budget = present().map(str::len).sum::<usize>() + 4 * rows;
    let mut out = Vec::with_capacity(8 + rows.div_ceil(8) + budget / 2);
    out.push(LAYOUT);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    push_validity(&mut out, array.as_ref());
    out.extend_from_slice(&(chosen.len() as u16).to_le_bytes());
    let start = out.len();
    for &id in &chosen {
        push_varint(&mut out, distinct[id].len());
        out.extend_from_slice(distinct[id].as_bytes());
    }
    let mut next = 0;
    for n in row_words {
        push_varint(&mut out, n);
        for &id in &stream[next..next + n] {
            let (id, code) = (id as usize, code_of[id as usize]);
            words.push_code(&mut out, code);
            if code == words.literal() {
                push_varint(&mut out, distinct[id].len());
                out.extend_from_slice(distinct[id].as_bytes());
            }
        }
        next += n;
        if out.len() - start > budget {
            return None;
        }
    }
    Some(out)
}

/// Decode a block of `rows` strings; `data_type` must be Utf8.
pub(crate) fn decode(
    payload: &[u8],
    data_type: &DataType,
    rows: usize,
    words: Words,
) -> Result<ArrayRef, String> {
    let name = words.name();
    if data_type != &DataType::Utf8 {
        return Err(format!("{name} cannot hold {data_type}"));
    }
    let (mut c, _) = BlockCursor::open(payload, name, &[LAYOUT], rows)?;
    let nulls = c.validity(rows)?;
    let entries = c.u16()?;
    if entries > words.max_entries() {
        return Err(format!("{name} dictionary of {entries} words is too big"));
    }
    let mut dict: Vec<&[u8]> = Vec::with_capacity(entries);
    let mut dict_bytes = 0;
    for _ in 0..entries {
        let len = c.varint()?;
        dict_bytes += len;
        if len > words.max_word() || dict_bytes > words.max_dict_bytes() {
            return Err(format!("{name} dictionary is too big"));
        }
        dict.push(c.take(len)?);
    }
    // Every non-NULL row takes at least a count and a code: a row count the payload
    // cannot back is refused before it is allocated for.
    let present = rows - nulls.as_ref().map_or(0, |n| n.null_count());
    if present * (1 + words.code_bytes()) > c.remaining() {
        return Err(format!("{name} block is truncated"));
    }
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    let mut values: Vec<u8> = Vec::with_capacity(c.remaining());
    for i in 0..rows {
        if nulls.as_ref().is_none_or(|n| n.is_valid(i)) {
            let count = c.varint()?;
            if count == 0 {
                return Err(format!("{name} row with no words"));
            }
            for k in 0..count {
                if k > 0 {
                    values.push(b' ');
                }
                let code = if words.code_bytes() == 1 {
                    usize::from(c.u8()?)
                } else {
                    c.u16()?
                };
                let word = if code == words.literal() {
                    let len = c.varint()?;
                    c.take(len)?
                } else {
                    dict.get(code)
                        .copied()
                        .ok_or_else(|| format!("{name} code {code} beyond the dictionary"))?
                };
                values.extend_from_slice(word);
            }
        }
        offsets.push(i32::try_from(values.len()).map_err(|_| format!("{name} block is too big"))?);
    }
    c.finish()?;
    // Offsets only grow from 0, so `OffsetBuffer::new` cannot panic; `try_new` checks
    // the bytes are UTF-8 and that no row boundary splits a character.
    let array = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        nulls,
    )
    .map_err(|e| format!("{name}: {e}"))?;
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encodings::block::{corruptions, cuts};
    use arrow::array::Int32Array;

    const KINDS: [Words; 2] = [Words::T255, Words::T32k];

    fn round_trip(a: ArrayRef, words: Words) -> usize {
        let bytes = encode(&a, words).unwrap_or_else(|| panic!("{words:?} applies to {a:?}"));
        let back = decode(&bytes, a.data_type(), a.len(), words).unwrap();
        assert_eq!(&back, &a, "{words:?}");
        for cut in cuts(bytes.len()) {
            assert!(
                decode(&bytes[..cut], a.data_type(), a.len(), words).is_err(),
                "{words:?} accepted a cut at {cut} of {}",
                bytes.len()
            );
        }
        for bad in corruptions(&bytes) {
            let _ = decode(&bad, a.data_type(), a.len(), words);
        }
        bytes.len()
    }

    #[test]
    fn every_string_round_trips_exactly() {
        let tricky = vec![
            Some("the quick brown fox"),
            Some(""),
            None,
            Some(" "),
            Some("  "),
            Some(" the  quick  "),
            Some("the"),
            Some("naïve café — 東京 the"),
            Some("東京 東京 東京"),
            None,
            Some("tab\tand\nnewline the"),
            Some("the quick brown fox"),
            Some("😀 the 😀"),
            Some(""),
        ];
        for words in KINDS {
            round_trip(Arc::new(StringArray::from(tricky.clone())), words);
            round_trip(Arc::new(StringArray::from(Vec::<&str>::new())), words);
            round_trip(Arc::new(StringArray::from(vec![None::<&str>; 5])), words);
            round_trip(Arc::new(StringArray::from(vec![""; 20])), words);
            let big: ArrayRef = Arc::new(StringArray::from(tricky.clone()));
            round_trip(big.slice(3, 8), words);
        }
    }

    #[test]
    fn repeated_words_shrink_and_the_dictionaries_keep_their_limits() {
        let sentences: ArrayRef = Arc::new(StringArray::from_iter_values((0..2000).map(|i| {
            format!(
                "order {} shipped to the {} warehouse on time",
                ["was", "is", "will be"][i % 3],
                ["north", "south", "east", "west"][i % 4]
            )
        })));
        let plain = sentences.as_string::<i32>().value_data().len();
        // Nine words a row: 1 + 9 bytes (TEXT255) or 1 + 18 (TEXT32K) instead of ~48.
        for (words, ratio) in [(Words::T255, 4), (Words::T32k, 2)] {
            let size = round_trip(sentences.clone(), words);
            assert!(size < plain / ratio, "{words:?}: {size} of {plain}");
        }
        // 1,000 distinct words, each used twice: TEXT255 keeps 245 of them and writes the
        // rest literally; TEXT32K keeps them all.
        let many: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..2000).map(|i| format!("word{:04} w{}", i % 1000, i % 1000)),
        ));
        let t255 = round_trip(many.clone(), Words::T255);
        let t32k = round_trip(many.clone(), Words::T32k);
        let entries = |b: &[u8]| u16::from_le_bytes([b[6], b[7]]) as usize;
        assert_eq!(entries(&encode(&many, Words::T255).unwrap()), 245);
        assert_eq!(entries(&encode(&many, Words::T32k).unwrap()), 2000);
        assert!(t32k < t255, "{t32k} vs {t255}");
        // Long repeated words stay out of TEXT255's dictionary but not TEXT32K's, which
        // stops at 32,768 bytes.
        let long: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..60).map(|i| format!("{}{}", i % 20, "x".repeat(2000))),
        ));
        assert_eq!(entries(&encode(&long, Words::T255).unwrap()), 0);
        assert_eq!(entries(&encode(&long, Words::T32k).unwrap()), 16);
        round_trip(long, Words::T32k);
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
        // Short words that never repeat: a code and a length per word, and a count per
        // row, cost more than the spaces and offsets they replace.
        let unique: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..200).map(|i| format!("{} {} {}", 3 * i, 3 * i + 1, 3 * i + 2)),
        ));
        for words in KINDS {
            assert!(encode(&ints, words).is_none());
            assert!(encode(&unique, words).is_none(), "{words:?}");
        }
        let text = encode(
            &(Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            Words::T255,
        )
        .unwrap();
        assert!(decode(&text, &DataType::Int32, 1, Words::T255).is_err());
        assert!(decode(&text, &DataType::LargeUtf8, 1, Words::T255).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["é a", "é b", "é"]));
        let good = encode(&a, Words::T255).unwrap();
        // 1 + 4 header, 1 validity, 2 entries, the entry "é" (length 2).
        assert_eq!(&good[6..11], &[1, 0, 2, 0xc3, 0xa9]);
        assert!(decode(&good, &DataType::Utf8, 4, Words::T255).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing, &DataType::Utf8, 3, Words::T255).is_err());
        // The first row's first code, then a code past the one entry.
        assert_eq!(&good[11..13], &[2, 0]);
        let mut beyond = good.clone();
        beyond[12] = 7;
        assert!(decode(&beyond, &DataType::Utf8, 3, Words::T255).is_err());
        // Half a character in the dictionary: not UTF-8.
        let mut split = good.clone();
        split[10] = b'z';
        assert!(decode(&split, &DataType::Utf8, 3, Words::T255).is_err());
        // A row of zero words.
        let mut empty_row = good.clone();
        empty_row[11] = 0;
        assert!(decode(&empty_row, &DataType::Utf8, 3, Words::T255).is_err());
        // Too many entries for TEXT255.
        let mut big_dict = good.clone();
        big_dict[6] = 246;
        assert!(decode(&big_dict, &DataType::Utf8, 3, Words::T255).is_err());
    }
}
