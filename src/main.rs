//! The `basalt` command: `basalt local` runs a whole cluster on this machine (a leader
//! and N worker processes it supervises), `basalt leader` and `basalt worker` run the
//! nodes separately.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use basalt_leader::LeaderConfig;
use basalt_worker::node::{WorkerConfig, run_worker};
use clap::{Parser, Subcommand};
use tokio::process::{Child, Command};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    name = "basalt",
    version,
    about = "Basalt: a Redshift-compatible columnar MPP data warehouse"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a leader and N worker processes on this machine (loopback only).
    Local {
        #[arg(long, default_value_t = 2)]
        workers: u32,
        #[arg(long, default_value_t = 2)]
        slices_per_worker: u32,
        #[arg(long, default_value = "./basalt-data")]
        data_dir: PathBuf,
        /// PostgreSQL port.
        #[arg(long, default_value_t = 5439)]
        port: u16,
        /// Cluster port workers register on (default: PostgreSQL port + 1; 0 picks one).
        #[arg(long)]
        cluster_port: Option<u16>,
        #[arg(long, env = "BASALT_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// md5 (default: what Redshift asks of its drivers; Amazon's redshift_connector, and
        /// so dbt-redshift, cannot log in with SCRAM) or scram-sha-256.
        #[arg(long, default_value = "md5")]
        auth_method: String,
        /// PEM certificate for TLS (with --tls-key): SSLRequest is then accepted.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<String>,
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<String>,
        /// COPY splits uncompressed text files larger than this many MiB across workers.
        #[arg(long, default_value_t = 64)]
        copy_split_mb: u64,
        /// Memory each query may hold on the leader before it spills to disk, in MiB.
        #[arg(long, default_value_t = 2048)]
        query_memory_mb: usize,
        /// Endpoint of an S3-compatible store for s3:// COPY sources and UNLOAD targets
        /// (default: AWS, or AWS_ENDPOINT_URL).
        #[arg(long)]
        s3_endpoint: Option<String>,
        #[arg(long)]
        s3_region: Option<String>,
        /// Internal: this process is the cluster `basalt local` supervises (and restarts
        /// if it dies), not the supervisor.
        #[arg(long, hide = true)]
        supervised: bool,
    },
    /// Run the leader node.
    Leader {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        listen: Option<String>,
        #[arg(long)]
        cluster_listen: Option<String>,
        #[arg(long)]
        data_dir: Option<String>,
        #[arg(long, env = "BASALT_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// Run a worker node.
    Worker {
        /// The leader's cluster endpoint, host:port.
        #[arg(long)]
        leader: String,
        /// Where this worker's Flight endpoint listens.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Address other nodes use to reach this worker (default: the bound address).
        #[arg(long)]
        advertise: Option<String>,
        #[arg(long)]
        node_id: Option<u32>,
    },
}

