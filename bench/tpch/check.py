#!/usr/bin/env python3
"""TPC-H correctness: load the CSV files of one scale factor into a running Basalt cluster
(with the table design of bench/load.py: lineitem and orders co-located on the order key,
sorted by date; small dimensions DISTSTYLE ALL) and into an in-process DuckDB, run the 22
queries in bench/tpch/queries on both and compare every row: strings exactly (CHAR padding
aside), numbers to 1e-9 relative (or to the last digit of a DECIMAL answer that DuckDB gives as
a DOUBLE). Exits 1 on any difference or error.

    tpchgen-cli csv -s 0.1 --output-dir /tmp/tpch01
    python3 bench/tpch/check.py --port 5439 --password ... --data /tmp/tpch01
"""

import argparse
import datetime
import decimal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

from load import BASALT_DESIGN, TABLES, ddl  # noqa: E402

TOLERANCE = 1e-9


def same_value(a, b):
    """`a` (Basalt's) equals `b` (DuckDB's): numbers to 1e-9 relative, or to the last
    digit of Basalt's DECIMAL when it has fewer digits (DuckDB answers AVG and division
    of decimals as DOUBLE; Basalt keeps a DECIMAL, as Redshift does)."""
    if isinstance(a, (int, float, decimal.Decimal)) and isinstance(b, (int, float, decimal.Decimal)):
        digit = 0.0
        if isinstance(a, decimal.Decimal) and isinstance(b, float):
            digit = 10.0 ** a.as_tuple().exponent
        a, b = float(a), float(b)
        return abs(a - b) <= max(TOLERANCE * max(1.0, abs(a), abs(b)), digit)
    if isinstance(a, str) and isinstance(b, str):
        return a.rstrip() == b.rstrip()
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return a == b


def same_rows(got, want):
    return len(got) == len(want) and all(
        len(g) == len(w) and all(same_value(x, y) for x, y in zip(g, w))
        for g, w in zip(got, want))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--data", required=True, help="directory of <table>.csv files")
    args = ap.parse_args()
    data = Path(args.data).resolve()
    conn = psycopg.connect(host="127.0.0.1", port=args.port, user=args.user,
                           password=args.password, dbname="dev", autocommit=True)
    cur = conn.cursor()
    duck = duckdb.connect()
    started = time.monotonic()
    for table, columns in TABLES.items():
        cur.execute(ddl(table, columns, BASALT_DESIGN[table]))
        cur.execute(f"COPY {table} FROM '{data / (table + '.csv')}' CSV IGNOREHEADER 1")
        duck.execute(ddl(table, columns))
        duck.execute(f"COPY {table} FROM '{data / (table + '.csv')}' (FORMAT csv, HEADER true)")
    print(f"loaded {len(TABLES)} tables in {time.monotonic() - started:.1f}s", flush=True)
    failed = []
    for path in sorted((HERE / "queries").glob("q*.sql")):
        sql = path.read_text()
        started = time.monotonic()
        try:
            cur.execute(sql)
            got = cur.fetchall()
        except psycopg.Error as e:
            failed.append(path.stem)
            print(f"{path.stem}: ERROR {e}".splitlines()[0], flush=True)
            continue
        elapsed = time.monotonic() - started
        want = duck.execute(sql).fetchall()
        if same_rows(got, want):
            print(f"{path.stem}: ok, {len(got)} rows, {elapsed:.2f}s", flush=True)
        else:
            failed.append(path.stem)
            print(f"{path.stem}: MISMATCH\n  Basalt: {got[:5]}\n  DuckDB: {want[:5]}", flush=True)
    print(f"{22 - len(failed)}/22 match" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
