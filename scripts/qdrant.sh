#!/usr/bin/env bash
# scripts/qdrant.sh: a throwaway local Qdrant server for tests.
#
#   scripts/qdrant.sh install     unpack the pinned Qdrant server binary into
#                                 .cache/qdrant/qdrant (git-ignored) from
#                                 QDRANT_XZ (default: ../shared/tools/qdrant/
#                                 qdrant-VERSION-linux-x86_64.xz beside the
#                                 repository), checking the sha256 of the
#                                 archive and of the binary; idempotent, and a
#                                 no-op that says so when no binary is to be
#                                 had (nothing here can download one)
#   scripts/qdrant.sh bin         print the path of the binary start runs
#                                 (QDRANT_BIN when set, else the cached one,
#                                 unpacked first when needed); exit status 3
#                                 when there is none
#   scripts/qdrant.sh start DIR   start the server in the background on free
#                                 loopback ports with its storage, snapshots,
#                                 settings (DIR/env) and log under DIR, wait
#                                 until it answers (at most
#                                 QDRANT_START_TIMEOUT seconds, default 30),
#                                 write DIR/pid and print the gRPC address
#                                 127.0.0.1:<port> on stdout; exit status 3
#                                 when no binary is available
#       QDRANT_API_KEY=KEY        the server requires api-key KEY
#       QDRANT_TLS=1              gRPC and REST serve TLS with a certificate
#                                 for 127.0.0.1 signed by a throwaway CA
#                                 (DIR/tls/ca.pem)
#   scripts/qdrant.sh restart DIR start the stopped server of DIR again (same
#                                 settings, data and ports)
#   scripts/qdrant.sh stop DIR    stop the server started in DIR and wait for
#                                 it to exit
#
# DIR/env records the settings (QDRANT_GRPC_ADDR, QDRANT_HTTP_ADDR, and
# QDRANT_API_KEY / QDRANT_CA_FILE when set). Progress and errors go to
# stderr, so `addr=$(scripts/qdrant.sh start d)` captures only the address.
# A server already running from DIR is refused.
set -euo pipefail

VERSION=1.17.1
XZ_SHA256=ef59a774914778cf87d791a3497c66dd5546ef27e5c6951fe2021144a8a977a2
BIN_SHA256=19aed4375c2d19665500236744ca3543f610c3d29e007adf79f4cc2f03665520
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root/.cache/qdrant"
xz_file=${QDRANT_XZ:-$root/../shared/tools/qdrant/qdrant-$VERSION-linux-x86_64.xz}

# Exit status when no binary is available, so callers (qdranttest) can skip.
NO_BINARY=3

die() { echo "qdrant.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
note() { echo "qdrant.sh: $*" >&2; }

# cached_ok reports whether the cached binary runs and is VERSION.
cached_ok() {
	[ -x "$cache/qdrant" ] && [ "$("$cache/qdrant" --version 2>/dev/null)" = "qdrant $VERSION" ]
}

# unpack unpacks the archive into the cache; 1 when there is no archive.
unpack() {
	[ -f "$xz_file" ] || return 1
	[ "$(uname -m)" = x86_64 ] || die "$xz_file is a linux x86_64 build; this machine is $(uname -m)"
	local got
	got=$(sha256sum "$xz_file" | cut -d' ' -f1)
	[ "$got" = "$XZ_SHA256" ] || die "$xz_file: sha256 $got, want $XZ_SHA256"
	mkdir -p "$cache"
	local tmp
	tmp=$(mktemp "$cache/qdrant.XXXXXX")
	if ! xz -dc "$xz_file" >"$tmp"; then
		rm -f "$tmp"
		die "unpacking $xz_file failed"
	fi
	got=$(sha256sum "$tmp" | cut -d' ' -f1)
	if [ "$got" != "$BIN_SHA256" ]; then
		rm -f "$tmp"
		die "$xz_file unpacks to a binary with sha256 $got, want $BIN_SHA256"
	fi
	chmod 755 "$tmp"
	mv -f "$tmp" "$cache/qdrant" # atomic: a concurrent start sees the old or the new file
	note "Qdrant $VERSION unpacked into $cache/qdrant"
}

cmd_install() {
	if [ -n "${QDRANT_BIN:-}" ]; then
		[ -x "$QDRANT_BIN" ] || die "QDRANT_BIN=$QDRANT_BIN is not an executable file"
		note "QDRANT_BIN=$QDRANT_BIN is used; nothing to install"
		return 0
	fi
	cached_ok && return 0
	unpack && return 0
	note "no Qdrant binary: $xz_file is absent and QDRANT_BIN is unset; tests that need a Qdrant server will skip"
}

# server_bin prints the binary to run, unpacking it when needed; exit
# status NO_BINARY when there is none.
server_bin() {
	if [ -n "${QDRANT_BIN:-}" ]; then
		[ -x "$QDRANT_BIN" ] || die "QDRANT_BIN=$QDRANT_BIN is not an executable file"
		echo "$QDRANT_BIN"
		return
	fi
	if cached_ok || unpack; then
		echo "$cache/qdrant"
		return
	fi
	note "no Qdrant binary ($xz_file is absent and QDRANT_BIN is unset)"
	exit "$NO_BINARY"
}

cmd_start() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: qdrant.sh start DIR"
	local bin
	bin=$(server_bin) || exit $?
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if running "$dir"; then
		die "a server already runs from $dir (pid $(cat "$dir/pid"))"
	fi
	local grpc_port http_port
	{ read -r grpc_port && read -r http_port; } < <(free_ports 2)
	[ -n "$http_port" ] || die "no free ports found"
	mkdir -p "$dir/storage" "$dir/snapshots" "$dir/log"

	# Settings as Qdrant's environment variables; DIR holds them so that
	# restart brings the same server back. No config file: the built-in
	# defaults, and none of a config/ folder in some working directory.
	(
		umask 077
		cat >"$dir/env" <<EOF
QDRANT_GRPC_ADDR=127.0.0.1:$grpc_port
QDRANT_HTTP_ADDR=127.0.0.1:$http_port
QDRANT__SERVICE__HOST=127.0.0.1
QDRANT__SERVICE__GRPC_PORT=$grpc_port
QDRANT__SERVICE__HTTP_PORT=$http_port
QDRANT__STORAGE__STORAGE_PATH=$dir/storage
QDRANT__STORAGE__SNAPSHOTS_PATH=$dir/snapshots
QDRANT__TELEMETRY_DISABLED=true
QDRANT__LOG_LEVEL=${QDRANT_LOG_LEVEL:-INFO}
EOF
		if [ -n "${QDRANT_API_KEY:-}" ]; then
			printf 'QDRANT_API_KEY=%s\nQDRANT__SERVICE__API_KEY=%s\n' "$QDRANT_API_KEY" "$QDRANT_API_KEY" >>"$dir/env"
		fi
	)
	if [ "${QDRANT_TLS:-}" = 1 ]; then
		test_tls "$dir/tls"
		cat >>"$dir/env" <<EOF
QDRANT_CA_FILE=$dir/tls/ca.pem
QDRANT__SERVICE__ENABLE_TLS=true
QDRANT__TLS__CERT=$dir/tls/server.crt
QDRANT__TLS__KEY=$dir/tls/server.key
EOF
	fi
	launch "$bin" "$dir"
}

