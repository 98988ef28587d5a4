//! UNLOAD's file writer: turns a stream of query results into Redshift's output files —
//! delimited text, CSV or Parquet, optionally compressed, cut at MAXFILESIZE, in
//! Hive-style `col=value/` folders for PARTITION BY — and writes them through
//! [`crate::objects`] (local paths, `file://`, `s3://`). Workers run it over their
//! slices' fragments (`DoAction(unload)`, one call per slice, in parallel); the leader
//! runs it over plans it finishes itself (joins, final aggregates, ORDER BY, PARALLEL
//! OFF). Both name files as Redshift does:
//!
//! - per slice (PARALLEL ON): `<prefix><slice:04>_part_<nn:02>`, e.g. `venue_0001_part_00`;
//! - one ordered stream (PARALLEL OFF): `<prefix>000`, `<prefix>001`, …
//!
//! then `.parquet` for Parquet, or `.gz`/`.bz2`/`.zst` for compressed text, unless
//! EXTENSION names the whole suffix (as in Redshift, `EXTENSION 'csv.gz'` for a gzipped CSV).
//!
//! Text values are PostgreSQL's text form of each cell ([`crate::pgvalue`]), exactly what a
//! client reading the query in text format gets.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::{Bytes, BytesMut};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression as ParquetCompression;
use parquet::file::properties::WriterProperties;
use pgwire::api::Type;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};
use crate::load::Compression;
use crate::objects::{self, ObjectAccess, ObjectWriter};
use crate::pgvalue::{pg_type_of, write_text};
use crate::protocol::FragmentTicket;
use crate::recent::now_us;

/// Redshift's largest MAXFILESIZE (and its default): 6.2 GB.
pub const MAX_FILE_SIZE: u64 = 6_200 << 20;
/// Redshift's smallest MAXFILESIZE: 5 MB.
pub const MIN_FILE_SIZE: u64 = 5 << 20;
/// Parquet row groups: ROWGROUPSIZE's default and range (32–128 MB).
pub const DEFAULT_ROW_GROUP_SIZE: u64 = 32 << 20;

/// Output gathered before it is handed to the object writer.
const FLUSH_BYTES: usize = 1 << 20;
/// Rows given to the Parquet writer at a time (how finely MAXFILESIZE cuts Parquet files).
const PARQUET_CHUNK_ROWS: usize = 4096;
/// The folder name of a NULL partition value (Hive's).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnloadFormat {
    /// Delimited text (Redshift's default, `|`-delimited).
    Text,
    Csv,
    Parquet,
}

impl UnloadFormat {
    /// The name `stl_unload_log.file_format` shows.
    pub fn name(&self) -> &'static str {
        match self {
            UnloadFormat::Text => "Text",
            UnloadFormat::Csv => "CSV",
            UnloadFormat::Parquet => "Parquet",
        }
    }
}

/// What to write and where: an UNLOAD's options, settled by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnloadSpec {
    /// The TO path: a key prefix that every file name starts with.
    pub prefix: String,
    pub access: ObjectAccess,
    pub format: UnloadFormat,
    pub delimiter: u8,
    /// ADDQUOTES: every text field in `"`.
    pub add_quotes: bool,
    /// ESCAPE: `\` before LF, CR, the delimiter, `\` (and `"` with ADDQUOTES).
    pub escape: bool,
    /// What a NULL is written as (text and CSV).
    pub null_as: String,
    /// HEADER: a line of column names at the top of every text or CSV file.
    pub header: bool,
    pub compression: Compression,
    /// MAXFILESIZE in bytes: a file is cut before it would grow past this.
    pub max_file_size: u64,
    /// ROWGROUPSIZE in bytes (Parquet).
    pub row_group_size: u64,
    /// EXTENSION: the whole file name suffix (without the leading dot).
    pub extension: Option<String>,
    /// The query's column names, one per column of the stream.
    pub columns: Vec<String>,
    /// PARTITION BY: indices into `columns`.
    pub partition_by: Vec<usize>,
    /// PARTITION BY … INCLUDE: keep the partition columns in the files too.
    pub include_partition_columns: bool,
}

