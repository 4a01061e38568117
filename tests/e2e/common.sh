# Shared helpers of the end-to-end tests (sourced). $1 of each test is the dictlearn binary.
set -euo pipefail
DICTLEARN=$(realpath "$1")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dictlearn-e2e.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMP_NUM_THREADS=1
# A Python with numpy and h5py (Debian's python3-h5py lives in /usr/bin/python3).
PYTHON=python3
"$PYTHON" -c 'import h5py, numpy' 2>/dev/null || PYTHON=/usr/bin/python3
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

run_mpi() {  # run_mpi RANKS ARGS... (at most RUN_TIMEOUT s, default 120: a hang is a failure)
  local ranks=$1
  shift
  timeout "${RUN_TIMEOUT:-120}" mpiexec -n "$ranks" --oversubscribe "$DICTLEARN" "$@"
}

finish() {
  if [ "$failures" -eq 0 ]; then
    echo "all checks passed"
  else
    echo "$failures check(s) failed"
    exit 1
  fi
}
