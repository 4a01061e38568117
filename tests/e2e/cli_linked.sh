#!/usr/bin/env bash
# Linked dictionaries from the command line: two row-aligned modalities in two files share
# one code. Training on 1 and 2 ranks agrees; the output holds each modality's dictionary
# in its own unit ball; codes from modality 0 alone rebuild modality 1 (cross-modal);
# a YAML `modalities:` list equals repeated --input; class drivers add a fixed identity
# block; bad combinations are one-line errors that leave no file behind.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
K, d1, d2 = 16, 20, 12
phi1 = rng.standard_normal((d1, K)); phi1 /= np.linalg.norm(phi1, axis=0)
phi2 = rng.standard_normal((d2, K)); phi2 /= np.linalg.norm(phi2, axis=0)
def make(n):
    codes = np.zeros((K, n))
    for j in range(n):
        codes[rng.choice(K, 2, replace=False), j] = 1 + rng.random(2)
    return codes
train, test = make(1500), make(200)
for name, phi in (("a", phi1), ("b", phi2)):
    with h5py.File(name + ".h5", "w") as f:
        f["X"] = (phi @ train).T
        f["X_test"] = (phi @ test).T
with h5py.File("b_short.h5", "w") as f:
    f["X"] = (phi2 @ train[:, :1499]).T
