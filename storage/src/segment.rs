//! The segment file: the rows of one table on one slice, stored column by column in
//! blocks, with a zone map (min/max, null count) and a CRC32 per block, and a versioned,
//! checksummed footer. See `docs/format.md` for the byte layout.
//!
//! Format version 1 stores each block as a single-column Arrow IPC stream, compressed by
//! the block's codec (RAW = none, LZ4, ZSTD). Version 2 adds the Redshift encodings as
//! typed codecs with layouts of their own: AZ64 (`az64`), RUNLENGTH (`runlength`),
//! BYTEDICT (`bytedict`), DELTA and DELTA32K (`delta`), MOSTLY8/16/32 (`mostly`) and
//! TEXT255/TEXT32K (`text_dict`). A block a typed codec cannot hold is written LZ4 and
//! its meta says so. Version 1 files must stay readable.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow::compute::{max, min};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::corrupt;
use crate::encodings::block::{column_to_ipc, ipc_to_column};
use crate::encodings::strings::Compressor;
use crate::encodings::{az64, bytedict, delta, mostly, runlength, strings, text_dict};
use crate::error::{Result, StorageError};

/// First and last 8 bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"BSLTSEG1";
/// The newest format version this build writes and reads. Version 2 added the typed
/// codecs (AZ64 first, the other Redshift encodings as further `Codec` variants, which
/// older version-2 files simply never use); version 1 files remain readable.
pub const FORMAT_VERSION: u16 = 2;
/// Rows per block written by this build (defined beside the codecs, which bound their
/// blocks by it).
pub use crate::encodings::block::BLOCK_ROWS;
/// Bytes after the footer: footer length (u32), footer CRC32 (u32), magic.
const TRAILER_LEN: usize = 4 + 4 + 8;
/// Longest string kept in a zone map; longer min/max values are not recorded.
const MAX_ZONE_STRING: usize = 256;

/// How a block's bytes are compressed. The footer stores the variant's index, so new
/// codecs go at the end and existing ones never move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    Raw,
    Lz4,
    Zstd,
    /// Frame of reference + bit packing of integer-like values (format version 2).
    Az64,
    /// Runs of equal consecutive values (format version 2).
    RunLength,
    /// A dictionary of at most 256 values and one byte per row (format version 2).
    ByteDict,
    /// The first value, then 1-byte differences, escaping to full values (DELTA).
    Delta,
    /// The first value, then 2-byte differences, escaping to full values (DELTA32K).
    Delta32k,
    /// 1-byte values with the ones that do not fit kept as exceptions (MOSTLY8).
    Mostly8,
    /// 2-byte values with the ones that do not fit kept as exceptions (MOSTLY16).
    Mostly16,
    /// 4-byte values with the ones that do not fit kept as exceptions (MOSTLY32).
    Mostly32,
    /// A per-block dictionary of up to 245 words and 1-byte word codes (TEXT255).
    Text255,
    /// A per-block dictionary of up to 32K bytes of words and 2-byte codes (TEXT32K).
    Text32k,
    /// LZ4 of a string block's lengths and bytes (how LZO and fallbacks store strings).
    Lz4Strings,
    /// ZSTD of a string block's lengths and bytes (how ZSTD stores strings).
    ZstdStrings,
}

/// Whether `codec` compresses a block's Arrow IPC bytes (RAW, LZ4, ZSTD) rather than
/// encoding its values in a layout of its own.
fn is_byte_codec(codec: Codec) -> bool {
    matches!(codec, Codec::Raw | Codec::Lz4 | Codec::Zstd)
}

/// Encode one block with a typed codec, or `None` when the codec cannot hold it.
fn encode_typed(codec: Codec, block: &ArrayRef) -> Option<Vec<u8>> {
    use delta::Step;
    use mostly::Slot;
    use text_dict::Words;
    match codec {
        Codec::Az64 => az64::encode(block),
        Codec::RunLength => runlength::encode(block),
        Codec::ByteDict => bytedict::encode(block),
        Codec::Delta => delta::encode(block, Step::Byte),
        Codec::Delta32k => delta::encode(block, Step::Short),
        Codec::Mostly8 => mostly::encode(block, Slot::B8),
        Codec::Mostly16 => mostly::encode(block, Slot::B16),
        Codec::Mostly32 => mostly::encode(block, Slot::B32),
        Codec::Text255 => text_dict::encode(block, Words::T255),
        Codec::Text32k => text_dict::encode(block, Words::T32k),
        Codec::Raw | Codec::Lz4 | Codec::Zstd | Codec::Lz4Strings | Codec::ZstdStrings => None,
    }
}

