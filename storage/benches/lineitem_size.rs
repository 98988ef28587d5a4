//! On-disk size of TPC-H SF1 `lineitem` (6,001,215 rows, all 16 columns) as pipe-delimited
//! text, as Parquet and as Basalt segments. It generates the table with `tpchgen` and
//! writes, under `$BASALT_BENCH_DIR` (default `/tmp/basalt-bench`):
//!
//! - `lineitem.tbl`: dbgen's `.tbl` text (`|`-separated, one trailing `|`), the CSV a
//!   warehouse loads; `bench/storage_size.py` loads this same file into DuckDB;
//! - `lineitem.parquet` and `lineitem-sorted.parquet`: Parquet from the `parquet` crate,
//!   ZSTD level 3 (what Basalt's ZSTD blocks use), default row groups, in dbgen order and
//!   sorted like the Basalt segments;
//! - `basalt-auto/`: Basalt segments as a worker writes them for a table with
//!   `SORTKEY (l_shipdate)` and ENCODE AUTO: rows sorted by `l_shipdate` (stable, so ties
//!   keep dbgen order), cut into 1,000,000-row segments, each column with the encoding
//!   ENCODE AUTO gives it (the sort key RAW, integers/decimals/dates AZ64, strings LZO);
//! - `basalt-best/`: the same rows with, per column, the allowed encoding that is smallest
//!   on a sample of 16 blocks
//!   (1,048,576 rows) spread over the whole table.
//!
//! Every Basalt segment is read back and compared with the rows it was written from, and
//! a checksum of the whole table (row count, sums of `l_quantity` and `l_extendedprice`,
//! distinct `l_shipmode` values, bytes of `l_comment`) must match the generated table. It
//! prints per-column and total sizes with ratios, and a JSON summary to
//! `$BASALT_BENCH_DIR/lineitem_size.json` for `bench/storage_size.py`, which adds DuckDB.
//!
//! ```sh
//! cargo bench -p basalt-storage --bench lineitem_size
//! ```

mod common;

use std::collections::HashSet;
use std::error::Error;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{Date32Type, Decimal128Type, Field, Schema};
use basalt_storage::segment::{BLOCK_ROWS, Codec, SegmentReader, write_segment};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use common::{LINEITEM, SEGMENT_ROWS, allowed_codecs, auto_codec, column_sizes, encoding_name, mb};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The sort key of the Basalt table: lineitem's date column that queries filter on most
/// (TPC-H Q1, Q3, Q6, Q7, Q14, Q15, Q20 restrict `l_shipdate`).
const SORT_KEY: &str = "l_shipdate";

/// Blocks of 65,536 rows in the sample the best encoding of each column is chosen on
/// (1,048,576 rows, about one segment).
const SAMPLE_BLOCKS: usize = 16;
const SAMPLE_ROWS: usize = SAMPLE_BLOCKS * BLOCK_ROWS;

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::var("BASALT_BENCH_DIR").unwrap_or_else(|_| "/tmp/basalt-bench".into()),
    );
    fs::create_dir_all(&dir)?;

    // (a) Generate the table and its .tbl text in one pass.
    let t = Instant::now();
    let tbl_path = dir.join("lineitem.tbl");
    let mut tbl = BufWriter::with_capacity(1 << 20, File::create(&tbl_path)?);
    let mut tbl_error = None;
    let table = common::generate(None, |row| {
        // LineItem's Display is dbgen's line, trailing `|` included.
        if tbl_error.is_none()
            && let Err(e) = writeln!(tbl, "{row}")
        {
            tbl_error = Some(e);
        }
    });
    if let Some(e) = tbl_error {
        return Err(e.into());
    }
    tbl.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let csv_bytes = fs::metadata(&tbl_path)?.len();
    let rows = table.num_rows();
    let source = Checksum::of(&table);
    println!(
        "generated {rows} rows and {} in {:.1}s",
        tbl_path.display(),
        t.elapsed().as_secs_f64()
    );

    let sorted = sort_by(&table, SORT_KEY)?;

    // (b) Parquet, in dbgen order and in the Basalt segments' order.
    let parquet = write_parquet(&table, &dir.join("lineitem.parquet"))?;
    drop(table);
    let parquet_sorted = write_parquet(&sorted, &dir.join("lineitem-sorted.parquet"))?;

    // (c) ENCODE AUTO.
    let auto_codecs: Vec<Codec> = LINEITEM
        .iter()
        .map(|(name, ty)| auto_codec(*ty, *name == SORT_KEY))
        .collect();
    let auto = write_segments(&sorted, &auto_codecs, &dir.join("basalt-auto"))?;
    verify(&auto, &sorted, &source)?;

    // (d) The smallest allowed encoding per column, chosen on a sample.
    let t = Instant::now();
    let choices = choose_best(&sorted)?;
    println!(
        "chose the best encodings on a {SAMPLE_ROWS}-row sample in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let best_codecs: Vec<Codec> = choices.iter().map(|c| c[0].0).collect();
    let best = write_segments(&sorted, &best_codecs, &dir.join("basalt-best"))?;
    verify(&best, &sorted, &source)?;

    print_columns(
        &sorted,
        &parquet_sorted,
        (&auto_codecs, &auto),
        (&best_codecs, &best),
    );
    print_choices(&choices);
    print_totals(csv_bytes, &parquet, &parquet_sorted, &auto, &best);
    write_summary(
        &dir.join("lineitem_size.json"),
        rows,
        csv_bytes,
        &parquet,
        &parquet_sorted,
        &auto,
        &best,
        &best_codecs,
    )?;
    Ok(())
}

