//! PRIMARY KEY, UNIQUE and FOREIGN KEY constraints: reading them from CREATE TABLE and
//! ALTER TABLE ADD / DROP CONSTRAINT, naming them as PostgreSQL does, and printing them
//! the way `pg_get_constraintdef`, `pg_get_indexdef` and SHOW TABLE show them.
//!
//! As in Redshift they are informational: the catalog records them (and clients find
//! primary keys through `pg_constraint` / `pg_index`) but no row is ever checked against
//! them. PRIMARY KEY columns become NOT NULL, which is enforced.

use datafusion::sql::sqlparser::ast::{
    AlterTable, AlterTableOperation, ColumnOption, CreateTable, Expr, ForeignKeyConstraint, Ident,
    IndexColumn, ObjectName, TableConstraint,
};

use crate::catalog::{CatalogOp, CatalogState, ConstraintDef, ConstraintKind, TableDef};
use crate::commands::context::{Outcome, StatementContext};
use crate::error::{Result, code};
use crate::sql_err;

/// A constraint as declared, before its columns are checked against the table.
struct Declared {
    name: Option<String>,
    kind: DeclaredKind,
    columns: Vec<String>,
}

enum DeclaredKind {
    PrimaryKey,
    Unique,
    ForeignKey {
        table: ObjectName,
        columns: Vec<String>,
    },
}

fn names(ids: &[Ident]) -> Vec<String> {
    ids.iter().map(crate::sql::names::ident_name).collect()
}

fn index_columns(cols: &[IndexColumn]) -> Result<Vec<String>> {
    cols.iter()
        .map(|c| match &c.column.expr {
            Expr::Identifier(id) => Ok(crate::sql::names::ident_name(id)),
            other => Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "a key can only name columns, not {other}"
            )),
        })
        .collect()
}

fn foreign_key(fk: &ForeignKeyConstraint, columns: Vec<String>) -> Declared {
    Declared {
        name: fk.name.as_ref().map(crate::sql::names::ident_name),
        kind: DeclaredKind::ForeignKey {
            table: fk.foreign_table.clone(),
            columns: names(&fk.referred_columns),
        },
        columns,
    }
}

fn declared(tc: &TableConstraint) -> Result<Declared> {
    Ok(match tc {
        TableConstraint::PrimaryKey(pk) => Declared {
            name: pk.name.as_ref().map(crate::sql::names::ident_name),
            kind: DeclaredKind::PrimaryKey,
            columns: index_columns(&pk.columns)?,
        },
        TableConstraint::Unique(u) => Declared {
            name: u.name.as_ref().map(crate::sql::names::ident_name),
            kind: DeclaredKind::Unique,
            columns: index_columns(&u.columns)?,
        },
        TableConstraint::ForeignKey(fk) => foreign_key(fk, names(&fk.columns)),
        other => {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "constraint {other} is not supported: Redshift keeps PRIMARY KEY, UNIQUE and FOREIGN KEY constraints only"
            ));
        }
    })
}

