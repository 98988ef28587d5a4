//! Table statistics gathered while COPY converts its rows, so that a COPY into an empty
//! table (STATUPDATE's default) need not read its new segments back to analyze them.
//! Per column: the non-null count, and the partial states of DataFusion's own
//! `approx_distinct`, `min` and `max` accumulators. Each worker returns its states; the
//! leader merges them ([`merge`]) into exactly what ANALYZE's aggregate query computes
//! over the same rows, since that query merges the same partial states.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::format::DEFAULT_CAST_OPTIONS;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{Accumulator, AggregateUDF};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use serde::{Deserialize, Serialize};

/// One worker's statistics of the rows it loaded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadStats {
    pub rows: u64,
    /// Per column, its non-NULL values.
    pub non_null: Vec<u64>,
    /// One row of accumulator states (per column: approx_distinct's, min's, max's), as
    /// an Arrow IPC stream.
    pub states_ipc: Vec<u8>,
}

/// One column's merged statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    pub non_null: u64,
    pub distinct: u64,
    /// Bounds as `CAST(… AS VARCHAR)` renders them; None when every value is NULL.
    pub min: Option<String>,
    pub max: Option<String>,
}

/// Column types gathered during a load: those whose bounds render as text without
/// session settings (time zones, date styles) and that `approx_distinct` takes. A table
/// with any other type is analyzed by query.
fn supported(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Decimal128(_, _)
            | DataType::Date32
            | DataType::Utf8
            | DataType::Boolean
    )
}

/// The smallest and largest values of `strings` as a two-value array (empty when every
/// value is NULL), which `min` and `max` reduce to the same bounds as the whole column.
fn string_bounds(strings: &arrow::array::StringArray) -> arrow::array::StringArray {
    match basalt_storage::segment::string_bounds(strings) {
        (Some(lo), Some(hi)) => arrow::array::StringArray::from(vec![lo, hi]),
        _ => arrow::array::StringArray::new_null(0),
    }
}

/// A fresh accumulator of `udaf` over one column of `field`'s type, as the aggregate
/// `udaf(column)` makes it.
fn accumulator(udaf: &AggregateUDF, field: &FieldRef) -> Result<Box<dyn Accumulator>> {
    let schema = Schema::new(vec![field.clone()]);
    let expr: Arc<dyn PhysicalExpr> = Arc::new(Column::new(field.name(), 0));
    let fields = [field.clone()];
    let return_field = udaf.return_field(&fields)?;
    udaf.accumulator(AccumulatorArgs {
        return_field,
        schema: &schema,
        ignore_nulls: false,
        order_bys: &[],
        is_reversed: false,
        name: udaf.name(),
        is_distinct: false,
        exprs: &[expr],
        expr_fields: &fields,
    })
}

/// Statistics being gathered: update with batches, merge with other builders, then
/// [`Self::finish`] for the leader.
#[derive(Debug)]
pub struct StatsBuilder {
    rows: u64,
    non_null: Vec<u64>,
    /// Per column: approx_distinct, min, max.
    accumulators: Vec<[Box<dyn Accumulator>; 3]>,
}

