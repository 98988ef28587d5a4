#!/usr/bin/env python3
"""TPC-H query speed: Basalt vs DuckDB vs DataFusion on the same CSV files, one run.

Generates the scale factor's CSV with `tpchgen-cli` (cached in --data), starts a fresh
`basalt local` cluster (release binary, --workers worker processes), loads it with COPY
using bench/load.py's table design, and runs the 22 queries of bench/tpch/queries --runs
times each over the wire (psycopg 3, rows fetched); then the same in-process DuckDB (tables
loaded from the CSV) and DataFusion's Python package (tables registered from the CSV and
cached in memory). Prints per-query medians, totals, the ratios Basalt/DuckDB and
Basalt/DataFusion (below 1: Basalt is faster), and the CPU seconds the Basalt processes
used per query. These machines are shared and noisy: read the ratios.

    pip install tpchgen-cli duckdb datafusion psycopg[binary]
    python3 bench/tpch/bench.py --sf 1 --basalt-bin ~/.cache/basalt-release/release/basalt
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

from load import BASALT_DESIGN, TABLES, ddl  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def timed(run, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--data", help="CSV directory (default /tmp/basalt-tpch-sf<SF>)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--basalt-bin", default=os.path.expanduser("~/.cache/basalt-release/release/basalt"))
    ap.add_argument("--skip-datafusion", action="store_true")
    args = ap.parse_args()
    data = Path(args.data or f"/tmp/basalt-tpch-sf{args.sf:g}")
    if not (data / "lineitem.csv").exists():
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tpchgen-cli", "csv", "-s", str(args.sf), "--output-dir", str(data)], check=True)
    queries = [(p.stem, p.read_text()) for p in sorted((HERE / "queries").glob("q*.sql"))]

    tmp = Path(tempfile.mkdtemp(prefix="basalt-tpch-"))
    port = free_port()
    proc = subprocess.Popen(
        [args.basalt_bin, "local", "--workers", str(args.workers), "--data-dir", str(tmp / "data"),
         "--port", str(port), "--cluster-port", "0"],
        env=dict(os.environ, BASALT_ADMIN_PASSWORD="basalt"), stdout=open(tmp / "basalt.log", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    results = {}
    try:
        for _ in range(600):
            try:
                conn = psycopg.connect(host="127.0.0.1", port=port, user="admin", password="basalt",
                                       dbname="dev", autocommit=True)
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        cur = conn.cursor()
        pids = [int(p) for p in subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True,
                                               text=True).stdout.split()]
        started = time.perf_counter()
        for table, columns in TABLES.items():
            cur.execute(ddl(table, columns, BASALT_DESIGN[table]))
            cur.execute(f"COPY {table} FROM '{data / (table + '.csv')}' CSV IGNOREHEADER 1")
        print(f"Basalt: loaded SF{args.sf:g} in {time.perf_counter() - started:.1f}s", flush=True)
        for name, sql in queries:
            before = cpu_seconds(pids)

            def run():
                cur.execute(sql)
                cur.fetchall()
            try:
                t = timed(run, args.runs)
                cpu = (cpu_seconds(pids) - before) / args.runs
                # Bytes the last run's exchanges moved between workers.
                cur.execute("select coalesce(sum(bytes), 0) from svl_query_report "
                            "where query = pg_last_query_id() and label in ('dist', 'bcast')")
                moved = int(cur.fetchone()[0])
            except psycopg.Error as e:
                print(f"{name}: Basalt error {e}", flush=True)
                t, cpu, moved = float("nan"), float("nan"), 0
            results[name] = {"basalt": t, "basalt_cpu": cpu, "exchange_mb": moved / 1e6}
            print(f"{name}: Basalt {t:.3f}s", flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)

    duck = duckdb.connect()
    for table, columns in TABLES.items():
        duck.execute(ddl(table, columns))
        duck.execute(f"COPY {table} FROM '{data / (table + '.csv')}' (FORMAT csv, HEADER true)")
    for name, sql in queries:
        results[name]["duckdb"] = timed(lambda: duck.execute(sql).fetchall(), args.runs)

    if not args.skip_datafusion:
        import datafusion
        ctx = datafusion.SessionContext()
        for table, columns in TABLES.items():
            df = ctx.read_csv(str(data / (table + ".csv")), has_header=True)
            ctx.register_table(table, df.cache().into_view() if hasattr(df, "into_view") else df.cache())
        for name, sql in queries:
            try:
                results[name]["datafusion"] = timed(lambda: ctx.sql(sql).collect(), args.runs)
            except Exception as e:  # a query DataFusion's CSV schema inference cannot plan
                print(f"{name}: DataFusion error {str(e).splitlines()[0]}", flush=True)
                results[name]["datafusion"] = float("nan")

    print(f"\n### TPC-H SF{args.sf:g}: median of {args.runs} runs (seconds; Basalt {args.workers} workers)\n")
    print("| query | Basalt | Basalt CPU s | exchange MB | DuckDB | DataFusion | Basalt / DuckDB "
          "| Basalt / DataFusion |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    tot = {"basalt": 0.0, "duckdb": 0.0, "datafusion": 0.0, "basalt_cpu": 0.0, "exchange_mb": 0.0}
    for name, _ in queries:
        r = results[name]
        for k in tot:
            tot[k] += r.get(k, float("nan"))
        df = r.get("datafusion", float("nan"))
        print(f"| {name} | {r['basalt']:.3f} | {r['basalt_cpu']:.2f} | {r['exchange_mb']:.1f} | "
              f"{r['duckdb']:.3f} | {df:.3f} | {r['basalt'] / r['duckdb']:.2f} | {r['basalt'] / df:.2f} |")
    print(f"| **total** | {tot['basalt']:.3f} | {tot['basalt_cpu']:.2f} | {tot['exchange_mb']:.1f} | "
          f"{tot['duckdb']:.3f} | {tot['datafusion']:.3f} | {tot['basalt'] / tot['duckdb']:.2f} | "
          f"{tot['basalt'] / tot['datafusion']:.2f} |")


if __name__ == "__main__":
    main()
