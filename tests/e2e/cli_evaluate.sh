#!/usr/bin/env bash
# `dictlearn evaluate`: with the true dictionary of k-sparse data and k coefficients the
# error against the clean samples is the noise level only; fewer significant digits cost
# accuracy; 1 and 2 ranks agree; the figures match a numpy recomputation of the rounding;
# mistakes are one-line errors.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(1)
d, K, n, k = 48, 24, 600, 3
D = rng.standard_normal((d, K)); D /= np.linalg.norm(D, axis=0)
codes = np.zeros((K, n))
for j in range(n):
    codes[rng.choice(K, k, replace=False), j] = rng.uniform(1, 2, k) * rng.choice([-1, 1], k)
clean = (D @ codes).T
with h5py.File("data.h5", "w") as f:
    f["X_clean"] = clean
    f["X"] = clean + 0.001 * rng.standard_normal(clean.shape)
    f["X_short"] = clean[:10, :8]
with h5py.File("dict.h5", "w") as f:
    f["dictionary"] = D.T
PY
for ranks in 1 2; do
  run_mpi "$ranks" evaluate --dictionary dict.h5 --input data.h5:/X --clean data.h5:/X_clean \
    --nonzeros 3 --digits 4 --peak 1 --output "eval_$ranks.h5" >"eval_$ranks.log" 2>&1 ||
    { cat "eval_$ranks.log"; fail "evaluate on $ranks ranks"; }
done
cat eval_1.log
run_mpi 2 evaluate --dictionary dict.h5 --input data.h5:/X --clean data.h5:/X_clean \
  --nonzeros 3 --digits 1 --output eval_coarse.h5 >coarse.log 2>&1 || { cat coarse.log; fail "evaluate --digits 1"; }
"$PYTHON" - <<'PY' || fail "evaluate figures"
import h5py, numpy as np
a, b, c = (h5py.File(name).attrs for name in ("eval_1.h5", "eval_2.h5", "eval_coarse.h5"))
assert abs(a["relative_error"] - b["relative_error"]) <= 1e-12 * a["relative_error"], (a["relative_error"], b["relative_error"])
# with the true atoms and 4 digits: the noise (1e-3) and the rounding (1e-4 relative) only
assert a["relative_error"] < 1e-5, a["relative_error"]
assert c["relative_error"] > 100 * a["relative_error"], (c["relative_error"], a["relative_error"])
assert abs(a["psnr"] - 10 * np.log10(1 / a["mean_squared_error"])) < 1e-9
# one significant digit: values in [1, 2] round to 1 or 2, a few percent of the energy
assert c["relative_error"] < 0.1, c["relative_error"]
PY
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1
  shift
  if run_mpi 2 "$@" >err.log 2>&1; then fail "accepted: $*"; return; fi
  grep -q -- "$pattern" err.log || { cat err.log; fail "message for: $*"; }
}
expect_error "nonzeros must be >= 1" evaluate --dictionary dict.h5 --input data.h5:/X --nonzeros 0
expect_error "is 10 x 8; the input is 600 x 48" evaluate --dictionary dict.h5 --input data.h5:/X \
  --clean data.h5:/X_short
expect_error "features per atom" evaluate --dictionary dict.h5 --input data.h5:/X_short
expect_error "unknown option '--colour'" evaluate --dictionary dict.h5 --input data.h5:/X --colour red
finish
