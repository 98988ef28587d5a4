//! The storage engine under concurrency and failure, on real `basalt local` clusters:
//! concurrent DELETEs of the same rows conflict instead of losing a change, VACUUM keeps
//! concurrent appends and never deletes files a reader's snapshot still needs, a worker
//! killed mid-VACUUM leaves the table intact, a corrupt deletion vector is a clear error
//! rather than wrong rows, and appends routed by a distribution an ALTER replaced do not
//! commit.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{LocalCluster, error_text, rows};

async fn table_id(c: &tokio_postgres::Client, name: &str) -> String {
    rows(
        c,
        &format!("select table_id from svv_table_info where \"table\" = '{name}'"),
    )
    .await[0][0]
        .clone()
}

/// Files under a table's storage directory with the given extension.
fn files(data_dir: &Path, table_id: &str, ext: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    let root = data_dir.join("storage").join("tables").join(table_id);
    for slice in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(slice.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == ext) {
                out.push(f.path());
            }
        }
    }
    out
}

/// Wait (at most 10 s) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deletes_of_one_segment_conflict_instead_of_losing_a_change() {
    let cluster = LocalCluster::start(2, 2);
    let a = cluster.connect().await;
    let b = cluster.connect().await;
    a.batch_execute(
        "create table cd (k int, x int) diststyle even;
         insert into cd select value % 10, value from generate_series(1, 1000);",
    )
    .await
    .unwrap();
    a.batch_execute("begin").await.unwrap();
    b.batch_execute("begin").await.unwrap();
    // Round-robin placement puts both row sets on every slice: the deletes touch the
    // same segments.
    assert_eq!(
        a.execute("delete from cd where x <= 300", &[])
            .await
            .unwrap(),
        300
    );
    assert_eq!(
        b.execute("delete from cd where x > 700", &[])
            .await
            .unwrap(),
        300
    );
    a.batch_execute("commit").await.unwrap();
    let err = b
        .batch_execute("commit")
        .await
        .map_err(|e| error_text(&e))
        .expect_err("the second commit must conflict");
    assert!(
        err.starts_with("40001 1023 Serializable isolation violation"),
        "{err}"
    );
    // The first delete stands, the second changed nothing, and it succeeds on retry.
    assert_eq!(
        rows(&b, "select count(*), min(x), max(x) from cd").await,
        vec![vec!["700", "301", "1000"]]
    );
    assert_eq!(
        b.execute("delete from cd where x > 700", &[])
            .await
            .unwrap(),
        300
    );
    assert_eq!(
        rows(&a, "select count(*), sum(x) from cd").await,
        vec![vec!["400", "200200"]]
    );
    // Deletes of rows in different segments do not conflict.
    a.batch_execute("create table cd2 (k int distkey, x int); insert into cd2 select value % 2, value from generate_series(1, 100);")
        .await
        .unwrap();
    a.batch_execute("begin").await.unwrap();
    b.batch_execute("begin").await.unwrap();
    let k0 = a.execute("delete from cd2 where k = 0", &[]).await.unwrap();
    let k1 = b.execute("delete from cd2 where k = 1", &[]).await.unwrap();
    assert_eq!((k0, k1), (50, 50));
    a.batch_execute("commit").await.unwrap();
    let both = b.batch_execute("commit").await;
    // k = 0 and k = 1 hash to different slices unless the two keys collide.
    let same_slice = rows(
        &a,
        "select count(distinct slice) from stv_tbl_perm where name = 'cd2' and rows > 0",
    )
    .await[0][0]
        == "1";
    assert_eq!(both.is_ok(), !same_slice);
}

