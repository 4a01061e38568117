#!/usr/bin/env python3
"""evaluate.py - score a learned dictionary on held-out data.

For every test sample x it computes the exact lasso code
    a = argmin 0.5 * ||x - D^T a||^2 + lam * ||a||_1
with scikit-learn's sparse_encode(algorithm='lasso_lars', alpha=lam) (the same
coder and the same lam convention as MiniBatchDictionaryLearning(alpha=lam)),
and reports:
  objective      mean over samples of 0.5||x - D^T a||^2 + lam||a||_1
  recon_term     mean 0.5||x - D^T a||^2;   l1_term  mean lam||a||_1
  nnz_mean       mean number of non-zeros per code
  rel_error      ||X - A D||_F / ||X||_F
  kkt            largest violation of the lasso optimality conditions / lam
                 (a sanity check of the coder; ~1e-10 when codes are exact)
  atom norms     min / max row norm of D (the format expects unit rows; the
                 dictionary is used as stored, never renormalised)
With --true-dictionary it also reports atom recovery: the fraction of true atoms
whose largest |cosine| with any learned atom exceeds --recovery-threshold (0.99).

Inputs: --dictionary FILE holds /dictionary (K, d) (or --dataset NAME, or
FILE:/name); --data FILE holds the samples: --test-dataset (default /X_test,
falling back to /X when absent). --true-dictionary FILE[:/name] defaults to the
dataset /true_dictionary.

Prints a short table; --json prints one JSON line instead (--json --table: both,
JSON last).

Example:
  evaluate.py --dictionary /tmp/dl-data/dict.h5 --data /tmp/dl-data/patches8.h5 \\
      --lambda 0.15 --json
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, epilog=dlcommon.REQUIREMENTS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dictionary", "-D", required=True,
                   help="HDF5 file with the dictionary (FILE or FILE:/dataset)")
    p.add_argument("--dataset", default="/dictionary",
                   help="dictionary dataset name (default /dictionary)")
    p.add_argument("--data", "-X", required=True, help="HDF5 file with the test samples")
    p.add_argument("--test-dataset", default="/X_test",
                   help="samples dataset (default /X_test; falls back to /X if absent)")
    p.add_argument("--lambda", "-l", dest="lam", type=float, required=True,
                   help="l1 weight lam (= scikit-learn alpha)")
    p.add_argument("--max-samples", type=int, default=0,
                   help="evaluate only the first M samples (default 0 = all)")
    p.add_argument("--true-dictionary", default=None, metavar="FILE[:/name]",
                   help="ground-truth dictionary for atom recovery "
                        "(dataset default /true_dictionary)")
    p.add_argument("--recovery-threshold", type=float, default=0.99,
                   help="|cos| above which a true atom counts as recovered (default 0.99)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="joblib workers for sparse_encode (default: 1)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--table", action="store_true", help="with --json, also print the table")
    a = p.parse_args(argv)
    if a.lam < 0:
        p.error("--lambda must be >= 0")
    return a


def result_rows(res):
    rows = [
        ("samples", "%d x %d" % (res["n_samples"], res["dim"])),
        ("atoms", res["atoms"]),
        ("lambda", res["lambda"]),
        ("objective", res["objective"]),
        ("  0.5||x-D'a||^2", res["recon_term"]),
        ("  lam||a||_1", res["l1_term"]),
        ("nnz mean", res["nnz_mean"]),
        ("rel error", res["rel_error"]),
        ("zero codes", res["zero_code_fraction"]),
        ("kkt max viol/lam", res["kkt_max_violation_rel"]),
        ("atom norm min/max", "%.6g / %.6g" % (res["atom_norm_min"], res["atom_norm_max"])),
        ("encode seconds", res["encode_seconds"]),
    ]
    if "recovery_fraction" in res:
        rows.append(("atoms recovered", "%d / %d = %.1f%% (|cos| > %g, mean best %.4f)" % (
            res["recovered"], res["true_atoms"], 100.0 * res["recovery_fraction"],
            res["recovery_threshold"], res["best_cos_mean"])))
    return rows


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py", "sklearn")

    dpath, dname = dlcommon.split_spec(a.dictionary, a.dataset)
    D, dname = dlcommon.read_matrix(dpath, dname)
    X, xname = dlcommon.read_matrix(a.data, a.test_dataset, fallback="/X")
    if xname != a.test_dataset:
        sys.stderr.write("warning: %s has no %s; evaluating on %s\n"
                         % (a.data, a.test_dataset, xname))
    if a.max_samples > 0:
        X = X[:a.max_samples]
    if D.shape[1] != X.shape[1]:
        dlcommon.die("dictionary has d=%d but %s:%s has d=%d"
                     % (D.shape[1], a.data, xname, X.shape[1]))
    res = dlcommon.evaluate_dictionary(X, D, a.lam, n_jobs=a.n_jobs)
    res.update({"dictionary": "%s:%s" % (dpath, dname), "data": "%s:%s" % (a.data, xname)})
    if a.true_dictionary:
        tpath, tname = dlcommon.split_spec(a.true_dictionary, "/true_dictionary")
        T, _ = dlcommon.read_matrix(tpath, tname)
        res.update(dlcommon.atom_recovery(D, T, a.recovery_threshold))

    if not a.json or a.table:
        dlcommon.print_table("evaluate %s on %s" % (res["dictionary"], res["data"]),
                             result_rows(res))
    if a.json:
        dlcommon.print_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
