//! UNLOAD: run a query and write its result as files under a key prefix (server-local
//! paths, `file://` or `s3://`), in Redshift's delimited text, CSV or Parquet.
//!
//! Where files are written:
//! - PARALLEL ON and a plan that is nothing but a cluster scan (`select cols from t where
//!   …`: filters, projections and local limits all run in the slices' fragments): each
//!   worker runs its slices' fragments and writes their files itself, in parallel
//!   (`DoAction(unload)`, see [`ClusterScanExec::unload`]); nothing passes through the leader.
//! - PARALLEL ON and anything the leader finishes (joins, final aggregates, ORDER BY,
//!   global LIMIT): the leader runs the plan and writes one file set per output partition.
//! - PARALLEL OFF: the leader writes the one ordered stream, cut at MAXFILESIZE.
//!
//! Both use the one file writer, `basalt_worker::unload`. By default the destination must
//! be empty (ALLOWOVERWRITE overwrites, CLEANPATH deletes what is there first). The
//! MANIFEST is written last, once every data file is complete, so a failed UNLOAD never
//! leaves a manifest naming files; a failure deletes the files already written.
//!
//! [`ClusterScanExec::unload`]: crate::plan::exec::ClusterScanExec

use std::collections::BTreeSet;
use std::sync::Arc;

use basalt_worker::load::Compression;
use basalt_worker::objects;
use basalt_worker::unload::{
    self as writer, DEFAULT_ROW_GROUP_SIZE, FileNaming, MAX_FILE_SIZE, MIN_FILE_SIZE, UnloadFormat,
    UnloadSpec, UnloadedFile,
};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, execute_stream};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, FileSize, FileSizeUnit, IamRoleKind, Ident, Query,
    SqlOption, Statement, Value,
};
use serde::Serialize;

use crate::commands::context::{Outcome, StatementContext};
use crate::commands::copy::Authorization;
use crate::error::{LeaderError, Result, code};
use crate::plan::statement::{alias_repeated_select_items, pg_named_schema};
use crate::plan::table::WriteLog;
use crate::sql::types::SqlType;
use crate::sql::{TableAttrs, parse_sql};
use crate::sql_err;
use crate::system::loads::UnloadLogRow;

/// The parts of a parsed `UNLOAD ('query') TO 'prefix' …`.
pub struct UnloadStatement {
    /// `UNLOAD (SELECT …)`: the query unquoted (Athena's form).
    pub query: Option<Box<Query>>,
    /// `UNLOAD ('SELECT …')`: the query as a string (Redshift's form).
    pub query_text: Option<String>,
    pub to: Ident,
    pub auth: Option<IamRoleKind>,
    pub with: Vec<SqlOption>,
    pub options: Vec<CopyLegacyOption>,
}

/// An UNLOAD's options, checked against each other as Redshift does.
struct UnloadOptions {
    format: UnloadFormat,
    delimiter: Option<u8>,
    add_quotes: bool,
    escape: bool,
    null_as: Option<String>,
    header: bool,
    compression: Compression,
    parallel: bool,
    max_file_size: u64,
    row_group_size: Option<u64>,
    partition_by: Vec<String>,
    include_partition_columns: bool,
    /// MANIFEST, and whether VERBOSE.
    manifest: Option<bool>,
    allow_overwrite: bool,
    clean_path: bool,
    extension: Option<String>,
    auth: Authorization,
}

fn syntax(message: String) -> LeaderError {
    LeaderError::Sql {
        code: code::SYNTAX_ERROR,
        message,
    }
}

fn unsupported(what: &str) -> LeaderError {
    sql_err!(
        code::FEATURE_NOT_SUPPORTED,
        "UNLOAD option {what} is not supported yet"
    )
}

/// MAXFILESIZE / ROWGROUPSIZE in bytes (the unit defaults to MB).
fn file_size(size: &FileSize, what: &str) -> Result<u64> {
    let number = match &size.size.value {
        Value::Number(n, _) => n.parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite() && *n > 0.0)
    .ok_or_else(|| {
        sql_err!(
            code::INVALID_PARAMETER_VALUE,
            "{what} must be a positive number"
        )
    })?;
    let unit = match size.unit {
        Some(FileSizeUnit::GB) => (1u64 << 30) as f64,
        Some(FileSizeUnit::MB) | None => (1u64 << 20) as f64,
    };
    Ok((number * unit).round() as u64)
}

