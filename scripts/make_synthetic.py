#!/usr/bin/env python3
"""make_synthetic.py - synthetic sparse-coding data for dictlearn.

Draws a random ground-truth dictionary D (K x d, i.i.d. Gaussian entries, rows
scaled to unit l2 norm) and N samples x = D^T a + e, where each code a has a
uniformly random support of exactly s atoms with i.i.d. N(0, 1) values, and e is
i.i.d. Gaussian noise: either at a given SNR in dB (noise variance =
mean(clean^2) / 10^(snr/10), measured on the clean training signal) or with a
given standard deviation; without --snr-db / --noise-std the data are noiseless.

Output HDF5 (contiguous, uncompressed float64, readable by h5py and the C++ code):
  /X                   (N, d)  training samples, one per row
  /X_test              (M, d)  held-out samples (only with --split-test M > 0)
  /true_dictionary     (K, d)  unit-norm rows
  /true_support        (N, s)  int32 atom indices of each training code (sorted)
  /true_coefficients   (N, s)  matching coefficient values
  /true_codes          (N, K)  dense codes, only when N*K <= --max-dense-codes
                               (or --codes dense; --codes none skips all code sets)
  /true_support_test, /true_coefficients_test, /true_codes_test likewise for X_test.
Root attributes record every parameter (samples, dim, atoms, sparsity, seed,
snr_db, noise_std, signal_power, generator, ...).

Example:
  make_synthetic.py -o /tmp/dl-data/synth.h5 --samples 20000 --dim 64 \\
      --atoms 128 --sparsity 5 --snr-db 20 --split-test 2000 --seed 0
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        epilog=dlcommon.REQUIREMENTS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output HDF5 file")
    p.add_argument("--samples", "-N", type=int, required=True, help="training samples N")
    p.add_argument("--dim", "-d", type=int, required=True, help="signal dimension d")
    p.add_argument("--atoms", "-K", type=int, required=True, help="true dictionary atoms K")
    p.add_argument("--sparsity", "-s", type=int, required=True,
                   help="non-zeros per code (exactly s, random support)")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--snr-db", type=float, default=None,
                       help="Gaussian noise at this SNR in dB (power ratio)")
    noise.add_argument("--noise-std", type=float, default=None,
                       help="Gaussian noise with this per-entry standard deviation")
    p.add_argument("--split-test", type=int, default=0, metavar="M",
                   help="also write M held-out samples to /X_test (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--codes", choices=("auto", "dense", "none"), default="auto",
                   help="which true codes to store: auto = support/coefficients always, "
                        "dense /true_codes if small enough; dense = always; none = skip "
                        "(default auto)")
    p.add_argument("--max-dense-codes", type=float, default=5e7,
                   help="auto mode writes dense /true_codes only if N*K <= this "
                        "(default 5e7 entries = 400 MB)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.samples <= 0 or a.dim <= 0 or a.atoms <= 0:
        p.error("--samples, --dim and --atoms must be positive")
    if not (1 <= a.sparsity <= a.atoms):
        p.error("--sparsity must be in [1, atoms]")
    if a.split_test < 0:
        p.error("--split-test must be >= 0")
    if a.noise_std is not None and a.noise_std < 0:
        p.error("--noise-std must be >= 0")
    return a


def draw_codes(rng, n, k, s):
    """Random supports (n, s) sorted, and N(0,1) values (n, s)."""
    import numpy as np
    # argpartition of uniform keys gives a uniform random s-subset per row
    keys = rng.random((n, k))
    support = np.argpartition(keys, s - 1, axis=1)[:, :s] if s < k else \
        np.tile(np.arange(k), (n, 1))
    support = np.sort(support, axis=1).astype(np.int32)
    values = rng.standard_normal((n, s))
    return support, values


def synthesize(D, support, values):
    """X = A @ D with A given by (support, values); computed without a dense A."""
    import numpy as np
    n, s = support.shape
    X = np.zeros((n, D.shape[1]))
    for j in range(s):
        X += values[:, j:j + 1] * D[support[:, j]]
    return X


def dense_codes(support, values, k):
    import numpy as np
    n = support.shape[0]
    A = np.zeros((n, k))
    A[np.arange(n)[:, None], support] = values
    return A


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py")
    import numpy as np
    import h5py

    if os.path.exists(a.output) and not a.force:
        dlcommon.die("%s exists (use --force to overwrite)" % a.output)
    d, k, s = a.dim, a.atoms, a.sparsity
    rng = np.random.default_rng(a.seed)

    D = rng.standard_normal((k, d))
    D /= dlcommon.row_norms(D)[:, None]

    sup_tr, val_tr = draw_codes(rng, a.samples, k, s)
    X = synthesize(D, sup_tr, val_tr)
    if a.split_test:
        sup_te, val_te = draw_codes(rng, a.split_test, k, s)
        Xt = synthesize(D, sup_te, val_te)

    signal_power = float(np.mean(X * X))
    if a.snr_db is not None:
        noise_std = float(np.sqrt(signal_power / 10.0 ** (a.snr_db / 10.0)))
    elif a.noise_std is not None:
        noise_std = float(a.noise_std)
    else:
        noise_std = 0.0
    if noise_std > 0:
        X += noise_std * rng.standard_normal(X.shape)
        if a.split_test:
            Xt += noise_std * rng.standard_normal(Xt.shape)
    realised_snr = (10.0 * np.log10(signal_power / noise_std ** 2)
                    if noise_std > 0 else float("inf"))

    write_dense = a.codes == "dense" or (
        a.codes == "auto" and a.samples * k <= a.max_dense_codes)
    write_sparse = a.codes != "none"

    attrs = {
        "generator": "make_synthetic.py",
        "samples": a.samples, "dim": d, "atoms": k, "sparsity": s,
        "test_samples": a.split_test, "seed": a.seed,
        "snr_db": float(a.snr_db) if a.snr_db is not None else float("nan"),
        "noise_std": noise_std, "signal_power": signal_power,
        "realised_snr_db": float(realised_snr),
        "dictionary_model": "iid N(0,1) entries, rows normalised to unit l2 norm",
        "code_model": "exactly s non-zeros per sample on a uniform random support, "
                      "values iid N(0,1)",
        "noise_model": "iid Gaussian, std noise_std, added to X and X_test",
        "layout": "rows are samples (N, d); dictionary rows are atoms (K, d)",
        "numpy_version": np.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as f:
        dlcommon.write_attrs(f, attrs)
        dlcommon.write_dataset(f, "X", X, {"description": "training samples (N, d)"})
        if a.split_test:
            dlcommon.write_dataset(f, "X_test", Xt, {"description": "test samples (M, d)"})
        dlcommon.write_dataset(f, "true_dictionary", D,
                               {"description": "ground-truth atoms (K, d), unit rows"})
        if write_sparse:
            dlcommon.write_dataset(f, "true_support", sup_tr)
            dlcommon.write_dataset(f, "true_coefficients", val_tr)
            if a.split_test:
                dlcommon.write_dataset(f, "true_support_test", sup_te)
                dlcommon.write_dataset(f, "true_coefficients_test", val_te)
        if write_dense:
            dlcommon.write_dataset(f, "true_codes", dense_codes(sup_tr, val_tr, k),
                                   {"description": "dense true codes (N, K); X ~ codes @ D"})
            if a.split_test:
                dlcommon.write_dataset(f, "true_codes_test", dense_codes(sup_te, val_te, k))
    os.replace(tmp, a.output)

    if not a.quiet:
        rows = [("output", a.output), ("X", "%d x %d" % X.shape)]
        if a.split_test:
            rows.append(("X_test", "%d x %d" % Xt.shape))
        rows += [("true_dictionary", "%d x %d" % D.shape), ("sparsity", s),
                 ("noise_std", noise_std), ("snr_db", float(realised_snr)),
                 ("dense true_codes", "yes" if write_dense else "no"), ("seed", a.seed)]
        dlcommon.print_table("make_synthetic", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
