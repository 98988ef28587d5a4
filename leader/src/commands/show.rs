//! Session settings and what SHOW prints: `SET`, `RESET`, `SHOW name`, and `SHOW TABLE`
//! (a table's DDL).

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::sql::sqlparser::ast::{
    ContextModifier, ObjectName, Reset, Set, SetSessionAuthorizationParamKind,
};

use crate::commands::context::{Outcome, StatementContext, is_setting, rows_outcome, show_schema};
use crate::commands::ddl;
use crate::error::{Result, code};
use crate::sql_err;

/// Settings the server reports but no session may change.
const READ_ONLY_SETTINGS: &[&str] = &[
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "max_identifier_length",
    // Fixed by the dialect: backslashes in literals are escapes. A session that could
    // turn it on would leave its driver, which was told "off", doubling backslashes.
    "standard_conforming_strings",
];

/// Whether SET (and ALTER USER … SET) may give `name` a value: a setting sessions have,
/// and not one the server only reports.
pub(crate) fn check_settable(name: &str) -> Result<()> {
    if !is_setting(name) {
        return Err(sql_err!(
            code::UNDEFINED_OBJECT,
            "unrecognized configuration parameter \"{name}\""
        ));
    }
    if READ_ONLY_SETTINGS.contains(&name) {
        return Err(sql_err!("55P02", "parameter \"{name}\" cannot be changed"));
    }
    Ok(())
}

impl StatementContext {
    /// `SET name TO value` / `SET TIME ZONE value`.
    pub(crate) fn set(&mut self, set: Set) -> Result<Outcome> {
        match set {
            Set::SingleAssignment {
                scope,
                variable,
                values,
                ..
            } => {
                if scope == Some(ContextModifier::Local) {
                    return Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "SET LOCAL is not supported yet"
                    ));
                }
                let name = variable.to_string().to_lowercase();
                check_settable(&name)?;
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
            Set::SetSessionAuthorization(p) => {
                return match &p.kind {
                    SetSessionAuthorizationParamKind::User(u) => {
                        self.set_session_authorization(Some(&crate::sql::names::ident_name(u)))
                    }
                    SetSessionAuthorizationParamKind::Default => {
                        self.set_session_authorization(None)
                    }
                };
            }
            Set::SetRole {
                context_modifier: Some(ContextModifier::Local),
                ..
            } => {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "SET LOCAL is not supported yet"
                ));
            }
            Set::SetRole { role_name, .. } => {
                return self.set_role(role_name.as_ref().map(crate::sql::names::ident_name));
            }
            other => {
                // Never accept a SET that changes nothing.
                let text = other.to_string();
                let words: Vec<&str> = text.split_whitespace().take(2).collect();
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "{} is not supported yet",
                    words.join(" ").to_uppercase()
                ));
            }
        }
        Ok(Outcome::Command("SET".into()))
    }

    /// `RESET name` / `RESET ALL`.
    pub(crate) fn reset(&mut self, reset: Reset) -> Result<Outcome> {
        match reset {
            Reset::ALL => self.settings.clear(),
            Reset::ConfigurationParameter(name)
                if name.to_string().eq_ignore_ascii_case("role") =>
            {
                return self
                    .set_role(None)
                    .map(|_| Outcome::Command("RESET".into()));
            }
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