with h5py.File("labels.h5", "w") as f:  # 4 classes: the first atom used, by groups of 4
    f["y"] = (np.argmax(train > 0, axis=0) // 4).astype(np.int32)
PY
COMMON=(--atoms 16 --lambda 0.01 --batch-size 128 --epochs 8 --seed 1 --threads 1)
for ranks in 1 2; do
  run_mpi "$ranks" train --input a.h5:/X --input b.h5:/X --modality-weights 1,0.5 "${COMMON[@]}" \
    --output "linked_$ranks.h5" >"train_$ranks.log" 2>&1 || { cat "train_$ranks.log"; fail "linked train on $ranks ranks"; }
done
grep -q "a.h5:/X + b.h5:/X" train_1.log || fail "the header does not name both modalities"
"$PYTHON" - <<'PY' || fail "linked output"
import h5py, numpy as np
with h5py.File("linked_1.h5") as f, h5py.File("linked_2.h5") as g:
    D, D2 = f["dictionary"][...], g["dictionary"][...]
    assert D.shape == (16, 32), D.shape
    assert f["modality_0"].shape == (16, 20) and f["modality_1"].shape == (16, 12)
    assert list(f.attrs["modality_dims"]) == [20, 12], f.attrs["modality_dims"]
    assert list(f.attrs["modality_offsets"]) == [0, 20]
    assert np.allclose(f.attrs["modality_weights"], [1.0, 0.5])
    assert list(f.attrs["modality_drivers"]) == [0, 0]
    assert np.array_equal(np.hstack([f["modality_0"][...], f["modality_1"][...]]), D)
    for block in (D[:, :20], D[:, 20:]):
        norms = np.linalg.norm(block, axis=1)
        assert norms.max() <= 1 + 1e-12 and norms.min() > 0.5, norms
    diff = np.abs(D - D2).max()
    assert diff < 1e-8, "1 vs 2 ranks differ by %g" % diff
PY
# Cross-modal: code the held-out samples from modality 0 alone, rebuild modality 1.
run_mpi 2 encode --dictionary linked_1.h5 --modalities 0 --input a.h5:/X_test --lambda 0.001 \
  --output codes.h5 >encode.log 2>&1 || { cat encode.log; fail "encode --modalities 0"; }
run_mpi 2 reconstruct --dictionary linked_1.h5 --codes codes.h5 --modality 1 --output rebuilt.h5 \
  >rebuild.log 2>&1 || { cat rebuild.log; fail "reconstruct --modality 1"; }
grep -q "reconstructed modality 1" rebuild.log || fail "reconstruct says what it did"
"$PYTHON" - <<'PY' || fail "cross-modal reconstruction"
import h5py, numpy as np
with h5py.File("rebuilt.h5") as f, h5py.File("b.h5") as b:
    rebuilt, truth = f["X"][...], b["X_test"][...]
    assert rebuilt.shape == truth.shape, rebuilt.shape
    assert f.attrs["modality"] == 1
error = np.linalg.norm(rebuilt - truth) / np.linalg.norm(truth)
print("relative cross-modal error %.4f" % error)
assert error < 0.15, error
PY
# The same run from a YAML list of modalities.
cat >linked.yaml <<'YAML'
modalities:
  - {input: a.h5:/X, weight: 1}
  - input: b.h5:/X
    weight: 0.5
atoms: 16
lambda: 0.01
YAML
run_mpi 1 train linked.yaml --batch-size 128 --epochs 8 --seed 1 --threads 1 --output yaml.h5 \
  >yaml.log 2>&1 || { cat yaml.log; fail "train from a YAML modalities list"; }
"$PYTHON" -c '
import h5py, numpy as np
a, b = h5py.File("yaml.h5")["dictionary"][...], h5py.File("linked_1.h5")["dictionary"][...]
assert np.array_equal(a, b), np.abs(a - b).max()' || fail "YAML list and repeated --input differ"
# Class drivers: a third, fixed identity block during training only.
run_mpi 2 train --input a.h5:/X --input b.h5:/X --drivers labels.h5:/y --driver-weight 0.5 \
  --normalize unit "${COMMON[@]}" --output drivers.h5 >drivers.log 2>&1 || { cat drivers.log; fail "train with drivers"; }
"$PYTHON" - <<'PY' || fail "driver output"
import h5py, numpy as np
with h5py.File("drivers.h5") as f:
    assert list(f.attrs["modality_dims"]) == [20, 12, 16]
    assert list(f.attrs["modality_drivers"]) == [0, 0, 1]
    assert list(f.attrs["modality_fixed"]) == [0, 0, 1]
    assert np.array_equal(f["modality_2"][...], np.eye(16)), "the driver block moved"
PY
run_mpi 1 encode --dictionary drivers.h5 --input a.h5:/X_test --input b.h5:/X_test \
  --output driver_codes.h5 >dcodes.log 2>&1 || { cat dcodes.log; fail "encode with the data modalities of a driver dictionary"; }
# encode takes the normalisation recorded in the dictionary (a UTF-8 attribute)
"$PYTHON" -c '
import h5py
assert h5py.File("driver_codes.h5").attrs["normalize"] == "unit"' || fail "encode ignored the dictionary's normalize"

# Errors: one line, nonzero exit, no output left behind.
expect_error() {  # expect_error PATTERN OUTPUT ARGS...
  local pattern=$1 output=$2
  shift 2
  if run_mpi 2 "$@" >err.log 2>&1; then fail "accepted: $*"; return; fi
  grep -q -- "$pattern" err.log || { cat err.log; fail "message for: $*"; }
  [ "$(grep -c 'error' err.log)" -le 2 ] || { cat err.log; fail "more than one error line: $*"; }
  [ ! -e "$output" ] || fail "left $output behind: $*"
}
expect_error "'b_short.h5:/X' has 1499" bad.h5 train --input a.h5:/X --input b_short.h5:/X \
  "${COMMON[@]}" --output bad.h5
expect_error "modality-weights has 1 values for 2 inputs" bad.h5 train --input a.h5:/X \
  --input b.h5:/X --modality-weights 1 "${COMMON[@]}" --output bad.h5
expect_error "modality 5 does not exist" bad.h5 reconstruct --dictionary linked_1.h5 \
  --codes codes.h5 --modality 5 --output bad.h5
expect_error "one --input per selected modality" bad.h5 encode --dictionary linked_1.h5 \
  --modalities 0 --input a.h5:/X_test --input b.h5:/X_test --output bad.h5
expect_error "has 12 features; modality 0" bad.h5 encode --dictionary linked_1.h5 \
  --modalities 0 --input b.h5:/X_test --output bad.h5
finish
