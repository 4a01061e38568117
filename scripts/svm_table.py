#!/usr/bin/env python3
"""svm_table.py - classification accuracy of feature sets (sparse codes, pixels) as a Markdown table.

For every feature set (--features, repeatable) it fits on the training rows and
scores on the test rows, with scikit-learn:
  linear  LinearSVC(C, loss='squared_hinge', dual = (n_train <= dim),
                    max_iter=--max-iter, random_state=--seed)   one-vs-rest
  rbf     SVC(kernel='rbf', C, gamma=--gamma (default 'scale' = 1/(dim * var(X))))
                                                               one-vs-one (libsvm)
  logreg  LogisticRegression(C, solver='lbfgs', max_iter=--max-iter)  multinomial,
          for reference
and prints one Markdown row per feature set (accuracy on the test rows, in %):
  | features | train | test | dim | nnz/row | LinearSVC | RBF SVC | LogReg | seconds |
`seconds` lists fit + predict wall time per classifier, in column order. A '*'
after an accuracy marks a solver that stopped at max_iter (ConvergenceWarning).
The header is printed first and each row as soon as its set is done.

Feature files (FILE or FILE:/name):
  * a group written by `dictlearn encode`: /codes with datasets data (float64),
    indices (int64), indptr (int64) and attribute shape = [N, K] (CSR). It is
    converted to a dense array (libsvm's dense kernels are ~3x faster than its
    sparse ones at ~15 non-zeros of 128) unless --keep-sparse is given or the
    dense train + test arrays would exceed --max-dense-mb (then kept sparse: all
    three classifiers accept scipy.sparse input; the accuracies are the same);
  * or any 2-D dense dataset, e.g. make_mnist.py's /X, /X_test or encode's /codes_dense.
  Without a dataset name: /codes when the file has it, else /X (train side) or
  /X_test (test side).
Labels (--labels TRAIN,TEST; FILE or FILE:/name): integer vectors; default datasets
/y (train side) and /y_test (test side). Row i of the features must be sample i of
the labels (encode keeps the input's row order).

--scale none (default) uses the features as stored; maxabs divides each column by
its largest |value| on the training rows (keeps sparsity); standard also centres
the columns (densifies codes). Fitted on training rows only.
--max-train / --max-test keep the first rows only, to bound the run time (RBF SVC
on 8,000 x 256 codes or 8,000 x 784 pixels takes about a minute or less).

--output FILE.md writes the table (temporary file + rename; --force to overwrite)
preceded by an HTML comment recording the command line, versions and settings.

Example:
  svm_table.py --labels mnist.h5:/y,mnist.h5:/y_test \\
      --features pixels=mnist.h5:/X,mnist.h5:/X_test \\
      --features codes256=codes_train.h5:/codes,codes_test.h5:/codes \\
      --output /tmp/svm.md
"""

import argparse
import os
import shlex
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402

CLASSIFIERS = {  # key -> column title
    "linear": "LinearSVC",
    "rbf": "RBF SVC",
    "logreg": "LogReg",
}


def parse_pair(text, what):
    parts = text.split(",")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(
            "%s must be TRAIN,TEST (each FILE or FILE:/dataset), got %r" % (what, text))
    return parts


def feature_arg(text):
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            "--features must be NAME=TRAIN,TEST (each FILE or FILE:/dataset), got %r" % text)
    return (name,) + tuple(parse_pair(rest, "--features " + name))


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, epilog=dlcommon.REQUIREMENTS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", action="append", type=feature_arg, required=True,
                   metavar="NAME=TRAIN,TEST",
                   help="a feature set: training and test files (repeatable)")
    p.add_argument("--labels", required=True, type=lambda s: parse_pair(s, "--labels"),
                   metavar="TRAIN,TEST", help="label vectors (default datasets /y, /y_test)")
    p.add_argument("--classifiers", default="linear,rbf,logreg",
                   help="comma-separated subset of linear,rbf,logreg (default all three)")
    p.add_argument("--C", dest="C", type=float, default=1.0,
                   help="inverse regularisation C of all classifiers (default 1.0)")
    p.add_argument("--gamma", default="scale",
                   help="RBF gamma: a number, 'scale' (default) or 'auto'")
    p.add_argument("--scale", choices=("none", "maxabs", "standard"), default="none",
                   help="column scaling fitted on the training rows (default none)")
    p.add_argument("--max-iter", type=int, default=5000,
                   help="iteration cap of LinearSVC and LogisticRegression (default 5000)")
    p.add_argument("--max-train", type=int, default=0,
                   help="use only the first M training rows (default 0 = all)")
    p.add_argument("--max-test", type=int, default=0,
                   help="use only the first M test rows (default 0 = all)")
    p.add_argument("--keep-sparse", action="store_true",
                   help="never convert CSR codes to dense arrays")
    p.add_argument("--max-dense-mb", type=float, default=2048,
                   help="keep CSR codes sparse if dense train + test would exceed this "
                        "(default 2048 MB)")
    p.add_argument("--seed", type=int, default=0, help="LinearSVC random_state (default 0)")
    p.add_argument("-o", "--output", default=None, metavar="FILE.md",
                   help="also write the table to this Markdown file")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no per-classifier progress on stderr")
    a = p.parse_args(argv)
    a.classifiers = [c.strip() for c in a.classifiers.split(",") if c.strip()]
    bad = [c for c in a.classifiers if c not in CLASSIFIERS]
    if bad or not a.classifiers:
        p.error("--classifiers: unknown %s (choose from %s)"
                % (", ".join(bad) or "(empty)", ", ".join(CLASSIFIERS)))
    if len(set(a.classifiers)) != len(a.classifiers):
        p.error("--classifiers lists a classifier twice")
    if a.gamma not in ("scale", "auto"):
        try:
            a.gamma = float(a.gamma)
        except ValueError:
            p.error("--gamma must be a number, 'scale' or 'auto', got %r" % a.gamma)
        if a.gamma <= 0:
            p.error("--gamma must be > 0")
    if a.C <= 0:
        p.error("--C must be > 0")
    if a.max_iter < 1 or a.max_train < 0 or a.max_test < 0:
        p.error("--max-iter must be >= 1, --max-train and --max-test >= 0")
    names = [f[0] for f in a.features]
    if len(set(names)) != len(names):
        p.error("--features: a name is used twice")
    return a


