#!/usr/bin/env bash
# scripts/chdb.sh: the current ClickHouse engine, in process, for tests.
#
#   scripts/chdb.sh install   make .cache/chdb/venv, a Python venv holding
#                             chdb-core (ClickHouse 26.9 as a Python module,
#                             from PyPI; pinned by version and sha256),
#                             unless it is already there and holds that pin:
#                             running it again is a no-op of a few ms
#   scripts/chdb.sh python    print the venv's python (fails when not
#                             installed); scripts/chdb_query.py runs on it
#
# No current ClickHouse server installs on Debian bookworm (it ships 18.16),
# but its engine does: PyPI's chdb-core is the engine and the session API
# (`from chdb import session`). The package named chdb (4.4.0) is a 1.7 MB
# layer of pandas-style helpers over chdb-core 26.9.0 that also pulls pandas
# and pyarrow; the tests need neither, so only chdb-core is installed, with
# --no-deps. docs/analyticsdoc runs every migration and every query of
# docs/analytics.md on it (STREAMREC_REQUIRE_CHDB=1 makes a missing venv a
# test failure instead of a skip).
#
# Env: STREAMREC_CACHE  cache folder (default: <repo>/.cache)
set -euo pipefail

# ---- pin ------------------------------------------------------------------
# The manylinux2014 x86_64 wheel (181.5 MB; 559 MB installed, nearly all of
# it chdb/_chdb.abi3.so). Another platform needs its wheel's sha256 added as
# a second --hash.
CHDB_CORE_VERSION=26.9.0
CHDB_CORE_SHA256=707e2ec3fe0f7953bac97942eaeb7a1ed1d66b1e56ecef3f0aa2130f61f6e735

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${STREAMREC_CACHE:-$root/.cache}
home=$cache/chdb
venv=$home/venv
pin="chdb-core==$CHDB_CORE_VERSION --hash=sha256:$CHDB_CORE_SHA256"

die() { echo "chdb.sh: $*" >&2; exit 1; }

# installed: the venv exists and its stamp, written last, names this pin.
installed() {
	[ -x "$venv/bin/python" ] && [ "$(cat "$venv/.pin" 2>/dev/null)" = "$pin" ]
}

cmd_install() {
	installed && return 0
	mkdir -p "$home"
	# One install at a time: two make targets may start together.
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$home/.lock"
		flock 9
		installed && return 0
	fi
	[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] ||
		die "only the Linux x86_64 wheel of chdb-core $CHDB_CORE_VERSION is pinned (this is $(uname -s)/$(uname -m))"
	command -v python3 >/dev/null 2>&1 || die "python3 is required (scripts/deps.sh installs it)"
	local start=$SECONDS
	echo "chdb.sh: installing chdb-core $CHDB_CORE_VERSION (ClickHouse 26.9) into $venv" >&2
	rm -rf "$venv"
	python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
	printf '%s\n' "$pin" >"$home/requirements.txt"
	# --require-hashes: pip refuses a wheel whose sha256 is not the pinned one.
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
		--only-binary :all: --require-hashes -r "$home/requirements.txt" >&2 ||
		die "pip could not install chdb-core==$CHDB_CORE_VERSION"
	"$venv/bin/python" -c 'from chdb import session' ||
		die "chdb-core $CHDB_CORE_VERSION installed but does not import"
	printf '%s\n' "$pin" >"$venv/.pin"
	echo "chdb.sh: chdb-core $CHDB_CORE_VERSION in $((SECONDS - start)) s" >&2
}

case ${1:-} in
install) cmd_install ;;
python)
	installed || die "chdb-core $CHDB_CORE_VERSION is not installed (run: scripts/chdb.sh install)"
	echo "$venv/bin/python"
	;;
*) die "usage: chdb.sh install|python" ;;
esac
