//! Redshift's SQL functions that DataFusion lacks or spells differently, defined once here
//! because plan fragments carrying them run on the workers as well as on the leader: the
//! worker decodes a fragment's functions by name from its own registry, so both sides
//! register exactly [`scalar_udfs`] and [`aggregate_udfs`]. Errors carry their SQLSTATE in
//! the message (see [`sql_error`]) so that the class survives the trip back from a worker.

mod aggregate;
mod datetime;
mod format;
mod limits;
mod text;
mod varbyte;

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

pub use datetime::{
    TEMPORAL_TO_TEXT, TEXT_TO_TEMPORAL, parse_datetime_text, parse_temporal_text, sysdate,
};
pub use text::LIKE_ESCAPE;
pub use varbyte::decode as decode_varbyte;

/// SQLSTATEs the functions raise.
pub mod code {
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_OVERFLOW: &str = "22008";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    pub const NUMERIC_OUT_OF_RANGE: &str = "22003";
    pub const UNDEFINED_FUNCTION: &str = "42883";
}

/// Marker that puts a SQLSTATE into an error's text: `SQLSTATE 22023: message`. The
/// leader's error module recognises it wherever the error was raised.
pub const SQLSTATE_MARKER: &str = "SQLSTATE ";

/// An execution error with SQLSTATE `code`.
pub fn sql_error(code: &str, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{SQLSTATE_MARKER}{code}: {message}"))
}

/// `SQLSTATE xxxxx: message` anywhere in `text` → the code and the message.
pub fn parse_sql_error(text: &str) -> Option<(&str, &str)> {
    let at = text.find(SQLSTATE_MARKER)?;
    let rest = &text[at + SQLSTATE_MARKER.len()..];
    let code = rest.get(..5)?;
    let message = rest.get(5..)?.strip_prefix(": ")?;
    code.chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then_some((code, message.lines().next().unwrap_or(message)))
}

/// Every scalar function Basalt adds to DataFusion's, for leader and workers alike.
pub fn scalar_udfs() -> Vec<ScalarUDF> {
    let mut all = datetime::udfs();
    all.extend(format::udfs());
    all.extend(text::udfs());
    all.extend(varbyte::udfs());
    all.extend(limits::udfs());
    all
}

/// Every aggregate function Basalt adds to DataFusion's.
pub fn aggregate_udfs() -> Vec<AggregateUDF> {
    aggregate::udafs()
}

/// The functions, built once: the leader registers them for every statement.
static SCALARS: LazyLock<Vec<Arc<ScalarUDF>>> =
    LazyLock::new(|| scalar_udfs().into_iter().map(Arc::new).collect());
static AGGREGATES: LazyLock<Vec<Arc<AggregateUDF>>> =
    LazyLock::new(|| aggregate_udfs().into_iter().map(Arc::new).collect());

/// The (shared, built once) scalar function called `name`, for a plan rewrite that calls
/// one of Basalt's functions.
pub fn scalar_udf(name: &str) -> Option<Arc<ScalarUDF>> {
    SCALARS.iter().find(|f| f.name() == name).cloned()
}

/// Register [`scalar_udfs`] and [`aggregate_udfs`] (replacing DataFusion's functions of
/// the same names) in `registry`.
pub fn register(registry: &mut dyn datafusion::execution::FunctionRegistry) -> Result<()> {
    for f in SCALARS.iter() {
        registry.register_udf(f.clone())?;
    }
    for f in AGGREGATES.iter() {
        registry.register_udaf(f.clone())?;
    }
    Ok(())
}

type Eval = fn(&[ArrayRef], &DataType) -> Result<ArrayRef>;
/// The return type from the coerced argument types and the arguments that are constants.
type ReturnType = fn(&[DataType], &[Option<&ScalarValue>]) -> Result<DataType>;
type Coerce = fn(&[DataType]) -> Result<Vec<DataType>>;

