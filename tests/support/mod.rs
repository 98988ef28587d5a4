//! Test support: start a real `basalt local` cluster (leader + worker processes) in a
//! temporary directory on free loopback ports, and connect to it with tokio-postgres.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "basalt-test-pw";

fn children_of(parent: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &parent.to_string()])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A running `basalt local` process; stopped (with its workers) on drop.
pub struct LocalCluster {
    pub port: u16,
    pub data_dir: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl LocalCluster {
    /// Start a cluster of `workers` × `slices` in a fresh temporary directory.
    pub fn start(workers: u32, slices: u32) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut c = Self::start_in(&dir, workers, slices, &[]);
        c._tmp = Some(tmp);
        c
    }

    /// Start a cluster over an existing data directory (used to test restarts).
    pub fn start_in(dir: &Path, workers: u32, slices: u32, extra: &[&str]) -> Self {
        Self::start_with(dir, workers, slices, extra, &[])
    }

    /// Start a cluster with extra arguments and environment variables.
    pub fn start_with(
        dir: &Path,
        workers: u32,
        slices: u32,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
        cmd.envs(envs.iter().copied());
        // SAFETY: prctl is async-signal-safe. A test that dies for any reason takes its
        // cluster with it instead of leaving servers behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .args(["local", "--port", "0", "--cluster-port", "0"])
            .args(["--workers", &workers.to_string()])
            .args(["--slices-per-worker", &slices.to_string()])
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .env("BASALT_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start basalt local");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(90);
        let port = loop {
            let line = lines
                .next()
                .expect("basalt local exited before it was ready")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("Basalt is ready: leader on ") {
                let addr = rest.split_whitespace().next().expect("address");
                break addr
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .expect("port");
            }
            assert!(Instant::now() < deadline, "cluster did not start");
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            port,
            data_dir: dir.to_path_buf(),
            child: Some(child),
            _tmp: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// PID of the leader process (`basalt local` supervises it and restarts it).
    pub fn leader_pid(&self) -> u32 {
        children_of(self.pid())
            .into_iter()
            .next()
            .expect("the supervised leader process")
    }

    /// PIDs of this cluster's worker processes (the leader's children).
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.leader_pid())
    }

    /// Stop the cluster the way Ctrl-C does, and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGINT);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn conn_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=admin password={PASSWORD} dbname=dev",
            self.port
        )
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        self.connect_as("admin", PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("connect to basalt: {}", error_text(&e)))
    }

    /// A session as `user` (or the error logging in gave).
    pub async fn connect_as(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let conn_string = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=dev",
            self.port
        );
        let (client, conn) = tokio_postgres::connect(&conn_string, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A result cell as text: `NULL`, `(empty)`, or the value's display form.
pub fn cell(row: &tokio_postgres::Row, i: usize) -> String {
    use tokio_postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    macro_rules! get {
        ($t:ty) => {
            row.try_get::<_, Option<$t>>(i)
                .map(|v| v.map(|x| x.to_string()))
        };
    }
    let v = match ty {
        Type::BOOL => get!(bool),
        Type::INT2 => get!(i16),
        Type::INT4 => get!(i32),
        Type::INT8 => get!(i64),
        // Debug keeps floats short (`-1e300`, not 300 digits).
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map(|v| v.map(|x| format!("{x:?}"))),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map(|v| v.map(|x| format!("{x:?}"))),
        Type::NUMERIC => get!(rust_decimal::Decimal),
        Type::DATE => get!(chrono::NaiveDate),
        Type::TIME => get!(chrono::NaiveTime),
        Type::TIMESTAMP => get!(chrono::NaiveDateTime),
        Type::TIMESTAMPTZ => get!(chrono::DateTime<chrono::Utc>),
        // Arrays as PostgreSQL prints them: `{a,b}`, int2vector `1 2`.
        Type::INT2_VECTOR => row
            .try_get::<_, Option<Vec<i16>>>(i)
            .map(|v| v.map(|x| x.iter().map(i16::to_string).collect::<Vec<_>>().join(" "))),
        Type::INT2_ARRAY => array::<i16>(row, i),
        Type::INT4_ARRAY => array::<i32>(row, i),
        Type::INT8_ARRAY => array::<i64>(row, i),
        Type::BOOL_ARRAY => row.try_get::<_, Option<Vec<Option<bool>>>>(i).map(|v| {
            v.map(|x| {
                let items: Vec<String> = x
                    .iter()
                    .map(|b| b.map_or("NULL".into(), |b| if b { "t" } else { "f" }.into()))
                    .collect();
                format!("{{{}}}", items.join(","))
            })
        }),
        Type::TEXT_ARRAY => array::<String>(row, i),
        // bytea as PostgreSQL prints it.
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i).map(|v| {
            v.map(|b| {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!("\\x{hex}")
            })
        }),
        _ => get!(String),
    };
    match v {
        Ok(Some(s)) if s.is_empty() => "(empty)".into(),
        Ok(Some(s)) => s,
        Ok(None) => "NULL".into(),
        Err(e) => format!("<cannot decode {ty}: {e}>"),
    }
}

