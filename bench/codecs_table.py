#!/usr/bin/env python3
"""One table of the codec bench's results: encode and decode throughput (MB/s of Arrow
data, from criterion's mean time per iteration) per lineitem column and encoding, joined
with the encoded sizes the bench prints before timing.

Reads criterion's results under $CARGO_TARGET_DIR/criterion (default ./target/criterion),
left by `cargo bench -p basalt-storage --bench codecs`; with --log, also the size table from
that run's output. Prints Markdown.

    cargo bench -p basalt-storage --bench codecs | tee /tmp/codecs.log
    python3 bench/codecs_table.py --log /tmp/codecs.log
"""
import argparse
import json
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ["l_orderkey", "l_quantity", "l_extendedprice", "l_shipdate", "l_returnflag",
           "l_shipmode", "l_comment"]
ENCODINGS = ["RAW", "LZO", "ZSTD", "AZ64", "BYTEDICT", "RUNLENGTH", "DELTA", "DELTA32K",
             "MOSTLY8", "MOSTLY16", "MOSTLY32", "TEXT255", "TEXT32K"]
# A line of the bench's size table: column, encoding, arrow bytes, encoded bytes, /RAW,
# fallback blocks.
SIZE_LINE = re.compile(r"^(l_\w+)\s+([A-Z0-9]+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+/\d+)\s*$")


def throughputs(criterion_dir):
    """{(column, direction, encoding): MB/s} from criterion's saved estimates."""
    out = {}
    for bench in criterion_dir.glob("*/*/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        direction, _, encoding = meta["function_id"].partition("/")
        nbytes = meta["throughput"]["BytesDecimal"]
        mean_ns = json.loads((bench.parent / "estimates.json").read_text())["mean"][
            "point_estimate"]
        out[(meta["group_id"], direction, encoding)] = nbytes / mean_ns * 1e3
    return out


def sizes(log):
    out = {}
    for line in Path(log).read_text().splitlines():
        m = SIZE_LINE.match(line)
        if m:
            out[(m[1], m[2])] = (int(m[4]), float(m[5]), m[6])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", help="output of the codecs bench, for the encoded sizes")
    args = ap.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    tp = throughputs(target / "criterion")
    sz = sizes(args.log) if args.log else {}
    print("| column | encoding | encoded bytes | /RAW | LZO fallback blocks "
          "| encode MB/s | decode MB/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for col in COLUMNS:
        for enc in ENCODINGS:
            enc_tp = tp.get((col, "encode", enc))
            dec_tp = tp.get((col, "decode", enc))
            if enc_tp is None and (col, enc) not in sz:
                continue
            size, ratio, fallbacks = sz.get((col, enc), ("", "", ""))
            fmt = lambda v: "" if v is None else f"{v:,.0f}"
            ratio = f"{ratio:.3f}" if ratio != "" else ""
            print(f"| {col} | {enc} | {size} | {ratio} | {fallbacks} | {fmt(enc_tp)} "
                  f"| {fmt(dec_tp)} |")


if __name__ == "__main__":
    main()
