//! The value arrays that dictionary- and run-based codecs keep beside their codes: one
//! Arrow IPC stream (a single field `v`, one record batch) compressed with LZ4, so any
//! column type works and a reader checks the type it gets back.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

/// Serialize and compress `values`.
pub(crate) fn pack_values(values: &ArrayRef) -> Option<Vec<u8>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "v",
        values.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new_with_options(
        schema.clone(),
        vec![values.clone()],
        &RecordBatchOptions::new().with_row_count(Some(values.len())),
    )
    .ok()?;
    let mut ipc = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut ipc, &schema).ok()?;
        w.write(&batch).ok()?;
        w.finish().ok()?;
    }
    Some(lz4_flex::compress_prepend_size(&ipc))
}

/// Inverse of [`pack_values`].
pub(crate) fn unpack_values(bytes: &[u8]) -> Result<ArrayRef, String> {
    let ipc = lz4_flex::decompress_size_prepended(bytes).map_err(|e| e.to_string())?;
    let mut reader = StreamReader::try_new(Cursor::new(ipc), None).map_err(|e| e.to_string())?;
    let batch = reader
        .next()
        .ok_or_else(|| "value block has no batch".to_string())?
        .map_err(|e| e.to_string())?;
    if batch.num_columns() != 1 {
        return Err("value block holds more than one column".into());
    }
    Ok(batch.column(0).clone())
}
