//! Encode and decode throughput of every segment codec on realistic columns: the first
//! 1,000,000 rows of TPC-H SF1 `lineitem` (one worker segment's worth, in dbgen order, so
//! `l_orderkey` is sorted), for seven columns of different shapes, each with every
//! encoding Redshift allows on its type. Encode is `write_segment` of a one-column batch;
//! decode is `SegmentReader::open` + `read_batches(None)` of that segment. Throughput is
//! quoted in MB/s (10^6 bytes) of Arrow data (values, offsets, validity). Before timing,
//! the encoded size of each column × codec is printed, with its ratio to RAW and the blocks
//! that fell back to LZ4 because the codec could not hold them.
//!
//! ```sh
//! cargo bench -p basalt-storage --bench codecs            # everything, a few minutes
//! cargo bench -p basalt-storage --bench codecs -- l_comment   # one column
//! ```

mod common;

use std::hint::black_box;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};
use basalt_storage::segment::{Codec, SegmentReader, write_segment};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

use common::{allowed_codecs, arrow_bytes, column_sizes, column_type, encoding_name};

/// The columns measured: a sorted key, small and wide decimals, a date, a one-character
/// flag, a short low-cardinality string and free text.
const COLUMNS: [&str; 7] = [
    "l_orderkey",
    "l_quantity",
    "l_extendedprice",
    "l_shipdate",
    "l_returnflag",
    "l_shipmode",
    "l_comment",
];

const ROWS: usize = 1_000_000;

fn one_column(batch: &RecordBatch, name: &str) -> RecordBatch {
    let schema = batch.schema();
    let (i, field) = schema.column_with_name(name).expect("lineitem column");
    let schema = Schema::new(vec![Field::clone(field)]);
    RecordBatch::try_new(schema.into(), vec![batch.column(i).clone()]).expect("one column")
}

/// Print the encoded size of each column × allowed codec once, before anything is timed.
fn print_sizes(columns: &[(&str, RecordBatch)]) {
    println!("\nEncoded size of {ROWS} lineitem rows per column and encoding");
    println!(
        "{:<16} {:<10} {:>12} {:>12} {:>9} {:>10}",
        "column", "encoding", "arrow bytes", "encoded", "/RAW", "fallbacks"
    );
    for (name, batch) in columns {
        let arrow = arrow_bytes(batch.column(0).as_ref());
        let mut raw = None;
        for codec in allowed_codecs(column_type(name)) {
            let seg = write_segment(batch, &[codec]).expect("write segment");
            let reader = SegmentReader::open("bench", seg).expect("open segment");
            let blocks = reader.footer().columns[0].blocks.len();
            let (bytes, fallbacks) = column_sizes(reader.footer(), &[codec])[0];
            let raw = *raw.get_or_insert(bytes);
            println!(
                "{:<16} {:<10} {:>12} {:>12} {:>9.3} {:>10}",
                name,
                encoding_name(codec),
                arrow,
                bytes,
                bytes as f64 / raw as f64,
                format!("{fallbacks}/{blocks}"),
            );
        }
    }
    println!();
}

fn codecs(c: &mut Criterion) {
    let lineitem = common::generate(Some(ROWS), |_| {});
    let columns: Vec<(&str, RecordBatch)> = COLUMNS
        .iter()
        .map(|&name| (name, one_column(&lineitem, name)))
        .collect();
    drop(lineitem);
    print_sizes(&columns);

    for (name, batch) in &columns {
        let mut group = c.benchmark_group(*name);
        // One iteration encodes or decodes a million rows (milliseconds to a few hundred
        // of them), so a few flat samples give stable means while keeping the whole run
        // (58 codec/column pairs, both directions) within minutes on two shared cores.
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .throughput(Throughput::BytesDecimal(arrow_bytes(
                batch.column(0).as_ref(),
            )));
        for codec in allowed_codecs(column_type(name)) {
            let label = encoding_name(codec);
            group.bench_function(format!("encode/{label}"), |b| {
                b.iter(|| write_segment(black_box(batch), &[codec]).expect("write segment"))
            });
            let segment = write_segment(batch, &[codec]).expect("write segment");
            group.bench_function(format!("decode/{label}"), |b| {
                b.iter(|| {
                    let reader =
                        SegmentReader::open("bench", black_box(segment.clone())).expect("open");
                    reader.read_batches(None).expect("read batches")
                })
            });
            check_round_trip(batch, &segment, codec);
        }
        group.finish();
    }
}

/// A codec that is fast because it is wrong would be no result: check each segment once.
fn check_round_trip(batch: &RecordBatch, segment: &bytes::Bytes, codec: Codec) {
    let reader = SegmentReader::open("bench", segment.clone()).expect("open");
    let batches = reader.read_batches(None).expect("read batches");
    let decoded = arrow::compute::concat_batches(&batch.schema(), &batches).expect("concat");
    assert!(
        decoded.column(0).as_ref() == batch.column(0).as_ref(),
        "{codec:?} does not round-trip"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = codecs
}
criterion_main!(benches);
