#!/usr/bin/env python3
"""On-disk size of TPC-H SF1 lineitem: CSV text vs Parquet vs DuckDB vs Basalt segments.

Runs the Rust bench `cargo bench -p basalt-storage --bench lineitem_size` (honouring
CARGO_TARGET_DIR and BASALT_BENCH_DIR, default /tmp/basalt-bench), which writes the
dbgen `.tbl` text, Parquet (ZSTD level 3) and Basalt segments (ENCODE AUTO, and the best
encoding per column) and verifies the segments. Then loads that same `.tbl` file into DuckDB
twice -- as COPY loads it (dbgen order) and sorted by l_shipdate like the Basalt segments --
each in a fresh database file: CREATE TABLE with the TPC-H types, load, CHECKPOINT, close,
and measures the database file. Prints one table with every size and the ratios, and
checks the targets: Basalt at least 4.5x smaller than the CSV, and smaller than DuckDB.

    python3 bench/storage_size.py              # runs the Rust bench first
    python3 bench/storage_size.py --skip-rust  # reuse the last run's files and summary
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# TPC-H lineitem with the types Basalt's bench gives it (storage/benches/common/mod.rs).
LINEITEM = [
    ("l_orderkey", "BIGINT"),
    ("l_partkey", "BIGINT"),
    ("l_suppkey", "BIGINT"),
    ("l_linenumber", "INTEGER"),
    ("l_quantity", "DECIMAL(15,2)"),
    ("l_extendedprice", "DECIMAL(15,2)"),
    ("l_discount", "DECIMAL(15,2)"),
    ("l_tax", "DECIMAL(15,2)"),
    ("l_returnflag", "CHAR(1)"),
    ("l_linestatus", "CHAR(1)"),
    ("l_shipdate", "DATE"),
    ("l_commitdate", "DATE"),
    ("l_receiptdate", "DATE"),
    ("l_shipinstruct", "CHAR(25)"),
    ("l_shipmode", "CHAR(10)"),
    ("l_comment", "VARCHAR(44)"),
]
LINEITEM_DDL = "create table lineitem (%s)" % ", ".join(
    f"{name} {ty} not null" for name, ty in LINEITEM)


def import_duckdb():
    try:
        import duckdb
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "duckdb"], check=True)
        import duckdb
    return duckdb


def load_duckdb(duckdb, tbl, db_path, sort_key=None):
    """Load `tbl` into a fresh DuckDB file; return (file bytes, rows, seconds)."""
    for p in (db_path, Path(str(db_path) + ".wal")):
        if p.exists():
            p.unlink()
    t = time.perf_counter()
    con = duckdb.connect(str(db_path))
    con.execute(LINEITEM_DDL)
    # dbgen lines end in a '|'; DuckDB's CSV reader ignores that trailing delimiter.
    if sort_key is None:
        con.execute(f"copy lineitem from '{tbl}' (delimiter '|', header false)")
    else:
        columns = "{%s}" % ", ".join(f"'{name}': '{ty}'" for name, ty in LINEITEM)
        con.execute(
            f"insert into lineitem select * from read_csv('{tbl}', delim='|', header=false, "
            f"columns={columns}) order by {sort_key}"
        )
    rows = con.execute("select count(*) from lineitem").fetchone()[0]
    con.execute("checkpoint")
    con.close()
    seconds = time.perf_counter() - t
    size = db_path.stat().st_size
    wal = Path(str(db_path) + ".wal")
    if wal.exists():
        size += wal.stat().st_size
    return size, rows, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-rust", action="store_true",
                    help="do not run the Rust bench; use the files of its last run")
    args = ap.parse_args()

    bench_dir = Path(os.environ.get("BASALT_BENCH_DIR", "/tmp/basalt-bench"))
    if not args.skip_rust:
        env = dict(os.environ, BASALT_BENCH_DIR=str(bench_dir))
        print(f"CARGO_TARGET_DIR={env.get('CARGO_TARGET_DIR', '(cargo default)')}", flush=True)
        subprocess.run(
            ["cargo", "bench", "-p", "basalt-storage", "--bench", "lineitem_size"],
            cwd=REPO, env=env, check=True,
        )
    summary = json.loads((bench_dir / "lineitem_size.json").read_text())
    tbl = bench_dir / "lineitem.tbl"

    duckdb = import_duckdb()
    duck, duck_rows, duck_s = load_duckdb(duckdb, tbl, bench_dir / "lineitem.duckdb")
    duck_sorted, sorted_rows, sorted_s = load_duckdb(
        duckdb, tbl, bench_dir / "lineitem-sorted.duckdb", summary["sort_key"])
    for rows in (duck_rows, sorted_rows):
        if rows != summary["rows"]:
            sys.exit(f"DuckDB loaded {rows} rows, the bench generated {summary['rows']}")

    csv = summary["csv_bytes"]
    auto = summary["basalt_auto_bytes"]
    best = summary["basalt_best_bytes"]
    key = summary["sort_key"]
    sizes = [
        ("CSV (dbgen .tbl)", csv, None),
        ("Parquet ZSTD(3), dbgen order", summary["parquet_zstd_bytes"], None),
        (f"Parquet ZSTD(3), sorted by {key}", summary["parquet_zstd_sorted_bytes"], None),
        (f"DuckDB {duckdb.__version__}, dbgen order", duck, duck_s),
        (f"DuckDB {duckdb.__version__}, sorted by {key}", duck_sorted, sorted_s),
        (f"Basalt ENCODE AUTO, sortkey {key}", auto, None),
        (f"Basalt best encoding per column", best, None),
    ]
    print(f"\nlineitem SF1, {summary['rows']} rows, on disk (MB = 10^6 bytes)")
    print(f"{'format':<46} {'MB':>9} {'CSV/x':>7} {'x/AUTO':>7} {'x/best':>7}")
    for name, size, _ in sizes:
        print(f"{name:<46} {size / 1e6:>9.1f} {csv / size:>7.2f} {size / auto:>7.2f} "
              f"{size / best:>7.2f}")
    print("(CSV/x: times smaller than the CSV; x/AUTO, x/best: size relative to Basalt's)")
    print("(load seconds: DuckDB dbgen order %.1f, sorted %.1f)" % (duck_s, sorted_s))
    print("\nbest encodings: " + ", ".join(
        f"{c}={e}" for c, e in summary["best_encodings"].items()))

    print("\ntargets")
    for label, size in (("ENCODE AUTO", auto), ("best per column", best)):
        ratio = csv / size
        print(f"  Basalt {label}: CSV/Basalt = {ratio:.2f} (target >= 4.5: "
              f"{'met' if ratio >= 4.5 else 'NOT met'}); smaller than DuckDB "
              f"(dbgen order {duck / 1e6:.1f} MB): {'yes' if size < duck else 'NO'}, "
              f"(sorted {duck_sorted / 1e6:.1f} MB): {'yes' if size < duck_sorted else 'NO'}")


if __name__ == "__main__":
    main()
