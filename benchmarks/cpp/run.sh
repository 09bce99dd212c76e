#!/usr/bin/env bash
# Builds and runs the C++ microbenchmarks, then prints pybackprop's GEMM
# GFLOP/s next to NumPy's OpenBLAS sgemm/dgemm measured in the same run.
#
#   benchmarks/cpp/run.sh                      # everything, 1 and 2 threads
#   THREADS="1" FILTER='gemm/f32' benchmarks/cpp/run.sh
#   MIN_TIME=0.1 REPS=1 benchmarks/cpp/run.sh  # quicker, noisier
#
# The machine is shared and noisy: each benchmark runs REPS times (default 3)
# and the comparison takes the best repetition, as it takes NumPy's best time.
#
# Google Benchmark is Debian's libbenchmark-dev (installed here if missing,
# never downloaded by the build). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are
# unset for this script only: they slow OpenBLAS on our benchmark machine.
set -euo pipefail
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build/bench}"
THREADS="${THREADS:-1 2}"
FILTER="${FILTER:-.}"
MIN_TIME="${MIN_TIME:-0.3}"
REPS="${REPS:-3}"
PYTHON="${PYTHON:-python3}"

if ! dpkg -s libbenchmark-dev >/dev/null 2>&1; then
  echo "== installing libbenchmark-dev"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libbenchmark-dev
fi

echo "== building in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYBACKPROP_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD" --target pybackprop_bench >/dev/null
BENCH="$BUILD/benchmarks/cpp/pybackprop_bench"

for t in $THREADS; do
  echo "== pybackprop_bench --threads=$t"
  "$BENCH" --threads="$t" --benchmark_filter="$FILTER" --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions="$REPS" \
    --benchmark_out="$BUILD/results-t$t.json" --benchmark_out_format=json
done

echo "== GEMM against NumPy's OpenBLAS (same run)"
"$PYTHON" "$ROOT/benchmarks/cpp/compare_openblas.py" --threads $THREADS --results "$BUILD"