def resolve(spec, fallbacks):
    """FILE[:/name] -> (file, dataset); without a name, the first of `fallbacks` present."""
    import h5py
    path, name = dlcommon.split_spec(spec, None)
    if not os.path.isfile(path):
        dlcommon.die("no such file: %s" % path)
    if name is None:
        with h5py.File(path, "r") as f:
            name = next((n for n in fallbacks if n in f), None)
            if name is None:
                dlcommon.die("%s has none of %s (has: %s); name one as FILE:/dataset"
                             % (path, ", ".join(fallbacks), ", ".join(sorted(f))))
    return path, name


def read_features(spec, side, limit):
    """A (rows, dim) scipy CSR matrix or dense float64 array, and its description."""
    import h5py
    import numpy as np
    import scipy.sparse as sp
    path, name = resolve(spec, ["/codes", "/X" if side == "train" else "/X_test"])
    where = "%s:%s" % (path, name)
    with h5py.File(path, "r") as f:
        if name not in f:
            dlcommon.die("%s has no %s (has: %s)" % (path, name, ", ".join(sorted(f))))
        obj = f[name]
        if isinstance(obj, h5py.Group):
            for part in ("data", "indices", "indptr"):
                if part not in obj:
                    dlcommon.die("%s is a group without %s: not a CSR code file" % (where, part))
            if "shape" not in obj.attrs:
                dlcommon.die("%s has no `shape` attribute" % where)
            shape = tuple(int(s) for s in np.asarray(obj.attrs["shape"]).ravel())
            indptr = np.asarray(obj["indptr"][...], dtype=np.int64)
            if len(shape) != 2 or len(indptr) != shape[0] + 1:
                dlcommon.die("%s: shape %s does not match indptr of length %d"
                             % (where, shape, len(indptr)))
            rows = shape[0] if not limit else min(limit, shape[0])
            end = int(indptr[rows])
            data = np.asarray(obj["data"][:end], dtype=np.float64)
            indices = np.asarray(obj["indices"][:end], dtype=np.int64)
            if indptr[0] != 0 or np.any(np.diff(indptr[:rows + 1]) < 0) or \
                    (end and (indices.min() < 0 or indices.max() >= shape[1])):
                dlcommon.die("%s: inconsistent CSR arrays (indptr/indices)" % where)
            X = sp.csr_matrix((data, indices, indptr[:rows + 1]), shape=(rows, shape[1]))
        else:
            if obj.ndim != 2:
                dlcommon.die("%s must be 2-D, got shape %s" % (where, obj.shape))
            rows = obj.shape[0] if not limit else min(limit, obj.shape[0])
            X = np.asarray(obj[:rows], dtype=np.float64)
    return X, where


def read_labels(spec, side, limit):
    import h5py
    import numpy as np
    path, name = resolve(spec, ["/y" if side == "train" else "/y_test"])
    with h5py.File(path, "r") as f:
        if name not in f or not isinstance(f[name], h5py.Dataset):
            dlcommon.die("%s has no dataset %s" % (path, name))
        y = np.asarray(f[name][...])
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        dlcommon.die("%s:%s must be a vector, got shape %s" % (path, name, y.shape))
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            dlcommon.die("%s:%s holds non-integer labels" % (path, name))
        y = y.astype(np.int64)
    return (y[:limit] if limit else y), "%s:%s" % (path, name)


def make_classifier(key, a, n_train, dim):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC, LinearSVC
    if key == "linear":
        return LinearSVC(C=a.C, dual=n_train <= dim, max_iter=a.max_iter, random_state=a.seed)
    if key == "rbf":
        return SVC(kernel="rbf", C=a.C, gamma=a.gamma)
    return LogisticRegression(C=a.C, max_iter=a.max_iter)


