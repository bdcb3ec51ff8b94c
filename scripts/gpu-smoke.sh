#!/usr/bin/env bash
# First contact with a GPU machine in one short command (the long version is run-gpu-suite.sh).
# From the bundle made by `dotnet cake --target=Bundle` (artifacts/taskmerge-bundle-linux-x64.tar.xz):
#   tar xJf taskmerge-bundle-linux-x64.tar.xz && bundle/gpu-smoke.sh [RESULTS_DIR]
# Needs only the NVIDIA driver and, for cuBLAS/cuSOLVER, the CUDA libraries (system, CUDA_PATH or pip
# wheels); no .NET, no network. Each step is capped by `timeout` so the whole run, unpacking included,
# stays within 8 minutes on an H100 (caps: GPU tests 240 s, each benchmark 75 s or less; 435 s in all).
# Writes into RESULTS_DIR (default ./gpu-smoke-results):
#   device.txt    GPU, driver, CUDA libraries the loader and the usual folders hold, host, bundle commit
#   gpu-tests.*   the GPU test classes (TaskMerge.Engine.Tests.Gpu): xml, markdown, log with timings
#   wudi.md       WUDI on a ViT-B/32-shaped zoo, 8 experts, 300 Adam steps (e2e-wudi)
#   ties.md       TIES end to end: write a synthetic ViT-B/32-shaped zoo, merge it (e2e-ties)
#   clip.md       CLIP ViT-B/32 image-tower forward, batch 128 (e2e-clip-forward)
#   summary.txt   one line per step: name, exit status (124 = hit its cap), seconds; then the device verdict
# Exit status: 0 when every step exited 0, else 1. Without a GPU the tests skip with the reason and the
# benchmarks say CUDA is unavailable; summary.txt then ends with "device: none".
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
results="$(mkdir -p "${1:-$PWD/gpu-smoke-results}" && cd "${1:-$PWD/gpu-smoke-results}" && pwd)"
bin="$here/bin"
scratch="$results/scratch"
layers="${SMOKE_TIES_LAYERS:-6}"
mkdir -p "$scratch"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=1
: > "$results/summary.txt"
failed=0

step() { # step NAME CAP_SECONDS OUTPUT_FILE COMMAND...: runs COMMAND under timeout, tees its output, records status and time
  local name="$1" cap="$2" out="$3"; shift 3
  echo "== $name (cap ${cap}s)"
  local start=$SECONDS
  timeout --kill-after=10 "$cap" "$@" > >(tee "$out") 2>&1
  local rc=$?
  local note=""
  [ "$rc" -eq 124 ] && note=" (hit the ${cap}s cap)"
  [ "$rc" -eq 127 ] && note=" (command not found)"
  printf '%-28s exit %3d  %4ds%s\n' "$name" "$rc" "$((SECONDS - start))" "$note" >> "$results/summary.txt"
  [ "$rc" -eq 0 ] || failed=1
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "bundle commit: $(cat "$here/COMMIT" 2>/dev/null || echo unknown)"
  echo "host: $(hostname), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
  echo "kernel: $(uname -r)"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv
    echo "CUDA (driver): $(nvidia-smi | grep -o 'CUDA Version: *[0-9.]*' | head -1 | sed 's/CUDA Version: *//')"
  else
    echo "nvidia-smi: not available"
  fi
  echo "CUDA_PATH=${CUDA_PATH:-} CUDA_HOME=${CUDA_HOME:-} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "libraries the loader knows:"
  ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas\.so|libcusolver\.so' | sed 's/^/  /'
  echo "libraries in CUDA folders and pip wheels:"
  ls -1 "${CUDA_PATH:-/usr/local/cuda}"/lib64/libcublas.so.* "${CUDA_PATH:-/usr/local/cuda}"/lib64/libcusolver.so.* \
    /usr/local/lib/python3*/dist-packages/nvidia/*/lib/lib{cublas,cusolver}.so.* \
    "$HOME"/.local/lib/python3*/site-packages/nvidia/*/lib/lib{cublas,cusolver}.so.* 2>/dev/null | sed 's/^/  /'
  echo "(the engine's own choice, with versions and engines, is in gpu-tests.log: NamesTheDeviceAndTheMatrixEngine)"
} > "$results/device.txt"
cat "$results/device.txt"

step "GPU tests" 240 "$results/gpu-tests.log" "$bin/TaskMerge.Engine.Tests" -namespace TaskMerge.Engine.Tests.Gpu -showLiveOutput \
  -result-xml "$results/gpu-tests.xml" -result-markdown "$results/gpu-tests.md"
B="$bin/TaskMerge.Bench"
step "WUDI ViT-B/32 8 experts" 75 "$results/wudi.md" "$B" e2e-wudi --device cuda --experts 8 --iters 300
step "TIES e2e ($layers layers)" 75 "$results/ties.md" "$B" e2e-ties "$scratch/zoo" "$layers" cuda ties
step "CLIP ViT-B/32 forward" 45 "$results/clip.md" "$B" e2e-clip-forward 128 3 cuda
rm -rf "$scratch"

if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  echo "device: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" >> "$results/summary.txt"
else
  echo "device: none (GPU tests skipped, benchmarks report CUDA unavailable)" >> "$results/summary.txt"
fi
cat "$results/summary.txt"
echo "results in $results"
exit $failed