/// An array cell in PostgreSQL's text form (elements quoted when they need it).
fn array<T>(row: &tokio_postgres::Row, i: usize) -> Result<Option<String>, tokio_postgres::Error>
where
    T: for<'a> tokio_postgres::types::FromSql<'a> + ToString,
{
    row.try_get::<_, Option<Vec<Option<T>>>>(i).map(|v| {
        v.map(|items| {
            let items: Vec<String> = items
                .iter()
                .map(|x| match x {
                    None => "NULL".to_string(),
                    Some(x) => {
                        let t = x.to_string();
                        let plain = !t.is_empty()
                            && !t.eq_ignore_ascii_case("null")
                            && !t.chars().any(|c| {
                                matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace()
                            });
                        if plain {
                            t
                        } else {
                            format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
                        }
                    }
                })
                .collect();
            format!("{{{}}}", items.join(","))
        })
    })
}

/// `SQLSTATE message` of a database error (or the error's text).
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Every row of `sql` as text cells (panicking with the SQLSTATE and message on error).
pub async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", error_text(&e)))
        .iter()
        .map(|r| (0..r.len()).map(|i| cell(r, i)).collect())
        .collect()
}

/// A local S3-compatible server (moto's, from PyPI), stopped on drop. With `auth`, every
/// request must be signed with a key moto knows, so any key a test makes up is rejected.
pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub fn start(auth: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        // SAFETY: as for the cluster, the server dies with the test.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .expect("start moto's S3 server (pip install 'moto[server]')");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { port, child }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned HTTP request: (status, body).
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .expect("send");
        s.write_all(body).expect("send body");
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).expect("read reply");
        let split = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP reply");
        let head = String::from_utf8_lossy(&reply[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status");
        let mut body = reply[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, body)
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, _) = self.request("PUT", &format!("/{bucket}"), b"");
        assert_eq!(status, 200, "create bucket {bucket}");
    }

    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let (status, _) = self.request("PUT", &format!("/{bucket}/{key}"), body);
        assert_eq!(status, 200, "put {bucket}/{key}");
    }

    /// The keys under `prefix` in `bucket`, sorted.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = self.request(
            "GET",
            &format!("/{bucket}?list-type=2&prefix={prefix}"),
            b"",
        );
        assert_eq!(status, 200, "list {bucket}/{prefix}");
        let xml = String::from_utf8(body).expect("XML listing");
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap_or_default().to_string())
            .collect();
        keys.sort();
        keys
    }
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.request("GET", &format!("/{bucket}/{key}"), b"");
        (status == 200).then_some(body)
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate and its key for `--tls-cert`/`--tls-key`.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `psql -c sql` against `cluster` (unaligned, tuples only, stopping at the first
/// error): whether it succeeded, its stdout and its stderr.
pub fn psql(cluster: &LocalCluster, sql: &str) -> (bool, String, String) {
    psql_as(cluster, "admin", PASSWORD, sql)
}

/// [`psql`] as `user`.
pub fn psql_as(
    cluster: &LocalCluster,
    user: &str,
    password: &str,
    sql: &str,
) -> (bool, String, String) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            user,
            "-d",
            "dev",
        ])
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .expect("psql must be installed (Debian: postgresql-client)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Connecting to `cluster` as admin with a wrong password fails with 28P01.
pub async fn assert_wrong_password_refused(cluster: &LocalCluster) {
    let bad = format!(
        "host=127.0.0.1 port={} user=admin password=wrong dbname=dev",
        cluster.port
    );
    let err = tokio_postgres::connect(&bad, tokio_postgres::NoTls)
        .await
        .err()
        .expect("wrong password accepted");
    assert!(
        error_text(&err).starts_with("28P01"),
        "{}",
        error_text(&err)
    );
}
