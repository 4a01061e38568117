#!/usr/bin/env bash
# Gradient-trained dictionaries from the command line:
#  - the softmax attributor's seed check (two Gaussian blobs at (1,0) and (0,1), K = 2, Adam
#    lr 1e-3): atoms within 0.1 of the centres, loss decreasing; encode uses the encoder;
#  - task-driven learning (binary logistic) from an unsupervised dictionary: the task loss
#    falls; 1 and 2 ranks agree; a stopped run resumed from its checkpoint ends bitwise equal
#    to an uninterrupted one;
#  - mistakes are one-line errors.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(0)
blobs = np.vstack([rng.normal([1, 0], 0.1, (1000, 2)), rng.normal([0, 1], 0.1, (1000, 2))])
with h5py.File("blobs.h5", "w") as f:
    f["X"] = blobs[rng.permutation(2000)]
# Sparse-coded signals (d = 13, K = 7), label = [sum of the first three true code rows > 0].
d, K, n = 13, 7, 1500
D = rng.standard_normal((d, K)); D /= np.linalg.norm(D, axis=0)
codes = rng.standard_normal((K, n)) * (rng.random((K, n)) < 0.4)
X = (D @ codes).T + 0.01 * rng.standard_normal((n, d))
with h5py.File("task.h5", "w") as f:
    f["X"] = X
    f["y"] = (codes[:3].sum(axis=0) > 0).astype(np.int32)
    f["y_bad"] = np.full(n, 2, dtype=np.int32)
    f["y_short"] = np.zeros(n - 1, dtype=np.int32)
PY
run_mpi 2 train --objective attributor --input blobs.h5:/X --atoms 2 --learning-rate 1e-3 \
  --batch-size 20 --epochs 30 --seed 3 --output attributor.h5 >attr.log 2>&1 || { cat attr.log; fail "attributor training"; }
grep -q "epoch 30/30" attr.log || { cat attr.log; fail "attributor progress lines"; }
"$PYTHON" - <<'PY' || fail "attributor seed check"
import h5py, numpy as np
with h5py.File("attributor.h5") as f:
    D = f["dictionary"][...]
    loss = f["history"]["loss"]
    assert f.attrs["objective"] == "attributor"
    assert f["encoder"].shape == (2, 2) and f["encoder_bias"].size == 2
print("atoms", D.round(3).tolist(), "loss first/last %.4f %.4f" % (loss[0], loss[-1]))
targets = np.eye(2)
best = min(np.abs(D - targets).max(), np.abs(D[::-1] - targets).max())
assert best < 0.1, D
assert loss[-1] < loss[0] and np.all(np.diff(loss[5:]) < 1e-3), loss
PY
run_mpi 2 encode --dictionary attributor.h5 --input blobs.h5:/X --output attr_codes.h5 \
  >attr_enc.log 2>&1 || { cat attr_enc.log; fail "encode with the attributor"; }
grep -q "softmax attributor" attr_enc.log || { cat attr_enc.log; fail "encode names the attributor"; }
"$PYTHON" - <<'PY' || fail "attributor codes"
import h5py, numpy as np
with h5py.File("attr_codes.h5") as f:
    g = f["codes"]
    data, indptr = g["data"][...], g["indptr"][...]
assert np.all(np.diff(indptr) == 2)
rows = data.reshape(-1, 2)
assert np.allclose(rows.sum(axis=1), 1.0) and np.all(rows >= 0)
PY

# Task-driven, from an unsupervised dictionary.
COMMON=(--input task.h5:/X --atoms 7 --lambda 0.05 --batch-size 50 --seed 1 --threads 1)
run_mpi 1 train "${COMMON[@]}" --epochs 5 --output unsupervised.h5 >unsup.log 2>&1 || { cat unsup.log; fail "unsupervised training"; }
TASK=(--objective task --labels task.h5:/y --task binary --lambda2 0.01 --learning-rate 0.01
      --dictionary-init unsupervised.h5 "${COMMON[@]}")
for ranks in 1 2; do
  run_mpi "$ranks" train "${TASK[@]}" --epochs 6 --output "task_$ranks.h5" >"task_$ranks.log" 2>&1 ||
    { cat "task_$ranks.log"; fail "task-driven training on $ranks ranks"; }
done
grep -q "accuracy" task_1.log || { cat task_1.log; fail "task progress shows accuracy"; }
"$PYTHON" - <<'PY' || fail "task-driven output"
import h5py, numpy as np
with h5py.File("task_1.h5") as f, h5py.File("task_2.h5") as g:
    h = f["history"]
    print("task loss by epoch", np.round(h["task_loss"], 4).tolist(), "accuracy", np.round(h["accuracy"], 3).tolist())
    assert h["task_loss"][-1] < h["task_loss"][0], h["task_loss"]
    assert np.all(h["reconstruction"][...] > 0), h["reconstruction"]
    assert f["task_weights"].shape == (1, 7) and f["dictionary"].shape == (7, 13)
    assert np.linalg.norm(f["dictionary"][...], axis=1).max() <= 1 + 1e-12
    diff = max(np.abs(f[k][...] - g[k][...]).max() for k in ("dictionary", "task_weights", "task_bias"))
    assert diff < 1e-8, "1 vs 2 ranks differ by %g" % diff
PY
# Stop after 20 minibatches with a checkpoint, resume: the same result as without a stop.
run_mpi 2 train "${TASK[@]}" --epochs 6 --checkpoint run.ckpt.h5 --stop-after 20 \
  --output resumed.h5 >stop.log 2>&1 && fail "a stopped run exited 0"
run_mpi 2 train "${TASK[@]}" --epochs 6 --checkpoint run.ckpt.h5 --resume yes \
  --output resumed.h5 >resume.log 2>&1 || { cat resume.log; fail "resume"; }
"$PYTHON" -c '
import h5py, numpy as np
a, b = h5py.File("resumed.h5"), h5py.File("task_2.h5")
for k in ("dictionary", "task_weights", "task_bias"):
    assert np.array_equal(a[k][...], b[k][...]), k' || fail "resumed task run differs from the uninterrupted one"

expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if run_mpi 2 "$@" --output bad.h5 >err.log 2>&1; then fail "accepted: $*"; return; fi
  grep -q -- "$pattern" err.log || { cat err.log; fail "message for: $*"; }
  [ ! -e bad.h5 ] || fail "left bad.h5 behind: $*"
}
expect_error "needs --labels" train --objective task "${COMMON[@]}"
expect_error "labels 0 or 1" train --objective task --labels task.h5:/y_bad "${COMMON[@]}"
expect_error "have 1499 rows" train --objective task --labels task.h5:/y_short "${COMMON[@]}"
expect_error "labels apply to objective task only" train --labels task.h5:/y "${COMMON[@]}"
expect_error "objective: unknown value 'magic'" train --objective magic "${COMMON[@]}"
expect_error "learning" train --objective attributor --learning-rate -1 "${COMMON[@]}"
finish
