#!/usr/bin/env bash
# The one GPU check of the CUDA backend: builds the backend alone (bench/engine_cuda/gpu), runs the op test
# (CPU and CUDA backends vs fp64 references), a compute-sanitizer memcheck pass over the CUDA cases, and the
# op benchmarks in bf16 and fp32; everything goes to $OUT (or build/gpu-results).
#
# Two steps, because the GPU machine reaches no package registry:
#   here (dev machine):   bench/engine_cuda/run_gpu.sh fetch      # Debian OpenBLAS + GoogleTest into .gpudeps/
#   device run:           bash bench/engine_cuda/run_gpu.sh        # with carry [".gpudeps"]
# ARCH=90 (default) selects the CUDA architecture; JOBS the build parallelism.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PKGS="libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libgtest-dev"

if [[ ${1:-} == fetch ]]; then
  set -e
  mkdir -p "$ROOT/.gpudeps"
  cd "$ROOT/.gpudeps"
  rm -f ./*.deb
  apt-get download $PKGS
  # Keep the packages out of git (they travel as a carried path, not as tracked files).
  EXCL=$(git -C "$ROOT" rev-parse --git-path info/exclude)
  [[ $EXCL = /* ]] || EXCL="$ROOT/$EXCL"
  mkdir -p "$(dirname "$EXCL")"
  grep -qx '/.gpudeps/' "$EXCL" 2>/dev/null || echo '/.gpudeps/' >> "$EXCL"
  ls -la "$ROOT/.gpudeps"
  exit 0
fi

OUT=${OUT:-$ROOT/build/gpu-results}
mkdir -p "$OUT"
exec > >(tee "$OUT/run_gpu.log") 2>&1
TEE_PID=$!
echo "== $(date -u +%FT%TZ) $(uname -n)"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || echo "nvidia-smi failed"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$NVCC" --version | tail -1

DEPS=/tmp/k2deps
if [[ -d "$ROOT/.gpudeps" ]]; then
  mkdir -p "$DEPS"
  for f in "$ROOT"/.gpudeps/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$f" "$DEPS" || { echo "cannot unpack $f"; exit 1; }
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
      t=$(mktemp -d) && (cd "$t" && ar x "$f" && tar -xf data.tar.* -C "$DEPS") || { echo "cannot unpack $f"; exit 1; }
      rm -rf "$t"
    fi
  done
else
  echo "no .gpudeps/ (run 'run_gpu.sh fetch' here and carry .gpudeps): relying on system OpenBLAS/GoogleTest"
fi
export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:$DEPS/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-8}

B=${BUILD:-/tmp/k2gym-gpu-build}
echo "== configure + build ($B)"
cmake -S "$ROOT/bench/engine_cuda/gpu" -B "$B" -DK2_DEPS="$DEPS" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CUDA_ARCHITECTURES="${ARCH:-90}" -DCMAKE_CUDA_COMPILER="$NVCC" || exit 1
cmake --build "$B" -j"${JOBS:-$(nproc)}" || exit 1

echo "== op test"
"$B/engine_cuda_tests" --gtest_output="xml:$OUT/engine_cuda_tests.xml" 2>&1 | grep -vE '^\[ +(RUN|OK) +\]'
rc_test=${PIPESTATUS[0]}

echo "== compute-sanitizer memcheck (CUDA cases, shape 1)"
rc_mem=0
if command -v compute-sanitizer >/dev/null; then
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 3 --log-file "$OUT/memcheck.log" \
    "$B/engine_cuda_tests" --gtest_filter='*cuda_*_s1:Backend.*' >/dev/null 2>&1
  rc_mem=$?
  tail -3 "$OUT/memcheck.log"
else
  echo "compute-sanitizer not installed"
fi

echo "== benchmarks"
"$B/bench_engine_cuda" --dtype bf16 --json "$OUT/bench_bf16.json"
rc_b1=$?
"$B/bench_engine_cuda" --dtype fp32 --json "$OUT/bench_fp32.json"
rc_b2=$?
echo "== exit codes: test=$rc_test memcheck=$rc_mem bench_bf16=$rc_b1 bench_fp32=$rc_b2"
rc=0
[[ $rc_test == 0 && $rc_mem == 0 && $rc_b1 == 0 && $rc_b2 == 0 ]] || rc=1
# Let tee drain so the caller sees the last lines.
exec 1>&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit $rc