impl UnloadSpec {
    /// What every file name ends with.
    pub fn suffix(&self) -> String {
        if let Some(ext) = &self.extension {
            return format!(".{}", ext.trim_start_matches('.'));
        }
        match (self.format, self.compression) {
            (UnloadFormat::Parquet, _) => ".parquet",
            (_, Compression::Gzip) => ".gz",
            (_, Compression::Bzip2) => ".bz2",
            (_, Compression::Zstd) => ".zst",
            (_, Compression::None) => "",
        }
        .to_string()
    }

    /// The name of file `part` in `folder` (`""` or `col=value/…/`).
    pub fn file_url(&self, folder: &str, naming: FileNaming, part: u32) -> String {
        let base = match naming {
            FileNaming::Slice(slice) => format!("{slice:04}_part_{part:02}"),
            FileNaming::Serial => format!("{part:03}"),
        };
        format!("{}{folder}{base}{}", self.prefix, self.suffix())
    }

    /// Columns that go into the files: all but the partition columns, unless INCLUDE.
    fn data_columns(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|c| self.include_partition_columns || !self.partition_by.contains(c))
            .collect()
    }
}

/// How a stream's files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileNaming {
    /// PARALLEL ON: one file set per slice (or per output partition of a plan the leader
    /// runs), `<slice:04>_part_<nn:02>`.
    Slice(u32),
    /// PARALLEL OFF: one ordered stream, `000`, `001`, …
    Serial,
}

/// One file an UNLOAD wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnloadedFile {
    pub url: String,
    pub rows: u64,
    pub bytes: u64,
    /// The slice (or output partition) that wrote it; 0 for PARALLEL OFF.
    pub slice: u32,
    /// The worker node that wrote it (the leader fills this in); `None`: the leader did.
    pub node: Option<u32>,
    /// When the file was opened and completed, in microseconds since the Unix epoch.
    pub start_us: i64,
    pub end_us: i64,
}

/// `DoAction(unload)` body: run `fragment` over one slice and write its rows as that
/// slice's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnloadRequest {
    pub fragment: FragmentTicket,
    pub spec: UnloadSpec,
    /// The slice number in the file names.
    pub slice: u32,
}

/// Write `stream` as UNLOAD files named by `naming` and return them in the order they
/// were completed. On failure every file this call completed is deleted again and the
/// one in progress is abandoned, so a failed UNLOAD leaves no partial output behind.
///
/// Rendering, compressing and encoding are CPU work: the whole loop runs on a blocking
/// thread (driving the stream and the uploads from there), so the runtime's threads stay
/// free for heartbeats and other queries. Dropping the returned future (a cancelled
/// statement) stops the loop at the next batch, and its files are discarded.
pub async fn write_stream(
    spec: &UnloadSpec,
    naming: FileNaming,
    stream: SendableRecordBatchStream,
) -> Result<Vec<UnloadedFile>> {
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancelled.clone());
    let spec = spec.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(write_all(&spec, naming, stream, &cancelled))
    })
    .await
    .map_err(|e| WorkerError::Rpc(format!("UNLOAD writer stopped: {e}")))?
}

async fn write_all(
    spec: &UnloadSpec,
    naming: FileNaming,
    mut stream: SendableRecordBatchStream,
    cancelled: &AtomicBool,
) -> Result<Vec<UnloadedFile>> {
    let mut w = Unloader::new(spec, naming, stream.schema())?;
    let result = async {
        while let Some(batch) = stream.try_next().await? {
            if cancelled.load(Ordering::Relaxed) {
                return Err(WorkerError::Rpc("UNLOAD cancelled".into()));
            }
            w.write(&batch).await?;
        }
        w.finish().await
    }
    .await;
    match result {
        Ok(()) => Ok(std::mem::take(&mut w.done)),
        Err(e) => {
            w.discard().await;
            Err(e)
        }
    }
}

