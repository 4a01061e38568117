#!/usr/bin/env bash
# `dictlearn classify`: multinomial logistic regression on raw samples (dense) and on the
# CSR codes of `dictlearn encode` (sparse). 1 and 2 ranks give the same model to 1e-8 (the
# biases up to a shift common to all classes, to which the softmax is blind); the
# model is first-order optimal (gradient checked in numpy) and agrees with scikit-learn;
# the printed accuracies, the model file's attributes and the predictions match numpy;
# bad inputs are one-line errors with a nonzero exit, no hang, no traceback, no file.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(7)
C, d = 3, 8
means = 1.2 * rng.standard_normal((C, d))
def blobs(n):
    y = rng.integers(0, C, n)
    return means[y] + rng.standard_normal((n, d)), y
Xtr, ytr = blobs(600)
Xte, yte = blobs(300)
with h5py.File("train.h5", "w") as f:
    f["X"] = Xtr
    f["y"] = ytr.astype(np.int32)
with h5py.File("test.h5", "w") as f:
    f["X"] = Xte.astype(np.float32)
    f["y"] = yte.astype(np.uint8).reshape(-1, 1)  # N x 1, another integer type
with h5py.File("bad.h5", "w") as f:
    f["y_short"] = ytr[:-1]
    f["y_half"] = ytr + 0.5
    f["y_negative"] = ytr - 1
    f["y_wide"] = np.stack([ytr, ytr], axis=1)
    Xnan = Xtr.copy(); Xnan[457, 3] = np.nan
    f["X_nan"] = Xnan
    f["X_narrow"] = Xtr[:, :5]
# A dictionary for the codes (40 atoms of dimension 8).
D = rng.standard_normal((40, d)); D /= np.linalg.norm(D, axis=1, keepdims=True)
with h5py.File("dict.h5", "w") as f:
    f["dictionary"] = D
    f.attrs["normalize"] = "none"
PY

common=(--l2 1e-3 --tolerance 1e-12)
# --- dense: raw samples -------------------------------------------------------------------
for ranks in 1 2; do
  run_mpi "$ranks" classify --train train.h5:/X --train-labels train.h5 --test test.h5:/X \
    --test-labels test.h5:/y "${common[@]}" --output "model_$ranks.h5" \
    --predictions "pred_$ranks.h5" >"dense_$ranks.txt" 2>&1 ||
    { cat "dense_$ranks.txt"; fail "classify (dense) on $ranks ranks"; }
done
cat dense_2.txt
for ranks in 1 2; do
  grep -q "^dictlearn classify: train train.h5:/X (dense, N=600, 8 features), 3 classes" \
    "dense_$ranks.txt" || fail "dense header on $ranks ranks"
  grep -q "^train accuracy 0\.[0-9]\{4\} (600 samples)$" "dense_$ranks.txt" ||
    fail "dense train accuracy line on $ranks ranks"
  grep -q "^test accuracy 0\.[0-9]\{4\} (300 samples)$" "dense_$ranks.txt" ||
    fail "dense test accuracy line on $ranks ranks"
  grep -q "^confusion matrix (test set; rows = true class, columns = predicted class):" \
    "dense_$ranks.txt" || fail "dense confusion matrix on $ranks ranks"
  grep -q "^iteration     0  loss 1.098612289" "dense_$ranks.txt" ||
    fail "first progress line (loss log 3) on $ranks ranks"
done
"$PYTHON" - <<'PY' || fail "dense model content"
import re, h5py, numpy as np
tr, te = h5py.File("train.h5"), h5py.File("test.h5")
X, y = tr["X"][()], tr["y"][()]
Xt, yt = te["X"][()].astype(float), te["y"][()].ravel()
N, l2, C = len(y), 1e-3, 3
m1, m2 = h5py.File("model_1.h5"), h5py.File("model_2.h5")
W, b = m1["weights"][()], m1["bias"][()]
assert W.shape == (3, 8) and b.shape == (3,), (W.shape, b.shape)
a = m1.attrs
assert a["classes"] == 3 and a["features"] == 8 and a["samples"] == 600, dict(a)
assert a["converged"] == 1 and a["iterations"] > 5 and a["l2"] == l2, dict(a)
assert a["train"] == "train.h5:/X" and a["test"] == "test.h5:/X", dict(a)
assert a["ranks"] == 1 and m2.attrs["ranks"] == 2
# The same model on 1 and 2 ranks (only the order of the sums differs). The softmax does
# not change when every class's bias moves by the same amount, and the bias is not
# penalised, so it is compared with its mean over the classes removed: a build without FMA
# (-DDICTLEARN_NATIVE=OFF) moved all three by 1.17e-8, its differences by 2.4e-10.
def identifiable(name, value):
    return value - value.mean(axis=0) if name == "bias" else value
