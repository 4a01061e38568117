#!/usr/bin/env python3
"""Shared helpers for the dictlearn Python scripts (not a command itself).

Used by make_synthetic.py, make_patches.py, evaluate.py and sklearn_baseline.py,
which import it after inserting their own directory into sys.path.

Conventions (fixed, shared with the C++ side):
  * data: HDF5 dataset /X of shape (N, d) float64, one sample per row
    (optionally /X_test with the same d);
  * dictionary: HDF5 dataset /dictionary of shape (K, d) float64, one atom
    per row (scikit-learn's components_ layout), rows of unit l2 norm;
  * objective per sample: 0.5 * ||x - D^T a||^2 + lam * ||a||_1, which is
    what scikit-learn minimises for MiniBatchDictionaryLearning(alpha=lam)
    and sparse_encode(algorithm='lasso_lars', alpha=lam) (scikit-learn divides
    alpha by d internally to undo LassoLars' 1/(2d) scaling).

Only the standard library is imported at module level, so that every script
can show --help and then fail with one clear line when numpy / h5py /
scikit-learn are missing (see require()).
"""

import importlib
import json
import os
import sys

# Printed in every script's --help.
REQUIREMENTS_NOTE = (
    "Requires Python 3 with numpy, h5py and scikit-learn (tested with "
    "scikit-learn 1.2.1). On Debian: apt-get install python3-numpy python3-h5py "
    "python3-sklearn, and run the script with /usr/bin/python3 if another "
    "python3 comes first on PATH."
)

_APT = {
    "numpy": "python3-numpy",
    "h5py": "python3-h5py",
    "sklearn": "python3-sklearn",
    "skimage": "python3-skimage",
    "threadpoolctl": "python3-threadpoolctl",
}