/// Delete files written by an UNLOAD that failed elsewhere (best effort).
pub async fn discard_files(files: &[UnloadedFile], access: &ObjectAccess) {
    for f in files {
        let _ = objects::delete(&f.url, access).await;
    }
}

/// One partition folder's files (the whole output without PARTITION BY).
struct Folder {
    path: String,
    next_part: u32,
    open: Option<OpenFile>,
}

/// A file being written.
struct OpenFile {
    out: ObjectWriter,
    enc: Encoder,
    rows: u64,
    /// Uncompressed bytes given to a compressor since it last produced output: what the
    /// file may still grow by for input already written.
    unflushed: u64,
    start_us: i64,
}

enum Encoder {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Bzip2(bzip2::write::BzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Parquet(Box<ArrowWriter<Vec<u8>>>),
}

impl Encoder {
    /// Output produced and not yet handed to the object writer.
    fn buffer(&mut self) -> &mut Vec<u8> {
        match self {
            Encoder::Plain(v) => v,
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Bzip2(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
            Encoder::Parquet(w) => w.inner_mut(),
        }
    }

    fn write_text(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Plain(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Encoder::Gzip(e) => e.write_all(bytes),
            Encoder::Bzip2(e) => e.write_all(bytes),
            Encoder::Zstd(e) => e.write_all(bytes),
            Encoder::Parquet(_) => unreachable!("text is never written to a Parquet file"),
        }
    }

    /// The rest of the file.
    fn finish(self) -> Result<Vec<u8>> {
        let io = |e: std::io::Error| WorkerError::Rpc(format!("compressing UNLOAD output: {e}"));
        Ok(match self {
            Encoder::Plain(v) => v,
            Encoder::Gzip(e) => e.finish().map_err(io)?,
            Encoder::Bzip2(e) => e.finish().map_err(io)?,
            Encoder::Zstd(e) => e.finish().map_err(io)?,
            Encoder::Parquet(w) => w.into_inner().map_err(parquet_error)?,
        })
    }
}

fn parquet_error(e: parquet::errors::ParquetError) -> WorkerError {
    WorkerError::Rpc(format!("writing Parquet: {e}"))
}

impl OpenFile {
    /// The file's size so far, counting what its encoder still holds.
    fn size(&mut self) -> u64 {
        let pending = match &self.enc {
            Encoder::Parquet(w) => w.in_progress_size() as u64,
            Encoder::Plain(_) => 0,
            _ => self.unflushed,
        };
        self.out.written() + self.enc.buffer().len() as u64 + pending
    }

    fn write_text(&mut self, bytes: &[u8]) -> Result<()> {
        let before = self.enc.buffer().len();
        self.enc
            .write_text(bytes)
            .map_err(|e| WorkerError::Rpc(format!("compressing UNLOAD output: {e}")))?;
        if self.enc.buffer().len() != before {
            self.unflushed = 0;
        }
        self.unflushed += bytes.len() as u64;
        Ok(())
    }

