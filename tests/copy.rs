//! COPY on real `basalt local` clusters beyond what the SQL tests cover: a worker killed
//! in the middle of a COPY fails it cleanly, leaves the table unchanged, and a rerun
//! loads everything; two COPYs into one table at once both commit; COPY from an
//! S3-compatible server (key prefixes, MANIFEST, credentials, byte ranges over HTTP).

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{LocalCluster, S3Server, error_text, rows};

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
    // One large gzip file: one worker decompresses it, then converts it in pieces in
    // parallel; line numbers stay exact.
    let gz = input.path().join("big.txt.gz");
    let status = std::process::Command::new("gzip")
        .args(["-k", "-c"])
        .arg(&path)
        .stdout(std::fs::File::create(&gz).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    c.batch_execute("truncate big").await.unwrap();
    let n = c
        .execute(
            &format!("copy big from '{}' gzip maxerror 1", gz.display()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 149_999);
    assert_eq!(
        rows(&c, "select count(*), sum(id) from big").await,
        vec![vec!["149999".to_string(), expected.to_string()]]
    );
    assert_eq!(
        rows(
            &c,
            "select line_number, raw_line from stl_load_errors where query = pg_last_copy_id()"
        )
        .await,
        vec![vec!["120001", "oops|bad row|2024-01-01"]]
    );
    // A CSV file is cut only after a newline outside quotes: fields here hold quoted
    // newlines, delimiters and doubled quotes, spread over every range.
    let csv = input.path().join("big.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "id,name,day").unwrap();
    for i in 0..100_000u64 {
        if i % 3 == 0 {
            writeln!(out, "{i},\"line one\nline \"\"two\"\", {i}\",2024-01-01").unwrap();
        } else {
            writeln!(out, "{i},plain {i},2024-01-02").unwrap();
        }
    }
    drop(out);
    c.batch_execute("create table bigcsv (id bigint, name varchar(40), day date)")
        .await
        .unwrap();
    let n = c
        .execute(
            &format!("copy bigcsv from '{}' csv ignoreheader 1", csv.display()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 100_000);
    let expected: u64 = (0..100_000u64).sum();
    assert_eq!(
        rows(
            &c,
            "select count(*), sum(id), sum(case when name = 'line one' || chr(10) || 'line \"two\", ' || id then 1 else 0 end) from bigcsv"
        )
        .await,
        vec![vec![
            "100000".to_string(),
            expected.to_string(),
            "33334".to_string()
        ]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_an_s3_compatible_server() {
    let s3 = S3Server::start(false);
    s3.create_bucket("basalt-in");
    s3.put(
        "basalt-in",
        "sales/part-0",
        b"1|a|2024-01-01\n2|b|2024-01-02\n",
    );
    s3.put("basalt-in", "sales/part-1", b"3|c|2024-01-03\n");
    s3.put("basalt-in", "sales-other/x", b"99|zz|2024-02-01\n");
    // ~2.4 MB in one object: cut into byte ranges, read with ranged GETs.
    let big: String = (0..100_000)
        .map(|i| format!("{i}|name {i}|2024-01-{:02}\n", i % 28 + 1))
        .collect();
    s3.put("basalt-in", "big/lines", big.as_bytes());
    s3.put(
        "basalt-in",
        "manifests/ok.json",
        br#"{"entries": [
            {"url": "s3://basalt-in/sales/part-0", "mandatory": true},
            {"url": "s3://basalt-in/sales/part-1", "meta": {"content_length": 15}},
            {"url": "s3://basalt-in/sales/part-1"},
            {"url": "s3://basalt-in/sales/missing", "mandatory": false}]}"#,
    );
    s3.put(
        "basalt-in",
        "manifests/mandatory.json",
        br#"{"entries": [{"url": "s3://basalt-in/sales/missing", "mandatory": true}]}"#,
    );
    s3.put("basalt-in", "manifests/bad.json", b"{\"entries\": [");
    s3.put(
        "basalt-in",
        "manifests/relative.json",
        br#"{"entries": [{"url": "sales/part-0"}]}"#,
    );

    let tmp = tempfile::tempdir().unwrap();
    let endpoint = s3.endpoint();
    // The server's keys serve IAM_ROLE (moto without auth takes any key).
    let cluster = LocalCluster::start_with(
        tmp.path(),
        2,
        2,
        &["--s3-endpoint", &endpoint, "--copy-split-mb", "1"],
        &[
            ("AWS_ACCESS_KEY_ID", "server-key"),
            ("AWS_SECRET_ACCESS_KEY", "server-secret"),
        ],
    );
    let c = cluster.connect().await;
    c.batch_execute("create table s3t (id int, name varchar(20), day date) distkey(id)")
        .await
        .unwrap();
    let keys = "ACCESS_KEY_ID 'k' SECRET_ACCESS_KEY 's'";
    // A folder prefix.
    let n = c
        .execute(
            &format!("copy s3t from 's3://basalt-in/sales/' {keys}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    // A key prefix matches across folder names, as in Redshift.
    let n = c
        .execute(
            "copy s3t from 's3://basalt-in/sales' iam_role 'arn:aws:iam::0:role/load' region 'us-east-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        rows(&c, "select filename, lines_scanned from stl_load_commits where query = pg_last_copy_id() order by 1").await,
        vec![
            vec!["s3://basalt-in/sales-other/x", "1"],
            vec!["s3://basalt-in/sales/part-0", "2"],
            vec!["s3://basalt-in/sales/part-1", "1"],
        ]
    );
    // MANIFEST: a file listed twice loads twice; a missing optional file is skipped.
    let n = c
        .execute(
            "copy s3t from 's3://basalt-in/manifests/ok.json' credentials 'aws_access_key_id=k;aws_secret_access_key=s' manifest",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        rows(&c, "select count(*), sum(id) from s3t").await,
        vec![vec!["11", "120"]]
    );
    // Byte ranges of one large object.
    c.batch_execute("create table s3big (id int, name varchar(20), day date) distkey(id)")
        .await
        .unwrap();
    let n = c
        .execute(
            &format!("copy s3big from 's3://basalt-in/big/' {keys}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 100_000);
    assert_eq!(
        rows(
            &c,
            "select count(*), count(distinct id), sum(id) from s3big"
        )
        .await,
        vec![vec!["100000", "100000", "4999950000"]]
    );

    // Bad sources and options: clear errors, nothing loaded, the server keeps serving.
    for (sql, expected) in [
        (
            format!("copy s3t from 's3://basalt-in/manifests/mandatory.json' {keys} manifest"),
            "XX000 Manifest file 's3://basalt-in/manifests/mandatory.json' names mandatory file 's3://basalt-in/sales/missing', which could not be read",
        ),
        (
            format!("copy s3t from 's3://basalt-in/manifests/bad.json' {keys} manifest"),
            "XX000 Invalid manifest file 's3://basalt-in/manifests/bad.json': not valid JSON",
        ),
        (
            format!("copy s3t from 's3://basalt-in/manifests/relative.json' {keys} manifest"),
            "XX000 Invalid manifest file 's3://basalt-in/manifests/relative.json': entry 'sales/part-0' is not a full s3://bucket/key path",
        ),
        (
            format!("copy s3t from 's3://basalt-in/nothing/' {keys}"),
            "XX000 The specified prefix 's3://basalt-in/nothing/' does not exist",
        ),
        (
            format!("copy s3t from 's3://no-such-bucket/x' {keys}"),
            "XX000 COPY source s3://no-such-bucket/x: the bucket does not exist (NoSuchBucket)",
        ),
        (
            format!("copy s3t from 's3://basalt-in/sales/' {keys} iam_role default"),
            "22023 conflicting or redundant options",
        ),
        (
            "copy s3t from 's3://basalt-in/sales/' ACCESS_KEY_ID 'k'".to_string(),
            "22023 ACCESS_KEY_ID and SECRET_ACCESS_KEY must be given together",
        ),
        (
            "copy s3t from 's3://basalt-in/sales/' credentials 'nonsense'".to_string(),
            "22023 Invalid credentials. Must be of the format",
        ),
    ] {
        let e = c.execute(&sql, &[]).await.unwrap_err();
        assert!(
            error_text(&e).starts_with(expected),
            "{sql}: got {}",
            error_text(&e)
        );
    }
    assert_eq!(rows(&c, "select count(*) from s3t").await, vec![vec!["11"]]);

    // A server that checks signatures rejects made-up keys.
    let strict = S3Server::start(true);
    let sql =
        "copy s3t from 's3://basalt-in/sales/' access_key_id 'wrong' secret_access_key 'wrong'";
    let tmp2 = tempfile::tempdir().unwrap();
    let strict_cluster =
        LocalCluster::start_in(tmp2.path(), 1, 1, &["--s3-endpoint", &strict.endpoint()]);
    let c2 = strict_cluster.connect().await;
    c2.batch_execute("create table s3t (id int, name varchar(20), day date)")
        .await
        .unwrap();
    let e = c2.execute(sql, &[]).await.unwrap_err();
    assert!(
        error_text(&e).contains("S3 rejected the credentials"),
        "{}",
        error_text(&e)
    );
    assert_eq!(rows(&c2, "select count(*) from s3t").await, vec![vec!["0"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_copy_shows_its_progress_in_stv_load_state() {
    let cluster = LocalCluster::start(2, 2);
    let input = tempfile::tempdir().unwrap();
    write_input(input.path(), 4, 250_000);
    let total: u64 = (0..4)
        .map(|f| {
            std::fs::metadata(input.path().join(format!("part_{f}.txt")))
                .unwrap()
                .len()
        })
        .sum();
    let c = cluster.connect().await;
    c.batch_execute("create table ls (id bigint, name varchar(20), day date)")
        .await
        .unwrap();
    let copy = {
        let c2 = cluster.connect().await;
        let sql = format!("copy ls from '{}/part_'", input.path().display());
        tokio::spawn(async move { c2.execute(&sql, &[]).await.map_err(|e| error_text(&e)) })
    };
    // While it runs, every worker with a share has a row; their shares add up to the
    // input's size.
    let mut seen = None;
    while !copy.is_finished() {
        let r = rows(
            &c,
            "select count(*), sum(bytes_to_load), sum(num_files), max(pct_complete) <= 100 from stv_load_state",
        )
        .await;
        if r[0][0] == "2" {
            seen = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(copy.await.unwrap(), Ok(1_000_000));
    assert_eq!(
        seen.expect("the COPY finished before stv_load_state showed it"),
        vec![vec![
            "2".to_string(),
            total.to_string(),
            "4".into(),
            "true".into()
        ]]
    );
    // Finished COPYs are gone from it.
    assert_eq!(
        rows(&c, "select count(*) from stv_load_state").await,
        vec![vec!["0"]]
    );
}
