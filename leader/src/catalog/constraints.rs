//! How the catalog's informational constraints print: `pg_get_constraintdef`,
//! `pg_get_indexdef` and SHOW TABLE all read them from here.

use super::{CatalogState, ConstraintDef, ConstraintKind, TableDef};

/// Current names of table `t`'s columns stored as `stored`.
fn column_names(t: Option<&TableDef>, stored: &[String]) -> Vec<String> {
    stored
        .iter()
        .map(|s| {
            t.and_then(|t| t.columns.iter().find(|c| &c.stored == s))
                .map_or_else(|| s.clone(), |c| c.name.clone())
        })
        .collect()
}

/// `PRIMARY KEY (a, b)`, `UNIQUE (a)`, `FOREIGN KEY (x) REFERENCES t(a)`: what
/// `pg_get_constraintdef` and SHOW TABLE print.
pub fn definition(c: &ConstraintDef, view: &CatalogState) -> String {
    let cols = column_names(view.tables.get(&c.table).map(|t| t.as_ref()), &c.columns);
    match &c.kind {
        ConstraintKind::PrimaryKey => format!("PRIMARY KEY ({})", cols.join(", ")),
        ConstraintKind::Unique => format!("UNIQUE ({})", cols.join(", ")),
        ConstraintKind::ForeignKey { table, columns } => {
            let target = view.tables.get(table);
            let name = target.map_or_else(String::new, |t| {
                if t.schema == "public" {
                    t.name.clone()
                } else {
                    format!("{}.{}", t.schema, t.name)
                }
            });
            format!(
                "FOREIGN KEY ({}) REFERENCES {name}({})",
                cols.join(", "),
                column_names(target.map(|t| t.as_ref()), columns).join(", ")
            )
        }
    }
}

/// `pg_get_indexdef` of a PRIMARY KEY's or UNIQUE constraint's index.
pub fn index_definition(c: &ConstraintDef, view: &CatalogState) -> String {
    let t = view.tables.get(&c.table);
    let cols = column_names(t.map(|t| t.as_ref()), &c.columns);
    let table = t.map_or_else(String::new, |t| format!("{}.{}", t.schema, t.name));
    format!(
        "CREATE UNIQUE INDEX {} ON {table} USING btree ({})",
        c.name,
        cols.join(", ")
    )
}
