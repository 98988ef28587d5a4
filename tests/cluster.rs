//! Cluster-level behaviour on real `basalt local` clusters: data survives a restart, a
//! killed worker gives a clear error and the cluster recovers, authentication works with
//! both SCRAM-SHA-256 and MD5 and rejects wrong passwords, parameters bind in binary.

mod support;

use std::time::{Duration, Instant};

use support::{LocalCluster, cell, error_text, rows};

/// Hashing a million values twice keeps both workers busy for well over a second.
const SLOW_QUERY: &str =
    "select count(*) from slow where md5(md5(cast(x as varchar))) like '%abc%'";

/// `slow(k, x)`: a million rows for [`SLOW_QUERY`].
async fn create_slow_table(c: &tokio_postgres::Client) {
    c.batch_execute(
        "create table slow (k int distkey, x bigint);
         insert into slow select value % 1000, value from generate_series(1, 1000000);",
    )
    .await
    .unwrap();
}

/// The rows of `sql` once the cluster answers it again (after a worker restart), waiting
/// at most 30 s.
async fn rows_once_recovered(c: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.query(sql, &[]).await {
            Ok(r) => {
                return r
                    .iter()
                    .map(|row| (0..row.len()).map(|i| cell(row, i)).collect())
                    .collect();
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("cluster did not recover: {}", error_text(&e)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_rows_survive_a_restart_and_rolled_back_rows_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
        let c = cluster.connect().await;
        c.batch_execute(
            "create table r (k int distkey, x bigint) sortkey(x);
             insert into r select value % 100, value from generate_series(1, 100000);
             begin; insert into r values (1000, 1); rollback;",
        )
        .await
        .unwrap();
        assert_eq!(
            rows(&c, "select count(*), sum(x) from r").await,
            vec![vec!["100000", "5000050000"]]
        );
    }
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
    let c = cluster.connect().await;
    assert_eq!(
        rows(&c, "select count(*), sum(x) from r").await,
        vec![vec!["100000", "5000050000"]]
    );
    assert_eq!(
        rows(
            &c,
            "select k, count(*), sum(x) from r where k in (0, 99) group by k order by k"
        )
        .await,
        vec![
            vec!["0", "1000", "50050000"],
            vec!["99", "1000", "50049000"]
        ]
    );
    assert_eq!(
        rows(&c, "select count(*) from r where k = 1000").await,
        vec![vec!["0"]]
    );
    // The restarted cluster keeps accepting writes.
    c.batch_execute("insert into r values (5, 5)")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "select count(*) from r").await,
        vec![vec!["100001"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_gives_clear_error_then_recovers() {
    let cluster = LocalCluster::start(2, 2);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table w (k int distkey, x int);
         insert into w select value, value * 1 from generate_series(1, 1000);",
    )
    .await
    .unwrap();
    let workers = cluster.worker_pids();
    assert_eq!(
        workers.len(),
        2,
        "expected two worker processes, got {workers:?}"
    );
    unsafe {
        libc::kill(workers[0] as i32, libc::SIGKILL);
    }
    // Queries needing the dead worker fail fast with an error naming it. (`basalt local`
    // starts a dead worker again a second after it noticed the exit, so the first query
    // after the kill meets a dead worker.)
    let started = Instant::now();
    let err = c
        .query("select count(*) from w", &[])
        .await
        .map(|_| ())
        .map_err(|e| error_text(&e))
        .expect_err("query succeeded with a dead worker");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.starts_with("08006 worker "), "unexpected error: {err}");
    // The session is still usable and, once the worker is back, the query succeeds.
    assert_eq!(
        rows_once_recovered(&c, "select count(*), sum(x) from w").await,
        vec![vec!["1000", "500500"]]
    );
    assert_eq!(cluster.worker_pids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_auth_binary_parameters_and_wrong_passwords() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_in(tmp.path(), 1, 2, &["--auth-method", "md5"]);
    let c = cluster.connect().await;
    c.batch_execute("create table p (id int, name varchar(10), v double precision, d date)")
        .await
        .unwrap();
    let stmt = c
        .prepare("insert into p values ($1, $2, $3, $4)")
        .await
        .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2024, 5, 6).unwrap();
    for (id, name) in [(1i32, "one"), (2, "two")] {
        c.execute(&stmt, &[&id, &name, &(id as f64 * 1.5), &day])
            .await
            .unwrap();
    }
    let r = c
        .query("select name, v, d from p where id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get::<_, String>(0), "two");
    assert_eq!(r[0].get::<_, f64>(1), 3.0);
    assert_eq!(r[0].get::<_, chrono::NaiveDate>(2), day);

    support::assert_wrong_password_refused(&cluster).await;
    let nobody = format!(
        "host=127.0.0.1 port={} user=nobody password=x dbname=dev",
        cluster.port
    );
    assert!(
        tokio_postgres::connect(&nobody, tokio_postgres::NoTls)
            .await
            .is_err()
    );
}

/// SCRAM-SHA-256, for clusters that choose it (MD5 is the default, as in Redshift).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_auth_accepts_the_password_and_rejects_others() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_in(tmp.path(), 1, 2, &["--auth-method", "scram-sha-256"]);
    let c = cluster.connect().await;
    assert_eq!(rows(&c, "select 1 + 1").await, vec![vec!["2"]]);
    support::assert_wrong_password_refused(&cluster).await;
    // psql negotiates SCRAM too.
    assert_eq!(
        support::psql(&cluster, "select current_user"),
        (true, "admin\n".to_string(), String::new())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reports_itself_as_redshift_and_pushes_work_to_workers() {
    let cluster = LocalCluster::start(1, 2);
    let c = cluster.connect().await;
    c.batch_execute("create table ex (k int distkey, x int)")
        .await
        .unwrap();
    let plan = rows(
        &c,
        "explain verbose select k, count(*) from ex where x > 5 group by k",
    )
    .await;
    let physical = &plan
        .iter()
        .find(|r| r[0] == "physical_plan")
        .expect("physical plan")[1];
    // Filter and partial aggregate run per slice on the workers; the leader only merges.
    assert!(
        physical.contains("ClusterScanExec: table=ex")
            && physical.contains("fragment=[AggregateExec: mode=Partial")
            && physical.contains("FilterExec: x@1 > 5")
            && physical
                .contains("SliceScanExec: table=ex, projection=[k, x], pruning_predicate=x@1 > 5"),
        "{physical}"
    );
    // A filter alone (under DataFusion's cooperative wrapper) moves into the fragment too.
    let plan = rows(&c, "explain verbose select k from ex where x > 5").await;
    let physical = &plan
        .iter()
        .find(|r| r[0] == "physical_plan")
        .expect("physical plan")[1];
    assert!(
        physical.contains("ClusterScanExec: table=ex")
            && physical.contains("fragment=[FilterExec: x@1 > 5, projection=[k@0]"),
        "{physical}"
    );
    // A filter on a view reaches the scan of the view's table the same way.
    c.batch_execute("create view ex_view as select k, x * 2 as x2 from ex")
        .await
        .unwrap();
    let plan = rows(&c, "explain verbose select k from ex_view where x2 > 10").await;
    let physical = &plan
        .iter()
        .find(|r| r[0] == "physical_plan")
        .expect("physical plan")[1];
    assert!(
        physical.contains("ClusterScanExec: table=ex") && physical.contains("fragment=[FilterExec"),
        "{physical}"
    );
    let v = rows(&c, "select version()").await;
    assert!(
        v[0][0].starts_with("PostgreSQL 8.0.2 on x86_64-pc-linux-gnu"),
        "{v:?}"
    );
    assert!(v[0][0].contains("Redshift") && v[0][0].contains("Basalt"));
    let r = c.simple_query("show datestyle").await.unwrap();
    let values: Vec<&str> = r
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .collect();
    assert_eq!(values, vec!["ISO, MDY"]);
}

/// Joins run inside the slices' fragments, labelled as Redshift labels them: with no rows
/// moving when they need none, after a worker-to-worker exchange otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_that_need_no_data_movement_run_on_the_workers() {
    let cluster = LocalCluster::start(2, 2);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table o (okey bigint distkey, total int);
         create table l (okey bigint distkey, qty int);
         create table n (nkey bigint, name varchar(10)) diststyle all;
         create table ev (okey bigint, x int) diststyle even;
         insert into o values (1, 10), (2, 20), (3, 30), (4, 40);
         insert into l values (1, 5), (1, 6), (2, 7), (5, 8);
         insert into n values (1, 'one'), (2, 'two');
         insert into ev values (1, 100), (3, 300);",
    )
    .await
    .unwrap();
    let physical = |sql: &'static str| {
        let c = &c;
        async move {
            let plan = rows(c, &format!("explain verbose {sql}")).await;
            plan.iter()
                .find(|r| r[0] == "physical_plan")
                .expect("physical plan")[1]
                .clone()
        }
    };
    // Same DISTKEY on both sides: one fragment per slice joins them (and counts).
    let p = physical("select count(*), sum(qty) from o join l on o.okey = l.okey").await;
    assert!(
        p.contains("ClusterScanExec: table=o, l, slices=4, joins=[DS_DIST_NONE]")
            && p.contains("fragment=[AggregateExec: mode=Partial")
            && !p.contains("RepartitionExec"),
        "{p}"
    );
    // A DISTSTYLE ALL table joins on every slice; then the co-located join on top.
    let p = physical(
        "select o.okey, qty, name from o join l on o.okey = l.okey join n on n.nkey = o.okey",
    )
    .await;
    assert!(
        p.contains("table=o, l, n, slices=4, joins=[DS_DIST_NONE, DS_DIST_ALL_NONE]"),
        "{p}"
    );
    // Rows that must move first move worker to worker, labelled as Redshift labels the
    // movement: an ALL table whose unmatched rows the join keeps, and an EVEN table, go
    // to the slices of the DISTKEY side; with neither side on the key, both move.
    for (sql, label) in [
        (
            "select name, qty from n left join l on n.nkey = l.okey",
            "joins=[DS_DIST_INNER]",
        ),
        (
            "select * from o join ev on o.okey = ev.okey",
            "joins=[DS_DIST_OUTER]",
        ),
        (
            "select * from o join l on o.total = l.qty",
            "joins=[DS_DIST_BOTH]",
        ),
    ] {
        let p = physical(sql).await;
        assert!(
            p.contains(label) && p.contains("ExchangeReadExec: dist"),
            "{sql}: {p}"
        );
    }
    // EXPLAIN draws the plan as Redshift does: XN steps, estimates from the catalog's
    // row counts, the movement on every join.
    let explain = |sql: &'static str| {
        let c = &c;
        async move {
            rows(c, &format!("explain {sql}"))
                .await
                .into_iter()
                .map(|r| r[0].clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        explain(
            "select o.okey, qty, name from o join l on o.okey = l.okey join n on n.nkey = o.okey"
        )
        .await,
        vec![
            "XN Network  (cost=0.00..0.18 rows=4 width=44)",
            "  Send to leader",
            "  ->  XN Hash Join DS_DIST_ALL_NONE  (cost=0.00..0.18 rows=4 width=44)",
            "        Hash Cond: (\"outer\".nkey = \"inner\".okey)",
            "        ->  XN Seq Scan on n  (cost=0.00..0.02 rows=2 width=40)",
            "        ->  XN Hash  (cost=0.12..0.12 rows=4 width=12)",
            "              ->  XN Hash Join DS_DIST_NONE  (cost=0.00..0.12 rows=4 width=12)",
            "                    Hash Cond: (\"outer\".okey = \"inner\".okey)",
            "                    ->  XN Seq Scan on l  (cost=0.00..0.04 rows=4 width=12)",
            "                    ->  XN Hash  (cost=0.04..0.04 rows=4 width=8)",
            "                          ->  XN Seq Scan on o  (cost=0.00..0.04 rows=4 width=8)",
        ]
    );
    let plan = explain("select * from o join l on o.total = l.qty").await;
    assert!(
        plan.iter().any(|l| l.contains("XN Hash Join DS_DIST_BOTH")),
        "{plan:?}"
    );
    // Exchange bytes (svl_query_report's dist/bcast steps): none for a co-located join,
    // some for a redistribution.
    let moved = |sql: &'static str| {
        let c = &c;
        async move {
            rows(c, sql).await;
            rows(
                c,
                "select count(*), coalesce(sum(bytes), 0) from svl_query_report \
                 where query = pg_last_query_id() and label in ('dist', 'bcast')",
            )
            .await[0]
                .iter()
                .map(|v| v.parse::<i64>().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let none = moved("select count(*) from o join l on o.okey = l.okey").await;
    assert_eq!(none, vec![0, 0]);
    let some = moved("select count(*) from o join ev on o.okey = ev.okey").await;
    assert!(some[0] > 0 && some[1] > 0, "{some:?}");
    assert_eq!(
        rows(
            &c,
            "select o.okey, x from o join ev on o.okey = ev.okey order by 1"
        )
        .await,
        vec![
            vec!["1".to_string(), "100".to_string()],
            vec!["3".to_string(), "300".to_string()],
        ]
    );
    assert_eq!(
        rows(
            &c,
            "select count(*), sum(qty) from o join l on o.okey = l.okey"
        )
        .await,
        vec![vec!["3".to_string(), "18".to_string()]]
    );
    assert_eq!(
        rows(
            &c,
            "select o.okey, qty, name from o join l on o.okey = l.okey \
             join n on n.nkey = o.okey order by 1, 2"
        )
        .await,
        vec![
            vec!["1".to_string(), "5".to_string(), "one".to_string()],
            vec!["1".to_string(), "6".to_string(), "one".to_string()],
            vec!["2".to_string(), "7".to_string(), "two".to_string()],
        ]
    );
}

/// The physical plan of `sql`, as EXPLAIN prints it.
async fn physical_plan(c: &tokio_postgres::Client, sql: &str) -> String {
    let plan = rows(c, &format!("explain verbose {sql}")).await;
    plan.iter()
        .find(|r| r[0] == "physical_plan")
        .expect("physical plan")[1]
        .clone()
}

/// A table whose columns were added, renamed and dropped and whose DISTKEY was changed
/// reads the same after a restart, and its joins on the new DISTKEY stay on the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_tables_survive_a_restart_and_joins_follow_the_new_distkey() {
    const JOIN: &str = "select count(*), sum(amount) from o join l on o.okey = l.okey";
    const COLUMNS: &str = "select tag, count(*), sum(amount) from o group by tag order by tag";
    let tmp = tempfile::tempdir().unwrap();
    let expect_join = vec![vec!["1996".to_string(), "4990000".to_string()]];
    let expect_columns = vec![
        vec!["new".to_string(), "1".to_string(), "1".to_string()],
        vec!["old".to_string(), "1000".to_string(), "5005000".to_string()],
    ];
    {
        let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
        let c = cluster.connect().await;
        c.batch_execute(
            "create table o (okey bigint, total int, junk int) diststyle even;
             create table l (okey bigint distkey, qty int);
             insert into o select value, value * 10, 0 from generate_series(1, 1000);
             insert into l select value % 500, value from generate_series(1, 2000);
             alter table o add column tag varchar(8) default 'old';
             alter table o rename column total to amount;
             alter table o drop column junk;
             insert into o values (2000, 1, 'new');",
        )
        .await
        .unwrap();
        // DISTSTYLE EVEN: one side is redistributed to the other's slices first.
        let p = physical_plan(&c, JOIN).await;
        assert!(
            p.contains("joins=[DS_DIST_INNER]") || p.contains("joins=[DS_DIST_OUTER]"),
            "{p}"
        );
        c.batch_execute("alter table o alter distkey okey")
            .await
            .unwrap();
        let p = physical_plan(&c, JOIN).await;
        assert!(
            p.contains("ClusterScanExec: table=o, l, slices=4, joins=[DS_DIST_NONE]"),
            "{p}"
        );
        assert_eq!(rows(&c, JOIN).await, expect_join);
        assert_eq!(rows(&c, COLUMNS).await, expect_columns);
    }
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
    let c = cluster.connect().await;
    assert_eq!(rows(&c, JOIN).await, expect_join);
    assert_eq!(rows(&c, COLUMNS).await, expect_columns);
    assert!(
        physical_plan(&c, JOIN)
            .await
            .contains("joins=[DS_DIST_NONE]")
    );
    assert_eq!(
        rows(
            &c,
            "select \"column\", distkey from pg_table_def where tablename = 'o' order by 1"
        )
        .await,
        vec![
            vec!["amount".to_string(), "false".to_string()],
            vec!["okey".to_string(), "true".to_string()],
            vec!["tag".to_string(), "false".to_string()],
        ]
    );
}

/// `SHOW TABLE` prints the DDL that recreates the table, as Redshift does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_table_prints_the_tables_ddl() {
    let cluster = LocalCluster::start(1, 2);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table st (id bigint identity(1,1), k int not null distkey, \
         v varchar(10) encode zstd, d date) compound sortkey (d, k);
         create table sa (x int) diststyle all interleaved sortkey (x)",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "show table public.st").await,
        vec![vec![
            "CREATE TABLE public.st (\n    id bigint identity(1, 1) ENCODE az64,\n    \
             k integer NOT NULL ENCODE raw distkey,\n    \
             v character varying(10) ENCODE zstd,\n    d date ENCODE raw\n)\n\
             DISTSTYLE KEY\nSORTKEY ( d, k );"
                .to_string()
        ]]
    );
    let ddl = rows(&c, "show table sa").await;
    assert_eq!(
        ddl,
        vec![vec![
            "CREATE TABLE public.sa (\n    x integer ENCODE raw\n)\nDISTSTYLE ALL\n\
             INTERLEAVED SORTKEY ( x );"
                .to_string()
        ]]
    );
    // Constraints follow the columns (primary key first, then by name), each on its own
    // line starting with the comma.
    c.batch_execute(
        "create table sp (id int primary key, code char(2) unique);
         create table sc (n int, p int references sp, constraint sc_n unique (n, p))",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "show table sc").await,
        vec![vec![
            "CREATE TABLE public.sc (\n    n integer ENCODE az64,\n    p integer ENCODE az64\n    \
             ,UNIQUE (n, p)\n    ,FOREIGN KEY (p) REFERENCES sp(id)\n)\nDISTSTYLE AUTO;"
                .to_string()
        ]]
    );
    let err = c.simple_query("show table nope").await.unwrap_err();
    assert_eq!(error_text(&err), "42P01 relation \"nope\" does not exist");
}

/// The SHOW listings as the Amazon drivers send them: names and patterns as parameters of
/// the extended protocol, columns read by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_listings_take_the_drivers_parameters() {
    let cluster = LocalCluster::start(1, 2);
    let c = cluster.connect().await;
    c.batch_execute("create table sp_a (x int, yy varchar(3)); create table sp_b (x int)")
        .await
        .unwrap();
    let names = |rows: Vec<tokio_postgres::Row>, column: &str| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(column)).collect()
    };
    let schemas = c
        .query("SHOW SCHEMAS FROM DATABASE $1 LIKE $2", &[&"dev", &"pub%"])
        .await
        .unwrap();
    assert_eq!(names(schemas, "schema_name"), ["public"]);
    let tables = c
        .query(
            "SHOW TABLES FROM SCHEMA $1.$2 LIKE $3",
            &[&"dev", &"public", &"sp%"],
        )
        .await
        .unwrap();
    assert_eq!(names(tables, "table_name"), ["sp_a", "sp_b"]);
    let columns = c
        .query(
            "SHOW COLUMNS FROM TABLE $1.$2.$3",
            &[&"dev", &"public", &"sp_a"],
        )
        .await
        .unwrap();
    let described: Vec<(String, i32, String)> = columns
        .iter()
        .map(|r| {
            (
                r.get("column_name"),
                r.get("ordinal_position"),
                r.get("data_type"),
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            ("x".to_string(), 1, "integer".to_string()),
            ("yy".to_string(), 2, "character varying".to_string())
        ]
    );
    let databases = c.query("SHOW DATABASES", &[]).await.unwrap();
    assert_eq!(names(databases, "database_name"), ["dev"]);
}

