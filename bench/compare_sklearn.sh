#!/usr/bin/env bash
# One-epoch head-to-head with scikit-learn's MiniBatchDictionaryLearning on the same data,
# in one invocation: dictlearn (mpirun -n RANKS, 1 thread per rank) and scikit-learn
# (fit_algorithm='lars', same K, alpha, batch size, epochs), then the test objective of
# both dictionaries computed the same way (exact lasso, scikit-learn's lasso_lars).
#
#   bench/compare_sklearn.sh DATA.h5 [K] [LAMBDA] [EPOCHS]
# DATA.h5 needs /X (train) and /X_test, e.g. from scripts/make_patches.py.
# Prints a Markdown table; leaves files in ${OUT:-bench/results}/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=$1 K=${2:-256} LAMBDA=${3:-0.15} EPOCHS=${4:-1} RANKS=${RANKS:-2}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
source scripts/mpi-env.sh
PY=/usr/bin/python3

now() { $PY -c "import time; print(time.time())"; }
start=$(now)
"${MPIRUN[@]}" -n "$RANKS" build/dictlearn train --input "$DATA:/X" --atoms "$K" --lambda "$LAMBDA" \
  --batch-size 256 --epochs "$EPOCHS" --threads 1 --output "$OUT/dictlearn.h5" >"$OUT/dictlearn.log"
dl_seconds=$($PY -c "print($(now) - $start)")
$PY scripts/sklearn_baseline.py --data "$DATA" --atoms "$K" --lambda "$LAMBDA" --batch-size 256 \
  --epochs "$EPOCHS" --seed 0 -o "$OUT/sklearn.h5" --force --no-eval >"$OUT/sklearn.log"
sk_seconds=$(sed -n 's/^ *fit wall seconds *//p' "$OUT/sklearn.log")
dl_objective=$($PY scripts/evaluate.py -D "$OUT/dictlearn.h5" -X "$DATA" -l "$LAMBDA" --json | tail -1 |
  $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["objective"])')
sk_objective=$($PY scripts/evaluate.py -D "$OUT/sklearn.h5" -X "$DATA" -l "$LAMBDA" --json | tail -1 |
  $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["objective"])')
$PY - "$dl_seconds" "$sk_seconds" "$dl_objective" "$sk_objective" "$RANKS" <<'PY'
import sys
dl_s, sk_s, dl_o, sk_o, ranks = map(float, sys.argv[1:])
print("| learner | wall s | test objective |")
print("|---|---|---|")
print(f"| dictlearn ({int(ranks)} ranks x 1 thread, incl. start-up) | {dl_s:.2f} | {dl_o:.6f} |")
print(f"| scikit-learn MiniBatchDictionaryLearning (fit) | {sk_s:.2f} | {sk_o:.6f} |")
print(f"speed-up {sk_s / dl_s:.1f}x; objective difference {100 * (dl_o - sk_o) / sk_o:+.2f}%")
PY