    /// Hand the encoder's output to the object writer once there is enough of it.
    async fn flush(&mut self, at_least: usize) -> Result<()> {
        let buf = self.enc.buffer();
        if !buf.is_empty() && buf.len() >= at_least {
            let bytes = Bytes::from(std::mem::take(buf));
            self.out.put(bytes).await?;
        }
        Ok(())
    }
}

struct Unloader<'a> {
    spec: &'a UnloadSpec,
    naming: FileNaming,
    /// Per stream column: its PostgreSQL type (for text).
    types: Vec<Type>,
    /// Stream columns written into the files.
    data_columns: Vec<usize>,
    /// Schema of a Parquet file: the data columns under the query's names.
    file_schema: SchemaRef,
    /// The header line of text and CSV files.
    header: Option<Vec<u8>>,
    folders: Vec<Folder>,
    by_path: HashMap<String, usize>,
    done: Vec<UnloadedFile>,
    scratch: BytesMut,
}

impl<'a> Unloader<'a> {
    fn new(spec: &'a UnloadSpec, naming: FileNaming, schema: SchemaRef) -> Result<Self> {
        if schema.fields().len() != spec.columns.len() {
            return Err(crate::bad_request!(
                "UNLOAD names {} columns for a result of {}",
                spec.columns.len(),
                schema.fields().len()
            ));
        }
        let data_columns = spec.data_columns();
        let types = schema
            .fields()
            .iter()
            .map(|f| pg_type_of(f.data_type()))
            .collect();
        let file_schema = Arc::new(Schema::new(
            data_columns
                .iter()
                .map(|&c| {
                    Field::new(
                        &spec.columns[c],
                        parquet_type(schema.field(c).data_type()),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        ));
        let mut w = Self {
            spec,
            naming,
            types,
            data_columns,
            file_schema,
            header: None,
            folders: vec![],
            by_path: HashMap::new(),
            done: vec![],
            scratch: BytesMut::new(),
        };
        if spec.header && spec.format != UnloadFormat::Parquet {
            let mut line = Vec::new();
            for (k, &c) in w.data_columns.iter().enumerate() {
                if k > 0 {
                    line.push(spec.delimiter);
                }
                w.push_field(&mut line, Some(spec.columns[c].as_bytes()));
            }
            line.push(b'\n');
            w.header = Some(line);
        }
        Ok(w)
    }

    async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (path, rows) in self.split(batch)? {
            let f = self.folder(path);
            if self.spec.format == UnloadFormat::Parquet {
                self.write_parquet(f, &rows).await?;
            } else {
                self.write_rows(f, &rows).await?;
            }
        }
        Ok(())
    }

    fn folder(&mut self, path: String) -> usize {
        if let Some(&f) = self.by_path.get(&path) {
            return f;
        }
        self.folders.push(Folder {
            path: path.clone(),
            next_part: 0,
            open: None,
        });
        self.by_path.insert(path, self.folders.len() - 1);
        self.folders.len() - 1
    }

    /// The rows of `batch` by partition folder (one group without PARTITION BY).
    fn split(&mut self, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
        let spec = self.spec;
        if spec.partition_by.is_empty() {
            return Ok(vec![(String::new(), batch.clone())]);
        }
        let mut groups: Vec<(String, Vec<u32>)> = vec![];
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut key = String::new();
        for row in 0..batch.num_rows() {
            key.clear();
            for &c in &spec.partition_by {
                key.push_str(&spec.columns[c]);
                key.push('=');
                self.scratch.clear();
                let present = write_text(
                    batch.column(c).as_ref(),
                    row,
                    &self.types[c],
                    &mut self.scratch,
                )
                .map_err(WorkerError::Rpc)?;
                if present {
                    escape_partition_value(&String::from_utf8_lossy(&self.scratch), &mut key);
                } else {
                    key.push_str(NULL_PARTITION);
                }
                key.push('/');
            }
            match index.get(&key) {
                Some(&g) => groups[g].1.push(row as u32),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key.clone(), vec![row as u32]));
                }
            }
        }
        if groups.len() == 1 {
            let (path, _) = groups.pop().expect("one group");
            return Ok(vec![(path, batch.clone())]);
        }
        groups
            .into_iter()
            .map(|(path, rows)| Ok((path, take_record_batch(batch, &UInt32Array::from(rows))?)))
            .collect()
    }

    /// Append one text or CSV field (`None`: NULL).
    fn push_field(&self, line: &mut Vec<u8>, value: Option<&[u8]>) {
        let spec = self.spec;
        let delimiter = spec.delimiter;
        match spec.format {
            UnloadFormat::Csv => match value {
                None => line.extend_from_slice(spec.null_as.as_bytes()),
                Some(v) => {
                    let quote = v
                        .iter()
                        .any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
                    if quote {
                        line.push(b'"');
                        for &b in v {
                            if b == b'"' {
                                line.push(b'"');
                            }
                            line.push(b);
                        }
                        line.push(b'"');
                    } else {
                        line.extend_from_slice(v);
                    }
                }
            },
            _ => {
                if spec.add_quotes {
                    line.push(b'"');
                }
                match value {
                    None => line.extend_from_slice(spec.null_as.as_bytes()),
                    Some(v) if spec.escape => {
                        for &b in v {
                            if b == b'\n'
                                || b == b'\r'
                                || b == b'\\'
                                || b == delimiter
                                || (spec.add_quotes && b == b'"')
                            {
                                line.push(b'\\');
                            }
                            line.push(b);
                        }
                    }
                    Some(v) => line.extend_from_slice(v),
                }
                if spec.add_quotes {
                    line.push(b'"');
                }
            }
        }
    }