def scale(kind, Xtr, Xte):
    import scipy.sparse as sp
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler
    if kind == "none":
        return Xtr, Xte
    if kind == "standard" and sp.issparse(Xtr):
        Xtr, Xte = Xtr.toarray(), Xte.toarray()
    s = MaxAbsScaler() if kind == "maxabs" else StandardScaler()
    return s.fit_transform(Xtr), s.transform(Xte)


def header(keys):
    cols = ["features", "train", "test", "dim", "nnz/row"] + [CLASSIFIERS[k] for k in keys] + \
        ["seconds"]
    align = ["---"] + ["---:"] * (len(cols) - 1)
    return ["| " + " | ".join(cols) + " |", "|" + "|".join(align) + "|"]


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py", "sklearn", "scipy")
    import warnings
    import numpy as np
    import scipy.sparse as sp
    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    if a.output and os.path.exists(a.output) and not a.force:
        dlcommon.die("%s exists (use --force to overwrite)" % a.output)
    ytr, ytr_where = read_labels(a.labels[0], "train", a.max_train)
    yte, yte_where = read_labels(a.labels[1], "test", a.max_test)

    lines = header(a.classifiers)
    for line in lines:
        print(line)
    sys.stdout.flush()
    notes = []
    for name, train_spec, test_spec in a.features:
        Xtr, tr_where = read_features(train_spec, "train", a.max_train)
        Xte, te_where = read_features(test_spec, "test", a.max_test)
        if Xtr.shape[0] != len(ytr) or Xte.shape[0] != len(yte):
            dlcommon.die("%s: %d train / %d test rows but %d / %d labels (%s, %s)"
                         % (name, Xtr.shape[0], Xte.shape[0], len(ytr), len(yte),
                            ytr_where, yte_where))
        if Xtr.shape[1] != Xte.shape[1]:
            dlcommon.die("%s: train has %d columns, test %d" % (name, Xtr.shape[1], Xte.shape[1]))
        nnz = (Xtr.nnz if sp.issparse(Xtr) else np.count_nonzero(Xtr)) / max(1, Xtr.shape[0])
        if sp.issparse(Xtr) and not a.keep_sparse:
            mb = 8e-6 * (Xtr.shape[0] + Xte.shape[0]) * Xtr.shape[1]
            if mb <= a.max_dense_mb:
                Xtr, Xte = Xtr.toarray(), Xte.toarray()
            elif not a.quiet:
                sys.stderr.write("%s: kept sparse (dense would take %.0f MB > --max-dense-mb)\n"
                                 % (name, mb))
        Xtr, Xte = scale(a.scale, Xtr, Xte)
        accs, secs = [], []
        for key in a.classifiers:
            clf = make_classifier(key, a, Xtr.shape[0], Xtr.shape[1])
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                clf.fit(Xtr, ytr)
                acc = 100.0 * float(np.mean(clf.predict(Xte) == yte))
            secs.append(time.perf_counter() - t0)
            capped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
            accs.append("%.2f%s" % (acc, "*" if capped else ""))
            if capped:
                notes.append("%s/%s" % (name, key))
            if not a.quiet:
                sys.stderr.write("%s %s: %.2f%% test accuracy, %.1f s%s\n"
                                 % (name, CLASSIFIERS[key], acc, secs[-1],
                                    " (hit max_iter)" if capped else ""))
        row = "| %s | %d | %d | %d | %.1f | %s | %s |" % (
            name, Xtr.shape[0], Xte.shape[0], Xtr.shape[1], nnz, " | ".join(accs),
            " / ".join("%.2f" % s for s in secs))
        lines.append(row)
        print(row)
        sys.stdout.flush()
    if notes:
        foot = "\n\\* stopped at max_iter=%d (ConvergenceWarning): %s" % (a.max_iter,
                                                                         ", ".join(notes))
        lines.append(foot)
        print(foot)

    if a.output:
        sources = ["%s = %s , %s" % (n, tr, te) for n, tr, te in a.features]
        comment = [
            "<!-- svm_table.py: test accuracy in % (fit on train rows, score on test rows)",
            "  command: " + " ".join(shlex.quote(x) for x in [sys.executable] + sys.argv),
            "  labels: %s , %s" % (ytr_where, yte_where),
            "  features: " + "; ".join(sources),
            "  classifiers: %s; C=%g gamma=%s scale=%s max_iter=%d seed=%d keep_sparse=%s" % (
                ", ".join(a.classifiers), a.C, a.gamma, a.scale, a.max_iter, a.seed,
                a.keep_sparse),
            "  scikit-learn %s, numpy %s; seconds = fit + predict wall time per classifier"
            % (sklearn.__version__, np.__version__),
            "-->",
        ]
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        tmp = a.output + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("\n".join(comment + lines) + "\n")
        os.replace(tmp, a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