impl UnloadOptions {
    fn parse(stmt: &UnloadStatement, attrs: &TableAttrs) -> Result<Self> {
        let mut o = UnloadOptions {
            format: UnloadFormat::Text,
            delimiter: None,
            add_quotes: false,
            escape: false,
            null_as: None,
            header: false,
            compression: Compression::None,
            parallel: true,
            max_file_size: MAX_FILE_SIZE,
            row_group_size: None,
            partition_by: vec![],
            include_partition_columns: false,
            manifest: None,
            allow_overwrite: false,
            clean_path: false,
            extension: None,
            auth: Authorization::default(),
        };
        if !stmt.with.is_empty() {
            return Err(unsupported("WITH (…)"));
        }
        if stmt.auth.is_some() {
            o.auth.iam_role = true;
        }
        let mut compressions = vec![];
        let mut formats = vec![];
        for opt in &stmt.options {
            match opt {
                CopyLegacyOption::Csv(csv) => {
                    // `CSV HEADER` parses as a CSV sub-option.
                    for c in csv {
                        match c {
                            CopyLegacyCsvOption::Header => o.header = true,
                            other => {
                                return Err(syntax(format!(
                                    "UNLOAD FORMAT CSV does not take {other}"
                                )));
                            }
                        }
                    }
                    formats.push(UnloadFormat::Csv);
                }
                CopyLegacyOption::Parquet => formats.push(UnloadFormat::Parquet),
                CopyLegacyOption::Delimiter(d) => {
                    if !d.is_ascii() || matches!(d, '\n' | '\r') {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "UNLOAD delimiter must be a single ASCII character other than a newline"
                        ));
                    }
                    o.delimiter = Some(*d as u8);
                }
                CopyLegacyOption::AddQuotes => o.add_quotes = true,
                CopyLegacyOption::Escape => o.escape = true,
                CopyLegacyOption::Null(n) => o.null_as = Some(n.clone()),
                CopyLegacyOption::Header => o.header = true,
                CopyLegacyOption::Gzip => compressions.push(Compression::Gzip),
                CopyLegacyOption::Bzip2 => compressions.push(Compression::Bzip2),
                CopyLegacyOption::Zstd => compressions.push(Compression::Zstd),
                CopyLegacyOption::Parallel(on) => o.parallel = on.unwrap_or(true),
                CopyLegacyOption::MaxFileSize(size) => {
                    let bytes = file_size(size, "MAXFILESIZE")?;
                    if !(MIN_FILE_SIZE..=MAX_FILE_SIZE).contains(&bytes) {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "MAXFILESIZE must be between 5 MB and 6.2 GB"
                        ));
                    }
                    o.max_file_size = bytes;
                }
                CopyLegacyOption::RowGroupSize(size) => {
                    let bytes = file_size(size, "ROWGROUPSIZE")?;
                    if !((32 << 20)..=(128 << 20)).contains(&bytes) {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "ROWGROUPSIZE must be between 32 MB and 128 MB"
                        ));
                    }
                    o.row_group_size = Some(bytes);
                }
                CopyLegacyOption::PartitionBy(p) => {
                    o.partition_by = p
                        .columns
                        .iter()
                        .map(crate::sql::names::ident_name)
                        .collect();
                    o.include_partition_columns = p.include;
                }
                CopyLegacyOption::Manifest { verbose } => o.manifest = Some(*verbose),
                CopyLegacyOption::AllowOverwrite => o.allow_overwrite = true,
                CopyLegacyOption::CleanPath => o.clean_path = true,
                CopyLegacyOption::Extension(e) => {
                    let e = e.trim_start_matches('.');
                    if e.is_empty() || e.contains('/') {
                        return Err(sql_err!(
                            code::INVALID_PARAMETER_VALUE,
                            "EXTENSION must be a file name extension such as 'csv' or 'csv.gz'"
                        ));
                    }
                    o.extension = Some(e.to_string());
                }
                CopyLegacyOption::Region(r) => o.auth.region = Some(r.clone()),
                CopyLegacyOption::IamRole(_) => o.auth.iam_role = true,
                CopyLegacyOption::Credentials(c) => o.auth.credentials = Some(c.clone()),
                CopyLegacyOption::FixedWidth(_) => return Err(unsupported("FIXEDWIDTH")),
                CopyLegacyOption::Json(_) => return Err(unsupported("FORMAT JSON")),
                CopyLegacyOption::Encrypted { .. } => return Err(unsupported("ENCRYPTED")),
                other => {
                    return Err(syntax(format!(
                        "{} is a COPY parameter, not an UNLOAD parameter",
                        other.to_string().split_whitespace().next().unwrap_or("?")
                    )));
                }
            }
        }
        for (param, arg) in &attrs.copy_params {
            match param.as_str() {
                "ACCESS_KEY_ID" => o.auth.key_id = arg.clone(),
                "SECRET_ACCESS_KEY" => o.auth.secret = arg.clone(),
                "SESSION_TOKEN" => o.auth.token = arg.clone(),
                "KMS_KEY_ID" | "MASTER_SYMMETRIC_KEY" => return Err(unsupported(param)),
                other => {
                    return Err(syntax(format!(
                        "{other} is a COPY parameter, not an UNLOAD parameter"
                    )));
                }
            }
        }
        match formats.as_slice() {
            [] => {}
            [f] => o.format = *f,
            _ => {
                return Err(syntax(
                    "conflicting or redundant options: more than one FORMAT".into(),
                ));
            }
        }
        match compressions.as_slice() {
            [] => {}
            [c] => o.compression = *c,
            _ => {
                return Err(syntax(
                    "conflicting or redundant options: only one of GZIP, BZIP2 and ZSTD".into(),
                ));
            }
        }
        if o.format == UnloadFormat::Parquet {
            for (given, name) in [
                (o.delimiter.is_some(), "DELIMITER"),
                (o.add_quotes, "ADDQUOTES"),
                (o.escape, "ESCAPE"),
                (o.null_as.is_some(), "NULL AS"),
                (o.header, "HEADER"),
                (o.compression == Compression::Gzip, "GZIP"),
                (o.compression == Compression::Bzip2, "BZIP2"),
                (o.compression == Compression::Zstd, "ZSTD"),
            ] {
                if given {
                    return Err(syntax(format!("PARQUET cannot be used with {name}")));
                }
            }
        } else if o.row_group_size.is_some() {
            return Err(syntax("ROWGROUPSIZE can only be used with PARQUET".into()));
        }
        if o.format == UnloadFormat::Csv {
            if o.add_quotes {
                return Err(syntax("CSV cannot be used with ADDQUOTES".into()));
            }
            if o.escape {
                return Err(syntax("CSV cannot be used with ESCAPE".into()));
            }
        }
        if o.allow_overwrite && o.clean_path {
            return Err(syntax(
                "ALLOWOVERWRITE and CLEANPATH cannot be used together".into(),
            ));
        }
        Ok(o)
    }
}

