//! Every codec against every column type Basalt stores: random (seeded, so every run
//! checks the same cases) columns with NULLs, extremes, empty and multibyte strings, some
//! spanning two blocks, written with `write_segment` and read back with `SegmentReader`
//! must come back exactly. A codec that does not apply to a type must fall back to LZ4
//! without the caller noticing; one that does must actually be used where it pays.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, RecordBatch, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use basalt_storage::segment::{BLOCK_ROWS, Codec, SegmentReader, write_segment};

const CODECS: [Codec; 13] = [
    Codec::Raw,
    Codec::Lz4,
    Codec::Zstd,
    Codec::Az64,
    Codec::RunLength,
    Codec::ByteDict,
    Codec::Delta,
    Codec::Delta32k,
    Codec::Mostly8,
    Codec::Mostly16,
    Codec::Mostly32,
    Codec::Text255,
    Codec::Text32k,
];

/// The Arrow types of Basalt's SQL types (leader `SqlType::to_arrow`), plus a DECIMAL
/// too wide for the integer codecs.
fn types() -> Vec<DataType> {
    vec![
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Float32,
        DataType::Float64,
        DataType::Boolean,
        DataType::Utf8,
        DataType::Date32,
        DataType::Time64(TimeUnit::Microsecond),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        DataType::Decimal128(12, 2),
        DataType::Decimal128(38, 10),
    ]
}

/// SplitMix64: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i128, hi: i128) -> i128 {
        // Unsigned and wrapping: a DECIMAL(38)'s span does not fit an i128.
        let span = (hi as u128).wrapping_sub(lo as u128) + 1;
        let r = (u128::from(self.next()) << 64 | u128::from(self.next())) % span;
        lo.wrapping_add(r as i128)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// What a column's values look like.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Anywhere in the type's range.
    Random,
    /// A few hundred distinct small values.
    Small,
    /// Ascending by small steps with an occasional big jump (sort keys, ids, times).
    Sorted,
    /// One value.
    Constant,
    /// The type's minimum and maximum, 0 and ±1, mixed with small values.
    Extremes,
}

const SHAPES: [Shape; 5] = [
    Shape::Random,
    Shape::Small,
    Shape::Sorted,
    Shape::Constant,
    Shape::Extremes,
];

/// `n` integer lanes in `lo..=hi` of the given shape.
fn ints(rng: &mut Rng, shape: Shape, n: usize, lo: i128, hi: i128) -> Vec<i128> {
    let constant = rng.range(lo, hi);
    let mut cur = rng.range(lo.max(-1_000_000), hi.min(1_000_000));
    (0..n)
        .map(|_| match shape {
            Shape::Random => rng.range(lo, hi),
            Shape::Small => rng.range(lo.max(-300), hi.min(300)),
            Shape::Sorted => {
                cur += if rng.chance(0.02) {
                    rng.range(0, 1 << 40)
                } else {
                    rng.range(0, 200)
                };
                cur.clamp(lo, hi)
            }
            Shape::Constant => constant,
            Shape::Extremes => match rng.below(8) {
                0 => lo,
                1 => hi,
                2 => 0,
                3 => 1.clamp(lo, hi),
                4 => (-1).clamp(lo, hi),
                _ => rng.range(lo.max(-100), hi.min(100)),
            },
        })
        .collect()
}

const WORDS: [&str; 14] = [
    "the", "quick", "brown", "fox", "", "naïve", "café", "東京", "😀", "a", "jumps", "over",
    "lazy", "dog",
];

fn text(rng: &mut Rng, shape: Shape, n: usize) -> Vec<String> {
    let sentence = |rng: &mut Rng| -> String {
        let words = rng.below(8) as usize;
        (0..words)
            .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(if rng.chance(0.1) { "  " } else { " " })
    };
    let constant = sentence(rng);
    (0..n)
        .map(|i| match shape {
            Shape::Random => (0..rng.below(12))
                .map(|_| {
                    let c = rng.range(0x20, 0x2fff) as u32;
                    char::from_u32(c).unwrap_or('?')
                })
                .collect(),
            Shape::Small => sentence(rng),
            Shape::Sorted => format!("lot {} #{}", i / 500, i % 7),
            Shape::Constant => constant.clone(),
            Shape::Extremes => match rng.below(6) {
                0 => String::new(),
                1 => " ".repeat(rng.below(4) as usize),
                2 => format!(" {} ", sentence(rng)),
                3 => "東京😀 ".repeat(rng.below(40) as usize),
                _ => sentence(rng),
            },
        })
        .collect()
}

