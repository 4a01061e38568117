#!/usr/bin/env python3
"""run_peer.py - dictlearn head to head against another C++ dictionary learner, on
identical data (see bench/README.md, "Head to head").

The peer is mlpack 1.0.10's SparseCoding, the C++ dictionary learner that Debian 12
ships (inside r-cran-rcppmlpack; `scripts/setup.sh --peer` installs it). It solves the
same problem, min 0.5 ||x - D a||^2 + lambda ||a||_1 with ||d_j|| <= 1, but in batches:
LARS codes for every sample, then a Newton step on the Lagrange dual for the dictionary
(Lee et al. 2007), repeated. bench/peers/mlpack_sparse_coding.cpp drives mlpack's own
loop through Rcpp and saves the dictionary after every iteration with its training time.

For each dataset (the suite's configurations, bench/run_suite.py) this script
  * builds the data if missing and hands the peer the same /X as raw doubles;
  * runs the peer once, up to --iterations iterations or --max-seconds of training;
  * runs dictlearn in each layout (--layouts) --repeats times, alternating, and the
    fastest layout again at other epoch counts (--epochs-curve: fractions train one
    epoch on the first rows, as the suite does);
  * evaluates every dictionary's test objective the same way (exact lasso on /X_test,
    dlcommon.evaluate_dictionary) and reports the time each learner needs to reach the
    other's objective.
Writes results.md, peer.csv, dictlearn.csv and the logs to --out.

Run with Debian's /usr/bin/python3 (numpy, h5py, scikit-learn) from the repository,
after building dictlearn (build/dictlearn).
"""

import argparse
import csv
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run_suite  # noqa: E402
from run_suite import REPO, dlcommon, fmt, log, median, quote, rel  # noqa: E402

