#!/usr/bin/env python3
"""The synthetic experiments of "Dictionary Learning Under Generative Coefficient Priors,
with Applications to Compression": data y = A* G(z) + noise, A* uniform in [0, 1],
z ~ N(0, I), noise sigma 0.1; methods: generative prior (altmin, joint), MOD, K-SVD and
online (dictlearn's default) at the same description budget k; error on a held-out set
against its noiseless version (`dictlearn evaluate`, 4 significant digits) versus the
number of training samples seen.

  setting 1: G(z) = [z; z^2; sin z], k = 3, n = 9, m = 10          (configs/prior/poly-sin.yaml)
  setting 2: G(z) = ReLU(M z^2), M in {0,1}^{300 x k} Bernoulli(0.6), m = 784

Usage: generative_prior_experiment.py --out DIR [--setting 1|2] [--seeds 0,1]
       [--samples 500,1000,2000] [--k 5 (setting 2)] [--methods altmin,joint,mod,ksvd,online]
Writes DIR/results.json, DIR/results.md (method x samples, mean +- sd over seeds; every run;
how often altmin and joint beat both MOD and K-SVD) and DIR/results.png (error versus N).
"""
import argparse
import json
import os
import subprocess
import sys

import h5py
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data(path, setting, seed, n_train, n_test, k):
    rng = np.random.default_rng(seed)
    if setting == 1:
        k, n, m = 3, 9, 10
        generator = os.path.join(REPO, "configs", "prior", "poly-sin.yaml")
        G = lambda z: np.vstack([z, z ** 2, np.sin(z)])
    else:
        n, m = 300, 784
        M = (rng.random((n, k)) < 0.6).astype(np.float64)
        generator = path.replace(".h5", "-generator.yaml")
        with h5py.File(path.replace(".h5", "-M.h5"), "w") as f:
            f["M"] = M
        with open(generator, "w") as f:
            f.write("input_dim: %d\nlayers:\n  - {type: square}\n"
                    "  - {type: linear, weights: %s:/M}\n  - {type: relu}\n" % (
                        k, os.path.basename(path.replace(".h5", "-M.h5"))))
        G = lambda z: np.maximum(M @ z ** 2, 0)
    A = rng.uniform(0, 1, (m, n))
    z, zt = rng.standard_normal((k, n_train)), rng.standard_normal((k, n_test))
    Y, Yt = A @ G(z), A @ G(zt)
    with h5py.File(path, "w") as f:
        f["X"] = (Y + 0.1 * rng.standard_normal(Y.shape)).T
        f["X_test"] = (Yt + 0.1 * rng.standard_normal(Yt.shape)).T
        f["X_test_clean"] = Yt.T
        f.attrs["setting"], f.attrs["seed"], f.attrs["k"] = setting, seed, k
    return generator, k, n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--setting", type=int, default=1, choices=(1, 2))
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--samples", default="500,1000,2000")
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--k", type=int, default=5, help="setting 2: latent dimension")
    p.add_argument("--epochs", type=int, default=None, help="default: setting 1 40, setting 2 20")
    p.add_argument("--methods", default="altmin,joint,mod,ksvd,online")
    p.add_argument("--decode", default=None,
                   help="steps,restarts,lr,screen steps,Gauss-Newton polish of the decodes "
                   "(default: setting 1 500,20,0.03,50,0; setting 2 200,16,0.03,50,60)")
    p.add_argument("--inits", default="6,8",
                   help="generative prior: initialisations of A tried, epochs each")
    p.add_argument("--joint-lr", type=float, default=None,
                   help="joint: Adam step size on A (default: setting 1 1e-2, setting 2 3e-3)")
    p.add_argument("--joint-weight-decay", type=float, default=None,
                   help="joint: decoupled weight decay on A (default: setting 1 0, setting 2 0.3; "
                   "in setting 2 A is only determined on the 5-dimensional range of M, and "
                   "unregularised it grows large cancelling columns that magnify rounding)")
    p.add_argument("--joint-lr-decay", type=float, default=None,
                   help="joint: the step size on A falls to this fraction by the last epoch "
                   "(default: setting 1 1, setting 2 0.1)")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--dictlearn", default=os.path.join(REPO, "build", "dictlearn"))
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite results.md and results.png from OUT/results.json")
    a = p.parse_args()
    if a.report_only:
        return report(a.out)
    os.makedirs(a.out, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mpi = ["mpirun", "-n", str(a.ranks), "--oversubscribe", a.dictlearn]
    if a.decode is None:
        a.decode = "500,20,0.03,50,0" if a.setting == 1 else "200,16,0.03,50,60"
    if a.joint_lr is None:
        a.joint_lr = 1e-2 if a.setting == 1 else 3e-3
    if a.joint_weight_decay is None:
        a.joint_weight_decay = 0.0 if a.setting == 1 else 0.3
    if a.joint_lr_decay is None:
        a.joint_lr_decay = 1.0 if a.setting == 1 else 0.1
    if a.epochs is None:
        a.epochs = 40 if a.setting == 1 else 20
    steps, restarts, lr, screen, polish = a.decode.split(",")
    decode = ["--decode-steps", steps, "--decode-restarts", restarts, "--decode-lr", lr,
              "--decode-screen", screen, "--decode-polish", polish]
    inits, init_epochs = a.inits.split(",")

    def dl(*args):
        out = subprocess.run(mpi + [str(x) for x in args], check=True, env=env,
                             capture_output=True, text=True, cwd=a.out)
        return out.stdout

    results = []
    methods = [m for m in a.methods.split(",") if m]
    sizes = [int(s) for s in a.samples.split(",")]
    for seed in [int(s) for s in a.seeds.split(",")]:
        data = os.path.join(a.out, "setting%d-seed%d.h5" % (a.setting, seed))
        generator, k, n = make_data(data, a.setting, seed, max(sizes), a.test, a.k)
        for size in sizes:
            subset = data.replace(".h5", "-first%d.h5" % size)
            with h5py.File(data) as f, h5py.File(subset, "w") as g:
                g["X"] = f["X"][:size]
            for method in methods:
                model = os.path.join(a.out, "model-%s-seed%d-%d.h5" % (method, seed, size))
                common = ["--input", subset + ":/X", "--epochs", a.epochs, "--seed", seed,
                          "--batch-size", min(200, size), "--threads", 1, "--output", model]
                if method in ("altmin", "joint"):
                    dl("train", "--objective", "generative-prior", "--prior", generator,
                       "--prior-update", method, "--learning-rate", a.joint_lr,
                       "--weight-decay", a.joint_weight_decay,
                       "--prior-lr-decay", a.joint_lr_decay, *decode,
                       "--prior-inits", inits, "--prior-init-epochs", init_epochs, *common)
                    budget = []
                elif method == "mod":
                    dl("train", "--atoms", n, "--update", "mod", "--coder", "omp", "--nonzeros",
                       k, *common)
                    budget = ["--nonzeros", k]
                elif method == "ksvd":
                    dl("train", "--atoms", n, "--update", "ksvd", "--coder", "omp", "--nonzeros",
                       k, *common)
                    budget = ["--nonzeros", k]
                else:
                    dl("train", "--atoms", n, "--lambda", 0.1, *common)
                    budget = ["--nonzeros", k]
                evaluated = dl("evaluate", "--dictionary", model, "--input", data + ":/X_test",
                            "--clean", data + ":/X_test_clean", "--digits", 4, *budget,
                            *(decode if not budget else []))
                line = [l for l in evaluated.splitlines() if l.startswith("mean squared error")][0]
                error = float(line.split(",")[1].split()[0])  # per sample
                results.append(dict(method=method, seed=seed, samples=size, error=error))
                print("seed %d, %5d samples, %-7s error per sample %.4f" % (
                    seed, size, method, error), flush=True)
    header = ("Setting %d, k = %d, %d test samples, seeds %s, %d epochs: mean ||y_clean - y_hat||^2 "
              "per test sample, k parameters per sample rounded to 4 significant digits (lower "
              "is better)." % (a.setting, k, a.test, a.seeds, a.epochs))
    json.dump(dict(header=header, command=" ".join(sys.argv), runs=results),
              open(os.path.join(a.out, "results.json"), "w"), indent=1)
    report(a.out)


def report(out):
    """results.md (mean +- sd table, per-seed table, the paper's ordering per run) and
    results.png (error versus training samples) from out/results.json."""
    saved = json.load(open(os.path.join(out, "results.json")))
    runs = saved["runs"]
    methods = list(dict.fromkeys(r["method"] for r in runs))
    sizes = sorted(set(r["samples"] for r in runs))
    seeds = sorted(set(r["seed"] for r in runs))
    error = {(r["method"], r["seed"], r["samples"]): r["error"] for r in runs}
    lines = [saved["header"], "", "Command: `%s`" % saved.get("command", "?"), "",
             "| method | " + " | ".join("N = %d" % n for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for m in methods:
        cells = []
        for n in sizes:
            e = [error[(m, s, n)] for s in seeds if (m, s, n) in error]
            cells.append("%.4g +- %.2g" % (np.mean(e), np.std(e)))
        lines.append("| %s | %s |" % (m, " | ".join(cells)))
    lines += ["", "Per run:", "", "| seed | N | " + " | ".join(methods) + " |",
              "|---|---|" + "---|" * len(methods)]
    for s in seeds:
        for n in sizes:
            lines.append("| %d | %d | %s |" % (s, n, " | ".join(
                "%.4g" % error[(m, s, n)] if (m, s, n) in error else "" for m in methods)))
    baselines = [m for m in ("mod", "ksvd") if m in methods]
    for prior in [m for m in ("altmin", "joint") if m in methods]:
        if not baselines:
            break
        cases = [(s, n) for s in seeds for n in sizes
                 if (prior, s, n) in error and all((b, s, n) in error for b in baselines)]
        wins = sum(error[(prior, s, n)] < min(error[(b, s, n)] for b in baselines)
                   for s, n in cases)
        lines.append("\n%s below both %s in %d of %d runs." % (
            prior, " and ".join(baselines), wins, len(cases)))
    open(os.path.join(out, "results.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        mean = [np.mean([error[(m, s, n)] for s in seeds if (m, s, n) in error]) for n in sizes]
        sd = [np.std([error[(m, s, n)] for s in seeds if (m, s, n) in error]) for n in sizes]
        ax.errorbar(sizes, mean, yerr=sd, marker="o", capsize=3, label=m)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training samples N")
    ax.set_ylabel("test error per sample (vs clean)")
    ax.set_title(saved["header"].split(":")[0], fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=120)


if __name__ == "__main__":
    main()
