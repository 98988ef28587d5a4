#!/usr/bin/env python3
"""Wire-level throughput of a running Basalt cluster, measured with psycopg 3.

Measures, for N rows of a KEY-distributed table:
  - INSERT ... SELECT (rows generated on the leader, routed to slices, written by workers),
  - a full scan streamed to the client (rows/s over the wire, text and binary results),
  - a distributed GROUP BY (partial aggregates on workers, final on the leader).

Optionally (--postgres DSN) runs the same statements on PostgreSQL in the same run and
prints the ratio. Timings are medians of --repeat runs; the machine may be noisy, so read
ratios rather than absolute numbers.

    python3 bench/wire_throughput.py --port 5439 --rows 1000000
"""
import argparse
import statistics
import time

import psycopg


def timed(fn, repeat):
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def run(conn, rows, repeat, generate):
    cur = conn.cursor()
    cur.execute("drop table if exists bench_t")
    cur.execute("create table bench_t (k int, x bigint, s varchar(32))" + generate["ddl"])
    conn.commit()

    # Insert once per repeat into a fresh table so every run writes the same amount.
    def insert_fresh():
        cur.execute("drop table if exists bench_t")
        cur.execute("create table bench_t (k int, x bigint, s varchar(32))" + generate["ddl"])
        cur.execute(generate["insert"].format(rows=rows))
        conn.commit()

    ins = timed(insert_fresh, repeat)

    def scan_text():
        with conn.cursor() as c:
            c.execute("select k, x, s from bench_t")
            n = sum(1 for _ in c)
            assert n == rows, n

    def scan_binary():
        with conn.cursor(binary=True) as c:
            c.execute("select k, x, s from bench_t")
            n = sum(1 for _ in c)
            assert n == rows, n

    def group_by():
        with conn.cursor() as c:
            c.execute("select k, count(*), sum(x) from bench_t group by k")
            assert len(c.fetchall()) == 1000

    return {
        "insert_select": ins,
        "scan_text": timed(scan_text, repeat),
        "scan_binary": timed(scan_binary, repeat),
        "group_by": timed(group_by, repeat),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5439)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="basalt")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--postgres", help="DSN of a PostgreSQL server to compare against")
    args = ap.parse_args()

    basalt = psycopg.connect(host=args.host, port=args.port, user=args.user,
                             password=args.password, dbname="dev")
    results = {"basalt": run(basalt, args.rows, args.repeat, {
        "ddl": " distkey(k) sortkey(x)",
        "insert": "insert into bench_t select value % 1000, value, 'row-' || value "
                  "from generate_series(1, {rows})",
    })}
    if args.postgres:
        pg = psycopg.connect(args.postgres)
        results["postgres"] = run(pg, args.rows, args.repeat, {
            "ddl": "",
                "insert": "insert into bench_t select g % 1000, g, 'row-' || g "
                      "from generate_series(1, {rows}) g",
        })
    print(f"rows={args.rows} repeat={args.repeat} (median seconds; rows/s)")
    for name in ["insert_select", "scan_text", "scan_binary", "group_by"]:
        line = f"{name:14s}"
        for system, r in results.items():
            line += f"  {system}: {r[name]:8.3f}s {args.rows / r[name]:12,.0f} rows/s"
        if "postgres" in results:
            line += f"  basalt/postgres = {results['basalt'][name] / results['postgres'][name]:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
