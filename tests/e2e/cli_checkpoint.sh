#!/usr/bin/env bash
# Checkpoint and resume through the CLI: a signal (as Slurm sends before a time limit)
# stops the run with a checkpoint and exit status 3; resuming ends bitwise equal to an
# uninterrupted run; bad checkpoints and changed parameters are refused by name.
source "$(dirname "$0")/common.sh"
RUN_TIMEOUT=300
cd "$WORK"
trap 'umount "$WORK/tiny" 2>/dev/null || true; rm -rf "$WORK"' EXIT
ARGS=(--synthetic-samples 20000 --synthetic-atoms 64 --atoms 64 --epochs 12 --threads 1)

same_dictionary() {
  "$PYTHON" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1])["dictionary"][()]
b = h5py.File(sys.argv[2])["dictionary"][()]
print("max |difference| =", np.abs(a - b).max())
sys.exit(0 if np.array_equal(a, b) else 1)
PY
}

run_mpi 2 train "${ARGS[@]}" --output full.h5 >full.log 2>&1 || fail "uninterrupted run"

# SIGUSR1 to mpirun once the first epoch is reported.
mpiexec -n 2 --oversubscribe "$DICTLEARN" train "${ARGS[@]}" --checkpoint ck.h5 \
  --output part.h5 >signal.log 2>&1 &
launcher=$!
for _ in $(seq 300); do grep -q "^epoch 1/" signal.log 2>/dev/null && break; sleep 0.1; done
kill -USR1 "$launcher"
status=0
wait "$launcher" || status=$?
cat signal.log | grep -v "^epoch"
if [ "$status" -eq 3 ]; then
  [ -f ck.h5 ] || fail "no checkpoint after the signal"
  if [ -f part.h5 ]; then fail "an interrupted run wrote its output"; fi
  run_mpi 2 train "${ARGS[@]}" --checkpoint ck.h5 --resume yes --output resumed.h5 \
    >resume.log 2>&1 || fail "resume after the signal"
  grep "resuming from" resume.log
  same_dictionary full.h5 resumed.h5 || fail "resumed run differs from the uninterrupted one"
else
  fail "a signalled run exited with $status instead of 3"
fi

# stop-after, resume on another rank count: agreement within the documented tolerance.
status=0
run_mpi 2 train "${ARGS[@]}" --checkpoint ck2.h5 --stop-after 150 --output x.h5 >/dev/null 2>&1 ||
  status=$?
[ "$status" -eq 3 ] && [ -f ck2.h5 ] || fail "stop-after: exit $status, expected 3 and a checkpoint"
run_mpi 3 train "${ARGS[@]}" --checkpoint ck2.h5 --resume auto --output resumed3.h5 \
  >resume3.log 2>&1 || fail "resume on 3 ranks"
"$PYTHON" - <<'PY' || fail "3-rank resume differs by more than 1e-8"
import h5py, numpy as np
a = h5py.File("full.h5")["dictionary"][()]; b = h5py.File("resumed3.h5")["dictionary"][()]
print("2 -> 3 ranks resume: max |difference| =", np.abs(a - b).max())
assert np.abs(a - b).max() < 1e-8
PY

# kill -9 of one rank mid-run: the job ends within 10 s (no hang) and the last checkpoint
# is intact (the run resumes from it).
mpiexec -n 2 --oversubscribe "$DICTLEARN" train "${ARGS[@]}" --epochs 40 --checkpoint ck9.h5 \
  --checkpoint-every 20 --output killed.h5 >kill.log 2>&1 &
launcher=$!
for _ in $(seq 300); do [ -f ck9.h5 ] && break; sleep 0.1; done
sleep 0.5
victim=$(pgrep -f "dictlearn train .*ck9.h5" | grep -v "^$launcher$" | tail -1)
killed_at=$("$PYTHON" -c 'import time; print(time.time())')
kill -9 "$victim"
status=0
for _ in $(seq 150); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$launcher" 2>/dev/null; then
  fail "the job still runs 15 s after kill -9 of rank process $victim"
  pkill -9 -f "dictlearn train .*ck9.h5" || true
fi
wait "$launcher" || status=$?
seconds=$("$PYTHON" -c "import time; print(round(time.time() - $killed_at, 1))")
echo "kill -9 of one rank: the job ended after ${seconds}s with status $status"
"$PYTHON" -c "import sys; sys.exit(0 if $seconds < 10 else 1)" || fail "job took ${seconds}s to end"
[ "$status" -ne 0 ] || fail "a job with a killed rank exited 0"
run_mpi 2 train "${ARGS[@]}" --epochs 40 --checkpoint ck9.h5 --resume yes --stop-after 5 \
  --output x.h5 >resume9.log 2>&1 || true
grep -q "resuming from ck9.h5" resume9.log || fail "the checkpoint after kill -9 is unusable: $(cat resume9.log)"

# A full disk: a tmpfs with room for one checkpoint but not for the next. The run fails
# with a clear error and the previous checkpoint stays valid. (Needs root for mount.)
mkdir -p tiny
if mount -t tmpfs -o size=180k tmpfs tiny 2>/dev/null; then
  status=0
  run_mpi 2 train "${ARGS[@]}" --checkpoint tiny/ck.h5 --checkpoint-every 5 --output full2.h5 \
    >disk.log 2>&1 || status=$?
  grep "dictlearn: error" disk.log || true
  [ "$status" -ne 0 ] && grep -q "disk full or quota exceeded" disk.log ||
    fail "a full disk did not give a clear error (exit $status)"
  [ ! -e tiny/ck.h5.tmp ] || fail "a partial checkpoint was left behind"
  run_mpi 2 train "${ARGS[@]}" --checkpoint tiny/ck.h5 --resume yes --stop-after 1 --output x.h5 \
    >disk-resume.log 2>&1 || true
  grep -q "resuming from tiny/ck.h5: epoch 1, minibatch 5" disk-resume.log ||
    fail "the checkpoint before the full disk is not intact: $(cat disk-resume.log)"
  umount tiny
else
  echo "skipped the full-disk check: mounting a tmpfs needs root"
fi

expect_error() {  # expect_error "fragment" ARGS...
  local fragment=$1 status=0
  shift
  run_mpi 2 train "${ARGS[@]}" "$@" >out.txt 2>err.txt || status=$?
  if [ "$status" -eq 0 ] || ! grep -q -- "$fragment" err.txt; then
    fail "'$*' (exit $status): expected an error with '$fragment', got: $(cat err.txt)"
  else
    echo "ok: $* -> $(cat err.txt)"
  fi
}
expect_error "made with lambda = 0.1, this run has lambda = 0.3" --checkpoint ck2.h5 --resume yes --lambda 0.3
expect_error "not a dictlearn checkpoint" --checkpoint full.h5 --resume yes
cp ck2.h5 old-format.h5
"$PYTHON" -c "import h5py, numpy as np; h5py.File('old-format.h5', 'a').attrs['format_version'] = np.array([0.0])"
expect_error "checkpoint format 0 is not the supported format 3" --checkpoint old-format.h5 --resume yes
expect_error "no checkpoint at 'missing.h5'" --checkpoint missing.h5 --resume yes
mkdir -p readonly && chmod 555 readonly
if [ "$(id -u)" -ne 0 ]; then  # root ignores directory permissions
  expect_error "cannot create checkpoint" --checkpoint readonly/ck.h5 --checkpoint-every 5
fi
expect_error "cannot create checkpoint" --checkpoint no/such/dir/ck.h5 --checkpoint-every 5
finish