/// Redshift's answer when the destination already holds objects.
const NOT_EMPTY: &str = "Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE option.";

/// The folder part of a file URL (everything up to its last `/`).
fn folder_of(url: &str) -> &str {
    url.rfind('/').map_or(url, |i| &url[..=i])
}

impl StatementContext {
    pub(crate) async fn unload(
        &mut self,
        stmt: UnloadStatement,
        attrs: &TableAttrs,
    ) -> Result<Outcome> {
        let mut opts = UnloadOptions::parse(&stmt, attrs)?;
        let mut to = stmt.to.value.clone();
        // A bare bucket is its root folder.
        if let Some(bucket) = to.strip_prefix("s3://")
            && !bucket.contains('/')
        {
            to.push('/');
        }
        if stmt.to.quote_style != Some('\'') || to.is_empty() {
            return Err(syntax(
                "UNLOAD needs a destination: TO 's3://bucket/prefix' or TO '/path/prefix'".into(),
            ));
        }
        // Writing the server's own files is for superusers (S3 is not).
        if !to.starts_with("s3://") && !self.is_superuser() {
            return Err(sql_err!(
                code::INSUFFICIENT_PRIVILEGE,
                "must be superuser to UNLOAD to a file on the server"
            ));
        }
        let query = match (stmt.query, stmt.query_text) {
            (Some(q), _) => Statement::Query(q),
            (None, Some(text)) => {
                let mut parsed = parse_sql(&text)?;
                match (parsed.pop(), parsed.is_empty()) {
                    (Some((Statement::Query(q), _)), true) => Statement::Query(q),
                    _ => {
                        return Err(syntax(
                            "UNLOAD's query must be a single SELECT statement".into(),
                        ));
                    }
                }
            }
            (None, None) => return Err(syntax("UNLOAD needs a query".into())),
        };
        let access = std::mem::take(&mut opts.auth).resolve(&self.engine.config.s3)?;

        // Plan the query as any SELECT; the snapshot's files stay readable until done.
        let (view, _pin) = self.pinned_view();
        let (state, query_id, reads) =
            self.statement_state(view.clone(), Arc::new(WriteLog::default()), None)?;
        let mut planned = query.clone();
        alias_repeated_select_items(&mut planned);
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(planned)))
            .await?;
        self.check_reads(&view, &state, &plan, &reads, None)?;
        if matches!(plan, LogicalPlan::Dml(_) | LogicalPlan::Ddl(_)) {
            return Err(syntax(
                "UNLOAD's query must be a single SELECT statement".into(),
            ));
        }
        let schema = pg_named_schema(&plan, &query);
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut partition_by = vec![];
        for name in &opts.partition_by {
            let c = columns
                .iter()
                .position(|c| c == name)
                .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)))
                .ok_or_else(|| {
                    sql_err!(
                        code::UNDEFINED_COLUMN,
                        "PARTITION BY column \"{name}\" is not a column of the UNLOAD query"
                    )
                })?;
            partition_by.push(c);
        }
        if !partition_by.is_empty()
            && !opts.include_partition_columns
            && partition_by.iter().collect::<BTreeSet<_>>().len() == columns.len()
        {
            return Err(sql_err!(
                code::INVALID_PARAMETER_VALUE,
                "PARTITION BY names every column of the query: nothing would be left to write (use INCLUDE)"
            ));
        }
        let physical = state.create_physical_plan(&plan).await?;

        // The destination: a place Basalt can write, and empty unless ALLOWOVERWRITE or
        // CLEANPATH say otherwise.
        objects::open(&to, &access)
            .map_err(|e| sql_err!(code::INVALID_PARAMETER_VALUE, "UNLOAD destination {e}"))?;
        let existing = objects::list_prefix(&to, &access)
            .await
            .map_err(|e| sql_err!(code::INTERNAL, "UNLOAD destination {e}"))?;
        if !existing.is_empty() && !opts.allow_overwrite && !opts.clean_path {
            return Err(sql_err!(code::INTERNAL, "{NOT_EMPTY}"));
        }
        if opts.clean_path && partition_by.is_empty() {
            for f in &existing {
                objects::delete(&f.url, &access)
                    .await
                    .map_err(|e| sql_err!(code::INTERNAL, "CLEANPATH: cannot delete {e}"))?;
            }
        }
        let manifest_url = format!("{to}manifest");
        if opts.manifest.is_some() {
            // An old manifest must not outlive an UNLOAD that fails half way.
            objects::delete(&manifest_url, &access)
                .await
                .map_err(|e| sql_err!(code::INTERNAL, "UNLOAD manifest {e}"))?;
        }

        let spec = UnloadSpec {
            prefix: to.clone(),
            access: access.clone(),
            format: opts.format,
            delimiter: opts.delimiter.unwrap_or(match opts.format {
                UnloadFormat::Csv => b',',
                _ => b'|',
            }),
            add_quotes: opts.add_quotes,
            escape: opts.escape,
            null_as: opts.null_as.clone().unwrap_or_default(),
            header: opts.header,
            compression: opts.compression,
            max_file_size: opts.max_file_size,
            row_group_size: opts.row_group_size.unwrap_or(DEFAULT_ROW_GROUP_SIZE),
            extension: opts.extension.clone(),
            columns: columns.clone(),
            partition_by,
            include_partition_columns: opts.include_partition_columns,
        };
        let mut files = if !opts.parallel {
            let stream = execute_stream(physical, state.task_ctx())?;
            writer::write_stream(&spec, FileNaming::Serial, stream).await?
        } else if let Some(scan) = crate::plan::exec::whole_plan_scan(&physical) {
            scan.unload(&spec).await?
        } else {
            unload_partitions(&spec, physical, state.task_ctx()).await?
        };
        files.sort_by(|a, b| a.url.cmp(&b.url));
        let rows: u64 = files.iter().map(|f| f.rows).sum();

        let finish = async {
            if opts.clean_path && !spec.partition_by.is_empty() {
                // Only the partition folders that received files are cleaned.
                let written: BTreeSet<&str> = files.iter().map(|f| f.url.as_str()).collect();
                let folders: BTreeSet<&str> = files.iter().map(|f| folder_of(&f.url)).collect();
                for folder in folders {
                    let listed = objects::list_prefix(folder, &access)
                        .await
                        .map_err(|e| sql_err!(code::INTERNAL, "CLEANPATH: {e}"))?;
                    for old in listed.iter().filter(|l| !written.contains(l.url.as_str())) {
                        objects::delete(&old.url, &access).await.map_err(|e| {
                            sql_err!(code::INTERNAL, "CLEANPATH: cannot delete {e}")
                        })?;
                    }
                }
            }
            if let Some(verbose) = opts.manifest {
                let doc = manifest(&files, verbose, &schema, &spec);
                let bytes = serde_json::to_vec_pretty(&doc).expect("a JSON value serializes");
                objects::write(&manifest_url, &access, bytes.into())
                    .await
                    .map_err(|e| sql_err!(code::INTERNAL, "UNLOAD manifest {e}"))?;
            }
            Ok::<(), LeaderError>(())
        }
        .await;
        if let Err(e) = finish {
            writer::discard_files(&files, &access).await;
            return Err(e);
        }

        let pid = std::process::id();
        self.engine
            .system
            .unloads
            .extend(files.iter().map(|f| UnloadLogRow {
                query: query_id,
                pid,
                file: f.clone(),
                format: opts.format,
            }));
        self.last_unload = Some((query_id, rows));
        // Redshift's INFO line, word for word.
        self.notices.push(format!(
            "UNLOAD completed, {rows} record(s) unloaded successfully."
        ));
        Ok(Outcome::Command("UNLOAD".into()))
    }
}

