#!/usr/bin/env python3
"""COPY load throughput: Basalt vs DuckDB vs PostgreSQL on the same TPC-H CSV files.

Generates TPC-H CSV at a scale factor with `tpchgen-cli` (all 8 tables, one file each,
plus lineitem again as 4 files), then loads every table into each system in the same run
and on the same machine:

- Basalt: a fresh `basalt local` cluster that this script starts (release binary, N worker
  processes), tables with TPC-H types and DISTKEY/SORTKEY/DISTSTYLE ALL, loaded with
  `COPY t FROM '/abs/file.csv' CSV IGNOREHEADER 1`, timed over the wire with psycopg 3;
- DuckDB: a fresh database file, the same tables, `COPY t FROM 'file' (FORMAT csv, HEADER
  true)` timed in process;
- PostgreSQL: a fresh cluster (initdb in a temporary directory, default settings), the
  same tables, server-side `COPY t FROM '/abs/file' WITH (FORMAT csv, HEADER true)`.

lineitem is then loaded once more into a second table from the 4 files (Basalt: one COPY
from the files' common key prefix; DuckDB: one COPY of a glob; PostgreSQL: 4 COPYs on 4
connections at once), which shows what each system gains from more than one input file.
After each load, COUNT(*) must equal the CSV's data lines, and a lineitem checksum (sums of
two DECIMAL columns) must agree across every system and load.

Prints Markdown tables: per system and table rows, seconds, rows/s and MB/s (CSV bytes,
10^6 bytes per MB), totals, the ratios Basalt/DuckDB and Basalt/PostgreSQL of the rates
(above 1: Basalt is faster), one file vs 4 files, and the on-disk size of each table
against its CSV. These machines are shared and noisy: read the ratios.

    pip install tpchgen-cli                        # the data generator (once)
    python3 bench/load.py --sf 0.1                 # quick check, under a minute
    python3 bench/load.py --sf 1 --runs 3 --json /tmp/load.json
    python3 bench/load.py --skip-postgres --basalt-bin target/release/basalt

Running as root, PostgreSQL runs as the system user `postgres` (created if missing), which
must be able to read the CSV files: keep --data under /tmp (the default).
"""

import argparse
import contextlib
import json
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg

MB = 1e6

# TPC-H tables in load order (smallest first), with the spec's types. Keys of the tables
# that grow with the scale factor are BIGINT so any scale factor fits.
TABLES = {
    "region": [
        ("r_regionkey", "INTEGER"), ("r_name", "CHAR(25)"), ("r_comment", "VARCHAR(152)"),
    ],
    "nation": [
        ("n_nationkey", "INTEGER"), ("n_name", "CHAR(25)"), ("n_regionkey", "INTEGER"),
        ("n_comment", "VARCHAR(152)"),
    ],
    "supplier": [
        ("s_suppkey", "BIGINT"), ("s_name", "CHAR(25)"), ("s_address", "VARCHAR(40)"),
        ("s_nationkey", "INTEGER"), ("s_phone", "CHAR(15)"), ("s_acctbal", "DECIMAL(15,2)"),
        ("s_comment", "VARCHAR(101)"),
    ],
    "customer": [
        ("c_custkey", "BIGINT"), ("c_name", "VARCHAR(25)"), ("c_address", "VARCHAR(40)"),
        ("c_nationkey", "INTEGER"), ("c_phone", "CHAR(15)"), ("c_acctbal", "DECIMAL(15,2)"),
        ("c_mktsegment", "CHAR(10)"), ("c_comment", "VARCHAR(117)"),
    ],
    "part": [
        ("p_partkey", "BIGINT"), ("p_name", "VARCHAR(55)"), ("p_mfgr", "CHAR(25)"),
        ("p_brand", "CHAR(10)"), ("p_type", "VARCHAR(25)"), ("p_size", "INTEGER"),
        ("p_container", "CHAR(10)"), ("p_retailprice", "DECIMAL(15,2)"),
        ("p_comment", "VARCHAR(23)"),
    ],
    "partsupp": [
        ("ps_partkey", "BIGINT"), ("ps_suppkey", "BIGINT"), ("ps_availqty", "INTEGER"),
        ("ps_supplycost", "DECIMAL(15,2)"), ("ps_comment", "VARCHAR(199)"),
    ],
    "orders": [
        ("o_orderkey", "BIGINT"), ("o_custkey", "BIGINT"), ("o_orderstatus", "CHAR(1)"),
        ("o_totalprice", "DECIMAL(15,2)"), ("o_orderdate", "DATE"),
        ("o_orderpriority", "CHAR(15)"), ("o_clerk", "CHAR(15)"),
        ("o_shippriority", "INTEGER"), ("o_comment", "VARCHAR(79)"),
    ],
    "lineitem": [
        ("l_orderkey", "BIGINT"), ("l_partkey", "BIGINT"), ("l_suppkey", "BIGINT"),
        ("l_linenumber", "INTEGER"), ("l_quantity", "DECIMAL(15,2)"),
        ("l_extendedprice", "DECIMAL(15,2)"), ("l_discount", "DECIMAL(15,2)"),
        ("l_tax", "DECIMAL(15,2)"), ("l_returnflag", "CHAR(1)"), ("l_linestatus", "CHAR(1)"),
        ("l_shipdate", "DATE"), ("l_commitdate", "DATE"), ("l_receiptdate", "DATE"),
        ("l_shipinstruct", "CHAR(25)"), ("l_shipmode", "CHAR(10)"), ("l_comment", "VARCHAR(44)"),
    ],
}

