//! VACUUM and ANALYZE.
//!
//! VACUUM rewrites segments on the workers that own them (`DoAction(rewrite)`): the live
//! rows of a slice's segments go through a spilling DataFusion sort into new segments,
//! which replace the old ones in one catalog commit. Readers of older versions keep their
//! files until they finish (see `gc`); writers of other tables are never blocked, and an
//! append to the same table during a VACUUM survives it (only the segments VACUUM read
//! are replaced). A DELETE that touched those segments meanwhile makes the VACUUM fail
//! with a serialization error rather than resurrect rows.
//!
//! ANALYZE records row counts and per-column statistics (min/max, null count, distinct
//! estimate) computed by one distributed aggregate query per table. ANALYZE COMPRESSION
//! encodes a sample of each column with every allowed encoding and reports the smallest.

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_storage::layout::SliceId;
use basalt_storage::segment::{Codec, SegmentReader, schema_to_ipc, write_segment};
use basalt_worker::protocol::{self, RewriteRequest, ScanSegment, SegmentRef};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};
use datafusion::sql::sqlparser::ast::{Analyze, ObjectName, VacuumStatement};

use crate::catalog::{CatalogOp, ColumnDef, ColumnStats, TableDef, TableStats, codec_for};

use crate::commands::context::{Outcome, StatementContext};
use crate::commands::ddl;
use crate::error::{Result, code};
use crate::sql::SortKind;
use crate::sql::parse::TableAttrs;
use crate::sql::types::SqlType;
use crate::sql_err;
use crate::system::unsorted_pct;

/// What a VACUUM does to each table.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VacuumMode {
    /// Sort and reclaim (the default).
    Full,
    SortOnly,
    DeleteOnly,
    /// Interleaved keys: re-sort everything regardless of the threshold.
    Reindex,
}

/// One rewrite: these segments of one slice become new ones.
struct Rewrite {
    slice: SliceId,
    old: Vec<SegmentRef>,
    /// Sort by the table's sort key (false: keep the segment's order, just drop deletes).
    sort: bool,
}

