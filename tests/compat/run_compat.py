#!/usr/bin/env python3
"""scikit-learn parity tests of the dictlearn CLI (CTest label "compat").

    python3 tests/compat/run_compat.py --dictlearn build/dictlearn [--only REGEX] [--keep]

Runs `dictlearn encode` / `dictlearn train` under `mpiexec -n P --oversubscribe` on random
problems with fixed seeds and compares with scikit-learn (tested with 1.2.1):

  1. encode: every coder against its scikit-learn counterpart, on three shapes (K > d,
     K < d, K = d), with and without positive codes where scikit-learn allows them; each
     file is also checked for P = 1 and P = 2 ranks giving identical datasets and for
     /objective/* matching the codes; the coders scikit-learn refuses positive for (omp,
     lars = dictlearn's lar) must be refused by the CLI too;
  2. dict_learning: scikit-learn's documentation example against batch dictionary learning
     (train --update-every epoch --update online --coder lars);
  3. MiniBatchDictionaryLearning against train (online), test objective on held-out data.

One line per check (PASS/FAIL, both sides' figures), then `N passed, M failed`; exit
status 1 if any check failed. A CLI that rejects a coder or flag fails that check with the
error text. Without numpy/scipy/scikit-learn/h5py (also not in /usr/bin/python3) it prints
"compat: SKIPPED: ..." and exits 0. See tests/compat/README.md for the parameter mapping.

Parameter mapping (verified against scikit-learn 1.2.1's sklearn/decomposition/
_dict_learning.py and sklearn/linear_model/_omp.py, and numerically by the checks below):
  * lasso_lars / lasso_cd: _sparse_encode passes alpha / n_features to LassoLars / Lasso,
    whose objective is (1 / (2 n_samples)) ||y - X w||^2 + alpha' ||w||_1 with
    X = dictionary.T (n_samples = d rows).  Multiplying by d: 0.5 ||x - D^T a||^2 +
    alpha ||a||_1, i.e. dictlearn's --lambda == sparse_encode's alpha, no rescaling.
  * threshold: sign(D x) max(|D x| - alpha, 0) (clipped at 0 if positive): --lambda == alpha.
  * lasso_cd's tolerance: sparse_encode builds Lasso with the default tol=1e-4 (duality gap
    <= tol ||x||^2) and exposes only max_iter, too loose for a 1e-8 objective comparison.
    The reference is therefore Lasso(alpha=L/d, fit_intercept=False, tol=1e-12,
    max_iter=100000) called directly; dictlearn runs with --coder-tol 1e-12.  A second
    check compares dictlearn's defaults (tol 1e-4, 1000 sweeps) with sparse_encode's
    lasso_cd, allowing the difference the tolerance permits (1e-4 ||x||^2).
  * omp with a tolerance: the brief's claim that sparse_encode(algorithm='omp', alpha=T)
    passes alpha as tol does NOT hold in 1.2.1: sparse_encode sets regularization =
    n_nonzero_coefs for 'omp' and _sparse_encode calls orthogonal_mp_gram(...,
    n_nonzero_coefs=int(regularization), tol=None), so alpha is silently ignored (the
    docstring says otherwise).  The reference for --tolerance T is
    orthogonal_mp_gram(Gram, Xy, tol=T, norms_squared=||x||^2), where tol is the squared
    residual norm ||x - D^T a||^2 (the same as dictlearn's --tolerance).  The suite prints
    a NOTE saying which behaviour the installed scikit-learn has.
  * fista, squared loss, elastic-penalty G: 0.5 ||x - D^T a||^2 + L (||a||_1 + G/2 ||a||^2).
    ElasticNet minimises (1/(2d)) ||x - D^T a||^2 + alpha rho ||a||_1 +
    (alpha (1 - rho) / 2) ||a||^2; times d: d alpha rho = L and d alpha (1 - rho) = L G,
    so alpha = L (1 + G) / d and rho = l1_ratio = 1 / (1 + G).
"""

import os
import sys

sys.dont_write_bytecode = True

_REQUIRED = ("numpy", "scipy", "sklearn", "h5py")
_SYSTEM_PYTHON = "/usr/bin/python3"
_REEXEC_GUARD = "DICTLEARN_COMPAT_REEXEC"