DRIVER = os.path.join(BENCH, "peers", "mlpack_sparse_coding.cpp")
# Within this fraction of the target objective counts as reaching it (the 0.3 %).
REACH_TOLERANCE = 0.003


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="patches",
                   help="comma-separated subset of patches,mnist,synthetic (default patches)")
    p.add_argument("--out", default=None,
                   help="results directory (default bench/results/peer-<timestamp>)")
    p.add_argument("--iterations", type=int, default=40,
                   help="most peer iterations (dictionary steps) per dataset (default 40)")
    p.add_argument("--max-seconds", type=float, default=600.0,
                   help="the peer stops after the first iteration that ends past this "
                        "much training time (default 600)")
    p.add_argument("--repeats", type=int, default=3,
                   help="dictlearn runs per layout (default 3)")
    p.add_argument("--layouts", default="2x1,1x2,1x1",
                   help="dictlearn layouts RANKSxTHREADS (default 2x1,1x2,1x1)")
    p.add_argument("--epochs-curve", default="0.0625,0.125,0.25,0.5,2,4,8,16",
                   help="further dictlearn points, in epochs, with the fastest layout "
                        "(default %(default)s; fractions: one epoch on the first rows)")
    p.add_argument("--peer-blas-threads", type=int, default=1,
                   help="OPENBLAS_NUM_THREADS for the peer (default 1: faster for it than "
                        "OpenBLAS's default pool, measured in bench/README.md)")
    p.add_argument("--data-dir", default=os.path.join(REPO, "bench", "results", "data"),
                   help="where datasets are built / found (default bench/results/data)")
    p.add_argument("--dictlearn", default=os.path.join(REPO, "build", "dictlearn"),
                   help="dictlearn executable (default build/dictlearn)")
    p.add_argument("--mpirun", default="mpirun --oversubscribe --bind-to none",
                   help="launcher and its options (default: %(default)s)")
    p.add_argument("--rscript", default="Rscript", help="R's script runner (default Rscript)")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the dataset generators, as in run_suite.py (default 0)")
    p.add_argument("--patch-images", default=None,
                   help="skimage pictures for the patches, as in run_suite.py")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite results.md from the CSV files already in --out")
    a = p.parse_args(argv)
    known = run_suite.dataset_configs(False)
    a.dataset_list = [s.strip() for s in a.datasets.split(",") if s.strip()]
    for s in a.dataset_list:
        if s not in known:
            p.error("unknown dataset %r (choose from %s)" % (s, ",".join(known)))
    try:
        a.layout_list = [tuple(int(v) for v in s.strip().split("x"))
                         for s in a.layouts.split(",") if s.strip()]
        a.curve = sorted({float(s) for s in a.epochs_curve.split(",") if s.strip()})
    except ValueError:
        p.error("--layouts takes RANKSxTHREADS,... and --epochs-curve numbers")
    if not a.layout_list or any(len(l) != 2 or min(l) < 1 for l in a.layout_list):
        p.error("--layouts takes RANKSxTHREADS,... with both at least 1")
    if any(f <= 0 or (f > 1 and f != round(f)) for f in a.curve):
        p.error("--epochs-curve: fractions below 1, whole numbers above")
    for name in ("iterations", "repeats", "peer_blas_threads"):
        if getattr(a, name) < 1:
            p.error("--%s must be >= 1" % name.replace("_", "-"))
    if a.max_seconds <= 0:
        p.error("--max-seconds must be > 0")
    if a.report_only and a.out is None:
        p.error("--report-only needs --out")
    if a.out is None:
        a.out = os.path.join(REPO, "bench", "results",
                             "peer-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    # What run_suite.Suite reads from its options.
    a.python = sys.executable
    a.dictlearn_args = ""
    a.keep_dictionaries = False
    return a


def build_peer(a):
    """Compiles the driver once (Rcpp caches it in --out); returns seconds, or dies."""
    if shutil.which(a.rscript) is None:
        dlcommon.die("%s not found: the peer needs R and mlpack (Debian: apt-get install "
                     "r-base-dev r-cran-rcppmlpack, or scripts/setup.sh --peer)" % a.rscript)
    logfile = os.path.join(a.out, "logs", "peer-build.log")
    script = 'Rcpp::sourceCpp("%s", cacheDir = "%s")' % (DRIVER, a.rcpp_cache)
    t0 = time.perf_counter()
    r = run_suite.run_timed([a.rscript, "-e", script], logfile)
    if r["rc"] != 0:
        dlcommon.die("building the peer failed (is r-cran-rcppmlpack installed?):\n%s"
                     % run_suite.tail(logfile, 8))
    return time.perf_counter() - t0


def run_peer(a, ds, cfg):
    """One peer run; returns its rows (iteration, training seconds, dictionary)."""
    import numpy as np
    X = dlcommon.read_matrix(cfg["path"], "/X")[0]
    raw = os.path.join(a.out, "%s-train.f64" % ds)
    # N x d in C order is d x N column-major: the layout arma::mat reads.
    np.ascontiguousarray(X, dtype="<f8").tofile(raw)
    prefix = os.path.join(a.out, "%s-peer-dict" % ds)
    table = os.path.join(a.out, "%s-peer-steps.csv" % ds)
    script = ('Rcpp::sourceCpp("%s", cacheDir = "%s"); '
              'r <- mlpack_fit("%s", %dL, %dL, %dL, %r, %dL, %r, 0L, "%s"); '
              'write.csv(r, "%s", row.names = FALSE)'
              % (DRIVER, a.rcpp_cache, raw, X.shape[0], X.shape[1], cfg["K"],
                 cfg["lam"], a.iterations, a.max_seconds, prefix, table))
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.peer_blas_threads))
    logfile = os.path.join(a.out, "logs", "%s-peer.log" % ds)
    log("%s: peer (mlpack SparseCoding), up to %d iterations or %g s" % (
        ds, a.iterations, a.max_seconds))
    r = run_suite.run_timed([a.rscript, "-e", script], logfile, env=env)
    os.remove(raw)
    if r["rc"] != 0 or not os.path.exists(table):
        dlcommon.die("the peer failed on %s (rc %d):\n%s" % (ds, r["rc"],
                                                            run_suite.tail(logfile, 8)))
    # mlpack reports every 100th sample it codes: megabytes of repeated lines.
    subprocess.run(["gzip", "-f", logfile], check=False)
    rows = []
    with open(table) as fh:
        for rec in csv.DictReader(fh):
            k = int(rec["step"])
            path = "%s-%d.bin" % (prefix, k)
            D = np.fromfile(path, dtype="<f8").reshape(cfg["K"], X.shape[1])
            os.remove(path)
            rows.append({"dataset": ds, "iteration": k, "training_s": float(rec["seconds"]),
                         "train_objective": float(rec["objective"]) / X.shape[0], "D": D})
    for row in rows:
        row["wall_s"] = r["wall"]  # the whole Rscript process, for the record
    return rows


