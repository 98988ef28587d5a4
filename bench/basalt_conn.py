"""The connection options every bench script shares, and the connection they open to a
running `basalt local` (database `dev`, autocommit)."""

import psycopg


def add_connection_args(ap):
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5439)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="basalt")


def connect(args):
    return psycopg.connect(host=args.host, port=args.port, user=args.user,
                           password=args.password, dbname="dev", autocommit=True)