for name in ("weights", "bias"):
    difference = np.abs(identifiable(name, m1[name][()]) - identifiable(name, m2[name][()])).max()
    assert difference < 1e-8, (name, difference)
# First-order optimality, computed independently.
Z = X @ W.T + b
P = np.exp(Z - Z.max(1, keepdims=True)); P /= P.sum(1, keepdims=True)
loss = -np.log(P[np.arange(N), y]).mean() + 0.5 * l2 * (W ** 2).sum()
assert abs(loss - a["final_loss"]) < 1e-12, (loss, a["final_loss"])
R = P.copy(); R[np.arange(N), y] -= 1
gradient = np.concatenate([(R.T @ X / N + l2 * W).ravel(), R.sum(0) / N])
assert np.abs(gradient).max() < 1e-10, np.abs(gradient).max()
# Accuracies and predictions.
train_accuracy = (np.argmax(Z, 1) == y).mean()
predicted = np.argmax(Xt @ W.T + b, 1)
test_accuracy = (predicted == yt).mean()
assert abs(a["train_accuracy"] - train_accuracy) < 1e-15 and abs(a["test_accuracy"] - test_accuracy) < 1e-15
assert test_accuracy > 0.85, test_accuracy
log = open("dense_1.txt").read()
assert f"train accuracy {train_accuracy:.4f} (600 samples)" in log
assert f"test accuracy {test_accuracy:.4f} (300 samples)" in log
confusion = np.zeros((3, 3), int)
np.add.at(confusion, (yt, predicted), 1)
assert np.array_equal(m1["test_confusion"][()], confusion)
rows = [list(map(int, line.split()[1:])) for line in log.splitlines() if re.match(r"^ +[0-2]( +\d+){3}$", line)]
assert rows == confusion.tolist(), (rows, confusion)
for name in ("pred_1.h5", "pred_2.h5"):
    p = h5py.File(name)["predictions"]
    assert p.dtype == np.int64 and p.shape == (300,) and np.array_equal(p[()], predicted), name
# scikit-learn's multinomial solution (it stops on a loose loss criterion, ~1e-5 away).
try:
    from sklearn.linear_model import LogisticRegression
except ImportError:
    print("scikit-learn not installed: comparison skipped")
else:
    clf = LogisticRegression(C=1 / (N * l2), tol=1e-12, max_iter=10000).fit(X, y)
    dw = np.abs(clf.coef_ - W).max()
    db = np.abs(clf.intercept_ - clf.intercept_.mean() - b).max()
    print(f"dense: 1 vs 2 ranks identical to 1e-8; |W - scikit-learn| = {dw:.1e}, |b - scikit-learn| = {db:.1e}")
    assert dw < 1e-3 and db < 1e-3, (dw, db)
PY

# --- sparse: the CSR codes of dictlearn encode --------------------------------------------
for set in train test; do
  run_mpi 2 encode --dictionary dict.h5 --input "$set.h5:/X" --coder omp --nonzeros 4 --dense \
    --output "codes_$set.h5" >log.txt 2>&1 || { cat log.txt; fail "encode $set"; }
done
for ranks in 1 2; do
  run_mpi "$ranks" classify --train codes_train.h5 --train-labels train.h5:/y \
    --test codes_test.h5 --test-labels test.h5:/y "${common[@]}" \
    --output "sparse_model_$ranks.h5" >"sparse_$ranks.txt" 2>&1 ||
    { cat "sparse_$ranks.txt"; fail "classify (sparse codes) on $ranks ranks"; }
done
cat sparse_2.txt
grep -q "^dictlearn classify: train codes_train.h5:/codes (sparse CSR, N=600, 40 features, 4.00 nonzeros per sample)" \
  sparse_1.txt || fail "sparse header"
# The same codes stored dense (/codes_dense) must give the same model.
run_mpi 2 classify --train codes_train.h5:/codes_dense --train-labels train.h5:/y \
  --test codes_test.h5:/codes_dense --test-labels test.h5:/y "${common[@]}" \
  --output dense_codes_model.h5 >log.txt 2>&1 || { cat log.txt; fail "classify /codes_dense"; }