def _ensure_interpreter():
    """Re-exec under /usr/bin/python3 when this interpreter lacks the modules; skip if both do."""
    missing = []
    for name in _REQUIRED:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if not missing:
        return
    here = os.path.realpath(sys.executable or "")
    if (os.environ.get(_REEXEC_GUARD) is None and os.access(_SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(_SYSTEM_PYTHON) != here):
        import subprocess
        probe = subprocess.run([_SYSTEM_PYTHON, "-c", "import " + ", ".join(_REQUIRED)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            env = dict(os.environ)
            env[_REEXEC_GUARD] = "1"
            sys.stdout.flush()
            os.execve(_SYSTEM_PYTHON, [_SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:],
                      env)
    print("compat: SKIPPED: scikit-learn/h5py not installed")
    sys.stderr.write("compat: missing in %s (%s was not usable either): %s\n"
                     % (sys.executable, _SYSTEM_PYTHON, ", ".join(missing)))
    sys.exit(0)


_ensure_interpreter()

# ---------------------------------------------------------------------------------------
import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.decomposition import (MiniBatchDictionaryLearning, dict_learning,  # noqa: E402
                                   sparse_encode)
from sklearn.linear_model import ElasticNet, Lasso, orthogonal_mp_gram  # noqa: E402

warnings.filterwarnings("ignore")  # convergence / premature-OMP chatter of the references


# --------------------------------------------------------------------------- reporting
class Suite:
    def __init__(self, only):
        self.passed = 0
        self.failed = 0
        self.only = re.compile(only) if only else None
        self.failures = []

    def wanted(self, name):
        return self.only is None or self.only.search(name) is not None

    def check(self, name, ok, detail):
        ok = bool(ok)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(name)
        print("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)
        return ok

    @staticmethod
    def note(text):
        print("NOTE %s" % text, flush=True)


# --------------------------------------------------------------------------- running
class Runner:
    def __init__(self, dictlearn, mpiexec, workdir):
        self.dictlearn = dictlearn
        self.mpiexec = mpiexec
        self.workdir = workdir
        self.env = dict(os.environ)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
            self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.seconds = 0.0
        self.runs = 0

    def run(self, ranks, args, timeout=180):
        """Returns (ok, error_text, stdout)."""
        cmd = self.mpiexec + ["-n", str(ranks), "--oversubscribe", self.dictlearn] + \
            [str(a) for a in args]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # our own mpiexec's process group only
            except OSError:
                pass
            proc.communicate()
            return False, "timed out after %ds: %s" % (timeout, " ".join(cmd[3:])), ""
        finally:
            self.seconds += time.perf_counter() - start
            self.runs += 1
        if proc.returncode == 0:
            return True, "", out
        return False, "exit %d: %s" % (proc.returncode, error_line(err, out)), out


def error_line(err, out=""):
    lines = [l.strip() for l in (err + "\n" + out).splitlines() if l.strip()]
    for l in lines:
        if "error" in l.lower() and "mpiexec" not in l.lower() and not l.startswith("--"):
            return l[:400]
    lines = [l for l in lines if not l.startswith("--") and "Primary job" not in l]
    return (lines[0][:400] if lines else "(no message)")


# --------------------------------------------------------------------------- helpers
def unit_rows(M):
    n = np.linalg.norm(M, axis=1, keepdims=True)
    return M / np.where(n > 0, n, 1.0)


def write_data(path, X):
    with h5py.File(path, "w") as f:
        f["X"] = np.ascontiguousarray(X, dtype=np.float64)


def write_dictionary(path, D):
    with h5py.File(path, "w") as f:
        f["dictionary"] = np.ascontiguousarray(D, dtype=np.float64)
        f.attrs["normalize"] = "none"


def read_codes(path):
    with h5py.File(path, "r") as f:
        g = f["codes"]
        shape = tuple(int(s) for s in g.attrs["shape"])
        C = sp.csr_matrix((g["data"][()], g["indices"][()], g["indptr"][()]), shape=shape)
        dense = f["codes_dense"][()] if "codes_dense" in f else None
        obj = {k: f["objective"][k][()] for k in ("reconstruction", "penalty", "total")
               if "objective" in f and k in f["objective"]}
    return C, dense, obj


def all_datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
        if "codes" in f:
            for k, v in f["codes"].attrs.items():
                out["codes@" + k] = np.asarray(v)
    return out


def lasso_objective(X, D, A, lam, gamma=0.0):
    R = X - A @ D
    return 0.5 * np.sum(R * R, axis=1) + lam * (np.sum(np.abs(A), axis=1)
                                                + 0.5 * gamma * np.sum(A * A, axis=1))


def kkt_violation(X, D, A, lam, positive):
    """Largest violation of the lasso optimality conditions, relative to lambda."""
    C = (X - A @ D) @ D.T  # correlations of the residual, (N, K)
    if positive:
        on = A > 0
        v = np.where(on, np.abs(C - lam), np.maximum(C - lam, 0.0))
        v = np.maximum(v, np.maximum(-A, 0.0) * 1e12)  # a negative code is a violation
    else:
        on = A != 0
        v = np.where(on, np.abs(C - lam * np.sign(A)), np.maximum(np.abs(C) - lam, 0.0))
    return float(v.max()) / max(lam, 1e-300)


def rel_max(a, b):
    """max |a - b| / max |b| (0 when both are 0)."""
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def rel_obj(f_dl, f_sk):
    """Per-sample |f_dl - f_sk| / f_sk (objectives are >= 0), max over samples."""
    return float(np.max(np.abs(f_dl - f_sk) / np.maximum(np.abs(f_sk), 1e-12)))


def fmt(x):
    return "%.3g" % x


# --------------------------------------------------------------------------- 1. encode
SHAPES = [  # name, d, K, N (random samples; one all-zero row is appended)
    ("K>d", 16, 40, 200),
    ("K<d", 30, 12, 200),
    ("K=d", 24, 24, 200),
]


def make_encode_problem(seed, d, K, N):
    rng = np.random.default_rng(seed)
    D = unit_rows(rng.standard_normal((K, d)))
    C = np.zeros((N, K))
    for i in range(N):
        idx = rng.choice(K, size=min(3, K), replace=False)
        C[i, idx] = rng.standard_normal(idx.size)
    X = C @ D + 0.05 * rng.standard_normal((N, d))
    X = np.vstack([X, np.zeros((1, d))])  # an all-zero sample: every coder must return 0
    return X, D


def lasso_cd_reference(X, D, lam, positive):
    d = X.shape[1]
    model = Lasso(alpha=lam / d, fit_intercept=False, tol=1e-12, max_iter=100000,
                  positive=positive, precompute=D @ D.T)
    model.fit(D.T, X.T)
    return np.atleast_2d(model.coef_).reshape(X.shape[0], D.shape[0])


def elastic_net_reference(X, D, lam, gamma):
    d = X.shape[1]
    model = ElasticNet(alpha=lam * (1 + gamma) / d, l1_ratio=1.0 / (1 + gamma),
                       fit_intercept=False, tol=1e-12, max_iter=100000, precompute=D @ D.T)
    model.fit(D.T, X.T)
    return np.atleast_2d(model.coef_).reshape(X.shape[0], D.shape[0])


def omp_tol_reference(X, D, T):
    return orthogonal_mp_gram(D @ D.T, D @ X.T, tol=T,
                              norms_squared=np.sum(X * X, axis=1)).T.reshape(X.shape[0], -1)


# Each coder configuration: name, dictlearn flags, reference(X, D) -> codes, comparison.
#   compare "codes":     max |A_dl - A_sk| / max |A_sk| <= tol (plus KKT for lasso coders)
#   compare "objective": per-sample relative objective difference <= tol
#   compare "positive_lasso": f_dl <= f_sk + 1e-10 per sample and KKT of dictlearn's codes
LAM = 0.15
LAM_THRESHOLD = 0.4
NNZ = 4
TIGHT_CD = ["--coder-tol", "1e-12", "--coder-max-iter", "100000"]
TIGHT_FISTA = ["--coder-tol", "1e-12", "--coder-max-iter", "200000"]


def omp_tolerance_for(X):
    return float(0.15 * np.median(np.sum(X * X, axis=1)))


def encode_configs():
    cfgs = []

    def add(name, flags, reference, compare, tol, lam=None, gamma=0.0, positive=False,
            penalty="l1", shapes=None):
        cfgs.append(dict(name=name, flags=flags, reference=reference, compare=compare,
                         tol=tol, lam=lam, gamma=gamma, positive=positive, penalty=penalty,
                         shapes=shapes))

    add("lars", ["--coder", "lars", "--lambda", LAM],
        lambda X, D: sparse_encode(X, D, algorithm="lasso_lars", alpha=LAM),
        "codes", 1e-6, lam=LAM)
    add("lars+positive", ["--coder", "lars", "--lambda", LAM, "--positive-codes"],
        lambda X, D: sparse_encode(X, D, algorithm="lasso_lars", alpha=LAM, positive=True),
        "positive_lasso", 1e-10, lam=LAM, positive=True)
    add("lar", ["--coder", "lar", "--nonzeros", NNZ],
        lambda X, D: sparse_encode(X, D, algorithm="lars", n_nonzero_coefs=NNZ),
        "codes", 1e-6, penalty="none")
    add("cd", ["--coder", "cd", "--lambda", LAM] + TIGHT_CD,
        lambda X, D: lasso_cd_reference(X, D, LAM, False), "objective", 1e-8, lam=LAM)
    add("cd+positive", ["--coder", "cd", "--lambda", LAM, "--positive-codes"] + TIGHT_CD,
        lambda X, D: lasso_cd_reference(X, D, LAM, True), "objective", 1e-8, lam=LAM,
        positive=True)
    add("cd-default-tol", ["--coder", "cd", "--lambda", LAM],
        lambda X, D: sparse_encode(X, D, algorithm="lasso_cd", alpha=LAM),
        "gap_tolerance", 1e-4, lam=LAM, shapes=["K>d"])
    add("omp-nonzeros", ["--coder", "omp", "--nonzeros", NNZ],
        lambda X, D: sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=NNZ),
        "codes", 1e-6, penalty="none")
    add("omp-tolerance", ["--coder", "omp", "--tolerance", "@omp_tol"],
        lambda X, D: omp_tol_reference(X, D, omp_tolerance_for(X)),
        "codes", 1e-6, penalty="none")
    add("threshold", ["--coder", "threshold", "--lambda", LAM_THRESHOLD],
        lambda X, D: sparse_encode(X, D, algorithm="threshold", alpha=LAM_THRESHOLD),
        "codes", 1e-12, lam=LAM_THRESHOLD)
    add("threshold+positive", ["--coder", "threshold", "--lambda", LAM_THRESHOLD,
                               "--positive-codes"],
        lambda X, D: sparse_encode(X, D, algorithm="threshold", alpha=LAM_THRESHOLD,
                                   positive=True),
        "codes", 1e-12, lam=LAM_THRESHOLD, positive=True)
    add("fista", ["--coder", "fista", "--lambda", LAM] + TIGHT_FISTA,
        lambda X, D: sparse_encode(X, D, algorithm="lasso_lars", alpha=LAM),
        "objective", 1e-6, lam=LAM)
    add("fista-elastic(G=0.5)", ["--coder", "fista", "--lambda", LAM, "--elastic-penalty", 0.5]
        + TIGHT_FISTA,
        lambda X, D: elastic_net_reference(X, D, LAM, 0.5), "objective", 1e-6, lam=LAM,
        gamma=0.5)
    # Degenerate robust losses that equal the squared loss: same optimum as lasso_lars.
    add("fista+positive", ["--coder", "fista", "--lambda", LAM, "--positive-codes"]
        + TIGHT_FISTA,
        lambda X, D: lasso_cd_reference(X, D, LAM, True), "objective", 1e-6, lam=LAM,
        positive=True, shapes=["K>d"])
    add("fista-huber(delta=1e3)", ["--coder", "fista", "--lambda", LAM, "--loss", "huber",
                                   "--huber-delta", "1000"] + TIGHT_FISTA,
        lambda X, D: sparse_encode(X, D, algorithm="lasso_lars", alpha=LAM),
        "objective", 1e-6, lam=LAM, shapes=["K>d"])
    add("fista-power(p=2)", ["--coder", "fista", "--lambda", LAM, "--loss", "power",
                             "--loss-power", "2"] + TIGHT_FISTA,
        lambda X, D: sparse_encode(X, D, algorithm="lasso_lars", alpha=LAM),
        "objective", 1e-6, lam=LAM, shapes=["K>d"])
    return cfgs


def check_objective_datasets(X, D, A, obj, cfg):
    """/objective/* against the codes: returns (ok, text)."""
    if not obj or any(k not in obj for k in ("reconstruction", "penalty", "total")):
        return False, "missing /objective/{reconstruction,penalty,total}"
    R = X - A @ D
    recon = 0.5 * np.sum(R * R, axis=1)
    ok = np.allclose(obj["reconstruction"], recon, rtol=1e-9, atol=1e-12)
    ok &= np.allclose(obj["total"], obj["reconstruction"] + obj["penalty"], rtol=1e-12,
                      atol=1e-14)
    worst = float(np.max(np.abs(obj["reconstruction"] - recon)))
    if cfg["penalty"] == "l1":
        pen = cfg["lam"] * (np.sum(np.abs(A), axis=1) + 0.5 * cfg["gamma"] * np.sum(A * A, axis=1))
        ok &= np.allclose(obj["penalty"], pen, rtol=1e-9, atol=1e-12)
        worst = max(worst, float(np.max(np.abs(obj["penalty"] - pen))))
    return bool(ok), "objective datasets vs codes max diff %s" % fmt(worst)


def run_encode_checks(suite, runner, tmp):
    cfgs = encode_configs()
    problems = {}
    for i, (sname, d, K, N) in enumerate(SHAPES):
        X, D = make_encode_problem(100 + i, d, K, N)
        xpath = os.path.join(tmp, "enc_X_%d.h5" % i)
        dpath = os.path.join(tmp, "enc_D_%d.h5" % i)
        write_data(xpath, X)
        write_dictionary(dpath, D)
        problems[sname] = (X, D, xpath, dpath, d, K, N + 1)

    # How does this scikit-learn treat sparse_encode(algorithm='omp', alpha=T)?
    X, D = problems["K>d"][0], problems["K>d"][1]
    T = omp_tolerance_for(X)
    via_alpha = sparse_encode(X, D, algorithm="omp", alpha=T)
    via_tol = omp_tol_reference(X, D, T)
    if np.allclose(via_alpha, via_tol):
        suite.note("scikit-learn %s: sparse_encode(algorithm='omp', alpha=T) == "
                   "orthogonal_mp_gram(tol=T) (alpha is the squared residual norm)"
                   % sklearn.__version__)
    else:
        suite.note("scikit-learn %s: sparse_encode(algorithm='omp', alpha=T) IGNORES alpha "
                   "(mean nnz %.2f, = n_nonzero_coefs default; with tol=T: %.2f); the "
                   "--tolerance reference is orthogonal_mp_gram(tol=T), tol = ||x - D^T a||^2"
                   % (sklearn.__version__, np.mean(np.sum(via_alpha != 0, axis=1)),
                      np.mean(np.sum(via_tol != 0, axis=1))))

    for cfg in cfgs:
        for sname, (X, D, xpath, dpath, d, K, N) in problems.items():
            if cfg["shapes"] is not None and sname not in cfg["shapes"]:
                continue
            label = "encode %s %s(d=%d,K=%d)" % (cfg["name"], sname, d, K)
            if not suite.wanted(label):
                continue
            flags = [omp_tolerance_for(X) if f == "@omp_tol" else f for f in cfg["flags"]]
            outs = {}
            errors = {}
            for ranks in (1, 2):
                out = os.path.join(tmp, "codes_%s_%s_%d.h5"
                                   % (re.sub(r"\W", "_", cfg["name"]), re.sub(r"\W", "_", sname),
                                      ranks))
                ok, err, _ = runner.run(ranks, ["encode", "--dictionary", dpath, "--input", xpath,
                                                "--output", out, "--dense", "--threads", 1,
                                                "--normalize", "none"] + flags)
                if ok:
                    outs[ranks] = out
                else:
                    errors[ranks] = err
            # reference
            t0 = time.perf_counter()
            A_sk = np.asarray(cfg["reference"](X, D), dtype=np.float64)
            sk_seconds = time.perf_counter() - t0
            if 1 not in outs:
                suite.check(label, False, "dictlearn failed (P=1): %s" % errors[1])
                suite.check(label + " file", False, "dictlearn failed (P=1): %s" % errors[1])
                continue
            C, dense, obj = read_codes(outs[1])
            A_dl = C.toarray()
            compare_codes(suite, label, cfg, X, D, A_dl, A_sk, sk_seconds)
            # the file: P=1 == P=2, CSR == dense, objectives consistent
            problems_found = []
            if 2 not in outs:
                problems_found.append("P=2 failed: %s" % errors[2])
            else:
                a, b = all_datasets(outs[1]), all_datasets(outs[2])
                if sorted(a) != sorted(b):
                    problems_found.append("P=1/P=2 dataset sets differ: %s vs %s"
                                          % (sorted(a), sorted(b)))
                else:
                    diff = [k for k in a if not (a[k].shape == b[k].shape
                                                 and np.array_equal(a[k], b[k]))]
                    if diff:
                        problems_found.append("P=1 and P=2 differ in %s" % ", ".join(diff))
            if dense is None or not np.array_equal(dense, A_dl):
                problems_found.append("/codes_dense != CSR /codes")
            ok_obj, obj_text = check_objective_datasets(X, D, A_dl, obj, cfg)
            if not ok_obj:
                problems_found.append(obj_text)
            suite.check(label + " file", not problems_found,
                        "; ".join(problems_found) if problems_found else
                        "P=1 and P=2 files identical (%d datasets); CSR == dense; %s"
                        % (len(all_datasets(outs[1])), obj_text))

    # Positive codes refused where scikit-learn refuses them.
    X, D, xpath, dpath = problems["K>d"][:4]
    for coder, flags, algorithm in (("omp", ["--nonzeros", NNZ], "omp"),
                                    ("lar", ["--nonzeros", NNZ], "lars")):
        label = "encode %s --positive-codes refused" % coder
        if not suite.wanted(label):
            continue
        try:
            sparse_encode(X, D, algorithm=algorithm, n_nonzero_coefs=NNZ, positive=True)
            sk_text = "scikit-learn accepts positive=True (!)"
        except ValueError as e:
            sk_text = "scikit-learn: %s" % e
        out = os.path.join(tmp, "refused_%s.h5" % coder)
        ok, err, _ = runner.run(2, ["encode", "--dictionary", dpath, "--input", xpath, "--output",
                                    out, "--threads", 1, "--coder", coder, "--positive-codes"]
                                + flags, timeout=60)
        mentions = "positive" in err.lower()
        suite.check(label, (not ok) and mentions and not os.path.exists(out),
                    "dictlearn: %s | %s" % ("exit 0 (accepted)" if ok else err, sk_text))


def compare_codes(suite, label, cfg, X, D, A_dl, A_sk, sk_seconds):
    lam, positive, compare, tol = cfg["lam"], cfg["positive"], cfg["compare"], cfg["tol"]
    nnz = "mean nnz dl %.2f sk %.2f" % (np.mean(np.sum(A_dl != 0, axis=1)),
                                        np.mean(np.sum(A_sk != 0, axis=1)))
    if A_dl.shape != A_sk.shape:
        suite.check(label, False, "shape %s vs scikit-learn %s" % (A_dl.shape, A_sk.shape))
        return
    if compare == "codes":
        edge_text = ""
        if cfg["name"] == "omp-tolerance":
            # ||x||^2 <= T already: dictlearn stops before selecting (its documented rule,
            # "stop once ||x - D a||^2 <= tolerance"), scikit-learn's _gram_omp selects one
            # atom before it first tests tol. Compared separately, not as a mismatch.
            T = omp_tolerance_for(X)
            edge = np.sum(X * X, axis=1) <= T
            edge_ok = not np.any(A_dl[edge] != 0)
            edge_text = ("; %d samples with ||x||^2 <= T=%.4g excluded: nnz there dl %d (must "
                         "be 0) sk %d" % (int(edge.sum()), T, int(np.sum(A_dl[edge] != 0)),
                                          int(np.sum(A_sk[edge] != 0))))
            keep = ~edge
            r = rel_max(A_dl[keep], A_sk[keep])
            ok = r <= tol and edge_ok
        else:
            r = rel_max(A_dl, A_sk)
            ok = r <= tol
        text = "max|A_dl-A_sk|/max|A_sk| = %s (<= %g); %s%s" % (fmt(r), tol, nnz, edge_text)
        if lam is not None and cfg["name"].startswith("lars"):
            k_dl, k_sk = kkt_violation(X, D, A_dl, lam, positive), kkt_violation(X, D, A_sk, lam,
                                                                                  positive)
            ok &= k_dl <= 1e-8
            text += "; KKT violation/lambda dl %s sk %s" % (fmt(k_dl), fmt(k_sk))
        if lam is not None:
            f_dl, f_sk = (lasso_objective(X, D, A_dl, lam, cfg["gamma"]),
                          lasso_objective(X, D, A_sk, lam, cfg["gamma"]))
            text += "; mean objective dl %.10g sk %.10g" % (f_dl.mean(), f_sk.mean())
        else:
            e_dl = np.sum((X - A_dl @ D) ** 2, axis=1)
            e_sk = np.sum((X - A_sk @ D) ** 2, axis=1)
            text += "; mean ||x-D^T a||^2 dl %.10g sk %.10g" % (e_dl.mean(), e_sk.mean())
        suite.check(label, ok, text)
    elif compare == "objective":
        f_dl = lasso_objective(X, D, A_dl, lam, cfg["gamma"])
        f_sk = lasso_objective(X, D, A_sk, lam, cfg["gamma"])
        r = rel_obj(f_dl, f_sk)
        neg = bool(positive and np.any(A_dl < 0))
        suite.check(label, r <= tol and not neg,
                    "mean objective dl %.12g sk %.12g, max per-sample rel diff %s (<= %g)%s; "
                    "codes max rel diff %s; %s" % (f_dl.mean(), f_sk.mean(), fmt(r), tol,
                                                   "; NEGATIVE codes" if neg else "",
                                                   fmt(rel_max(A_dl, A_sk)), nnz))
    elif compare == "positive_lasso":
        f_dl = lasso_objective(X, D, A_dl, lam)
        f_sk = lasso_objective(X, D, A_sk, lam)
        worse = float(np.max(f_dl - f_sk))
        k_dl, k_sk = kkt_violation(X, D, A_dl, lam, True), kkt_violation(X, D, A_sk, lam, True)
        sk_bad = int(np.sum(f_sk > f_dl + 1e-10))
        suite.check(label, worse <= tol and k_dl <= 1e-8,
                    "max(f_dl - f_sk) = %s (<= %g); KKT violation/lambda dl %s (<= 1e-8) sk %s; "
                    "scikit-learn worse on %d/%d samples; mean objective dl %.10g sk %.10g; %s"
                    % (fmt(worse), tol, fmt(k_dl), fmt(k_sk), sk_bad, len(f_dl), f_dl.mean(),
                       f_sk.mean(), nnz))
    elif compare == "gap_tolerance":
        # both stop at duality gap <= 1e-4 ||x||^2: both within that of the optimum
        f_dl = lasso_objective(X, D, A_dl, lam)
        f_sk = lasso_objective(X, D, A_sk, lam)
        bound = tol * np.sum(X * X, axis=1)
        excess = float(np.max(np.abs(f_dl - f_sk) - bound))
        suite.check(label, excess <= 1e-12,
                    "|f_dl - f_sk| <= 1e-4 ||x||^2 per sample (max excess %s); codes max rel "
                    "diff %s; mean objective dl %.10g sk(sparse_encode lasso_cd) %.10g; %s"
                    % (fmt(excess), fmt(rel_max(A_dl, A_sk)), f_dl.mean(), f_sk.mean(), nnz))


# --------------------------------------------------------------------------- 2. dict_learning
def sparsity_and_error(X, U, V):
    X_hat = U @ V
    zeros = float(np.mean(U == 0))
    rel = float(np.mean(np.sum((X_hat - X) ** 2, axis=1) / np.sum(X ** 2, axis=1)))
    return zeros, rel


def make_doc_signal():
    from sklearn.datasets import make_sparse_coded_signal
    kw = dict(n_samples=30, n_components=15, n_features=20, n_nonzero_coefs=10,
              random_state=42)
    try:
        X, _, _ = make_sparse_coded_signal(data_transposed=False, **kw)
    except TypeError:  # scikit-learn < 1.1 (transposed layout only) or >= 1.5 (no argument)
        X, _, _ = make_sparse_coded_signal(**kw)
        if X.shape != (30, 20):
            X = X.T
    return np.asarray(X, dtype=np.float64)


def run_dict_learning_check(suite, runner, tmp):
    label = "dict_learning doc example (N=30, d=20, K=15, alpha=0.1)"
    if not suite.wanted(label):
        return
    X = make_doc_signal()
    U, V, errors = dict_learning(X, n_components=15, alpha=0.1, random_state=42)
    z_sk, e_sk = sparsity_and_error(X, U, V)
    A_sk = sparse_encode(X, V, algorithm="lasso_lars", alpha=0.1)
    f_sk = lasso_objective(X, V, A_sk, 0.1).mean()

    xpath = os.path.join(tmp, "doc_X.h5")
    dpath = os.path.join(tmp, "doc_D.h5")
    cpath = os.path.join(tmp, "doc_codes.h5")
    write_data(xpath, X)
    ok, err, _ = runner.run(2, ["train", "--input", xpath, "--atoms", 15, "--lambda", 0.1,
                                "--batch-size", 30, "--epochs", 100, "--tol", 1e-8,
                                "--update-every", "epoch", "--update", "online", "--coder",
                                "lars", "--threads", 1, "--seed", 0, "--output", dpath])
    if not ok:
        suite.check(label, False, "dictlearn train failed: %s (scikit-learn: zeros %.3f, rel "
                    "error %.4f)" % (err, z_sk, e_sk))
        return
    ok, err, _ = runner.run(2, ["encode", "--dictionary", dpath, "--input", xpath, "--output",
                                cpath, "--coder", "lars", "--lambda", 0.1, "--normalize", "none",
                                "--threads", 1])
    if not ok:
        suite.check(label, False, "dictlearn encode failed: %s" % err)
        return
    with h5py.File(dpath, "r") as f:
        D = f["dictionary"][()]
        epochs = len(f["history"]) if "history" in f else -1
    C, _, _ = read_codes(cpath)
    A = C.toarray()
    z_dl, e_dl = sparsity_and_error(X, A, D)
    f_dl = lasso_objective(X, D, A, 0.1).mean()
    ok = abs(z_dl - z_sk) <= 0.15 and e_sk / 3 <= e_dl <= 3 * e_sk
    suite.check(label, ok,
                "zeros fraction dl %.3f sk %.3f (|diff| <= 0.15); relative error dl %.4f sk %.4f "
                "(within x3); mean lasso objective dl %.5f sk %.5f; epochs dl %d sk %d"
                % (z_dl, z_sk, e_dl, e_sk, f_dl, f_sk, epochs, len(errors)))


# --------------------------------------------------------------------------- 3. minibatch
def make_patch_like(seed, n_train, n_test, d=64, k_true=96, sparsity=5, noise=0.1):
    rng = np.random.default_rng(seed)
    D_true = unit_rows(rng.standard_normal((k_true, d)))

    def draw(n):
        C = np.zeros((n, k_true))
        for i in range(n):
            idx = rng.choice(k_true, size=sparsity, replace=False)
            C[i, idx] = rng.laplace(size=sparsity)
        X = C @ D_true
        X += noise * np.linalg.norm(X, axis=1, keepdims=True) / np.sqrt(d) * \
            rng.standard_normal(X.shape)
        return unit_rows(X)

    return draw(n_train), draw(n_test)


def test_objective(X, D, lam):
    A = sparse_encode(X, D, algorithm="lasso_lars", alpha=lam)
    return float(lasso_objective(X, D, A, lam).mean()), float(np.mean(np.sum(A != 0, axis=1)))


def run_minibatch_check(suite, runner, tmp, n_train=20000, n_test=2000):
    K, lam, batch, epochs = 64, 0.15, 256, 2
    label = "MiniBatchDictionaryLearning (N=%d, d=64, K=%d, alpha=%g, batch=%d, %d epochs)" % (
        n_train, K, lam, batch, epochs)
    if not suite.wanted(label):
        return
    X, X_test = make_patch_like(7, n_train, n_test)
    xpath = os.path.join(tmp, "mb_X.h5")
    write_data(xpath, X)

    t0 = time.perf_counter()
    model = MiniBatchDictionaryLearning(n_components=K, alpha=lam, batch_size=batch,
                                        max_iter=epochs, fit_algorithm="lars",
                                        transform_algorithm="lasso_lars", random_state=0, tol=0,
                                        max_no_improvement=None, shuffle=True)
    model.fit(X)
    sk_seconds = time.perf_counter() - t0
    D_sk = np.asarray(model.components_, dtype=np.float64)
    f_sk, nnz_sk = test_objective(X_test, D_sk, lam)

    results = {}
    for rate in ("default", "1"):
        dpath = os.path.join(tmp, "mb_D_%s.h5" % rate)
        args = ["train", "--input", xpath, "--atoms", K, "--lambda", lam, "--batch-size", batch,
                "--epochs", epochs, "--threads", 1, "--seed", 0, "--output", dpath]
        if rate != "default":
            args += ["--forget-rate", rate]
        t0 = time.perf_counter()
        ok, err, _ = runner.run(2, args, timeout=300)
        seconds = time.perf_counter() - t0
        if not ok:
            results[rate] = (None, err, seconds)
            continue
        with h5py.File(dpath, "r") as f:
            D = f["dictionary"][()]
        f_dl, nnz_dl = test_objective(X_test, D, lam)
        results[rate] = (f_dl, nnz_dl, seconds)

    f_dl, nnz_dl, seconds = results["default"]
    if f_dl is None:
        suite.check(label, False, "dictlearn train failed: %s (scikit-learn test objective %.6f)"
                    % (nnz_dl, f_sk))
    else:
        suite.check(label, f_dl <= f_sk * 1.01,
                    "held-out (%d) objective with exact lasso codes: dictlearn (forget-rate "
                    "default, 2 ranks) %.6f vs scikit-learn %.6f (<= x1.01, ratio %.4f); mean "
                    "nnz %.2f vs %.2f; wall s %.1f vs %.1f"
                    % (n_test, f_dl, f_sk, f_dl / f_sk, nnz_dl, nnz_sk, seconds, sk_seconds))
    f1, nnz1, seconds1 = results["1"]
    if f1 is None:
        suite.note("MiniBatch: dictlearn --forget-rate 1 failed: %s" % nnz1)
    else:
        suite.note("MiniBatch (report only): dictlearn --forget-rate 1 held-out objective %.6f "
                   "vs scikit-learn %.6f (ratio %.4f); mean nnz %.2f vs %.2f; wall s %.1f"
                   % (f1, f_sk, f1 / f_sk, nnz1, nnz_sk, seconds1))


# --------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dictlearn", required=True, help="path to the dictlearn binary")
    p.add_argument("--mpiexec", default=None,
                   help="MPI launcher (default: mpiexec on PATH); run as LAUNCHER -n P "
                        "--oversubscribe")
    p.add_argument("--only", default=None,
                   help="run only the checks whose name matches this regular expression")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args(argv)

    dictlearn = os.path.abspath(a.dictlearn)
    if not os.access(dictlearn, os.X_OK):
        print("FAIL setup: %s is not an executable" % dictlearn)
        print("0 passed, 1 failed")
        return 1
    mpiexec = a.mpiexec or shutil.which("mpiexec") or shutil.which("mpirun")
    if not mpiexec:
        print("FAIL setup: no mpiexec on PATH")
        print("0 passed, 1 failed")
        return 1

    print("compat: dictlearn %s; scikit-learn %s, numpy %s, python %s (%s)"
          % (dictlearn, sklearn.__version__, np.__version__, sys.version.split()[0],
             sys.executable), flush=True)
    suite = Suite(a.only)
    tmp = tempfile.mkdtemp(prefix="dictlearn-compat.")
    runner = Runner(dictlearn, [mpiexec], tmp)
    start = time.perf_counter()
    try:
        run_encode_checks(suite, runner, tmp)
        run_dict_learning_check(suite, runner, tmp)
        run_minibatch_check(suite, runner, tmp)
    finally:
        if a.keep:
            print("compat: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("compat: %.1f s total, %d dictlearn runs (%.1f s)"
          % (time.perf_counter() - start, runner.runs, runner.seconds))
    if suite.failures:
        print("compat: failed: %s" % "; ".join(suite.failures))
    print("%d passed, %d failed" % (suite.passed, suite.failed), flush=True)
    return 1 if suite.failed else 0


if __name__ == "__main__":
    sys.exit(main())