impl StatementContext {
    pub(crate) async fn vacuum(&mut self, v: VacuumStatement) -> Result<Outcome> {
        if self.txn.is_some() {
            return Err(sql_err!(
                code::ACTIVE_SQL_TRANSACTION,
                "VACUUM cannot run inside a transaction block"
            ));
        }
        let mode = if v.delete_only {
            VacuumMode::DeleteOnly
        } else if v.sort_only || v.recluster {
            VacuumMode::SortOnly
        } else if v.reindex {
            VacuumMode::Reindex
        } else {
            VacuumMode::Full
        };
        let threshold = match &v.threshold {
            Some(t) => {
                let text = t.to_string();
                let pct: f64 = text
                    .parse()
                    .map_err(|_| sql_err!(code::SYNTAX_ERROR, "invalid VACUUM threshold {text}"))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(sql_err!(
                        code::INVALID_PARAMETER_VALUE,
                        "VACUUM threshold must be between 0 and 100 percent"
                    ));
                }
                pct
            }
            None => 95.0,
        };
        // Redshift runs one VACUUM at a time; a second one waits for the first.
        let engine = self.engine.clone();
        let _running = engine.vacuum_lock.lock().await;
        let view = self.view();
        let tables: Vec<Arc<TableDef>> = match &v.table_name {
            Some(name) => vec![view.named_table(name)?],
            None => view.tables.values().cloned().collect(),
        };
        for def in tables {
            let rewrites = plan_rewrites(&def, mode, threshold);
            if !rewrites.is_empty() {
                self.rewrite_table(&def, rewrites, def.codecs(), vec![])
                    .await?;
            }
        }
        Ok(Outcome::Command("VACUUM".into()))
    }

    /// Run `rewrites` of `def` on the workers (all slices at once), writing columns with
    /// `codecs`, and commit the result together with `ops`.
    async fn rewrite_table(
        &mut self,
        def: &TableDef,
        rewrites: Vec<Rewrite>,
        codecs: Vec<Codec>,
        ops: Vec<CatalogOp>,
    ) -> Result<()> {
        let query = self.engine.next_query();
        self.last_query = query;
        // Segments are read and written by stored column names.
        let schema_ipc = schema_to_ipc(&def.storage_schema())
            .map_err(|e| sql_err!(code::INTERNAL, "table schema: {e}"))?;
        let columns = def.stored_columns();
        let calls = rewrites.iter().map(|r| {
            let cluster = self.engine.cluster.clone();
            let request = RewriteRequest {
                query,
                table_id: def.id,
                table_name: def.name.clone(),
                slice: r.slice,
                schema_ipc: schema_ipc.clone(),
                columns: columns.clone(),
                segments: r
                    .old
                    .iter()
                    .map(|s| ScanSegment {
                        path: s.path.clone(),
                        deletes: s.deletes.as_ref().map(|d| d.path.clone()),
                        ordinal: 0,
                    })
                    .collect(),
                sort_key: if r.sort { def.sort_key.clone() } else { vec![] },
                interleaved: def.sort_kind == SortKind::Interleaved,
                codecs: codecs.clone(),
            };
            async move {
                let (node, addr) = cluster.worker_for(request.slice)?;
                let reply = cluster
                    .call(
                        node,
                        &addr,
                        protocol::ACTION_REWRITE,
                        protocol::encode(&request),
                    )
                    .await?;
                protocol::decode::<Vec<SegmentRef>>(&reply)
                    .map_err(|e| sql_err!(code::INTERNAL, "rewrite reply: {e}"))
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut old = Vec::new();
        let mut new = Vec::new();
        let mut first_err = None;
        for (r, result) in rewrites.into_iter().zip(results) {
            match result {
                Ok(segments) => {
                    // Sorted output joins the sorted region; a delete-only rewrite keeps
                    // the region its segment was in.
                    let region = r.sort || r.old.iter().all(|s| s.sorted_region);
                    new.extend(segments.into_iter().map(|mut s| {
                        s.sorted_region = region;
                        s
                    }));
                    old.extend(r.old);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let written: Vec<String> = new.iter().map(|s| s.path.clone()).collect();
        let outcome = match first_err {
            Some(e) => Err(e),
            None => {
                let mut ops = ops;
                ops.push(CatalogOp::ReplaceSegments {
                    table_id: def.id,
                    old,
                    new,
                });
                self.commit_ops(ops)
            }
        };
        if outcome.is_err() {
            // Nothing names the new files: they are garbage right away.
            self.engine.gc.discard(&self.engine.catalog, written);
        }
        outcome
    }

    /// `ALTER TABLE t ALTER COLUMN c ENCODE e [, …]`: every segment is rewritten with the
    /// new encodings (one new segment per old one, so sortedness is kept) and the new
    /// encodings commit with the new segments.
    pub(crate) async fn alter_encode(
        &mut self,
        name: &ObjectName,
        changes: Vec<(String, String)>,
    ) -> Result<Outcome> {
        if self.txn.is_some() {
            return Err(sql_err!(
                code::ACTIVE_SQL_TRANSACTION,
                "ALTER TABLE ALTER COLUMN ENCODE cannot run inside a transaction block"
            ));
        }
        let def = self.view().named_table(name)?;
        self.reencode(def.id, changes).await?;
        Ok(Outcome::Command("ALTER TABLE".into()))
    }

    /// Rewrite table `table_id`'s segments with new encodings for some columns, in one
    /// commit (ALTER … ENCODE, and COPY's COMPUPDATE).
    pub(crate) async fn reencode(
        &mut self,
        table_id: u64,
        changes: Vec<(String, String)>,
    ) -> Result<()> {
        let engine = self.engine.clone();
        let _running = engine.vacuum_lock.lock().await;
        let view = self.view();
        let def = view
            .tables
            .get(&table_id)
            .cloned()
            .ok_or_else(|| sql_err!(code::UNDEFINED_TABLE, "table was dropped"))?;
        let mut ops = vec![];
        let mut encodings: Vec<String> = def.columns.iter().map(|c| c.encoding.clone()).collect();
        for (column, encoding) in changes {
            let i = def.column_index(&column)?;
            ddl::check_encoding(&column, &encoding, &def.columns[i].sql_type)?;
            encodings[i] = encoding.clone();
            ops.push(CatalogOp::SetEncoding {
                table_id: def.id,
                column: i,
                encoding,
            });
        }
        let codecs = encodings.iter().map(|e| codec_for(e)).collect();
        let rewrites = def
            .segments
            .iter()
            .map(|s| Rewrite {
                slice: s.slice,
                old: vec![s.clone()],
                sort: false,
            })
            .collect();
        self.rewrite_table(&def, rewrites, codecs, ops).await
    }

    pub(crate) async fn analyze(&mut self, a: Analyze, attrs: &TableAttrs) -> Result<Outcome> {
        if attrs.analyze_compression {
            return self.analyze_compression(a, attrs.comprows).await;
        }
        let view = self.view();
        let tables: Vec<Arc<TableDef>> = match &a.table_name {
            Some(name) => vec![view.named_table(name)?],
            None => view.tables.values().cloned().collect(),
        };
        let mut ops = Vec::new();
        for def in tables {
            let columns = def.column_indices(&a.columns)?;
            let stats = self.table_stats(&def, &columns).await?;
            ops.push(CatalogOp::SetStats {
                table_id: def.id,
                stats,
            });
        }
        self.record(ops)?;
        Ok(Outcome::Command("ANALYZE".into()))
    }

    /// One aggregate query over the table: row count, then per column its non-null count,
    /// distinct estimate and (for ordered types) bounds as text.
    pub(crate) async fn table_stats(
        &mut self,
        def: &TableDef,
        columns: &[usize],
    ) -> Result<TableStats> {
        let mut items = vec!["count(*)".to_string()];
        for &i in columns {
            let c = format!("\"{}\"", def.columns[i].name);
            items.push(format!("count({c})"));
            // DataFusion's approx_distinct takes no floats: count their text instead
            // (one text per value, so the estimate is the same).
            if matches!(def.columns[i].sql_type, SqlType::Real | SqlType::Double) {
                items.push(format!("approx_distinct(CAST({c} AS VARCHAR))"));
            } else {
                items.push(format!("approx_distinct({c})"));
            }
            if has_bounds(&def.columns[i].sql_type) {
                items.push(format!("CAST(min({c}) AS VARCHAR)"));
                items.push(format!("CAST(max({c}) AS VARCHAR)"));
            }
        }
        let sql = format!(
            "SELECT {} FROM \"{}\".\"{}\"",
            items.join(", "),
            def.schema,
            def.name
        );
        let batches = self.query_on(self.view(), &sql).await?;
        let batch = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| sql_err!(code::INTERNAL, "ANALYZE query returned no row"))?;
        let int = |col: usize| -> u64 {
            let a = batch.column(col);
            match a.data_type() {
                DataType::Int64 => a.as_primitive::<Int64Type>().value(0).max(0) as u64,
                DataType::UInt64 => a.as_primitive::<UInt64Type>().value(0),
                _ => 0,
            }
        };
        let text = |col: usize| -> Option<String> {
            // CAST(… AS VARCHAR) may come back as Utf8View.
            let a = datafusion::arrow::compute::cast(batch.column(col), &DataType::Utf8).ok()?;
            let a = a.as_string_opt::<i32>()?;
            (!a.is_null(0)).then(|| a.value(0).to_string())
        };
        let rows = int(0);
        let mut at = 1;
        let mut out = Vec::new();
        for &i in columns {
            let non_null = int(at);
            let distinct = int(at + 1);
            at += 2;
            let (min, max) = if has_bounds(&def.columns[i].sql_type) {
                at += 2;
                (text(at - 2), text(at - 1))
            } else {
                (None, None)
            };
            out.push(ColumnStats {
                name: def.columns[i].name.clone(),
                min,
                max,
                null_count: rows - non_null.min(rows),
                distinct,
            });
        }
        Ok(TableStats {
            rows,
            analyzed_at_us: crate::now_us(),
            columns: out,
        })
    }
}

impl StatementContext {
    /// `ANALYZE COMPRESSION t [(cols)] [COMPROWS n]`: encode a sample of each column with
    /// every encoding Redshift allows for its type and report the smallest, as Redshift's
    /// (Table, Column, Encoding, Est_reduction_pct) rows.
    async fn analyze_compression(&mut self, a: Analyze, comprows: Option<u64>) -> Result<Outcome> {
        let view = self.view();
        let Some(name) = &a.table_name else {
            return Err(sql_err!(
                code::SYNTAX_ERROR,
                "ANALYZE COMPRESSION needs a table name"
            ));
        };
        let def = view.named_table(name)?;
        let columns = def.column_indices(&a.columns)?;
        let best = self
            .sample_encodings(&def, &columns, comprows.unwrap_or(100_000))
            .await?;
        let (mut col_names, mut encodings, mut reductions) = (vec![], vec![], vec![]);
        for (&i, (encoding, reduction)) in columns.iter().zip(best) {
            col_names.push(def.columns[i].name.clone());
            encodings.push(encoding);
            reductions.push(reduction);
        }
        let n = col_names.len();
        let schema = analyze_compression_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![def.name.clone(); n])),
                Arc::new(StringArray::from(col_names)),
                Arc::new(StringArray::from(encodings)),
                Arc::new(
                    Decimal128Array::from(reductions)
                        .with_precision_and_scale(5, 2)
                        .map_err(datafusion::error::DataFusionError::from)?,
                ),
            ],
        )
        .map_err(datafusion::error::DataFusionError::from)?;
        Ok(crate::commands::context::rows_outcome(schema, vec![batch]))
    }
}