# Basalt's table design: the two big tables co-located on the join key and sorted on the
# date their queries filter on; dimensions distributed on their key; the small ones copied
# to every node.
BASALT_DESIGN = {
    "region": "DISTSTYLE ALL",
    "nation": "DISTSTYLE ALL",
    "supplier": "DISTSTYLE ALL",
    "customer": "DISTKEY (c_custkey)",
    "part": "DISTKEY (p_partkey)",
    "partsupp": "DISTKEY (ps_partkey)",
    "orders": "DISTKEY (o_orderkey) SORTKEY (o_orderdate)",
    "lineitem": "DISTKEY (l_orderkey) SORTKEY (l_shipdate)",
}

SPLIT_TABLE = "lineitem_4"  # lineitem loaded from the 4 pre-split files
SPLIT_PARTS = 4
CHECKSUM = "SELECT SUM(l_quantity), SUM(l_extendedprice) FROM {table}"
LABEL = {"basalt": "Basalt", "duckdb": "DuckDB", "postgres": "PostgreSQL"}


def ddl(table, columns, suffix=""):
    # TPC-H has no NULLs; NOT NULL everywhere gives each system the same checks to make.
    cols = ", ".join(f"{name} {ty} NOT NULL" for name, ty in columns)
    return f"CREATE TABLE {table} ({cols}) {suffix}".rstrip()


# ---------------------------------------------------------------------------- data

def count_lines(path):
    """Newline-terminated lines of a file (plus an unterminated last one); TPC-H fields
    hold no newlines, so lines are records. Reading every file here also puts it in the
    page cache, so no system pays for the first cold read."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


class Source:
    """One load's input: its files, their bytes and data lines (each file has a header)."""

    def __init__(self, files):
        self.files = [str(f) for f in files]
        self.bytes = sum(os.path.getsize(f) for f in self.files)
        self.rows = sum(count_lines(f) - 1 for f in self.files)


