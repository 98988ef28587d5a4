//! Real client programs against a real cluster: `psql` (simple query protocol, text
//! results) and Python's psycopg 3 (extended protocol, server-side parameters).

mod support;

use std::process::Command;

use support::{LocalCluster, PASSWORD, psql};

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
        "['8.0.2', 'UTF8', 'ISO, MDY', 'on', 'off', 'on', 'admin']\n\
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
    // PostgreSQL's older option syntax skips the header line too (it once loaded it).
    let (ok, out, err) = psql(
        &cluster,
        &format!("\\copy sc from '{}' with csv header", csv.display()),
    );
    assert!(ok, "{err}");
    assert_eq!(out, "COPY 2\n");
    let (ok, _, err) = psql(
        &cluster,
        &format!("\\copy sc from '{}' with csv escape '^'", csv.display()),
    );
    assert!(!ok);
    assert!(
        err.contains("COPY CSV ESCAPE other than the quote character is not supported yet"),
        "{err}"
    );
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
    assert_eq!(out, "1|one\n2|two\n3|null\n10|x, y\n10|x, y\n11|z\n11|z\n");
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

/// psql as a user runs it (aligned output, titles and headers), for its meta-commands:
/// whether it succeeded, and what it printed (stdout, then stderr).
fn psql_meta(cluster: &LocalCluster, command: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &cluster.port.to_string()])
        .args(["-U", "admin", "-d", "dev", "-X", "-c", command])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .expect("psql must be installed (Debian: postgresql-client)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &stderr,
    )
}

/// psql's describe commands read `pg_catalog` with the queries psql 15 sends to an
/// 8.0.2 server (`OPERATOR(pg_catalog.~)`, `::regtype`, correlated subqueries, `E'\n'`).
#[test]
fn psql_meta_commands() {
    let cluster = LocalCluster::start(2, 2);
    let (ok, _, err) = psql(
        &cluster,
        "create table t (id integer not null, name varchar(32) default 'x', \
         amount numeric(12,2), d date) distkey(id) sortkey(d)",
    );
    assert!(ok, "{err}");
    let expect = [
        (
            r"\dt",
            "       List of relations
 Schema | Name | Type  | Owner 
--------+------+-------+-------
 public | t    | table | admin
(1 row)

",
        ),
        (
            r"\d t",
            r#"                                Table "public.t"
 Column |         Type          | Collation | Nullable |        Default         
--------+-----------------------+-----------+----------+------------------------
 id     | integer               |           | not null | 
 name   | character varying(32) |           |          | 'x'::character varying
 amount | numeric(12,2)         |           |          | 
 d      | date                  |           |          | 

"#,
        ),
        (
            r"\d+ t",
            r#"                                                    Table "public.t"
 Column |         Type          | Collation | Nullable |        Default         | Storage  | Stats target | Description 
--------+-----------------------+-----------+----------+------------------------+----------+--------------+-------------
 id     | integer               |           | not null |                        | plain    |              | 
 name   | character varying(32) |           |          | 'x'::character varying | extended |              | 
 amount | numeric(12,2)         |           |          |                        | plain    |              | 
 d      | date                  |           |          |                        | plain    |              | 

"#,
        ),
        (
            r"\dn",
            "List of schemas
  Name  | Owner 
--------+-------
 public | rdsdb
(1 row)

",
        ),
        (
            r"\l",
            "                                      List of databases
 Name | Owner | Encoding | Collate | Ctype | ICU Locale | Locale Provider | Access privileges 
------+-------+----------+---------+-------+------------+-----------------+-------------------
 dev  | rdsdb | UTF8     | C       | C     |            | libc            | rdsdb=CT/rdsdb   +
      |       |          |         |       |            |                 | =T/rdsdb
(1 row)

",
        ),
        (r"\dv", "Did not find any relations.\n"),
        (
            r"\du",
            "                              List of roles
 Role name |                   Attributes                    | Member of 
-----------+-------------------------------------------------+-----------
 admin     | Superuser, Create role, Create DB               | {}
 rdsdb     | Superuser, Create role, Create DB, Cannot login | {}

",
        ),
        (r"\d nope", "Did not find any relation named \"nope\".\n"),
    ];
    for (command, output) in expect {
        // psql reports a relation it cannot find as a failure.
        let found = !command.ends_with("nope");
        assert_eq!(
            psql_meta(&cluster, command),
            (found, output.to_string()),
            "{command}"
        );
    }
    // Views, a normal one and a late-binding one, and functions (Basalt has no
    // user-defined ones).
    let (ok, _, err) = psql(&cluster, "create view v as select id, name from t");
    assert!(ok, "{err}");
    let (ok, _, err) = psql(
        &cluster,
        "create view lb as select d from public.t with no schema binding",
    );
    assert!(ok, "{err}");
    let expect = [
        (
            r"\dv",
            "      List of relations
 Schema | Name | Type | Owner 
--------+------+------+-------
 public | lb   | view | admin
 public | v    | view | admin
(2 rows)

",
        ),
        (
            r"\d v",
            r#"                         View "public.v"
 Column |         Type          | Collation | Nullable | Default 
--------+-----------------------+-----------+----------+---------
 id     | integer               |           |          | 
 name   | character varying(32) |           |          | 

"#,
        ),
        (
            r"\df",
            "                       List of functions
 Schema | Name | Result data type | Argument data types | Type 
--------+------+------------------+---------------------+------
(0 rows)

",
        ),
    ];
    for (command, output) in expect {
        assert_eq!(
            psql_meta(&cluster, command),
            (true, output.to_string()),
            "{command}"
        );
    }
}