"$PYTHON" - <<'PY' || fail "sparse model content"
import h5py, numpy as np
s1, s2, dense = (h5py.File(n) for n in ("sparse_model_1.h5", "sparse_model_2.h5", "dense_codes_model.h5"))
assert s1.attrs["feature_kind"] == "sparse" and dense.attrs["feature_kind"] == "dense"
assert s1["weights"].shape == (3, 40) and s1.attrs["features"] == 40
def identifiable(name, value):  # as for the dense model
    return value - value.mean(axis=0) if name == "bias" else value
for other, tolerance in ((s2, 1e-8), (dense, 1e-8)):
    for name in ("weights", "bias"):
        difference = np.abs(identifiable(name, s1[name][()]) - identifiable(name, other[name][()])).max()
        assert difference < tolerance, (other.filename, name, difference)
accuracy = s1.attrs["test_accuracy"]
assert accuracy > 0.8, accuracy
assert s1.attrs["test_accuracy"] == s2.attrs["test_accuracy"] == dense.attrs["test_accuracy"]
print(f"sparse codes: test accuracy {accuracy:.4f}; 1 and 2 ranks and dense codes agree to 1e-8")
PY

# --- errors: one line on stderr, exit status 1, no hang, no file left behind --------------
expect_error() {  # expect_error "MESSAGE" ARGS... (2 ranks; the case's arguments last)
  local message=$1
  shift
  local status=0
  run_mpi 2 classify --output err_model.h5 "$@" >out.txt 2>err.txt || status=$?
  if [ "$status" -eq 0 ]; then
    fail "classify $* succeeded; expected '$message'"
  elif [ "$status" -eq 124 ]; then
    fail "classify $* hung"
  elif [ "$(grep -c 'dictlearn: error' err.txt)" -ne 1 ]; then
    fail "classify $*: expected one error line, got: $(cat err.txt)"
  elif ! grep -q "^dictlearn: error: " err.txt; then
    fail "classify $*: not an error agreed by all ranks: $(cat err.txt)"
  elif ! grep -qF -- "$message" err.txt; then
    fail "classify $*: expected '$message', got: $(cat err.txt)"
  elif grep -q "Traceback\|MPI_ABORT" err.txt; then
    fail "classify $*: traceback or abort: $(cat err.txt)"
  elif ls err_model.h5* >/dev/null 2>&1; then
    fail "classify $*: left an output file"
  else
    echo "ok: $(grep 'dictlearn: error' err.txt)"
  fi
}
train=(--train train.h5:/X --train-labels train.h5:/y)
expect_error "--train-labels: 'bad.h5:/y_short' has 599 labels but --train 'train.h5:/X' has 600 samples" \
  --train train.h5:/X --train-labels bad.h5:/y_short
expect_error "--train: '/nothere' not found in 'train.h5'" --train train.h5:/nothere \
  --train-labels train.h5:/y
expect_error "--train: input file 'missing.h5' does not exist" --train missing.h5 \
  --train-labels train.h5:/y
expect_error "--train-labels: dataset '/labels' not found in 'train.h5'" --train train.h5:/X \
  --train-labels train.h5:/labels
expect_error "'bad.h5:/y_half' hold a non-integer value (1.5) at row 0" --train train.h5:/X \
  --train-labels bad.h5:/y_half
expect_error "hold a negative label (-1) at row" --train train.h5:/X \
  --train-labels bad.h5:/y_negative
expect_error "600 x 2 values; expected one label per sample" --train train.h5:/X \
  --train-labels bad.h5:/y_wide
expect_error "is outside [0, 2) (--classes 2)" "${train[@]}" --classes 2
expect_error "--l2 must be >= 0, got -1" "${train[@]}" --l2 -1
expect_error "--max-iter: expected an integer >= 1, got '0'" "${train[@]}" --max-iter 0
expect_error "classify: unknown option '--lambda'" "${train[@]}" --lambda 1
expect_error "--tolerance: missing value" "${train[@]}" --tolerance
expect_error "classify needs --train-labels" --train train.h5:/X
expect_error "has a non-finite value (nan) at row 457, column 3" --train bad.h5:/X_nan \
  --train-labels train.h5:/y
expect_error "--test 'bad.h5:/X_narrow' has 5 features per sample; --train 'train.h5:/X' has 8" \
  "${train[@]}" --test bad.h5:/X_narrow
expect_error "--output 'train.h5' is the --train file" "${train[@]}" --output train.h5
finish
