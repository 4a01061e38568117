// mod_solve_bench: times the MOD dictionary update two ways on the same statistics,
// LAPACK repeated on every rank (mod_dictionary_update) and ScaLAPACK across the ranks
// (mod_dictionary_update_distributed), for a range of K, to find the K from which the
// distributed solve pays.
//
//   mpirun -n 2 mod_solve_bench [--sizes 256,512,1024,2048,4096] [--dim 256] [--reps 3]
//
// A is a random symmetric K x K matrix with entries in [-1, 1] and K + 1 on the diagonal
// (strictly diagonally dominant, so SPD and well conditioned; O(K^2) to build, unlike a
// Gram matrix), B a random d x K matrix, every atom used. Each call starts after a barrier;
// its time is the slowest rank's. One untimed call per path and size, then `reps` timed
// calls; rank 0 prints a Markdown table of the best and median times and the largest
// entry difference between the two dictionaries. Run with one thread per rank
// (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1) to compare like with like.

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/distributed_mod_update.hpp"
#include "dictlearn/update/mod_update.hpp"
#include "time_calls.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;

struct Options {
  std::vector<Index> sizes{256, 512, 1024, 2048, 4096};
  Index dim = 256;
  int reps = 3;
};

[[noreturn]] void usage_error(int rank, const std::string& message) {
  if (rank == 0) std::fprintf(stderr, "mod_solve_bench: error: %s\n", message.c_str());
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::exit(2);
}

// --help: the usage on rank 0, then a clean exit on every rank.
[[noreturn]] void print_usage(int rank) {
  if (rank == 0)
    std::printf(
        "usage: mpirun -n P mod_solve_bench [--sizes 256,512,1024,2048,4096] [--dim 256] [--reps "
        "3]\n"
        "\n"
        "Times the MOD update (D = B A^-1) on the same statistics two ways: LAPACK on every rank\n"
        "and ScaLAPACK across the ranks, per K; prints best and median seconds and the largest\n"
        "difference between the two dictionaries (Markdown). Run with OMP_NUM_THREADS=1\n"
        "OPENBLAS_NUM_THREADS=1.\n"
        "");
  MPI_Finalize();
  std::exit(0);
}

Options parse(int argc, char** argv, int rank) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") print_usage(rank);
    if (i + 1 >= argc) usage_error(rank, arg + " needs a value");
    const std::string value = argv[++i];
    try {
      if (arg == "--sizes") {
        options.sizes.clear();
        for (size_t start = 0; start <= value.size();) {
          const size_t comma = std::min(value.find(',', start), value.size());
          options.sizes.push_back(std::stol(value.substr(start, comma - start)));
          start = comma + 1;
        }
      } else if (arg == "--dim") {
        options.dim = std::stol(value);
      } else if (arg == "--reps") {
        options.reps = std::stoi(value);
      } else {
        usage_error(rank, "unknown option " + arg);
      }
    } catch (const std::logic_error&) {
      usage_error(rank, "bad value '" + value + "' for " + arg);
    }
  }
  for (Index K : options.sizes)
    if (K < 1) usage_error(rank, "--sizes must be positive");
  if (options.dim < 1 || options.reps < 1) usage_error(rank, "--dim and --reps must be >= 1");
  return options;
}

/// The statistics of one size, identical on every rank (same seed).
void random_statistics(Index K, Index d, Matrix& a, Matrix& b) {
  dictlearn::Random random(dictlearn::derive_seed({17, std::uint64_t(K)}));
  a.resize(K, K);
  for (Index j = 0; j < K; ++j) {
    for (Index i = 0; i < j; ++i) a(i, j) = a(j, i) = 2.0 * random.uniform() - 1.0;
    a(j, j) = double(K) + 1.0;  // |off-diagonal row sum| < K - 1 < A_jj
  }
  b.resize(d, K);
  for (Index j = 0; j < K; ++j)
    for (Index i = 0; i < d; ++i) b(i, j) = random.normal();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int status = 0;
  {
    dictlearn::Communicator comm(MPI_COMM_WORLD);
    const Options options = parse(argc, argv, comm.rank());
    try {
      if (comm.is_root()) {
        std::printf("# MOD solve, d = %ld, %d ranks, best and median of %d calls (seconds)\n",
                    long(options.dim), comm.size(), options.reps);
        std::printf(
            "| K | LAPACK best | LAPACK median | ScaLAPACK best | ScaLAPACK median "
            "| LAPACK / ScaLAPACK | max diff |\n|---|---|---|---|---|---|---|\n");
      }
      const dictlearn::ModUpdateOptions mod;
      for (Index K : options.sizes) {
        Matrix a, b;
        random_statistics(K, options.dim, a, b);
        const Matrix start = Matrix::Zero(options.dim, K);
        Matrix lapack = start, scalapack = start;
        const auto serial = bench::time_calls(comm, options.reps, [&] {
          lapack = start;
          dictlearn::mod_dictionary_update(a, b, lapack, mod);
        });
        const auto distributed = bench::time_calls(comm, options.reps, [&] {
          scalapack = start;
          dictlearn::mod_dictionary_update_distributed(comm, a, b, scalapack, mod);
        });
        if (comm.is_root())
          std::printf("| %ld | %.4f | %.4f | %.4f | %.4f | %.2f | %.1e |\n", long(K), serial.first,
                      serial.second, distributed.first, distributed.second,
                      serial.first / distributed.first, (lapack - scalapack).cwiseAbs().maxCoeff());
        std::fflush(stdout);
      }
    } catch (const dictlearn::Error& error) {
      if (comm.is_root()) std::fprintf(stderr, "mod_solve_bench: error: %s\n", error.what());
      status = 1;
    }
  }
  MPI_Finalize();
  return status;
}