impl StatsBuilder {
    /// A builder for rows of `schema`; None when a column's type is not gathered here.
    pub fn new(schema: &Schema) -> Option<Self> {
        if !schema.fields().iter().all(|f| supported(f.data_type())) {
            return None;
        }
        let udafs = [approx_distinct_udaf(), min_udaf(), max_udaf()];
        let accumulators = schema
            .fields()
            .iter()
            .map(|f| {
                Ok([
                    accumulator(&udafs[0], f)?,
                    accumulator(&udafs[1], f)?,
                    accumulator(&udafs[2], f)?,
                ])
            })
            .collect::<Result<Vec<_>>>()
            .ok()?;
        Some(Self {
            rows: 0,
            non_null: vec![0; schema.fields().len()],
            accumulators,
        })
    }

    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        for ((column, accumulators), non_null) in batch
            .columns()
            .iter()
            .zip(&mut self.accumulators)
            .zip(&mut self.non_null)
        {
            *non_null += (column.len() - column.null_count()) as u64;
            let [distinct, min, max] = accumulators;
            distinct.update_batch(std::slice::from_ref(column))?;
            // Text bounds through the storage's faster one-pass bounds.
            let bounds = match column.as_string_opt::<i32>() {
                Some(strings) => &(Arc::new(string_bounds(strings)) as ArrayRef),
                None => column,
            };
            min.update_batch(std::slice::from_ref(bounds))?;
            max.update_batch(std::slice::from_ref(bounds))?;
        }
        Ok(())
    }

    /// Fold `other`'s rows in, as DataFusion merges partial aggregates.
    pub fn merge(&mut self, mut other: StatsBuilder) -> Result<()> {
        self.rows += other.rows;
        for (mine, theirs) in self.non_null.iter_mut().zip(&other.non_null) {
            *mine += theirs;
        }
        for (mine, theirs) in self.accumulators.iter_mut().zip(&mut other.accumulators) {
            for (m, t) in mine.iter_mut().zip(theirs.iter_mut()) {
                let state = t
                    .state()?
                    .iter()
                    .map(ScalarValue::to_array)
                    .collect::<Result<Vec<_>>>()?;
                m.merge_batch(&state)?;
            }
        }
        Ok(())
    }

    /// The states, ready to send.
    pub fn finish(mut self) -> Result<LoadStats> {
        let mut fields = vec![];
        let mut arrays: Vec<ArrayRef> = vec![];
        for (c, accumulators) in self.accumulators.iter_mut().enumerate() {
            for (k, a) in accumulators.iter_mut().enumerate() {
                for (j, s) in a.state()?.iter().enumerate() {
                    let array = s.to_array()?;
                    fields.push(Field::new(
                        format!("c{c}_{k}_{j}"),
                        array.data_type().clone(),
                        true,
                    ));
                    arrays.push(array);
                }
            }
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
        let mut states_ipc = vec![];
        {
            let mut w =
                arrow::ipc::writer::StreamWriter::try_new(&mut states_ipc, &batch.schema())?;
            w.write(&batch)?;
            w.finish()?;
        }
        Ok(LoadStats {
            rows: self.rows,
            non_null: self.non_null,
            states_ipc,
        })
    }
}

