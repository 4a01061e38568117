#!/usr/bin/env bash
# The Slurm job scripts on a real (local, single-node) Slurm cluster:
#   jobs/train.sbatch with srun --mpi=pmix and with mpirun, 2 ranks (the same dictionary,
#   bit for bit), and 1 rank x 2 threads; a failing run ends FAILED with dictlearn's error;
#   jobs/encode.sbatch on the trained dictionary with both launchers (identical codes).
# Usage: tests/slurm/test_slurm.sh DICTLEARN_BINARY   (as root: it may install and start
# Slurm through scripts/slurm-local.sh; a cluster already running there is reused. Not
# root and no cluster running: skipped, exit status 77.)
# shellcheck source=tests/slurm/lib.sh disable=SC2317  # functions run through check
source "$(dirname "$0")/lib.sh"
START=$SECONDS
slurm_cluster_up

# The cluster itself: the node is usable and an impossible request is refused at once
# (EnforcePartLimits=ALL) instead of pending forever.
node_up() { [[ $(sinfo -h -N -n localhost -o %T) =~ ^(idle|mixed|allocated|completing)$ ]]; }
check "node localhost is up ($(sinfo -h -N -n localhost -o %T))" node_up
if sbatch --ntasks=999 --wrap true >"$WORK/refused.txt" 2>&1; then
  fail "an impossible request (--ntasks=999) was accepted: $(cat "$WORK/refused.txt")"
  scancel "$(grep -o '[0-9]*' "$WORK/refused.txt" | tail -n 1)" 2>/dev/null || true
else
  pass "an impossible request is refused at submission ($(tr -d '\n' <"$WORK/refused.txt"))"
fi

# A small dataset to encode (d = 64, the dimension of the synthetic training data).
"$PYTHON" - "$WORK/data.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["X"] = np.random.default_rng(7).standard_normal((1000, 64))
PY

TRAIN=(DICTLEARN="$DICTLEARN" CONFIG="$REPO/configs/default.yaml"
  EXTRA_ARGS="--synthetic-samples 20000 --synthetic-atoms 64 --atoms 64 --epochs 3")
JOBS=$REPO/jobs
# Everything is queued at once; the node (2 CPUs) runs the jobs one or two at a time.
train_srun=$(slurm_submit "${TRAIN[@]}" LAUNCHER=srun OUTPUT=dict-srun.h5 -- "$JOBS/train.sbatch")
train_mpirun=$(slurm_submit "${TRAIN[@]}" LAUNCHER=mpirun OUTPUT=dict-mpirun.h5 -- "$JOBS/train.sbatch")
train_threads=$(slurm_submit "${TRAIN[@]}" LAUNCHER=mpirun OUTPUT=dict-threads.h5 -- \
  --ntasks=1 --cpus-per-task=2 "$JOBS/train.sbatch")
train_bad=$(slurm_submit DICTLEARN="$DICTLEARN" CONFIG="$REPO/configs/default.yaml" \
  EXTRA_ARGS="--atoms 0" LAUNCHER=srun OUTPUT=dict-bad.h5 -- "$JOBS/train.sbatch")
ENCODE=(DICTLEARN="$DICTLEARN" DICTIONARY=dict-srun.h5 INPUT=data.h5:/X
  CODER_ARGS="--coder omp --nonzeros 5")
encode_srun=$(slurm_submit "${ENCODE[@]}" LAUNCHER=srun OUTPUT=codes-srun.h5 -- \
  --dependency=afterok:"$train_srun" "$JOBS/encode.sbatch")
encode_mpirun=$(slurm_submit "${ENCODE[@]}" LAUNCHER=mpirun OUTPUT=codes-mpirun.h5 -- \
  --dependency=afterok:"$train_srun" --ntasks=1 --cpus-per-task=2 "$JOBS/encode.sbatch")
echo "submitted train $train_srun (srun) $train_mpirun (mpirun) $train_threads (1x2)" \
  "$train_bad (bad), encode $encode_srun (srun) $encode_mpirun (mpirun 1x2)"

check_log() { # check_log JOB DESCRIPTION PATTERN...: every pattern is in the job's output
  local job=$1 description=$2 log pattern
  shift 2
  log=$(slurm_job_field "$job" StdOut)
  for pattern in "$@"; do
    if ! grep -q -- "$pattern" "$log" 2>/dev/null; then
      fail "$description: '$pattern' not in $log"
      slurm_show_job "$job"
      return
    fi
  done
  pass "$description"
}

check_dictionary() { # check_dictionary FILE RANKS THREADS
  "$PYTHON" - "$WORK/$1" "$2" "$3" <<'PY'
import sys, h5py, numpy as np
path, ranks, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with h5py.File(path, "r") as f:
    D = f["/dictionary"][()]
    assert D.shape == (64, 64), D.shape
    assert f.attrs["ranks"] == ranks, f.attrs["ranks"]
    assert f.attrs["threads"] == threads, f.attrs["threads"]
    assert f["/history"].shape == (3,), f["/history"].shape
    assert np.isfinite(D).all()
    assert np.allclose(np.linalg.norm(D, axis=1), 1), "atoms are not unit norm"
    print(f"{path}: /dictionary {D.shape}, ranks {ranks}, threads {threads}, "
          f"recovered {f.attrs['recovered_fraction']:.0%} of the true atoms")
PY
}

