#!/usr/bin/env bash
# The README's main job (configs/default.yaml, as scripts/run-example.sh runs it) on the
# embedded synthetic data: atoms are recovered, the output file is what h5py users expect,
# and the MOD + OMP variant recovers them too.
source "$(dirname "$0")/common.sh"
RUN_TIMEOUT=400

recovered() { sed -n 's/^recovered \([0-9.]*\)%.*/\1/p' "$1"; }

run_mpi 2 train "$REPO/configs/default.yaml" --threads 1 --output "$WORK/online.h5" \
  >"$WORK/online.log" 2>&1 || fail "default run exited with $?"
cat "$WORK/online.log"
grep -q "^epoch 10/10  objective" "$WORK/online.log" || fail "no progress line for the last epoch"
online=$(recovered "$WORK/online.log")
awk "BEGIN{exit !($online >= 95)}" || fail "online lars recovered only $online% (< 95%)"

run_mpi 2 train "$REPO/configs/default.yaml" --threads 1 --coder omp --nonzeros 5 --update mod \
  --synthetic-samples 50000 --synthetic-atoms 128 --atoms 128 --output "$WORK/mod.h5" >"$WORK/mod.log" 2>&1 || fail "mod run exited with $?"
tail -2 "$WORK/mod.log"
mod=$(recovered "$WORK/mod.log")
awk "BEGIN{exit !($mod >= 95)}" || fail "mod omp recovered only $mod% (< 95%)"

# The switches below change who computes what, never a bit of D: fails unless the two
# outputs hold bitwise the same /dictionary.
same_dictionary() {  # label on.h5 off.h5
  "$PYTHON" - "$2" "$3" "$1" <<'PY' || fail "$1 changed D"
import sys, h5py, numpy as np
on, off = (h5py.File(name, "r")["/dictionary"][()] for name in sys.argv[1:3])
assert np.array_equal(on, off), np.abs(on - off).max()
print(sys.argv[3] + " on/off: bitwise the same dictionary")
PY
}

# --update-split: the ranks share the online update by rows of D; same dictionary bitwise.
for split in on off; do
  run_mpi 2 train "$REPO/configs/default.yaml" --threads 1 --synthetic-samples 6000 --epochs 2 \
    --update-split "$split" --output "$WORK/split_$split.h5" >"$WORK/split_$split.log" 2>&1 ||
    fail "update-split $split run exited with $?"
done
grep -q "^time (rank 0):.*update [0-9.]* s (rows split over the ranks[,)]" "$WORK/split_on.log" ||
  fail "update-split on: the time line does not say the rows were split"
if grep -q "rows split" "$WORK/split_off.log"; then fail "update-split off: rows were split"; fi
same_dictionary update-split "$WORK/split_on.h5" "$WORK/split_off.h5"

# --share-coding: the ranks of a node code each other's samples; same dictionary bitwise.
run_mpi 2 train "$REPO/configs/default.yaml" --threads 1 --synthetic-samples 6000 --epochs 2 \
  --share-coding off --output "$WORK/share_off.h5" >"$WORK/share_off.log" 2>&1 ||
  fail "share-coding off run exited with $?"
grep -q "^time (rank 0):.*code [0-9.]* s ([0-9.]* % of the samples coded by another rank" \
  "$WORK/split_on.log" || fail "share-coding (default on): the time line does not report it"
if grep -q "coded by another rank" "$WORK/share_off.log"; then fail "share-coding off: shared"; fi
same_dictionary share-coding "$WORK/split_on.h5" "$WORK/share_off.h5"

# --share-gram: the ranks of a node form the Gram matrix together (on), each all of it
# (off), or the faster way, timed (auto, the default); same dictionary bitwise.
for gram in on off; do
  run_mpi 2 train "$REPO/configs/default.yaml" --threads 1 --synthetic-samples 6000 --epochs 2 \
    --share-gram "$gram" --output "$WORK/gram_$gram.h5" >"$WORK/gram_$gram.log" 2>&1 ||
    fail "share-gram $gram run exited with $?"
done
grep -q "^time (rank 0):.*update [0-9.]* s (.*Gram matrix formed by the node's ranks)" \
  "$WORK/gram_on.log" || fail "share-gram on: the time line does not report it"
if grep -q "Gram matrix formed" "$WORK/gram_off.log"; then fail "share-gram off: shared"; fi
grep -Eq "^time \(rank 0\):.*update [0-9.]* s \(.*Gram matrix formed by (the node's ranks|each rank): timed faster\)" \
  "$WORK/split_on.log" || fail "share-gram (default auto): the time line does not report the choice"
same_dictionary share-gram-on "$WORK/split_on.h5" "$WORK/gram_on.h5"
same_dictionary share-gram-off "$WORK/split_on.h5" "$WORK/gram_off.h5"

# A node whose shared memory cannot hold the windows (a container's small /dev/shm): Open
# MPI would wait forever in MPI_Win_allocate_shared; each feature falls back to per-rank
# work with a warning instead, and D stays bitwise the same. A tiny /dev/shm needs a
# private mount namespace and mount rights: skipped without them. Open MPI's own
# shared-memory transport keeps its segments in $WORK, so the ranks still talk.
tiny_shm() { unshare -m sh -c 'mount -t tmpfs -o size=256k tmpfs /dev/shm && exec "$@"' _ "$@"; }
if tiny_shm true 2>/dev/null; then
  status=0
  tiny_shm env -u OMPI_MCA_osc_sm_backing_directory OMPI_MCA_btl_vader_backing_directory="$WORK" \
    timeout 120 mpiexec -n 2 --oversubscribe "$DICTLEARN" train "$REPO/configs/default.yaml" \
    --threads 1 --synthetic-samples 6000 --epochs 2 --output "$WORK/small_shm.h5" \
    >"$WORK/small_shm.log" 2>&1 || status=$?
  grep "^warning" "$WORK/small_shm.log" || true
  [ "$status" -eq 0 ] || fail "small /dev/shm: exit $status: $(tail -3 "$WORK/small_shm.log")"
  [ "$(grep -c "^warning: .*: node shared memory is short: /dev/shm has" "$WORK/small_shm.log")" \
    -eq 4 ] || fail "small /dev/shm: expected four fallback warnings"
  if grep -q "Gram matrix formed\|coded by another rank\|through node shared memory" \
    "$WORK/small_shm.log"; then fail "small /dev/shm: a feature claims node shared memory"; fi
  same_dictionary small-shm "$WORK/split_on.h5" "$WORK/small_shm.h5"
else
  echo "skipped the small /dev/shm check: no rights to mount a tmpfs in a private namespace"
fi

"$PYTHON" - "$WORK/online.h5" <<'PY' || fail "output file layout"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    d = f["/dictionary"][()]
    assert d.shape == (256, 64), d.shape
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-9), "atoms are not unit norm"
    h = f["/history"][()]
    assert len(h) == 10 and h["objective"][-1] < h["objective"][0], h
    assert f.attrs["ranks"] == 2 and f.attrs["atoms"] == 256
    assert abs(f.attrs["lambda"] - 0.1) < 1e-15 and f.attrs["coder"] == "lars"
    assert f.attrs["recovered_fraction"] >= 0.95
    print("output file: ok", d.shape, "history", len(h), "epochs")
PY
finish
