#!/usr/bin/env bash
# Runs the GPU tests and benchmarks from the self-contained bundle made by
#   dotnet cake --target=Bundle   (artifacts/taskmerge-bundle-linux-x64.tar.xz)
# on a machine with only the NVIDIA driver and CUDA libraries: no .NET, no network.
# Usage: tar xJf taskmerge-bundle-linux-x64.tar.xz && bundle/run-gpu-suite.sh RESULTS_DIR
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
results="${1:-$here/results}"
mkdir -p "$results"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=1
{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
  nvcc --version 2>/dev/null | tail -1
  ls /usr/local/cuda*/lib64/libcublas.so.* 2>/dev/null | head -3
} > "$results/device.txt"

"$here/bin/TaskMerge.Engine.Tests" -namespace TaskMerge.Engine.Tests.Gpu -xml "$results/gpu-tests.xml" 2>&1 | tee "$results/gpu-tests.log"
tests_rc=${PIPESTATUS[0]}
"$here/bin/TaskMerge.Engine.Tests" -xml "$results/all-tests.xml" 2>&1 | tail -5 | tee "$results/all-tests.log"

(cd "$results" && "$here/bin/TaskMerge.Bench" --filter '*' --inProcess --exporters markdown 2>&1 | tee "$results/bench.log")
"$here/bin/TaskMerge.Bench" e2e-ties "$results/ties-zoo" 20 cuda 2>&1 | tee "$results/e2e-ties-cuda.log"
"$here/bin/TaskMerge.Bench" e2e-ties "$results/ties-zoo" 20 cpu 2>&1 | tee "$results/e2e-ties-cpu.log"
rm -rf "$results/ties-zoo"
exit $tests_rc
