#!/usr/bin/env bash
# `dictlearn encode`: the CSR file loads into scipy.sparse as it is, is identical for 1, 2
# and 3 ranks (and 1 or 2 threads), and the codes equal scikit-learn's sparse_encode.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
D = rng.standard_normal((40, 16)); D /= np.linalg.norm(D, axis=1, keepdims=True)
with h5py.File("data.h5", "w") as f:
    f["X"] = rng.standard_normal((1000, 16))
with h5py.File("dict.h5", "w") as f:
    f["dictionary"] = D
    f.attrs["normalize"] = "none"
PY
for coder in "lars --lambda 0.2" "omp --nonzeros 4"; do
  for ranks in 1 2 3; do
    for threads in 1 2; do
      # shellcheck disable=SC2086
      run_mpi "$ranks" encode --dictionary dict.h5 --input data.h5 --coder $coder --dense \
        --threads "$threads" --read-chunk 0.01 --output "codes_${ranks}_${threads}.h5" \
        >log.txt 2>&1 || { cat log.txt; fail "encode --coder $coder on $ranks ranks"; }
    done
  done
  "$PYTHON" - "$coder" <<'PY' || fail "encode --coder $coder: content"
import sys, h5py, numpy as np, scipy.sparse as sp
coder = sys.argv[1].split()
files = {(r, t): h5py.File(f"codes_{r}_{t}.h5", "r") for r in (1, 2, 3) for t in (1, 2)}
ref = files[(1, 1)]
for key, f in files.items():
    for name in ("codes/data", "codes/indices", "codes/indptr", "codes_dense", "objective/total"):
        assert np.array_equal(f[name][()], ref[name][()]), (key, name)
g = ref["codes"]
assert g["indices"].dtype == np.int64 and g["indptr"].dtype == np.int64
codes = sp.csr_matrix((g["data"][()], g["indices"][()], g["indptr"][()]), shape=tuple(g.attrs["shape"]))
assert codes.shape == (1000, 40)
assert np.array_equal(codes.toarray(), ref["codes_dense"][()])
X = h5py.File("data.h5")["X"][()]
D = h5py.File("dict.h5")["dictionary"][()]
from sklearn.decomposition import sparse_encode
if coder[0] == "lars":
    expected = sparse_encode(X, D, algorithm="lasso_lars", alpha=0.2)
else:
    expected = sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=4)
difference = np.abs(codes.toarray() - expected).max()
print(f"{coder[0]}: identical for 1-3 ranks and 1-2 threads; max |codes - scikit-learn| = {difference:.2e}")
assert difference < 1e-8, difference
recon = 0.5 * ((X - codes @ D) ** 2).sum(axis=1)
assert np.allclose(ref["objective/reconstruction"][()], recon, rtol=1e-10, atol=1e-12)
PY
done
finish
