# shellcheck shell=bash
# Shared helpers of the Slurm tests (sourced). $1 of each test is the dictlearn binary.
#
#   source "$(dirname "$0")/lib.sh"     # sets DICTLEARN, REPO, WORK, PYTHON; counters
#   slurm_cluster_up                    # reuse a running scripts/slurm-local.sh cluster,
#                                       # else start one (stopped again on exit)
#   job=$(slurm_submit LAUNCHER=srun OUTPUT=d.h5 -- --ntasks=2 "$REPO/jobs/train.sbatch")
#   slurm_expect_state "$job" COMPLETED "train"   # waits (bounded), counts pass/fail
#   slurm_job_field "$job" ExitCode             # any field of `scontrol show job`
#   slurm_finish                                # prints "N passed, M failed", exit status
#
# Jobs run in $WORK (sbatch --chdir); jobs still queued or running at exit are cancelled.
# Environment: SLURM_LOCAL_DIR (which local cluster, see scripts/slurm-local.sh),
# SLURM_TEST_TIMEOUT (seconds all job waits of a test may take together, default 300),
# SLURM_TEST_KEEP=1 (keep $WORK for a look afterwards).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DICTLEARN_BINARY" >&2; exit 2; }
DICTLEARN=$(realpath "$1")
[ -x "$DICTLEARN" ] || { echo "not an executable: $DICTLEARN" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SLURM_LOCAL=$REPO/scripts/slurm-local.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dictlearn-slurm-test.XXXXXX")
chmod 0755 "$WORK"
SLURM_TEST_DEADLINE=$((SECONDS + ${SLURM_TEST_TIMEOUT:-300}))  # restarted by slurm_cluster_up
SLURM_TEST_STARTED_CLUSTER=0
# The job scripts' variables: only what a test passes to slurm_submit reaches a job.
unset DICTIONARY INPUT OUTPUT CONFIG EXTRA_ARGS CODER_ARGS LAUNCHER
# A Python with numpy and h5py (Debian's python3-h5py lives in /usr/bin/python3).
PYTHON=python3
"$PYTHON" -c 'import h5py, numpy' 2>/dev/null || PYTHON=/usr/bin/python3
passed=0
failed=0

pass() {
  echo "PASS: $*"
  passed=$((passed + 1))
}

fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

check() { # check DESCRIPTION COMMAND...: one pass or fail for the command's status
  local description=$1
  shift
  if "$@"; then pass "$description"; else fail "$description"; fi
}

slurm_cleanup() {
  local jobs
  if [ -s "$WORK/.jobs" ] && command -v squeue >/dev/null; then
    # shellcheck disable=SC2046
    jobs=$(squeue -h -o %i -j "$(paste -sd, "$WORK/.jobs")" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$jobs" ] || scancel $jobs 2>/dev/null || true
  fi
  if [ "$SLURM_TEST_STARTED_CLUSTER" = 1 ]; then
    "$SLURM_LOCAL" stop || true
  fi
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap slurm_cleanup EXIT
trap 'exit 130' INT TERM

# Makes SLURM_CONF point at a healthy local cluster: the one already running for
# SLURM_LOCAL_DIR (left running afterwards), or a new one (stopped on exit).
slurm_cluster_up() {
  local line
  if "$SLURM_LOCAL" status >"$WORK/.status" 2>&1; then
    line=$(grep '^export SLURM_CONF=' "$WORK/.status")
    echo "using the running local cluster (${line#export })"
  elif ! grep -q ' /sys/fs/cgroup' /proc/mounts; then
    # slurmd 22.05 cannot start without a cgroup filesystem (e.g. in a bare chroot); every
    # real Debian machine has one. Not a failure of the project: reported as skipped.
    echo "SKIP: no cgroup filesystem under /sys/fs/cgroup, which slurmd needs"
    trap - EXIT
    slurm_cleanup
    echo "0 passed, 0 failed, 1 skipped"
    exit 77
  elif [ "$(id -u)" -ne 0 ]; then
    # Not a failure of the project: CTest reports it as skipped (SKIP_RETURN_CODE 77).
    echo "SKIP: no local Slurm cluster is running and starting one needs root" \
      "(sudo scripts/slurm-local.sh start)"
    trap - EXIT
    slurm_cleanup
    echo "0 passed, 0 failed, 1 skipped"
    exit 77
  else
    echo "starting a local Slurm cluster (scripts/slurm-local.sh start)"
    SLURM_TEST_STARTED_CLUSTER=1
    line=$("$SLURM_LOCAL" start) || {
      echo "FAIL: scripts/slurm-local.sh start"
      failed=$((failed + 1))
      slurm_finish
    }
  fi
  export "${line#export }"
  SLURM_TEST_DEADLINE=$((SECONDS + ${SLURM_TEST_TIMEOUT:-300}))  # apt-get is not counted
}

# slurm_submit [VAR=VALUE ...] -- [SBATCH_OPTION ...] SCRIPT: submits from $WORK with
# exactly these job-script variables set; prints the job id.
slurm_submit() {
  local vars=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    vars+=("$1")
    shift
  done
  [ "${1:-}" = -- ] && shift
  local id
  id=$(cd "$WORK" && env "${vars[@]}" sbatch --parsable --chdir="$WORK" "$@") || return 1
  id=${id%%;*}
  echo "$id" >>"$WORK/.jobs"
  echo "$id"
}

# slurm_job_field JOB FIELD: a field of `scontrol show job` (e.g. JobState, ExitCode,
# StdOut, Restarts); for a job already purged from slurmctld, from the jobcomp log.
slurm_job_field() {
  local record
  record=$(scontrol show job -o "$1" 2>/dev/null) ||
    record=$(grep "^JobId=$1 " "${SLURM_CONF%/*}/jobcomp.log" 2>/dev/null | tail -n 1) || true
  # shellcheck disable=SC2001
  echo "$record" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

SLURM_FINAL_STATES='COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY'

# slurm_wait JOB [STATES]: waits until the job's state matches the extended regex STATES
# (default: any final state) or the test's deadline passes; prints the last state seen.
# Status 0 on a match, 1 at the deadline.
slurm_wait() {
  local states=${2:-$SLURM_FINAL_STATES} state=""
  while :; do
    state=$(slurm_job_field "$1" JobState)
    if [[ $state =~ ^($states)$ ]]; then
      echo "$state"
      return 0
    fi
    if [ "$SECONDS" -ge "$SLURM_TEST_DEADLINE" ]; then
      echo "${state:-unknown}"
      return 1
    fi
    sleep 1
  done
}

# Prints a job's output file (and the daemons' last words) to explain a failure.
slurm_show_job() {
  local log
  log=$(slurm_job_field "$1" StdOut)
  echo "---- job $1: $(scontrol show job -o "$1" 2>/dev/null | grep -oE '(JobState|Reason|ExitCode|RunTime)=[^ ]*' | tr '\n' ' ')"
  if [ -n "$log" ] && [ -r "$log" ]; then
    echo "---- $log"
    tail -n 30 "$log"
  fi
  local dir=${SLURM_CONF%/*}
  if [ -r "$dir/slurmd.log" ]; then
    echo "---- $dir/slurmd.log (last lines)"
    tail -n 8 "$dir/slurmd.log"
  fi
  echo "----"
}

# slurm_expect_state JOB STATE DESCRIPTION: waits for a final state; one pass or fail.
slurm_expect_state() {
  local state
  if ! state=$(slurm_wait "$1"); then
    fail "$3: job $1 still '$state' at the deadline (SLURM_TEST_TIMEOUT=${SLURM_TEST_TIMEOUT:-300} s)"
    slurm_show_job "$1"
    scancel "$1" 2>/dev/null || true
    return 1
  fi
  if [ "$state" = "$2" ]; then
    pass "$3: job $1 $state (exit $(slurm_job_field "$1" ExitCode), ran $(slurm_job_field "$1" RunTime))"
  else
    fail "$3: job $1 ended $state, expected $2"
    slurm_show_job "$1"
    return 1
  fi
}

slurm_finish() { # cleans up first, so that the count is the last line
  trap - EXIT
  slurm_cleanup
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  exit 0
}