/// A column of `data_type` with `n` rows; each row is NULL with probability `nulls`.
fn column(rng: &mut Rng, data_type: &DataType, shape: Shape, n: usize, nulls: f64) -> ArrayRef {
    let valid: Vec<bool> = (0..n).map(|_| !rng.chance(nulls)).collect();
    let opt = |v: Vec<i128>| -> Vec<Option<i128>> {
        v.into_iter()
            .zip(&valid)
            .map(|(v, ok)| ok.then_some(v))
            .collect()
    };
    macro_rules! int_column {
        ($array:ty, $t:ty) => {{
            let v = opt(ints(rng, shape, n, <$t>::MIN.into(), <$t>::MAX.into()));
            Arc::new(<$array>::from_iter(
                v.into_iter().map(|x| x.map(|x| x as $t)),
            ))
        }};
    }
    match data_type {
        DataType::Int16 => int_column!(Int16Array, i16),
        DataType::Int32 => int_column!(Int32Array, i32),
        DataType::Int64 => int_column!(Int64Array, i64),
        DataType::Date32 => int_column!(Date32Array, i32),
        DataType::Time64(_) => {
            let v = opt(ints(rng, shape, n, 0, 86_400_000_000 - 1));
            Arc::new(Time64MicrosecondArray::from_iter(
                v.into_iter().map(|x| x.map(|x| x as i64)),
            ))
        }
        DataType::Timestamp(_, tz) => {
            let v = opt(ints(rng, shape, n, i64::MIN.into(), i64::MAX.into()));
            let a =
                TimestampMicrosecondArray::from_iter(v.into_iter().map(|x| x.map(|x| x as i64)));
            Arc::new(match tz {
                Some(tz) => a.with_timezone(tz.clone()),
                None => a,
            })
        }
        DataType::Decimal128(p, s) => {
            let max = 10i128.pow(u32::from(*p)) - 1;
            let v = opt(ints(rng, shape, n, -max, max));
            Arc::new(
                Decimal128Array::from_iter(v)
                    .with_precision_and_scale(*p, *s)
                    .unwrap(),
            )
        }
        DataType::Float32 | DataType::Float64 => {
            let special = [
                f64::NAN,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::MIN,
                f64::MAX,
                f64::MIN_POSITIVE,
            ];
            let v: Vec<Option<f64>> = opt(ints(rng, shape, n, -1 << 60, 1 << 60))
                .into_iter()
                .map(|x| {
                    x.map(|x| match shape {
                        Shape::Extremes if rng.chance(0.5) => {
                            special[rng.below(special.len() as u64) as usize]
                        }
                        Shape::Random => x as f64 / 7.0,
                        _ => x as f64,
                    })
                })
                .collect();
            if data_type == &DataType::Float32 {
                Arc::new(Float32Array::from_iter(
                    v.into_iter().map(|x| x.map(|x| x as f32)),
                ))
            } else {
                Arc::new(Float64Array::from_iter(v))
            }
        }
        DataType::Boolean => {
            let constant = rng.chance(0.5);
            Arc::new(BooleanArray::from_iter(valid.iter().map(|ok| {
                ok.then(|| match shape {
                    Shape::Constant => constant,
                    _ => rng.chance(0.5),
                })
            })))
        }
        DataType::Utf8 => {
            let v = text(rng, shape, n);
            Arc::new(StringArray::from_iter(
                v.iter().zip(&valid).map(|(s, ok)| ok.then_some(s.as_str())),
            ))
        }
        other => panic!("no generator for {other}"),
    }
}