/// Run `sql` on a new session of `cluster`, SIGKILL worker 1 while it runs, and return the
/// query's error (it must fail within seconds of the kill, not hang).
async fn error_when_worker_1_dies_during(cluster: &LocalCluster, sql: &'static str) -> String {
    let workers = cluster.worker_pids();
    let query = {
        let c2 = cluster.connect().await;
        tokio::spawn(async move {
            c2.query(sql, &[])
                .await
                .map(|_| ())
                .map_err(|e| error_text(&e))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    unsafe {
        libc::kill(workers[1] as i32, libc::SIGKILL);
    }
    let outcome = tokio::time::timeout(Duration::from_secs(10), query)
        .await
        .expect("query hung after its worker died")
        .unwrap();
    let err = outcome.expect_err("query finished before the worker was killed; make it slower");
    assert!(killed.elapsed() < Duration::from_secs(8));
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_query_fails_the_query_cleanly() {
    let cluster = LocalCluster::start(2, 2);
    let c = cluster.connect().await;
    create_slow_table(&c).await;
    let err = error_when_worker_1_dies_during(&cluster, SLOW_QUERY).await;
    assert!(
        err.starts_with("08006 worker 1 "),
        "unexpected error: {err}"
    );
    // Nothing committed was lost, and the cluster serves the same query again.
    assert_eq!(
        rows_once_recovered(&c, "select count(*), sum(x) from slow").await,
        vec![vec!["1000000", "500000500000"]]
    );
    // A worker that dies while rows move between workers (a redistribution) fails the
    // query just as cleanly.
    let err = error_when_worker_1_dies_during(
        &cluster,
        "select count(*) from slow a join slow b on a.x = b.k \
         where md5(md5(cast(a.x as varchar))) like '%abc%'",
    )
    .await;
    assert!(err.contains("worker 1 "), "unexpected error: {err}");
    assert_eq!(
        rows_once_recovered(
            &c,
            "select count(*) from slow a join slow b on a.k = b.k and a.x = b.x"
        )
        .await,
        vec![vec!["1000000"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_running_query() {
    let cluster = LocalCluster::start(2, 2);
    let c = cluster.connect().await;
    create_slow_table(&c).await;
    let token = c.cancel_token();
    let running = tokio::spawn(async move {
        let r = c
            .query(SLOW_QUERY, &[])
            .await
            .map(|_| ())
            .map_err(|e| error_text(&e));
        (c, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (c, outcome) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    let err = outcome.expect_err("query finished before it was cancelled; make it slower");
    assert!(err.starts_with("57014"), "{err}");
    assert!(asked.elapsed() < Duration::from_secs(5));
    // The session stays usable.
    assert_eq!(
        rows(&c, "select count(*) from slow where k = 1").await,
        vec![vec!["1000"]]
    );
}

#[test]
fn tls_when_configured_and_a_clear_refusal_when_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = support::certificate(tmp.path());
    let data = tmp.path().join("data");
    let psql = |port: u16, sslmode: &str| {
        std::process::Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} user=admin dbname=dev sslmode={sslmode}"
            ))
            .args(["-X", "-A", "-t", "-c", "select 6 * 7"])
            .env("PGPASSWORD", support::PASSWORD)
            .output()
            .expect("psql")
    };
    {
        let cluster = LocalCluster::start_in(
            &data,
            1,
            1,
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        );
        let out = psql(cluster.port, "require");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    }
    let cluster = LocalCluster::start_in(&data, 1, 1, &[]);
    let out = psql(cluster.port, "require");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server does not support SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&psql(cluster.port, "disable").stdout),
        "42\n"
    );
}

/// Ports free now for a process started next to take. They come from below the
/// kernel's ephemeral range (32768 and up on Linux), where every other test's port-0
/// listener and outgoing connection gets its port, so none of them can take it between
/// this check and the leader binding them.
fn free_ports<const N: usize>() -> [u16; N] {
    let start = 20_000 + (std::process::id() % 500) as u16 * 20;
    // Each found port stays bound until all are found, so they differ.
    let held: Vec<std::net::TcpListener> = (start..30_000)
        .chain(20_000..start)
        .filter_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .take(N)
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// Kills the wrapped processes when the test ends, however it ends.
struct Procs(Vec<std::process::Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_workers_run_as_separate_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let [pg, cl] = free_ports::<2>();
    let config = tmp.path().join("basalt.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:{pg}\"\ncluster_listen = \"127.0.0.1:{cl}\"\n\
             workers = 2\nslices_per_worker = 3\nauth_method = \"md5\"\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_basalt");
    let spawn = |args: &[&str]| {
        std::process::Command::new(exe)
            .args(args)
            .env("BASALT_ADMIN_PASSWORD", support::PASSWORD)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap()
    };
    let leader_addr = format!("127.0.0.1:{cl}");
    let _procs = Procs(vec![
        spawn(&["leader", "--config", config.to_str().unwrap()]),
        spawn(&[
            "worker",
            "--leader",
            &leader_addr,
            "--listen",
            "127.0.0.1:0",
        ]),
        spawn(&[
            "worker",
            "--leader",
            &leader_addr,
            "--listen",
            "127.0.0.1:0",
        ]),
    ]);
    let conn = format!(
        "host=127.0.0.1 port={pg} user=admin password={} dbname=dev",
        support::PASSWORD
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    // Ready once both workers have registered and a write reaches every slice.
    let c = loop {
        if let Ok((c, conn)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            if c.batch_execute("create table if not exists sep (a int) diststyle even; insert into sep select value from generate_series(1, 60)")
                .await
                .is_ok()
            {
                break c;
            }
        }
        assert!(
            Instant::now() < deadline,
            "separately started cluster never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        rows(&c, "select count(*), count(distinct node) from stv_slices").await,
        vec![vec!["6", "2"]]
    );
    assert_eq!(
        rows(&c, "select count(*), sum(a) from sep").await,
        vec![vec!["60", "1830"]]
    );
    assert_eq!(
        rows(
            &c,
            "select count(*) from stv_tbl_perm where name = 'sep' and rows = 10"
        )
        .await,
        vec![vec!["6"]]
    );
}

/// Each query runs under its own memory limit on the leader: a sort larger than the limit
/// spills to disk and still answers; a hash join whose build side does not fit fails with
/// 53200, and the session keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_spill_or_fail_cleanly_at_their_memory_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = LocalCluster::start_in(tmp.path(), 1, 2, &["--query-memory-mb", "16"]);
    let c = cluster.connect().await;
    // ~24 MB of sort keys through a 16 MB limit.
    assert_eq!(
        rows(
            &c,
            "select max(rn), count(*) from (select row_number() over \
             (order by md5(g::varchar)) rn from generate_series(1, 600000) t(g)) s"
        )
        .await,
        vec![vec!["600000".to_string(), "600000".to_string()]]
    );
    let e = c
        .query(
            "select count(*) from generate_series(1, 3000000) a(x) \
             join generate_series(1, 3000000) b(y) on a.x = b.y",
            &[],
        )
        .await
        .expect_err("a 3M-row hash table does not fit in 16 MB");
    let text = error_text(&e);
    assert!(
        text.starts_with("53200 query exceeded its memory limit") && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(rows(&c, "select 1").await, vec![vec!["1".to_string()]]);
}
