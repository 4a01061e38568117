#!/usr/bin/env bash
# Sets up dictlearn and runs the whole test suite (unit, MPI on 1-3 ranks, end to end).
# Usage: scripts/run-tests.sh [extra ctest arguments, e.g. -L mpi]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
source scripts/mpi-env.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