def require_run(row, D):
    """Stops at a failed dictlearn run: a comparison without it would mislead."""
    if D is None:
        dlcommon.die("dictlearn %s failed (rc %s): %s; log: %s" % (
            row["layout"], row["rc"], row.get("error", "no dictionary written"), row["log"]))


def epochs_text(epochs):
    return "%g epoch%s" % (epochs, "" if epochs == 1 else "s")


def reach(points, target, tolerance=REACH_TOLERANCE):
    """First (time, point) at or below target * (1 + tolerance), points in time order."""
    for t, p in points:
        if p["test_objective"] <= target * (1.0 + tolerance):
            return t, p
    return None, None


def report_only(a):
    """Summaries from peer.csv, dictlearn.csv and run.json of an earlier run in --out."""
    missing = [n for n in ("peer.csv", "dictlearn.csv", "run.json", "machine.json")
               if not os.path.exists(os.path.join(a.out, n))]
    if missing:
        dlcommon.die("--report-only: %s has no %s (not the output of a run_peer.py run)" % (
            a.out, ", ".join(missing)))

    def read(name):
        with open(os.path.join(a.out, name)) as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            for k, v in r.items():
                try:
                    r[k] = int(v) if k in ("iteration", "repeats") else float(v)
                except (TypeError, ValueError):
                    pass
        return rows
    peer_rows, dl_rows = read("peer.csv"), read("dictlearn.csv")
    with open(os.path.join(a.out, "run.json")) as fh:
        run = json.load(fh)
    with open(os.path.join(a.out, "machine.json")) as fh:
        a.machine = json.load(fh)
    a.repeats = run["repeats"]
    a.peer_blas_threads = run["peer_blas_threads"]
    summary = []
    for ds in run["datasets"]:
        cfg = {"epochs": run["epochs"][ds]}
        mine = [r for r in dl_rows if r["dataset"] == ds]
        fastest = fastest_layout(mine, cfg)
        summary.append(compare(ds, cfg, mine, [r for r in peer_rows if r["dataset"] == ds],
                               fastest))
    write_outputs(a, peer_rows, dl_rows, summary, run["build_seconds"], run["total_seconds"],
                  run["command"], run["finished"], run)
    return 0


def fastest_layout(rows, cfg):
    """The layout with the smallest median training time over the configured epochs."""
    by_layout = {}
    for r in rows:
        if r["epochs_trained"] == cfg["epochs"]:
            by_layout.setdefault(r["layout"], []).append(r["internal_s"])
    return min(by_layout, key=lambda l: median(by_layout[l]))


def main(argv=None):
    a = parse_args(argv)
    if a.report_only:
        return report_only(a)
    run_suite.choose_openblas_coretype()
    dlcommon.require("numpy", "h5py", "sklearn")
    if not os.access(a.dictlearn, os.X_OK):
        dlcommon.die("--dictlearn %s is not an executable; build first (scripts/setup.sh "
                     "build)" % a.dictlearn)
    os.makedirs(os.path.join(a.out, "logs"), exist_ok=True)
    log("results -> %s" % rel(a.out))
    started = time.perf_counter()
    a.machine = run_suite.machine_info(a)
    a.machine["peer_packages"] = [l.strip() for l in run_suite.capture(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "r-cran-rcppmlpack",
         "r-base-core", "r-cran-rcpparmadillo"]).splitlines() if len(l.split()) == 2]
    # Rcpp's build of the driver, reused by every peer run of this invocation.
    a.rcpp_cache = tempfile.mkdtemp(prefix="dictlearn-peer-")
    try:
        return run_all(a, started)
    finally:
        shutil.rmtree(a.rcpp_cache, ignore_errors=True)


