#!/usr/bin/env bash
# scripts/clickhouse.sh: a throwaway local ClickHouse server for tests.
#
#   scripts/clickhouse.sh install     install Debian's clickhouse-server and
#                                     clickhouse-client when clickhouse-server
#                                     is absent (idempotent; apt-get update only
#                                     when the first install attempt fails)
#   scripts/clickhouse.sh start DIR   write DIR/config.xml (free ports, every
#                                     path under DIR), start clickhouse-server in
#                                     the background, wait until its native port
#                                     answers (at most CLICKHOUSE_START_TIMEOUT
#                                     seconds, default 30), write DIR/pid and
#                                     print 127.0.0.1:<native port> on stdout
#   scripts/clickhouse.sh restart DIR start the stopped server of DIR again
#                                     (same config, data and ports)
#   scripts/clickhouse.sh stop DIR    stop the server started in DIR and wait
#                                     for it to exit
#
# Progress and errors go to stderr, so `addr=$(scripts/clickhouse.sh start d)`
# captures only the address. Works with Debian bookworm's 18.16 and newer
# releases (the config root is <yandex>, which current releases still accept).
set -euo pipefail

die() { echo "clickhouse.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

server_bin() {
	command -v clickhouse-server 2>/dev/null && return
	local p
	for p in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
		[ -x "$p" ] && { echo "$p"; return; }
	done
	return 1
}

cmd_install() {
	if server_bin >/dev/null; then
		return 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y clickhouse-server clickhouse-client >&2; then
		as_root apt-get update >&2
		as_root apt-get install -y clickhouse-server clickhouse-client >&2
	fi
	server_bin >/dev/null || die "clickhouse-server still absent after apt-get install"
}

cmd_start() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: clickhouse.sh start DIR"
	local bin
	bin=$(server_bin) || die "clickhouse-server is not installed (run: scripts/clickhouse.sh install)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if running "$dir"; then
		die "a server already runs from $dir (pid $(cat "$dir/pid"))"
	fi
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"

	local users=/etc/clickhouse-server/users.xml
	[ -f "$users" ] || die "$users is missing (is clickhouse-server installed?)"
	cp "$users" "$dir/users.xml"

	local tcp_port http_port
	{ read -r tcp_port && read -r http_port; } < <(free_ports 2)

	cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
EOF

	launch "$bin" "$dir" "$tcp_port"
}

# launch BIN DIR PORT starts the server of DIR/config.xml and waits for PORT.
launch() {
	local bin=$1 dir=$2 tcp_port=$3
	# setsid: the server does not belong to the caller's process group, so a
	# Ctrl-C in a terminal running `go test` reaches it only through stop.
	setsid "$bin" --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/pid"

	local timeout=${CLICKHOUSE_START_TIMEOUT:-30}
	local deadline=$((SECONDS + timeout))
	until port_open "$tcp_port"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$dir/log/clickhouse-server.err.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
			rm -f "$dir/pid"
			die "clickhouse-server exited during start (logs in $dir/log)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill "$pid" 2>/dev/null || true
			rm -f "$dir/pid"
			die "clickhouse-server did not answer on 127.0.0.1:$tcp_port within ${timeout}s (logs in $dir/log)"
		fi
		sleep 0.05
	done
	echo "127.0.0.1:$tcp_port"
}

# cmd_restart starts the server of DIR again after a stop, with its config,
# data and ports (the fault-injection tests stop and restart it mid-stream).
cmd_restart() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: clickhouse.sh restart DIR"
	[ -f "$dir/config.xml" ] || die "$dir/config.xml is missing: start the server first"
	if running "$dir"; then
		die "a server already runs from $dir (pid $(cat "$dir/pid"))"
	fi
	local bin tcp_port
	bin=$(server_bin) || die "clickhouse-server is not installed"
	tcp_port=$(sed -n 's:.*<tcp_port>\([0-9]*\)</tcp_port>.*:\1:p' "$dir/config.xml")
	launch "$bin" "$dir" "$tcp_port"
}

cmd_stop() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: clickhouse.sh stop DIR"
	stop_server "$dir" 20
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*) die "usage: clickhouse.sh install | start DIR | restart DIR | stop DIR" ;;
esac
