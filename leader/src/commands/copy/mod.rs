//! COPY: the leader lists the input, spreads the files over the live workers by size,
//! and has each worker parse, convert, route and write its share in parallel
//! (`DoAction(load)`, see `basalt_worker::load`). Rejected rows come back with Redshift's
//! load error codes and go to `stl_load_errors`; more than MAXERROR of them fail the COPY
//! and nothing is committed. Otherwise every new segment commits in one catalog change
//! (in the statement's transaction), so a COPY loads all its rows or none.

use basalt_storage::segment::schema_to_ipc;
use basalt_worker::load::formats::{self, JsonMapping};
use basalt_worker::load::{
    Compression, InputPart, LoadRequest, LoadResult, RecordCuts, Routing, TextFormat,
};
use basalt_worker::objects::{self, ObjectAccess};
use basalt_worker::protocol;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName,
};

use crate::catalog::{CatalogOp, DistStyle};

use crate::commands::context::{Outcome, StatementContext};
use crate::config::S3Config;
use crate::error::{Result, code};
use crate::now_us;
use crate::sql::SortKind;
use crate::sql::parse::TableAttrs;
use crate::sql::types::SqlType;
use crate::sql_err;
use crate::system::loads::{LoadCommitRow, LoadErrorRow, RunningLoad};

mod spec;

pub(crate) use spec::Authorization;
use spec::CompUpdate;
pub use spec::{CopySpec, PreparedCopy};

/// Whether every CSV byte range in `parts` began outside quotes, so its records are the
/// file's records: the quotes the workers counted in the ranges before it add up to an
/// even number. (A range owns the records that start in it, so the ranges of a file cover
/// it without overlap.) A range with no count (its read failed) or a failed worker makes
/// the answer no: what failed may have been reading records from a wrong cut.
fn ranges_began_outside_quotes(parts: &[InputPart], results: &[(u32, Result<LoadResult>)]) -> bool {
    if results.iter().any(|(_, r)| r.is_err()) {
        return false;
    }
    let counted: std::collections::HashMap<(&str, u64), u64> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flat_map(|r| r.range_quotes.iter())
        .map(|(path, start, quotes)| ((path.as_str(), *start), *quotes))
        .collect();
    let mut ranges: Vec<&InputPart> = parts.iter().filter(|p| !p.is_whole()).collect();
    ranges.sort_by(|a, b| (&a.path, a.start).cmp(&(&b.path, b.start)));
    let mut before = 0u64;
    for (k, range) in ranges.iter().enumerate() {
        if k == 0 || ranges[k - 1].path != range.path {
            before = 0;
        }
        let Some(quotes) = counted.get(&(range.path.as_str(), range.start)) else {
            return false;
        };
        if before % 2 == 1 {
            return false;
        }
        before += quotes;
    }
    true
}

/// Record boundaries about every `chunk` bytes of the local CSV file at `path` (see
/// [`RecordCuts`]), read in 8 MiB blocks.
fn csv_cuts(path: &str, quote: u8, chunk: u64) -> Result<Vec<u64>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 8 << 20];
    let mut cuts = RecordCuts::new(Some(quote), chunk);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(cuts.finish());
        }
        cuts.feed(&buf[..n]);
    }
}

/// The statistics ANALYZE would record for `def` right after a COPY into the empty table
/// loaded `rows` rows as the segments `added`, from what the workers gathered while
/// converting them. None when the table is not exactly those rows (anything committed
/// meanwhile, a COMPUPDATE rewrite, deletions) or the statistics do not add up: then
/// the table is analyzed by query.
fn stats_of_load(
    def: &crate::catalog::TableDef,
    added: &std::collections::HashSet<String>,
    rows: u64,
    gathered: &[basalt_worker::load::stats::LoadStats],
) -> Option<crate::catalog::TableStats> {
    let exact = def.segments.len() == added.len()
        && def
            .segments
            .iter()
            .all(|s| s.deletes.is_none() && added.contains(&s.path));
    if !exact {
        return None;
    }
    let (counted, columns) =
        basalt_worker::load::stats::merge(&def.arrow_schema(), gathered).ok()?;
    if counted != rows || columns.len() != def.columns.len() {
        return None;
    }
    let columns = def
        .columns
        .iter()
        .zip(columns)
        .map(|(c, s)| {
            let bounds = crate::commands::maintenance::has_bounds(&c.sql_type);
            crate::catalog::ColumnStats {
                name: c.name.clone(),
                min: s.min.filter(|_| bounds),
                max: s.max.filter(|_| bounds),
                null_count: rows - s.non_null.min(rows),
                distinct: s.distinct,
            }
        })
        .collect();
    Some(crate::catalog::TableStats {
        rows,
        analyzed_at_us: crate::now_us(),
        columns,
    })
}

