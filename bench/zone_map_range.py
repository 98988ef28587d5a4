"""Zone-map pruning on a sort key, over the wire against a running `basalt local`.

Loads a lineitem-shaped table (TPC-H SF1 row count by default: 6,001,215 rows) sorted by
l_shipdate, VACUUMs it so every slice is one sorted run, then times a one-week range on
l_shipdate against the same aggregate over the whole table, and reads `stl_scan` for the
blocks each scan read. The same data without a sort key is the reference for what zone
maps buy. Reports medians and ratios (these machines are noisy: read the ratios).

    python3 bench/zone_map_range.py --port 5439 [--rows 6001215] [--runs 5]
"""

import argparse
import statistics
import time

from basalt_conn import add_connection_args, connect

COLUMNS = """
    l_orderkey bigint, l_partkey int, l_suppkey int, l_linenumber int,
    l_quantity decimal(15,2), l_extendedprice decimal(15,2), l_discount decimal(15,2),
    l_tax decimal(15,2), l_returnflag char(1), l_linestatus char(1), l_shipdate date,
    l_commitdate date, l_receiptdate date, l_shipinstruct char(25), l_shipmode char(10),
    l_comment varchar(44)
"""

# Deterministic pseudo-random columns; l_shipdate spreads over TPC-H's 2,526 days.
FILL = """
    insert into {table}
    select value / 4, (value * 7919) % 200000, (value * 104729) % 10000, value % 7 + 1,
           cast((value * 31) % 50 + 1 as decimal(15,2)),
           cast((value * 7919) % 9000000 as decimal(15,2)) / 100,
           cast(value % 11 as decimal(15,2)) / 100, cast(value % 9 as decimal(15,2)) / 100,
           case value % 3 when 0 then 'A' when 1 then 'N' else 'R' end,
           case value % 2 when 0 then 'F' else 'O' end,
           date '1992-01-02' + cast((value * 7919) % 2526 as int),
           date '1992-01-31' + cast((value * 7919) % 2466 as int),
           date '1992-01-03' + cast((value * 7919) % 2557 as int),
           'DELIVER IN PERSON', 'TRUCK', 'carefully ' || cast(value % 1000 as varchar)
    from generate_series(1, {rows})
"""

WEEK = ("select count(*), sum(l_extendedprice) from {table} "
        "where l_shipdate between date '1995-06-01' and date '1995-06-07'")
FULL = "select count(*), sum(l_extendedprice) from {table} where l_discount >= 0"


def timed(cur, sql, runs):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        cur.execute(sql)
        result = cur.fetchall()
        times.append(time.perf_counter() - start)
        cur.execute("select sum(blocks_scanned), sum(blocks_total) from stl_scan "
                    "where query = pg_last_query_id()")
        blocks = cur.fetchone()
    return statistics.median(times), result, blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    add_connection_args(ap)
    ap.add_argument("--rows", type=int, default=6_001_215)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    conn = connect(args)
    cur = conn.cursor()
    for table, key in (("li_sorted", "sortkey(l_shipdate)"), ("li_unsorted", "")):
        cur.execute(f"drop table if exists {table}")
        cur.execute(f"create table {table} ({COLUMNS}) diststyle even {key}")
        start = time.perf_counter()
        cur.execute(FILL.format(table=table, rows=args.rows))
        load = time.perf_counter() - start
        start = time.perf_counter()
        cur.execute(f"vacuum {table} to 100 percent")
        vac = time.perf_counter() - start
        print(f"{table}: loaded {args.rows:,} rows in {load:.1f} s, VACUUM {vac:.1f} s")

    rows = {}
    for table in ("li_sorted", "li_unsorted"):
        for name, sql in (("week", WEEK), ("full", FULL)):
            t, result, blocks = timed(cur, sql.format(table=table), args.runs)
            rows[(table, name)] = (t, result, blocks)
    assert rows[("li_sorted", "week")][1] == rows[("li_unsorted", "week")][1]
    assert rows[("li_sorted", "full")][1] == rows[("li_unsorted", "full")][1]

    print(f"\n{'table':<12} {'query':<6} {'median ms':>10} {'blocks scanned/total':>22} {'%':>7}")
    for (table, name), (t, _, (scanned, total)) in rows.items():
        print(f"{table:<12} {name:<6} {t * 1000:>10.1f} {f'{scanned}/{total}':>22} "
              f"{100.0 * scanned / total:>6.2f}%")
    week, full = rows[("li_sorted", "week")][0], rows[("li_sorted", "full")][0]
    unsorted_week = rows[("li_unsorted", "week")][0]
    print(f"\nsorted one-week range / sorted full scan: {week / full:.3f}x")
    print(f"sorted one-week range / unsorted one-week range: {week / unsorted_week:.3f}x")
    print(f"week rows: {rows[('li_sorted', 'week')][1][0][0]:,}")


if __name__ == "__main__":
    main()
