//! Statements DataFusion plans whole: SELECT, INSERT and EXPLAIN.

use std::sync::Arc;

use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{collect, execute_stream};
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;

use crate::commands::context::{Outcome, StatementContext};
use crate::error::{Result, code};
use crate::plan::statement::{alias_repeated_select_items, pg_named_schema, plan_statement};
use crate::plan::table::WriteLog;
use crate::sql_err;

/// Whether DataFusion plans `stmt` as a whole.
pub fn goes_to_datafusion(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. }
    )
}

impl StatementContext {
    pub(crate) async fn run_datafusion(
        &mut self,
        stmt: Statement,
        params: Vec<ScalarValue>,
    ) -> Result<Outcome> {
        let writes = Arc::new(WriteLog::default());
        let (view, pin) = self.pinned_view();
        let (state, _, reads) = self.statement_state(view.clone(), writes.clone(), None)?;
        let names_from = stmt.clone();
        let mut stmt = stmt;
        alias_repeated_select_items(&mut stmt);
        let mut plan = plan_statement(&state, stmt).await?;
        if !params.is_empty() {
            plan = plan.with_param_values(ParamValues::List(
                params.into_iter().map(Into::into).collect(),
            ))?;
        }
        self.check_plan(&view, &state, &plan, &reads)?;
        // EXPLAIN draws the plan Basalt runs in Redshift's form; EXPLAIN VERBOSE keeps
        // DataFusion's plans at every stage.
        if let LogicalPlan::Explain(e) = &plan
            && !e.verbose
        {
            let physical = state.create_physical_plan(&e.plan).await?;
            let lines = crate::plan::explain::redshift_plan(&physical, &view);
            let schema = crate::plan::explain::query_plan_schema();
            let batch = datafusion::arrow::array::RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(datafusion::arrow::array::StringArray::from(lines))],
            )
            .map_err(datafusion::error::DataFusionError::from)?;
            return Ok(Outcome::Rows {
                schema: schema.clone(),
                stream: Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::iter([Ok(batch)]),
                )),
            });
        }
        let dml = match &plan {
            LogicalPlan::Dml(d) => Some(d.op.clone()),
            _ => None,
        };
        let physical = state.create_physical_plan(&plan).await?;
        match dml {
            Some(WriteOp::Insert(_)) => {
                let batches = collect(physical, state.task_ctx()).await?;
                let count = crate::commands::dml::inserted_count(&batches);
                self.record(writes.take())?;
                Ok(Outcome::Command(format!("INSERT 0 {count}")))
            }
            Some(op) => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "{op} is not supported yet"
            )),
            None => {
                let stream = execute_stream(physical, state.task_ctx())?;
                // The pin lives as long as the result stream: the files it reads stay.
                let schema = stream.schema();
                let pinned = stream.map(move |b| {
                    let _ = &pin;
                    b
                });
                Ok(Outcome::Rows {
                    schema: pg_named_schema(&plan, &names_from),
                    stream: Box::pin(RecordBatchStreamAdapter::new(schema, pinned)),
                })
            }
        }
    }
}