def generate(args):
    data = Path(args.data).resolve()
    tpchgen = shutil.which("tpchgen-cli")
    if tpchgen is None:
        sys.exit("tpchgen-cli not found: pip install tpchgen-cli")
    marker = data / "complete.json"
    want = {"sf": args.sf, "parts": SPLIT_PARTS}
    if not (marker.exists() and json.loads(marker.read_text()) == want):
        # The marker is written last, so an interrupted generation is redone, not reused.
        print(f"generating TPC-H SF{args.sf:g} CSV into {data} ...", flush=True)
        data.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        base = [tpchgen, "csv", "-s", f"{args.sf:g}", "-o", str(data), "--overwrite", "-q"]
        subprocess.run(base, check=True)
        # Parts land in data/lineitem/lineitem.N.csv, each with its own header line: no
        # other file's path starts with data/lineitem/lineitem. (Basalt's key prefix).
        subprocess.run(base + ["-T", "lineitem", "-p", str(SPLIT_PARTS)], check=True)
        marker.write_text(json.dumps(want))
    else:
        print(f"reusing TPC-H SF{args.sf:g} CSV in {data}", flush=True)
    sources = {t: Source([data / f"{t}.csv"]) for t in TABLES}
    parts = [data / "lineitem" / f"lineitem.{i}.csv" for i in range(1, SPLIT_PARTS + 1)]
    sources[SPLIT_TABLE] = Source(parts)
    if sources[SPLIT_TABLE].rows != sources["lineitem"].rows:
        sys.exit(f"the {SPLIT_PARTS} lineitem parts hold {sources[SPLIT_TABLE].rows} rows, "
                 f"lineitem.csv {sources['lineitem'].rows}: delete {data} and rerun")
    return sources


# ---------------------------------------------------------------------------- helpers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def execute(system, cur, sql):
    """Run one statement; a failure names the system and the statement."""
    try:
        return cur.execute(sql)
    except Exception as e:
        raise RuntimeError(f"{LABEL[system]}: `{sql}` failed: {type(e).__name__}: {e}") from e


