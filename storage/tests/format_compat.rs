//! Backward compatibility of the segment format: committed fixture files written by
//! earlier builds must keep reading back exactly. Write the fixtures a change adds (only
//! those: each test says which it may rewrite, never to paper over a break) with
//! `BASALT_WRITE_FIXTURES=1 cargo test -p basalt-storage --test format_compat`.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use basalt_storage::segment::{Codec, SegmentReader, ZoneValue, write_segment};
use bytes::Bytes;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The rows stored in `v1_mixed.bseg`.
fn v1_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Int32, true),
        Field::new("price", DataType::Decimal128(12, 2), true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    let n = 300;
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(Int32Array::from_iter(
                (0..n).map(|i| (i % 5 != 0).then_some(i as i32 * 3)),
            )),
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| (i % 7 != 0).then_some(i as i128 * 101)))
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
            Arc::new(Float64Array::from_iter(
                (0..n).map(|i| Some(i as f64 / 8.0)),
            )),
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 3 != 0).then(|| format!("näme-{i}"))),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| (i % 4 != 0).then_some(i % 2 == 0)),
            )),
            Arc::new(Date32Array::from_iter(
                (0..n).map(|i| Some(19_000 + i as i32)),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter(
                (0..n).map(|i| Some(1_700_000_000_000_000 + i * 1_000_001)),
            )),
        ],
    )
    .unwrap()
}

/// The codecs `v1_mixed.bseg` was written with.
const V1_CODECS: [Codec; 8] = [
    Codec::Raw,
    Codec::Lz4,
    Codec::Zstd,
    Codec::Raw,
    Codec::Lz4,
    Codec::Raw,
    Codec::Zstd,
    Codec::Lz4,
];

#[test]
fn v1_fixture_reads_back_exactly() {
    // Never rewritten: this build writes version 2, so it could not make a v1 file again.
    let path = fixture_dir().join("v1_mixed.bseg");
    let bytes = Bytes::from(std::fs::read(&path).expect("committed fixture"));
    let reader = SegmentReader::open("fixtures/v1_mixed.bseg", bytes).unwrap();
    assert_eq!(reader.footer().format_version, 1);
    assert_eq!(reader.row_count(), 300);
    let stored: Vec<Codec> = reader
        .footer()
        .columns
        .iter()
        .map(|c| c.blocks[0].codec)
        .collect();
    assert_eq!(stored, V1_CODECS.to_vec());
    let batches = reader.read_batches(None).unwrap();
    let merged = arrow::compute::concat_batches(&reader.schema(), &batches).unwrap();
    assert_eq!(merged, v1_batch());
    // Zone maps are part of the format too.
    let id_block = &reader.footer().columns[0].blocks[0];
    assert_eq!(id_block.min, Some(ZoneValue::Int(0)));
    assert_eq!(id_block.max, Some(ZoneValue::Int(299)));
    let qty_block = &reader.footer().columns[1].blocks[0];
    assert_eq!(qty_block.null_count, 60);
    assert_eq!(merged.column(4).null_count(), 100);
}

/// `v2_az64.bseg`: the v1 rows again, with AZ64 on every column that can take it.
const V2_CODECS: [Codec; 8] = [
    Codec::Az64,
    Codec::Az64,
    Codec::Az64,
    Codec::Raw,
    Codec::Lz4,
    Codec::Raw,
    Codec::Az64,
    Codec::Az64,
];

/// `v2_az64.bseg` holds AZ64 blocks in the frame-of-reference layout only (written before
/// the delta layout existed); `v2_az64_delta.bseg` was written with both layouts available;
/// `v2_runlength.bseg` stores every column as RUNLENGTH; `v2_bytedict.bseg` asks for
/// BYTEDICT everywhere and keeps it where a column has at most 256 distinct values (the
/// others fell back to LZ4, which the footer records). `v2_delta.bseg` and
/// `v2_mostly.bseg` put DELTA/DELTA32K and MOSTLY8/16/32 on the integer-like columns; the
/// timestamps (steps of 1,000,001 µs from 1.7e15) suit neither and fell back to LZ4.
#[test]
fn v2_fixtures_read_back_exactly() {
    use Codec::{ByteDict, Delta, Delta32k, Lz4, Mostly8, Mostly16, Mostly32, Raw};
    let fixtures: [(&str, bool, [Codec; 8], [Codec; 8]); 6] = [
        ("v2_az64.bseg", false, V2_CODECS, V2_CODECS),
        ("v2_az64_delta.bseg", false, V2_CODECS, V2_CODECS),
        (
            "v2_runlength.bseg",
            false,
            [Codec::RunLength; 8],
            [Codec::RunLength; 8],
        ),
        (
            "v2_bytedict.bseg",
            false,
            [ByteDict; 8],
            [Lz4, ByteDict, Lz4, Lz4, ByteDict, ByteDict, Lz4, Lz4],
        ),
        (
            "v2_delta.bseg",
            true,
            [Delta, Delta32k, Delta, Raw, Lz4, Raw, Delta32k, Delta],
            [Delta, Delta32k, Delta, Raw, Lz4, Raw, Delta32k, Lz4],
        ),
        (
            "v2_mostly.bseg",
            true,
            [
                Mostly8, Mostly16, Mostly8, Raw, Lz4, Raw, Mostly16, Mostly32,
            ],
            [Mostly8, Mostly16, Mostly8, Raw, Lz4, Raw, Mostly16, Lz4],
        ),
    ];
    for (name, regenerate, requested, codecs) in fixtures {
        let merged = read_v2_fixture(name, regenerate, &v1_batch(), &requested, &codecs);
        assert_eq!(merged, v1_batch(), "{name}");
    }
}