impl StatementContext {
    /// For each of `columns`, the smallest allowed encoding on a sample of up to `rows`
    /// rows of the table and its size reduction against RAW (hundredths of a percent):
    /// ANALYZE COMPRESSION's answer and COPY's COMPUPDATE ON.
    pub(crate) async fn sample_encodings(
        &mut self,
        def: &TableDef,
        columns: &[usize],
        rows: u64,
    ) -> Result<Vec<(String, i128)>> {
        let list: Vec<String> = columns
            .iter()
            .map(|&i| format!("\"{}\"", def.columns[i].name))
            .collect();
        let sql = format!(
            "SELECT {} FROM \"{}\".\"{}\" LIMIT {}",
            list.join(", "),
            def.schema,
            def.name,
            rows.max(1)
        );
        let batches = self.query_on(self.view(), &sql).await?;
        let mut out = Vec::with_capacity(columns.len());
        for (k, &i) in columns.iter().enumerate() {
            let column = &def.columns[i];
            let refs: Vec<&dyn Array> = batches.iter().map(|b| b.column(k).as_ref()).collect();
            let sample = if refs.is_empty() {
                datafusion::arrow::array::new_empty_array(&column.sql_type.to_arrow())
            } else {
                datafusion::arrow::compute::concat(&refs)
                    .map_err(datafusion::error::DataFusionError::from)?
            };
            out.push(best_encoding(
                column,
                &sample,
                def.sort_key.first() == Some(&i),
            )?);
        }
        Ok(out)
    }
}

