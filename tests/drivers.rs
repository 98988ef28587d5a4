//! The drivers Redshift users connect with, each through a whole session against a real
//! cluster: a table with Redshift's attributes, bound parameters of every common type,
//! every value read back, the driver's own introspection, and DROP. `scripts/test` installs
//! them: redshift_connector, psycopg2 and psycopg 3 from PyPI, pgjdbc and psqlODBC (with
//! pyodbc) from Debian.

mod support;

use std::process::{Command, Output};

use support::{LocalCluster, PASSWORD};

/// The table every session creates, under a name of its own.
fn create_table(name: &str) -> String {
    format!(
        "create table {name} (id integer not null distkey encode az64, s smallint, b bigint, \
         d decimal(12,3) encode az64, r real, f double precision, ok boolean, c char(5), \
         v varchar(20) encode zstd, day date, at timestamp, atz timestamptz, \
         primary key (id)) compound sortkey(id, day)"
    )
}

/// Python's literals for the rows every Python session inserts: extremes, a leap day,
/// microseconds, a non-ASCII string, an empty string, and a row of NULLs.
const PY_ROWS: &str = r#"
import datetime, decimal
ROWS = [
    (1, 7, 9000000000, decimal.Decimal("123456789.125"), 1.5, 2.25, True, "ab", "héllo",
     datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 13, 45, 30, 123456),
     datetime.datetime(2024, 2, 29, 13, 45, 30, tzinfo=datetime.timezone.utc)),
    (2, -32768, -9223372036854775808, decimal.Decimal("-0.001"), -0.5, -1e300, False, "xyzzy", "",
     datetime.date(1999, 12, 31), datetime.datetime(1999, 12, 31, 23, 59, 59), None),
    (3, None, None, None, None, None, None, None, None, None, None, None),
]
INSERT = "insert into {} values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
"#;

/// How Python prints [`PY_ROWS`] when they come back exactly.
const PY_ROWS_BACK: &str = "\
(1, 7, 9000000000, Decimal('123456789.125'), 1.5, 2.25, True, 'ab', 'héllo', datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 13, 45, 30, 123456), datetime.datetime(2024, 2, 29, 13, 45, 30, tzinfo=datetime.timezone.utc))
(2, -32768, -9223372036854775808, Decimal('-0.001'), -0.5, -1e+300, False, 'xyzzy', '', datetime.date(1999, 12, 31), datetime.datetime(1999, 12, 31, 23, 59, 59), None)
(3, None, None, None, None, None, None, None, None, None, None, None)
";

