//! Real client programs against a real cluster: `psql` (simple query protocol, text
//! results) and Python's psycopg 3 (extended protocol, server-side parameters).

mod support;

use std::process::Command;

use support::{LocalCluster, PASSWORD};

fn psql(cluster: &LocalCluster, sql: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            "admin",
            "-d",
            "dev",
        ])
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .expect("psql must be installed (Debian: postgresql-client)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_end_to_end() {
    let cluster = LocalCluster::start(2, 2);
    let (ok, _, err) = psql(
        &cluster,
        "create table ps (k int distkey, x bigint, s varchar(20)) sortkey(k);
         insert into ps select value % 10, value, 'row ' || value from generate_series(1, 1000);",
    );
    assert!(ok, "{err}");
    let (ok, out, err) = psql(
        &cluster,
        "select k, count(*), sum(x) from ps group by k order by k limit 3",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "0|100|50500\n1|100|49600\n2|100|49700\n");
    let (ok, out, _) = psql(&cluster, "select s from ps where x = 42");
    assert!(ok);
    assert_eq!(out, "row 42\n");
    let (ok, _, err) = psql(&cluster, "select 1 / (k - k) from ps");
    assert!(!ok);
    assert!(err.contains("ERROR:  division by zero"), "{err}");
    let (ok, _, err) = psql(&cluster, "select * from missing_table");
    assert!(!ok);
    assert!(
        err.contains("relation \"missing_table\" does not exist"),
        "{err}"
    );
    // The server keeps serving after errors.
    let (ok, out, _) = psql(&cluster, "select count(*) from ps");
    assert!(ok);
    assert_eq!(out, "1000\n");
}

const PSYCOPG_SCRIPT: &str = r#"
import sys, psycopg
port = int(sys.argv[1]); password = sys.argv[2]
conn = psycopg.connect(host="127.0.0.1", port=port, user="admin", password=password, dbname="dev")
ps = conn.info.parameter_status
print([ps(k) for k in ("server_version", "client_encoding", "DateStyle", "integer_datetimes",
                       "standard_conforming_strings", "is_superuser", "session_authorization")])
cur = conn.cursor()
cur.execute("create table py (id int distkey, name varchar(20), amount decimal(10,2))")
cur.executemany("insert into py values (%s, %s, %s)", [(i, f"n{i}", f"{i}.25") for i in range(1, 51)])
conn.commit()
cur.execute("select count(*), sum(id) from py where id > %s", (10,))
print(cur.fetchone())
cur.execute("select name, amount from py where id = %s", (7,))
print(cur.fetchone())
try:
    cur.execute("select * from no_such")
except psycopg.Error as e:
    print("error", e.sqlstate)
conn.rollback()
cur.execute("select count(*) from py")
print(cur.fetchone())
conn.close()
"#;

#[test]
fn psycopg_end_to_end() {
    let cluster = LocalCluster::start(2, 2);
    let out = Command::new("python3")
        .args(["-c", PSYCOPG_SCRIPT, &cluster.port.to_string(), PASSWORD])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "psycopg script failed (install with: pip install 'psycopg[binary]'):\n{stderr}"
    );
    assert_eq!(
        stdout,
        "['8.0.2', 'UTF8', 'ISO, MDY', 'on', 'on', 'on', 'admin']\n\
         (40, 1220)\n('n7', Decimal('7.25'))\nerror 42P01\n(50,)\n"
    );
}

/// `COPY … FROM STDIN` through the real clients: psql's `\copy` (text and CSV) and
/// psycopg's `cursor.copy()`; a bad row fails the whole COPY and loads nothing.
#[test]
fn psql_and_psycopg_copy_from_stdin() {
    let cluster = LocalCluster::start(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let tab = dir.path().join("rows.tsv");
    std::fs::write(&tab, "1\tone\n2\ttwo\n3\t\\N\n").unwrap();
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "a,b\n10,\"x, y\"\n11,z\n").unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "20,fine\nnot a number,oops\n").unwrap();
    let (ok, _, err) = psql(&cluster, "create table sc (a int, b varchar(10))");
    assert!(ok, "{err}");
    let (ok, out, err) = psql(&cluster, &format!("\\copy sc from '{}'", tab.display()));
    assert!(ok, "{err}");
    assert_eq!(out, "COPY 3\n");
    assert!(
        err.contains("INFO:  Load into table 'sc' completed, 3 record(s) loaded successfully."),
        "{err}"
    );
    let (ok, out, err) = psql(
        &cluster,
        &format!(
            "\\copy sc from '{}' with (format csv, header true)",
            csv.display()
        ),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "COPY 2\n");
    let (ok, _, err) = psql(&cluster, &format!("\\copy sc from '{}' csv", bad.display()));
    assert!(!ok);
    assert!(
        err.contains(
            "Load into table 'sc' failed.  Check 'stl_load_errors' system table for details."
        ),
        "{err}"
    );
    let (ok, out, _) = psql(&cluster, "select a, coalesce(b, 'null') from sc order by a");
    assert!(ok);
    assert_eq!(out, "1|one\n2|two\n3|null\n10|x, y\n11|z\n");
    let script = format!(
        r#"
import psycopg
c = psycopg.connect(host="127.0.0.1", port={port}, user="admin", password="{pw}", dbname="dev", autocommit=True)
cur = c.cursor()
with cur.copy("COPY sc (a, b) FROM STDIN") as cp:
    for i in range(100, 105):
        cp.write_row((i, f"p{{i}}"))
print(cur.rowcount)
cur.execute("select count(*), max(b) from sc where a >= 100")
print(cur.fetchall())
"#,
        port = cluster.port,
        pw = support::PASSWORD
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n[(5, 'p104')]\n");
}
