#!/usr/bin/env bash
# Exports the MovieLens latest-small ratings (the R object `movielens` of
# Debian's r-cran-dslabs 0.7.4) as CSV, for producers/movielens:
#
#   .cache/datasets/movielens/ratings.csv
#       100,004 ratings by 671 users of 9,066 movies, one a row, with the
#       header movieId,title,year,genres,userId,rating,timestamp
#
# Installs r-base-core and r-cran-dslabs with apt-get when Rscript or dslabs
# is missing, without recommended packages (R needs none of them to load
# dslabs). Measured on this Debian bookworm machine (2 cores, package lists
# fresh): the install took 9 to 11 s and added 36 packages, 99 MiB installed
# (108 MB on the disk): R, BLAS and r-cran-ggplot2 with its dependencies,
# which dslabs imports. The export itself takes about 0.5 s and writes
# 6.96 MB; a run with the CSV in place takes 0.01 s.
#
# Each step is skipped when its output is already there and right, so running
# this again is a cheap no-op. The CSV is written to a temporary file and
# renamed into place, and a lock serialises concurrent runs, so a reader never
# sees half a file. The path of the CSV is printed on stdout; logs go to
# stderr.
#
# Usage: scripts/movielens.sh            (run from anywhere)
# Env:   STREAMREC_CACHE   cache folder (default: <repo>/.cache)
set -euo pipefail

# ---- pins ---------------------------------------------------------------
ROWS=100004 # ratings in dslabs 0.7.4's movielens
# sha256 of the CSV that R 4.2.2 and dslabs 0.7.4 (bookworm) write; another
# version may write other bytes for the same data, so a mismatch only warns.
CSV_SHA256=beed7527ae257be11fd48e3c6fac7f0cd025799041674e2e869ea9cff97df65e

# ---- layout -------------------------------------------------------------
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${STREAMREC_CACHE:-$ROOT/.cache}
DIR=$CACHE/datasets/movielens
CSV=$DIR/ratings.csv

log() { echo "movielens: $*" >&2; }
die() { echo "movielens: ERROR: $*" >&2; exit 1; }

# rows FILE: the number of data rows of FILE (lines less the header). No
# title holds a line break, so lines are rows.
rows() { echo $(($(wc -l <"$1") - 1)); }

# csv_ok: true when the CSV is there with the right header and row count.
csv_ok() {
	[ -f "$CSV" ] &&
		[ "$(head -n1 "$CSV")" = '"movieId","title","year","genres","userId","rating","timestamp"' ] &&
		[ "$(rows "$CSV")" -eq "$ROWS" ]
}

have_dslabs() {
	command -v Rscript >/dev/null 2>&1 &&
		Rscript --vanilla -e 'quit(status = !requireNamespace("dslabs", quietly = TRUE))' >/dev/null 2>&1
}

START=$(date +%s)
if csv_ok; then
	log "ratings.csv: ok ($ROWS ratings)"
	echo "$CSV"
	exit 0
fi

mkdir -p "$DIR"
# One run at a time: two runs would both install and both export.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$DIR/.lock"
	flock 9
	# Another run may have finished the work while this one waited.
	if csv_ok; then
		log "ratings.csv: ok ($ROWS ratings, made by a concurrent run)"
		echo "$CSV"
		exit 0
	fi
fi

TMP=$(mktemp -d "$DIR/.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---- 1. R and dslabs (apt) -------------------------------------------------
if ! have_dslabs; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	command -v apt-get >/dev/null 2>&1 || die "Rscript with the dslabs package is required (Debian: apt-get install r-base-core r-cran-dslabs)"
	log "installing r-base-core r-cran-dslabs with apt-get (a few minutes)"
	t0=$(date +%s)
	used0=$(df -Pk / | awk 'NR == 2 { print $3 }')
	# The package lists may be missing or stale on a fresh machine. The lock
	# timeout waits for another apt-get (scripts/deps.sh) instead of failing.
	# apt's chatter goes to a log that is shown only when it fails.
	if ! {
		$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq &&
			$sudo env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
				apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
				r-base-core r-cran-dslabs
	} </dev/null >"$TMP/apt.log" 2>&1; then
		tail -n 20 "$TMP/apt.log" >&2
		die "apt-get install r-base-core r-cran-dslabs failed (log above)"
	fi
	used1=$(df -Pk / | awk 'NR == 2 { print $3 }')
	log "installed in $(($(date +%s) - t0)) s, $(((used1 - used0) / 1024)) MB more on /"
	have_dslabs || die "dslabs is still not loadable after installing r-cran-dslabs"
else
	log "Rscript and dslabs: ok"
fi

# ---- 2. ratings.csv ----------------------------------------------------------
log "ratings.csv: exporting dslabs::movielens"
# Rscript -e mangles a multi-line program, so it goes through a file.
cat >"$TMP/export.R" <<'R'
args <- commandArgs(trailingOnly = TRUE)
suppressPackageStartupMessages(library(dslabs))
data(movielens)
want <- as.integer(args[2])
if (nrow(movielens) != want) stop(sprintf("movielens has %d rows, want %d", nrow(movielens), want))
write.csv(movielens, args[1], row.names = FALSE, fileEncoding = "UTF-8")
R
Rscript --vanilla "$TMP/export.R" "$TMP/ratings.csv" "$ROWS" >&2
got=$(rows "$TMP/ratings.csv")
[ "$got" -eq "$ROWS" ] || die "exported $got rows, want $ROWS"
sha=$(sha256sum "$TMP/ratings.csv" | cut -d' ' -f1)
[ "$sha" = "$CSV_SHA256" ] || log "warning: ratings.csv has sha256 $sha, not the pinned $CSV_SHA256 (another R or dslabs version?)"
mv -f "$TMP/ratings.csv" "$CSV"
csv_ok || die "$CSV is not right after the export"

log "done in $(($(date +%s) - START)) s"
echo "$CSV"