/// The result shape of ANALYZE COMPRESSION (Redshift's column names).
pub(crate) fn analyze_compression_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Table", DataType::Utf8, false),
        Field::new("Column", DataType::Utf8, false),
        Field::new("Encoding", DataType::Utf8, false),
        Field::new("Est_reduction_pct", DataType::Decimal128(5, 2), false),
    ]))
}

/// Encoded payload bytes of `sample` stored with `codec` (block payloads only: the
/// footer is the same whatever the encoding).
fn encoded_size(sample: &ArrayRef, codec: Codec) -> Result<u64> {
    let field = Field::new("c", sample.data_type().clone(), true);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![sample.clone()])
        .map_err(datafusion::error::DataFusionError::from)?;
    let bytes = write_segment(&batch, &[codec])
        .map_err(|e| sql_err!(code::INTERNAL, "encoding sample: {e}"))?;
    let reader = SegmentReader::open("sample", bytes)
        .map_err(|e| sql_err!(code::INTERNAL, "encoding sample: {e}"))?;
    Ok(reader.footer().columns[0]
        .blocks
        .iter()
        .map(|b| u64::from(b.len))
        .sum())
}

/// The smallest allowed encoding for `column` on `sample` and its size reduction against
/// RAW in hundredths of a percent. The leading sort key column stays RAW, as Redshift
/// recommends (zone maps on it must stay cheap to read).
fn best_encoding(
    column: &ColumnDef,
    sample: &ArrayRef,
    leading_sort_key: bool,
) -> Result<(String, i128)> {
    let raw = encoded_size(sample, Codec::Raw)?;
    if leading_sort_key || raw == 0 {
        return Ok(("raw".into(), 0));
    }
    let mut best = ("raw", raw);
    let mut tried: Vec<Codec> = Vec::new();
    for enc in ddl::ENCODINGS {
        let codec = codec_for(enc);
        // Encodings served by the same codec would measure the same.
        if *enc == "raw" || !ddl::encoding_allowed(enc, &column.sql_type) || tried.contains(&codec)
        {
            continue;
        }
        tried.push(codec);
        let size = encoded_size(sample, codec)?;
        if size < best.1 {
            best = (enc, size);
        }
    }
    let reduction = ((raw - best.1) as f64 * 10_000.0 / raw as f64).round() as i128;
    Ok((best.0.to_string(), reduction))
}

