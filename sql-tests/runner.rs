//! Runs every `sql-tests/**/*.slt` file against a fresh `basalt local` cluster
//! (2 workers × 2 slices) over the PostgreSQL wire protocol, with tokio-postgres and the
//! extended query protocol (results arrive in binary format and are rendered as text).
//!
//! Error expectations match against `SQLSTATE message`, so `statement error 42P01`
//! checks the code. Run one file with `cargo test --test sqllogictests -- <substring>`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

struct Basalt {
    client: tokio_postgres::Client,
}

#[async_trait]
impl AsyncDB for Basalt {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let err = |e: tokio_postgres::Error| SqlError(support::error_text(&e));
        let stmt = self.client.prepare(sql).await.map_err(err)?;
        if stmt.columns().is_empty() {
            let n = self.client.execute(&stmt, &[]).await.map_err(err)?;
            return Ok(DBOutput::StatementComplete(n));
        }
        let rows = self.client.query(&stmt, &[]).await.map_err(err)?;
        let types = stmt
            .columns()
            .iter()
            .map(|c| {
                use tokio_postgres::types::Type;
                match *c.type_() {
                    Type::INT2 | Type::INT4 | Type::INT8 => DefaultColumnType::Integer,
                    Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
                    Type::TEXT | Type::VARCHAR | Type::BPCHAR => DefaultColumnType::Text,
                    _ => DefaultColumnType::Any,
                }
            })
            .collect();
        let rows = rows
            .iter()
            .map(|r| (0..r.len()).map(|i| support::cell(r, i)).collect())
            .collect();
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "basalt"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read sql-tests")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "slt") {
            out.push(p);
        }
    }
}

#[tokio::main]
async fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-tests");
    let mut files = vec![];
    slt_files(&root, &mut files);
    files.retain(|f| filter.is_empty() || filter.iter().any(|s| f.to_string_lossy().contains(s)));

    let cluster = support::LocalCluster::start(2, 2);
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let conn = cluster.conn_string();
        let mut runner = Runner::new(move || {
            let conn = conn.clone();
            async move {
                let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| SqlError(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(Basalt { client })
            }
        });
        // Input files for COPY tests: `${DATA}` in a file that turns substitution on.
        // Output of UNLOAD tests goes to sqllogictest's own `${__TEST_DIR__}` (`$__TEST_DIR__`
        // in `system ok` commands): a fresh temporary directory per file and run.
        runner.set_var("DATA".into(), root.join("data").display().to_string());
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        match runner.run_file_async(file).await {
            Ok(()) => {
                println!("ok   {name}");
                passed += 1;
            }
            Err(e) => {
                println!("FAIL {name}\n{e}\n");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
