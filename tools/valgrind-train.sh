#!/usr/bin/env bash
# Runs a short training script under valgrind memcheck and fails on any error
# whose stack touches the project's code (the _core extension). CPython's own
# reports (its small-object allocator reads uninitialised memory by design,
# and it leaks at exit) are not the project's: PYTHONMALLOC=malloc turns
# pymalloc off, leak checking is off, and only errors with a _core frame count.
#
#   tools/valgrind-train.sh            # uses the package on PYTHONPATH or src/
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
PYTHON=$("$PYTHON" -c "import sys; print(sys.executable)")  # the real binary, not a pyenv shim script
if [[ -n "${VALGRIND_LOG:-}" ]]; then  # keep the full log there
  LOG=$VALGRIND_LOG
else
  LOG=$(mktemp "${TMPDIR:-/tmp}/pybackprop-valgrind.XXXXXX")
  trap 'rm -f "$LOG"' EXIT
fi

SCRIPT='
import numpy as np, pybackprop as bp
bp.set_num_threads(2)
r = np.random.default_rng(0)
X = r.normal(size=(200, 8)); y = np.sin(X[:, :2]).sum(axis=1)
for dtype, opt in (("float64", bp.Adam(lr=1e-2)), ("float32", bp.SGD(lr=0.05, momentum=0.9, nesterov=True)),
                   ("float64", bp.RMSprop(clip_norm=1.0)), ("float32", bp.Adagrad())):
    m = bp.Sequential([bp.Dense(64, activation="relu"), bp.Dropout(keep_prob=0.8),
                       bp.Dense(16, activation="tanh"), bp.Dense(1)], input_dim=8, dtype=dtype, seed=0)
    m.compile(loss="huber", optimizer=opt)
    m.fit(X, y, epochs=3, batch_size=32, verbose=0, validation_split=0.2)
    m.train_step(X[:16], y[:16]); m.loss_and_gradients(X[:16], y[:16], training=True)
    assert np.isfinite(m.predict(X)).all()
c = bp.Sequential([bp.Dense(3, activation="softmax")], input_dim=8, seed=1)
c.compile(loss="categorical_crossentropy", optimizer="adam")
c.fit(X, np.arange(200) % 3, epochs=2, verbose=0)
try:
    bp.Sequential([bp.Dense(2 ** 62)], input_dim=4)
except MemoryError:
    pass
print("valgrind-train: done")
'

export PYTHONPATH=${PYTHONPATH:-$ROOT/src}
PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=no --track-origins=yes --num-callers=40 \
  --error-exitcode=0 --log-file="$LOG" "$PYTHON" -c "$SCRIPT"

total=$(grep -c "^==[0-9]*== [A-Z].*\(Invalid\|uninitialised\|Mismatched\|overlap\|Syscall param\)" "$LOG" || true)
# an error is the project's if any frame of its stack is in the _core extension
ours=$(awk '/^==[0-9]+== [A-Z]/ { if (err && hit) n++; err = ($0 ~ /Invalid|uninitialised|Mismatched|overlap|Syscall param/); hit = 0 }
            err && /_core\.cpython|src\/cpp|bp::/ { hit = 1 }
            END { if (err && hit) n++; print n + 0 }' "$LOG")
grep "ERROR SUMMARY" "$LOG" | tail -1 || true
grep -q "valgrind-train: done\|Command:" "$LOG" || { echo "valgrind did not run the script" >&2; exit 2; }
echo "valgrind-train: $total memcheck error(s) in total, $ours with a frame in pybackprop's _core"
if [[ "$ours" -gt 0 ]]; then
  awk '/^==[0-9]+== [A-Z]/ { p = /Invalid|uninitialised|Mismatched|overlap|Syscall param/ } p' "$LOG" | head -200
  exit 1
fi