/// Inverse of [`encode_typed`] for a block of `rows` values of `data_type`.
fn decode_typed(
    codec: Codec,
    payload: &[u8],
    data_type: &DataType,
    rows: usize,
) -> std::result::Result<ArrayRef, String> {
    use delta::Step;
    use mostly::Slot;
    use text_dict::Words;
    match codec {
        Codec::Az64 => az64::decode(payload, data_type, rows),
        Codec::RunLength => runlength::decode(payload, rows),
        Codec::ByteDict => bytedict::decode(payload, rows),
        Codec::Delta => delta::decode(payload, data_type, rows, Step::Byte),
        Codec::Delta32k => delta::decode(payload, data_type, rows, Step::Short),
        Codec::Mostly8 => mostly::decode(payload, data_type, rows, Slot::B8),
        Codec::Mostly16 => mostly::decode(payload, data_type, rows, Slot::B16),
        Codec::Mostly32 => mostly::decode(payload, data_type, rows, Slot::B32),
        Codec::Text255 => text_dict::decode(payload, data_type, rows, Words::T255),
        Codec::Text32k => text_dict::decode(payload, data_type, rows, Words::T32k),
        Codec::Lz4Strings => strings::decode(payload, rows, Compressor::Lz4),
        Codec::ZstdStrings => strings::decode(payload, rows, Compressor::Zstd),
        Codec::Raw | Codec::Lz4 | Codec::Zstd => {
            Err(format!("{codec:?} blocks are Arrow IPC streams"))
        }
    }
}

/// Dictionary and run values carry their own type; it must be the column's.
fn check_type(values: &ArrayRef, expected: &DataType) -> std::result::Result<(), String> {
    if values.data_type() == expected {
        Ok(())
    } else {
        Err(format!(
            "encoded values have type {}, the column {expected}",
            values.data_type()
        ))
    }
}

