//! Zone-map pruning: which blocks of a segment can hold rows that satisfy a scan's
//! predicate. The block min/max/null counts recorded in the segment footer are handed to
//! DataFusion's `PruningPredicate`, which proves for =, <, <=, >, >=, BETWEEN, IN and
//! IS NULL (and their AND/OR combinations) that a block has no matching row.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use basalt_storage::segment::{BlockMeta, SegmentReader, ZoneValue};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_optimizer::pruning::PruningPredicate;

/// The zone maps of one segment, seen as DataFusion pruning statistics over its blocks.
struct BlockStats<'a> {
    reader: &'a SegmentReader,
    table_schema: &'a SchemaRef,
    /// Per table column, its column in the segment (if the segment has it).
    in_segment: &'a [Option<usize>],
}

impl BlockStats<'_> {
    fn blocks(&self, column: &Column) -> Option<&[BlockMeta]> {
        let table_idx = self.table_schema.index_of(&column.name).ok()?;
        let idx = (*self.in_segment.get(table_idx)?)?;
        Some(&self.reader.footer().columns.get(idx)?.blocks)
    }

    fn zone(
        &self,
        column: &Column,
        pick: fn(&BlockMeta) -> &Option<ZoneValue>,
    ) -> Option<ArrayRef> {
        let data_type = self
            .table_schema
            .field_with_name(&column.name)
            .ok()?
            .data_type();
        let values = self.blocks(column)?.iter().map(pick);
        let ints = |values: &mut dyn Iterator<Item = &Option<ZoneValue>>| -> Int64Array {
            values
                .map(|v| match v {
                    Some(ZoneValue::Int(i)) => Some(*i),
                    _ => None,
                })
                .collect()
        };
        let array: ArrayRef = match data_type {
            DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond, _) => {
                let wide: ArrayRef = Arc::new(ints(&mut values.into_iter()));
                arrow::compute::cast(&wide, data_type).ok()?
            }
            DataType::Decimal128(p, s) => Arc::new(
                values
                    .map(|v| match v {
                        Some(ZoneValue::Decimal(d)) => Some(*d),
                        _ => None,
                    })
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(*p, *s)
                    .ok()?,
            ),
            DataType::Float32 | DataType::Float64 => {
                let wide: ArrayRef = Arc::new(
                    values
                        .map(|v| match v {
                            Some(ZoneValue::Float(f)) => Some(*f),
                            _ => None,
                        })
                        .collect::<Float64Array>(),
                );
                arrow::compute::cast(&wide, data_type).ok()?
            }
            DataType::Utf8 => Arc::new(
                values
                    .map(|v| match v {
                        Some(ZoneValue::Str(s)) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect::<StringArray>(),
            ),
            DataType::Boolean => Arc::new(
                values
                    .map(|v| match v {
                        Some(ZoneValue::Bool(b)) => Some(*b),
                        _ => None,
                    })
                    .collect::<BooleanArray>(),
            ),
            _ => return None,
        };
        Some(array)
    }
}

impl PruningStatistics for BlockStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.zone(column, |b| &b.min)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.zone(column, |b| &b.max)
    }

    fn num_containers(&self) -> usize {
        self.reader.block_count()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let blocks = self.blocks(column)?;
        Some(Arc::new(UInt64Array::from_iter_values(
            blocks.iter().map(|b| u64::from(b.null_count)),
        )))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let blocks = &self.reader.footer().columns.first()?.blocks;
        Some(Arc::new(UInt64Array::from_iter_values(
            blocks.iter().map(|b| u64::from(b.rows)),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// Which blocks of `reader` may hold rows matching `predicate`; `None` means read them all
/// (no predicate, or one the zone maps cannot judge). `in_segment` maps each column of
/// `table_schema` to its column in the segment; a column the segment lacks prunes
/// nothing.
pub fn blocks_to_read(
    reader: &SegmentReader,
    predicate: Option<&PruningPredicate>,
    table_schema: &SchemaRef,
    in_segment: &[Option<usize>],
) -> Option<Vec<bool>> {
    let predicate = predicate?;
    let stats = BlockStats {
        reader,
        table_schema,
        in_segment,
    };
    predicate.prune(&stats).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, RecordBatch};
    use arrow::datatypes::{Field, Schema};
    use basalt_storage::segment::{BLOCK_ROWS, Codec, write_segment};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};

    #[test]
    fn range_predicates_skip_blocks_outside_the_zone_maps() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let n = (BLOCK_ROWS * 3 + 5) as i32;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("k{:07}", i)),
                )),
            ],
        )
        .unwrap();
        let reader = SegmentReader::open(
            "t",
            write_segment(&batch, &[Codec::Lz4, Codec::Lz4]).unwrap(),
        )
        .unwrap();
        let check = |expr: Arc<dyn PhysicalExpr>, want: Vec<bool>| {
            let p = datafusion::physical_optimizer::pruning::PruningPredicateBuilder::new()
                .with_file_schema(schema.clone())
                .try_build(expr)
                .unwrap();
            assert_eq!(
                blocks_to_read(&reader, Some(&p), &schema, &[Some(0), Some(1)]),
                Some(want)
            );
        };
        let x = || col("x", &schema).unwrap();
        let cmp = |l, op, r| Arc::new(BinaryExpr::new(l, op, r)) as Arc<dyn PhysicalExpr>;
        // x > 2*BLOCK_ROWS + 10: only the last two blocks.
        check(
            cmp(x(), Operator::Gt, lit((BLOCK_ROWS * 2 + 10) as i32)),
            vec![false, false, true, true],
        );
        // x = 5: the first block only.
        check(
            cmp(x(), Operator::Eq, lit(5)),
            vec![true, false, false, false],
        );
        // BETWEEN as two comparisons, on strings.
        let s = || col("s", &schema).unwrap();
        let between = cmp(
            cmp(s(), Operator::GtEq, lit(format!("k{:07}", BLOCK_ROWS + 1))),
            Operator::And,
            cmp(s(), Operator::LtEq, lit(format!("k{:07}", BLOCK_ROWS + 2))),
        );
        check(between, vec![false, true, false, false]);
        // x < 0 matches nothing.
        check(
            cmp(x(), Operator::Lt, lit(0)),
            vec![false, false, false, false],
        );
    }
}