def run_all(a, started):
    build_seconds = build_peer(a)
    log("peer built in %.0f s (not counted)" % build_seconds)
    S = run_suite.Suite(a)
    configs = run_suite.dataset_configs(False, a.data_seed, a.patch_images)
    peer_rows, dl_rows, summary = [], [], []
    for ds in a.dataset_list:
        cfg = configs[ds]
        try:
            rec = run_suite.ensure_dataset(a, ds, cfg)
        except RuntimeError as exc:
            dlcommon.die("%s: %s" % (ds, exc))
        cfg.update(path=rec["path"], train=rec["train"], dim=rec["dim"])
        log("%s: %d x %d train, %d test; K=%d lambda=%g" % (
            ds, rec["train"], rec["dim"], rec["test"], cfg["K"], cfg["lam"]))
        mine = []
        for rep in range(a.repeats):
            k = rep % len(a.layout_list)
            for ranks, threads in a.layout_list[k:] + a.layout_list[:k]:
                row, D = S.dictlearn(ds, cfg, ranks, threads, cfg["epochs"])
                require_run(row, D)
                S.evaluate(row, D, cfg)
                row["epochs_trained"] = cfg["epochs"]
                mine.append(row)
                log("  dictlearn %dx%d: own %s s, wall %s s, test objective %s" % (
                    ranks, threads, fmt(row.get("internal_s")), fmt(row["wall_s"]),
                    fmt(row.get("test_objective"), "%.6f")))
        peer = run_peer(a, ds, cfg)
        for row in peer:
            S.evaluate(row, row.pop("D"), cfg)
            log("  peer iteration %d: %.1f s, test objective %.6f" % (
                row["iteration"], row["training_s"], row["test_objective"]))
        fastest = fastest_layout(mine, cfg)
        ranks, threads = (int(v) for v in fastest.split("x"))
        for f in a.curve:
            if abs(f - cfg["epochs"]) < 1e-9:
                continue
            if f < 1:
                n = max(cfg["batch"], int(round(f * cfg["train"])))
                row, D = S.dictlearn(ds, cfg, ranks, threads, 1, tag="curve%g" % f,
                                     data_path=run_suite.subset_file(a, cfg, n))
            else:
                row, D = S.dictlearn(ds, cfg, ranks, threads, int(f), tag="curve%g" % f)
            require_run(row, D)
            S.evaluate(row, D, cfg)
            row["epochs_trained"] = f
            mine.append(row)
            log("  dictlearn %s, %g epochs: own %s s, test objective %s" % (
                fastest, f, fmt(row.get("internal_s")), fmt(row.get("test_objective"), "%.6f")))
        dl_rows += mine
        peer_rows += peer
        summary.append(compare(ds, cfg, mine, peer, fastest))
    run = {"datasets": [s["dataset"] for s in summary], "repeats": a.repeats,
           "peer_blas_threads": a.peer_blas_threads,
           "epochs": {ds: configs[ds]["epochs"] for ds in a.dataset_list}}
    write_outputs(a, peer_rows, dl_rows, summary, build_seconds,
                  time.perf_counter() - started, quote([sys.executable] + sys.argv),
                  time.strftime("%Y-%m-%dT%H:%M:%S"), run)
    if not os.listdir(S.dicts):  # learned dictionaries are deleted after evaluation
        os.rmdir(S.dicts)
    return 0


def compare(ds, cfg, mine, peer, fastest):
    """Each learner's time to the other's objective (within REACH_TOLERANCE)."""
    main_runs = [r for r in mine if r["epochs_trained"] == cfg["epochs"]]
    layouts = {}
    for r in main_runs:
        layouts.setdefault(r["layout"], []).append(r)
    # dictlearn's curve, fastest layout: medians of the main runs plus the other points.
    curve = {}
    for r in mine:
        if r["layout"] == fastest and r.get("test_objective") is not None:
            curve.setdefault(r["epochs_trained"], []).append(r)
    dl_points = sorted([(median([r["internal_s"] for r in rs]),
                         {"test_objective": median([r["test_objective"] for r in rs]),
                          "epochs": e, "wall_s": median([r["wall_s"] for r in rs])})
                        for e, rs in curve.items()], key=lambda point: point[0])
    peer_points = [(p["training_s"], p) for p in peer if p.get("test_objective") is not None]
    best_peer = min((p for _, p in peer_points), key=lambda p: p["test_objective"])
    dl_main = median([r["test_objective"] for r in layouts[fastest]])
    out = {"dataset": ds, "fastest": fastest,
           "layouts": {l: {"own_s": median([r["internal_s"] for r in rs]),
                           "wall_s": median([r["wall_s"] for r in rs]),
                           "test_objective": median([r["test_objective"] for r in rs])}
                       for l, rs in layouts.items()},
           "dl_points": dl_points, "peer_points": peer_points,
           "dl_objective": dl_main, "peer_best": best_peer}
    # The peer to dictlearn's objective after the configured epochs: within the tolerance,
    # and at or below it.
    out["peer_to_dl"] = reach(peer_points, dl_main)
    out["peer_to_dl_exact"] = reach(peer_points, dl_main, 0.0)
    # dictlearn to the peer's best objective, the same two ways.
    out["dl_to_peer"] = reach(dl_points, best_peer["test_objective"])
    out["dl_to_peer_exact"] = reach(dl_points, best_peer["test_objective"], 0.0)
    out["epochs"] = cfg["epochs"]
    return out


