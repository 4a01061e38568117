#!/usr/bin/env bash
# Random kill points: the whole job is killed with SIGKILL at random instants (no chance
# to checkpoint), resumed from whatever checkpoint was last completed, killed again, ...
# until it finishes; the final dictionary must equal an uninterrupted run's bit for bit.
# (Killing a single rank is tested in cli_checkpoint.sh.)
source "$(dirname "$0")/common.sh"
RUN_TIMEOUT=300
cd "$WORK"
ARGS=(--synthetic-samples 20000 --synthetic-atoms 64 --atoms 64 --epochs 12 --threads 1
  --checkpoint ck.h5 --checkpoint-every 7 --checkpoint-keep 2)
SEED=${KILL_SEED:-$RANDOM}
echo "kill campaign seed $SEED (set KILL_SEED to replay)"
RANDOM=$SEED

run_mpi 2 train "${ARGS[@]}" --checkpoint reference.ckpt.h5 --output reference.h5 \
  >reference.log 2>&1 || fail "uninterrupted run"
rm -f ck.h5 ck.h5.1
kills=0
for attempt in $(seq 12); do
  mpiexec -n 2 --oversubscribe "$DICTLEARN" train "${ARGS[@]}" --resume auto --output final.h5 \
    >run.log 2>&1 &
  launcher=$!
  delay=$((300 + RANDOM % 2000))  # milliseconds: from start-up to well inside training
  sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
  if kill -0 "$launcher" 2>/dev/null; then
    # Kill everything at once, rank processes first: nobody gets to write a checkpoint.
    pkill -9 -f "dictlearn train .*--output final.h5" || true
    kill -9 "$launcher" 2>/dev/null || true
    wait "$launcher" 2>/dev/null || true
    kills=$((kills + 1))
    echo "attempt $attempt: killed after ${delay} ms; checkpoint: $(ls ck.h5* 2>/dev/null | tr '\n' ' ')"
  else
    wait "$launcher" || fail "attempt $attempt: the run failed: $(tail -3 run.log)"
    echo "attempt $attempt: finished"
    break
  fi
done
[ -f final.h5 ] || run_mpi 2 train "${ARGS[@]}" --resume auto --output final.h5 >run.log 2>&1 ||
  fail "final resume"
echo "$kills kills"
"$PYTHON" - <<'PY' || fail "the resumed dictionary differs from the uninterrupted one"
import h5py, numpy as np
a = h5py.File("reference.h5")["dictionary"][()]; b = h5py.File("final.h5")["dictionary"][()]
print("after the kills: max |difference| =", np.abs(a - b).max())
assert np.array_equal(a, b)
PY
finish