def check_count(system, cur, table, expected):
    got = execute(system, cur, f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    if got != expected:
        raise AssertionError(f"{LABEL[system]}: {table} holds {got} rows, the CSV {expected}")


def checksum(system, cur, table):
    # Compared as numbers at the columns' scale: each system picks its own result type.
    row = execute(system, cur, CHECKSUM.format(table=table)).fetchone()
    return [str(Decimal(v).quantize(Decimal("0.01"))) for v in row]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_loads(system, cur, sources, runs, create, load):
    """`runs` times: (re)create every table, load it, check its row count. Returns
    {table: [seconds per run]} and the lineitem checksums of the last run."""
    seconds = {t: [] for t in sources}
    for run in range(runs):
        for table in sources:
            create(table)
            s = load(table, sources[table])
            check_count(system, cur, table, sources[table].rows)
            seconds[table].append(s)
            print(f"  {LABEL[system]:<10} run {run + 1}/{runs} {table:<10} "
                  f"{sources[table].rows:>10,} rows {s:8.3f} s", flush=True)
    sums = {t: checksum(system, cur, t) for t in ("lineitem", SPLIT_TABLE)}
    return seconds, sums


def dir_bytes(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ---------------------------------------------------------------------------- Basalt

@contextlib.contextmanager
def basalt_cluster(args, tmp):
    data_dir = tmp / "basalt"
    port = free_port()
    log = open(tmp / "basalt.log", "wb")
    env = dict(os.environ, BASALT_ADMIN_PASSWORD=args.password)
    cmd = [args.basalt_bin, "local", "--workers", str(args.workers), "--data-dir",
           str(data_dir), "--port", str(port), "--cluster-port", "0"]
    # Its own session: a Ctrl-C in the terminal reaches this script only, which then
    # stops the cluster in order (the leader stops its workers on SIGTERM).
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + args.start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"basalt exited with {proc.returncode}:\n"
                                   + tail(tmp / "basalt.log"))
            try:
                conn = psycopg.connect(host="127.0.0.1", port=port, user="admin",
                                       password=args.password, dbname="dev",
                                       autocommit=True, connect_timeout=5)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("basalt did not accept connections within "
                                       f"{args.start_timeout}s:\n" + tail(tmp / "basalt.log"))
                time.sleep(0.25)
        with conn:
            yield conn, data_dir
    finally:
        stop_process_group(proc)
        log.close()


def stop_process_group(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    # Anything left in the group this script started (workers are killed with the
    # leader, but be sure).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tail(path, n=30):
    with contextlib.suppress(OSError):
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    return ""


def run_basalt(args, tmp, sources):
    with basalt_cluster(args, tmp) as (conn, data_dir):
        cur = conn.cursor()
        version = execute("basalt", cur, "SELECT version()").fetchone()[0]

        def create(table):
            execute("basalt", cur, f"DROP TABLE IF EXISTS {table}")
            base = "lineitem" if table == SPLIT_TABLE else table
            execute("basalt", cur, ddl(table, TABLES[base], BASALT_DESIGN[base]))

        def load(table, src):
            # One file: its path. Four files: their common prefix, which Basalt reads as
            # a key prefix (every file whose path starts with it), as Redshift does on S3.
            path = src.files[0] if len(src.files) == 1 else os.path.commonprefix(src.files)
            sql = f"COPY {table} FROM '{path}' CSV IGNOREHEADER 1"
            return timed(lambda: execute("basalt", cur, sql))

        seconds, sums = run_loads("basalt", cur, sources, args.runs, create, load)
        # On-disk size: the segment files under each table's directory (exact bytes), and
        # svv_table_info.size (1 MB blocks, rounded up per table).
        sizes = {}
        for table_id, table, size_mb in execute(
                "basalt", cur, 'SELECT table_id, "table", size FROM svv_table_info').fetchall():
            sizes[table] = {
                "bytes": dir_bytes(data_dir / "storage" / "tables" / str(table_id)),
                "svv_table_info_mb": size_mb,
            }
        return {"version": version, "seconds": seconds, "checksums": sums, "sizes": sizes}


# ---------------------------------------------------------------------------- DuckDB

def run_duckdb(args, tmp, sources):
    import duckdb

    seconds = {t: [] for t in sources}
    for run in range(args.runs):
        # A fresh file per run, and lineitem_4 in a file of its own, so the main file
        # holds exactly one copy of the 8 tables and its size compares with Basalt's.
        main_path, split_path = tmp / f"tpch-{run}.duckdb", tmp / f"split-{run}.duckdb"
        main, split = duckdb.connect(str(main_path)), duckdb.connect(str(split_path))
        for table, src in sources.items():
            con = split if table == SPLIT_TABLE else main
            base = "lineitem" if table == SPLIT_TABLE else table
            con.execute(ddl(table, TABLES[base]))
            # The 4 files as one glob: DuckDB reads the files of one COPY in parallel.
            path = src.files[0] if len(src.files) == 1 else \
                os.path.commonprefix(src.files) + "*.csv"
            sql = (f"COPY {table} FROM '{path}' "
                   "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"')")
            s = timed(lambda: execute("duckdb", con, sql))
            check_count("duckdb", con, table, src.rows)
            seconds[table].append(s)
            print(f"  DuckDB     run {run + 1}/{args.runs} {table:<10} "
                  f"{src.rows:>10,} rows {s:8.3f} s", flush=True)
        sums = {"lineitem": checksum("duckdb", main, "lineitem"),
                SPLIT_TABLE: checksum("duckdb", split, SPLIT_TABLE)}
        # Size after a CHECKPOINT (everything in the file, nothing left in the WAL).
        main.execute("CHECKPOINT")
        main.close()
        split.close()
        size = main_path.stat().st_size
        if run + 1 < args.runs:
            for p in (main_path, split_path):
                p.unlink()
    return {"version": duckdb.__version__, "seconds": seconds, "checksums": sums,
            "file_bytes": size}


# ---------------------------------------------------------------------------- PostgreSQL

def pg_user_prefix(args):
    """Commands to run PostgreSQL's tools as a non-root user (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(args.pg_user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", args.pg_user], check=True)
    return ["runuser", "-u", args.pg_user, "--"]


@contextlib.contextmanager
def postgres_cluster(args, tmp, sources):
    as_user = pg_user_prefix(args)
    root = tmp / "pg"
    root.mkdir()
    if as_user:
        shutil.chown(root, user=args.pg_user)
        # Server-side COPY reads the files as the server's user.
        for src in sources.values():
            for f in src.files:
                if subprocess.run(as_user + ["test", "-r", f]).returncode != 0:
                    raise RuntimeError(f"user {args.pg_user} cannot read {f}: put --data "
                                       "where it can (e.g. under /tmp)")
    bindir = Path(args.pg_bindir)
    data = root / "data"
    run = dict(check=True, cwd=root, stdout=subprocess.DEVNULL)
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--no-locale"], **run)
    port = free_port()
    # Default settings: only where to listen changes.
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"
    pg_ctl = as_user + [str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(pg_ctl + ["-l", str(root / "log"), "-w", "-t", "60", "-o", opts,
                                 "start"], **run)
        dsn = dict(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                   autocommit=True)
        with psycopg.connect(**dsn) as conn:
            yield conn, dsn
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(pg_ctl + ["-m", "fast", "-w", "stop"], cwd=root,
                           stdout=subprocess.DEVNULL)


def run_postgres(args, tmp, sources):
    with postgres_cluster(args, tmp, sources) as (conn, dsn):
        cur = conn.cursor()
        version = execute("postgres", cur, "SHOW server_version").fetchone()[0]
        # Connections for the 4-file load, opened before any timing.
        extra = [psycopg.connect(**dsn) for _ in range(SPLIT_PARTS)]
        try:
            def create(table):
                execute("postgres", cur, f"DROP TABLE IF EXISTS {table}")
                base = "lineitem" if table == SPLIT_TABLE else table
                execute("postgres", cur, ddl(table, TABLES[base]))

            def copy(c, table, path):
                execute("postgres", c,
                        f"COPY {table} FROM '{path}' WITH (FORMAT csv, HEADER true)")

            def load(table, src):
                if len(src.files) == 1:
                    return timed(lambda: copy(cur, table, src.files[0]))
                # One COPY per file, all at once on their own connections: PostgreSQL
                # loads one file per backend, so this is how it uses several cores.
                with ThreadPoolExecutor(len(src.files)) as pool:
                    def parallel():
                        for f in [pool.submit(copy, c.cursor(), table, path)
                                  for c, path in zip(extra, src.files)]:
                            f.result()
                    return timed(parallel)

            seconds, sums = run_loads("postgres", cur, sources, args.runs, create, load)
            sizes = {t: execute("postgres", cur, f"SELECT pg_table_size('{t}')").fetchone()[0]
                     for t in sources}
        finally:
            for c in extra:
                c.close()
    return {"version": version, "seconds": seconds, "checksums": sums, "sizes": sizes}


# ---------------------------------------------------------------------------- report

def md_table(header, rows, text_columns=(0,)):
    """A Markdown table: numbers right-aligned, the columns in text_columns left."""
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i in text_columns else "---:"
                          for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def summarize(raw, sources):
    """Median seconds per table and the rates; 'total' is the 8 tables one after another."""
    out = {}
    for table, times in raw["seconds"].items():
        s = statistics.median(times)
        src = sources[table]
        out[table] = {"rows": src.rows, "csv_bytes": src.bytes, "seconds": s,
                      "best_seconds": min(times), "all_seconds": times,
                      "rows_per_s": src.rows / s, "mb_per_s": src.bytes / MB / s}
    s = sum(out[t]["seconds"] for t in TABLES)
    rows = sum(sources[t].rows for t in TABLES)
    size = sum(sources[t].bytes for t in TABLES)
    out["total"] = {"rows": rows, "csv_bytes": size, "seconds": s,
                    "rows_per_s": rows / s, "mb_per_s": size / MB / s}
    return out


def report(args, sources, results, versions):
    lines = [f"## COPY load, TPC-H SF{args.sf:g} CSV ({os.cpu_count()} cores, "
             f"median of {args.runs} run{'s' * (args.runs > 1)})", ""]
    lines += [", ".join(f"{LABEL[s]} {v}" for s, v in versions.items()), "",
              f"Basalt binary: `{args.basalt_bin}`", ""]
    for system, summary in results.items():
        lines.append(f"### {LABEL[system]}" + (
            f" ({args.workers} worker processes)" if system == "basalt" else ""))
        lines.append("")
        rows = []
        for table in list(TABLES) + ["total", SPLIT_TABLE]:
            r = summary[table]
            name = {"total": "**total (8 tables)**",
                    SPLIT_TABLE: f"lineitem, {SPLIT_PARTS} files"}.get(table, table)
            rows.append([name, f"{r['rows']:,}", f"{r['csv_bytes'] / MB:,.1f}",
                         f"{r['seconds']:.3f}", f"{r['rows_per_s']:,.0f}",
                         f"{r['mb_per_s']:.1f}"])
        lines += [md_table(["table", "rows", "CSV MB", "seconds", "rows/s", "MB/s"], rows), ""]

    others = [s for s in ("duckdb", "postgres") if s in results]
    if "basalt" in results and others:
        lines += ["### Rates compared (rows/s; ratio above 1: Basalt is faster)", ""]
        header = ["table"] + [f"{LABEL[s]} rows/s" for s in results] + \
                 [f"Basalt / {LABEL[s]}" for s in others]
        rows = []
        for table in list(TABLES) + ["total", SPLIT_TABLE]:
            name = {"total": "**total**", SPLIT_TABLE: f"lineitem, {SPLIT_PARTS} files"} \
                .get(table, table)
            b = results["basalt"][table]["rows_per_s"]
            rows.append([name] + [f"{results[s][table]['rows_per_s']:,.0f}" for s in results]
                        + [f"{b / results[s][table]['rows_per_s']:.2f}" for s in others])
        lines += [md_table(header, rows), ""]

    how = {"basalt": "one COPY from the files' key prefix",
           "duckdb": "one COPY of a glob",
           "postgres": f"{SPLIT_PARTS} COPYs at once on {SPLIT_PARTS} connections"}
    lines += [f"### lineitem: one file vs {SPLIT_PARTS} files", ""]
    rows = [[LABEL[s], f"{r['lineitem']['rows_per_s']:,.0f}",
             f"{r[SPLIT_TABLE]['rows_per_s']:,.0f}",
             f"{r[SPLIT_TABLE]['rows_per_s'] / r['lineitem']['rows_per_s']:.2f}", how[s]]
            for s, r in results.items()]
    lines += [md_table(["system", "1 file rows/s", f"{SPLIT_PARTS} files rows/s",
                        f"{SPLIT_PARTS} files / 1 file", f"{SPLIT_PARTS} files loaded as"],
                       rows, text_columns=(0, 4)), ""]
    return lines


def size_report(sources, sizes):
    lines = []
    if "basalt" in sizes:
        b = sizes["basalt"]
        pg = sizes.get("postgres")
        lines += ["### On-disk size vs CSV (bytes; ratio: CSV / stored)", ""]
        header = ["table", "CSV", "Basalt", "svv_table_info MB", "CSV / Basalt"]
        if pg:
            header += ["PostgreSQL", "CSV / PostgreSQL"]
        rows = []
        for table in TABLES:
            csv, st = sources[table].bytes, b[table]["bytes"]
            row = [table, f"{csv:,}", f"{st:,}", b[table]["svv_table_info_mb"],
                   f"{csv / st:.2f}"]
            if pg:
                row += [f"{pg[table]:,}", f"{csv / pg[table]:.2f}"]
            rows.append(row)
        csv = sum(sources[t].bytes for t in TABLES)
        st = sum(b[t]["bytes"] for t in TABLES)
        row = ["**total**", f"{csv:,}", f"{st:,}",
               sum(b[t]["svv_table_info_mb"] for t in TABLES), f"{csv / st:.2f}"]
        if pg:
            total_pg = sum(pg[t] for t in TABLES)
            row += [f"{total_pg:,}", f"{csv / total_pg:.2f}"]
        rows.append(row)
        lines += [md_table(header, rows), ""]
        if "duckdb" in sizes:
            d = sizes["duckdb"]
            lines += [f"DuckDB database file with the 8 tables, after CHECKPOINT: {d:,} bytes "
                      f"(CSV / DuckDB {csv / d:.2f}, DuckDB / Basalt {d / st:.2f}).", ""]
    return lines


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    ap.add_argument("--data", help="CSV directory, reused if complete "
                                   "(default /tmp/basalt-load-data/sf<SF>)")
    ap.add_argument("--runs", type=int, default=1, help="loads per table; the median counts")
    ap.add_argument("--workers", type=int, default=2, help="Basalt worker processes")
    ap.add_argument("--basalt-bin",
                    default=os.path.expanduser("~/.cache/basalt-release/release/basalt"))
    ap.add_argument("--password", default="basalt", help="Basalt admin password")
    ap.add_argument("--start-timeout", type=float, default=120.0,
                    help="seconds to wait for the Basalt cluster")
    ap.add_argument("--pg-bindir", default=os.path.dirname(
        shutil.which("pg_ctl") or "/usr/local/bin/pg_ctl"))
    ap.add_argument("--pg-user", default="postgres",
                    help="system user PostgreSQL runs as when this script runs as root")
    ap.add_argument("--tmp", default="/tmp", help="where the databases are created")
    ap.add_argument("--keep", action="store_true", help="keep the databases and logs")
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--json", help="save the raw numbers here")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.data is None:
        args.data = f"/tmp/basalt-load-data/sf{args.sf:g}"

    # SIGTERM unwinds like Ctrl-C, so every started server is stopped on the way out.
    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    sources = generate(args)
    tmp = Path(tempfile.mkdtemp(prefix="basalt-load-", dir=args.tmp))
    tmp.chmod(0o755)  # PostgreSQL's user must reach its directory inside
    raw = {}
    try:
        print(f"Basalt: {args.basalt_bin}", flush=True)
        raw["basalt"] = run_basalt(args, tmp, sources)
        if not args.skip_duckdb:
            raw["duckdb"] = run_duckdb(args, tmp, sources)
        if not args.skip_postgres:
            raw["postgres"] = run_postgres(args, tmp, sources)
    except KeyboardInterrupt:
        sys.exit("interrupted")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    # Every system and both lineitem loads must hold the same data.
    sums = {f"{s} {t}": tuple(r["checksums"][t]) for s, r in raw.items() for t in r["checksums"]}
    if len(set(sums.values())) != 1:
        raise AssertionError(f"lineitem checksums differ: {sums}")

    results = {s: summarize(r, sources) for s, r in raw.items()}
    versions = {s: r["version"] for s, r in raw.items()}
    sizes = {"basalt": raw["basalt"]["sizes"]}
    if "postgres" in raw:
        sizes["postgres"] = raw["postgres"]["sizes"]
    if "duckdb" in raw:
        sizes["duckdb"] = raw["duckdb"]["file_bytes"]
    lines = report(args, sources, results, versions) + size_report(sources, sizes)
    lines.append(f"lineitem checksum (SUM(l_quantity), SUM(l_extendedprice)) = "
                 f"{', '.join(next(iter(sums.values())))} in every system and load.")
    print()
    print("\n".join(lines))

    if args.json:
        out = {
            "sf": args.sf, "runs": args.runs, "workers": args.workers,
            "basalt_bin": args.basalt_bin, "cores": os.cpu_count(),
            "machine": platform.platform(), "versions": versions,
            "csv": {t: {"files": s.files, "bytes": s.bytes, "rows": s.rows}
                    for t, s in sources.items()},
            "results": results, "sizes": sizes, "lineitem_checksums": sums,
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
