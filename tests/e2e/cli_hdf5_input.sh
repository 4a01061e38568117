#!/usr/bin/env bash
# Training from a float32 HDF5 dataset in a group, with a given initial dictionary and
# per-sample normalisation; the output records the parameters and replaces an old file.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(1)
x = rng.standard_normal((1000, 12)).astype(np.float32)
with h5py.File("data.h5", "w") as f:
    f.create_dataset("group/samples", data=x)
    f["init"] = rng.standard_normal((10, 12))
PY
echo "old" > out.h5
run_mpi 3 train --input data.h5:/group/samples --dictionary-init data.h5:/init --atoms 10 \
  --lambda 0.2 --epochs 2 --batch-size 50 --normalize center-unit --threads 1 --output out.h5 \
  >log.txt 2>&1 || fail "training exited with $?"
cat log.txt
"$PYTHON" - <<'PY' || fail "output content"
import h5py, numpy as np
with h5py.File("out.h5", "r") as f:
    assert f["/dictionary"].shape == (10, 12)
    assert f.attrs["normalize"] == "center-unit" and f.attrs["ranks"] == 3
    assert f.attrs["input"] == "data.h5:/group/samples"
    assert len(f["/history"]) == 2
print("ok")
PY
# A sample of all zeros with --normalize unit stays zero (documented): training works and
# reports finite objectives.
"$PYTHON" -c "
import h5py, numpy as np
x = np.random.default_rng(2).standard_normal((300, 12)); x[17] = 0
h5py.File('zeros.h5', 'w')['X'] = x"
run_mpi 2 train --input zeros.h5 --atoms 8 --lambda 0.1 --epochs 2 --batch-size 30 --normalize unit \
  --threads 1 --output zeros-out.h5 >log.txt 2>&1 || { cat log.txt; fail "an all-zero sample with normalize unit"; }
"$PYTHON" -c "import h5py, numpy as np; assert np.isfinite(h5py.File('zeros-out.h5')['history']['objective']).all()" ||
  fail "non-finite objective with an all-zero sample"
# A non-negative dictionary with non-negative codes, for both update rules.
for update in online mod; do
  run_mpi 2 train --input data.h5:/group/samples --atoms 10 --lambda 0.1 --epochs 2 --batch-size 50 \
    --positive-dict --positive-codes --update "$update" --threads 1 --output positive.h5 \
    >log.txt 2>&1 || { cat log.txt; fail "positive-dict with update $update"; }
  "$PYTHON" -c "import h5py; d = h5py.File('positive.h5')['dictionary'][()]; assert d.min() >= 0, d.min()" ||
    fail "positive-dict with update $update left negative entries"
done
# Batch learning (update-every epoch) warm-started from codes written by encode --dense.
run_mpi 2 encode --dictionary out.h5 --input data.h5:/group/samples --coder cd --lambda 0.2 \
  --dense --output codes.h5 >log.txt 2>&1 || { cat log.txt; fail "encode for code-init"; }
run_mpi 2 train --input data.h5:/group/samples --dictionary-init out.h5:/dictionary --atoms 10 \
  --coder cd --lambda 0.2 --update-every epoch --epochs 3 --code-init codes.h5 --threads 1 \
  --normalize center-unit --output batch.h5 >log.txt 2>&1 || { cat log.txt; fail "code-init run"; }
grep -q "^epoch 3/3" log.txt || fail "code-init run printed no last epoch"
status=0
run_mpi 2 train --input data.h5:/group/samples --atoms 11 --coder cd --lambda 0.2 \
  --code-init codes.h5 --output bad.h5 >log.txt 2>&1 || status=$?
[ "$status" -ne 0 ] && grep -q "expected samples x atoms = 1000 x 11" log.txt ||
  fail "code-init with the wrong shape: $(cat log.txt)"
finish