/// Read the committed version-2 fixture `name` (first writing it from `batch` with the
/// `requested` codecs when `regenerate` and `BASALT_WRITE_FIXTURES` are set), check the
/// codec every column's first block was stored with, and return all its rows.
fn read_v2_fixture(
    name: &str,
    regenerate: bool,
    batch: &RecordBatch,
    requested: &[Codec],
    stored: &[Codec],
) -> RecordBatch {
    let path = fixture_dir().join(name);
    if regenerate && std::env::var_os("BASALT_WRITE_FIXTURES").is_some() {
        let bytes = write_segment(batch, requested).unwrap();
        std::fs::write(&path, &bytes).unwrap();
    }
    let bytes = Bytes::from(std::fs::read(&path).expect("committed fixture"));
    let reader = SegmentReader::open(name, bytes).unwrap();
    assert_eq!(reader.footer().format_version, 2);
    let found: Vec<Codec> = reader
        .footer()
        .columns
        .iter()
        .map(|c| c.blocks[0].codec)
        .collect();
    assert_eq!(found, stored.to_vec(), "{name}");
    let batches = reader.read_batches(None).unwrap();
    arrow::compute::concat_batches(&reader.schema(), &batches).unwrap()
}

/// The rows stored in `v2_text.bseg`: words that repeat, with the strings a word
/// dictionary could get wrong (empty, only spaces, leading/trailing/double spaces,
/// multibyte characters, NULLs).
fn text_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("t255", DataType::Utf8, true),
        Field::new("t32k", DataType::Utf8, true),
        Field::new("varied", DataType::Utf8, true),
    ]));
    const WORDS: [&str; 8] = ["the", "order", "shipped", "late", "東京", "café", "", "😀"];
    let sentence = |i: usize| -> String {
        (0..1 + i % 5)
            .map(|k| WORDS[(i * 7 + k * 3) % WORDS.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let n = 200;
    let tricky = ["", " ", "  x  ", "a  b", "東京 😀", "naïve café "];
    let text = |i: usize| (!i.is_multiple_of(11)).then(|| sentence(i));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter((0..n).map(text))),
            Arc::new(StringArray::from_iter((0..n).map(text))),
            Arc::new(StringArray::from_iter((0..n).map(|i| {
                (!i.is_multiple_of(13)).then(|| match i % 4 {
                    0 => tricky[i % tricky.len()].to_string(),
                    _ => sentence(i),
                })
            }))),
        ],
    )
    .unwrap()
}

/// `v2_text.bseg`: TEXT255 and TEXT32K blocks.
#[test]
fn v2_text_fixture_reads_back_exactly() {
    use Codec::{Text32k, Text255};
    let codecs = [Text255, Text32k, Text255];
    let merged = read_v2_fixture("v2_text.bseg", true, &text_batch(), &codecs, &codecs);
    assert_eq!(merged, text_batch());
}

#[test]
fn truncated_fixture_is_a_clear_error() {
    let bytes = std::fs::read(fixture_dir().join("v1_mixed.bseg")).unwrap();
    let cut = Bytes::from(bytes[..bytes.len() - 3].to_vec());
    let err = SegmentReader::open("tables/7/slice-2/abc.bseg", cut)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("segment tables/7/slice-2/abc.bseg:"),
        "{err}"
    );
}

/// `v1_deletes.bdel`: a deletion vector of a 70,000-row segment (rows in two blocks).
#[test]
fn deletion_vector_fixture_reads_back_exactly() {
    use basalt_storage::deletes::DeleteVector;
    let name = "v1_deletes.bdel";
    let deleted: Vec<u64> = (0..70_000).filter(|r| r % 7 == 0 || *r == 65_536).collect();
    let path = fixture_dir().join(name);
    if std::env::var_os("BASALT_WRITE_FIXTURES").is_some() && !path.exists() {
        let mut dv = DeleteVector::new(70_000);
        for r in &deleted {
            dv.insert(*r).unwrap();
        }
        std::fs::write(&path, dv.encode()).unwrap();
    }
    let bytes = std::fs::read(&path).expect("committed fixture");
    let dv = DeleteVector::decode(name, &bytes).unwrap();
    assert_eq!(
        (dv.segment_rows(), dv.deleted()),
        (70_000, deleted.len() as u64)
    );
    assert!((0..70_000).all(|r| dv.contains(r) == (r % 7 == 0 || r == 65_536)));
    let err = DeleteVector::decode(name, &bytes[..bytes.len() - 1])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("segment v1_deletes.bdel:"), "{err}");
}

/// `v2_strings.bseg`: string blocks under LZO (LZ4) and ZSTD, stored as lengths + bytes.
#[test]
fn v2_strings_fixture_reads_back_exactly() {
    let name = "v2_strings.bseg";
    let merged = read_v2_fixture(
        name,
        !fixture_dir().join(name).exists(),
        &text_batch(),
        &[Codec::Lz4, Codec::Zstd, Codec::Lz4],
        &[Codec::Lz4Strings, Codec::ZstdStrings, Codec::Lz4Strings],
    );
    assert_eq!(merged, text_batch());
}