/// `stl_load_commits.file_format` for a COPY's format.
fn file_format(format: &TextFormat) -> &'static str {
    if format.parquet {
        "Parquet"
    } else if format.json.is_some() {
        "JSON"
    } else if format.fixed_widths.is_some() {
        "FixedWidth"
    } else if format.csv_quote.is_some() {
        "CSV"
    } else {
        "Text"
    }
}

/// Redshift's type name for `stl_load_errors.type`.
fn type_name(t: &SqlType) -> String {
    match t {
        SqlType::SmallInt => "int2".into(),
        SqlType::Integer => "int4".into(),
        SqlType::BigInt => "int8".into(),
        SqlType::Decimal { .. } => "numeric".into(),
        SqlType::Real => "float4".into(),
        SqlType::Double => "float8".into(),
        SqlType::Boolean => "bool".into(),
        SqlType::Char(_) => "bpchar".into(),
        SqlType::Varchar(_) => "varchar".into(),
        SqlType::Date => "date".into(),
        SqlType::Timestamp => "timestamp".into(),
        SqlType::Timestamptz => "timestamptz".into(),
        SqlType::Time => "time".into(),
        SqlType::Varbyte(_) => "varbyte".into(),
    }
}

/// Every file whose key starts with `source` (Redshift treats a source as a key prefix),
/// with its size, in key order.
async fn list_input(source: &str, access: &ObjectAccess) -> Result<Vec<(String, u64)>> {
    let listed = objects::list_prefix(source, access)
        .await
        .map_err(|e| sql_err!(code::INTERNAL, "COPY source {e}"))?;
    if listed.is_empty() {
        let shown = source.strip_prefix("file://").unwrap_or(source);
        return Err(sql_err!(
            code::INTERNAL,
            "The specified prefix '{shown}' does not exist"
        ));
    }
    Ok(listed.into_iter().map(|l| (l.url, l.size)).collect())
}

