#!/usr/bin/env bash
# Bad input and bad parameters: a one-line error from rank 0 naming the culprit, a nonzero
# exit on every rank, no hang, and an existing output left untouched.
source "$(dirname "$0")/common.sh"
cd "$WORK"

"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(0)
good = rng.standard_normal((200, 8))
with h5py.File("good.h5", "w") as f:
    f["X"] = good
    f["vector"] = good[:, 0]
    f["cube"] = good.reshape(10, 20, 8)
    f["names"] = np.array([b"a", b"b"])
    f["integers"] = np.arange(16).reshape(2, 8)
    f["one"] = good[:1]
bad = good.copy(); bad[7, 3] = np.nan
infinite = good.copy(); infinite[9, 1] = -np.inf
with h5py.File("inf.h5", "w") as f:
    f["X"] = infinite
with h5py.File("good.h5", "a") as f:
    f.create_dataset("empty", shape=(0, 8), dtype="f8")
with h5py.File("nan.h5", "w") as f:
    f["X"] = bad
with h5py.File("dict3.h5", "w") as f:
    f["dictionary"] = rng.standard_normal((4, 3))
PY
echo "not hdf5" > text.h5
printf 'atoms: 4\nlambda: [1, 2\n' > broken.yaml
printf 'atoms: 4\nlamda: 0.1\n' > typo.yaml
echo "precious" > kept.h5

expect_error() {  # expect_error RANKS "message fragment" ARGS...
  local ranks=$1 fragment=$2
  shift 2
  local status=0
  # Harmless defaults first, the case's own arguments last (they override).
  local args=("$@")
  local config=()
  if [[ "${args[0]}" == *.yaml ]]; then config=("${args[0]}"); args=("${args[@]:1}"); fi
  run_mpi "$ranks" train "${config[@]}" --output kept.h5 --epochs 1 --atoms 4 --batch-size 16 \
    "${args[@]}" >out.txt 2>err.txt || status=$?
  if [ "$status" -eq 0 ]; then
    fail "'$*' succeeded; expected an error containing '$fragment'"
  elif [ "$status" -eq 124 ]; then
    fail "'$*' hung"
  elif ! grep -q -- "$fragment" err.txt; then
    fail "'$*': error does not mention '$fragment': $(cat err.txt)"
  elif [ "$(grep -c 'dictlearn: error' err.txt)" -ne 1 ]; then
    fail "'$*': expected one error line, got: $(cat err.txt)"
  else
    echo "ok: $* -> $(cat err.txt)"
  fi
}

expect_error 2 "missing.h5' does not exist" --input missing.h5
expect_error 2 "is not an HDF5 file" --input text.h5
expect_error 2 "dataset '/Y' not found" --input good.h5:/Y
expect_error 2 "has 1 dimensions" --input good.h5:/vector
expect_error 2 "has 3 dimensions" --input good.h5:/cube
expect_error 2 "floating-point" --input good.h5:/integers
expect_error 2 "row 7, column 3" --input nan.h5
expect_error 3 "fewer than the 3 ranks" --input good.h5:/one
expect_error 2 "atoms must be >= 1" --input good.h5 --atoms 0
expect_error 2 "lambda must be" --input good.h5 --lambda -0.5
expect_error 2 "batch-size must be >= 1" --input good.h5 --batch-size 0
expect_error 2 "epochs must be >= 1" --input good.h5 --epochs 0
expect_error 2 "batch-size (500) is larger than the 200 samples" --input good.h5 --batch-size 500
expect_error 2 "GiB per rank (K x K statistics)" --input good.h5 --atoms 10000000
expect_error 2 "expected a finite number, got 'nan'" --input good.h5 --lambda nan
expect_error 2 "row 9, column 1" --input inf.h5
expect_error 2 "is empty" --input good.h5:/empty
expect_error 2 "floating-point" --input good.h5:/names
expect_error 2 "coder: unknown value 'foo'" --input good.h5 --coder foo
expect_error 2 "positive-codes is not available with coder omp" --input good.h5 --coder omp \
  --nonzeros 2 --positive-codes
expect_error 2 "needs nonzeros > 0 or tolerance > 0" --input good.h5 --coder omp
expect_error 2 "unknown key 'lamda'" typo.yaml --input good.h5
expect_error 2 "broken.yaml:3: YAML syntax error" broken.yaml --input good.h5
expect_error 2 "expected a finite number, got 'abc'" --input good.h5 --lambda abc
expect_error 2 "has 3 features per atom; the data have 8" --input good.h5 --dictionary-init dict3.h5
expect_error 1 "is the input file" --input kept.h5
[ "$(cat kept.h5)" = "precious" ] || fail "an existing output was modified by failed runs"
ls kept.h5.tmp.* 2>/dev/null && fail "temporary output files were left behind"
finish
