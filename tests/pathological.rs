//! Statements that used to take the warehouse down, generated here, against a real
//! multi-process cluster: each gets its result or a clear error, the session that sent it
//! goes on, and after the whole corpus the same server answers and the data is unchanged.
//! And if the leader process dies anyway, `basalt local` starts it again with every
//! committed row.

mod support;

use std::time::Duration;

use support::{LocalCluster, error_text, rows};

/// What a statement of the corpus must come to: these rows, or an error with this SQLSTATE
/// whose message starts with this text.
enum Expect {
    Rows(Vec<Vec<String>>),
    Error(&'static str, &'static str),
}

fn one(value: impl ToString) -> Expect {
    Expect::Rows(vec![vec![value.to_string()]])
}

fn joined(n: usize, sep: &str, term: impl Fn(usize) -> String) -> String {
    (0..n).map(term).collect::<Vec<_>>().join(sep)
}

/// The corpus: name, statement, expected outcome. `t(a, b)` holds a = 0..9999, b = 'v' || a.
fn corpus() -> Vec<(&'static str, String, Expect)> {
    const DEEP: Expect = Expect::Error("54001", "stack depth limit exceeded");
    vec![
        (
            "the 2,000-term OR of the outage",
            format!(
                "select count(*) from t where {}",
                joined(2_000, " or ", |i| format!("a = {i}"))
            ),
            one(2_000),
        ),
        (
            "an OR chain of 10,000 terms",
            format!(
                "select count(*) from t where {}",
                joined(10_000, " or ", |i| format!("a = {i}"))
            ),
            one(10_000),
        ),
        (
            "an AND chain of 10,000 terms",
            format!(
                "select count(*) from t where {}",
                joined(10_000, " and ", |i| format!("a <> {}", i * 2))
            ),
            one(5_000),
        ),
        (
            "an OR chain of 2,000 mixed terms",
            format!(
                "select count(*) from t where {}",
                joined(2_000, " or ", |i| if i % 2 == 0 {
                    format!("b = 'v{i}'")
                } else {
                    format!("a < {}", -(i as i64))
                })
            ),
            one(1_000),
        ),
        (
            "an IN list of 100,000 values",
            format!(
                "select count(*), sum(a) from t where a in ({})",
                joined(100_000, ",", |i| (i * 3).to_string())
            ),
            Expect::Rows(vec![vec!["3334".into(), "16668333".into()]]),
        ),
        (
            "5,000 nested parentheses",
            format!("select {}1{}", "(".repeat(5_000), ")".repeat(5_000)),
            DEEP,
        ),
        (
            "a 5,000-term sum",
            format!("select {}", joined(5_000, "+", |_| "1".into())),
            DEEP,
        ),
        (
            "a 400-term sum, under the limit",
            format!("select {}", joined(400, "+", |_| "1".into())),
            one(400),
        ),
        (
            "CASE with 5,000 branches",
            format!(
                "select count(case {} end), sum(case {} end) from t",
                joined(5_000, " ", |i| format!("when a = {i} then 1")),
                joined(5_000, " ", |i| format!("when a = {i} then a"))
            ),
            Expect::Rows(vec![vec!["5000".into(), "12497500".into()]]),
        ),
        (
            "a 1,000-way UNION ALL",
            format!(
                "select count(*), sum(x) from ({}) u",
                joined(1_000, " union all ", |i| format!("select {i} as x"))
            ),
            Expect::Rows(vec![vec!["1000".into(), "499500".into()]]),
        ),
        (
            "500 nested subqueries",
            format!("select {}1{}", "(select ".repeat(500), ")".repeat(500)),
            DEEP,
        ),
        (
            "10 nested subqueries, under the limit",
            format!("select {}1{}", "(select ".repeat(10), ")".repeat(10)),
            one(1),
        ),
        (
            "100 nested derived tables",
            format!(
                "select count(*) from {}t{}",
                "(select * from ".repeat(100),
                ") s".repeat(100)
            ),
            one(10_000),
        ),
        (
            "a 5,000-column SELECT",
            format!(
                "select * from (select {} from t where a = 7) s",
                joined(5_000, ",", |i| format!("a + {i} as c{i}"))
            ),
            Expect::Rows(vec![(0..5_000).map(|i| (7 + i).to_string()).collect()]),
        ),
        (
            "a 100 MB string literal",
            format!("select length('{}')", "x".repeat(100_000_000)),
            Expect::Error(
                "54000",
                "Statement is too large. Statement Size: 100000017 bytes.",
            ),
        ),
        (
            "a 10 MB string literal, under the limit",
            format!("select length('{}')", "é".repeat(5_000_000)),
            one(5_000_000),
        ),
        (
            "repeat() asking for 2 GB",
            "select length(repeat('x', 2000000000))".into(),
            Expect::Error("54000", "requested length too large"),
        ),
        (
            "repeat() over rows asking for 16 MB each",
            "select max(length(repeat(b, 10000000))) from t".into(),
            Expect::Error("54000", "requested length too large"),
        ),
        (
            "lpad() asking for 2 GB",
            "select length(lpad('x', 2000000000, 'y'))".into(),
            Expect::Error("54000", "requested length too large"),
        ),
        (
            "rpad() asking for 2 GB",
            "select length(rpad('x', 2000000000))".into(),
            Expect::Error("54000", "requested length too large"),
        ),
        (
            "repeat() and lpad() within the limit",
            "select length(repeat('ab', 1000000)), lpad('7', 3, '0'), rpad('é', 3, '-')".into(),
            Expect::Rows(vec![vec!["2000000".into(), "007".into(), "é--".into()]]),
        ),
        (
            "JSON nested 5,000 deep",
            format!(
                "select json_extract_path_text('{}1{}', 'a')",
                "{\"a\":".repeat(5_000),
                "}".repeat(5_000)
            ),
            Expect::Error("22P02", "JSON parsing error"),
        ),
        (
            "a view that reads itself",
            "select * from loop_a".into(),
            Expect::Error("42P17", "infinite recursion detected"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_statements_get_an_answer_and_the_server_keeps_serving() {
    let cluster = LocalCluster::start(2, 2);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table t (a int distkey, b varchar(20)) sortkey(a);
         insert into t select value, 'v' || value from generate_series(0, 9999);
         create view loop_a as select 1 as x with no schema binding;
         create view loop_b as select * from public.loop_a with no schema binding;
         create or replace view loop_a as select * from public.loop_b with no schema binding;",
    )
    .await
    .unwrap();
    // A second session, busy in a transaction the whole time, must not be disturbed.
    let other = cluster.connect().await;
    other
        .batch_execute("begin; insert into t values (-1, 'pending');")
        .await
        .unwrap();
    let mut wrong = Vec::new();
    for (name, sql, expect) in corpus() {
        let got = tokio::time::timeout(Duration::from_secs(600), c.simple_query(&sql))
            .await
            .unwrap_or_else(|_| panic!("{name}: no answer within 10 minutes"));
        let outcome = match got {
            Ok(messages) => Ok(messages
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                })
                .collect::<Vec<_>>()),
            Err(e) => Err(error_text(&e)),
        };
        let ok = match (&expect, &outcome) {
            (Expect::Rows(want), Ok(got)) => want == got,
            (Expect::Error(code, start), Err(text)) => text.starts_with(&format!("{code} {start}")),
            _ => false,
        };
        if !ok {
            let got = match &outcome {
                Ok(r) => format!("rows {r:?}"),
                Err(e) => format!("error {}", &e[..e.len().min(300)]),
            };
            wrong.push(format!("{name}: got {got}"));
        }
        // The session goes on after every statement, error or not.
        assert_eq!(rows(&c, "select 1").await, vec![vec!["1"]], "after {name}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Extended protocol: a deep statement fails at Parse, and the session goes on.
    let deep = format!("select {}", joined(5_000, "+", |_| "1".into()));
    let err = c.prepare(&deep).await.unwrap_err();
    assert!(error_text(&err).starts_with("54001 stack depth limit exceeded"));
    other.batch_execute("rollback").await.unwrap();
    assert_eq!(
        rows(&c, "select count(*), sum(a), min(b), max(b) from t").await,
        vec![vec!["10000", "49995000", "v0", "v9999"]]
    );
    assert_eq!(rows(&other, "select 1").await, vec![vec!["1"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_dies_is_started_again_with_its_committed_data() {
    let cluster = LocalCluster::start(2, 1);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table kept (k int, v varchar(10));
         insert into kept select value, 'v' || value from generate_series(1, 1000);",
    )
    .await
    .unwrap();
    let leader = cluster.leader_pid();
    // SAFETY: a plain signal to a process of this test's cluster.
    unsafe {
        libc::kill(leader as i32, libc::SIGKILL);
    }
    // The killed leader's sessions are gone.
    assert!(c.simple_query("select 1").await.is_err());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let c = loop {
        match tokio_postgres::connect(&cluster.conn_string(), tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                if client.simple_query("select 1").await.is_ok() {
                    break client;
                }
            }
            Err(_) => assert!(
                std::time::Instant::now() < deadline,
                "the leader was not started again"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(cluster.leader_pid(), leader);
    // Workers register with the new leader; queries that need them succeed once they have.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        match c
            .query("select count(*), sum(k), max(v) from kept", &[])
            .await
        {
            Ok(r) => break (0..3).map(|i| support::cell(&r[0], i)).collect::<Vec<_>>(),
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "workers did not come back: {}",
                    error_text(&e)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(got, vec!["1000", "500500", "v999"]);
}
