#!/usr/bin/env bash
# Sets up dictlearn and runs the main job: 2 MPI ranks training on the embedded synthetic
# dataset described by configs/default.yaml. Extra arguments are passed to `dictlearn train`
# (e.g. --epochs 5). Usage: scripts/run-example.sh [--key value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
source scripts/mpi-env.sh
mkdir -p results
"${MPIRUN[@]}" -n "${RANKS:-2}" build/dictlearn train configs/default.yaml --threads 1 \
  --output results/default.h5 "$@"
