#!/usr/bin/env bash
# Runs the GPU tests and benchmarks from the self-contained bundle made by
#   dotnet cake --target=Bundle   (artifacts/taskmerge-bundle-linux-x64.tar.xz)
# on a machine with only the NVIDIA driver and CUDA libraries: no .NET, no network.
# Usage: tar xJf taskmerge-bundle-linux-x64.tar.xz && bundle/run-gpu-suite.sh RESULTS_DIR [SCRATCH_DIR]
#
# Writes into RESULTS_DIR:
#   device.txt            GPU, driver, CUDA version, libraries found, host, bundle commit
#   gpu-tests.xml/.md/.log the GPU test class (TaskMerge.Engine.Tests.Gpu), the log with the timings it prints
#   all-tests.xml/.log    the whole test suite on this machine
#   bench/results/*.md    BenchmarkDotNet: device kernels vs D2D copy, top-k, GEMM vs cuBLAS, cuSOLVER, CPU GEMM
#   e2e-*.md              end-to-end runs (TIES / TA / WUDI merges of a >= 5 GB zoo vs reading the files, in-memory
#                         WUDI, spectral, AWD, CLIP forward)
#   summary.txt           exit status of every step
# SCRATCH_DIR (default RESULTS_DIR/scratch) holds the synthetic zoo (~6.4 GB for the default 20 layers;
# E2E_LAYERS overrides) and merge outputs; it is deleted at the end. Set TASKMERGE_TF32=1 to let cuBLAS use TF32.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
results="$(mkdir -p "${1:-$here/results}" && cd "${1:-$here/results}" && pwd)"
scratch="${2:-$results/scratch}"
layers="${E2E_LAYERS:-20}"
bin="$here/bin"
mkdir -p "$scratch"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=1
: > "$results/summary.txt"

step() { # step NAME OUTPUT_FILE COMMAND...: runs COMMAND, tees its output, records its exit status
  local name="$1" out="$2"; shift 2
  echo "== $name" | tee -a "$results/summary.txt"
  "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  echo "   exit $rc" >> "$results/summary.txt"
  return "$rc"
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "bundle commit: $(cat "$here/COMMIT" 2>/dev/null || echo unknown)"
  echo "host: $(hostname), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "kernel: $(uname -r)"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max,clocks.max.sm,clocks.max.mem --format=csv
    echo "CUDA (driver): $(nvidia-smi | grep -o 'CUDA Version: *[0-9.]*' | head -1 | sed 's/CUDA Version: *//')"
  else
    echo "nvidia-smi: not available"
  fi
  if command -v nvcc > /dev/null; then echo "nvcc: $(nvcc --version | tail -1)"; fi
  echo "CUDA_HOME=${CUDA_HOME:-} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "libraries the loader knows:"
  ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas\.so|libcusolver\.so' | sed 's/^/  /'
  ls -1 "${CUDA_HOME:-/usr/local/cuda}"/lib64/libcublas.so.* "${CUDA_HOME:-/usr/local/cuda}"/lib64/libcusolver.so.* 2>/dev/null | sed 's/^/  /'
  echo "native LAPACK for the CPU backend: $(ldconfig -p 2>/dev/null | grep -oE 'libopenblas\.so\.0|liblapack\.so\.3' | head -1 | grep . || echo none, managed fallback)"
} > "$results/device.txt"
cat "$results/device.txt"

step "GPU tests" "$results/gpu-tests.log" "$bin/TaskMerge.Engine.Tests" -namespace TaskMerge.Engine.Tests.Gpu -showLiveOutput -result-xml "$results/gpu-tests.xml" -result-markdown "$results/gpu-tests.md"
tests_rc=$?
step "all tests" "$results/all-tests.log" "$bin/TaskMerge.Engine.Tests" -result-xml "$results/all-tests.xml"

# BenchmarkDotNet (in-process: the assembly name differs from the project name); markdown under bench/results.
(cd "$scratch" && step "BenchmarkDotNet" "$results/bench.log" "$bin/TaskMerge.Bench" --filter '*' --inProcess --exporters markdown --artifacts "$results/bench")

B="$bin/TaskMerge.Bench"
step "e2e TIES cuda (${layers} layers)" "$results/e2e-ties-cuda.md" "$B" e2e-ties "$scratch/zoo" "$layers" cuda ties
step "e2e task arithmetic cuda" "$results/e2e-ta-cuda.md" "$B" e2e-ties "$scratch/zoo" "$layers" cuda task_arithmetic
step "e2e WUDI merge cuda (pipelined loads)" "$results/e2e-wudi-merge-cuda.md" "$B" e2e-ties "$scratch/zoo" "$layers" cuda wudi
step "e2e TIES cpu" "$results/e2e-ties-cpu.md" "$B" e2e-ties "$scratch/zoo" "$layers" cpu ties
rm -rf "$scratch/zoo"
step "e2e WUDI cuda (300 steps)" "$results/e2e-wudi-cuda.md" "$B" e2e-wudi --device cuda --iters 300
step "e2e WUDI cpu (5 steps measured)" "$results/e2e-wudi-cpu.md" "$B" e2e-wudi --device cpu --iters 300 --measure-iters 5
step "e2e spectral cuda" "$results/e2e-spectral-cuda.md" "$B" e2e-spectral --device cuda
step "e2e spectral cpu (native LAPACK)" "$results/e2e-spectral-cpu.md" "$B" e2e-spectral --device cpu --providers native
step "e2e AWD cuda" "$results/e2e-awd-cuda.md" "$B" e2e-awd 8 300 gd cuda model
step "e2e CLIP forward cuda" "$results/e2e-clip-forward-cuda.md" "$B" e2e-clip-forward 128 5 cuda
step "e2e RI step cuda (fp32)" "$results/e2e-ri-step-cuda.md" "$B" e2e-ri-step 128 5 cuda
step "e2e RI step cuda (TF32)" "$results/e2e-ri-step-cuda-tf32.md" env TASKMERGE_TF32=1 "$B" e2e-ri-step 128 5 cuda
if command -v python3 >/dev/null && python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  step "PyTorch eager RI step cuda (fp32, reference)" "$results/torch-ri-step-cuda.json" python3 "$here/reference/ri_step_torch.py" --device cuda --batch 128 --steps 5
  step "PyTorch eager RI step cuda (TF32, reference)" "$results/torch-ri-step-cuda-tf32.json" env NVIDIA_TF32_OVERRIDE=1 python3 "$here/reference/ri_step_torch.py" --device cuda --batch 128 --steps 5 --tf32
fi

rm -rf "$scratch"
echo "results in $results"
exit $tests_rc