/// Stack of every runtime thread, where statements are planned and run on the leader and
/// fragments are decoded and run on the workers. Statements reach planning at most
/// `basalt_leader::sql::limits::MAX_NESTING` levels deep, and DataFusion's recursions over such
/// a tree take up to tens of MB of stack in an unoptimized build; a stack overflow aborts
/// the process, so the stacks are sized well past that. Only the pages a thread touches
/// are ever resident.
const THREAD_STACK_BYTES: usize = 256 * 1024 * 1024;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Cmd::Local {
        supervised: false,
        port,
        cluster_port,
        ..
    } = &cli.command
    {
        return supervise(*port, *cluster_port);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Local {
                workers,
                slices_per_worker,
                data_dir,
                port,
                cluster_port,
                admin_password,
                auth_method,
                tls_cert,
                tls_key,
                copy_split_mb,
                query_memory_mb,
                s3_endpoint,
                s3_region,
                supervised: _,
            } => {
                let config = LeaderConfig {
                    data_dir: data_dir.display().to_string(),
                    listen: format!("127.0.0.1:{port}"),
                    cluster_listen: format!(
                        "127.0.0.1:{}",
                        cluster_port.unwrap_or(if port == 0 { 0 } else { port + 1 })
                    ),
                    workers,
                    slices_per_worker,
                    admin_password,
                    auth_method,
                    tls_cert,
                    tls_key,
                    copy_split_mb,
                    query_memory_mb,
                    s3: basalt_leader::config::S3Config {
                        endpoint: s3_endpoint,
                        region: s3_region,
                        ..Default::default()
                    },
                    ..LeaderConfig::default()
                };
                run_local(config).await
            }
            Cmd::Leader {
                config,
                listen,
                cluster_listen,
                data_dir,
                admin_password,
            } => {
                let mut cfg = match config {
                    Some(path) => LeaderConfig::from_toml(
                        &std::fs::read_to_string(&path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    )?,
                    None => LeaderConfig::default(),
                };
                if let Some(v) = listen {
                    cfg.listen = v;
                }
                if let Some(v) = cluster_listen {
                    cfg.cluster_listen = v;
                }
                if let Some(v) = data_dir {
                    cfg.data_dir = v;
                }
                if admin_password.is_some() {
                    cfg.admin_password = admin_password;
                }
                tokio::select! {
                    r = basalt_leader::run_leader(cfg) => Ok(r?),
                    _ = shutdown_signal() => Ok(()),
                }
            }
            Cmd::Worker {
                leader,
                listen,
                advertise,
                node_id,
            } => {
                let cfg = WorkerConfig {
                    leader,
                    listen,
                    advertise,
                    node_id,
                };
                tokio::select! {
                    r = run_worker(cfg) => Ok(r?),
                    _ = shutdown_signal() => Ok(()),
                }
            }
        }
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn spawn_worker(exe: &std::path::Path, cluster_addr: &str, node: u32) -> Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.args([
        "worker",
        "--leader",
        cluster_addr,
        "--listen",
        "127.0.0.1:0",
    ])
    .args(["--node-id", &node.to_string()])
    .stdin(Stdio::null())
    .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; it makes the worker die with this process, so a
    // killed `basalt local` never leaves orphan workers behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().context("starting a worker process")
}

