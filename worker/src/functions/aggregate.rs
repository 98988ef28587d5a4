//! PERCENTILE_DISC, the inverse distribution function DataFusion does not have:
//! `PERCENTILE_DISC(p) WITHIN GROUP (ORDER BY x)` is the first value of `x`, in that
//! order, whose cumulative distribution reaches `p`.

use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{SortOptions, concat, filter, is_not_null, sort_to_indices, take};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use super::{arity, code, sql_error};

pub(super) fn udafs() -> Vec<AggregateUDF> {
    vec![AggregateUDF::new_from_impl(PercentileDisc {
        signature: Signature::user_defined(Volatility::Immutable),
    })]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PercentileDisc {
    signature: Signature,
}

impl AggregateUDFImpl for PercentileDisc {
    fn name(&self) -> &str {
        "percentile_disc"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn supports_within_group_clause(&self) -> bool {
        true
    }
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity("percentile_disc", args, 2, 2)?;
        Ok(vec![args[0].clone(), DataType::Float64])
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let fraction = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value().clone() {
                ScalarValue::Float64(v) => v,
                _ => None,
            })
            .ok_or_else(|| {
                sql_error(
                    code::INVALID_PARAMETER_VALUE,
                    "the percentile of percentile_disc must be a constant",
                )
            })?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(sql_error(
                code::INVALID_PARAMETER_VALUE,
                format!("percentile value {fraction} is not between 0 and 1"),
            ));
        }
        let descending = args.order_bys.first().is_some_and(|s| s.options.descending);
        Ok(Box::new(DiscAccumulator {
            data_type: args.return_type().clone(),
            fraction,
            descending,
            values: vec![],
        }))
    }
}

#[derive(Debug)]
struct DiscAccumulator {
    data_type: DataType,
    fraction: f64,
    descending: bool,
    /// Non-null inputs seen so far, batch by batch.
    values: Vec<ArrayRef>,
}

impl DiscAccumulator {
    fn all(&self) -> Result<ArrayRef> {
        if self.values.is_empty() {
            return Ok(arrow::array::new_empty_array(&self.data_type));
        }
        let parts: Vec<&dyn Array> = self.values.iter().map(|a| a.as_ref()).collect();
        Ok(concat(&parts)?)
    }
}

impl Accumulator for DiscAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = &values[0];
        let kept = if v.null_count() > 0 {
            filter(v, &is_not_null(v)?)?
        } else {
            v.clone()
        };
        if !kept.is_empty() {
            self.values.push(kept);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if !lists.is_null(i) {
                self.update_batch(&[lists.value(i)])?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let all = self.all()?;
        self.values = vec![all.clone()];
        Ok(vec![
            SingleRowListArrayBuilder::new(all).build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let all = self.all()?;
        if all.is_empty() {
            return ScalarValue::try_from(&self.data_type);
        }
        let order = sort_to_indices(
            &all,
            Some(SortOptions {
                descending: self.descending,
                nulls_first: false,
            }),
            None,
        )?;
        let n = all.len();
        let rank = ((self.fraction * n as f64).ceil() as usize).clamp(1, n);
        let picked = take(&all, &order.slice(rank - 1, 1), None)?;
        ScalarValue::try_from_array(&picked, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .values
                .iter()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }
}
