"""Filters judged on encoded blocks, over the wire against a running `basalt local`.

The same 6M rows twice, once with a BYTEDICT `color` column and once with LZO, sorted by
`id`, with colors mixed in every block so that zone maps ('blue'..'red') cannot rule out
'green'. On the BYTEDICT table the scan judges `color = 'green'` on each block's
dictionary and skips blocks without a match before decoding anything; on the LZO table
it decodes every block. Reports medians and the BYTEDICT/LZO ratio.

    python3 bench/encoded_filter.py --port 5439 [--rows 6000000] [--runs 7]
"""

import argparse
import statistics
import time

from basalt_conn import add_connection_args, connect


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    add_connection_args(ap)
    ap.add_argument("--rows", type=int, default=6_000_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    conn = connect(args)
    cur = conn.cursor()
    green_from = args.rows * 5 // 6
    medians, results = {}, {}
    for enc in ("bytedict", "lzo"):
        cur.execute(f"drop table if exists ef_{enc}")
        cur.execute(f"create table ef_{enc} (id bigint encode az64, color varchar(8) encode {enc}, "
                    "amount decimal(12,2) encode az64, note varchar(40) encode lzo) "
                    "diststyle even sortkey(id)")
        cur.execute(f"insert into ef_{enc} select value, case when value > {green_from} then 'green' "
                    "when value % 3 = 0 then 'blue' else 'red' end, cast(value % 10000 as decimal(12,2)), "
                    f"'note ' || cast(value % 977 as varchar) from generate_series(1, {args.rows})")
    for enc in ("bytedict", "lzo"):
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            cur.execute(f"select count(*), sum(amount), max(note) from ef_{enc} where color = 'green'")
            results[enc] = cur.fetchall()
            times.append(time.perf_counter() - start)
        cur.execute("select sum(blocks_scanned), sum(blocks_total) from stl_scan "
                    "where query = pg_last_query_id()")
        scanned, total = cur.fetchone()
        medians[enc] = statistics.median(times)
        print(f"{enc:<9} median {medians[enc] * 1000:8.1f} ms   zone maps kept {scanned}/{total} blocks")
    assert results["bytedict"] == results["lzo"], results
    print(f"BYTEDICT / LZO: {medians['bytedict'] / medians['lzo']:.2f}x")


if __name__ == "__main__":
    main()
