#!/usr/bin/env bash
# Fetches ONNX Runtime with its CUDA execution provider into .cache/onnxruntime-gpu/:
# libonnxruntime.so.1 from npm onnxruntime-node@1.29.0 and the CUDA provider
# libraries for ORT 1.29 from npm com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9.
# At run time they need CUDA 13 and cuDNN 9 (a GPU machine's drivers and
# libraries). Pinned by sha256; idempotent. Used by scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

dl=.cache/downloads
out=.cache/onnxruntime-gpu
mkdir -p "$dl" "$out"

fetch() { # npm-spec file sha256
	local spec=$1 file=$2 sum=$3
	if [ ! -f "$dl/$file" ] || ! echo "$sum  $dl/$file" | sha256sum -c --status; then
		echo "artifacts-gpu: npm pack $spec" >&2
		tmp=$(mktemp -d)
		(cd "$tmp" && npm pack --silent "$spec" >/dev/null)
		mv "$tmp/$file" "$dl/$file"
		rm -rf "$tmp"
	fi
	echo "$sum  $dl/$file" | sha256sum -c --status || { echo "artifacts-gpu: sha256 mismatch for $dl/$file" >&2; exit 1; }
}

fetch onnxruntime-node@1.29.0 onnxruntime-node-1.29.0.tgz cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037
fetch com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz 2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412

if [ ! -f "$out/libonnxruntime_providers_cuda.so" ] || [ ! -f "$out/libonnxruntime.so.1" ]; then
	echo "artifacts-gpu: extracting into $out" >&2
	tar xzf "$dl/onnxruntime-node-1.29.0.tgz" -C "$out" --strip-components=5 package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	tar xzf "$dl/com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz" -C "$out" --strip-components=4 \
		package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so \
		package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
fi
echo "artifacts-gpu: ready in $out" >&2