/// A zone-map bound. Integers, dates and timestamps are widened to i64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ZoneValue {
    Int(i64),
    Decimal(i128),
    Float(f64),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockMeta {
    pub offset: u64,
    pub len: u32,
    pub rows: u32,
    pub null_count: u32,
    pub codec: Codec,
    pub crc32: u32,
    pub min: Option<ZoneValue>,
    pub max: Option<ZoneValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnChunk {
    pub blocks: Vec<BlockMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentFooter {
    pub format_version: u16,
    pub row_count: u64,
    /// The table schema at write time, as an Arrow IPC stream with no batches.
    pub schema_ipc: Vec<u8>,
    pub columns: Vec<ColumnChunk>,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Encode `batch` (already sorted by the table's sort key) as a segment file.
/// `codecs[i]` compresses column `i`.
pub fn write_segment(batch: &RecordBatch, codecs: &[Codec]) -> Result<Bytes> {
    let rows = batch.num_rows();
    write_columns(&batch.schema(), rows, codecs, |i, start, len| {
        Ok(batch.column(i).slice(start, len))
    })
}

/// Encode the rows of `batches` named by `order` ((batch, row) pairs, in sort-key order)
/// as a segment file, without first gathering them into one batch: each block is gathered
/// just before it is encoded, so the rows are copied once and the copy is still in cache.
pub fn write_segment_gathered(
    batches: &[RecordBatch],
    order: &[(usize, usize)],
    codecs: &[Codec],
) -> Result<Bytes> {
    let Some(first) = batches.first() else {
        return Err(StorageError::Unsupported("a segment needs rows".into()));
    };
    write_columns(&first.schema(), order.len(), codecs, |i, start, len| {
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        crate::gather::gather(&arrays, &order[start..start + len])
    })
}

/// A segment of `rows` rows whose column `i`, rows `start..start + len`, `block` returns.
fn write_columns(
    schema: &SchemaRef,
    rows: usize,
    codecs: &[Codec],
    block: impl Fn(usize, usize, usize) -> Result<ArrayRef> + Sync,
) -> Result<Bytes> {
    if codecs.len() != schema.fields().len() {
        return Err(StorageError::Unsupported(format!(
            "{} codecs for {} columns",
            codecs.len(),
            schema.fields().len()
        )));
    }
    // Columns encode independently, so they encode in parallel; each block's offset is
    // fixed once the columns are laid out one after another.
    use rayon::prelude::*;
    let encoded: Vec<(Vec<BlockMeta>, Vec<u8>)> = schema
        .fields()
        .par_iter()
        .enumerate()
        .map(|(i, field)| encode_column(field, codecs[i], rows, |start, len| block(i, start, len)))
        .collect::<Result<_>>()?;
    let total: usize = encoded.iter().map(|(_, bytes)| bytes.len()).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + total + 4096);
    out.extend_from_slice(MAGIC);
    let mut columns = Vec::with_capacity(encoded.len());
    for (mut blocks, bytes) in encoded {
        let base = out.len() as u64;
        for block in &mut blocks {
            block.offset += base;
        }
        out.extend_from_slice(&bytes);
        columns.push(ColumnChunk { blocks });
    }
    let footer = SegmentFooter {
        format_version: FORMAT_VERSION,
        row_count: rows as u64,
        schema_ipc: schema_to_ipc(schema)?,
        columns,
    };
    let footer_bytes = bincode::serde::encode_to_vec(&footer, bincode_config())
        .map_err(|e| StorageError::Unsupported(format!("encode footer: {e}")))?;
    out.extend_from_slice(&footer_bytes);
    out.extend_from_slice(&(footer_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&footer_bytes).to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(Bytes::from(out))
}

/// One column's blocks, encoded one after another: their metadata (offsets relative to
/// the column's first block) and bytes.
fn encode_column(
    field: &arrow::datatypes::FieldRef,
    requested: Codec,
    rows: usize,
    block: impl Fn(usize, usize) -> Result<ArrayRef>,
) -> Result<(Vec<BlockMeta>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut blocks = Vec::new();
    for (start, len) in block_ranges(rows) {
        let slice = block(start, len)?;
        // Typed codecs apply to some blocks only (AZ64, DELTA and MOSTLY to
        // integer-like ones, TEXT to strings, BYTEDICT to at most 256 distinct
        // values, and any of them only when it saves space; RUNLENGTH to all). A
        // block a codec cannot hold falls back to LZ4 and records that in its codec.
        let typed = (!is_byte_codec(requested))
            .then(|| encode_typed(requested, &slice))
            .flatten();
        let (codec, payload) = match typed {
            Some(p) => (requested, p),
            None => {
                let codec = if is_byte_codec(requested) {
                    requested
                } else {
                    Codec::Lz4
                };
                // Strings compress far better as lengths and bytes than as IPC.
                let strings = match codec {
                    Codec::Lz4 => {
                        strings::encode(&slice, Compressor::Lz4).map(|p| (Codec::Lz4Strings, p))
                    }
                    Codec::Zstd => {
                        strings::encode(&slice, Compressor::Zstd).map(|p| (Codec::ZstdStrings, p))
                    }
                    _ => None,
                };
                match strings {
                    Some(s) => s,
                    None => (codec, compress(codec, &column_to_ipc(field, &slice)?)?),
                }
            }
        };
        let (min, max) = zone_map(&slice);
        blocks.push(BlockMeta {
            offset: out.len() as u64,
            len: payload.len() as u32,
            rows: len as u32,
            null_count: slice.null_count() as u32,
            codec,
            crc32: crc32fast::hash(&payload),
            min,
            max,
        });
        out.extend_from_slice(&payload);
    }
    Ok((blocks, out))
}

/// Where a reader finds block payloads: the whole file in memory, or just the blocks
/// fetched by byte range (keyed by file offset).
#[derive(Debug)]
enum Blocks {
    Whole(Bytes),
    Fetched(HashMap<u64, Bytes>),
}

/// A segment whose footer has been read and validated.
#[derive(Debug)]
pub struct SegmentReader {
    path: String,
    blocks: Blocks,
    footer: SegmentFooter,
    schema: SchemaRef,
}

/// Validate a segment's framing and decode its footer. `header` is the first 8 bytes,
/// `trailer` the last 16, `footer_bytes` the footer they point at, `size` the file size.
fn parse_footer(
    path: &str,
    size: usize,
    header: &[u8],
    trailer: &[u8],
    footer_bytes: impl FnOnce(usize) -> Result<Bytes>,
) -> Result<(SegmentFooter, SchemaRef)> {
    if size < MAGIC.len() + TRAILER_LEN {
        return Err(corrupt!(path, "file is truncated ({size} bytes)"));
    }
    if header != MAGIC || &trailer[8..] != MAGIC {
        return Err(corrupt!(
            path,
            "not a Basalt segment (bad magic), or truncated"
        ));
    }
    let t = size - TRAILER_LEN;
    let footer_len = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as usize;
    let footer_crc = u32::from_le_bytes(trailer[4..8].try_into().expect("4 bytes"));
    if footer_len > t - MAGIC.len() {
        return Err(corrupt!(
            path,
            "footer length {footer_len} exceeds file size"
        ));
    }
    let footer_bytes = footer_bytes(footer_len)?;
    if crc32fast::hash(&footer_bytes) != footer_crc {
        return Err(corrupt!(path, "footer checksum mismatch"));
    }
    // The version is the first field: read it before trusting the rest of the layout.
    let (version, _): (u16, usize) =
        bincode::serde::decode_from_slice(&footer_bytes, bincode_config())
            .map_err(|e| corrupt!(path, "footer: {e}"))?;
    if version > FORMAT_VERSION || version == 0 {
        return Err(StorageError::UnsupportedVersion {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (footer, _): (SegmentFooter, usize) =
        bincode::serde::decode_from_slice(&footer_bytes, bincode_config())
            .map_err(|e| corrupt!(path, "footer: {e}"))?;
    let schema = ipc_to_schema(&footer.schema_ipc).map_err(|e| corrupt!(path, "schema: {e}"))?;
    if schema.fields().len() != footer.columns.len() {
        return Err(corrupt!(path, "schema and column index disagree"));
    }
    let data_end = (t - footer_len) as u64;
    for c in &footer.columns {
        for b in &c.blocks {
            if b.offset < MAGIC.len() as u64 || b.offset + u64::from(b.len) > data_end {
                return Err(corrupt!(path, "block outside the data region"));
            }
        }
    }
    // Block `i` of every column must cover the same rows, and all blocks the file's rows:
    // row numbers (deletion vectors, row ids) are derived from the block sizes.
    if let Some(first) = footer.columns.first() {
        let rows: Vec<u32> = first.blocks.iter().map(|b| b.rows).collect();
        if footer.columns.iter().any(|c| {
            c.blocks.len() != rows.len() || c.blocks.iter().zip(&rows).any(|(b, r)| b.rows != *r)
        }) || rows.iter().map(|r| u64::from(*r)).sum::<u64>() != footer.row_count
        {
            return Err(corrupt!(path, "column blocks cover different rows"));
        }
    }
    Ok((footer, schema))
}

impl SegmentReader {
    /// Validate the header, trailer, footer checksum and version of `bytes`, a whole
    /// segment file. `path` only names the file in errors.
    pub fn open(path: impl Into<String>, bytes: Bytes) -> Result<Self> {
        let path = path.into();
        let size = bytes.len();
        let (footer, schema) = if size < MAGIC.len() + TRAILER_LEN {
            return Err(corrupt!(path, "file is truncated ({size} bytes)"));
        } else {
            parse_footer(
                &path,
                size,
                &bytes[..8],
                &bytes[size - TRAILER_LEN..],
                |len| Ok(bytes.slice(size - TRAILER_LEN - len..size - TRAILER_LEN)),
            )?
        };
        Ok(Self {
            path,
            blocks: Blocks::Whole(bytes),
            footer,
            schema,
        })
    }

    /// Read only the framing and footer of the segment at `location` (no block data).
    /// Fetch the blocks a scan needs with [`Self::fetch_blocks`].
    pub async fn open_footer(store: &dyn ObjectStore, location: &Path) -> Result<Self> {
        let path = location.to_string();
        let size = store.head(location).await?.size as usize;
        if size < MAGIC.len() + TRAILER_LEN {
            return Err(corrupt!(path, "file is truncated ({size} bytes)"));
        }
        let parts = store
            .get_ranges(
                location,
                &[
                    0..MAGIC.len() as u64,
                    (size - TRAILER_LEN) as u64..size as u64,
                ],
            )
            .await?;
        let t = size - TRAILER_LEN;
        let footer_len = u32::from_le_bytes(parts[1][..4].try_into().expect("4 bytes")) as usize;
        let footer_bytes = if footer_len <= t {
            Some(
                store
                    .get_range(location, (t - footer_len) as u64..t as u64)
                    .await?,
            )
        } else {
            None
        };
        let (footer, schema) = parse_footer(&path, size, &parts[0], &parts[1], |_| {
            footer_bytes.ok_or_else(|| corrupt!(path, "footer length exceeds file size"))
        })?;
        Ok(Self {
            path,
            blocks: Blocks::Fetched(HashMap::new()),
            footer,
            schema,
        })
    }

    /// Fetch, by byte range, the blocks of `columns` that `keep` selects (all when
    /// `None`), so that [`Self::read_blocks`] can decode them.
    pub async fn fetch_blocks(
        &mut self,
        store: &dyn ObjectStore,
        columns: &[usize],
        keep: Option<&[bool]>,
    ) -> Result<()> {
        let Blocks::Fetched(fetched) = &mut self.blocks else {
            return Ok(());
        };
        let mut wanted: Vec<(u64, u32)> = vec![];
        for &c in columns {
            let chunk = self
                .footer
                .columns
                .get(c)
                .ok_or_else(|| corrupt!(self.path, "column {c} does not exist"))?;
            for (b, meta) in chunk.blocks.iter().enumerate() {
                if keep.is_none_or(|k| k.get(b).copied().unwrap_or(true))
                    && !fetched.contains_key(&meta.offset)
                {
                    wanted.push((meta.offset, meta.len));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let ranges: Vec<std::ops::Range<u64>> =
            wanted.iter().map(|(o, l)| *o..*o + u64::from(*l)).collect();
        let location = Path::from(self.path.as_str());
        let payloads = store.get_ranges(&location, &ranges).await?;
        for ((offset, _), bytes) in wanted.into_iter().zip(payloads) {
            fetched.insert(offset, bytes);
        }
        Ok(())
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn footer(&self) -> &SegmentFooter {
        &self.footer
    }

    pub fn row_count(&self) -> u64 {
        self.footer.row_count
    }

    /// Decode the columns in `projection` (all when `None`), one batch per block.
    pub fn read_batches(&self, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        self.read_blocks(projection, None)
    }

    /// Blocks per column (every column has the same count).
    pub fn block_count(&self) -> usize {
        self.footer.columns.first().map_or(0, |c| c.blocks.len())
    }

    /// Like [`Self::read_batches`], but only the blocks whose entry in `keep` is true
    /// (zone-map pruning decides `keep`; skipped blocks are never decompressed).
    pub fn read_blocks(
        &self,
        projection: Option<&[usize]>,
        keep: Option<&[bool]>,
    ) -> Result<Vec<RecordBatch>> {
        Ok(self
            .read_blocks_at(projection, keep)?
            .into_iter()
            .map(|(_, b)| b)
            .collect())
    }

    /// Like [`Self::read_blocks`], with the segment row number of each batch's first row
    /// (deletion vectors and row ids address rows by that number).
    pub fn read_blocks_at(
        &self,
        projection: Option<&[usize]>,
        keep: Option<&[bool]>,
    ) -> Result<Vec<(u64, RecordBatch)>> {
        let mut batches = Vec::with_capacity(self.block_count());
        for b in 0..self.block_count() {
            if keep.is_some_and(|k| !k.get(b).copied().unwrap_or(true)) {
                continue;
            }
            let batch = self.read_block(projection, b)?;
            if batch.num_rows() > 0 {
                batches.push((self.block_start(b), batch));
            }
        }
        Ok(batches)
    }

    /// Segment row number of the first row of block `b`.
    pub fn block_start(&self, b: usize) -> u64 {
        self.footer.columns.first().map_or(0, |c| {
            c.blocks[..b.min(c.blocks.len())]
                .iter()
                .map(|m| u64::from(m.rows))
                .sum()
        })
    }

    /// Decode block `b` of the columns in `projection` (all when `None`). Its first row is
    /// segment row [`Self::block_start`]`(b)`.
    pub fn read_block(&self, projection: Option<&[usize]>, b: usize) -> Result<RecordBatch> {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let projection = projection.unwrap_or(&all);
        let fields: Vec<Field> = projection
            .iter()
            .map(|&i| {
                self.schema
                    .fields()
                    .get(i)
                    .map(|f| f.as_ref().clone())
                    .ok_or_else(|| corrupt!(self.path, "column {i} does not exist"))
            })
            .collect::<Result<_>>()?;
        let mut arrays = Vec::with_capacity(projection.len());
        let mut rows = None;
        for &c in projection {
            let meta = self.block_meta(c, b)?;
            let array = self.decode_block(c, meta)?;
            if *rows.get_or_insert(array.len()) != array.len() {
                return Err(corrupt!(self.path, "block {b} row counts differ"));
            }
            arrays.push(array);
        }
        let rows = match rows {
            Some(r) => r,
            None => self.block_meta(0, b)?.rows as usize,
        };
        RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| corrupt!(self.path, "{e}"))
    }

    fn block_meta(&self, column: usize, b: usize) -> Result<&BlockMeta> {
        self.footer
            .columns
            .get(column)
            .and_then(|c| c.blocks.get(b))
            .ok_or_else(|| corrupt!(self.path, "column {column} lacks block {b}"))
    }

    /// Evaluate `predicate` on block `b` of `column` in its encoded form when the block
    /// is BYTEDICT or RUNLENGTH: once per dictionary entry or per run, then expanded to
    /// one bit per row (a NULL verdict counts as false). `None` for other codecs, where
    /// there is no smaller form to judge.
    pub fn encoded_mask(
        &self,
        column: usize,
        b: usize,
        predicate: &dyn Fn(&ArrayRef) -> std::result::Result<BooleanArray, String>,
    ) -> Result<Option<BooleanArray>> {
        let meta = self.block_meta(column, b)?;
        if !matches!(meta.codec, Codec::ByteDict | Codec::RunLength) {
            return Ok(None);
        }
        let payload = self.checked_payload(column, meta)?;
        let rows = meta.rows as usize;
        let fail = |e: String| corrupt!(self.path, "column {column}: {e}");
        let expected = self.schema.field(column).data_type();
        let mask = if meta.codec == Codec::ByteDict {
            let (dict, codes) = bytedict::decode_parts(payload, rows).map_err(fail)?;
            check_type(&dict, expected).map_err(fail)?;
            let verdict = predicate(&dict).map_err(fail)?;
            let keep: Vec<bool> = (0..verdict.len())
                .map(|i| verdict.is_valid(i) && verdict.value(i))
                .collect();
            BooleanArray::from_iter(codes.iter().map(|&c| Some(keep[usize::from(c)])))
        } else {
            let (values, lengths) = runlength::decode_parts(payload, rows).map_err(fail)?;
            check_type(&values, expected).map_err(fail)?;
            let verdict = predicate(&values).map_err(fail)?;
            BooleanArray::from_iter(lengths.iter().enumerate().flat_map(|(run, len)| {
                std::iter::repeat_n(Some(verdict.is_valid(run) && verdict.value(run)), *len)
            }))
        };
        Ok(Some(mask))
    }

    /// A block's payload, after checking its CRC.
    fn checked_payload(&self, column: usize, meta: &BlockMeta) -> Result<&[u8]> {
        let payload: &[u8] = match &self.blocks {
            Blocks::Whole(bytes) => {
                let start = meta.offset as usize;
                &bytes[start..start + meta.len as usize]
            }
            Blocks::Fetched(map) => map.get(&meta.offset).ok_or_else(|| {
                corrupt!(
                    self.path,
                    "column {column} block at {} was not fetched",
                    meta.offset
                )
            })?,
        };
        if crc32fast::hash(payload) != meta.crc32 {
            return Err(corrupt!(
                self.path,
                "checksum mismatch in column {column} block at offset {}",
                meta.offset
            ));
        }
        Ok(payload)
    }

    fn decode_block(&self, column: usize, meta: &BlockMeta) -> Result<ArrayRef> {
        let payload = self.checked_payload(column, meta)?;
        let data_type = self.schema.field(column).data_type();
        let array = if is_byte_codec(meta.codec) {
            let ipc = decompress(meta.codec, payload)
                .map_err(|e| corrupt!(self.path, "column {column}: {e}"))?;
            ipc_to_column(&ipc).map_err(|e| corrupt!(self.path, "column {column}: {e}"))?
        } else {
            decode_typed(meta.codec, payload, data_type, meta.rows as usize)
                .map_err(|e| corrupt!(self.path, "column {column}: {e}"))?
        };
        // The integer and text codecs build the schema's type; the dictionary and run
        // codecs carry their values' type in their payload, which must agree.
        if !is_byte_codec(meta.codec) && array.data_type() != data_type {
            return Err(corrupt!(
                self.path,
                "column {column}: {:?} values have the wrong type",
                meta.codec
            ));
        }
        if array.len() != meta.rows as usize {
            return Err(corrupt!(
                self.path,
                "column {column}: block row count mismatch"
            ));
        }
        Ok(array)
    }
}

/// `(first_row, rows)` of each block; an empty segment still has one empty block per
/// column so that its column types are recorded.
fn block_ranges(rows: usize) -> Vec<(usize, usize)> {
    if rows == 0 {
        return vec![(0, 0)];
    }
    (0..rows)
        .step_by(BLOCK_ROWS)
        .map(|start| (start, BLOCK_ROWS.min(rows - start)))
        .collect()
}

fn compress(codec: Codec, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match codec {
        Codec::Raw => data.to_vec(),
        Codec::Lz4 => lz4_flex::compress_prepend_size(data),
        Codec::Zstd => zstd::bulk::compress(data, 3)
            .map_err(|e| StorageError::Unsupported(format!("zstd: {e}")))?,
        typed => {
            return Err(StorageError::Unsupported(format!(
                "{typed:?} encodes typed values, not bytes"
            )));
        }
    })
}

fn decompress(codec: Codec, data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    match codec {
        Codec::Raw => Ok(data.to_vec()),
        Codec::Lz4 => lz4_flex::decompress_size_prepended(data).map_err(|e| e.to_string()),
        Codec::Zstd => zstd::stream::decode_all(data).map_err(|e| e.to_string()),
        typed => Err(format!("{typed:?} blocks are not byte-compressed")),
    }
}

/// An Arrow schema as an IPC stream with no batches (used in footers and plan messages).
pub fn schema_to_ipc(schema: &Schema) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new(&mut buf, schema)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// Inverse of [`schema_to_ipc`].
pub fn ipc_to_schema(ipc: &[u8]) -> std::result::Result<SchemaRef, String> {
    let r = StreamReader::try_new(Cursor::new(ipc), None).map_err(|e| e.to_string())?;
    Ok(r.schema())
}

fn zone_map(array: &ArrayRef) -> (Option<ZoneValue>, Option<ZoneValue>) {
    use ZoneValue::*;
    macro_rules! prim {
        ($t:ty, $wrap:expr) => {{
            let a = array.as_primitive::<$t>();
            (min(a).map($wrap), max(a).map($wrap))
        }};
    }
    match array.data_type() {
        DataType::Int16 => prim!(Int16Type, |v| Int(v as i64)),
        DataType::Int32 => prim!(Int32Type, |v| Int(v as i64)),
        DataType::Int64 => prim!(Int64Type, Int),
        DataType::Date32 => prim!(Date32Type, |v| Int(v as i64)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType, Int),
        DataType::Decimal128(_, _) => prim!(Decimal128Type, Decimal),
        DataType::Float32 => prim!(Float32Type, |v| Float(v as f64)),
        DataType::Float64 => prim!(Float64Type, Float),
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let keep = |s: &str| (s.len() <= MAX_ZONE_STRING).then(|| Str(s.to_string()));
            let (lo, hi) = string_bounds(a);
            (lo.and_then(keep), hi.and_then(keep))
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            (
                arrow::compute::min_boolean(a).map(Bool),
                arrow::compute::max_boolean(a).map(Bool),
            )
        }
        _ => (None, None),
    }
}

/// The smallest and largest value of `a` in byte order (as `min`/`max` compare text),
/// in one pass; None when every value is NULL. Most comparisons are settled by the first
/// byte, checked before whole strings are compared.
pub fn string_bounds(a: &arrow::array::StringArray) -> (Option<&str>, Option<&str>) {
    let mut values = a.iter().flatten();
    let Some(first) = values.next() else {
        return (None, None);
    };
    let (mut lo, mut hi) = (first, first);
    for v in values {
        let head = v.as_bytes().first();
        if head <= lo.as_bytes().first() && v < lo {
            lo = v;
        } else if head >= hi.as_bytes().first() && v > hi {
            hi = v;
        }
    }
    (Some(lo), Some(hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::compute::{max_string, min_string};

    #[test]
    fn string_bounds_match_arrows_min_and_max() {
        let cases: Vec<Vec<Option<&str>>> = vec![
            vec![],
            vec![Some("b")],
            vec![
                Some("b"),
                Some("a"),
                Some("c"),
                Some(""),
                Some("ab"),
                Some("é"),
                Some("z"),
            ],
            vec![Some("m"), None, Some("a"), Some("zz")],
            vec![None, None],
            vec![Some("same"), Some("same")],
            // First bytes that tie, so whole strings decide.
            ["zz", "z", "ba", "b", "bb", "ab", "a", "", "\u{1}", "zza"]
                .map(Some)
                .to_vec(),
        ];
        for values in cases {
            let a = StringArray::from(values.clone());
            assert_eq!(
                string_bounds(&a),
                (min_string(&a), max_string(&a)),
                "{values:?}"
            );
        }
    }

    fn sample(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids = Int64Array::from_iter_values(0..rows);
        let names = StringArray::from_iter((0..rows).map(|i| {
            if i % 7 == 0 {
                None
            } else {
                Some(format!("n{i}"))
            }
        }));
        RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(names)]).unwrap()
    }

    /// Gathering rows block by block while encoding writes exactly the bytes that
    /// encoding the gathered batch does.
    #[test]
    fn gathered_segment_matches_the_gathered_batch() {
        let parts = [sample(40_000), sample(3), sample(25_000)];
        let order: Vec<(usize, usize)> = (0..68_003usize)
            .map(|k| {
                let b = k % 3;
                let n = parts[b].num_rows();
                (b, (k * 7919) % n)
            })
            .collect();
        let refs: Vec<&RecordBatch> = parts.iter().collect();
        let batch = arrow::compute::interleave_record_batch(&refs, &order).unwrap();
        for codecs in [[Codec::Raw, Codec::Lz4], [Codec::Az64, Codec::Zstd]] {
            let whole = write_segment(&batch, &codecs).unwrap();
            let gathered = write_segment_gathered(&parts, &order, &codecs).unwrap();
            assert_eq!(whole, gathered, "{codecs:?}");
        }
        assert!(write_segment_gathered(&[], &[], &[]).is_err());
    }

    #[test]
    fn round_trip_every_codec_across_blocks() {
        for codec in [
            Codec::Raw,
            Codec::Lz4,
            Codec::Zstd,
            Codec::Az64,
            Codec::RunLength,
            Codec::Delta,
            Codec::Delta32k,
            Codec::Mostly8,
            Codec::Mostly16,
            Codec::Mostly32,
            Codec::Text255,
            Codec::Text32k,
        ] {
            let batch = sample(BLOCK_ROWS as i64 + 10);
            let bytes = write_segment(&batch, &[codec, codec]).unwrap();
            let r = SegmentReader::open("t/s0/x", bytes).unwrap();
            assert_eq!(r.row_count(), batch.num_rows() as u64);
            let got = r.read_batches(None).unwrap();
            assert_eq!(got.len(), 2);
            let merged = arrow::compute::concat_batches(&batch.schema(), &got).unwrap();
            assert_eq!(merged, batch);
            let meta = &r.footer().columns[0].blocks[1];
            assert_eq!(meta.min, Some(ZoneValue::Int(BLOCK_ROWS as i64)));
            assert_eq!(meta.max, Some(ZoneValue::Int(BLOCK_ROWS as i64 + 9)));
            let only_names = r.read_batches(Some(&[1])).unwrap();
            assert_eq!(only_names[0].num_columns(), 1);
            let second_only = r.read_blocks(Some(&[0]), Some(&[false, true])).unwrap();
            assert_eq!(second_only.len(), 1);
            assert_eq!(second_only[0].num_rows(), 10);
        }
    }

    #[tokio::test]
    async fn ranged_reads_fetch_only_what_a_scan_needs() {
        use object_store::memory::InMemory;
        use object_store::{ObjectStoreExt, PutPayload};
        let store = InMemory::new();
        let batch = sample(BLOCK_ROWS as i64 * 2 + 3);
        let bytes = write_segment(&batch, &[Codec::Zstd, Codec::Lz4]).unwrap();
        let location = Path::from("tables/1/slice-0/a.bseg");
        store
            .put(&location, PutPayload::from_bytes(bytes.clone()))
            .await
            .unwrap();

        let mut r = SegmentReader::open_footer(&store, &location).await.unwrap();
        assert_eq!(r.row_count(), batch.num_rows() as u64);
        // Nothing fetched yet: decoding a block is an error, not garbage.
        assert!(r.read_blocks(Some(&[1]), None).is_err());
        r.fetch_blocks(&store, &[1], Some(&[false, false, true]))
            .await
            .unwrap();
        let last = r
            .read_blocks(Some(&[1]), Some(&[false, false, true]))
            .unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].column(0), &batch.column(1).slice(BLOCK_ROWS * 2, 3));
        r.fetch_blocks(&store, &[0, 1], None).await.unwrap();
        let all = r.read_batches(None).unwrap();
        assert_eq!(
            arrow::compute::concat_batches(&batch.schema(), &all).unwrap(),
            batch
        );

        // A truncated object is refused by name.
        let cut = Path::from("tables/1/slice-0/cut.bseg");
        store
            .put(&cut, PutPayload::from_bytes(bytes.slice(..bytes.len() - 5)))
            .await
            .unwrap();
        let err = SegmentReader::open_footer(&store, &cut)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("tables/1/slice-0/cut.bseg"), "{err}");
    }

    #[test]
    fn empty_segment_round_trips() {
        let batch = sample(0);
        let bytes = write_segment(&batch, &[Codec::Raw, Codec::Raw]).unwrap();
        let r = SegmentReader::open("empty", bytes).unwrap();
        assert_eq!(r.row_count(), 0);
        assert!(r.read_batches(None).unwrap().is_empty());
    }

    #[test]
    fn truncation_and_bit_flips_are_errors_not_panics() {
        let bytes = write_segment(&sample(1000), &[Codec::Lz4, Codec::Zstd]).unwrap();
        for cut in [0, 7, 20, bytes.len() / 2, bytes.len() - 1] {
            let err = SegmentReader::open("tables/1/slice-0/x.bseg", bytes.slice(..cut));
            assert!(err.is_err(), "cut at {cut} accepted");
        }
        for pos in (0..bytes.len()).step_by(97) {
            let mut v = bytes.to_vec();
            v[pos] ^= 0x5a;
            let outcome =
                SegmentReader::open("x", Bytes::from(v)).and_then(|r| r.read_batches(None));
            if let Ok(batches) = outcome {
                // A flip that no check sees must not change the data.
                let merged =
                    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
                assert_eq!(merged, sample(1000), "silent corruption at byte {pos}");
            }
        }
    }

    #[test]
    fn newer_version_is_rejected_by_name() {
        let batch = sample(3);
        let mut footer_bytes = write_segment(&batch, &[Codec::Raw, Codec::Raw])
            .unwrap()
            .to_vec();
        // Rewrite the footer with version 99 and a fresh checksum.
        let t = footer_bytes.len() - TRAILER_LEN;
        let len = u32::from_le_bytes(footer_bytes[t..t + 4].try_into().unwrap()) as usize;
        let (mut footer, _): (SegmentFooter, usize) =
            bincode::serde::decode_from_slice(&footer_bytes[t - len..t], bincode_config()).unwrap();
        footer.format_version = 99;
        let new = bincode::serde::encode_to_vec(&footer, bincode_config()).unwrap();
        footer_bytes.truncate(t - len);
        footer_bytes.extend_from_slice(&new);
        footer_bytes.extend_from_slice(&(new.len() as u32).to_le_bytes());
        footer_bytes.extend_from_slice(&crc32fast::hash(&new).to_le_bytes());
        footer_bytes.extend_from_slice(MAGIC);
        let err = SegmentReader::open("tables/9/slice-1/abc.bseg", Bytes::from(footer_bytes))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("version 99") && err.contains("tables/9/slice-1/abc.bseg"),
            "{err}"
        );
    }
}
