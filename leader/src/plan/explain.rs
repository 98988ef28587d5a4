//! `EXPLAIN` in Redshift's form: one `QUERY PLAN` text column, a tree of `XN` steps with
//! `(cost=startup..total rows=N width=W)` estimates, the data movement on every join
//! (`DS_DIST_NONE`, `DS_DIST_ALL_NONE`, `DS_DIST_INNER`, `DS_DIST_OUTER`, `DS_DIST_BOTH`,
//! `DS_BCAST_INNER`) and `XN Network` where rows are sent to the leader. It is drawn from
//! the physical plan Basalt will actually run (`EXPLAIN VERBOSE` still shows DataFusion's
//! own plans). Estimates follow Redshift's convention of 0.01 per row processed, from the
//! catalog's live row counts; they are upper bounds (filters are not given a
//! selectivity).

use std::collections::BTreeMap;
use std::sync::Arc;

use basalt_worker::exec::exchange::{ExchangeKind, ExchangeReadExec};
use basalt_worker::exec::scan::SliceScanExec;
use datafusion::arrow::datatypes::{DataType, Schema};

use crate::sql::types::SqlType;
use datafusion::common::JoinType;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::limit::{GlobalLimitExec, LocalLimitExec};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::union::UnionExec;

use crate::catalog::{CatalogState, DistStyle};
use crate::plan::exec::ClusterScanExec;

/// What `EXPLAIN` returns: one text column, one row per line.
pub fn query_plan_schema() -> datafusion::arrow::datatypes::SchemaRef {
    Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "QUERY PLAN",
        DataType::Utf8,
        false,
    )]))
}

/// The lines of Redshift's `EXPLAIN` output for `plan`.
pub fn redshift_plan(plan: &Arc<dyn ExecutionPlan>, view: &CatalogState) -> Vec<String> {
    let tables = view
        .tables
        .values()
        .map(|t| (t.id, (t.rows(), t.dist == DistStyle::All)))
        .collect();
    let mut out = Explainer {
        tables,
        lines: vec![],
    };
    let step = out.step(plan, vec![]);
    out.draw(&step, 0, true);
    out.lines
}

/// One drawn step: its title, detail lines, estimates and the steps under it.
struct Step {
    title: String,
    details: Vec<String>,
    startup: f64,
    total: f64,
    rows: u64,
    width: usize,
    children: Vec<Step>,
}

struct Explainer {
    /// Live rows and whether the table is DISTSTYLE ALL, by table id.
    tables: BTreeMap<u64, (u64, bool)>,
    lines: Vec<String>,
}

/// Cost of handling one row (Redshift's unit).
const ROW_COST: f64 = 0.01;

impl Explainer {
    fn draw(&mut self, step: &Step, column: usize, root: bool) {
        let details: Vec<String> = step.details.iter().map(|d| without_indices(d)).collect();
        let pad = " ".repeat(column);
        let head = format!(
            "{}  (cost={:.2}..{:.2} rows={} width={})",
            step.title, step.startup, step.total, step.rows, step.width
        );
        self.lines.push(if root {
            format!("{pad}{head}")
        } else {
            format!("{pad}->  {head}")
        });
        // Details and children hang under the title text.
        let text_column = if root { column } else { column + 4 };
        for d in &details {
            self.lines.push(format!("{}  {d}", " ".repeat(text_column)));
        }
        for c in &step.children {
            self.draw(c, text_column + 2, false);
        }
    }

    fn leaf(&self, title: String, rows: u64, schema: &Schema, details: Vec<String>) -> Step {
        Step {
            title,
            details,
            startup: 0.0,
            total: rows as f64 * ROW_COST,
            rows,
            width: width(schema),
            children: vec![],
        }
    }

    /// A step over `children`; `blocking` steps (hash, sort, aggregate) start only once
    /// their input is consumed.
    fn over(
        &self,
        title: String,
        node: &Arc<dyn ExecutionPlan>,
        rows: u64,
        blocking: bool,
        details: Vec<String>,
        children: Vec<Step>,
    ) -> Step {
        let input: f64 = children.iter().map(|c| c.total).sum();
        Step {
            title,
            details,
            startup: if blocking { input } else { 0.0 },
            total: input + rows as f64 * ROW_COST,
            rows,
            width: width(&node.schema()),
            children,
        }
    }

