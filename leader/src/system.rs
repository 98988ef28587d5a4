//! Redshift's system tables, computed from a catalog snapshot and the cluster state when a
//! query names them: `stv_slices` (which node owns which slice), `stv_tbl_perm` (rows per
//! table per slice) and `svv_table_info` (per-table size, distribution and skew).

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_storage::layout::SliceId;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use crate::catalog::{CatalogState, DistStyle, TableDef};
use crate::cluster::Cluster;

#[derive(Debug)]
pub struct SystemTables {
    cluster: Arc<Cluster>,
}

const NAMES: &[&str] = &["stv_slices", "stv_tbl_perm", "svv_table_info"];

impl SystemTables {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self { cluster }
    }

    pub fn exists(&self, name: &str) -> bool {
        NAMES.contains(&name)
    }

    pub fn table(&self, name: &str, view: &CatalogState) -> Option<Arc<dyn TableProvider>> {
        let batch = match name {
            "stv_slices" => self.stv_slices(),
            "stv_tbl_perm" => self.stv_tbl_perm(view),
            "svv_table_info" => self.svv_table_info(view),
            _ => return None,
        };
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).ok()?;
        Some(Arc::new(table))
    }

    fn stv_slices(&self) -> RecordBatch {
        let n = self.cluster.slice_count();
        let node: Vec<i32> = (0..n).map(|s| self.cluster.owner_of(s) as i32).collect();
        let slice: Vec<i32> = (0..n).map(|s| s as i32).collect();
        let local: Vec<i32> = (0..n)
            .map(|s| (s % self.cluster.slices_per_node) as i32)
            .collect();
        batch(vec![
            ("node", Arc::new(Int32Array::from(node))),
            ("slice", Arc::new(Int32Array::from(slice))),
            ("localslice", Arc::new(Int32Array::from(local))),
            ("type", Arc::new(StringArray::from(vec!["D"; n as usize]))),
        ])
    }

    /// Rows per slice of one table; DISTSTYLE ALL tables report their copy on every node's
    /// first slice, as Redshift does.
    fn slice_rows(&self, t: &TableDef) -> BTreeMap<u32, u64> {
        let mut rows: BTreeMap<u32, u64> =
            (0..self.cluster.slice_count()).map(|s| (s, 0)).collect();
        for seg in &t.segments {
            match seg.slice {
                SliceId::Slice(s) => *rows.entry(s).or_default() += seg.rows,
                SliceId::All => {
                    for node in 0..self.cluster.nodes {
                        *rows.entry(node * self.cluster.slices_per_node).or_default() += seg.rows;
                    }
                }
            }
        }
        rows
    }

    fn stv_tbl_perm(&self, view: &CatalogState) -> RecordBatch {
        let (mut slice, mut id, mut name, mut rows, mut backup) =
            (vec![], vec![], vec![], vec![], vec![]);
        for t in view.tables.values() {
            for (s, r) in self.slice_rows(t) {
                slice.push(s as i32);
                id.push(t.id as i64);
                name.push(t.name.clone());
                rows.push(r as i64);
                backup.push(i32::from(t.backup));
            }
        }
        let sorted = rows.clone();
        batch(vec![
            ("slice", Arc::new(Int32Array::from(slice))),
            ("id", Arc::new(Int64Array::from(id))),
            ("name", Arc::new(StringArray::from(name))),
            ("rows", Arc::new(Int64Array::from(rows))),
            ("sorted_rows", Arc::new(Int64Array::from(sorted))),
            ("backup", Arc::new(Int32Array::from(backup))),
        ])
    }

    fn svv_table_info(&self, view: &CatalogState) -> RecordBatch {
        let tables: Vec<&Arc<TableDef>> = view.tables.values().collect();
        let strings = |f: &dyn Fn(&TableDef) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(
                tables.iter().map(|t| f(t)).collect::<Vec<_>>(),
            ))
        };
        let ints = |f: &dyn Fn(&TableDef) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(
                tables.iter().map(|t| f(t)).collect::<Vec<_>>(),
            ))
        };
        // Ratio of the fullest slice to the emptiest (NULL while a slice is empty).
        let skew: Vec<Option<f64>> = tables
            .iter()
            .map(|t| {
                let per_slice = self.slice_rows(t);
                let used: Vec<u64> = match t.dist {
                    DistStyle::All => per_slice.values().copied().filter(|r| *r > 0).collect(),
                    _ => per_slice.values().copied().collect(),
                };
                let max = used.iter().copied().max().unwrap_or(0);
                let min = used.iter().copied().min().unwrap_or(0);
                (min > 0).then(|| (max as f64 / min as f64 * 100.0).round() / 100.0)
            })
            .collect();
        batch(vec![
            ("database", strings(&|_| Some("dev".into()))),
            ("schema", strings(&|t| Some(t.schema.clone()))),
            ("table_id", ints(&|t| t.id as i64)),
            ("table", strings(&|t| Some(t.name.clone()))),
            (
                "encoded",
                strings(&|t| {
                    Some(
                        if t.columns.iter().any(|c| c.encoding != "raw") {
                            "Y"
                        } else {
                            "N"
                        }
                        .into(),
                    )
                }),
            ),
            ("diststyle", strings(&|t| Some(t.diststyle_name()))),
            (
                "sortkey1",
                strings(&|t| t.sort_key.first().map(|i| t.columns[*i].name.clone())),
            ),
            ("sortkey_num", ints(&|t| t.sort_key.len() as i64)),
            (
                "size",
                ints(&|t| {
                    t.segments
                        .iter()
                        .map(|s| s.bytes)
                        .sum::<u64>()
                        .div_ceil(1024 * 1024) as i64
                }),
            ),
            ("tbl_rows", ints(&|t| t.rows() as i64)),
            (
                "unsorted",
                Arc::new(Float64Array::from(
                    tables.iter().map(|t| unsorted_pct(t)).collect::<Vec<_>>(),
                )),
            ),
            ("skew_rows", Arc::new(Float64Array::from(skew))),
        ])
    }
}

/// Percentage of a sorted table's rows outside its sorted region. Each slice's first
/// segment is that slice's sorted region; every later INSERT/COPY appends a segment that
/// is sorted only within itself, until VACUUM merges them. NULL for a table without a sort
/// key (as in Redshift).
fn unsorted_pct(t: &TableDef) -> Option<f64> {
    if t.sort_key.is_empty() {
        return None;
    }
    let total = t.rows();
    if total == 0 {
        return Some(0.0);
    }
    let mut seen = std::collections::HashSet::new();
    let sorted: u64 = t
        .segments
        .iter()
        .filter(|s| seen.insert(s.slice))
        .map(|s| s.rows)
        .sum();
    Some(((total - sorted) as f64 * 10_000.0 / total as f64).round() / 100.0)
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("system table columns have equal lengths")
}
