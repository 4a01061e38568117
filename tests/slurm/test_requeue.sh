#!/usr/bin/env bash
# A time-limited Slurm job that is signalled before its limit, checkpoints, requeues
# itself and finishes from the checkpoint: its dictionary must equal, bit for bit, the one
# of an uninterrupted run with the same rank count.
source "$(dirname "$0")/lib.sh"
SLURM_TEST_TIMEOUT=${SLURM_TEST_TIMEOUT:-540}
slurm_cluster_up
cd "$WORK"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# The training time of a run, from its last progress line ("... elapsed 12.3s ...").
elapsed_seconds() { sed -n 's/.*elapsed \([0-9.]*\)s.*/\1/p' "$1" | tail -1; }
# The job must outlive the signal 30 s into its first run, and not by much more: an epoch
# of the default config takes 1 s on 2 ranks of one machine and 1.8 s on another, so
# a 3-epoch probe sizes the run to ~50 s (a fixed 50 epochs made this test 261 s long).
# The rate is that of epochs 2-3: the first is slower (cold caches, the first updates),
# and sizing from all three once made a run of 29 epochs take 33.8 s instead of 45.
mpirun -n 2 --oversubscribe "$DICTLEARN" train "$REPO/configs/default.yaml" --epochs 3 \
  --threads 1 --output probe.h5 >probe.log 2>&1 || fail "3-epoch probe run"
epoch_seconds=$(sed -n 's/.*elapsed \([0-9.]*\)s.*/\1/p' probe.log |
  awk 'NR == 1 { first = $1 } { last = $1 } END { if (NR >= 3) print (last - first) / (NR - 1) }')
epochs=$(awk -v s="${epoch_seconds:-0}" 'BEGIN { e = s > 0 ? int(50 / s) + 1 : 50;
  print (e < 4 ? 4 : (e > 200 ? 200 : e)) }')
ARGS="--epochs $epochs"
# shellcheck disable=SC2086
mpirun -n 2 --oversubscribe "$DICTLEARN" train "$REPO/configs/default.yaml" $ARGS --threads 1 \
  --output reference.h5 >reference.log 2>&1 || fail "uninterrupted reference run"
reference_seconds=$(elapsed_seconds reference.log)
echo "reference: $(grep -c '^epoch' reference.log) epochs in ${reference_seconds}s"
# Shorter than the 30 s before the signal, the job cannot be requeued: say so, not "Restarts=0".
awk -v s="${reference_seconds:-0}" 'BEGIN { exit !(s >= 35) }' ||
  fail "the reference run took ${reference_seconds}s: too short to be signalled; raise --epochs"

# A one-minute limit with the signal 30 s ahead: each run gets a few epochs done.
job=$(slurm_submit DICTLEARN="$DICTLEARN" CONFIG="$REPO/configs/default.yaml" OUTPUT=requeued.h5 \
  EXTRA_ARGS="$ARGS" -- \
  --ntasks=2 --time=1 --signal=B:USR1@30 "$REPO/jobs/train.sbatch")
slurm_expect_state "$job" COMPLETED "time-limited job requeued until done" || true
restarts=$(slurm_job_field "$job" Restarts)
log=$(ls dictlearn-train-"$job".out 2>/dev/null || true)
[ -n "$log" ] && grep -E "run [0-9]|signal|requeue|resuming|complete" "$log"
check "the job was requeued at least once (Restarts=$restarts)" [ "${restarts:-0}" -ge 1 ]
check "the log kept every run (--open-mode=append)" [ "$(grep -c '^dictlearn job' "$log")" -ge 2 ]
check "the requeued job's dictionary equals the uninterrupted one bit for bit" \
  "$PYTHON" -c "
import h5py, numpy as np, sys
a = h5py.File('reference.h5')['dictionary'][()]; b = h5py.File('requeued.h5')['dictionary'][()]
print('max |difference|', np.abs(a - b).max()); sys.exit(0 if np.array_equal(a, b) else 1)"
slurm_finish