/// A scalar function given by three plain functions: argument coercion (which also
/// checks the argument count), the return type of the coerced arguments, and evaluation
/// over whole argument arrays (scalars are expanded; an all-scalar call returns a scalar).
#[derive(Debug)]
struct Udf {
    name: &'static str,
    aliases: Vec<String>,
    signature: Signature,
    coerce: Coerce,
    ret: ReturnType,
    eval: Eval,
}

fn udf(name: &'static str, coerce: Coerce, ret: ReturnType, eval: Eval) -> ScalarUDF {
    udf_aliased(name, &[], coerce, ret, eval)
}

fn udf_aliased(
    name: &'static str,
    aliases: &[&str],
    coerce: Coerce,
    ret: ReturnType,
    eval: Eval,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(Udf {
        name,
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        signature: Signature::user_defined(Volatility::Immutable),
        coerce,
        ret,
        eval,
    })
}

impl PartialEq for Udf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Udf {}
impl Hash for Udf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        (self.coerce)(arg_types)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(arg_types, &vec![None; arg_types.len()])
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = (self.ret)(&types, args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.name, t, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let out = (self.eval)(&arrays, args.return_field.data_type())?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// The argument-count check every coercion starts with.
fn arity(name: &str, args: &[DataType], min: usize, max: usize) -> Result<()> {
    if args.len() < min || args.len() > max {
        return Err(sql_error(
            code::UNDEFINED_FUNCTION,
            format!(
                "function {name} with {} argument{} does not exist",
                args.len(),
                if args.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// The type a date/time argument is evaluated as: timestamps keep their zone (as
/// microseconds), dates and text become timestamps without one; anything else is a call
/// of a function that does not exist.
fn timestamp_arg(name: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        DataType::Date32 | DataType::Date64 | DataType::Null => Ok(TIMESTAMP),
        t if is_text(t) => Ok(TIMESTAMP),
        other => Err(sql_error(
            code::UNDEFINED_FUNCTION,
            format!("function {name} does not exist for an argument of type {other}"),
        )),
    }
}

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{physical_plan_from_bytes, physical_plan_to_bytes};

    fn context() -> SessionContext {
        let mut ctx = SessionContext::new();
        register(&mut ctx).unwrap();
        ctx
    }

    /// A plan that filters and projects with these functions decodes and runs in a
    /// registry that has them (a worker's), and not in one that lacks them.
    #[tokio::test]
    async fn plans_using_the_functions_travel_to_workers() {
        let leader = context();
        leader
            .sql("create table t as values (timestamp '2020-01-31 00:00:00', 'a1b2'), (timestamp '2020-03-05 00:00:00', 'c')")
            .await
            .unwrap();
        let plan = leader
            .sql(
                "select regexp_count(column2, '[0-9]') as n, dateadd('month', 1, column1) as m \
                  from t where datediff('day', column1, timestamp '2020-03-01 00:00:00') > 0",
            )
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let bytes = physical_plan_to_bytes(plan).unwrap();
        let worker = context();
        let decoded = physical_plan_from_bytes(&bytes, &worker.task_ctx()).unwrap();
        let rows = collect(decoded, worker.task_ctx()).await.unwrap();
        assert_eq!(
            pretty_format_batches(&rows).unwrap().to_string(),
            "+---+---------------------+\n\
             | n | m                   |\n\
             +---+---------------------+\n\
             | 2 | 2020-02-29T00:00:00 |\n\
             +---+---------------------+"
        );
        assert!(physical_plan_from_bytes(&bytes, &SessionContext::new().task_ctx()).is_err());
    }

    #[test]
    fn sqlstates_survive_as_text() {
        let e = sql_error(code::INVALID_PARAMETER_VALUE, "bad part");
        let text = format!("worker 1 failed: {e}");
        assert_eq!(parse_sql_error(&text), Some(("22023", "bad part")));
        assert_eq!(parse_sql_error("no state here"), None);
    }
}