fn batch(rng: &mut Rng, types: &[DataType], shape: Shape, n: usize, nulls: f64) -> RecordBatch {
    let fields: Vec<Field> = types
        .iter()
        .enumerate()
        .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
        .collect();
    let columns = types
        .iter()
        .map(|t| column(rng, t, shape, n, nulls))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[test]
fn every_codec_round_trips_every_type() {
    let mut rng = Rng(0x00ba_5a17);
    // (shape, rows, NULL probability, types): every type in small cases; two cases
    // across blocks, on a few types each to keep the test to a few seconds, with the
    // codecs before DELTA left to `segment`'s own multi-block test.
    let all = types();
    let mut cases: Vec<(Shape, usize, f64, Vec<DataType>)> =
        vec![(Shape::Random, 0, 0.0, all.clone())];
    for shape in SHAPES {
        for nulls in [0.0, 0.15, 1.0] {
            cases.push((shape, 1 + rng.below(1500) as usize, nulls, all.clone()));
        }
        cases.push((shape, 1, 0.0, all.clone()));
    }
    let tz = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    cases.push((
        Shape::Sorted,
        BLOCK_ROWS + 4_464,
        0.05,
        vec![DataType::Int64, DataType::Utf8],
    ));
    cases.push((
        Shape::Extremes,
        BLOCK_ROWS + 1,
        0.3,
        vec![DataType::Int32, tz, DataType::Decimal128(12, 2)],
    ));

    // The (codec, column type) pairs for which the codec kept at least one block.
    let mut kept: Vec<(Codec, DataType)> = vec![];
    for (shape, rows, nulls, types) in cases {
        let input = batch(&mut rng, &types, shape, rows, nulls);
        let codecs = if rows > BLOCK_ROWS {
            &CODECS[6..]
        } else {
            &CODECS[..]
        };
        for &codec in codecs {
            let what = format!("{codec:?} on {shape:?}, {rows} rows, NULL p={nulls}");
            let codecs = vec![codec; input.num_columns()];
            let bytes = write_segment(&input, &codecs).unwrap_or_else(|e| panic!("{what}: {e}"));
            let reader = SegmentReader::open("prop.bseg", bytes).unwrap();
            let batches = reader.read_batches(None).unwrap();
            let output = arrow::compute::concat_batches(&input.schema(), &batches).unwrap();
            for (c, field) in input.schema().fields().iter().enumerate() {
                assert_eq!(
                    output.column(c),
                    input.column(c),
                    "{what}: column {}",
                    field.data_type()
                );
                // Strings under LZ4 or ZSTD (requested or as a fallback) use the string
                // layouts of those compressors.
                let is_string = field.data_type() == &DataType::Utf8;
                let fell_back = match (codec, is_string) {
                    (Codec::Zstd, true) => Codec::ZstdStrings,
                    (Codec::Raw | Codec::Zstd, false) => codec,
                    (Codec::Raw, true) => Codec::Raw,
                    (_, true) => Codec::Lz4Strings,
                    (_, false) => Codec::Lz4,
                };
                for block in &reader.footer().columns[c].blocks {
                    assert!(
                        (block.codec == codec
                            && !(is_string && matches!(codec, Codec::Lz4 | Codec::Zstd)))
                            || block.codec == fell_back,
                        "{what}: {} stored as {:?}",
                        field.data_type(),
                        block.codec
                    );
                    let pair = (codec, field.data_type().clone());
                    if block.codec == codec && !kept.contains(&pair) {
                        kept.push(pair);
                    }
                }
            }
            assert_eq!(output.num_rows(), rows, "{what}");
        }
    }

    // The typed codecs hold the types they are for on data that suits them, and never
    // hold a type they are not for.
    let integer_like = [
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Decimal128(12, 2),
    ];
    for codec in [
        Codec::Delta,
        Codec::Mostly8,
        Codec::Mostly16,
        Codec::Mostly32,
        Codec::Az64,
    ] {
        for t in &integer_like {
            // 4-byte slots are never smaller than a SMALLINT.
            if codec == Codec::Mostly32 && t == &DataType::Int16 {
                continue;
            }
            assert!(
                kept.contains(&(codec, t.clone())),
                "{codec:?} never held a {t} block"
            );
        }
    }
    for t in &integer_like[1..] {
        assert!(kept.contains(&(Codec::Delta32k, t.clone())), "{t}");
    }
    for codec in [Codec::Text255, Codec::Text32k] {
        assert!(kept.contains(&(codec, DataType::Utf8)), "{codec:?}");
    }
    for (codec, t) in kept {
        let ok = match codec {
            Codec::Delta | Codec::Delta32k | Codec::Mostly8 | Codec::Mostly16 | Codec::Mostly32 => {
                !matches!(
                    t,
                    DataType::Utf8 | DataType::Boolean | DataType::Float32 | DataType::Float64
                )
            }
            Codec::Text255 | Codec::Text32k => t == DataType::Utf8,
            _ => true,
        };
        assert!(ok, "{codec:?} held a {t} block");
    }
}

/// Encoded sizes of one block against LZ4 on the inputs each new codec is meant for
/// (run with `--nocapture` to see the table); the new codecs must beat LZ4 there.
#[test]
fn new_codecs_beat_lz4_on_their_own_data() {
    let n = BLOCK_ROWS as i64;
    let mut rng = Rng(7);
    let sorted_ids: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..n).map(|i| 1_000_000 + 3 * i + (i * 7919) % 3),
    ));
    let small_ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..n).map(|_| rng.range(-100, 100) as i64),
    ));
    let mostly_small: ArrayRef = Arc::new(Int32Array::from_iter_values((0..n).map(|_| {
        if rng.chance(0.02) {
            rng.range(0, 1 << 30) as i32
        } else {
            rng.range(0, 30_000) as i32
        }
    })));
    let english: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|_| {
        const VOCAB: [&str; 24] = [
            "the",
            "order",
            "was",
            "shipped",
            "to",
            "customer",
            "on",
            "time",
            "late",
            "and",
            "returned",
            "by",
            "mail",
            "courier",
            "damaged",
            "box",
            "north",
            "south",
            "warehouse",
            "refund",
            "issued",
            "pending",
            "review",
            "of",
        ];
        (0..4 + rng.below(8))
            .map(|_| VOCAB[rng.below(VOCAB.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    })));
    let inputs: [(&str, ArrayRef, &[Codec]); 4] = [
        (
            "sorted BIGINT ids",
            sorted_ids,
            &[Codec::Az64, Codec::Delta, Codec::Delta32k, Codec::Mostly32],
        ),
        (
            "BIGINT in -100..=100",
            small_ints,
            &[Codec::Az64, Codec::Mostly8, Codec::Mostly16, Codec::Delta],
        ),
        (
            "INTEGER, 2% above 30,000",
            mostly_small,
            &[Codec::Az64, Codec::Mostly16, Codec::Delta32k],
        ),
        (
            "English text, 4-11 words",
            english,
            &[Codec::ByteDict, Codec::Text255, Codec::Text32k],
        ),
    ];
    let size = |a: &ArrayRef, codec: Codec| -> (usize, Codec) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "v",
            a.data_type().clone(),
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![a.clone()]).unwrap();
        let bytes = write_segment(&batch, &[codec]).unwrap();
        let reader = SegmentReader::open("size.bseg", bytes).unwrap();
        let block = &reader.footer().columns[0].blocks[0];
        (block.len as usize, block.codec)
    };
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "input (65,536 rows)", "codec", "bytes", "vs LZ4"
    );
    for (name, array, codecs) in inputs {
        let (lz4, _) = size(&array, Codec::Lz4);
        println!("{name:<28} {:>10} {lz4:>10} {:>9.0}%", "Lz4", 100.0);
        for &codec in codecs {
            let (bytes, stored) = size(&array, codec);
            let label = if stored == codec {
                format!("{codec:?}")
            } else {
                format!("{codec:?}→{stored:?}")
            };
            println!(
                "{:<28} {label:>10} {bytes:>10} {:>9.0}%",
                "",
                100.0 * bytes as f64 / lz4 as f64
            );
            if !matches!(codec, Codec::Az64 | Codec::ByteDict) {
                assert_eq!(stored, codec, "{name}: {codec:?} fell back");
                assert!(bytes < lz4, "{name}: {codec:?} {bytes} vs LZ4 {lz4}");
            }
        }
    }
}