/// Every worker's statistics of rows of `schema` merged: the row count and per column
/// its summary.
pub fn merge(schema: &Schema, parts: &[LoadStats]) -> Result<(u64, Vec<ColumnSummary>)> {
    let unsupported = || DataFusionError::Plan("statistics not gathered for this table".into());
    let mut all = StatsBuilder::new(schema).ok_or_else(unsupported)?;
    for p in parts {
        if p.non_null.len() != all.non_null.len() {
            return Err(unsupported());
        }
        all.rows += p.rows;
        for (mine, theirs) in all.non_null.iter_mut().zip(&p.non_null) {
            *mine += theirs;
        }
        let reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(&p.states_ipc), None)?;
        for batch in reader {
            let batch = batch?;
            let mut at = 0;
            for accumulators in all.accumulators.iter_mut() {
                for a in accumulators.iter_mut() {
                    let n = a.state()?.len();
                    let states = batch.columns().get(at..at + n).ok_or_else(unsupported)?;
                    a.merge_batch(states)?;
                    at += n;
                }
            }
        }
    }
    let text = |v: ScalarValue| -> Result<Option<String>> {
        if v.is_null() {
            return Ok(None);
        }
        let array = v.to_array()?;
        let text =
            arrow::compute::cast_with_options(&array, &DataType::Utf8, &DEFAULT_CAST_OPTIONS)?;
        let text = text.as_string::<i32>();
        Ok((!text.is_null(0)).then(|| text.value(0).to_string()))
    };
    let mut out = Vec::with_capacity(all.non_null.len());
    for (accumulators, non_null) in all.accumulators.iter_mut().zip(&all.non_null) {
        let distinct = match accumulators[0].evaluate()? {
            ScalarValue::UInt64(Some(v)) => v,
            ScalarValue::Int64(Some(v)) => v.max(0) as u64,
            _ => 0,
        };
        out.push(ColumnSummary {
            non_null: *non_null,
            distinct,
            min: text(accumulators[1].evaluate()?)?,
            max: text(accumulators[2].evaluate()?)?,
        });
    }
    Ok((all.rows, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Int16Array, Int32Array, Int64Array, StringArray,
    };
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("i2", DataType::Int16, true),
            Field::new("i4", DataType::Int32, true),
            Field::new("i8", DataType::Int64, true),
            Field::new("d", DataType::Decimal128(15, 2), true),
            Field::new("dt", DataType::Date32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("none", DataType::Utf8, true),
        ]))
    }

    /// `n` rows with NULLs, repeats and negative values, differing with `seed`.
    fn batch(seed: i64, n: usize) -> RecordBatch {
        let v = |i: usize| (i as i64 * 7919 + seed * 104_729) % 5003 - 2000;
        let null = |i: usize| (i as i64 + seed) % 11 == 0;
        let opt = |i: usize| (!null(i)).then(|| v(i));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int16Array::from_iter(
                (0..n).map(|i| opt(i).map(|x| x as i16)),
            )),
            Arc::new(Int32Array::from_iter(
                (0..n).map(|i| opt(i).map(|x| x as i32 * 1000)),
            )),
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| opt(i).map(|x| x * 1_000_003)),
            )),
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| opt(i).map(|x| i128::from(x) * 37)))
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from_iter(
                (0..n).map(|i| opt(i).map(|x| x as i32 + 9000)),
            )),
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| opt(i).map(|x| format!("v{}", x.rem_euclid(300)))),
            )),
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| opt(i).map(|x| x % 3 == 0)),
            )),
            Arc::new(StringArray::from_iter((0..n).map(|_| None::<String>))),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    /// Statistics gathered per piece, merged per worker and then across workers, equal
    /// what ANALYZE's aggregate query computes over all the rows.
    #[tokio::test]
    async fn merged_states_match_the_aggregate_query() {
        let schema = schema();
        let batches: Vec<RecordBatch> = (0..5).map(|k| batch(k, 2000 + k as usize * 777)).collect();
        let mut parts = vec![];
        for worker in batches.chunks(2) {
            let mut total = StatsBuilder::new(&schema).unwrap();
            for b in worker {
                let mut piece = StatsBuilder::new(&schema).unwrap();
                piece.update(b).unwrap();
                total.merge(piece).unwrap();
            }
            parts.push(total.finish().unwrap());
        }
        let (rows, got) = merge(&schema, &parts).unwrap();

        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema.clone(), vec![batches.clone()]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let mut items = vec!["count(*)".to_string()];
        for f in schema.fields() {
            let c = f.name();
            items.push(format!("count({c})"));
            items.push(format!("approx_distinct({c})"));
            items.push(format!("CAST(min({c}) AS VARCHAR)"));
            items.push(format!("CAST(max({c}) AS VARCHAR)"));
        }
        let sql = format!("SELECT {} FROM t", items.join(", "));
        let result = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let row = &result[0];
        let int = |k: usize| {
            let a = arrow::compute::cast(row.column(k), &DataType::UInt64).unwrap();
            a.as_primitive::<arrow::datatypes::UInt64Type>().value(0)
        };
        let text = |k: usize| {
            let a = arrow::compute::cast(row.column(k), &DataType::Utf8).unwrap();
            let a = a.as_string::<i32>();
            (!a.is_null(0)).then(|| a.value(0).to_string())
        };
        assert_eq!(rows, int(0));
        for (c, g) in got.iter().enumerate() {
            let at = 1 + 4 * c;
            let want = ColumnSummary {
                non_null: int(at),
                distinct: int(at + 1),
                min: text(at + 2),
                max: text(at + 3),
            };
            assert_eq!(g, &want, "column {}", schema.field(c).name());
        }
        assert!(got[5].distinct > 100 && got[7].min.is_none());
        // A type not gathered during load: the table is analyzed by query.
        let other = Schema::new(vec![Field::new(
            "t",
            DataType::Time64(arrow::datatypes::TimeUnit::Microsecond),
            true,
        )]);
        assert!(StatsBuilder::new(&other).is_none());
    }
}