fn stdout_of(out: Output, install: &str) -> String {
    assert!(
        out.status.success(),
        "client session failed (install: {install}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const REDSHIFT_CONNECTOR_SCRIPT: &str = r#"
import sys, ssl
import redshift_connector
port = int(sys.argv[1]); password = sys.argv[2]; tls = sys.argv[3] == "tls"
# With ssl=True the driver verifies the server against the default CAs (SSL_CERT_FILE).
options = dict(ssl=True, sslmode="verify-ca") if tls else dict(ssl=False)
conn = redshift_connector.connect(host="127.0.0.1", port=port, user="admin", password=password,
                                  database="dev", **options)
print("tls", isinstance(conn._usock, ssl.SSLSocket))
table = sys.argv[4]
cur = conn.cursor()
cur.execute(sys.argv[5])
cur.executemany(INSERT.format(table), ROWS)
conn.commit()
cur.execute(f"select * from {table} where id >= %s order by id", (1,))
for row in cur.fetchall():
    print(tuple(row))
print([d[0] for d in cur.description])
cur.execute(f"select count(*), sum(b) from {table} where v = %s or ok = %s", ("héllo", False))
print(cur.fetchone())
print([list(s) for s in cur.get_schemas()])
print([list(t) for t in cur.get_tables(table_name_pattern=table)])
# name, SQL type, type name, size, decimal digits, nullable, position, is_nullable
for c in cur.get_columns(tablename_pattern=table):
    print(tuple(c[i] for i in (3, 4, 5, 6, 8, 10, 16, 17)))
print([list(k) for k in cur.get_primary_keys(table=table)])
cur.execute(f"drop table {table}")
conn.commit()
print([list(t) for t in cur.get_tables(table_name_pattern=table)])
conn.close()
"#;

/// Amazon's Python driver, in clear and over TLS, against a cluster with the default
/// authentication: MD5, as Redshift. (The driver cannot answer SCRAM-SHA-256: it splits
/// the mechanism list keeping its empty terminator, which scramp refuses.)
#[test]
fn redshift_connector_session() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = support::certificate(tmp.path());
    let cluster = LocalCluster::start_in(
        &tmp.path().join("data"),
        2,
        2,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    for (tls, table) in [("clear", "rs_clear"), ("tls", "rs_tls")] {
        let out = Command::new("python3")
            .args([
                "-c",
                &format!("{PY_ROWS}\n{REDSHIFT_CONNECTOR_SCRIPT}"),
                &cluster.port.to_string(),
                PASSWORD,
                tls,
                table,
                &create_table(table),
            ])
            .env("SSL_CERT_FILE", &cert)
            .output()
            .expect("python3");
        let out = stdout_of(out, "pip install redshift_connector");
        let columns = "\
            ('id', 4, 'int4', 10, 0, 0, 1, 'NO')\n\
            ('s', 5, 'int2', 5, 0, 1, 2, 'YES')\n\
            ('b', -5, 'int8', 19, 0, 1, 3, 'YES')\n\
            ('d', 2, 'numeric', 12, 3, 1, 4, 'YES')\n\
            ('r', 7, 'float4', 8, 8, 1, 5, 'YES')\n\
            ('f', 8, 'float8', 17, 17, 1, 6, 'YES')\n\
            ('ok', -7, 'bool', 1, 0, 1, 7, 'YES')\n\
            ('c', 1, 'character', 5, 0, 1, 8, 'YES')\n\
            ('v', 12, 'varchar', 20, 0, 1, 9, 'YES')\n\
            ('day', 91, 'date', 13, 0, 1, 10, 'YES')\n\
            ('at', 93, 'timestamp', 29, 6, 1, 11, 'YES')\n\
            ('atz', 2014, 'timestamptz', 35, 0, 1, 12, 'YES')\n";
        assert_eq!(
            out,
            format!(
                "tls {}\n{PY_ROWS_BACK}\
                 ['id', 's', 'b', 'd', 'r', 'f', 'ok', 'c', 'v', 'day', 'at', 'atz']\n\
                 [2, -9223372027854775808]\n\
                 [['information_schema', 'dev'], ['pg_catalog', 'dev'], ['public', 'dev']]\n\
                 [['dev', 'public', '{table}', 'TABLE', None, '', '', '', '', '']]\n\
                 {columns}[['dev', 'public', '{table}', 'id', 1, '{table}_pkey']]\n[]\n",
                if tls == "tls" { "True" } else { "False" }
            ),
            "{tls}"
        );
    }
}

/// A user who is no superuser and holds only what every user holds (CREATE and USAGE on
/// `public`): the drivers' sessions run as this user where they create their own tables.
const DRIVER_USER: (&str, &str) = ("driver_user", "Driver123pw");

fn create_driver_user(cluster: &LocalCluster) {
    let (ok, _, err) = support::psql(
        cluster,
        &format!("create user {} password '{}'", DRIVER_USER.0, DRIVER_USER.1),
    );
    assert!(ok, "{err}");
}

/// Run a Python session (after [`PY_ROWS`]) with the port, password, table name,
/// CREATE TABLE statement and user as arguments; its stdout.
fn python_session(
    cluster: &LocalCluster,
    script: &str,
    table: &str,
    install: &str,
    (user, password): (&str, &str),
) -> String {
    let out = Command::new("python3")
        .args(["-c", &format!("{PY_ROWS}\n{script}")])
        .args([
            &cluster.port.to_string(),
            password,
            table,
            &create_table(table),
            user,
        ])
        .output()
        .expect("python3");
    stdout_of(out, install)
}

const PSYCOPG3_SCRIPT: &str = r#"
import sys
import psycopg
from psycopg.types import TypeInfo
port, password, table, create = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
conn = psycopg.connect(host="127.0.0.1", port=port, user="admin", password=password, dbname="dev")
cur = conn.cursor()
cur.execute(create)
cur.executemany(INSERT.format(table), ROWS)
conn.commit()
# Text results first, then binary ones (psycopg asks for binary in every column).
for binary in (False, True):
    c = conn.cursor(binary=binary)
    c.execute(f"select * from {table} where id >= %s order by id", (1,))
    for row in c.fetchall():
        print(row)
with cur.copy(f"COPY {table} (id, v, d, day) FROM STDIN") as copy:
    copy.write_row((10, "copied", ROWS[0][3], ROWS[0][9]))
    copy.write_row((11, None, None, None))
print(cur.rowcount)
# What SQLAlchemy's type lookup does: a savepoint around a catalog query.
cur.execute("savepoint sp")
cur.execute(f"insert into {table} (id) values (%s)", (99,))
cur.execute("rollback to savepoint sp")
cur.execute("release savepoint sp")
print(TypeInfo.fetch(conn, "numeric"))
conn.commit()
cur.execute(f"select id, v, d, day from {table} where id > %s order by id", (3,))
print(cur.fetchall())
cur.execute(f"drop table {table}")
conn.commit()
cur.execute("select count(*) from pg_class where relname = %s", (table,))
print(cur.fetchone())
"#;

/// psycopg 3: server-side parameters, text and binary results, COPY FROM STDIN, savepoints.
#[test]
fn psycopg3_session() {
    let cluster = LocalCluster::start(2, 2);
    let out = python_session(
        &cluster,
        PSYCOPG3_SCRIPT,
        "p3",
        "pip install 'psycopg[binary]'",
        ("admin", PASSWORD),
    );
    assert_eq!(
        out,
        format!(
            "{PY_ROWS_BACK}{PY_ROWS_BACK}2\n\
             <TypeInfo: numeric (oid: 1700, array oid: 1231)>\n\
             [(10, 'copied', Decimal('123456789.125'), datetime.date(2024, 2, 29)), (11, None, None, None)]\n\
             (0,)\n"
        )
    );
}

const PSYCOPG2_SCRIPT: &str = r#"
import sys, io
import psycopg2
port, password, table, create = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
conn = psycopg2.connect(host="127.0.0.1", port=port, user="admin", password=password, dbname="dev")
cur = conn.cursor()
cur.execute(create)
cur.executemany(INSERT.format(table), ROWS)
conn.commit()
cur.execute(f"select * from {table} where id >= %s order by id", (1,))
for row in cur.fetchall():
    print(row)
cur.copy_expert(f"COPY {table} (id, v, d, day) FROM STDIN WITH (FORMAT csv)",
                io.StringIO('10,"copied, quoted",5.5,2020-01-02\n11,x,,\n'))
print(cur.rowcount)
conn.commit()
cur.execute(f"select id, v, d, day from {table} where id > %s order by id", (3,))
print(cur.fetchall())
# Values psycopg2 puts into the SQL text itself: quotes, backslashes, tabs, newlines
# and Unicode come back exactly, through a table and as literals.
tricky = "O'B \"q\" \\ \t\nü😀"
cur.execute(f"insert into {table} (id, v) values (%s, %s)", (99, tricky))
cur.execute(f"select v, length(v) from {table} where id = %s", (99,))
v, n = cur.fetchone()
print(v == tricky, n == len(tricky))
cur.execute(r"select 'a\\b', length('a\\b'), E'tab\there', length('x\by')")
print(cur.fetchone())
conn.rollback()
cur.execute(f"drop table {table}")
conn.commit()
cur.execute("select count(*) from pg_class where relname = %s", (table,))
print(cur.fetchone())
"#;

/// psycopg2: client-side parameter interpolation (the server reports
/// `standard_conforming_strings = off`, as its literals treat backslashes as escapes, and
/// psycopg2 escapes them accordingly), text results, `copy_expert`.
#[test]
fn psycopg2_session() {
    let cluster = LocalCluster::start(2, 2);
    let out = python_session(
        &cluster,
        PSYCOPG2_SCRIPT,
        "p2",
        "pip install psycopg2-binary",
        ("admin", PASSWORD),
    );
    assert_eq!(
        out,
        format!(
            "{PY_ROWS_BACK}2\n\
             [(10, 'copied, quoted', Decimal('5.500'), datetime.date(2020, 1, 2)), (11, 'x', None, None)]\n\
             True True\n\
             ('a\\\\b', 3, 'tab\\there', 3)\n\
             (0,)\n"
        )
    );
}

const JDBC_SESSION: &str = r#"
import java.math.BigDecimal;
import java.sql.*;
import java.time.OffsetDateTime;

public class JdbcSession {
    public static void main(String[] args) throws Exception {
        // prepareThreshold=1: named server-side statements from the first use, and with
        // them binary results for the types pgjdbc reads in binary.
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/dev?prepareThreshold=1";
        String table = args[2];
        try (Connection c = DriverManager.getConnection(url, args[4], args[1])) {
            try (Statement s = c.createStatement()) {
                s.execute(args[3]);
            }
            c.setAutoCommit(false);
            try (PreparedStatement p = c.prepareStatement("insert into " + table
                    + " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
                p.setInt(1, 1);
                p.setShort(2, (short) -32768);
                p.setLong(3, 9000000000L);
                p.setBigDecimal(4, new BigDecimal("123456789.125"));
                p.setFloat(5, 1.5f);
                p.setDouble(6, -1e300);
                p.setBoolean(7, true);
                p.setString(8, "ab");
                p.setString(9, "héllo");
                p.setDate(10, Date.valueOf("2024-02-29"));
                p.setTimestamp(11, Timestamp.valueOf("2024-02-29 13:45:30.123456"));
                p.setObject(12, OffsetDateTime.parse("2024-02-29T13:45:30+02:00"));
                p.executeUpdate();
                p.setInt(1, 2);
                for (int i = 2; i <= 12; i++) {
                    p.setNull(i, Types.NULL);
                }
                p.executeUpdate();
            }
            c.commit();
            for (int round = 0; round < 2; round++) {
                try (PreparedStatement p = c.prepareStatement("select * from " + table
                        + " where id >= ? order by id")) {
                    p.setInt(1, 1);
                    try (ResultSet r = p.executeQuery()) {
                        while (r.next()) {
                            System.out.println(r.getInt(1) + "|" + r.getShort(2) + "|" + r.getLong(3)
                                + "|" + r.getBigDecimal(4) + "|" + r.getFloat(5) + "|" + r.getDouble(6)
                                + "|" + r.getBoolean(7) + "|" + r.getString(8) + "|" + r.getString(9)
                                + "|" + r.getDate(10) + "|" + r.getTimestamp(11)
                                + "|" + r.getObject(12, OffsetDateTime.class) + "|" + r.wasNull());
                        }
                    }
                }
            }
            DatabaseMetaData md = c.getMetaData();
            System.out.println(md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet r = md.getSchemas()) {
                while (r.next()) {
                    System.out.println("schema " + r.getString("TABLE_SCHEM"));
                }
            }
            try (ResultSet r = md.getTables(null, "public", table, null)) {
                while (r.next()) {
                    System.out.println("table " + r.getString("TABLE_NAME") + " " + r.getString("TABLE_TYPE"));
                }
            }
            try (ResultSet r = md.getColumns(null, "public", table, null)) {
                while (r.next()) {
                    System.out.println("column " + r.getString("COLUMN_NAME") + " " + r.getInt("DATA_TYPE")
                        + " " + r.getString("TYPE_NAME") + " " + r.getInt("COLUMN_SIZE") + " "
                        + r.getInt("DECIMAL_DIGITS") + " " + r.getString("IS_NULLABLE"));
                }
            }
            // Informational, as in Redshift, and listed.
            try (ResultSet r = md.getPrimaryKeys(null, "public", table)) {
                while (r.next()) {
                    System.out.println("pk " + r.getString("COLUMN_NAME") + " " + r.getInt("KEY_SEQ")
                        + " " + r.getString("PK_NAME"));
                }
            }
            try (Statement s = c.createStatement()) {
                s.execute("drop table " + table);
            }
            c.commit();
            try (ResultSet r = md.getTables(null, "public", table, null)) {
                System.out.println("dropped " + !r.next());
            }
        }
    }
}
"#;

/// pgjdbc (Debian's libpostgresql-jdbc-java) from a Java program compiled here, as a user
/// who is no superuser: PreparedStatement parameters of every type, ResultSet getters,
/// DatabaseMetaData.
#[test]
fn pgjdbc_session() {
    let jar = "/usr/share/java/postgresql.jar";
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("JdbcSession.java"), JDBC_SESSION).unwrap();
    let out = Command::new("javac")
        .args(["-cp", jar, "-d"])
        .arg(tmp.path())
        .arg(tmp.path().join("JdbcSession.java"))
        .output()
        .expect("javac (Debian: default-jdk-headless)");
    stdout_of(
        out,
        "apt install default-jdk-headless libpostgresql-jdbc-java",
    );
    let cluster = LocalCluster::start(2, 2);
    create_driver_user(&cluster);
    let out = Command::new("java")
        .arg("-Duser.timezone=UTC")
        .arg("-cp")
        .arg(format!("{jar}:{}", tmp.path().display()))
        .args([
            "JdbcSession",
            &cluster.port.to_string(),
            DRIVER_USER.1,
            "jd",
        ])
        .arg(create_table("jd"))
        .arg(DRIVER_USER.0)
        .output()
        .expect("java");
    let out = stdout_of(
        out,
        "apt install default-jdk-headless libpostgresql-jdbc-java",
    );
    // The second read runs the named statement again, with binary results.
    let rows = "\
        1|-32768|9000000000|123456789.125|1.5|-1.0E300|true|ab|héllo|2024-02-29|2024-02-29 13:45:30.123456|2024-02-29T11:45:30Z|false\n\
        2|0|0|null|0.0|0.0|false|null|null|null|null|null|true\n";
    assert_eq!(
        out,
        format!(
            "{rows}{rows}PostgreSQL 8.0.2\n\
             schema information_schema\n\
             schema pg_catalog\n\
             schema public\n\
             table jd TABLE\n\
             column id 4 int4 10 0 NO\n\
             column s 5 int2 5 0 YES\n\
             column b -5 int8 19 0 YES\n\
             column d 2 numeric 12 3 YES\n\
             column r 7 float4 8 8 YES\n\
             column f 8 float8 17 17 YES\n\
             column ok -7 bool 1 0 YES\n\
             column c 1 bpchar 5 0 YES\n\
             column v 12 varchar 20 0 YES\n\
             column day 91 date 13 0 YES\n\
             column at 93 timestamp 29 6 YES\n\
             column atz 93 timestamptz 35 6 YES\n\
             pk id 1 jd_pkey\n\
             dropped true\n"
        )
    );
}

const PYODBC_SCRIPT: &str = r#"
import sys
import pyodbc
port, password, table, create, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
conn = pyodbc.connect(f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={port};"
                      f"DATABASE=dev;UID={user};PWD={password}")
cur = conn.cursor()
cur.execute(create)
conn.commit()
for row in ROWS:
    # psqlODBC binds timestamptz values as text; Python's aware datetimes have no ODBC type.
    cur.execute(INSERT.replace("%s", "?").format(table), row[:11] + (row[11] and row[11].isoformat(),))
conn.commit()
cur.execute(f"select * from {table} where id >= ? order by id", 1)
for row in cur.fetchall():
    print(tuple(row))
print([(t.table_schem, t.table_name, t.table_type) for t in cur.tables(table=table)])
for c in cur.columns(table=table):
    print(c.column_name, c.data_type, c.type_name, c.column_size, c.decimal_digits, c.nullable)
cur.execute(f"drop table {table}")
conn.commit()
print([t.table_name for t in cur.tables(table=table)])
"#;

/// psqlODBC through pyodbc, as a user who is no superuser: parameters, SQLTables and
/// SQLColumns. psqlODBC shows booleans
/// as text by default (`BoolsAsChar`), hence `'1'`/`'0'`.
#[test]
fn psqlodbc_session() {
    let cluster = LocalCluster::start(2, 2);
    create_driver_user(&cluster);
    let out = python_session(
        &cluster,
        PYODBC_SCRIPT,
        "od",
        "apt install odbc-postgresql unixodbc; pip install pyodbc",
        DRIVER_USER,
    );
    assert_eq!(
        out,
        "\
(1, 7, 9000000000, Decimal('123456789.125'), 1.5, 2.25, '1', 'ab', 'héllo', datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 13, 45, 30, 123456), datetime.datetime(2024, 2, 29, 13, 45, 30))
(2, -32768, -9223372036854775808, Decimal('-0.001'), -0.5, -1e+300, '0', 'xyzzy', '', datetime.date(1999, 12, 31), datetime.datetime(1999, 12, 31, 23, 59, 59), None)
(3, None, None, None, None, None, None, None, None, None, None, None)
[('public', 'od', 'TABLE')]
id 4 int4 10 0 0
s 5 int2 5 0 1
b -5 int8 19 0 1
d 2 numeric 12 3 1
r 7 float4 9 0 1
f 6 float8 17 0 1
ok 12 bool 5 0 1
c -8 bpchar 5 None 1
v -9 varchar 20 None 1
day 91 date 10 None 1
at 93 timestamp 26 6 1
atz 93 timestamptz 26 6 1
[]
"
    );
}

const SQLALCHEMY_REDSHIFT_SCRIPT: &str = r#"
import sys
import sqlalchemy as sa
port, password = sys.argv[1], sys.argv[2]
eng = sa.create_engine(f"redshift+psycopg2://admin:{password}@127.0.0.1:{port}/dev?sslmode=disable")
with eng.begin() as c:
    c.execute(sa.text("create table sa_rs (id int not null distkey, name varchar(20) encode zstd, "
                      "d date encode raw, primary key (id)) compound sortkey (d, id)"))
ins = sa.inspect(eng)
print(ins.get_schema_names(), ins.get_table_names())
print(ins.get_pk_constraint("sa_rs"), ins.get_foreign_keys("sa_rs"))
for col in ins.get_columns("sa_rs"):
    print(col["name"], repr(col["type"]), col["nullable"], col["info"])
t = sa.Table("sa_rs", sa.MetaData(), autoload_with=eng)
print(sorted(dict(t.dialect_kwargs).items()))
with eng.begin() as c:
    c.execute(sa.text("insert into sa_rs values (:i, :n, :d)"), [{"i": 1, "n": "a", "d": "2024-01-02"}])
    print(c.execute(sa.text("select id, name, d from sa_rs")).all())
    c.execute(sa.text("drop table sa_rs"))
print(sa.inspect(eng).get_table_names())
"#;

/// sqlalchemy-redshift (the `redshift+psycopg2` dialect) reflects a table with its
/// DISTKEY, SORTKEY and column encodings. It needs SQLAlchemy 2.0 (its reflection breaks
/// on 2.1), so it runs in its own environment: `$BASALT_SQLALCHEMY_REDSHIFT_PYTHON`, or
/// the virtualenv `scripts/test` makes in `~/.cache/basalt-sqlalchemy-redshift`.
#[test]
fn sqlalchemy_redshift_reflects_distkey_sortkey_and_encodings() {
    let python = std::env::var("BASALT_SQLALCHEMY_REDSHIFT_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/basalt-sqlalchemy-redshift/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let cluster = LocalCluster::start(2, 2);
    let out = Command::new(&python)
        .args(["-c", SQLALCHEMY_REDSHIFT_SCRIPT])
        .args([&cluster.port.to_string(), PASSWORD])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (see scripts/test for its virtualenv)"));
    let stdout = stdout_of(
        out,
        "python3 -m venv ~/.cache/basalt-sqlalchemy-redshift && \
         ~/.cache/basalt-sqlalchemy-redshift/bin/pip install 'SQLAlchemy>=2,<2.1' \
         sqlalchemy-redshift psycopg2-binary",
    );
    assert_eq!(
        stdout,
        "['information_schema', 'public'] ['sa_rs']\n\
         {'constrained_columns': ['id'], 'name': 'sa_rs_pkey'} []\n\
         id INTEGER() False {}\n\
         name VARCHAR(length=20) True {'encode': 'zstd'}\n\
         d DATE() True {}\n\
         [('redshift_distkey', 'id'), ('redshift_diststyle', 'KEY'), \
         ('redshift_interleaved_sortkey', None), ('redshift_sortkey', ('d', 'id'))]\n\
         [(1, 'a', datetime.date(2024, 1, 2))]\n\
         []\n"
    );
}