    fn render_row(&mut self, batch: &RecordBatch, row: usize, line: &mut Vec<u8>) -> Result<()> {
        for k in 0..self.data_columns.len() {
            let c = self.data_columns[k];
            if k > 0 {
                line.push(self.spec.delimiter);
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            let present = write_text(batch.column(c).as_ref(), row, &self.types[c], &mut scratch)
                .map_err(WorkerError::Rpc)?;
            self.push_field(line, present.then_some(&scratch[..]));
            self.scratch = scratch;
        }
        line.push(b'\n');
        Ok(())
    }

    async fn write_rows(&mut self, f: usize, batch: &RecordBatch) -> Result<()> {
        let mut line = Vec::new();
        for row in 0..batch.num_rows() {
            line.clear();
            self.render_row(batch, row, &mut line)?;
            // Cut the file before a row that would take it past MAXFILESIZE.
            let max = self.spec.max_file_size;
            if let Some(open) = self.folders[f].open.as_mut()
                && open.rows > 0
                && open.size() + line.len() as u64 > max
            {
                self.close(f).await?;
            }
            let open = self.open(f)?;
            open.write_text(&line)?;
            open.rows += 1;
            open.flush(FLUSH_BYTES).await?;
        }
        Ok(())
    }

    async fn write_parquet(&mut self, f: usize, batch: &RecordBatch) -> Result<()> {
        let columns = self
            .data_columns
            .iter()
            .zip(self.file_schema.fields())
            .map(|(&c, field)| {
                let column = batch.column(c);
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    arrow::compute::cast(column, field.data_type())
                }
            })
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        let batch = RecordBatch::try_new(self.file_schema.clone(), columns)?;
        let (max, row_group) = (self.spec.max_file_size, self.spec.row_group_size);
        let mut at = 0;
        while at < batch.num_rows() {
            let len = PARQUET_CHUNK_ROWS.min(batch.num_rows() - at);
            let open = self.open(f)?;
            let Encoder::Parquet(w) = &mut open.enc else {
                unreachable!("Parquet files have a Parquet writer")
            };
            w.write(&batch.slice(at, len)).map_err(parquet_error)?;
            if w.in_progress_size() as u64 >= row_group {
                w.flush().map_err(parquet_error)?;
            }
            open.rows += len as u64;
            open.flush(FLUSH_BYTES).await?;
            if open.size() >= max {
                self.close(f).await?;
            }
            at += len;
        }
        Ok(())
    }

