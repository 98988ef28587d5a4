//! `REPEAT`, `LPAD` and `RPAD` with a bound on the string they build. DataFusion's own
//! versions build whatever is asked — `repeat('x', 2000000000)` allocates 2 GB and takes
//! a node's memory with it — so each is DataFusion's function behind a check that the
//! result of every row stays within [`MAX_STRING_BYTES`], failing otherwise with
//! PostgreSQL's `54000 requested length too large`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use super::sql_error;

/// The longest string a function may build: 16 MB, Redshift's largest value (a SUPER;
/// a VARCHAR holds at most 65,535 bytes) and its longest statement.
pub const MAX_STRING_BYTES: i64 = 16 * 1024 * 1024;

const PROGRAM_LIMIT_EXCEEDED: &str = "54000";

/// How a function's result length follows from its arguments.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Growth {
    /// `repeat(s, n)`: the bytes of `s` times `n`.
    Repeat,
    /// `lpad(s, n [, fill])`: `n` characters, so at least `n` bytes.
    Pad,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
}

pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::{string, unicode};
    [
        (string::repeat(), Growth::Repeat),
        (unicode::lpad(), Growth::Pad),
        (unicode::rpad(), Growth::Pad),
    ]
    .into_iter()
    .map(|(inner, growth)| ScalarUDF::new_from_impl(Bounded { inner, growth }))
    .collect()
}

/// A row's argument `i` as an Int64 array (scalars as one row).
fn int_arg(args: &[ColumnarValue], i: usize) -> Result<Option<ArrayRef>> {
    let Some(a) = args.get(i) else {
        return Ok(None);
    };
    let a = a.to_array(1)?;
    Ok(Some(arrow::compute::cast(&a, &DataType::Int64)?))
}

impl Bounded {
    fn check(&self, args: &[ColumnarValue]) -> Result<()> {
        let Some(counts) = int_arg(args, 1)? else {
            return Ok(());
        };
        let counts = counts.as_primitive::<Int64Type>();
        let widths = match self.growth {
            Growth::Repeat => Some(arrow::compute::kernels::length::length(
                &args[0].to_array(1)?,
            )?),
            Growth::Pad => None,
        };
        let widths = widths
            .map(|w| arrow::compute::cast(&w, &DataType::Int64))
            .transpose()?;
        // Either argument may be a scalar (one row) standing for every row.
        let rows = counts.len().max(widths.as_ref().map_or(0, |w| w.len()));
        for row in 0..rows {
            let c = if counts.len() == 1 { 0 } else { row };
            if counts.is_null(c) {
                continue;
            }
            let n = counts.value(c).max(0);
            let width = match &widths {
                Some(w) => {
                    let w = w.as_primitive::<Int64Type>();
                    let r = if w.len() == 1 { 0 } else { row };
                    if w.is_null(r) { 0 } else { w.value(r) }
                }
                None => 1,
            };
            if n.saturating_mul(width) > MAX_STRING_BYTES {
                return Err(sql_error(
                    PROGRAM_LIMIT_EXCEEDED,
                    format!(
                        "requested length too large: {}() would build a string of more than \
                         {MAX_STRING_BYTES} bytes",
                        self.inner.name()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args.args)?;
        self.inner.invoke_with_args(args)
    }
}