    /// The step for `node`; `filters` are predicates of filters above it that are drawn
    /// on it (Redshift shows a scan's filter under the scan).
    fn step(&self, node: &Arc<dyn ExecutionPlan>, mut filters: Vec<String>) -> Step {
        // Steps that only move batches between partitions inside one process draw as
        // their input.
        if (node.is::<ProjectionExec>()
            || node.is::<CoalescePartitionsExec>()
            || node.is::<RepartitionExec>()
            || node.is::<CooperativeExec>())
            && let Some(child) = node.children().first()
        {
            let input = self.step(child, filters);
            // A merge of partitions can carry the query's LIMIT.
            return match node.fetch() {
                Some(limit) => self.over(
                    "XN Limit".into(),
                    node,
                    input.rows.min(limit as u64),
                    false,
                    vec![],
                    vec![input],
                ),
                None => input,
            };
        }
        if let Some(f) = node.downcast_ref::<FilterExec>() {
            filters.push(format!("Filter: ({})", f.predicate()));
            return self.step(f.input(), filters);
        }
        if let Some(scan) = node.downcast_ref::<ClusterScanExec>() {
            let inner = self.step(scan.fragment(), filters);
            return Step {
                title: "XN Network".into(),
                details: vec!["Send to leader".into()],
                startup: 0.0,
                total: inner.total,
                rows: inner.rows,
                width: inner.width,
                children: vec![inner],
            };
        }
        if let Some(scan) = node.downcast_ref::<SliceScanExec>() {
            let rows = self.tables.get(&scan.table_id).map_or(0, |t| t.0);
            let rows = scan.limit.map_or(rows, |l| rows.min(l as u64));
            return self.leaf(
                format!("XN Seq Scan on {}", scan.table_name),
                rows,
                &node.schema(),
                filters,
            );
        }
        if let Some(exchange) = node.downcast_ref::<ExchangeReadExec>() {
            // The producer's fragment, as the producing slices run it.
            return match crate::plan::exec::decode_fragment(&exchange.plan) {
                Some(producer) => self.step(&producer, filters),
                None => self.leaf("XN Result".into(), 0, &node.schema(), filters),
            };
        }
        let children: Vec<Step> = node
            .children()
            .into_iter()
            .map(|c| self.step(c, vec![]))
            .collect();
        let max_rows = children.iter().map(|c| c.rows).max().unwrap_or(0);
        let sum_rows = children.iter().map(|c| c.rows).sum::<u64>();
        if let Some(join) = node.downcast_ref::<HashJoinExec>() {
            let mut children = children;
            let (Some(outer), Some(inner)) = (children.pop(), children.pop()) else {
                return self.over("XN Hash Join".into(), node, 0, false, filters, vec![]);
            };
            let hash = Step {
                title: "XN Hash".into(),
                details: vec![],
                startup: inner.total,
                total: inner.total,
                rows: inner.rows,
                width: inner.width,
                children: vec![inner],
            };
            let conditions: Vec<String> = join
                .on()
                .iter()
                .map(|(l, r)| format!("(\"outer\".{r} = \"inner\".{l})"))
                .collect();
            let mut details = vec![format!("Hash Cond: {}", conditions.join(" AND "))];
            details.extend(filters);
            let title = format!(
                "XN {} {}",
                hash_join_name(*join.join_type()),
                self.movement(node, join)
            );
            return self.over(
                title,
                node,
                outer.rows.max(hash.rows),
                false,
                details,
                vec![outer, hash],
            );
        }
        let (title, rows, blocking, mut details) = if node.is::<NestedLoopJoinExec>() {
            ("XN Nested Loop".to_string(), max_rows, false, vec![])
        } else if let Some(a) = node.downcast_ref::<AggregateExec>() {
            let grouped = !a.group_expr().expr().is_empty();
            let title = if grouped {
                "XN HashAggregate"
            } else {
                "XN Aggregate"
            };
            (
                title.to_string(),
                if grouped { max_rows } else { 1 },
                true,
                vec![],
            )
        } else if let Some(s) = node.downcast_ref::<SortExec>() {
            let keys: Vec<String> = s.expr().iter().map(|e| e.to_string()).collect();
            let rows = s.fetch().map_or(max_rows, |f| max_rows.min(f as u64));
            let detail = format!("Sort Key: {}", keys.join(", "));
            ("XN Sort".to_string(), rows, true, vec![detail])
        } else if let Some(m) = node.downcast_ref::<SortPreservingMergeExec>() {
            let keys: Vec<String> = m.expr().iter().map(|e| e.to_string()).collect();
            let rows = m.fetch().map_or(max_rows, |f| max_rows.min(f as u64));
            let detail = format!("Merge Key: {}", keys.join(", "));
            ("XN Merge".to_string(), rows, false, vec![detail])
        } else if let Some(l) = node.downcast_ref::<GlobalLimitExec>() {
            let rows = l.fetch().map_or(max_rows, |f| max_rows.min(f as u64));
            ("XN Limit".to_string(), rows, false, vec![])
        } else if let Some(l) = node.downcast_ref::<LocalLimitExec>() {
            let rows = max_rows.min(l.fetch() as u64);
            ("XN Limit".to_string(), rows, false, vec![])
        } else if node.is::<UnionExec>() {
            ("XN Append".to_string(), sum_rows, false, vec![])
        } else if node.name().contains("Window") {
            ("XN Window".to_string(), max_rows, true, vec![])
        } else if children.is_empty() {
            // Leader-only data: catalog and system tables, VALUES, constants.
            let title = match node.name() {
                "PlaceholderRowExec" | "EmptyExec" => "XN Result".to_string(),
                _ => "LD Seq Scan".to_string(),
            };
            let rows = u64::from(node.name() == "PlaceholderRowExec");
            (title, rows, false, vec![])
        } else {
            let name = node.name().trim_end_matches("Exec").to_string();
            (format!("XN {name}"), max_rows, false, vec![])
        };
        details.extend(filters);
        self.over(title, node, rows, blocking, details, children)
    }