    /// The open file of folder `f`, starting the folder's next file if none is open.
    fn open(&mut self, f: usize) -> Result<&mut OpenFile> {
        let spec = self.spec;
        let folder = &mut self.folders[f];
        if folder.open.is_none() {
            let url = spec.file_url(&folder.path, self.naming, folder.next_part);
            folder.next_part += 1;
            let out = ObjectWriter::create(&url, &spec.access)?;
            let enc = match (spec.format, spec.compression) {
                (UnloadFormat::Parquet, _) => {
                    let props = WriterProperties::builder()
                        .set_compression(ParquetCompression::SNAPPY)
                        .set_created_by(format!("Basalt {}", env!("CARGO_PKG_VERSION")))
                        .build();
                    Encoder::Parquet(Box::new(
                        ArrowWriter::try_new(Vec::new(), self.file_schema.clone(), Some(props))
                            .map_err(parquet_error)?,
                    ))
                }
                (_, Compression::None) => Encoder::Plain(Vec::new()),
                (_, Compression::Gzip) => Encoder::Gzip(flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::default(),
                )),
                (_, Compression::Bzip2) => Encoder::Bzip2(bzip2::write::BzEncoder::new(
                    Vec::new(),
                    bzip2::Compression::default(),
                )),
                (_, Compression::Zstd) => Encoder::Zstd(
                    zstd::stream::write::Encoder::new(Vec::new(), 3)
                        .map_err(|e| WorkerError::Rpc(format!("zstd: {e}")))?,
                ),
            };
            let mut file = OpenFile {
                out,
                enc,
                rows: 0,
                unflushed: 0,
                start_us: now_us(),
            };
            if let Some(header) = &self.header {
                file.write_text(header)?;
            }
            folder.open = Some(file);
        }
        Ok(folder.open.as_mut().expect("opened above"))
    }

    /// Complete folder `f`'s open file.
    async fn close(&mut self, f: usize) -> Result<()> {
        let Some(file) = self.folders[f].open.take() else {
            return Ok(());
        };
        let OpenFile {
            mut out,
            enc,
            rows,
            start_us,
            ..
        } = file;
        let rest = match enc.finish() {
            Ok(rest) => rest,
            Err(e) => {
                out.abort().await;
                return Err(e);
            }
        };
        let url = out.url().to_string();
        let finished = async {
            if !rest.is_empty() {
                out.put(Bytes::from(rest)).await?;
            }
            out.finish().await
        }
        .await;
        let bytes = finished?;
        self.done.push(UnloadedFile {
            url,
            rows,
            bytes,
            slice: match self.naming {
                FileNaming::Slice(s) => s,
                FileNaming::Serial => 0,
            },
            node: None,
            start_us,
            end_us: now_us(),
        });
        Ok(())
    }

    /// Complete every open file. PARALLEL OFF always writes a first file, even for no
    /// rows (with just the header, if any).
    async fn finish(&mut self) -> Result<()> {
        if self.naming == FileNaming::Serial
            && self.spec.partition_by.is_empty()
            && self.folders.is_empty()
        {
            let f = self.folder(String::new());
            self.open(f)?;
        }
        for f in 0..self.folders.len() {
            self.close(f).await?;
        }
        Ok(())
    }

    /// Abandon the open files and delete the completed ones.
    async fn discard(&mut self) {
        for folder in &mut self.folders {
            if let Some(file) = folder.open.take() {
                file.out.abort().await;
            }
        }
        discard_files(&std::mem::take(&mut self.done), &self.spec.access).await;
    }
}

/// The type a column has in a Parquet file: timestamps in microseconds, as Basalt stores
/// them (a computed timestamp may come in nanoseconds); everything else as it is.
fn parquet_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        other => other.clone(),
    }
}

