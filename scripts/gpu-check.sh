#!/usr/bin/env bash
# One call on a GPU machine (NVIDIA GPU, CUDA 13, cuDNN 9): checks that the
# model's vectors on CUDA match CPU within 1e-3 cosine distance on the golden
# strings, then prints embeddings/s on both providers at batch 1, 8, 32, 128.
#
#   scripts/gpu-check.sh
#
# It needs the artifacts (make artifacts, scripts/artifacts-gpu.sh); on a
# machine without registry access, fetch them elsewhere first and copy .cache/.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "gpu-check: nvidia-smi not found; the check will report the CPU fallback" >&2
[ -f .cache/models/multilingual-e5-small-q4/model.onnx ] || scripts/artifacts.sh
[ -f .cache/onnxruntime-gpu/libonnxruntime_providers_cuda.so ] || scripts/artifacts-gpu.sh

lib=$PWD/.cache/onnxruntime-gpu/libonnxruntime.so.1
# The CUDA provider is loaded from beside libonnxruntime; CUDA and cuDNN
# from the system's library path.
export LD_LIBRARY_PATH=$PWD/.cache/onnxruntime-gpu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
STREAMREC_GPU_LIBRARY=$lib go test ./pipeline/onnx -count=1 -v \
	-run '^TestCUDAMatchesCPU$' -bench '^BenchmarkProviders$' -benchtime 2s