def write_outputs(a, peer_rows, dl_rows, summary, build_seconds, total_seconds, command,
                  finished, run):
    machine = a.machine
    if not a.report_only:
        machine["load_average_end"] = list(os.getloadavg())
        with open(os.path.join(a.out, "machine.json"), "w") as fh:
            json.dump(machine, fh, indent=1)
        run_suite.write_csv(os.path.join(a.out, "peer.csv"), peer_rows,
                            ["dataset", "iteration", "training_s", "train_objective",
                             "test_objective", "test_nnz"])
        run_suite.write_csv(os.path.join(a.out, "dictlearn.csv"), dl_rows,
                            ["dataset", "layout", "epochs_trained", "internal_s", "wall_s",
                             "test_objective"])
        with open(os.path.join(a.out, "run.json"), "w") as fh:
            json.dump(dict(run, build_seconds=build_seconds, total_seconds=total_seconds,
                           command=command, finished=finished), fh, indent=1)
    L = ["# dictlearn head to head: mlpack SparseCoding", "",
         "`%s` — %s, %.0f s in all (building the peer: %.0f s, not counted)." % (
             command, finished, total_seconds, build_seconds), "",
         "**Machine:** %s, %s CPUs (%s threads/core), %s GiB; %s; OpenBLAS %s; git %s; "
         "peer packages: %s. Load average at start %s, at end %s." % (
             machine.get("cpu_model_name", "?"), machine.get("cpu_cpus", "?"),
             machine.get("cpu_threads_per_core", "?"), machine.get("memory_gib", "?"),
             machine.get("compiler"), machine.get("openblas"),
             machine.get("git_commit", "?")[:12], "; ".join(machine["peer_packages"]),
             " ".join("%.2f" % x for x in machine["load_average_start"]),
             " ".join("%.2f" % x for x in machine["load_average_end"])), "",
         "**Peer:** mlpack 1.0.10 `SparseCoding<>` (Debian 12 `r-cran-rcppmlpack`), called "
         "from C++ through Rcpp (bench/peers/mlpack_sparse_coding.cpp): LARS codes for all "
         "samples, then a Newton step on the Lagrange dual for the dictionary (atoms in the "
         "unit ball), repeated; its data-dependent random start; one thread (its LARS is "
         "serial), OPENBLAS_NUM_THREADS=%d. Training time = mlpack's own steps, timed in "
         "C++; dictlearn's = the training loop (/history elapsed). Test objective: mean "
         "0.5||x - D a||^2 + lambda ||a||_1 over /X_test with exact lasso codes, the same "
         "for every dictionary. \"Reaches\" = within %.1f %% of the target." % (
             a.peer_blas_threads, 100 * REACH_TOLERANCE), ""]
    for s in summary:
        L += ["## %s" % s["dataset"], "",
              "| learner | layout | training s | wall s | test objective |",
              "|---|---|---|---|---|"]
        for l, v in sorted(s["layouts"].items()):
            L.append("| dictlearn, %s (median of %d) | %s | %s | %s | %.6f |" % (
                epochs_text(s["epochs"]), a.repeats, l, fmt(v["own_s"]), fmt(v["wall_s"]),
                v["test_objective"]))
        L.append("")
        L += ["Objective against training time (dictlearn: layout %s; fractions of an epoch "
              "train on the first rows):" % s["fastest"], "",
              "| learner | point | training s | test objective |", "|---|---|---|---|"]
        for t, p in s["dl_points"]:
            L.append("| dictlearn | %s | %s | %.6f |" % (epochs_text(p["epochs"]), fmt(t),
                                                       p["test_objective"]))
        for t, p in s["peer_points"]:
            L.append("| mlpack | iteration %d | %s | %.6f |" % (p["iteration"], fmt(t),
                                                               p["test_objective"]))
        L.append("")
        dl_time = s["layouts"][s["fastest"]]["own_s"]
        one = s["layouts"].get("1x1")
        t, p = s["peer_to_dl"]
        if t is not None:
            L.append("- mlpack comes within %.1f %% of dictlearn's objective after %s "
                     "(%.6f) after %s s (iteration %d): **%.0fx** dictlearn's %s s (%s)%s." % (
                         100 * REACH_TOLERANCE, epochs_text(s["epochs"]), s["dl_objective"], fmt(t),
                         p["iteration"], t / dl_time, fmt(dl_time), s["fastest"],
                         "; %.0fx dictlearn's 1x1 time, %s s, core for core" % (
                             t / one["own_s"], fmt(one["own_s"])) if one else ""))
            t, p = s["peer_to_dl_exact"]
            if t is not None:
                L.append("- mlpack reaches that objective itself after %s s (iteration %d): "
                         "%.0fx dictlearn's %s time." % (fmt(t), p["iteration"], t / dl_time,
                                                         s["fastest"]))
            else:
                L.append("- mlpack does not reach that objective itself within %d iterations."
                         % s["peer_points"][-1][1]["iteration"])
        else:
            last_t = s["peer_points"][-1][0]
            L.append("- mlpack does not come within %.1f %% of dictlearn's objective (%.6f) within "
                     "%d iterations, %s s: **more than %.0fx** dictlearn's %s s (%s)." % (
                         100 * REACH_TOLERANCE, s["dl_objective"],
                         s["peer_points"][-1][1]["iteration"], fmt(last_t),
                         last_t / dl_time, fmt(dl_time), s["fastest"]))
        best = s["peer_best"]
        t, p = s["dl_to_peer"]
        if t is not None:
            L.append("- dictlearn comes within %.1f %% of mlpack's best objective (%.6f, "
                     "iteration %d at %s s) after %s s (%s): **%.0fx** faster." % (
                         100 * REACH_TOLERANCE,
                         best["test_objective"], best["iteration"], fmt(best["training_s"]),
                         fmt(t), epochs_text(p["epochs"]), best["training_s"] / t))
            t, p = s["dl_to_peer_exact"]
            if t is not None:
                L.append("- dictlearn reaches that objective itself after %s s (%s): "
                         "%.0fx faster." % (fmt(t), epochs_text(p["epochs"]),
                                            best["training_s"] / t))
            else:
                last = s["dl_points"][-1][1]
                L.append("- dictlearn's points do not reach that objective itself (the last: "
                         "%s, %.6f)." % (epochs_text(last["epochs"]), last["test_objective"]))
        else:
            L.append("- dictlearn's points do not come within %.1f %% of mlpack's best "
                     "objective (%.6f)." % (100 * REACH_TOLERANCE, best["test_objective"]))
        L.append("")
    if plot(os.path.join(a.out, "objective_vs_time.png"), summary):
        L += ["![objective vs time](objective_vs_time.png)", ""]
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")
    log("wrote %s" % rel(os.path.join(a.out, "results.md")))


def plot(path, summary):
    """Test objective against training time, one panel per dataset (False without
    matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(summary), figsize=(5.2 * len(summary), 4.2), squeeze=False)
    for ax, s in zip(axes[0], summary):
        dl = [(t, p["test_objective"]) for t, p in s["dl_points"]]
        peer = [(t, p["test_objective"]) for t, p in s["peer_points"] if t > 0]
        ax.plot(*zip(*dl), "o-", label="dictlearn %s" % s["fastest"])
        ax.plot(*zip(*peer), "s-", markersize=3, label="mlpack SparseCoding (1 thread)")
        ax.set_xscale("log")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("test objective")
        ax.set_title(s["dataset"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    sys.exit(main())