/// PARALLEL ON for a plan the leader finishes: one file set per output partition, all
/// written at once (partition `i` is named like slice `i`).
async fn unload_partitions(
    spec: &UnloadSpec,
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<datafusion::execution::TaskContext>,
) -> Result<Vec<UnloadedFile>> {
    let n = plan.output_partitioning().partition_count();
    let mut streams = vec![];
    for i in 0..n {
        streams.push(plan.execute(i, ctx.clone())?);
    }
    let writes = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| writer::write_stream(spec, FileNaming::Slice(i as u32), stream));
    let mut files = vec![];
    let mut failure = None;
    for r in futures::future::join_all(writes).await {
        match r {
            Ok(f) => files.extend(f),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        writer::discard_files(&files, &spec.access).await;
        return Err(e.into());
    }
    Ok(files)
}

/// The MANIFEST: every file with its size (VERBOSE: and row count, the columns written
/// and their types, the totals, and Redshift's author block).
#[derive(Serialize)]
struct Manifest {
    entries: Vec<ManifestEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<ManifestSchema>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<ManifestMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<ManifestAuthor>,
}

#[derive(Serialize)]
struct ManifestEntry {
    url: String,
    meta: ManifestMeta,
}

#[derive(Serialize)]
struct ManifestMeta {
    content_length: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_count: Option<u64>,
}