/// Rows a transaction routed by a distribution that an ALTER DISTKEY replaced before the
/// transaction committed would sit on the wrong slices: the commit fails instead. Column
/// changes meanwhile (a rename of the DISTKEY itself) do not get in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_routed_by_a_replaced_distribution_do_not_commit() {
    let cluster = LocalCluster::start(2, 2);
    let a = cluster.connect().await;
    let b = cluster.connect().await;
    a.batch_execute(
        "create table rd (k int, v int) diststyle even;
         insert into rd select value, value from generate_series(1, 100);",
    )
    .await
    .unwrap();
    a.batch_execute("begin; insert into rd values (1000, 1)")
        .await
        .unwrap();
    b.batch_execute("alter table rd alter distkey k")
        .await
        .unwrap();
    let err = a.batch_execute("commit").await.unwrap_err();
    assert!(
        error_text(&err).starts_with("40001 "),
        "{}",
        error_text(&err)
    );
    a.batch_execute("begin; insert into rd values (2000, 2)")
        .await
        .unwrap();
    b.batch_execute("alter table rd rename column k to key")
        .await
        .unwrap();
    a.batch_execute("commit").await.unwrap();
    assert_eq!(
        rows(
            &a,
            "select count(*), sum(x.v) from rd x join rd y on x.key = y.key"
        )
        .await,
        vec![vec!["101".to_string(), "5052".to_string()]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_appends_and_the_files_of_open_snapshots() {
    let cluster = LocalCluster::start(2, 2);
    let reader = cluster.connect().await;
    let writer = cluster.connect().await;
    writer
        .batch_execute(
            "create table vg (k int, x bigint) diststyle even sortkey(x);
             insert into vg select value % 10, value from generate_series(1, 20000);
             insert into vg select value % 10, value from generate_series(20001, 30000);",
        )
        .await
        .unwrap();
    let id = table_id(&writer, "vg").await;
    let before = files(&cluster.data_dir, &id, "bseg");
    assert_eq!(before.len(), 8, "two loads × four slices: {before:?}");

    // The reader's transaction pins the current version.
    reader.batch_execute("begin").await.unwrap();
    assert_eq!(
        rows(&reader, "select count(*), sum(x) from vg").await,
        vec![vec!["30000", "450015000"]]
    );
    assert_eq!(
        writer
            .execute("delete from vg where k = 0", &[])
            .await
            .unwrap(),
        3000
    );
    writer.batch_execute("vacuum vg").await.unwrap();
    writer
        .batch_execute("insert into vg values (0, 0)")
        .await
        .unwrap();
    // One appended row is 0.0037% of the table: the unsorted region rounds to 0.00.
    assert_eq!(
        rows(
            &writer,
            "select count(*), sum(x), min(unsorted) from vg, svv_table_info where \"table\" = 'vg'"
        )
        .await,
        vec![vec!["27001", "405000000", "0.00"]]
    );
    // The old segments are still on disk: the reader's snapshot names them.
    for f in &before {
        assert!(
            f.exists(),
            "{} was deleted under an open snapshot",
            f.display()
        );
    }
    assert_eq!(
        rows(&reader, "select count(*), sum(x) from vg").await,
        vec![vec!["30000", "450015000"]]
    );
    reader.batch_execute("commit").await.unwrap();
    // Once the reader is done, the replaced segments and deletion vectors go.
    eventually("old segments to be deleted", || {
        before.iter().all(|f| !f.exists())
    })
    .await;
    eventually("deletion vectors to be deleted", || {
        files(&cluster.data_dir, &id, "bdel").is_empty()
    })
    .await;
    assert_eq!(
        rows(&reader, "select count(*), sum(x) from vg").await,
        vec![vec!["27001", "405000000"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_vacuum_leaves_the_table_intact() {
    let cluster = LocalCluster::start(2, 2);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table kv (k int, x bigint, s varchar(20)) diststyle even sortkey(x);
         insert into kv select value % 7, 1000000 - value, 'row' || value from generate_series(1, 400000);
         insert into kv select value % 7, value, 'late' || value from generate_series(1, 400000);
         delete from kv where k = 3;",
    )
    .await
    .unwrap();
    let expected = rows(&c, "select count(*), sum(x), max(s) from kv").await;
    let vacuum = {
        let c2 = cluster.connect().await;
        tokio::spawn(async move {
            c2.batch_execute("vacuum kv")
                .await
                .map_err(|e| error_text(&e))
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    unsafe {
        libc::kill(cluster.worker_pids()[1] as i32, libc::SIGKILL);
    }
    // Killed while rewriting, the VACUUM fails and commits nothing (it may also have
    // finished before the kill landed).
    if let Err(e) = vacuum.await.unwrap() {
        assert!(e.starts_with("08006 worker "), "unexpected error: {e}");
    }
    // Either way the table holds exactly the same rows, and VACUUM works once the worker
    // is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.batch_execute("vacuum kv to 100 percent").await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(error_text(&e).starts_with("08006"), "{}", error_text(&e));
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("VACUUM never succeeded: {}", error_text(&e)),
        }
    }
    assert_eq!(
        rows(&c, "select count(*), sum(x), max(s) from kv").await,
        expected
    );
    assert_eq!(
        rows(
            &c,
            "select tbl_rows = estimated_visible_rows, unsorted from svv_table_info where \"table\" = 'kv'"
        )
        .await,
        vec![vec!["true", "0.00"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_deletion_vector_is_a_clear_error() {
    let cluster = LocalCluster::start(1, 2);
    let c = cluster.connect().await;
    c.batch_execute(
        "create table cv (x int) diststyle even;
         insert into cv select value from generate_series(1, 100);
         delete from cv where x <= 10;",
    )
    .await
    .unwrap();
    let id = table_id(&c, "cv").await;
    let dv = files(&cluster.data_dir, &id, "bdel");
    assert!(!dv.is_empty());
    let mut bytes = std::fs::read(&dv[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&dv[0], bytes).unwrap();
    let err = c
        .query("select count(*) from cv", &[])
        .await
        .map_err(|e| error_text(&e))
        .expect_err("a corrupt deletion vector must not be read");
    assert!(
        err.contains("deletion-vector checksum mismatch") && err.contains(".bdel"),
        "{err}"
    );
    // The server keeps serving other tables.
    assert_eq!(rows(&c, "select 1").await, vec![vec!["1"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_rolled_back_and_crashed_writes_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let id;
    {
        let mut cluster = LocalCluster::start_in(tmp.path(), 1, 2, &[]);
        let c = cluster.connect().await;
        c.batch_execute(
            "create table gw (x int) diststyle even;
             insert into gw values (1), (2);",
        )
        .await
        .unwrap();
        id = table_id(&c, "gw").await;
        assert_eq!(files(tmp.path(), &id, "bseg").len(), 2);
        c.batch_execute("begin; insert into gw select value from generate_series(1, 100); delete from gw where x = 1;")
            .await
            .unwrap();
        assert_eq!(files(tmp.path(), &id, "bseg").len(), 4);
        // x = 1 is in a committed segment and in one the transaction wrote.
        assert_eq!(files(tmp.path(), &id, "bdel").len(), 2);
        c.batch_execute("rollback").await.unwrap();
        eventually("rolled-back files to be deleted", || {
            files(tmp.path(), &id, "bseg").len() == 2 && files(tmp.path(), &id, "bdel").is_empty()
        })
        .await;
        cluster.stop();
    }
    // What a crash leaves: a segment no catalog version names, and a dropped table's files.
    let orphan = tmp
        .path()
        .join("storage/tables")
        .join(&id)
        .join("slice-0/0123456789abcdef0123456789abcdef.bseg");
    std::fs::write(&orphan, b"never committed").unwrap();
    let gone_table = tmp.path().join("storage/tables/424242/slice-1");
    std::fs::create_dir_all(&gone_table).unwrap();
    std::fs::write(gone_table.join("x.bseg"), b"dropped").unwrap();
    let cluster = LocalCluster::start_in(tmp.path(), 1, 2, &[]);
    eventually("orphans to be swept at startup", || {
        !orphan.exists() && !gone_table.join("x.bseg").exists()
    })
    .await;
    let c = cluster.connect().await;
    assert_eq!(
        rows(&c, "select count(*), sum(x) from gw").await,
        vec![vec!["2", "3"]]
    );
}
