# Sourced by the scripts: lets Open MPI run as root (containers, CI) and allows more
# ranks than cores. A normal user gets only the oversubscription flag.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# dictlearn never uses OpenBLAS's own threads (--threads is OpenMP); unless told, OpenBLAS
# starts one per core at load, which spins while MPI starts up (~40 ms with 2 ranks on 2
# cores). Set for the ranks only: Python tools in the same shell keep their BLAS threads.
MPIRUN=(mpirun --oversubscribe -x "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}")
# OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4 and falls back to its Haswell (AVX2)
# kernels; its AVX-512 (SkylakeX) kernels run correctly there and ~1.5x faster (bench/README.md).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q AuthenticAMD /proc/cpuinfo 2>/dev/null &&
  grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo &&
  grep -qw avx512dq /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SKYLAKEX
fi
# Without a fabric device (InfiniBand, Omni-Path) on this node, mpirun's hwloc discovery of
# PCI devices, which Open MPI wants for the locality of network cards, finds nothing it can
# use and costs ~0.03 s per launch on a VM (each read of a device's configuration space
# traps to the hypervisor). dictlearn skips it in its ranks by itself; this is for mpirun.
if [ -z "${HWLOC_COMPONENTS+set}" ] &&
  ! compgen -G '/sys/class/infiniband/*' >/dev/null && ! compgen -G '/dev/hfi1*' >/dev/null &&
  ! compgen -G '/dev/ipath*' >/dev/null; then
  MPIRUN=(env HWLOC_COMPONENTS=-pci,-linuxio "${MPIRUN[@]}")
fi
