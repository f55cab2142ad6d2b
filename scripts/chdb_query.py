"""Runs SQL on the current ClickHouse engine (chdb) for a caller on a pipe.

Usage: python chdb_query.py DIR   (the python of `scripts/chdb.sh python`)

Opens one chdb session whose MergeTree tables live in DIR, then reads
requests from stdin, one JSON object a line:

    {"sql": "SELECT ...", "format": "JSONCompact"}

and answers each with one JSON line on stdout, in order:

    {"data": "<the result, as text in that format>"}   or   {"error": "..."}

"format" defaults to JSONCompact; a statement with no result (DDL, an
INSERT with its rows inline after FORMAT JSONEachRow) answers {"data": ""}.
The first line it writes, before reading anything, is
{"ready": "<chdb-core version>"}, or {"error": ...} when the session cannot
open. It stops at the end of stdin. docs/analyticsdoc drives it.
"""

import json
import sys


def main():
    out = sys.stdout
    if len(sys.argv) != 2:
        print("usage: chdb_query.py DIR", file=sys.stderr)
        return 2
    try:
        import chdb
        from chdb import session

        sess = session.Session(sys.argv[1])
    except Exception as e:  # the caller reads why, and skips or fails
        out.write(json.dumps({"error": f"chdb: {type(e).__name__}: {e}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": chdb.__version__}) + "\n")
    out.flush()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
                res = sess.query(req["sql"], req.get("format", "JSONCompact"))
                text = res.bytes().decode("utf-8") if res is not None else ""
                reply = {"data": text}
            except Exception as e:
                reply = {"error": f"{type(e).__name__}: {e}"}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        sess.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
