//! Users, groups and privileges over the wire on a real `basalt local` cluster: several
//! users in sessions at once, each statement of a privilege matrix asserted to run (with
//! its exact result) or to fail with 42501 and Redshift's message; denied writes change
//! nothing; grants survive a restart; psql and psycopg log in as those users.

mod support;

use std::process::Command;

use support::{LocalCluster, S3Server, error_text, psql_as, rows};

const ALICE: (&str, &str) = ("alice", "Alice123pw");
const BOB: (&str, &str) = ("bob", "Bob123pwXX");

/// What one statement of the matrix must do.
enum Expect {
    /// Succeed with these rows (for a query) or this command tag (otherwise).
    Rows(&'static [&'static [&'static str]]),
    /// Succeed as a command that reports this many rows (0 for GRANT, BEGIN, …).
    Done(u64),
    /// Fail with this `SQLSTATE message`.
    Fails(&'static str),
}
use Expect::*;

async fn run(c: &tokio_postgres::Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    match c.simple_query(sql).await {
        Ok(messages) => {
            let mut out = vec![];
            let mut tag = None;
            for m in messages {
                match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => out.push(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect(),
                    ),
                    tokio_postgres::SimpleQueryMessage::CommandComplete(n) => tag = Some(n),
                    _ => {}
                }
            }
            if out.is_empty()
                && let Some(n) = tag
            {
                return Ok(vec![vec![format!("{n} rows")]]);
            }
            Ok(out)
        }
        Err(e) => Err(error_text(&e)),
    }
}

async fn check(who: &str, c: &tokio_postgres::Client, sql: &str, expect: &Expect) {
    let got = run(c, sql).await;
    match expect {
        Rows(want) => {
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(got, Ok(want), "{who}: {sql}");
        }
        Done(n) => assert_eq!(got, Ok(vec![vec![format!("{n} rows")]]), "{who}: {sql}"),
        Fails(want) => assert_eq!(got, Err(want.to_string()), "{who}: {sql}"),
    }
}

async fn admin_setup(admin: &tokio_postgres::Client) {
    admin
        .batch_execute(
            "create table sales (id int, region varchar(10), amount int);
             insert into sales values (1, 'east', 10), (2, 'west', 20);
             create table secrets (id int, v varchar(20));
             insert into secrets values (1, 'classified');
             create schema hr;
             create table hr.staff (id int, name varchar(20));
             insert into hr.staff values (1, 'Ann');
             create view sales_east as select id, amount from sales where region = 'east';
             create user alice password 'Alice123pw';
             create user bob with password 'Bob123pwXX' nocreatedb syslog access restricted connection limit unlimited;
             create group analysts with user alice;
             grant select on sales to group analysts;
             grant insert on table sales to bob;
             grant usage on schema hr to bob;
             grant select on hr.staff to bob;
             grant select on sales_east to bob;",
        )
        .await
        .unwrap_or_else(|e| panic!("setup: {}", error_text(&e)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_are_checked_on_every_path() {
    let s3 = S3Server::start(false);
    s3.create_bucket("priv");
    s3.put("priv", "in/rows.csv", b"7,south,70\n");
    let tmp = tempfile::tempdir().unwrap();
    let s3_args = ["--s3-endpoint".to_string(), s3.endpoint()];
    let s3_args: Vec<&str> = s3_args.iter().map(String::as_str).collect();
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &s3_args);
    let admin = cluster.connect().await;
    admin_setup(&admin).await;
    let alice = cluster.connect_as(ALICE.0, ALICE.1).await.unwrap();
    let bob = cluster.connect_as(BOB.0, BOB.1).await.unwrap();
    let keys = "ACCESS_KEY_ID 'k' SECRET_ACCESS_KEY 's'";

    let denied_secrets = "42501 permission denied for relation secrets";
    let denied_sales = "42501 permission denied for relation sales";
    let matrix: Vec<(&str, &tokio_postgres::Client, String, Expect)> = vec![
        // Through the group.
        ("alice", &alice, "select count(*) from sales".into(), Rows(&[&["2"]])),
        ("alice", &alice, "select current_user, session_user".into(), Rows(&[&["alice", "alice"]])),
        // No grant at all, on every path that reads.
        ("alice", &alice, "select * from secrets".into(), Fails(denied_secrets)),
        ("alice", &alice, "select s.id from sales s join secrets x on s.id = x.id".into(), Fails(denied_secrets)),
        ("alice", &alice, "select id from sales where id in (select id from secrets)".into(), Fails(denied_secrets)),
        ("alice", &alice, "with c as (select * from secrets) select count(*) from c".into(), Fails(denied_secrets)),
        ("alice", &alice, "select id from sales union all select id from secrets".into(), Fails(denied_secrets)),
        ("alice", &alice, "select (select max(v) from secrets) as m".into(), Fails(denied_secrets)),
        ("alice", &alice, "explain select * from secrets".into(), Fails(denied_secrets)),
        ("alice", &alice, "create table mine as select * from secrets".into(), Fails(denied_secrets)),
        (
            "alice",
            &alice,
            format!("unload ('select * from secrets') to 's3://priv/out/a_' {keys}"),
            Fails(denied_secrets),
        ),
        (
            "alice",
            &alice,
            format!("copy sales from 's3://priv/in/' {keys} csv"),
            Fails(denied_sales),
        ),
        // A view reads with its owner's privileges; alice has none on the view itself.
        ("alice", &alice, "select * from sales_east".into(), Fails("42501 permission denied for relation sales_east")),
        // Writes need their own privilege.
        ("alice", &alice, "insert into sales values (3, 'x', 1)".into(), Fails(denied_sales)),
        ("alice", &alice, "delete from sales".into(), Fails(denied_sales)),
        ("alice", &alice, "update sales set amount = 0".into(), Fails(denied_sales)),
        ("alice", &alice, "truncate sales".into(), Fails(denied_sales)),
        ("alice", &alice, "drop table sales".into(), Fails(denied_sales)),
        ("alice", &alice, "alter table sales add column z int".into(), Fails(denied_sales)),
        ("alice", &alice, "comment on table sales is 'mine'".into(), Fails("42501 must be owner of relation sales")),
        ("alice", &alice, "vacuum sales".into(), Fails("42501 must be owner of relation sales")),
        ("alice", &alice, "show table secrets".into(), Fails(denied_secrets)),
        ("alice", &alice, "show view sales_east".into(), Fails("42501 permission denied for relation sales_east")),
        // Schemas: USAGE to read, CREATE to add; PUBLIC has both on public.
        ("alice", &alice, "select * from hr.staff".into(), Fails("42501 permission denied for schema hr")),
        ("alice", &alice, "create table hr.x (a int)".into(), Fails("42501 permission denied for schema hr")),
        ("alice", &alice, "create schema mine".into(), Fails("42501 permission denied for database dev")),
        ("alice", &alice, "create table mine as select id, amount from sales".into(), Done(0)),
        ("alice", &alice, "select count(*), sum(amount) from mine".into(), Rows(&[&["2", "30"]])),
        // Identities are the superuser's.
        ("alice", &alice, "create user eve password 'Eve12345x'".into(), Fails("42501 must be superuser or hold the CREATE USER permission to create users")),
        ("alice", &alice, "create group g2".into(), Fails("42501 must be superuser to create groups")),
        ("alice", &alice, "grant select on secrets to alice".into(), Fails(denied_secrets)),
        // What has_table_privilege answers is what the checks do.
        (
            "alice",
            &alice,
            "select has_table_privilege('sales', 'select'), has_table_privilege('secrets', 'select'), has_table_privilege('sales', 'insert'), has_schema_privilege('hr', 'usage')".into(),
            Rows(&[&["t", "f", "f", "f"]]),
        ),
        (
            "alice",
            &alice,
            "select has_column_privilege('sales', 'amount', 'select'), has_column_privilege('secrets', 'v', 'select')".into(),
            Rows(&[&["t", "f"]]),
        ),
        (
            "alice",
            &alice,
            "select has_column_privilege('sales', 'nope', 'select')".into(),
            Fails("42703 column \"nope\" of relation \"sales\" does not exist"),
        ),
        // information_schema lists what a user holds some privilege on.
        (
            "alice",
            &alice,
            "select table_schema, table_name from information_schema.tables where table_schema in ('public', 'hr') order by 1, 2".into(),
            Rows(&[&["public", "mine"], &["public", "sales"]]),
        ),
        (
            "bob",
            &bob,
            "select table_schema, table_name from information_schema.tables where table_schema in ('public', 'hr') order by 1, 2".into(),
            Rows(&[&["hr", "staff"], &["public", "sales"], &["public", "sales_east"]]),
        ),
        (
            "alice",
            &alice,
            "select schema_name, schema_owner from information_schema.schemata order by 1".into(),
            Rows(&[&["information_schema", "rdsdb"], &["pg_catalog", "rdsdb"], &["public", "rdsdb"]]),
        ),
        // The privilege views: a user sees what it, its groups and PUBLIC were granted.
        (
            "alice",
            &alice,
            "select relation_name, privilege_type, identity_name, identity_type, admin_option from svv_relation_privileges order by 1, 2".into(),
            Rows(&[&["sales", "SELECT", "analysts", "group", "f"]]),
        ),
        (
            "admin",
            &admin,
            "select namespace_name, relation_name, privilege_type, identity_name from svv_relation_privileges order by 2, 3, 4".into(),
            Rows(&[
                &["public", "sales", "INSERT", "bob"],
                &["public", "sales", "SELECT", "analysts"],
                &["public", "sales_east", "SELECT", "bob"],
                &["hr", "staff", "SELECT", "bob"],
            ]),
        ),
        (
            "bob",
            &bob,
            "select namespace_name, privilege_type, identity_name, identity_type from svv_schema_privileges order by 1, 2".into(),
            Rows(&[
                &["hr", "USAGE", "bob", "user"],
                &["public", "CREATE", "public", "public"],
                &["public", "USAGE", "public", "public"],
            ]),
        ),
        (
            "alice",
            &alice,
            "select user_name, superuser, syslog_access, crypted_password from svv_user_info".into(),
            Rows(&[&["alice", "f", "RESTRICTED", "********"]]),
        ),
        // bob: INSERT without SELECT, and reads through a view and a granted schema.
        ("bob", &bob, "insert into sales values (3, 'north', 30)".into(), Done(1)),
        ("bob", &bob, "select * from sales".into(), Fails(denied_sales)),
        ("bob", &bob, "insert into sales select id, region, amount from sales".into(), Fails(denied_sales)),
        ("bob", &bob, "select id, amount from sales_east".into(), Rows(&[&["1", "10"]])),
        ("bob", &bob, "select name from hr.staff".into(), Rows(&[&["Ann"]])),
        ("bob", &bob, format!("copy sales from 's3://priv/in/' {keys} csv"), Done(1)),
        (
            "bob",
            &bob,
            format!("unload ('select id, amount from sales_east') to 's3://priv/out/b_' {keys} parallel off"),
            Done(0),
        ),
        (
            "bob",
            &bob,
            "select has_table_privilege('sales', 'insert'), has_table_privilege('alice', 'sales', 'select')".into(),
            Rows(&[&["t", "t"]]),
        ),
    ];
    for (who, c, sql, expect) in &matrix {
        check(who, c, sql, expect).await;
    }

    // What was granted, as psql's \dp shows it.
    assert_eq!(
        rows(
            &admin,
            "select array_to_string(relacl, ',') from pg_class where relname = 'sales_east'"
        )
        .await,
        vec![vec!["admin=arwdDxtA/admin,bob=r/admin"]]
    );
    let (ok, out, err) = support::psql(&cluster, "\\dp sales");
    assert!(ok, "{err}");
    assert!(
        out.contains("group analysts=r/admin") && out.contains("bob=a/admin"),
        "{out}"
    );

    // The log tables show a user only its own queries, unless SYSLOG ACCESS UNRESTRICTED.
    let staff_queries = "select count(*) from stl_query where lower(querytxt) like '%from hr.staff%' and lower(querytxt) not like '%stl_query%'";
    check("bob", &bob, staff_queries, &Rows(&[&["1"]])).await;
    check("admin", &admin, staff_queries, &Rows(&[&["2"]])).await;
    check(
        "alice",
        &alice,
        "select distinct user_name from stv_recents",
        &Rows(&[&["alice"]]),
    )
    .await;
    admin
        .batch_execute("alter user bob syslog access unrestricted")
        .await
        .unwrap();
    check("bob", &bob, staff_queries, &Rows(&[&["2"]])).await;
    admin
        .batch_execute("alter user bob syslog access restricted")
        .await
        .unwrap();

    // Denied writes changed nothing: only bob's two rows were added.
    assert_eq!(
        rows(&admin, "select count(*), sum(amount) from sales").await,
        vec![vec!["4", "130"]]
    );
    assert_eq!(s3.list_keys("priv", "out/"), ["out/b_000"]);
    let access = basalt_worker::objects::ObjectAccess {
        endpoint: Some(s3.endpoint()),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..Default::default()
    };
    let unloaded = basalt_worker::objects::read("s3://priv/out/b_000", &access)
        .await
        .unwrap();
    assert_eq!(&unloaded[..], b"1|10\n");
    // A denied statement aborts its transaction.
    check("alice", &alice, "begin", &Done(0)).await;
    check(
        "alice",
        &alice,
        "select * from secrets",
        &Fails(denied_secrets),
    )
    .await;
    check(
        "alice",
        &alice,
        "select 1",
        &Fails(
            "25P02 current transaction is aborted, commands ignored until end of transaction block",
        ),
    )
    .await;
    check("alice", &alice, "rollback", &Done(0)).await;

    // PUBLIC, WITH GRANT OPTION and REVOKE.
    admin
        .batch_execute("grant select on secrets to public")
        .await
        .unwrap();
    check(
        "alice",
        &alice,
        "select v from secrets",
        &Rows(&[&["classified"]]),
    )
    .await;
    admin
        .batch_execute("revoke select on secrets from public; grant select on secrets to bob with grant option")
        .await
        .unwrap();
    check(
        "alice",
        &alice,
        "select v from secrets",
        &Fails(denied_secrets),
    )
    .await;
    check("bob", &bob, "grant select on secrets to alice", &Done(0)).await;
    check(
        "alice",
        &alice,
        "select v from secrets",
        &Rows(&[&["classified"]]),
    )
    .await;
    admin
        .batch_execute("revoke select on sales from group analysts")
        .await
        .unwrap();
    check(
        "alice",
        &alice,
        "select count(*) from sales",
        &Fails(denied_sales),
    )
    .await;
    // Revoking what was never granted changes nothing and is no error, as in Redshift.
    admin
        .batch_execute("revoke delete on sales from alice")
        .await
        .unwrap();

    // Bad input: each a clear error, nothing changed.
    for (sql, want) in [
        (
            "grant select on sales to nobody",
            "42704 user \"nobody\" does not exist",
        ),
        (
            "grant select on sales to group nogroup",
            "42704 group \"nogroup\" does not exist",
        ),
        (
            "grant select on nosuch to alice",
            "42P01 relation \"nosuch\" does not exist",
        ),
        (
            "grant select on schema hr to bob",
            "0LP01 invalid privilege type SELECT for schema",
        ),
        (
            "create group analysts",
            "42710 group \"analysts\" already exists",
        ),
        (
            "create user alice password 'Alice123pw'",
            "42710 user \"alice\" already exists",
        ),
        (
            "create user weak password 'short'",
            "22023 Password must be between 8 and 64 characters long.",
        ),
        (
            "create user weak password 'alllowercase1'",
            "22023 Password must contain an uppercase character.",
        ),
        ("drop user nobody", "42704 user \"nobody\" does not exist"),
        (
            "create user limited password 'Limited1x' connection limit x",
            "42601 syntax error: Expected: a number, found: x at Line: 1, Column: 59",
        ),
        (
            "create user hr password 'Limited1x' createdb createdb",
            "42601 conflicting or redundant options",
        ),
        (
            "grant select on sales to alice with grant option, bob",
            "0A000 WITH GRANT OPTION in a GRANT to several grantees is not supported yet; grant to that user in a statement of its own",
        ),
        (
            "revoke role readers from bob cascade",
            "0A000 CASCADE is supported only by REVOKE of privileges on objects",
        ),
        (
            "alter user bob set nosuch to 1",
            "42704 unrecognized configuration parameter \"nosuch\"",
        ),
        (
            "create schema for_nobody authorization nobody",
            "42704 user \"nobody\" does not exist",
        ),
        (
            "grant select (id) on sales, secrets to bob",
            "42601 syntax error: Expected: one table for column privileges, found: to at Line: 1, Column: 37",
        ),
        (
            "grant select on sales to role nosuchrole",
            "42704 role \"nosuchrole\" does not exist",
        ),
        (
            "grant create usr to role readers",
            "0LP01 invalid privilege type CREATE USR for system",
        ),
        (
            "drop user alice",
            "2BP01 user \"alice\" cannot be dropped because the user owns some object: table public.mine",
        ),
    ] {
        check("admin", &admin, sql, &Fails(want)).await;
    }
    // Roles: privileges granted to a role reach its users, directly and through nested
    // roles; cycles are refused; RESTRICT refuses to drop a role in use, FORCE does not.
    admin
        .batch_execute(
            "create role readers; create role auditors;
             grant select on hr.staff to role readers; grant usage on schema hr to role readers;
             grant role readers to role auditors; grant role auditors to alice",
        )
        .await
        .unwrap();
    check(
        "alice",
        &alice,
        "select name from hr.staff",
        &Rows(&[&["Ann"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "grant role auditors to role readers",
        &Fails("0LP01 granting role \"auditors\" to role \"readers\" would create a cycle"),
    )
    .await;
    check(
        "admin",
        &admin,
        "select user_name, role_name, admin_option from svv_user_grants",
        &Rows(&[&["alice", "auditors", "f"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select role_name, granted_role_name from svv_role_grants",
        &Rows(&[&["auditors", "readers"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select role_name, role_owner from svv_roles where role_name not like 'sys:%' order by 1",
        &Rows(&[&["auditors", "admin"], &["readers", "admin"]]),
    )
    .await;
    check(
        "alice",
        &alice,
        "grant role readers to bob",
        &Fails("42501 must have admin option on role \"readers\""),
    )
    .await;
    check(
        "admin",
        &admin,
        "drop role readers",
        &Fails("2BP01 cannot drop role \"readers\" because it is granted to role auditors; use DROP ROLE … FORCE"),
    )
    .await;
    check("admin", &admin, "revoke role auditors from alice", &Done(0)).await;
    check(
        "alice",
        &alice,
        "select name from hr.staff",
        &Fails("42501 permission denied for schema hr"),
    )
    .await;
    check("admin", &admin, "drop role readers force", &Done(0)).await;
    check(
        "admin",
        &admin,
        "select count(*) from svv_relation_privileges where identity_type = 'role'",
        &Rows(&[&["0"]]),
    )
    .await;

    // CREATE SCHEMA … AUTHORIZATION makes that user the owner.
    check(
        "admin",
        &admin,
        "create schema bobs authorization bob",
        &Done(0),
    )
    .await;
    check(
        "admin",
        &admin,
        "select schema_owner from information_schema.schemata where schema_name = 'bobs'",
        &Rows(&[&["bob"]]),
    )
    .await;
    check("bob", &bob, "drop schema bobs", &Done(0)).await;

    // Ownership moves with OWNER TO (then alice owns nothing).
    admin
        .batch_execute("alter table mine owner to bob")
        .await
        .unwrap();
    assert_eq!(
        rows(
            &admin,
            "select tableowner from pg_tables where tablename = 'mine'"
        )
        .await,
        vec![vec!["bob"]]
    );
    check("bob", &bob, "drop table mine", &Done(0)).await;

    // A superuser acts as another user; SET ROLE and other SETs Basalt cannot honour fail.
    check(
        "admin",
        &admin,
        "set session authorization 'alice'",
        &Done(0),
    )
    .await;
    check(
        "admin",
        &admin,
        "select current_user, session_user",
        &Rows(&[&["alice", "alice"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select count(*) from sales",
        &Fails(denied_sales),
    )
    .await;
    check("admin", &admin, "reset session authorization", &Done(0)).await;
    check("admin", &admin, "select current_user", &Rows(&[&["admin"]])).await;
    check(
        "alice",
        &alice,
        "set session authorization 'admin'",
        &Fails("42501 permission denied to set session authorization"),
    )
    .await;
    check(
        "alice",
        &alice,
        "set role analysts",
        &Fails("42704 role \"analysts\" does not exist"),
    )
    .await;
    check(
        "alice",
        &alice,
        "kill 5",
        &Fails("0A000 KILL is not supported; use pg_terminate_backend(pid)"),
    )
    .await;

    // Per-user settings are the user's session defaults, and RESET returns to them.
    admin
        .batch_execute("alter user bob set search_path to hr, public")
        .await
        .unwrap();
    let bob2 = cluster.connect_as(BOB.0, BOB.1).await.unwrap();
    check("bob", &bob2, "show search_path", &Rows(&[&["hr, public"]])).await;
    check(
        "bob",
        &bob2,
        "set local search_path to public",
        &Fails("0A000 SET LOCAL is not supported yet"),
    )
    .await;
    check("bob", &bob2, "set search_path to public", &Done(0)).await;
    check("bob", &bob2, "reset search_path", &Done(0)).await;
    check("bob", &bob2, "show search_path", &Rows(&[&["hr, public"]])).await;

    // Groups as the catalog shows them; a renamed group keeps its grants, and a group
    // that holds privileges cannot be dropped.
    admin
        .batch_execute(
            "create group etl with user bob; alter group etl add user alice; alter group etl drop user bob;
             grant select on secrets to group etl; alter group etl rename to loaders",
        )
        .await
        .unwrap();
    assert_eq!(
        rows(
            &admin,
            "select groname, array_length(grolist, 1) from pg_group order by 1"
        )
        .await,
        vec![vec!["analysts", "1"], vec!["loaders", "1"]]
    );
    assert_eq!(
        rows(&admin, "select usename, usesuper, usecreatedb from pg_user where usename in ('admin', 'alice') order by 1").await,
        vec![vec!["admin", "true", "true"], vec!["alice", "false", "false"]]
    );
    check("admin", &admin, "drop group loaders", &Fails("2BP01 group \"loaders\" cannot be dropped because the group has a privilege on some object: table public.secrets")).await;
    admin
        .batch_execute("revoke all on secrets from group loaders; drop group loaders")
        .await
        .unwrap();
    check("admin", &admin, "drop user alice", &Fails("2BP01 user \"alice\" cannot be dropped because the user has a privilege on some object: table public.secrets")).await;

    // Logins: a disabled password or an expired VALID UNTIL fails like a wrong password.
    admin
        .batch_execute("create user carol password 'Carol123x'; alter user carol password disable")
        .await
        .unwrap();
    let err = cluster
        .connect_as("carol", "Carol123x")
        .await
        .expect_err("disabled password accepted");
    assert!(
        error_text(&err).starts_with("28P01"),
        "{}",
        error_text(&err)
    );
    admin
        .batch_execute("alter user carol password 'Carol456x' valid until '2001-01-01'")
        .await
        .unwrap();
    let err = cluster
        .connect_as("carol", "Carol456x")
        .await
        .expect_err("expired password accepted");
    assert!(
        error_text(&err).starts_with("28P01"),
        "{}",
        error_text(&err)
    );
    admin
        .batch_execute("alter user carol valid until 'infinity'")
        .await
        .unwrap();
    assert!(cluster.connect_as("carol", "Carol456x").await.is_ok());
    let err = cluster
        .connect_as("nobody", "Whatever1")
        .await
        .expect_err("unknown user accepted");
    assert!(
        error_text(&err).starts_with("28P01"),
        "{}",
        error_text(&err)
    );

    // psql as alice and as bob, in sessions beside the others.
    let (ok, out, err) = psql_as(&cluster, BOB.0, BOB.1, "select name from hr.staff");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Ann");
    let (ok, _, err) = psql_as(&cluster, ALICE.0, ALICE.1, "select * from hr.staff");
    assert!(!ok);
    assert!(err.contains("permission denied for schema hr"), "{err}");
    // psycopg as bob: extended protocol, parameters bound on the server.
    let script = r#"
import sys, psycopg
port, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
conn = psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="dev")
conn.autocommit = True
cur = conn.cursor()
cur.execute("select amount from sales_east where id = %s", (1,))
print(cur.fetchall())
try:
    cur.execute("select * from sales where id = %s", (1,))
    print("no error")
except psycopg.Error as e:
    print(e.sqlstate, str(e).strip())
"#;
    let out = Command::new("python3")
        .args(["-c", script, &cluster.port.to_string(), BOB.0, BOB.1])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[(10,)]\n42501 permission denied for relation sales\n"
    );

    // A renamed user keeps what it owns and holds; its password is cleared.
    admin
        .batch_execute(
            "create user dave password 'Dave1234x'; grant select on secrets to dave;
             create table dave_t (a int); alter table dave_t owner to dave",
        )
        .await
        .unwrap();
    check("admin", &admin, "alter user dave rename to david", &Done(0)).await;
    assert_eq!(
        rows(
            &admin,
            "select tableowner from pg_tables where tablename = 'dave_t'"
        )
        .await,
        vec![vec!["david"]]
    );
    cluster
        .connect_as("david", "Dave1234x")
        .await
        .expect_err("a renamed user's old password still works");
    admin
        .batch_execute("alter user david password 'David1234x'")
        .await
        .unwrap();
    let david = cluster.connect_as("david", "David1234x").await.unwrap();
    check(
        "david",
        &david,
        "select v from secrets",
        &Rows(&[&["classified"]]),
    )
    .await;
    check("david", &david, "drop table dave_t", &Done(0)).await;

    // Amazon's redshift_connector as bob.
    let script = r#"
import sys, redshift_connector
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = redshift_connector.connect(host="127.0.0.1", port=port, user=user, password=password, database="dev", ssl=False)
cur = conn.cursor()
cur.execute("select current_user, amount from sales_east where id = %s", (1,))
print([list(r) for r in cur.fetchall()])
try:
    cur.execute("select * from sales")
    print("no error")
except redshift_connector.ProgrammingError as e:
    print(e.args[0]["C"], e.args[0]["M"])
"#;
    let out = Command::new("python3")
        .args(["-c", script, &cluster.port.to_string(), BOB.0, BOB.1])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[['bob', 10]]\n42501 permission denied for relation sales\n"
    );

    // Everything survives a restart.
    drop((alice, bob, admin));
    drop(cluster);
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &s3_args);
    let bob = cluster.connect_as(BOB.0, BOB.1).await.unwrap();
    check(
        "bob",
        &bob,
        "select id, amount from sales_east",
        &Rows(&[&["1", "10"]]),
    )
    .await;
    check("bob", &bob, "select * from sales", &Fails(denied_sales)).await;
    let alice = cluster.connect_as(ALICE.0, ALICE.1).await.unwrap();
    check(
        "alice",
        &alice,
        "select v from secrets",
        &Rows(&[&["classified"]]),
    )
    .await;
    check(
        "alice",
        &alice,
        "select count(*) from sales",
        &Fails(denied_sales),
    )
    .await;
    let admin = cluster.connect().await;
    assert_eq!(
        rows(&admin, "select has_table_privilege('alice', 'secrets', 'select'), has_table_privilege('bob', 'sales', 'insert'), has_table_privilege('bob', 'sales', 'delete')").await,
        vec![vec!["true", "true", "false"]]
    );
}

/// Column-level grants, system privileges and Redshift's system roles, default
/// privileges, CONNECTION LIMIT and SESSION TIMEOUT, `sha256|` passwords and pg_shadow:
/// each asserted over the wire as the users concerned, and again after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_system_privileges_defaults_and_login_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
    let admin = cluster.connect().await;
    admin
        .batch_execute(
            "create table cards (id int, holder varchar(20), number varchar(20));
             insert into cards values (1, 'Ann', '4111-1111'), (2, 'Bo', '5500-0000');
             create table ledger (id int, amount int);
             insert into ledger values (1, 5);
             create view v_cards as select id, holder, number from cards;
             create user alice password 'Alice123pw';
             create user bob password 'Bob123pwXX';
             create user idle password 'Idle1234pw' session timeout 60;
             create user lim password 'Limit123pw' connection limit 1;
             create user shau password 'sha256|Sha256pwXY';
             grant select (id, holder), update (holder) on cards to alice;
             grant select (id) on v_cards to bob;
             create role ops;
             grant create user, truncate table, vacuum to role ops;
             grant role ops to bob;
             grant role sys:dba to alice;",
        )
        .await
        .unwrap_or_else(|e| panic!("setup: {}", error_text(&e)));

    // SESSION TIMEOUT: a session idle past its user's limit is closed; another user's
    // session, idle as long, stays. Redshift's shortest timeout is a minute, so this
    // waits beside the rest of the test.
    let idle = cluster.connect_as("idle", "Idle1234pw").await.unwrap();
    let steady = cluster.connect_as(BOB.0, BOB.1).await.unwrap();
    let timeout = tokio::spawn(async move {
        assert_eq!(rows(&idle, "select 1").await, vec![vec!["1"]]);
        tokio::time::sleep(std::time::Duration::from_secs(63)).await;
        let gone = idle.simple_query("select 1").await;
        assert!(
            gone.is_err(),
            "an idle session outlived its SESSION TIMEOUT"
        );
        assert_eq!(rows(&steady, "select 1").await, vec![vec!["1"]]);
    });

    let alice = cluster.connect_as(ALICE.0, ALICE.1).await.unwrap();
    let bob = cluster.connect_as(BOB.0, BOB.1).await.unwrap();
    let denied_cards = "42501 permission denied for relation cards";
    let matrix: Vec<(&str, &tokio_postgres::Client, &str, Expect)> = vec![
        // Column-level SELECT: the granted columns, in any clause; `*` and the others fail.
        (
            "alice",
            &alice,
            "select id, holder from cards order by id",
            Rows(&[&["1", "Ann"], &["2", "Bo"]]),
        ),
        (
            "alice",
            &alice,
            "select count(*) from cards",
            Rows(&[&["2"]]),
        ),
        (
            "alice",
            &alice,
            "select c.holder from cards c join ledger l on c.id = l.id",
            Fails("42501 permission denied for relation ledger"),
        ),
        ("alice", &alice, "select * from cards", Fails(denied_cards)),
        (
            "alice",
            &alice,
            "select number from cards",
            Fails(denied_cards),
        ),
        (
            "alice",
            &alice,
            "select id from cards where number like '4%'",
            Fails(denied_cards),
        ),
        (
            "alice",
            &alice,
            "select holder from cards where id in (select id from cards where number <> '')",
            Fails(denied_cards),
        ),
        // What counts is the columns the plan reads: a `*` inside a CTE whose other
        // columns nothing uses reads only those used.
        (
            "alice",
            &alice,
            "with c as (select * from cards) select id from c order by id",
            Rows(&[&["1"], &["2"]]),
        ),
        (
            "alice",
            &alice,
            "with c as (select * from cards) select * from c",
            Fails(denied_cards),
        ),
        // Column-level UPDATE.
        (
            "alice",
            &alice,
            "update cards set holder = 'Anne' where id = 1",
            Done(1),
        ),
        (
            "alice",
            &alice,
            "update cards set number = '0' where id = 1",
            Fails(denied_cards),
        ),
        ("alice", &alice, "delete from cards", Fails(denied_cards)),
        // A view's columns: bob holds only v_cards.id.
        (
            "bob",
            &bob,
            "select id from v_cards order by id",
            Rows(&[&["1"], &["2"]]),
        ),
        (
            "bob",
            &bob,
            "select holder from v_cards",
            Fails("42501 permission denied for relation v_cards"),
        ),
        ("bob", &bob, "select id from cards", Fails(denied_cards)),
        // System privileges through a role: CREATE USER (no superusers), TRUNCATE TABLE.
        (
            "bob",
            &bob,
            "create user carol password 'Carol123pw'",
            Done(0),
        ),
        (
            "bob",
            &bob,
            "create user dave password 'Dave1234pw' createuser",
            Fails("42501 must be superuser to create superusers"),
        ),
        (
            "bob",
            &bob,
            "drop user carol",
            Fails("42501 must be superuser or hold the DROP USER permission to drop users"),
        ),
        ("bob", &bob, "truncate ledger", Done(0)),
        (
            "bob",
            &bob,
            "analyze ledger",
            Fails("42501 must be owner of relation ledger"),
        ),
        (
            "bob",
            &bob,
            "grant vacuum to role ops",
            Fails("42501 must be superuser to grant or revoke system permissions"),
        ),
        // sys:dba: tables and schemas anywhere.
        ("alice", &alice, "create schema dba_s", Done(0)),
        ("alice", &alice, "create table dba_s.t (a int)", Done(0)),
        ("alice", &alice, "drop table ledger", Done(0)),
        (
            "alice",
            &alice,
            "drop role \"sys:dba\"",
            Fails("42501 system-defined role \"sys:dba\" cannot be changed"),
        ),
        // Password hashes are for superusers.
        (
            "alice",
            &alice,
            "select * from pg_shadow",
            Fails("42501 permission denied for relation pg_shadow"),
        ),
        (
            "alice",
            &alice,
            "select current_user_id = usesysid from pg_user where usename = current_user",
            Rows(&[&["t"]]),
        ),
        (
            "alice",
            &alice,
            "select has_function_privilege('lower(text)', 'execute'), has_function_privilege('bob', 'pg_catalog.count(int)', 'execute')",
            Rows(&[&["t", "t"]]),
        ),
        (
            "alice",
            &alice,
            "select has_function_privilege('no_such_fn()', 'execute')",
            Fails("42883 function \"no_such_fn()\" does not exist"),
        ),
    ];
    for (who, client, sql, expect) in &matrix {
        check(who, client, sql, expect).await;
    }
    check(
        "admin",
        &admin,
        "select id, holder, number from cards order by id",
        &Rows(&[&["1", "Anne", "4111-1111"], &["2", "Bo", "5500-0000"]]),
    )
    .await;

    // SET ROLE: the session acts as the role, with the role's privileges only, and
    // what it creates the role owns; RESET ROLE goes back.
    check("bob", &bob, "set role ops", &Done(0)).await;
    check(
        "bob",
        &bob,
        "select current_user, session_user",
        &Rows(&[&["ops", "bob"]]),
    )
    .await;
    check(
        "bob",
        &bob,
        "select id from v_cards",
        &Fails("42501 permission denied for relation v_cards"),
    )
    .await;
    check(
        "bob",
        &bob,
        "create user frank password 'Frank123pw'",
        &Done(0),
    )
    .await;
    check("bob", &bob, "create table ops_t (a int)", &Done(0)).await;
    check(
        "bob",
        &bob,
        "select tableowner from pg_tables where tablename = 'ops_t'",
        &Rows(&[&["ops"]]),
    )
    .await;
    check("bob", &bob, "reset role", &Done(0)).await;
    check(
        "bob",
        &bob,
        "select current_user, session_user",
        &Rows(&[&["bob", "bob"]]),
    )
    .await;
    check(
        "bob",
        &bob,
        "select id from v_cards where id = 1",
        &Rows(&[&["1"]]),
    )
    .await;
    check(
        "alice",
        &alice,
        "set role ops",
        &Fails("42501 permission denied to set role \"ops\""),
    )
    .await;
    check(
        "admin",
        &admin,
        "drop role ops force",
        &Fails(
            "2BP01 role \"ops\" cannot be dropped because it owns some object: table public.ops_t",
        ),
    )
    .await;
    check(
        "admin",
        &admin,
        "drop table ops_t; drop user frank",
        &Done(0),
    )
    .await;

    // What clients see of column grants and system privileges.
    check(
        "admin",
        &admin,
        "select relation_name, column_name, privilege_type, identity_name from svv_column_privileges order by 1, 2, 3",
        &Rows(&[
            &["cards", "holder", "SELECT", "alice"],
            &["cards", "holder", "UPDATE", "alice"],
            &["cards", "id", "SELECT", "alice"],
            &["v_cards", "id", "SELECT", "bob"],
        ]),
    )
    .await;
    check(
        "alice",
        &alice,
        "select has_column_privilege('cards', 'holder', 'select'), has_column_privilege('cards', 'number', 'select'), has_column_privilege('bob', 'v_cards', 'id', 'select'), has_table_privilege('cards', 'select')",
        &Rows(&[&["t", "f", "t", "f"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select attname, array_to_string(attacl, ',') from pg_attribute where attrelid = 'cards'::regclass and attacl is not null order by 1",
        &Rows(&[&["holder", "alice=rw/admin"], &["id", "alice=r/admin"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select system_privilege from svv_system_privileges where identity_name = 'ops' order by 1",
        &Rows(&[&["CREATE USER"], &["TRUNCATE TABLE"], &["VACUUM"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select system_privilege from svv_system_privileges where identity_name = 'sys:operator' order by 1",
        &Rows(&[&["ACCESS CATALOG"], &["ACCESS SYSTEM TABLE"], &["ANALYZE"], &["CANCEL"], &["VACUUM"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select role_name from svv_roles where role_name like 'sys:%' order by 1",
        &Rows(&[
            &["sys:dba"],
            &["sys:monitor"],
            &["sys:operator"],
            &["sys:secadmin"],
            &["sys:superuser"],
        ]),
    )
    .await;
    check(
        "admin",
        &admin,
        "grant create user to alice",
        &Fails("0LP01 system permissions can only be granted to roles"),
    )
    .await;
    check(
        "admin",
        &admin,
        "grant drop user to role \"sys:dba\"",
        &Fails("0LP01 the system permissions of system-defined role \"sys:dba\" cannot be changed"),
    )
    .await;
    check("admin", &admin, "create role \"sys:mine\"", &Fails("42939 role name \"sys:mine\" is reserved: the prefixes sys: and ds: are Redshift's own")).await;
    check(
        "admin",
        &admin,
        "grant select (nope) on cards to bob",
        &Fails("42703 column \"nope\" of relation \"cards\" does not exist"),
    )
    .await;
    check(
        "admin",
        &admin,
        "grant insert (id) on cards to bob",
        &Fails("0LP01 invalid privilege type INSERT for column"),
    )
    .await;
    check(
        "admin",
        &admin,
        "grant select (id) on cards to bob with grant option",
        &Fails("0LP01 WITH GRANT OPTION cannot be used with column-level privileges"),
    )
    .await;
    check("admin", &admin, "create user bad password 'sha256|abc|salt'", &Fails("0A000 PASSWORD 'sha256|digest|salt' is not supported: logins use MD5 or SCRAM-SHA-256, which a SHA-256 digest cannot serve; give 'sha256|password', the password, its md5 hash, or DISABLE")).await;
    check(
        "admin",
        &admin,
        "alter user bob session timeout 30",
        &Fails(
            "22023 SESSION TIMEOUT 30 is out of range: give 60 to 1728000 seconds, or 0 for none",
        ),
    )
    .await;
    check("admin", &admin, "select usename, passwd like 'md5%' from pg_shadow where usename in ('alice', 'bob') order by 1", &Rows(&[&["alice", "t"], &["bob", "t"]])).await;

    // `sha256|password` logs in with that password.
    let shau = cluster.connect_as("shau", "Sha256pwXY").await.unwrap();
    check("shau", &shau, "select current_user", &Rows(&[&["shau"]])).await;

    // Default privileges: alice's own, and those an admin sets for her in a schema.
    check(
        "alice",
        &alice,
        "alter default privileges grant select on tables to bob",
        &Done(0),
    )
    .await;
    check("admin", &admin, "alter default privileges for user alice in schema dba_s grant insert, select on tables to group analysts", &Fails("42704 group \"analysts\" does not exist")).await;
    check(
        "admin",
        &admin,
        "create group analysts with user bob",
        &Done(0),
    )
    .await;
    check("admin", &admin, "alter default privileges for user alice in schema dba_s grant insert on tables to group analysts", &Done(0)).await;
    check(
        "bob",
        &bob,
        "alter default privileges for user alice grant select on tables to bob",
        &Fails("42501 must be superuser to alter the default privileges of another user"),
    )
    .await;
    check(
        "alice",
        &alice,
        "alter default privileges grant execute on functions to bob",
        &Fails("0A000 default privileges ON FUNCTIONS are not supported yet"),
    )
    .await;
    check(
        "alice",
        &alice,
        "create table dba_s.fresh (a int); insert into dba_s.fresh values (1)",
        &Done(1),
    )
    .await;
    check(
        "bob",
        &bob,
        "insert into dba_s.fresh values (2)",
        &Fails("42501 permission denied for schema dba_s"),
    )
    .await;
    check(
        "alice",
        &alice,
        "grant usage on schema dba_s to group analysts, bob",
        &Done(0),
    )
    .await;
    check("bob", &bob, "insert into dba_s.fresh values (2)", &Done(1)).await;
    check(
        "bob",
        &bob,
        "select a from dba_s.fresh order by a",
        &Rows(&[&["1"], &["2"]]),
    )
    .await;
    check(
        "bob",
        &bob,
        "delete from dba_s.fresh",
        &Fails("42501 permission denied for relation fresh"),
    )
    .await;
    check(
        "admin",
        &admin,
        "select coalesce(schema_name, '-'), object_type, owner_name, privilege_type, grantee_name, grantee_type from svv_default_privileges order by 1, 4",
        &Rows(&[
            &["-", "RELATION", "alice", "SELECT", "bob", "user"],
            &["dba_s", "RELATION", "alice", "INSERT", "analysts", "group"],
        ]),
    )
    .await;
    check(
        "admin",
        &admin,
        "select pg_get_userbyid(defaclrole), defaclobjtype, array_to_string(defaclacl, ',') from pg_default_acl order by defaclnamespace",
        &Rows(&[&["alice", "r", "bob=r/alice"], &["alice", "r", "group analysts=a/alice"]]),
    )
    .await;
    // psql's \ddp reads pg_default_acl; \dp shows column grants.
    let (ok, out, err) = psql_as(&cluster, "admin", support::PASSWORD, "\\ddp");
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "alice|dba_s|table|group analysts=a/alice\nalice||table|bob=r/alice\n"
    );
    let (ok, out, err) = psql_as(&cluster, "admin", support::PASSWORD, "\\dp cards");
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "public|cards|table||id:\n  alice=r/admin\nholder:\n  alice=rw/admin\n"
    );
    check(
        "alice",
        &alice,
        "alter default privileges revoke select on tables from bob",
        &Done(0),
    )
    .await;
    check(
        "alice",
        &alice,
        "create table dba_s.later (a int)",
        &Done(0),
    )
    .await;
    check(
        "bob",
        &bob,
        "select * from dba_s.later",
        &Fails("42501 permission denied for relation later"),
    )
    .await;
    // REVOKE … CASCADE follows the grant chain: what alice granted from her grant
    // option goes with it.
    check(
        "admin",
        &admin,
        "grant select on v_cards to alice with grant option",
        &Done(0),
    )
    .await;
    check("alice", &alice, "grant select on v_cards to bob", &Done(0)).await;
    check(
        "bob",
        &bob,
        "select holder from v_cards where id = 2",
        &Rows(&[&["Bo"]]),
    )
    .await;
    check(
        "admin",
        &admin,
        "revoke grant option for select on v_cards from alice cascade",
        &Done(0),
    )
    .await;
    check(
        "bob",
        &bob,
        "select holder from v_cards",
        &Fails("42501 permission denied for relation v_cards"),
    )
    .await;
    check(
        "alice",
        &alice,
        "select holder from v_cards where id = 2",
        &Rows(&[&["Bo"]]),
    )
    .await;
    check(
        "alice",
        &alice,
        "grant select on v_cards to bob",
        &Fails("42501 permission denied for relation v_cards"),
    )
    .await;
    // A table-level REVOKE takes the column grants with it, as in PostgreSQL.
    check(
        "admin",
        &admin,
        "revoke select on cards from alice",
        &Done(0),
    )
    .await;
    check(
        "alice",
        &alice,
        "select id from cards",
        &Fails(denied_cards),
    )
    .await;
    check(
        "admin",
        &admin,
        "grant select (id) on cards to alice",
        &Done(0),
    )
    .await;

    // CONNECTION LIMIT 1: a second login fails with 53300 once the password was
    // accepted; a wrong password still fails as a wrong password.
    let first = cluster.connect_as("lim", "Limit123pw").await.unwrap();
    let second = cluster
        .connect_as("lim", "Limit123pw")
        .await
        .err()
        .unwrap_or_else(|| panic!("second login succeeded"));
    assert_eq!(
        error_text(&second),
        "53300 too many connections for role \"lim\""
    );
    let wrong = cluster
        .connect_as("lim", "wrongpass1")
        .await
        .err()
        .unwrap_or_else(|| panic!("wrong password succeeded"));
    assert!(
        error_text(&wrong).starts_with("28P01"),
        "{}",
        error_text(&wrong)
    );
    check("lim", &first, "select current_user", &Rows(&[&["lim"]])).await;
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        match cluster.connect_as("lim", "Limit123pw").await {
            Ok(c) => {
                again = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let again = again.expect("a login once the first connection closed");
    check("lim", &again, "select 1", &Rows(&[&["1"]])).await;

    timeout.await.unwrap();

    // Everything holds after a restart.
    drop((alice, bob, admin, again, shau));
    drop(cluster);
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &[]);
    let alice = cluster.connect_as(ALICE.0, ALICE.1).await.unwrap();
    check(
        "alice",
        &alice,
        "select id from cards order by id",
        &Rows(&[&["1"], &["2"]]),
    )
    .await;
    check(
        "alice",
        &alice,
        "select holder from cards",
        &Fails(denied_cards),
    )
    .await;
    check("alice", &alice, "create table hr_like (a int)", &Done(0)).await;
    let bob = cluster.connect_as(BOB.0, BOB.1).await.unwrap();
    check(
        "bob",
        &bob,
        "create user erin password 'Erin1234pw'",
        &Done(0),
    )
    .await;
    check(
        "bob",
        &bob,
        "select id from v_cards where id = 2",
        &Rows(&[&["2"]]),
    )
    .await;
    check(
        "alice",
        &alice,
        "create table dba_s.after (a int)",
        &Done(0),
    )
    .await;
    check("bob", &bob, "insert into dba_s.after values (1)", &Done(1)).await;
    let lim = cluster.connect_as("lim", "Limit123pw").await.unwrap();
    let second = cluster
        .connect_as("lim", "Limit123pw")
        .await
        .err()
        .unwrap_or_else(|| panic!("second login succeeded"));
    assert_eq!(
        error_text(&second),
        "53300 too many connections for role \"lim\""
    );
    drop(lim);
}
