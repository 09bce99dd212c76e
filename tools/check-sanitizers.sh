#!/usr/bin/env bash
# Builds the extension with AddressSanitizer + UndefinedBehaviorSanitizer in a
# separate build directory (build/asan), installs it into a temporary copy of
# the package, and runs a fast subset of the test suite under it. Fails on any
# sanitizer report (or any test failure).
#
#   tools/check-sanitizers.sh                 # default subset
#   tools/check-sanitizers.sh tests/test_io.py -k roundtrip   # other pytest args
#
# Environment: PYTHON (default python), CXX (default g++), BUILD_DIR
# (default build/asan), KEEP=1 keeps the temporary directory.
#
# Leak detection is off (ASAN_OPTIONS=detect_leaks=0): CPython keeps
# interned objects and module state alive at exit by design, which LSan
# reports as leaks that are not the project's. Leaks of the core are covered
# by tests/test_memory.py (RSS flat over 1,000 epochs) and by valgrind
# (tools/valgrind-train.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
CXX=${CXX:-g++}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/asan}
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=vptr"

PYBIND11_DIR=$("$PYTHON" -c "import pybind11; print(pybind11.get_cmake_dir())")
PYEXE=$("$PYTHON" -c "import sys; print(sys.executable)")
VERSION=$("$PYTHON" -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['project']['version'])" \
          "$ROOT/pyproject.toml" 2>/dev/null || echo 0.0.0)

echo "== configuring $BUILD_DIR (ASan + UBSan, $CXX)"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
  -DSKBUILD=ON -DSKBUILD_PROJECT_VERSION="$VERSION" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" \
  -DPython_EXECUTABLE="$PYEXE" \
  -Dpybind11_DIR="$PYBIND11_DIR" \
  -DCMAKE_CXX_FLAGS="$SAN_FLAGS" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
echo "== building"
ninja -C "$BUILD_DIR" _core

SO=$(ls "$BUILD_DIR"/_core*.so | head -n 1)
SYMS=$(nm -D "$SO")
if [[ "$SYMS" != *__asan_init* || "$SYMS" != *__ubsan_handle* ]]; then
  echo "$SO is not instrumented (no __asan/__ubsan symbols)" >&2
  exit 2
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pybackprop-asan.XXXXXX")
cleanup() { if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$TMP"; else echo "kept $TMP"; fi; }
trap cleanup EXIT
cp -r "$ROOT/src/pybackprop" "$TMP/pybackprop"
rm -f "$TMP"/pybackprop/_core*.so
cp "$SO" "$TMP/pybackprop/"
mkdir -p "$TMP/logs"

LIBASAN=$("$CXX" -print-file-name=libasan.so)
if [[ ! -e "$LIBASAN" ]]; then
  echo "libasan.so not found for $CXX" >&2
  exit 2
fi
# libstdc++ preloaded too: ASan intercepts __cxa_throw and must find the real one at start-up
# (python itself does not link libstdc++), or the first C++ exception aborts in a CHECK.
LIBSTDCXX=$("$CXX" -print-file-name=libstdc++.so)
PRELOAD="$LIBASAN $(readlink -f "$LIBSTDCXX")"

if [[ $# -eq 0 ]]; then
  # RSS checks are meaningless under ASan (quarantine, shadow memory): -k excludes them.
  # test_sample_step and test_kernels: the fused per-sample step's AVX2 kernel, which reads
  # and writes whole 8-float chunks of padded blocks, and every table's kernels. test_engine:
  # load_state and clone write straight into the core's parameter and optimiser buffers.
  set -- tests/test_parity.py tests/test_dropout.py tests/test_api.py tests/test_errors.py tests/test_io.py \
         tests/test_threads.py tests/test_memory.py tests/test_fuzz_inputs.py tests/test_sample_step.py \
         tests/test_kernels.py tests/test_engine.py -k "not rss" -x -q
fi

echo "== running pytest $* under ASan/UBSan"
status=0
(
  cd "$ROOT"
  # The temporary package copy comes first on the path; tests run from the repo.
  env LD_PRELOAD="$PRELOAD" \
      ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=0:log_path=$TMP/logs/asan:strict_string_checks=1:detect_stack_use_after_return=0" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$TMP/logs/ubsan" \
      PYTHONPATH="$TMP" PYTHONDONTWRITEBYTECODE=1 \
      "$PYTHON" -c "import pybackprop, sys; assert pybackprop.__file__.startswith(sys.argv[1]), pybackprop.__file__" "$TMP"
  env LD_PRELOAD="$PRELOAD" \
      ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=0:log_path=$TMP/logs/asan:strict_string_checks=1:detect_stack_use_after_return=0" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$TMP/logs/ubsan" \
      PYTHONPATH="$TMP" PYTHONDONTWRITEBYTECODE=1 PYBACKPROP_FUZZ_EXAMPLES="${PYBACKPROP_FUZZ_EXAMPLES:-150}" \
      "$PYTHON" -m pytest -p no:cacheprovider "$@"
) || status=$?

# Allocation-failure warnings ("failed to allocate", from the MemoryError tests with
# allocator_may_return_null=1) are expected; errors and UBSan runtime errors are not.
PATTERN='ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer|CHECK failed'
reports=$(cat "$TMP"/logs/* 2>/dev/null | grep -cE "$PATTERN" || true)
if [[ "$reports" -gt 0 ]]; then
  echo "== $reports sanitizer error line(s):"
  for f in "$TMP"/logs/*; do echo "--- $f"; cat "$f"; done
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "== pytest failed (exit $status) under the sanitizers, with no sanitizer report"
  exit "$status"
fi
echo "== OK: no AddressSanitizer or UndefinedBehaviorSanitizer report"
