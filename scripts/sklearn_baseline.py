#!/usr/bin/env python3
"""sklearn_baseline.py - scikit-learn reference run for dictlearn.

Fits
    MiniBatchDictionaryLearning(n_components=K, alpha=lam, batch_size=B,
        fit_algorithm='lars' (or 'cd'), transform_algorithm='lasso_lars',
        max_iter=EPOCHS, shuffle=True, random_state=SEED, n_jobs=..., tol=...,
        max_no_improvement=...)
on the dataset /X of an HDF5 file, timing fit() alone with a wall clock
(time.perf_counter; process CPU time and the load average are reported
too, since other jobs on the machine inflate the wall time). Notes on what
that time contains, for comparisons:
  * scikit-learn >= 1.1 counts max_iter in EPOCHS (passes over the data), i.e.
    max_iter * ceil(N / B) minibatch steps; the old n_iter (steps) is not used;
  * fit() includes the initial dictionary (randomized SVD of X) and a
    shuffled copy of X;
  * early stopping is OFF by default here (tol=0, max_no_improvement=None), so
    exactly EPOCHS epochs run. scikit-learn's own defaults (tol=1e-3,
    max_no_improvement=10, via --sklearn-early-stop) compare
    ||D_new - D_old||_F / K with tol, which in practice stops right after
    min(100 steps, 1 epoch) whatever max_iter says. The steps actually run
    (n_steps_) are reported, with 'early_stopped' when fewer than planned;
  * BLAS threads are whatever the environment gives (reported via
    threadpoolctl; OPENBLAS_* variables are left untouched); sparse coding is
    single-process unless --n-jobs is given;
  * scikit-learn keeps atoms in the ball ||d_k|| <= 1, so rarely used atoms may
    have norm < 1; the dictionary is saved as fitted (row norms reported),
    or scaled to unit rows with --normalize-rows.

The dictionary goes to --output as /dictionary (K, d) float64 with attributes
fit_seconds, params (JSON), sklearn_version, n_steps, n_iter, threads, and the
evaluation figures (eval_*). It is then evaluated like evaluate.py on the test
set (--test-dataset, default /X_test, falling back to /X with a warning): mean
objective 0.5||x - D^T a||^2 + lam||a||_1 with exact lasso_lars codes, mean nnz.
When the data file holds /true_dictionary, atom recovery is reported too.

Example:
  sklearn_baseline.py --data /tmp/dl-data/patches8.h5 --atoms 256 --lambda 0.15 \\
      --batch-size 256 --epochs 1 --output /tmp/dl-data/sk_patches.h5
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402
import evaluate  # noqa: E402  (result_rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, epilog=dlcommon.REQUIREMENTS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", "-X", required=True, help="HDF5 file with /X (and /X_test)")
    p.add_argument("--train-dataset", default="/X", help="training dataset (default /X)")
    p.add_argument("--test-dataset", default="/X_test",
                   help="test dataset (default /X_test; falls back to /X)")
    p.add_argument("--output", "-o", required=True, help="output HDF5 file for /dictionary")
    p.add_argument("--atoms", "-K", type=int, required=True, help="n_components K")
    p.add_argument("--lambda", "-l", dest="lam", type=float, required=True,
                   help="l1 weight lam (= sklearn alpha)")
    p.add_argument("--batch-size", "-b", type=int, default=256, help="minibatch size (default 256)")
    p.add_argument("--epochs", "-e", type=int, default=1,
                   help="passes over the data = sklearn max_iter (default 1)")
    p.add_argument("--fit-algorithm", choices=("lars", "cd"), default="lars",
                   help="coder used during fit (default lars)")
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="sklearn n_jobs for sparse coding (default None = 1)")
    p.add_argument("--sklearn-early-stop", action="store_true",
                   help="use scikit-learn's default early stopping (tol=1e-3, "
                        "max_no_improvement=10) instead of running exactly --epochs")
    p.add_argument("--tol", type=float, default=None,
                   help="sklearn tol (default 0, or 1e-3 with --sklearn-early-stop)")
    p.add_argument("--max-no-improvement", default=None,
                   help="sklearn max_no_improvement, integer or 'none' "
                        "(default none, or 10 with --sklearn-early-stop)")
    p.add_argument("--train-samples", type=int, default=0,
                   help="use only the first N training rows (default 0 = all)")
    p.add_argument("--normalize-rows", action="store_true",
                   help="scale saved atoms to unit norm (default: save as fitted)")
    p.add_argument("--no-eval", action="store_true", help="skip the test evaluation")
    p.add_argument("--eval-samples", type=int, default=0,
                   help="evaluate on the first M test rows only (default 0 = all)")
    p.add_argument("--recovery-threshold", type=float, default=0.99,
                   help="|cos| threshold for atom recovery (default 0.99)")
    p.add_argument("--verbose", type=int, default=0, help="sklearn verbose level")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--table", action="store_true", help="with --json, also print the table")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    a = p.parse_args(argv)
    if a.tol is None:
        a.tol = 1e-3 if a.sklearn_early_stop else 0.0
    if a.max_no_improvement is None:
        a.mni = 10 if a.sklearn_early_stop else None
    else:
        m = a.max_no_improvement.strip().lower()
        try:
            a.mni = None if m == "none" else int(m)
        except ValueError:
            p.error("--max-no-improvement must be an integer or 'none'")
    if a.atoms < 1 or a.batch_size < 1 or a.epochs < 0 or a.lam < 0:
        p.error("need --atoms >= 1, --batch-size >= 1, --epochs >= 0, --lambda >= 0")
    return a


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py", "sklearn")
    import numpy as np
    import h5py
    import sklearn
    import warnings
    from sklearn.decomposition import MiniBatchDictionaryLearning

    if os.path.exists(a.output) and not a.force:
        dlcommon.die("%s exists (use --force to overwrite)" % a.output)

    X, xname = dlcommon.read_matrix(a.data, a.train_dataset)
    if a.train_samples > 0:
        X = X[:a.train_samples]
    n, d = X.shape
    params = dict(n_components=a.atoms, alpha=a.lam, batch_size=a.batch_size,
                  fit_algorithm=a.fit_algorithm, transform_algorithm="lasso_lars",
                  max_iter=a.epochs, shuffle=True, random_state=a.seed,
                  n_jobs=a.n_jobs, tol=a.tol, max_no_improvement=a.mni,
                  verbose=a.verbose)
    model = MiniBatchDictionaryLearning(**params)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c0 = time.process_time()
        t0 = time.perf_counter()
        model.fit(X)
        fit_seconds = time.perf_counter() - t0
        fit_cpu_seconds = time.process_time() - c0
    threads = dlcommon.thread_info()  # after fit: every BLAS/OpenMP library is loaded
    for w in caught:
        sys.stderr.write("sklearn warning: %s\n" % str(w.message).splitlines()[0])

    steps_per_epoch = int(np.ceil(n / min(a.batch_size, n)))
    planned = a.epochs * steps_per_epoch
    n_steps = int(getattr(model, "n_steps_", -1))
    D = np.array(model.components_, dtype=np.float64)
    norms = dlcommon.row_norms(D)
    fit_info = {
        "fit_seconds": float(fit_seconds),
        "fit_cpu_seconds": float(fit_cpu_seconds),
        "load_average_after_fit": [round(x, 2) for x in os.getloadavg()],
        "train_samples": int(n), "dim": int(d),
        "epochs_requested": int(a.epochs),
        "steps_per_epoch": steps_per_epoch,
        "n_steps": n_steps, "n_iter": float(getattr(model, "n_iter_", -1)),
        "early_stopped": bool(0 <= n_steps < planned),
        "fit_atom_norm_min": float(norms.min()),
        "atoms_below_unit_norm": int(np.sum(norms < 1 - 1e-9)),
        "normalized_rows": bool(a.normalize_rows),
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "python": sys.version.split()[0],
        "threads": threads,
        "params": {k: v for k, v in params.items() if k != "verbose"},
        "train_data": "%s:%s" % (a.data, xname),
    }
    if a.normalize_rows:
        safe = np.where(norms > 0, norms, 1.0)
        D = D / safe[:, None]

    res = dict(fit_info)
    if not a.no_eval:
        Xt, tname = dlcommon.read_matrix(a.data, a.test_dataset, fallback="/X")
        if tname != a.test_dataset:
            sys.stderr.write("warning: %s has no %s; evaluating on %s (training data)\n"
                             % (a.data, a.test_dataset, tname))
        if a.eval_samples > 0:
            Xt = Xt[:a.eval_samples]
        ev = dlcommon.evaluate_dictionary(Xt, D, a.lam, n_jobs=a.n_jobs)
        ev["data"] = "%s:%s" % (a.data, tname)
        res.update(ev)
        if dlcommon.has_dataset(a.data, "/true_dictionary"):
            T, _ = dlcommon.read_matrix(a.data, "/true_dictionary")
            res.update(dlcommon.atom_recovery(D, T, a.recovery_threshold))

    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as f:
        ds = dlcommon.write_dataset(f, "dictionary", D)
        attrs = {
            "generator": "sklearn_baseline.py",
            "description": "MiniBatchDictionaryLearning components_ (K, d)",
            "time_seconds": fit_info["fit_seconds"],
            "fit_seconds": fit_info["fit_seconds"],
            "fit_cpu_seconds": fit_info["fit_cpu_seconds"],
            "load_average_after_fit": fit_info["load_average_after_fit"],
            "params": json.dumps(fit_info["params"], sort_keys=True),
            "threads": json.dumps(threads, sort_keys=True),
            "lambda": a.lam, "atoms": a.atoms, "batch_size": a.batch_size,
            "epochs": a.epochs, "seed": a.seed, "fit_algorithm": a.fit_algorithm,
        }
        for k in ("train_samples", "dim", "steps_per_epoch", "n_steps", "n_iter",
                  "early_stopped", "fit_atom_norm_min", "atoms_below_unit_norm",
                  "normalized_rows", "sklearn_version", "numpy_version", "train_data"):
            attrs[k] = fit_info[k]
        if not a.no_eval:
            for k in ("data", "n_samples", "objective", "recon_term", "l1_term",
                      "nnz_mean", "rel_error", "kkt_max_violation_rel"):
                attrs["eval_" + k] = res[k]
            if "recovery_fraction" in res:
                attrs["eval_recovery_fraction"] = res["recovery_fraction"]
                attrs["eval_recovery_threshold"] = res["recovery_threshold"]
        dlcommon.write_attrs(f, attrs)
        dlcommon.write_attrs(ds, {"layout": "rows are atoms (K, d)"})
    os.replace(tmp, a.output)

    if not a.json or a.table:
        rows = [
            ("train", "%s (%d x %d)" % (fit_info["train_data"], n, d)),
            ("K / lambda / batch", "%d / %g / %d" % (a.atoms, a.lam, a.batch_size)),
            ("fit_algorithm", a.fit_algorithm),
            ("epochs (max_iter)", "%d requested, %d/%d steps run%s" % (
                a.epochs, n_steps, planned,
                " (EARLY STOPPED)" if fit_info["early_stopped"] else "")),
            ("fit wall seconds", fit_info["fit_seconds"]),
            ("fit CPU seconds", "%.6g (all threads of this process)" % fit_info["fit_cpu_seconds"]),
            ("load avg after fit", "%.2f %.2f %.2f (other jobs inflate wall time)"
             % tuple(fit_info["load_average_after_fit"])),
            ("threads", "; ".join(threads.get("threadpools", []))),
            ("atoms with norm < 1", fit_info["atoms_below_unit_norm"]),
            ("sklearn", fit_info["sklearn_version"]),
            ("output", a.output),
        ]
        dlcommon.print_table("sklearn MiniBatchDictionaryLearning", rows)
        if not a.no_eval:
            dlcommon.print_table("test evaluation (%s)" % res["data"],
                                 evaluate.result_rows(res))
    if a.json:
        dlcommon.print_json(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