# launch BIN DIR starts the server with the settings of DIR/env and waits
# until its gRPC port accepts connections and its REST API says ready.
launch() {
	local bin=$1 dir=$2
	local start=$SECONDS t0
	t0=$(date +%s%N)
	# Qdrant writes .qdrant-initialized into its working directory.
	cd "$dir"
	# env -i: only DIR/env's settings (and PATH, HOME) reach the server, not
	# a QDRANT__* variable of the caller's. Started directly (not from a
	# subshell) so that $! is the server's pid; setsid keeps a terminal's
	# Ctrl-C away from it (it stops through stop).
	local -a envs=()
	mapfile -t envs < <(grep '^QDRANT__' "$dir/env")
	setsid env -i PATH="$PATH" HOME="${HOME:-/}" "${envs[@]}" "$bin" >>"$dir/log/qdrant.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/pid"

	local grpc http scheme=http
	grpc=$(sed -n 's/^QDRANT_GRPC_ADDR=//p' "$dir/env")
	http=$(sed -n 's/^QDRANT_HTTP_ADDR=//p' "$dir/env")
	grep -q '^QDRANT__SERVICE__ENABLE_TLS=true' "$dir/env" && scheme=https
	local timeout=${QDRANT_START_TIMEOUT:-30}
	local deadline=$((start + timeout))
	until port_open "${grpc##*:}" && ready "$scheme://$http/readyz" "$dir"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$dir/log/qdrant.log" >&2 2>/dev/null || true
			rm -f "$dir/pid"
			die "qdrant exited during start (log $dir/log/qdrant.log)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill "$pid" 2>/dev/null || true
			rm -f "$dir/pid"
			die "qdrant did not answer on $grpc within ${timeout}s (log $dir/log/qdrant.log)"
		fi
		sleep 0.02
	done
	note "Qdrant $VERSION on $grpc (gRPC), $http (REST), pid $pid, ready in $((($(date +%s%N) - t0) / 1000000)) ms"
	echo "$grpc"
}

# ready reports whether Qdrant's readiness endpoint (no API key needed)
# answers 200; without curl, an open port is taken as ready.
ready() {
	command -v curl >/dev/null 2>&1 || return 0
	local ca=()
	[ -f "$2/tls/ca.pem" ] && ca=(--cacert "$2/tls/ca.pem")
	curl -sf -o /dev/null --max-time 2 "${ca[@]}" "$1"
}

cmd_restart() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: qdrant.sh restart DIR"
	[ -f "$dir/env" ] || die "$dir/env is missing: start the server first"
	dir=$(cd "$dir" && pwd)
	if running "$dir"; then
		die "a server already runs from $dir (pid $(cat "$dir/pid"))"
	fi
	local bin
	bin=$(server_bin) || exit $?
	launch "$bin" "$dir"
}

cmd_stop() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: qdrant.sh stop DIR"
	stop_server "$dir" 20
}

case "${1:-}" in
install) cmd_install ;;
bin) server_bin ;;
start) cmd_start "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*) die "usage: qdrant.sh install | bin | start DIR | restart DIR | stop DIR" ;;
esac