/// The files a MANIFEST names: `{"entries": [{"url": …, "mandatory": bool,
/// "meta": {"content_length": n}}]}`. A missing optional file is skipped; a missing
/// mandatory one fails the COPY. A file listed twice loads twice, as in Redshift.
async fn read_manifest(source: &str, access: &ObjectAccess) -> Result<Vec<(String, u64)>> {
    let bytes = objects::read(source, access)
        .await
        .map_err(|e| sql_err!(code::INTERNAL, "Manifest file {e}"))?;
    let bad = |why: &str| sql_err!(code::INTERNAL, "Invalid manifest file '{source}': {why}");
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(&format!("not valid JSON ({e})")))?;
    let entries = doc
        .get("entries")
        .and_then(|e| e.as_array())
        .ok_or_else(|| bad("no \"entries\" array"))?;
    let mut out = vec![];
    for entry in entries {
        let url = entry
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or_else(|| bad("an entry has no \"url\" string"))?;
        if source.starts_with("s3://") && !url.starts_with("s3://") {
            // Redshift's 8001: entries of an S3 manifest are full S3 paths.
            return Err(bad(&format!(
                "entry '{url}' is not a full s3://bucket/key path"
            )));
        }
        let mandatory = match entry.get("mandatory") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| bad("\"mandatory\" must be true or false"))?,
        };
        let length = entry
            .get("meta")
            .and_then(|m| m.get("content_length"))
            .map(|l| {
                l.as_u64()
                    .ok_or_else(|| bad("\"content_length\" must be a non-negative integer"))
            })
            .transpose()?;
        match objects::size(url, access).await {
            Ok(size) => out.push((url.to_string(), length.unwrap_or(size).min(size))),
            Err(e) if mandatory => {
                return Err(sql_err!(
                    code::INTERNAL,
                    "Manifest file '{source}' names mandatory file '{url}', which could not be read: {e}"
                ));
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// The parts COPY's input is given out in: whole files, and byte ranges of large
/// uncompressed text files so every worker takes a share. A range owns the records that
/// start in it. Delimited text is cut anywhere. A local CSV file is cut anywhere too
/// unless `exact_csv_cuts`: that guesses no newline inside quotes sits at a cut, which the
/// workers' quote counts then confirm ([`ranges_began_outside_quotes`]); with
/// `exact_csv_cuts` the file is first scanned for newlines outside quotes. Not with ESCAPE
/// or REMOVEQUOTES, where a newline may sit inside a field, nor JSON, FIXEDWIDTH, PARQUET
/// or compressed input; nor a CSV file in S3, which is not scanned.
async fn input_parts(
    files: &[(String, u64)],
    format: &TextFormat,
    split_bytes: u64,
    workers: usize,
    exact_csv_cuts: bool,
) -> Result<Vec<(InputPart, u64)>> {
    let splittable = format.compression == Compression::None
        && format.json.is_none()
        && format.fixed_widths.is_none()
        && !format.parquet
        && !format.escape
        && !format.remove_quotes;
    let mut parts: Vec<(InputPart, u64)> = vec![];
    for (path, size) in files.iter().cloned() {
        let local = !path.starts_with("s3://");
        let csv = format.csv_quote;
        if splittable && size > split_bytes && workers > 1 && (csv.is_none() || local) {
            // At most 64 ranges per file; small ranges keep workers' memory bounded.
            let chunk = split_bytes.max(size.div_ceil(64));
            let cuts = match csv {
                Some(quote) if exact_csv_cuts => {
                    let p = path.clone();
                    tokio::task::spawn_blocking(move || csv_cuts(&p, quote, chunk))
                        .await
                        .map_err(|e| sql_err!(code::INTERNAL, "{e}"))??
                }
                _ => (1..size.div_ceil(chunk)).map(|k| k * chunk).collect(),
            };
            let bounds: Vec<u64> = std::iter::once(0)
                .chain(cuts.into_iter().filter(|c| *c > 0 && *c < size))
                .chain(std::iter::once(size))
                .collect();
            for w in bounds.windows(2) {
                let (start, end) = (w[0], w[1]);
                let part = InputPart {
                    path: path.clone(),
                    size,
                    start,
                    end: Some(end),
                };
                parts.push((part, end - start));
            }
        } else {
            parts.push((InputPart::whole(path, size), size));
        }
    }
    Ok(parts)
}

impl StatementContext {
    /// Run a COPY from files, or (`FROM STDIN`) get ready for the client's data.
    /// A `FROM STDIN` COPY is left in `stdin` for the client's rows.
    pub(crate) async fn copy(
        &mut self,
        spec: CopySpec<'_>,
        attrs: &TableAttrs,
        stdin: &mut Option<StdinCopy>,
    ) -> Result<Outcome> {
        let mut prepared = self.prepare_copy(&spec, attrs)?;
        if let Some(source) = prepared.json_paths.clone() {
            let text = objects::read(&source, &prepared.access)
                .await
                .map_err(|e| sql_err!(code::INTERNAL, "jsonpaths file {e}"))?;
            let text = std::str::from_utf8(&text)
                .map_err(|_| sql_err!(code::INTERNAL, "jsonpaths file '{source}' is not UTF-8"))?;
            let paths = formats::parse_json_paths_file(text)
                .map_err(|e| sql_err!(code::INTERNAL, "{e}"))?;
            if let Some(paths) = paths {
                if paths.len() != prepared.fields.len() {
                    return Err(sql_err!(
                        code::INTERNAL,
                        "Number of jsonpaths and the number of columns should match. JSONPath size: {}, Number of columns in table or column list: {}",
                        paths.len(),
                        prepared.fields.len()
                    ));
                }
                prepared.format.json = Some(JsonMapping::Paths(paths));
            }
        }
        match spec.source {
            Some(source) => {
                let files = if prepared.manifest {
                    read_manifest(source, &prepared.access).await?
                } else {
                    list_input(source, &prepared.access).await?
                };
                // Reading the server's own files is for superusers (S3 is not).
                if files.iter().any(|(f, _)| !f.starts_with("s3://")) && !self.is_superuser() {
                    return Err(sql_err!(
                        code::INSUFFICIENT_PRIVILEGE,
                        "must be superuser to COPY from a file on the server"
                    ));
                }
                self.run_copy(prepared, files).await
            }
            None => {
                let columns = prepared.field_count();
                *stdin = Some(StdinCopy {
                    prepared,
                    staging: None,
                });
                Ok(Outcome::CopyIn { columns })
            }
        }
    }

    /// Load `files` (server-local paths) as `prepared` says, in one commit.
    pub(crate) async fn run_copy(
        &mut self,
        prepared: PreparedCopy,
        files: Vec<(String, u64)>,
    ) -> Result<Outcome> {
        let PreparedCopy {
            def,
            fields,
            format,
            max_error,
            noload,
            access,
            manifest: _,
            json_paths: _,
            comp_update,
            stat_update,
        } = prepared;
        // DEFAULTs of the columns the input does not fill, evaluated once for the COPY.
        let mut defaults = vec![None; def.columns.len()];
        for (i, c) in def.columns.iter().enumerate() {
            if let (Some(sql), false) = (&c.default, fields.contains(&i)) {
                let batches = self
                    .query_on(self.view(), &format!("SELECT CAST({sql} AS VARCHAR)"))
                    .await?;
                defaults[i] = batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
                    let v = datafusion::arrow::compute::cast(
                        b.column(0),
                        &datafusion::arrow::datatypes::DataType::Utf8,
                    )
                    .ok()?;
                    let v = v.as_string_opt::<i32>()?;
                    (!v.is_null(0)).then(|| v.value(0).to_string())
                });
            }
        }
        let workers = self.engine.cluster.workers();
        if workers.is_empty() {
            return Err(sql_err!(code::CONNECTION_FAILURE, "no worker is available"));
        }
        let split_bytes = (self.engine.config.copy_split_mb.max(1)) << 20;
        let query = self.start_query();
        let started = now_us();
        let slice_count = self.engine.cluster.slice_count();
        let schema_ipc = schema_to_ipc(&def.arrow_schema())
            .map_err(|e| sql_err!(code::INTERNAL, "table schema: {e}"))?;
        // STATUPDATE: by default only a load into an empty table refreshes statistics.
        // Then the table holds exactly the loaded rows, whose statistics the workers
        // gather as they convert them.
        let was_empty = def.segments.is_empty();
        let update_stats = stat_update.unwrap_or(was_empty);
        let gather_stats = update_stats && was_empty && !noload;
        let system = self.engine.system.clone();
        // IDENTITY columns the input does not fill are numbered by the workers in the
        // order they read their rows.
        let generated: Vec<usize> = def
            .columns
            .iter()
            .enumerate()
            .filter(|(i, c)| c.identity.is_some() && !fields.contains(i))
            .map(|(i, _)| i)
            .collect();
        let numbered = !generated.is_empty() && !noload;
        // A local CSV file is first cut at guessed record boundaries (see `input_parts`);
        // when a guess turns out wrong, the load runs again with exact cuts. Not when
        // IDENTITY values are handed out per worker before loading.
        let mut exact_cuts = numbered;
        let mut running = None;
        let (results, identity_ops) = loop {
            let parts =
                input_parts(&files, &format, split_bytes, workers.len(), exact_cuts).await?;
            let planned: Vec<InputPart> = parts.iter().map(|(p, _)| p.clone()).collect();
            // Size-weighted assignment: largest files first, each to the least-loaded worker.
            let mut by_size = parts;
            by_size.sort_by_key(|f| std::cmp::Reverse(f.1));
            let mut shares: Vec<(u64, Vec<InputPart>)> = vec![(0, vec![]); workers.len()];
            for (path, size) in by_size {
                let w = shares
                    .iter_mut()
                    .min_by_key(|(bytes, _)| *bytes)
                    .expect("at least one worker");
                w.0 += size;
                w.1.push(path);
            }
            // The running entry is replaced, not added to, when the load runs again.
            drop(running.take());
            running = Some(
                system.loads.start(RunningLoad {
                    query,
                    started_us: started,
                    shares: workers
                        .iter()
                        .zip(&shares)
                        .map(|(w, (bytes, files))| (w.node_id, *bytes, files.len() as u64))
                        .collect(),
                }),
            );
            let mut requests: Vec<(u32, String, LoadRequest)> = workers
                .iter()
                .zip(shares)
                .enumerate()
                .filter(|(_, (_, (_, files)))| !files.is_empty())
                .map(|(k, (w, (_, files)))| {
                    let request = LoadRequest {
                        query,
                        table_id: def.id,
                        schema_ipc: schema_ipc.clone(),
                        fields: fields.clone(),
                        not_null: def.columns.iter().map(|c| !c.nullable).collect(),
                        max_bytes: def
                            .columns
                            .iter()
                            .map(|c| c.sql_type.max_bytes().or(c.sql_type.max_binary_bytes()))
                            .collect(),
                        type_names: def.columns.iter().map(|c| type_name(&c.sql_type)).collect(),
                        format: format.clone(),
                        files,
                        access: access.clone(),
                        routing: match def.dist {
                            DistStyle::Key(column) => Routing::Key {
                                column,
                                slice_count,
                            },
                            DistStyle::Even | DistStyle::Auto => Routing::Even {
                                slice_count,
                                start: k as u64,
                            },
                            DistStyle::All => Routing::All,
                        },
                        sort_key: def.sort_key.clone(),
                        interleaved: def.sort_kind == SortKind::Interleaved,
                        codecs: def.codecs(),
                        noload,
                        defaults: defaults.clone(),
                        piece_bytes: split_bytes,
                        identity: vec![],
                        stored_names: def.columns.iter().map(|c| c.stored.clone()).collect(),
                        gather_stats,
                    };
                    (w.node_id, w.addr.clone(), request)
                })
                .collect();
            // A first pass that only parses counts each worker's rows, so every worker
            // gets a block of IDENTITY values of exactly that size.
            let mut identity_ops = vec![];
            if numbered {
                let counting: Vec<_> = requests
                    .iter()
                    .map(|(n, a, r)| {
                        let mut r = r.clone();
                        r.noload = true;
                        (*n, a.clone(), r)
                    })
                    .collect();
                let counts = self.load_pass(counting).await;
                for ((_, _, request), (_, count)) in requests.iter_mut().zip(counts) {
                    let count = count?.rows_loaded as usize;
                    for &column in &generated {
                        let (start, next) = self.engine.counters.allocate(&def, column, count);
                        let step = def.columns[column].identity.as_ref().map_or(1, |i| i.step);
                        request.identity.push((column, start, step));
                        identity_ops.push(CatalogOp::SetIdentityNext {
                            table_id: def.id,
                            column,
                            next,
                        });
                    }
                }
            }
            let results = self.load_pass(requests).await;
            let guessed = !exact_cuts && format.csv_quote.is_some();
            if guessed && !ranges_began_outside_quotes(&planned, &results) {
                // A guessed cut fell inside a quoted field: nothing of this run counts.
                let written = results.iter().filter_map(|(_, r)| r.as_ref().ok());
                let files = written.flat_map(|r| r.segments.iter().map(|s| s.path.clone()));
                self.engine
                    .gc
                    .discard(&self.engine.catalog, files.collect());
                exact_cuts = true;
                continue;
            }
            break (results, identity_ops);
        };
        let _running = running;
        let mut segments = vec![];

        let mut errors = vec![];
        let mut loaded_files = vec![];
        let mut rows = 0;
        let mut failure = None;
        let mut gathered = Some(vec![]);
        let slices_per_node = self.engine.cluster.slices_per_node;
        for (node, r) in results {
            match r {
                Ok(r) => {
                    match (&mut gathered, r.stats) {
                        (Some(all), Some(stats)) => all.push(stats),
                        _ => gathered = None,
                    }
                    segments.extend(r.segments);
                    errors.extend(r.errors.into_iter().map(|e| (node * slices_per_node, e)));
                    loaded_files.extend(r.files);
                    rows += r.rows_loaded;
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        errors.sort_by(|(_, a), (_, b)| {
            (&a.filename, a.line_number).cmp(&(&b.filename, b.line_number))
        });
        let error_count = errors.len() as u64;
        self.engine
            .system
            .loads
            .errors
            .extend(errors.into_iter().map(|(slice, error)| {
                LoadErrorRow {
                    query,
                    slice,
                    table_id: def.id,
                    field: def
                        .columns
                        .iter()
                        .position(|c| c.name == error.colname)
                        .and_then(|c| fields.iter().position(|&f| f == c)),
                    start_us: started,
                    error,
                }
            }));
        let abandon = |s: &Self, segments: &[basalt_worker::protocol::SegmentRef]| {
            let files = segments.iter().map(|s| s.path.clone()).collect();
            s.engine.gc.discard(&s.engine.catalog, files);
        };
        if let Some(e) = failure {
            abandon(self, &segments);
            return Err(e);
        }
        if error_count > max_error {
            abandon(self, &segments);
            return Err(sql_err!(
                code::INTERNAL,
                "Load into table '{}' failed.  Check 'stl_load_errors' system table for details.",
                def.name
            ));
        }
        if noload {
            // Checked, not loaded.
            self.notices.push(format!(
                "Load into table '{}' completed, 0 record(s) loaded successfully.",
                def.name
            ));
            return Ok(Outcome::Command("COPY 0".into()));
        }
        let added: std::collections::HashSet<String> =
            segments.iter().map(|s| s.path.clone()).collect();
        let mut ops = vec![CatalogOp::AddSegments {
            table_id: def.id,
            segments,
            placement: def.placement(),
        }];
        ops.extend(identity_ops);
        self.record(ops)?;
        self.last_copy = Some((query, rows));
        // As in Redshift, the files show up whether or not the transaction later commits.
        let curtime_us = now_us();
        // Byte ranges of one file report one row.
        let mut per_file: std::collections::BTreeMap<String, u64> = Default::default();
        for (f, lines) in loaded_files {
            *per_file.entry(f).or_default() += lines;
        }
        self.engine
            .system
            .loads
            .commits
            .extend(per_file.into_iter().map(|(filename, lines)| LoadCommitRow {
                query,
                filename,
                lines_scanned: lines,
                curtime_us,
                file_format: file_format(&format),
            }));
        // Redshift's INFO lines, word for word.
        self.notices.push(format!(
            "Load into table '{}' completed, {rows} record(s) loaded successfully.",
            def.name
        ));
        if error_count > 0 {
            self.notices.push(format!(
                "Load into table '{}' completed, {error_count} record(s) could not be loaded.  Check 'stl_load_errors' system table for details.",
                def.name
            ));
        }
        if was_empty && rows > 0 {
            self.update_compression(&def, comp_update).await?;
        }
        if update_stats && rows > 0 {
            let current = self.view().tables.get(&def.id).cloned();
            if let Some(current) = current {
                let columns: Vec<usize> = (0..current.columns.len()).collect();
                let loaded = gathered
                    .filter(|_| gather_stats)
                    .and_then(|g| stats_of_load(&current, &added, rows, &g));
                let stats = match loaded {
                    Some(stats) => stats,
                    None => self.table_stats(&current, &columns).await?,
                };
                self.record(vec![CatalogOp::SetStats {
                    table_id: def.id,
                    stats,
                }])?;
            }
        }
        Ok(Outcome::Command(format!("COPY {rows}")))
    }

    /// Send each worker its load request at once; each answer with its node.
    async fn load_pass(
        &self,
        requests: Vec<(u32, String, LoadRequest)>,
    ) -> Vec<(u32, Result<LoadResult>)> {
        let calls = requests.into_iter().map(|(node, addr, request)| {
            let cluster = self.engine.cluster.clone();
            async move {
                let result = async {
                    let reply = cluster
                        .call(
                            node,
                            &addr,
                            protocol::ACTION_LOAD,
                            protocol::encode(&request),
                        )
                        .await?;
                    protocol::decode::<LoadResult>(&reply)
                        .map_err(|e| sql_err!(code::INTERNAL, "load reply: {e}"))
                };
                (node, result.await)
            }
        });
        futures::future::join_all(calls).await
    }

    /// COMPUPDATE after the first load into a table: choose encodings (by type for
    /// PRESET, or for an omitted COMPUPDATE when every column is RAW; by encoding a sample
    /// of the loaded rows for ON) and rewrite the new segments with them. Outside a
    /// transaction block only, since the rewrite is its own commit.
    async fn update_compression(
        &mut self,
        def: &crate::catalog::TableDef,
        comp_update: Option<CompUpdate>,
    ) -> Result<()> {
        let all_raw = def.columns.iter().all(|c| c.encoding == "raw");
        let mode = match comp_update {
            None if all_raw => CompUpdate::Preset,
            None | Some(CompUpdate::Off) => return Ok(()),
            Some(m) => m,
        };
        if self.txn.is_some() {
            self.notices.push(
                "COMPUPDATE skipped: encodings are not changed inside a transaction block".into(),
            );
            return Ok(());
        }
        let mut changes = vec![];
        match mode {
            CompUpdate::Preset => {
                for (i, c) in def.columns.iter().enumerate() {
                    let enc = crate::commands::ddl::auto_encoding(
                        &c.sql_type,
                        def.sort_key.first() == Some(&i),
                    );
                    if c.encoding != enc {
                        changes.push((c.name.clone(), enc.to_string()));
                    }
                }
            }
            CompUpdate::On => {
                let all: Vec<usize> = (0..def.columns.len()).collect();
                let best = self.sample_encodings(def, &all, 100_000).await?;
                for (c, (enc, _)) in def.columns.iter().zip(best) {
                    if c.encoding != enc {
                        changes.push((c.name.clone(), enc));
                    }
                }
            }
            CompUpdate::Off => {}
        }
        if !changes.is_empty() {
            self.reencode(def.id, changes).await?;
        }
        Ok(())
    }

    /// The client finished sending: load the staged rows; the staging file goes either way.
    pub(crate) async fn copy_done(&mut self, mut copy: StdinCopy) -> Result<String> {
        let outcome = match &copy.staging {
            Some((path, file)) => {
                file.sync_all()?;
                let size = file.metadata()?.len();
                let files = vec![(path.to_string_lossy().into_owned(), size)];
                self.run_copy(copy.prepared.clone(), files).await
            }
            None => Ok(Outcome::Command("COPY 0".into())),
        };
        if let Some((path, _)) = copy.staging.take() {
            let _ = std::fs::remove_file(path);
        }
        match outcome? {
            Outcome::Command(tag) => Ok(tag),
            _ => Ok("COPY 0".into()),
        }
    }
}

/// A `COPY … FROM STDIN` waiting for the client's rows, and the file staging them. The
/// connection holds it between the client's messages; dropping it (the client's
/// `CopyFail`, a failed message, a closed connection) loads nothing and removes the file.
pub struct StdinCopy {
    prepared: PreparedCopy,
    staging: Option<(std::path::PathBuf, std::fs::File)>,
}

impl StdinCopy {
    /// Rows arrive: stage them in a file under the storage root, which the workers read
    /// like any input file.
    pub fn write(
        &mut self,
        storage: &basalt_storage::layout::StorageRoot,
        data: &[u8],
    ) -> Result<()> {
        use std::io::Write;
        if self.staging.is_none() {
            let dir = storage
                .local_dir()
                .ok_or_else(|| {
                    sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "COPY FROM STDIN needs a file:// storage root"
                    )
                })?
                .join("staging");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{}.copy", uuid::Uuid::new_v4().simple()));
            let file = std::fs::File::create(&path)?;
            self.staging = Some((path, file));
        }
        let (_, file) = self.staging.as_mut().expect("staging file opened above");
        file.write_all(data)?;
        Ok(())
    }
}

impl Drop for StdinCopy {
    fn drop(&mut self) {
        if let Some((path, _)) = self.staging.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
