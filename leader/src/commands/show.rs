//! Session settings and what SHOW prints: `SET`, `RESET`, `SHOW name`, and `SHOW TABLE`
//! (a table's DDL).

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::sql::sqlparser::ast::{ObjectName, Reset, Set};

use crate::commands::context::{Outcome, StatementContext, rows_outcome, show_schema};
use crate::commands::ddl;
use crate::error::{Result, code};
use crate::sql_err;

impl StatementContext {
    /// `SET name TO value` / `SET TIME ZONE value`.
    pub(crate) fn set(&mut self, set: Set) -> Result<Outcome> {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().to_lowercase();
                let value = values
                    .iter()
                    .map(|v| v.to_string().trim_matches('\'').to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.settings.insert(name, value);
            }
            Set::SetTimeZone { value, .. } => {
                self.settings.insert(
                    "timezone".into(),
                    value.to_string().trim_matches('\'').into(),
                );
            }
            _ => {}
        }
        Ok(Outcome::Command("SET".into()))
    }

    /// `RESET name` / `RESET ALL`.
    pub(crate) fn reset(&mut self, reset: Reset) -> Result<Outcome> {
        match reset {
            Reset::ALL => self.settings.clear(),
            Reset::ConfigurationParameter(name) => {
                self.settings.remove(&name.to_string().to_lowercase());
            }
        }
        Ok(Outcome::Command("RESET".into()))
    }

    /// `SHOW TABLE [schema.]name`: its DDL.
    pub(crate) fn show_table(&self, name: &ObjectName) -> Result<Outcome> {
        let view = self.view();
        let def = view.named_table(name)?;
        let constraints: Vec<String> = view
            .constraints_of(def.id)
            .into_iter()
            .map(|c| crate::catalog::constraints::definition(c, &view))
            .collect();
        let schema = show_schema("Show Table DDL statement");
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![ddl::show_table_ddl(
                &def,
                &constraints,
            )]))],
        )
        .map_err(datafusion::error::DataFusionError::from)?;
        Ok(rows_outcome(schema, vec![batch]))
    }

    /// `SHOW name`: a setting's value.
    pub(crate) fn show_variable(&self, name: &str) -> Result<Outcome> {
        let value = self.setting(name).ok_or_else(|| {
            sql_err!(
                code::UNDEFINED_OBJECT,
                "unrecognized configuration parameter \"{name}\""
            )
        })?;
        let schema = show_schema(name);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value]))],
        )
        .map_err(datafusion::error::DataFusionError::from)?;
        Ok(rows_outcome(schema, vec![batch]))
    }
}