/// The constraints `CREATE TABLE` declares, on the columns or after them, for the new
/// table `def` (whose PRIMARY KEY columns this makes NOT NULL). Ids are left 0: the
/// caller allocates them.
pub fn from_create(
    ct: &CreateTable,
    def: &mut TableDef,
    view: &CatalogState,
) -> Result<Vec<ConstraintDef>> {
    let mut decls = vec![];
    for c in &ct.columns {
        let column = crate::sql::names::ident_name(&c.name);
        for opt in &c.options {
            let name = opt.name.as_ref().map(crate::sql::names::ident_name);
            let kind = match &opt.option {
                ColumnOption::PrimaryKey(_) => DeclaredKind::PrimaryKey,
                ColumnOption::Unique(_) => DeclaredKind::Unique,
                ColumnOption::ForeignKey(fk) => {
                    let mut d = foreign_key(fk, vec![column.clone()]);
                    d.name = d.name.or(name);
                    decls.push(d);
                    continue;
                }
                _ => continue,
            };
            decls.push(Declared {
                name,
                kind,
                columns: vec![column.clone()],
            });
        }
    }
    for tc in &ct.constraints {
        decls.push(declared(tc)?);
    }
    let mut out: Vec<ConstraintDef> = vec![];
    for d in decls {
        let c = resolve(d, def, view, &out)?;
        if c.kind == ConstraintKind::PrimaryKey {
            for col in &mut def.columns {
                if c.columns.contains(&col.stored) {
                    col.nullable = false;
                }
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Check a declared constraint against table `def` and the catalog, and name it.
fn resolve(
    d: Declared,
    def: &TableDef,
    view: &CatalogState,
    also: &[ConstraintDef],
) -> Result<ConstraintDef> {
    let stored = |t: &TableDef, cols: &[String], what: &str| -> Result<Vec<String>> {
        cols.iter()
            .map(|n| {
                t.columns
                    .iter()
                    .find(|c| &c.name == n)
                    .map(|c| c.stored.clone())
                    .ok_or_else(|| sql_err!(code::UNDEFINED_COLUMN, "column \"{n}\" {what}"))
            })
            .collect()
    };
    let columns = stored(def, &d.columns, "named in key does not exist")?;
    let kind = match d.kind {
        DeclaredKind::PrimaryKey => ConstraintKind::PrimaryKey,
        DeclaredKind::Unique => ConstraintKind::Unique,
        DeclaredKind::ForeignKey { table, columns: to } => {
            let (schema, name) = crate::sql::names::split_name(&table)?;
            let target: TableDef = if schema == def.schema && name == def.name {
                def.clone()
            } else {
                view.table(&schema, &name)
                    .map(|t| t.as_ref().clone())
                    .ok_or_else(|| {
                        sql_err!(code::UNDEFINED_TABLE, "relation \"{name}\" does not exist")
                    })?
            };
            let to = if to.is_empty() {
                // REFERENCES t without columns: t's primary key.
                view.constraints_of(target.id)
                    .into_iter()
                    .map(|c| c.as_ref())
                    .chain(also.iter().filter(|c| c.table == target.id))
                    .find(|c| c.kind == ConstraintKind::PrimaryKey)
                    .map(|c| c.columns.clone())
                    .ok_or_else(|| {
                        sql_err!(
                            code::INVALID_FOREIGN_KEY,
                            "there is no primary key for referenced table \"{name}\""
                        )
                    })?
            } else {
                stored(
                    &target,
                    &to,
                    "referenced in foreign key constraint does not exist",
                )?
            };
            if to.len() != columns.len() {
                return Err(sql_err!(
                    code::INVALID_FOREIGN_KEY,
                    "number of referencing and referenced columns for foreign key disagree"
                ));
            }
            ConstraintKind::ForeignKey {
                table: target.id,
                columns: to,
            }
        }
    };
    let name = match d.name {
        Some(n) => n,
        None => {
            // PostgreSQL's choice: <table>_pkey, <table>_<columns>_key / _fkey, with a
            // number appended while the name is taken.
            let base = match kind {
                ConstraintKind::PrimaryKey => format!("{}_pkey", def.name),
                ConstraintKind::Unique => format!("{}_{}_key", def.name, d.columns.join("_")),
                ConstraintKind::ForeignKey { .. } => {
                    format!("{}_{}_fkey", def.name, d.columns.join("_"))
                }
            };
            let taken = |n: &str| {
                also.iter().any(|c| c.name == n)
                    || view.constraints_of(def.id).iter().any(|c| c.name == n)
            };
            (0..)
                .map(|i| {
                    if i == 0 {
                        base.clone()
                    } else {
                        format!("{base}{i}")
                    }
                })
                .find(|n| !taken(n))
                .expect("a free name exists")
        }
    };
    // A duplicate name or a second primary key is refused when the catalog records the
    // constraint (`CatalogState::add_constraint`), for CREATE TABLE and ALTER alike.
    Ok(ConstraintDef {
        id: 0,
        table: def.id,
        name,
        kind,
        columns,
    })
}

/// Whether `at` adds or drops a constraint.
pub(crate) fn is_constraint_change(at: &AlterTable) -> bool {
    at.operations.iter().any(|op| {
        matches!(
            op,
            AlterTableOperation::AddConstraint { .. } | AlterTableOperation::DropConstraint { .. }
        )
    })
}

impl StatementContext {
    /// `ALTER TABLE t ADD [CONSTRAINT n] …` / `DROP CONSTRAINT n [CASCADE]`.
    pub(crate) fn alter_constraints(&mut self, at: &AlterTable) -> Result<Outcome> {
        let [op] = at.operations.as_slice() else {
            return Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "ALTER TABLE can add or drop only one constraint per statement"
            ));
        };
        let view = self.view();
        let def = view.named_table(&at.name)?;
        let ops = match op {
            AlterTableOperation::AddConstraint { constraint, .. } => {
                let mut c = resolve(declared(constraint)?, &def, &view, &[])?;
                c.id = self.engine.catalog.allocate_table_id()?;
                vec![CatalogOp::AddConstraint(c)]
            }
            AlterTableOperation::DropConstraint {
                if_exists,
                name,
                drop_behavior,
            } => {
                let name = crate::sql::names::ident_name(name);
                let Some(c) = view
                    .constraints_of(def.id)
                    .into_iter()
                    .find(|c| c.name == name)
                else {
                    if *if_exists {
                        return Ok(Outcome::Command("ALTER TABLE".into()));
                    }
                    return Err(sql_err!(
                        code::UNDEFINED_OBJECT,
                        "constraint \"{name}\" of relation \"{}\" does not exist",
                        def.name
                    ));
                };
                let mut ops = vec![];
                // A key other tables' FOREIGN KEYs reference goes only with CASCADE,
                // which takes them too.
                if c.has_index() {
                    let by: Vec<_> = view
                        .referencing(def.id, None)
                        .into_iter()
                        .filter(|f| matches!(&f.kind, ConstraintKind::ForeignKey { columns, .. } if *columns == c.columns))
                        .collect();
                    let cascade = matches!(
                        drop_behavior,
                        Some(datafusion::sql::sqlparser::ast::DropBehavior::Cascade)
                    );
                    if !by.is_empty() && !cascade {
                        return Err(sql_err!(
                            code::DEPENDENT_OBJECTS_STILL_EXIST,
                            "cannot drop constraint {name} on table {} because other objects depend on it{}Use DROP ... CASCADE to drop the dependent objects too.",
                            def.name,
                            code::HINT_SEPARATOR
                        ));
                    }
                    ops.extend(by.iter().map(|f| CatalogOp::DropConstraint {
                        table_id: f.table,
                        name: f.name.clone(),
                    }));
                }
                ops.push(CatalogOp::DropConstraint {
                    table_id: def.id,
                    name,
                });
                ops
            }
            _ => {
                return Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "ALTER TABLE {op} is not supported together with constraint changes"
                ));
            }
        };
        self.record(ops)?;
        Ok(Outcome::Command("ALTER TABLE".into()))
    }
}
