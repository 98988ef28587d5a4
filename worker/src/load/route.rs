//! Where converted rows go: IDENTITY values, the target slice of each row by the table's
//! distribution, rows grouped by slice, and the sort order segments are written in.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use basalt_storage::layout::SliceId;

use super::*;
use arrow::compute::{SortColumn, lexsort_to_indices};
use basalt_storage::zorder::zorder_indices;

/// `batch` with IDENTITY columns numbered: row i gets `start + (offset + i) * step`.
pub fn fill_identity(
    batch: &RecordBatch,
    identity: &[(usize, i64, i64)],
    offset: u64,
) -> arrow::error::Result<RecordBatch> {
    if identity.is_empty() {
        return Ok(batch.clone());
    }
    let mut columns = batch.columns().to_vec();
    for &(column, start, step) in identity {
        let values = arrow::array::Int64Array::from_iter_values(
            (0..batch.num_rows() as i64).map(|i| start + (offset as i64 + i) * step),
        );
        let target = batch.schema().field(column).data_type().clone();
        columns[column] = arrow::compute::cast(&values, &target)?;
    }
    RecordBatch::try_new(batch.schema(), columns)
}

/// Target slice of every row of `batch`.
pub fn route(batch: &RecordBatch, routing: &Routing, offset: u64) -> Vec<SliceId> {
    match routing {
        Routing::Key {
            column,
            slice_count,
        } => basalt_storage::hash::slices_for_keys(batch.column(*column), *slice_count)
            .map(|s| s.into_iter().map(SliceId::Slice).collect())
            .unwrap_or_else(|_| vec![SliceId::Slice(0); batch.num_rows()]),
        Routing::Even { slice_count, start } => (0..batch.num_rows() as u64)
            .map(|i| SliceId::Slice(((start + offset + i) % u64::from(*slice_count)) as u32))
            .collect(),
        Routing::All => vec![SliceId::All; batch.num_rows()],
    }
}

/// The rows of one converted batch that go to one slice: all of them, or those at
/// `rows` (in input order). Kept as row numbers rather than copied out, so a row is
/// copied only once, when its segment is written.
#[derive(Debug, Clone)]
pub struct SliceRows {
    pub batch: RecordBatch,
    pub rows: Option<Arc<[u32]>>,
}

impl SliceRows {
    pub fn len(&self) -> usize {
        self.rows
            .as_ref()
            .map_or(self.batch.num_rows(), |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row number in `batch` of this part's `i`th row.
    pub fn row(&self, i: usize) -> usize {
        self.rows.as_ref().map_or(i, |r| r[i] as usize)
    }

    /// This part's values of column `c`, in order.
    pub fn column(&self, c: usize) -> arrow::error::Result<ArrayRef> {
        let column = self.batch.column(c);
        match &self.rows {
            None => Ok(column.clone()),
            Some(rows) => {
                let indices = arrow::array::UInt32Array::from(rows.to_vec());
                arrow::compute::take(column, &indices, None)
            }
        }
    }
}

/// Rows of `batch` per target slice: the whole batch when all go to one slice, a slice
/// of it per target when the rows are grouped by target (as sorted pieces are), else
/// row numbers.
pub fn split_by_slice(batch: &RecordBatch, targets: &[SliceId]) -> BTreeMap<SliceId, SliceRows> {
    let mut runs: Vec<(SliceId, usize, usize)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match runs.last_mut() {
            Some((slice, _, end)) if slice == t => *end = i + 1,
            _ => runs.push((*t, i, i + 1)),
        }
    }
    let grouped: BTreeMap<SliceId, (usize, usize)> =
        runs.iter().map(|&(s, a, b)| (s, (a, b))).collect();
    if grouped.len() == runs.len() {
        return grouped
            .into_iter()
            .map(|(s, (a, b))| {
                let part = SliceRows {
                    batch: batch.slice(a, b - a),
                    rows: None,
                };
                (s, part)
            })
            .collect();
    }
    let mut rows: BTreeMap<SliceId, Vec<u32>> = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        rows.entry(*t).or_default().push(i as u32);
    }
    let whole = rows.len() == 1;
    rows.into_iter()
        .map(|(s, indices)| {
            let rows = (!whole).then(|| Arc::from(indices));
            let part = SliceRows {
                batch: batch.clone(),
                rows,
            };
            (s, part)
        })
        .collect()
}

/// The order of rows by `keys`: lexicographic (COMPOUND) or z-order (INTERLEAVED).
pub(crate) fn sort_indices(
    keys: &[arrow::array::ArrayRef],
    interleaved: bool,
) -> crate::Result<arrow::array::UInt32Array> {
    if interleaved {
        return Ok(zorder_indices(keys)?);
    }
    let columns: Vec<SortColumn> = keys
        .iter()
        .map(|k| SortColumn {
            values: k.clone(),
            options: None,
        })
        .collect();
    Ok(lexsort_to_indices(&columns, None)?)
}