#[derive(Serialize)]
struct ManifestSchema {
    elements: Vec<ManifestColumn>,
}

#[derive(Serialize)]
struct ManifestColumn {
    name: String,
    #[serde(rename = "type")]
    ty: ManifestType,
}

#[derive(Serialize)]
struct ManifestType {
    base: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scale: Option<i8>,
}

#[derive(Serialize)]
struct ManifestAuthor {
    name: &'static str,
    version: &'static str,
}

fn manifest(files: &[UnloadedFile], verbose: bool, schema: &Schema, spec: &UnloadSpec) -> Manifest {
    let entries = files
        .iter()
        .map(|f| ManifestEntry {
            url: f.url.clone(),
            meta: ManifestMeta {
                content_length: f.bytes,
                record_count: verbose.then_some(f.rows),
            },
        })
        .collect();
    if !verbose {
        return Manifest {
            entries,
            schema: None,
            meta: None,
            author: None,
        };
    }
    let elements = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(c, _)| spec.include_partition_columns || !spec.partition_by.contains(c))
        .map(|(_, f)| ManifestColumn {
            name: f.name().clone(),
            ty: manifest_type(f.data_type()),
        })
        .collect();
    Manifest {
        entries,
        schema: Some(ManifestSchema { elements }),
        meta: Some(ManifestMeta {
            content_length: files.iter().map(|f| f.bytes).sum(),
            record_count: Some(files.iter().map(|f| f.rows).sum()),
        }),
        author: Some(ManifestAuthor {
            name: "Amazon Redshift",
            version: "1.0.0",
        }),
    }
}

/// A column type as a VERBOSE manifest describes it.
fn manifest_type(dt: &DataType) -> ManifestType {
    let base = |b: &str| ManifestType {
        base: b.to_string(),
        precision: None,
        scale: None,
    };
    match SqlType::from_arrow(dt) {
        Ok(SqlType::Decimal { precision, scale }) => ManifestType {
            base: "numeric".into(),
            precision: Some(precision),
            scale: Some(scale),
        },
        Ok(SqlType::Varchar(_)) => base("character varying"),
        Ok(t) => base(&t.display_name()),
        Err(_) => base(&dt.to_string()),
    }
}
