//! COPY on real `basalt local` clusters beyond what the SQL tests cover: a worker killed
//! in the middle of a COPY fails it cleanly, leaves the table unchanged, and a rerun
//! loads everything; two COPYs into one table at once both commit.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{LocalCluster, error_text, rows};

/// `files` pipe-delimited files of `rows` rows each under `dir`, named `part_<n>.txt`.
fn write_input(dir: &std::path::Path, files: usize, rows: usize) {
    for f in 0..files {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(dir.join(format!("part_{f}.txt"))).unwrap(),
        );
        for i in 0..rows {
            let id = f * rows + i;
            writeln!(out, "{id}|name {id}|2024-01-{:02}", id % 28 + 1).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_copy_fails_cleanly_and_a_rerun_loads_everything() {
    let cluster = LocalCluster::start(2, 2);
    let input = tempfile::tempdir().unwrap();
    write_input(input.path(), 4, 250_000);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table kc (id bigint, name varchar(20), day date) distkey(id);
         insert into kc values (-1, 'before', '2024-01-01');",
    )
    .await
    .unwrap();
    let source = format!("{}/part_", input.path().display());
    let copy = {
        let c2 = cluster.connect().await;
        let sql = format!("copy kc from '{source}'");
        tokio::spawn(async move { c2.execute(&sql, &[]).await.map_err(|e| error_text(&e)) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    unsafe {
        libc::kill(cluster.worker_pids()[0] as i32, libc::SIGKILL);
    }
    // Killed while loading, the COPY fails naming the worker and commits nothing (it may
    // also have finished before the kill landed, and then loaded everything).
    let first = copy.await.unwrap();
    let expected_after_first = match &first {
        Err(e) => {
            assert!(e.starts_with("08006 worker "), "unexpected error: {e}");
            "1"
        }
        Ok(n) => {
            assert_eq!(*n, 1_000_000);
            "1000001"
        }
    };
    assert_eq!(
        rows(&c, "select count(*) from kc").await,
        vec![vec![expected_after_first]]
    );
    // Once the worker is back, the same COPY loads every row.
    let deadline = Instant::now() + Duration::from_secs(30);
    let sql = format!("copy kc from '{source}'");
    let loaded = loop {
        match c.execute(&sql, &[]).await {
            Ok(n) => break n,
            Err(e) if Instant::now() < deadline => {
                assert!(error_text(&e).starts_with("08006"), "{}", error_text(&e));
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("COPY never succeeded: {}", error_text(&e)),
        }
    };
    assert_eq!(loaded, 1_000_000);
    let sum_ids: i64 = (0..1_000_000i64).sum();
    let expected_rows = if first.is_ok() { 2_000_001 } else { 1_000_001 };
    let expected_sum = if first.is_ok() {
        2 * sum_ids - 1
    } else {
        sum_ids - 1
    };
    assert_eq!(
        rows(&c, "select count(*), sum(id) from kc").await,
        vec![vec![expected_rows.to_string(), expected_sum.to_string()]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_into_one_table_both_commit() {
    let cluster = LocalCluster::start(2, 2);
    let input = tempfile::tempdir().unwrap();
    write_input(input.path(), 2, 5_000);
    let a = cluster.connect().await;
    let b = cluster.connect().await;
    a.batch_execute("create table cc (id bigint, name varchar(20), day date) sortkey(id)")
        .await
        .unwrap();
    let sql = format!("copy cc from '{}/part_'", input.path().display());
    let (ra, rb) = tokio::join!(a.execute(&sql, &[]), b.execute(&sql, &[]));
    assert_eq!((ra.unwrap(), rb.unwrap()), (10_000, 10_000));
    assert_eq!(
        rows(&a, "select count(*), count(distinct id) from cc").await,
        vec![vec!["20000", "10000"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_large_file_is_split_across_workers_by_byte_range() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_in(tmp.path(), 2, 2, &["--copy-split-mb", "1"]);
    let input = tempfile::tempdir().unwrap();
    // ~4 MB of text in one file, with one bad row far from the start.
    let path = input.path().join("big.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..150_000u64 {
        if i == 120_000 {
            writeln!(out, "oops|bad row|2024-01-01").unwrap();
        } else {
            writeln!(out, "{i}|name {i}|2024-01-{:02}", i % 28 + 1).unwrap();
        }
    }
    drop(out);
    let c = cluster.connect().await;
    c.batch_execute("create table big (id bigint, name varchar(20), day date) distkey(id)")
        .await
        .unwrap();
    let n = c
        .execute(
            &format!("copy big from '{}' maxerror 1", path.display()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 149_999);
    let expected: u64 = (0..150_000u64).filter(|i| *i != 120_000).sum();
    assert_eq!(
        rows(&c, "select count(*), sum(id), count(distinct id) from big").await,
        vec![vec![
            "149999".to_string(),
            expected.to_string(),
            "149999".to_string()
        ]]
    );
    // One file, one commit row with every line; the bad row's line number is unknown
    // (-1) because it lay in a byte range that does not start the file.
    assert_eq!(
        rows(
            &c,
            "select lines_scanned from stl_load_commits where query = pg_last_copy_id()"
        )
        .await,
        vec![vec!["150000"]]
    );
    assert_eq!(
        rows(&c, "select line_number, raw_line from stl_load_errors").await,
        vec![vec!["-1", "oops|bad row|2024-01-01"]]
    );
}