    /// How the join's rows got to it, as Redshift labels it: an exchange under it names
    /// the movement; a join inside a slice's fragment with none moved nothing; a join on
    /// the leader received both sides there.
    fn movement(&self, node: &Arc<dyn ExecutionPlan>, join: &HashJoinExec) -> &'static str {
        let exchange_kind = |plan: &Arc<dyn ExecutionPlan>| -> Option<ExchangeKind> {
            let mut node = plan.clone();
            loop {
                if let Some(e) = node.downcast_ref::<ExchangeReadExec>() {
                    return Some(e.kind);
                }
                let children = node.children();
                if children.len() != 1 || node.is::<HashJoinExec>() {
                    return None;
                }
                node = children[0].clone();
            }
        };
        match (exchange_kind(join.left()), exchange_kind(join.right())) {
            (Some(ExchangeKind::Broadcast), _) => return "DS_BCAST_INNER",
            (Some(_), Some(_)) => return "DS_DIST_BOTH",
            (Some(_), None) => return "DS_DIST_INNER",
            (None, Some(_)) => return "DS_DIST_OUTER",
            (None, None) => {}
        }
        let mut scans = 0;
        let mut all = false;
        let mut on_slices = true;
        let _ = datafusion::common::tree_node::TreeNode::apply(node, |n| {
            if let Some(s) = n.downcast_ref::<SliceScanExec>() {
                scans += 1;
                all |= self.tables.get(&s.table_id).is_some_and(|t| t.1);
            }
            if n.is::<ClusterScanExec>() {
                on_slices = false;
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
        if !on_slices || scans == 0 {
            // Both sides were sent to the leader, which joins them.
            return "DS_DIST_BOTH (on leader)";
        }
        if all {
            "DS_DIST_ALL_NONE"
        } else {
            "DS_DIST_NONE"
        }
    }
}

/// PostgreSQL's name for a hash join, whose hashed (inner) side is DataFusion's left.
fn hash_join_name(join_type: JoinType) -> &'static str {
    match join_type {
        JoinType::Inner => "Hash Join",
        // DataFusion's left (build) side is the inner side.
        JoinType::Left => "Hash Right Join",
        JoinType::Right => "Hash Left Join",
        JoinType::Full => "Hash Full Join",
        JoinType::LeftSemi | JoinType::RightSemi | JoinType::LeftMark | JoinType::RightMark => {
            "Hash Semi Join"
        }
        JoinType::LeftAnti | JoinType::RightAnti => "Hash Anti Join",
    }
}

/// `expr` as DataFusion prints it, without the `@<index>` after each column name.
fn without_indices(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '@' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes per row, as Redshift estimates it from the column types: a fixed-length type's
/// `typlen`, 16 for DECIMAL, 32 for variable-length text.
fn width(schema: &Schema) -> usize {
    schema
        .fields()
        .iter()
        .map(|f| match SqlType::from_arrow(f.data_type()) {
            Ok(SqlType::Decimal { .. }) => 16,
            Ok(t) => usize::try_from(crate::system::pg_catalog::type_len(t.pg_type().oid()))
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(32),
            Err(_) => 8,
        })
        .sum()
}