def require(*modules):
    """Import the given modules or exit with one clear line naming what is missing."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        pkgs = " ".join(_APT.get(m, m) for m in missing)
        sys.stderr.write(
            "%s: error: Python module(s) %s not available in %s; use Debian's "
            "/usr/bin/python3 with: apt-get install %s\n"
            % (os.path.basename(sys.argv[0]), ", ".join(missing), sys.executable, pkgs)
        )
        sys.exit(2)


def die(msg, code=1):
    sys.stderr.write("%s: error: %s\n" % (os.path.basename(sys.argv[0]), msg))
    sys.exit(code)


# --------------------------------------------------------------------------
# HDF5 helpers
# --------------------------------------------------------------------------

def split_spec(spec, default_dataset):
    """'file.h5' -> ('file.h5', default); 'file.h5:/name' -> ('file.h5', '/name').

    Only a ':' followed by '/' is taken as the separator, so plain paths
    containing ':' still work when they exist as files.
    """
    if os.path.exists(spec):
        return spec, default_dataset
    idx = spec.rfind(":/")
    if idx > 0:
        return spec[:idx], spec[idx + 1:]
    return spec, default_dataset


def read_matrix(path, dataset, fallback=None):
    """Read a 2-D float64 dataset; try `fallback` when `dataset` is absent.

    Returns (array, dataset_name_used).
    """
    import h5py
    import numpy as np

    if not os.path.exists(path):
        die("no such file: %s" % path)
    with h5py.File(path, "r") as f:
        name = dataset
        if name not in f:
            if fallback is not None and fallback in f:
                name = fallback
            else:
                die("%s has no dataset %s (has: %s)"
                    % (path, dataset, ", ".join(sorted(f.keys()))))
        arr = np.asarray(f[name][...], dtype=np.float64)
    if arr.ndim != 2:
        die("%s:%s must be 2-D, got shape %s" % (path, name, arr.shape))
    return np.ascontiguousarray(arr), name


def has_dataset(path, dataset):
    import h5py
    with h5py.File(path, "r") as f:
        return dataset in f


def _attr_value(v):
    """Make a value storable as an HDF5 attribute."""
    import numpy as np
    if v is None:
        return "none"
    if isinstance(v, bool):
        return np.int8(1 if v else 0)
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, str) for x in v):
            return ",".join(v)
        return np.asarray(v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return v


def write_attrs(obj, attrs):
    for k, v in attrs.items():
        obj.attrs[k] = _attr_value(v)


def write_dataset(f, name, arr, attrs=None):
    """Write a contiguous, uncompressed little-endian dataset (easy for C++ HDF5)."""
    import numpy as np
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind == "f":
        arr = arr.astype("<f8", copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype("<i8" if arr.dtype.itemsize > 4 else "<i4", copy=False)
    if name in f:
        del f[name]
    ds = f.create_dataset(name, data=arr)
    if attrs:
        write_attrs(ds, attrs)
    return ds


# --------------------------------------------------------------------------
# Numerics
# --------------------------------------------------------------------------

ZERO_TOL = 1e-12


def row_norms(D):
    import numpy as np
    return np.sqrt(np.einsum("ij,ij->i", D, D))


def lasso_codes(X, D, lam, n_jobs=None, algorithm="lasso_lars", max_iter=1000):
    """Exact lasso codes A (N, K) minimising 0.5||x - D^T a||^2 + lam||a||_1 per row.

    LARS can leave an atom in its active set with a value of ~1e-19 (a variable
    crossing zero); entries with |a| <= ZERO_TOL * max(1, max_k |a_k|) are set to
    exactly 0 so that nnz and the KKT check are not polluted by them (the
    objective changes by < 1e-18).
    """
    import numpy as np
    from sklearn.decomposition import sparse_encode
    A = sparse_encode(X, D, algorithm=algorithm, alpha=lam, n_jobs=n_jobs,
                      max_iter=max_iter)
    A = np.asarray(A, dtype=np.float64)
    scale = np.maximum(1.0, np.abs(A).max(axis=1, initial=0.0))
    A[np.abs(A) <= ZERO_TOL * scale[:, None]] = 0.0
    return A


def objective_terms(X, D, A, lam):
    """Per-sample objective pieces: (0.5*||r||^2, lam*||a||_1, nnz, ||x||^2)."""
    import numpy as np
    R = X - A @ D
    half_sq = 0.5 * np.einsum("ij,ij->i", R, R)
    l1 = lam * np.abs(A).sum(axis=1)
    nnz = np.count_nonzero(A, axis=1)
    xsq = np.einsum("ij,ij->i", X, X)
    return half_sq, l1, nnz, xsq, R


def kkt_violation(D, A, R, lam):
    """Largest violation of the lasso optimality conditions, relative to lam.

    Gradient of the smooth part w.r.t. a is -D r; optimality: (D r)_k = lam*sign(a_k)
    on the support and |(D r)_k| <= lam off it.
    """
    import numpy as np
    G = R @ D.T  # (N, K) = (D r)^T per sample
    on = A != 0
    viol_on = np.abs(G - lam * np.sign(A))
    viol_off = np.maximum(np.abs(G) - lam, 0.0)
    v = np.where(on, viol_on, viol_off)
    return float(v.max() / lam) if lam > 0 and v.size else float(v.max() if v.size else 0.0)


def evaluate_dictionary(X, D, lam, n_jobs=None):
    """Encode X with exact lasso codes and return a dict of summary figures."""
    import time
    import numpy as np

    t0 = time.perf_counter()
    A = lasso_codes(X, D, lam, n_jobs=n_jobs)
    t_enc = time.perf_counter() - t0
    half_sq, l1, nnz, xsq, R = objective_terms(X, D, A, lam)
    norms = row_norms(D)
    total_sq = float(xsq.sum())
    return {
        "n_samples": int(X.shape[0]),
        "dim": int(X.shape[1]),
        "atoms": int(D.shape[0]),
        "lambda": float(lam),
        "objective": float(np.mean(half_sq + l1)),
        "recon_term": float(np.mean(half_sq)),
        "l1_term": float(np.mean(l1)),
        "nnz_mean": float(np.mean(nnz)),
        "rel_error": float(np.sqrt(2.0 * half_sq.sum() / total_sq)) if total_sq > 0 else 0.0,
        "zero_code_fraction": float(np.mean(nnz == 0)),
        "kkt_max_violation_rel": kkt_violation(D, A, R, lam),
        "atom_norm_min": float(norms.min()),
        "atom_norm_max": float(norms.max()),
        "encode_seconds": float(t_enc),
    }


def atom_recovery(D_learned, D_true, threshold=0.99):
    """Fraction of true atoms whose best |cosine| with a learned atom exceeds threshold."""
    import numpy as np
    if D_learned.shape[1] != D_true.shape[1]:
        die("learned dictionary has d=%d, true dictionary has d=%d"
            % (D_learned.shape[1], D_true.shape[1]))
    def unit(M):
        n = row_norms(M)
        n[n == 0] = 1.0
        return M / n[:, None]
    C = np.abs(unit(D_true) @ unit(D_learned).T)  # (K_true, K_learned)
    best = C.max(axis=1)
    return {
        "recovery_threshold": float(threshold),
        "recovered": int(np.sum(best > threshold)),
        "true_atoms": int(D_true.shape[0]),
        "recovery_fraction": float(np.mean(best > threshold)),
        "best_cos_mean": float(best.mean()),
        "best_cos_min": float(best.min()),
    }


def thread_info():
    """Describe BLAS / OpenMP thread pools (threadpoolctl, shipped with scikit-learn)."""
    info = {"cpu_count": os.cpu_count()}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            info[var] = os.environ[var]
    try:
        from threadpoolctl import threadpool_info
        pools = []
        for p in threadpool_info():
            pools.append("%s:%s(%s,%s threads)" % (
                p.get("user_api"), p.get("internal_api"),
                p.get("version"), p.get("num_threads")))
        info["threadpools"] = pools
    except Exception as exc:  # threadpoolctl missing or failing: not fatal
        info["threadpools"] = ["unknown (%s)" % exc.__class__.__name__]
    return info


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def print_table(title, rows, out=None):
    """rows: list of (label, value); floats printed with 6 significant digits."""
    out = out or sys.stdout
    out.write("%s\n" % title)
    width = max(len(k) for k, _ in rows) if rows else 0
    for k, v in rows:
        if isinstance(v, float):
            v = "%.6g" % v
        out.write("  %-*s  %s\n" % (width, k, v))
    out.flush()


def print_json(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()