async fn run_local(config: LeaderConfig) -> Result<()> {
    let default_password = config.admin_password.is_none();
    let nodes = config.workers;
    if nodes == 0 || config.slices_per_worker == 0 {
        bail!("--workers and --slices-per-worker must be at least 1");
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let leader = basalt_leader::start_leader(config).await?;
    let cluster_addr = leader.cluster_addr.to_string();
    // Resolved once: after an upgrade in place, /proc/self/exe names a deleted file, while
    // the path still leads to the (new) binary.
    let exe = std::env::current_exe().context("locating the basalt executable")?;
    let exe = PathBuf::from(exe.to_string_lossy().trim_end_matches(" (deleted)"));
    let mut children: Vec<Child> = (0..nodes)
        .map(|n| spawn_worker(&exe, &cluster_addr, n))
        .collect::<Result<_>>()?;
    // Wait until every worker has registered before announcing readiness.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while leader.cluster.live_workers() < nodes as usize {
        if tokio::time::Instant::now() > deadline {
            bail!("workers did not register within 60s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port = leader.pg_addr.port();
    // The supervisor reads this line to start a restarted leader on the same ports.
    println!("Cluster endpoint on {cluster_addr}.");
    println!(
        "Basalt is ready: leader on {} with {nodes} worker processes.",
        leader.pg_addr
    );
    println!("Connect with: psql -h 127.0.0.1 -p {port} -U admin dev");
    if default_password {
        println!(
            "(password: the built-in loopback default 'basalt'; set BASALT_ADMIN_PASSWORD to change it)"
        );
    }
    let serving = leader.serving;
    tokio::pin!(serving);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    // When each worker was seen dead: it is started again a second later, not at once, so
    // a worker that dies on start does not spin, and the leader has noticed the exit (and
    // failed the queries that needed it) before a new process takes the address.
    let mut dead_since: Vec<Option<tokio::time::Instant>> = vec![None; children.len()];
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                info!("shutting down");
                break;
            }
            r = &mut serving => {
                error!("leader stopped: {r:?}");
                break;
            }
            _ = tick.tick() => {
                for (n, child) in children.iter_mut().enumerate() {
                    if dead_since[n].is_none()
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        warn!(node = n, %status, "worker exited; restarting it in 1 s");
                        dead_since[n] = Some(tokio::time::Instant::now());
                    }
                    if dead_since[n].is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
                        match spawn_worker(&exe, &cluster_addr, n as u32) {
                            Ok(c) => {
                                *child = c;
                                dead_since[n] = None;
                            }
                            Err(e) => error!("restarting worker {n}: {e}"),
                        }
                    }
                }
            }
        }
    }
    for child in &mut children {
        if let Some(pid) = child.id() {
            // SAFETY: plain signal delivery to our own child.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }
    for child in &mut children {
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
    Ok(())
}

/// `basalt local` itself: runs the cluster (leader and workers) as a child process and
/// starts it again, on the same ports and data directory, if it dies — a leader that
/// aborts (a stack overflow cannot be caught) takes every session with it, but not the
/// warehouse: committed data is in the catalog and the storage root, and the new leader
/// recovers from them. Ctrl-C and SIGTERM are passed on and end both.
fn supervise(port: u16, cluster_port: Option<u16>) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::process::CommandExt;

    let exe = std::env::current_exe().context("locating the basalt executable")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, record_signal as *const () as libc::sighandler_t);
        }
    }
    // Ports the restarted cluster must take again (learned from the first start when 0).
    let mut ports: Option<(u16, u16)> = None;
    loop {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(without_port_args(&args)).arg("--supervised");
        let (pg, cl) = match ports {
            Some(p) => p,
            None => (
                port,
                cluster_port.unwrap_or(if port == 0 { 0 } else { port + 1 }),
            ),
        };
        cmd.args(["--port", &pg.to_string(), "--cluster-port", &cl.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the cluster dies with its supervisor.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("starting the cluster process")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut cluster = None;
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let Some(rest) = line.strip_prefix("Cluster endpoint on ") {
                    cluster = port_of(rest);
                    continue;
                }
                if let Some(rest) = line.strip_prefix("Basalt is ready: leader on ")
                    && let (Some(pg), Some(cl)) = (port_of(rest), cluster)
                {
                    let _ = ready_tx.send((pg, cl));
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        });
        let status = loop {
            if let Ok(p) = ready_rx.try_recv() {
                ports = Some(p);
            }
            let signal = STOP_SIGNAL.load(std::sync::atomic::Ordering::Relaxed);
            if signal != 0 {
                // SAFETY: plain signal delivery to our own child.
                unsafe {
                    libc::kill(child.id() as i32, signal);
                }
                let _ = child.wait();
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Ok(p) = ready_rx.try_recv() {
            ports = Some(p);
        }
        if status.success() {
            return Ok(());
        }
        if ports.is_none() {
            bail!("the cluster failed to start ({status})");
        }
        error!("the leader exited ({status}); starting it again in 1 s");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The port of `host:port` at the start of `text`.
fn port_of(text: &str) -> Option<u16> {
    text.split_whitespace()
        .next()?
        .trim_end_matches('.')
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

/// `args` without `--port` and `--cluster-port` (the supervisor passes its own).
fn without_port_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--port" || a == "--cluster-port" {
            skip = true;
        } else if !(a.starts_with("--port=") || a.starts_with("--cluster-port=")) {
            out.push(a.clone());
        }
    }
    out
}

/// The stop signal (SIGINT or SIGTERM) the supervisor received, 0 until one arrives.
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn record_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, std::sync::atomic::Ordering::Relaxed);
}
