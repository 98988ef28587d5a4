//! dbt with dbt-redshift against a fresh cluster: the sample project in `tests/dbt/` (seeds,
//! a table with DISTKEY/SORTKEY, a view, a late-binding view, an incremental model run
//! twice, schema tests, persisted docs) goes through, as a user who is no superuser, `dbt debug`, `seed`, `run` twice,
//! `test` and `docs generate`, and what it built is checked over the wire. `scripts/test`
//! installs dbt-redshift.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{LocalCluster, rows};

/// Run `dbt <args>` on the sample project with the profile in `work`; panics with dbt's
/// output unless it succeeds.
fn dbt(work: &Path, args: &[&str]) -> String {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dbt");
    let out = Command::new("dbt")
        .args(args)
        .arg("--project-dir")
        .arg(&project)
        .arg("--profiles-dir")
        .arg(work)
        .env("DBT_TARGET_PATH", work.join("target"))
        .env("DBT_LOG_PATH", work.join("logs"))
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_VERSION_CHECK", "false")
        .env("DBT_USE_COLORS", "false")
        .env("DBT_PARTIAL_PARSE", "false")
        .output()
        .expect("run dbt (pip install dbt-redshift)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "dbt {args:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn dbt_project_builds_tests_and_documents() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The default authentication (MD5, as Redshift's): what dbt-redshift's driver speaks.
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
    // dbt runs as a user who is no superuser and holds what dbt-redshift asks for: CREATE
    // on the database, so it can create its schema (and then owns what it builds).
    cluster
        .connect()
        .await
        .batch_execute(
            "create user dbt_user password 'DbtUser123'; grant create on database dev to dbt_user",
        )
        .await
        .expect("create dbt's user");
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        work.path().join("profiles.yml"),
        format!(
            "basalt:\n  target: dev\n  outputs:\n    dev:\n      type: redshift\n      \
             host: 127.0.0.1\n      port: {}\n      user: dbt_user\n      password: DbtUser123\n      \
             dbname: dev\n      schema: analytics\n      threads: 1\n      sslmode: disable\n",
            cluster.port
        ),
    )
    .expect("write profiles.yml");

    let out = dbt(work.path(), &["debug"]);
    assert!(out.contains("All checks passed"), "{out}");
    let out = dbt(work.path(), &["seed"]);
    assert!(out.contains("PASS=2"), "{out}");
    let out = dbt(work.path(), &["run"]);
    assert!(out.contains("PASS=5"), "{out}");
    // The second run takes the incremental path (delete+insert of the newest orders: the
    // count below stays 8 only if the delete ran) and rebuilds the tables, whose CASCADE
    // drop takes the view over `customers` along, as Redshift's does; dbt learns that from
    // pg_depend and creates the view again.
    let out = dbt(work.path(), &["run"]);
    assert!(out.contains("PASS=5"), "{out}");
    let out = dbt(work.path(), &["test"]);
    assert!(out.contains("PASS=12"), "{out}");
    let out = dbt(work.path(), &["docs", "generate"]);
    assert!(out.contains("Catalog written"), "{out}");

    let client = cluster.connect().await;
    let count = |rel: &str| format!("select count(*) from analytics.{rel}");
    for (rel, n) in [
        ("raw_customers", "4"),
        ("raw_orders", "8"),
        ("customers", "4"),
        ("orders", "8"),
        ("shipped_orders", "5"),
        ("orders_incremental", "8"),
        ("customer_totals", "4"),
    ] {
        assert_eq!(
            rows(&client, &count(rel)).await,
            vec![vec![n.to_string()]],
            "{rel}"
        );
    }
    assert_eq!(
        rows(
            &client,
            "select name, orders, total from analytics.customer_totals order by customer_id"
        )
        .await,
        vec![
            vec!["Alice", "2", "30.50"],
            vec!["Bob", "2", "19.25"],
            vec!["Carol", "2", "57.00"],
            vec!["Dan", "2", "12.00"],
        ]
    );
    // What each model became, with its dist/sort keys and persisted docs.
    assert_eq!(
        rows(
            &client,
            "select c.relname, c.relkind, c.reldiststyle, obj_description(c.oid) \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = 'analytics' order by c.relname"
        )
        .await,
        vec![
            vec!["customer_totals", "r", "8", "NULL"],
            vec!["customers", "r", "1", "One row per customer."],
            vec!["orders", "v", "0", "Orders with their customer's region."],
            vec![
                "orders_incremental",
                "r",
                "0",
                "Orders, loaded incrementally."
            ],
            vec!["raw_customers", "r", "11", "NULL"],
            vec!["raw_orders", "r", "11", "NULL"],
            vec![
                "shipped_orders",
                "v",
                "0",
                "Shipped orders (a late-binding view)."
            ],
        ]
    );
    assert_eq!(
        rows(
            &client,
            "select \"column\", distkey, sortkey from pg_table_def \
             where schemaname = 'analytics' and tablename = 'customers' order by \"column\""
        )
        .await,
        vec![
            vec!["id", "true", "2"],
            vec!["name", "false", "0"],
            vec!["region", "false", "1"],
        ]
    );
    assert_eq!(
        rows(
            &client,
            "select col_description(c.oid, 1) from pg_class c where c.relname = 'customers'"
        )
        .await,
        vec![vec!["The customer's id."]]
    );
    assert_eq!(
        rows(
            &client,
            "select view_schema, view_name, col_name, col_type, col_num \
             from pg_get_late_binding_view_cols() \
             cols(view_schema name, view_name name, col_name name, col_type varchar, col_num int) \
             order by col_num"
        )
        .await,
        vec![
            vec!["analytics", "shipped_orders", "id", "integer", "1"],
            vec!["analytics", "shipped_orders", "customer_id", "integer", "2"],
            vec![
                "analytics",
                "shipped_orders",
                "amount",
                "numeric(10,2)",
                "3"
            ],
        ]
    );
    let catalog =
        std::fs::read_to_string(work.path().join("target/catalog.json")).expect("catalog.json");
    for name in [
        "model.basalt_sample.customers",
        "model.basalt_sample.orders",
    ] {
        assert!(catalog.contains(name), "{name} missing from catalog.json");
    }
}