/// The rows of `batch` ordered by `column` (a DATE), stably: ties keep their order, as the
/// rows of one load do when a worker sorts them by the sort key.
fn sort_by(batch: &RecordBatch, column: &str) -> Result<RecordBatch> {
    let key = batch
        .column_by_name(column)
        .ok_or("no sort key column")?
        .as_primitive::<Date32Type>();
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|&i| key.value(i as usize));
    Ok(take_record_batch(batch, &UInt32Array::from(order))?)
}

/// A file (or set of files) written, with the bytes each column takes in it.
struct Written {
    files: Vec<PathBuf>,
    file_bytes: u64,
    column_bytes: Vec<u64>,
    /// Blocks per column that fell back to LZ4 from the encoding asked for.
    fallbacks: Vec<usize>,
    blocks: usize,
    seconds: f64,
}

fn write_parquet(batch: &RecordBatch, path: &Path) -> Result<Written> {
    let t = Instant::now();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut writer = ArrowWriter::try_new(File::create(path)?, batch.schema(), Some(props))?;
    writer.write(batch)?;
    let meta = writer.close()?;
    let mut column_bytes = vec![0u64; batch.num_columns()];
    for rg in meta.row_groups() {
        for (j, total) in column_bytes.iter_mut().enumerate() {
            *total += rg.column(j).compressed_size() as u64;
        }
    }
    Ok(Written {
        files: vec![path.to_path_buf()],
        file_bytes: fs::metadata(path)?.len(),
        column_bytes,
        fallbacks: vec![0; batch.num_columns()],
        blocks: meta.row_groups().len(),
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Cut `sorted` into segments of at most 1,000,000 rows, as a worker does, and write each
/// with `codecs` into `dir` (emptied first).
fn write_segments(sorted: &RecordBatch, codecs: &[Codec], dir: &Path) -> Result<Written> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let t = Instant::now();
    let mut out = Written {
        files: vec![],
        file_bytes: 0,
        column_bytes: vec![0; codecs.len()],
        fallbacks: vec![0; codecs.len()],
        blocks: 0,
        seconds: 0.0,
    };
    for (n, start) in (0..sorted.num_rows()).step_by(SEGMENT_ROWS).enumerate() {
        let len = SEGMENT_ROWS.min(sorted.num_rows() - start);
        let segment = write_segment(&sorted.slice(start, len), codecs)?;
        let path = dir.join(format!("segment-{n:03}.bseg"));
        fs::write(&path, &segment)?;
        let reader = SegmentReader::open(path.display().to_string(), segment)?;
        out.blocks += reader.block_count();
        for (j, (bytes, fallbacks)) in column_sizes(reader.footer(), codecs)
            .into_iter()
            .enumerate()
        {
            out.column_bytes[j] += bytes;
            out.fallbacks[j] += fallbacks;
        }
        out.file_bytes += fs::metadata(&path)?.len();
        out.files.push(path);
    }
    out.seconds = t.elapsed().as_secs_f64();
    Ok(out)
}

/// What must survive a round trip through the segments, computed without them.
#[derive(Debug, Default, PartialEq)]
struct Checksum {
    rows: usize,
    sum_quantity: i128,
    sum_extendedprice: i128,
    shipmodes: usize,
    comment_bytes: usize,
}

impl Checksum {
    fn of(batch: &RecordBatch) -> Self {
        let mut c = Checksum::default();
        let mut modes = HashSet::new();
        c.add(batch, &mut modes);
        c.shipmodes = modes.len();
        c
    }

    fn add(&mut self, batch: &RecordBatch, modes: &mut HashSet<String>) {
        let decimal = |name| {
            batch
                .column_by_name(name)
                .expect("lineitem column")
                .as_primitive::<Decimal128Type>()
                .iter()
                .map(|v| v.unwrap_or(0))
                .sum::<i128>()
        };
        self.rows += batch.num_rows();
        self.sum_quantity += decimal("l_quantity");
        self.sum_extendedprice += decimal("l_extendedprice");
        let shipmode = batch
            .column_by_name("l_shipmode")
            .expect("lineitem column")
            .as_string::<i32>();
        modes.extend(shipmode.iter().flatten().map(str::to_owned));
        let comment = batch
            .column_by_name("l_comment")
            .expect("lineitem column")
            .as_string::<i32>();
        self.comment_bytes += comment.value_data().len();
    }
}

/// Read every segment back from disk: each must decode to exactly the rows it was written
/// from, and together to the checksum of the generated table.
fn verify(written: &Written, sorted: &RecordBatch, source: &Checksum) -> Result<()> {
    let mut sum = Checksum::default();
    let mut modes = HashSet::new();
    let mut start = 0;
    for path in &written.files {
        let bytes = Bytes::from(fs::read(path)?);
        let reader = SegmentReader::open(path.display().to_string(), bytes)?;
        let batches = reader.read_batches(None)?;
        let decoded = concat_batches(&reader.schema(), &batches)?;
        let rows = reader.row_count() as usize;
        if decoded.num_rows() != rows {
            return Err(format!(
                "{}: {} rows decoded, footer says {rows}",
                path.display(),
                decoded.num_rows()
            )
            .into());
        }
        let expected = sorted.slice(start, rows);
        for (j, field) in expected.schema().fields().iter().enumerate() {
            if decoded.column(j).as_ref() != expected.column(j).as_ref() {
                return Err(format!("{}: column {} differs", path.display(), field.name()).into());
            }
        }
        sum.add(&decoded, &mut modes);
        start += rows;
    }
    sum.shipmodes = modes.len();
    if &sum != source {
        return Err(format!("checksum mismatch: segments {sum:?}, generated {source:?}").into());
    }
    println!(
        "verified {} segments: {} rows, sum(l_quantity) {}, sum(l_extendedprice) {}, \
         {} distinct l_shipmode, {} l_comment bytes",
        written.files.len(),
        sum.rows,
        decimal_string(sum.sum_quantity),
        decimal_string(sum.sum_extendedprice),
        sum.shipmodes,
        sum.comment_bytes
    );
    Ok(())
}

fn decimal_string(unscaled: i128) -> String {
    format!("{}.{:02}", unscaled / 100, unscaled % 100)
}

/// For each column, every allowed encoding with its encoded bytes on the sample, smallest
/// first (ties keep the order of `allowed_codecs`).
///
/// The sample is 16 blocks spread evenly over the whole sorted table rather than its first
/// million rows:
/// sorted by ship date, the first million rows are the oldest orders only, where
/// `l_linestatus` is always 'F' and `l_returnflag` never 'N', which would favour encodings
/// that do worse on the rest.
fn choose_best(sorted: &RecordBatch) -> Result<Vec<Vec<(Codec, u64)>>> {
    let n = sorted.num_rows();
    let slices: Vec<RecordBatch> = (0..SAMPLE_BLOCKS)
        .map(|i| {
            let start = (n - BLOCK_ROWS) * i / (SAMPLE_BLOCKS - 1);
            sorted.slice(start, BLOCK_ROWS)
        })
        .collect();
    let sample = concat_batches(&sorted.schema(), &slices)?;
    let mut out = vec![];
    for (j, (_, ty)) in LINEITEM.iter().enumerate() {
        let field = Field::clone(sample.schema().field(j));
        let one = RecordBatch::try_new(
            Schema::new(vec![field]).into(),
            vec![sample.column(j).clone()],
        )?;
        let mut sizes = vec![];
        for codec in allowed_codecs(*ty) {
            let segment = write_segment(&one, &[codec])?;
            let reader = SegmentReader::open("sample", segment)?;
            sizes.push((codec, column_sizes(reader.footer(), &[codec])[0].0));
        }
        sizes.sort_by_key(|&(_, bytes)| bytes);
        out.push(sizes);
    }
    Ok(out)
}

fn print_columns(
    sorted: &RecordBatch,
    parquet: &Written,
    (auto_codecs, auto): (&[Codec], &Written),
    (best_codecs, best): (&[Codec], &Written),
) {
    println!("\nlineitem SF1 per column, MB (10^6 bytes); rows sorted by {SORT_KEY}");
    println!(
        "{:<16} {:<14} {:>9} {:>9}   {:<10} {:>9} {:>5}   {:<10} {:>9} {:>5}",
        "column", "type", "arrow", "parquet", "AUTO", "MB", "fb", "best", "MB", "fb"
    );
    for (j, (name, ty)) in LINEITEM.iter().enumerate() {
        println!(
            "{:<16} {:<14} {:>9.2} {:>9.2}   {:<10} {:>9.2} {:>5}   {:<10} {:>9.2} {:>5}",
            name,
            ty.sql(),
            mb(common::arrow_bytes(sorted.column(j).as_ref())),
            mb(parquet.column_bytes[j]),
            encoding_name(auto_codecs[j]),
            mb(auto.column_bytes[j]),
            auto.fallbacks[j],
            encoding_name(best_codecs[j]),
            mb(best.column_bytes[j]),
            best.fallbacks[j],
        );
    }
    println!(
        "(parquet: ZSTD level 3, same row order; fb: blocks of {} that fell back to LZO)",
        auto.blocks
    );
}

fn print_choices(choices: &[Vec<(Codec, u64)>]) {
    println!("\nencodings tried on the {SAMPLE_ROWS}-row sample, smallest first (MB)");
    for ((name, _), sizes) in LINEITEM.iter().zip(choices) {
        let list: Vec<String> = sizes
            .iter()
            .map(|&(c, b)| format!("{} {:.3}", encoding_name(c), mb(b)))
            .collect();
        println!("{name:<16} {}", list.join(", "));
    }
}

fn print_totals(
    csv: u64,
    parquet: &Written,
    parquet_sorted: &Written,
    auto: &Written,
    best: &Written,
) {
    println!("\nlineitem SF1 on disk");
    println!(
        "{:<44} {:>10} {:>8} {:>9}",
        "format", "MB", "CSV/x", "write s"
    );
    let row = |name: &str, bytes: u64, secs: Option<f64>| {
        println!(
            "{:<44} {:>10.1} {:>8.2} {:>9}",
            name,
            mb(bytes),
            csv as f64 / bytes as f64,
            secs.map_or(String::new(), |s| format!("{s:.1}"))
        );
    };
    row("CSV (dbgen .tbl)", csv, None);
    row(
        "Parquet ZSTD(3), dbgen order",
        parquet.file_bytes,
        Some(parquet.seconds),
    );
    row(
        &format!("Parquet ZSTD(3), sorted by {SORT_KEY}"),
        parquet_sorted.file_bytes,
        Some(parquet_sorted.seconds),
    );
    row(
        &format!("Basalt ENCODE AUTO, {} segments", auto.files.len()),
        auto.file_bytes,
        Some(auto.seconds),
    );
    row(
        &format!("Basalt best per column, {} segments", best.files.len()),
        best.file_bytes,
        Some(best.seconds),
    );
    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    println!("\nratios");
    println!(
        "CSV / Basalt AUTO                    {:.2}",
        ratio(csv, auto.file_bytes)
    );
    println!(
        "CSV / Basalt best                    {:.2}",
        ratio(csv, best.file_bytes)
    );
    println!(
        "Parquet (sorted) / Basalt AUTO       {:.2}",
        ratio(parquet_sorted.file_bytes, auto.file_bytes)
    );
    println!(
        "Parquet (sorted) / Basalt best       {:.2}",
        ratio(parquet_sorted.file_bytes, best.file_bytes)
    );
    println!(
        "Parquet (dbgen order) / Basalt AUTO  {:.2}",
        ratio(parquet.file_bytes, auto.file_bytes)
    );
    println!(
        "Parquet (dbgen order) / Basalt best  {:.2}",
        ratio(parquet.file_bytes, best.file_bytes)
    );
    println!("(DuckDB / Basalt: run bench/storage_size.py)");
}

#[allow(clippy::too_many_arguments)]
fn write_summary(
    path: &Path,
    rows: usize,
    csv: u64,
    parquet: &Written,
    parquet_sorted: &Written,
    auto: &Written,
    best: &Written,
    best_codecs: &[Codec],
) -> Result<()> {
    let encodings: Vec<String> = LINEITEM
        .iter()
        .zip(best_codecs)
        .map(|((name, _), &c)| format!("\"{name}\": \"{}\"", encoding_name(c)))
        .collect();
    let json = format!(
        "{{\"rows\": {rows}, \"sort_key\": \"{SORT_KEY}\", \"csv_bytes\": {csv}, \
         \"parquet_zstd_bytes\": {}, \"parquet_zstd_sorted_bytes\": {}, \
         \"basalt_auto_bytes\": {}, \"basalt_best_bytes\": {}, \
         \"basalt_segments\": {}, \"best_encodings\": {{{}}}}}\n",
        parquet.file_bytes,
        parquet_sorted.file_bytes,
        auto.file_bytes,
        best.file_bytes,
        auto.files.len(),
        encodings.join(", ")
    );
    fs::write(path, json)?;
    println!("\nsummary written to {}", path.display());
    Ok(())
}