same_datasets() { # same_datasets FILE1 FILE2 DATASET...: bitwise equal
  "$PYTHON" - "$WORK/$1" "$WORK/$2" "${@:3}" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for name in sys.argv[3:]:
    assert np.array_equal(a[name][()], b[name][()]), name
PY
}

if slurm_expect_state "$train_srun" COMPLETED "train, srun --mpi=pmix, 2 ranks"; then
  check_log "$train_srun" "train (srun) log" "2 ranks x 1 threads on localhost" "epoch 3/3" "wrote dict-srun.h5"
  check "train (srun) dictionary: /dictionary (64, 64), attrs ranks == 2" check_dictionary dict-srun.h5 2 1
fi
if slurm_expect_state "$train_mpirun" COMPLETED "train, mpirun, 2 ranks"; then
  check_log "$train_mpirun" "train (mpirun) log" "2 ranks x 1 threads on localhost" "wrote dict-mpirun.h5"
  check "train (mpirun) dictionary: /dictionary (64, 64), attrs ranks == 2" check_dictionary dict-mpirun.h5 2 1
  check "srun and mpirun train the same dictionary, bit for bit" \
    same_datasets dict-srun.h5 dict-mpirun.h5 /dictionary
fi
if slurm_expect_state "$train_threads" COMPLETED "train, mpirun, 1 rank x 2 threads"; then
  check_log "$train_threads" "train (1x2) log" "1 ranks x 2 threads on localhost"
  check "train (1x2) dictionary: attrs ranks == 1, threads == 2" check_dictionary dict-threads.h5 1 2
fi
if slurm_expect_state "$train_bad" FAILED "train with --atoms 0"; then
  check "train with --atoms 0: exit code 1" test "$(slurm_job_field "$train_bad" ExitCode)" = 1:0
  check_log "$train_bad" "train with --atoms 0: the error is in the log" "dictlearn: error: atoms"
  check "train with --atoms 0: no output file" test ! -e "$WORK/dict-bad.h5"
fi

check_codes() { # check_codes FILE
  "$PYTHON" - "$WORK/$1" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    g = f["/codes"]
    assert tuple(g.attrs["shape"]) == (1000, 64), g.attrs["shape"]
    indptr = g["indptr"][()]
    assert indptr.shape == (1001,) and indptr[0] == 0 and indptr[-1] == g["data"].shape[0]
    assert np.diff(indptr).max() <= 5, "more than 5 nonzeros in a code"
    assert ((g["indices"][()] >= 0) & (g["indices"][()] < 64)).all()
    assert f["/objective/total"].shape == (1000,)
    print(f"{sys.argv[1]}: codes (1000, 64), {indptr[-1]} nonzeros")
PY
}

if slurm_expect_state "$encode_srun" COMPLETED "encode, srun --mpi=pmix, 2 ranks"; then
  check_log "$encode_srun" "encode (srun) log" "2 ranks x 1 threads on localhost" "wrote codes-srun.h5"
  check "encode (srun) codes: CSR (1000, 64), <= 5 nonzeros per row" check_codes codes-srun.h5
fi
if slurm_expect_state "$encode_mpirun" COMPLETED "encode, mpirun, 1 rank x 2 threads"; then
  check "encode (mpirun 1x2) codes: CSR (1000, 64), <= 5 nonzeros per row" check_codes codes-mpirun.h5
  check "encode: srun 2x1 and mpirun 1x2 write the same codes" same_datasets codes-srun.h5 \
    codes-mpirun.h5 /codes/data /codes/indices /codes/indptr /objective/total
fi

# A lambda sweep as a job array: task i trains with line i of the list.
printf '# lambdas\n0.1\n0.2\n' >"$WORK/lambdas.txt"
sweep=$(slurm_submit DICTLEARN="$DICTLEARN" CONFIG="$REPO/configs/default.yaml" \
  LAMBDAS="$WORK/lambdas.txt" OUTDIR="$WORK/sweep" \
  EXTRA_ARGS="--synthetic-samples 20000 --synthetic-atoms 64 --atoms 64 --epochs 2" -- \
  --array=0-1 "$REPO/jobs/sweep.sbatch")
while [ -n "$(squeue -h -j "$sweep" 2>/dev/null)" ] && [ "$SECONDS" -lt "$SLURM_TEST_DEADLINE" ]; do
  sleep 1
done
check "sweep: one dictionary per lambda, recording its lambda" "$PYTHON" -c "
import h5py
for value in (0.1, 0.2):
    with h5py.File(f'$WORK/sweep/lambda-{value}.h5') as f:
        assert f.attrs['lambda'] == value and f['dictionary'].shape == (64, 64), value"

echo "Slurm tests took $((SECONDS - START)) s"
slurm_finish