/// A partition value as a folder name: Hive's escaping (`%XX` for `/`, `=`, `%`, control
/// characters and the other characters Hive escapes).
fn escape_partition_value(value: &str, out: &mut String) {
    for ch in value.chars() {
        let escape = ch.is_ascii_control()
            || matches!(
                ch,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            );
        if escape {
            out.push_str(&format!("%{:02X}", ch as u32));
        } else {
            out.push(ch);
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;

    fn spec(dir: &std::path::Path, format: UnloadFormat) -> UnloadSpec {
        UnloadSpec {
            prefix: format!("{}/out_", dir.display()),
            access: ObjectAccess::default(),
            format,
            delimiter: if format == UnloadFormat::Csv {
                b','
            } else {
                b'|'
            },
            add_quotes: false,
            escape: false,
            null_as: String::new(),
            header: false,
            compression: Compression::None,
            max_file_size: MAX_FILE_SIZE,
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            extension: None,
            columns: vec!["id".into(), "name".into()],
            partition_by: vec![],
            include_partition_columns: false,
        }
    }

    fn stream(ids: Vec<i32>, names: Vec<Option<&str>>) -> SendableRecordBatchStream {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", arrow::datatypes::DataType::Int32, false),
            Field::new("b", arrow::datatypes::DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter([Ok(batch)]),
        ))
    }

    fn names(files: &[UnloadedFile], dir: &std::path::Path) -> Vec<String> {
        let root = format!("{}/", dir.display());
        files
            .iter()
            .map(|f| f.url.trim_start_matches(&root).to_string())
            .collect()
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[tokio::test]
    async fn text_quoting_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let rows = || {
            stream(
                vec![1, 2, 3],
                vec![Some("a|b\\c"), None, Some("say \"hi\"\nbye")],
            )
        };
        let mut s = spec(dir.path(), UnloadFormat::Text);
        s.add_quotes = true;
        s.escape = true;
        s.header = true;
        let files = write_stream(&s, FileNaming::Slice(3), rows())
            .await
            .unwrap();
        assert_eq!(names(&files, dir.path()), ["out_0003_part_00"]);
        assert_eq!(files[0].rows, 3);
        assert_eq!(
            read(dir.path(), "out_0003_part_00"),
            "\"id\"|\"name\"\n\"1\"|\"a\\|b\\\\c\"\n\"2\"|\"\"\n\"3\"|\"say \\\"hi\\\"\\\nbye\"\n"
        );
        let mut s = spec(dir.path(), UnloadFormat::Csv);
        s.prefix = format!("{}/csv_", dir.path().display());
        s.null_as = "NULL".into();
        let files = write_stream(&s, FileNaming::Serial, rows()).await.unwrap();
        assert_eq!(names(&files, dir.path()), ["csv_000"]);
        assert_eq!(
            read(dir.path(), "csv_000"),
            "1,a|b\\c\n2,NULL\n3,\"say \"\"hi\"\"\nbye\"\n"
        );
    }

    #[tokio::test]
    async fn files_are_cut_at_the_size_limit_and_partitioned() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), UnloadFormat::Text);
        // 10 rows of 8 bytes; at most 20 bytes per file → 2 rows per file.
        s.max_file_size = 20;
        let ids: Vec<i32> = (10..20).collect();
        let files = write_stream(
            &s,
            FileNaming::Serial,
            stream(ids.clone(), vec![Some("abcde"); 10]),
        )
        .await
        .unwrap();
        assert_eq!(
            names(&files, dir.path()),
            ["out_000", "out_001", "out_002", "out_003", "out_004"]
        );
        assert_eq!(read(dir.path(), "out_004"), "18|abcde\n19|abcde\n");
        assert!(files.iter().all(|f| f.rows == 2 && f.bytes == 18));

        let mut s = spec(dir.path(), UnloadFormat::Text);
        s.prefix = format!("{}/p/", dir.path().display());
        s.partition_by = vec![1];
        let files = write_stream(
            &s,
            FileNaming::Slice(1),
            stream(vec![1, 2, 3], vec![Some("x/y"), None, Some("x/y")]),
        )
        .await
        .unwrap();
        assert_eq!(
            names(&files, dir.path()),
            [
                "p/name=x%2Fy/0001_part_00",
                "p/name=__HIVE_DEFAULT_PARTITION__/0001_part_00"
            ]
        );
        assert_eq!(read(dir.path(), "p/name=x%2Fy/0001_part_00"), "1\n3\n");
    }

    #[tokio::test]
    async fn parallel_off_writes_a_file_for_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), UnloadFormat::Csv);
        s.header = true;
        s.compression = Compression::Gzip;
        let files = write_stream(&s, FileNaming::Serial, stream(vec![], vec![]))
            .await
            .unwrap();
        assert_eq!(names(&files, dir.path()), ["out_000.gz"]);
        let bytes = std::fs::read(dir.path().join("out_000.gz")).unwrap();
        let text = crate::load::decompress(bytes.into(), Compression::Gzip).unwrap();
        assert_eq!(&text[..], b"id,name\n");
        let files = write_stream(&s, FileNaming::Slice(0), stream(vec![], vec![]))
            .await
            .unwrap();
        assert!(files.is_empty());
    }
}
