# shellcheck shell=bash
# scripts/lib.sh: what the test-server scripts (clickhouse.sh, kafka.sh,
# qdrant.sh) share. Sourced, not run; the sourcing script defines die.

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N prints N distinct TCP ports on 127.0.0.1 that nothing listens
# on now, one a line.
free_ports() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])
for s in socks: s.close()' "$1"
		return
	fi
	local p got=()
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! port_open "$p" && [[ " ${got[*]} " != *" $p "* ]]; then
			got+=("$p")
			[ "${#got[@]}" -ge "$1" ] && { printf '%s\n' "${got[@]}"; return; }
		fi
	done
	die "no free port found"
}

# running DIR reports whether the server whose pid is in DIR/pid is alive.
running() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# stop_server DIR SECONDS stops the server whose pid is in DIR/pid: SIGTERM,
# up to SECONDS for a clean shutdown, then SIGKILL; removes DIR/pid.
stop_server() {
	local dir=$1 seconds=$2 pid
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq 1 $((seconds * 10))); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/pid"
}

# test_tls DIR writes a throwaway CA (DIR/ca.pem) and a certificate for
# 127.0.0.1 and localhost signed by it (DIR/server.crt, DIR/server.key).
test_tls() {
	local tls=$1
	command -v openssl >/dev/null 2>&1 || die "TLS needs openssl"
	mkdir -p "$tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=streamrec test CA" \
		-keyout "$tls/ca.key" -out "$tls/ca.pem" >/dev/null 2>&1
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext"
	openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
		-extfile "$tls/san.ext" -out "$tls/server.crt" >/dev/null 2>&1
}