const SQLALCHEMY_SCRIPT: &str = r#"
import sys
from sqlalchemy import create_engine, inspect
port = int(sys.argv[1]); password = sys.argv[2]
engine = create_engine(f"postgresql+psycopg2://admin:{password}@127.0.0.1:{port}/dev")
with engine.begin() as conn:
    conn.exec_driver_sql("create table sa_parent (code varchar(8) primary key)")
    conn.exec_driver_sql("create table sa (id bigint not null, name varchar(40) default 'n', "
                         "price decimal(10,2), at timestamp, code varchar(8) references sa_parent, "
                         "primary key (id), constraint sa_name unique (name, code)) distkey(id)")
insp = inspect(engine)
print(insp.get_schema_names())
print(insp.get_table_names(), insp.has_table("sa"), insp.has_table("nope"))
for c in insp.get_columns("sa"):
    print(c["name"], c["type"], c["nullable"], c["default"])
print(insp.get_pk_constraint("sa"), insp.get_pk_constraint("sa_parent"))
print(insp.get_foreign_keys("sa"), insp.get_indexes("sa"), insp.get_unique_constraints("sa"))
print(insp.get_table_comment("sa"), insp.get_check_constraints("sa"), insp.get_view_names())
"#;

/// SQLAlchemy 2's PostgreSQL dialect (over psycopg2) inspects tables through pg_catalog.
#[test]
fn sqlalchemy_inspection() {
    let cluster = LocalCluster::start(2, 2);
    let out = Command::new("python3")
        .args(["-c", SQLALCHEMY_SCRIPT, &cluster.port.to_string(), PASSWORD])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SQLAlchemy script failed (install with: pip install 'SQLAlchemy>=2' psycopg2-binary):\n{stderr}"
    );
    assert_eq!(
        stdout,
        "['information_schema', 'public']\n\
         ['sa_parent', 'sa'] True False\n\
         id BIGINT False None\n\
         name VARCHAR(40) True 'n'::character varying\n\
         price NUMERIC(10, 2) True None\n\
         at TIMESTAMP True None\n\
         code VARCHAR(8) True None\n\
         {'constrained_columns': ['id'], 'name': 'sa_pkey', 'comment': None} \
         {'constrained_columns': ['code'], 'name': 'sa_parent_pkey', 'comment': None}\n\
         [{'name': 'sa_code_fkey', 'constrained_columns': ['code'], 'referred_schema': None, \
         'referred_table': 'sa_parent', 'referred_columns': ['code'], 'options': {}, 'comment': None}] \
         [{'name': 'sa_name', 'unique': True, 'column_names': ['name', 'code'], 'duplicates_constraint': 'sa_name'}] \
         [{'column_names': ['name', 'code'], 'name': 'sa_name', 'comment': None, \
         'dialect_options': {'postgresql_nulls_not_distinct': False}}]\n\
         {'text': None} [] []\n"
    );
}