/// Whether ANALYZE records min/max for a column type.
pub(crate) fn has_bounds(t: &SqlType) -> bool {
    // VARBYTE bounds are bytes, not text.
    !matches!(t, SqlType::Boolean | SqlType::Varbyte(_))
}

/// The rewrites a VACUUM in `mode` does to `def`.
fn plan_rewrites(def: &TableDef, mode: VacuumMode, threshold: f64) -> Vec<Rewrite> {
    let mut by_slice: BTreeMap<SliceId, Vec<SegmentRef>> = BTreeMap::new();
    for s in &def.segments {
        by_slice.entry(s.slice).or_default().push(s.clone());
    }
    let sorted_pct = 100.0 - unsorted_pct(def).unwrap_or(0.0);
    let has_key = !def.sort_key.is_empty();
    let sort_wanted = match mode {
        VacuumMode::DeleteOnly => false,
        VacuumMode::Reindex => true,
        VacuumMode::Full | VacuumMode::SortOnly => sorted_pct < threshold,
    };
    let mut out = Vec::new();
    for (slice, segments) in by_slice {
        let unsorted_here = segments.len() > 1 || segments.iter().any(|s| !s.sorted_region);
        if has_key && sort_wanted && unsorted_here {
            // The slice's unsorted region is merged into its sorted region.
            out.push(Rewrite {
                slice,
                old: segments,
                sort: true,
            });
        } else if !has_key && mode == VacuumMode::Full && segments.len() > 1 {
            // Without a sort key there is nothing to sort, but the small segments that
            // INSERTs append are compacted into few large ones.
            out.push(Rewrite {
                slice,
                old: segments,
                sort: false,
            });
        } else if mode != VacuumMode::SortOnly {
            for s in segments.into_iter().filter(|s| s.deletes.is_some()) {
                out.push(Rewrite {
                    slice,
                    old: vec![s],
                    sort: false,
                });
            }
        }
    }
    out
}
