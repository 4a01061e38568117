// online_update_bench: times one online (BCD) dictionary update, the rows of D updated by
// every rank alone (split off) and shared by the ranks (split on), for a list of shapes,
// to see when the row split pays and what one update costs. The split is timed twice: its
// steps through MPI collectives, and (all ranks on one node) through node shared memory,
// as `dictlearn train` runs it.
//
//   mpirun -n 2 online_update_bench [--shapes 64x256,128x512,784x256] [--reps 200]
//                                   [--threads 1] [--a-triangles full|upper]
//
// --a-triangles upper times the trainer's case: only A's upper triangle is current
// (OnlineUpdateOptions::a_upper_only; the lower one is filled with NaN here, which would
// reach D if it were read).
//
// The statistics are those of 2560 samples with 12 nonzero codes each (A = C C^T,
// B = X C^T, Gaussian X and code values), the same on every rank; D starts from unit
// Gaussian columns. Each call restarts from that D after a barrier and is timed by the
// slowest rank. Rank 0 prints a Markdown table of best and median milliseconds per call
// and the largest difference between the split and unsplit dictionaries (0: bitwise);
// unsplit / split divides the best times, by shared memory where it was timed.
// Run MPI with MPI_THREAD_FUNNELED (as the CLI does) when --threads > 1.

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"
#include "dictlearn/update/online_update.hpp"
#include "time_calls.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;

struct Options {
  std::vector<std::pair<Index, Index>> shapes{{64, 256}, {128, 512}, {784, 256}};
  int reps = 200;
  int threads = 1;
  bool upper_only = false;  // --a-triangles upper
};

[[noreturn]] void usage_error(int rank, const std::string& message) {
  if (rank == 0) std::fprintf(stderr, "online_update_bench: error: %s\n", message.c_str());
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::exit(2);
}

// --help: the usage on rank 0, then a clean exit on every rank.
[[noreturn]] void print_usage(int rank) {
  if (rank == 0)
    std::printf(
        "usage: mpirun -n P online_update_bench [--shapes 64x256,128x512,784x256] [--reps 200]\n"
        "                                       [--threads 1] [--a-triangles full|upper]\n"
        "\n"
        "Times one online (block-coordinate) dictionary update per shape, the rows of D updated "
        "by\n"
        "every rank alone and split over the ranks (the split's steps through MPI, and through\n"
        "node shared memory when all ranks share a node, as in dictlearn train); prints best\n"
        "and median milliseconds and the largest difference between the dictionaries (Markdown;\n"
        "0 means bitwise the same, '-' not timed).\n"
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
      if (arg == "--shapes") {
        options.shapes.clear();
        for (size_t start = 0; start <= value.size();) {
          const size_t comma = std::min(value.find(',', start), value.size());
          const std::string shape = value.substr(start, comma - start);
          const size_t x = shape.find('x');
          if (x == std::string::npos) usage_error(rank, "--shapes: expected dxK, got " + shape);
          options.shapes.emplace_back(std::stol(shape.substr(0, x)),
                                      std::stol(shape.substr(x + 1)));
          start = comma + 1;
        }
      } else if (arg == "--reps") {
        options.reps = std::stoi(value);
      } else if (arg == "--threads") {
        options.threads = std::stoi(value);
      } else if (arg == "--a-triangles") {
        if (value != "full" && value != "upper") usage_error(rank, "--a-triangles: full or upper");
        options.upper_only = value == "upper";
      } else {
        usage_error(rank, "unknown option " + arg);
      }
    } catch (const std::logic_error&) {
      usage_error(rank, "bad value '" + value + "' for " + arg);
    }
  }
  for (const auto& [d, K] : options.shapes)
    if (d < 1 || K < 1) usage_error(rank, "--shapes: d and K must be positive");
  if (options.reps < 1 || options.threads < 1)
    usage_error(rank, "--reps and --threads must be >= 1");
  return options;
}

void random_problem(Index d, Index K, Matrix& a, Matrix& b, Matrix& dictionary) {
  dictlearn::Random random(dictlearn::derive_seed({23, std::uint64_t(d), std::uint64_t(K)}));
  const Index samples = 2560, nonzeros = std::min<Index>(12, K);
  Matrix codes = Matrix::Zero(K, samples), x(d, samples);
  for (Index s = 0; s < samples; ++s) {
    for (Index j = 0; j < nonzeros; ++j)
      codes(Index(random.below(std::uint64_t(K))), s) = random.normal();
    for (Index i = 0; i < d; ++i) x(i, s) = random.normal();
  }
  a = codes * codes.transpose();
  b = x * codes.transpose();
  dictionary.resize(d, K);
  for (Index k = 0; k < K; ++k) {
    for (Index i = 0; i < d; ++i) dictionary(i, k) = random.normal();
    dictionary.col(k).normalize();
  }
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int status = 0;
  {
    dictlearn::Communicator comm(MPI_COMM_WORLD);
    const std::unique_ptr<dictlearn::Communicator> node = dictlearn::node_communicator(comm);
    const Options options = parse(argc, argv, comm.rank());
    try {
      if (comm.is_root()) {
        std::printf(
            "# online update, %d ranks x %d threads, A's %s, best and median of %d calls (ms)\n",
            comm.size(), options.threads,
            options.upper_only ? "upper triangle only" : "both triangles", options.reps);
        std::printf(
            "| d x K | unsplit best | unsplit median | split (MPI) best | split (MPI) median "
            "| split (shared memory) best | split (shared memory) median | unsplit / split "
            "| max diff |\n|---|---|---|---|---|---|---|---|---|\n");
      }
      for (const auto& [d, K] : options.shapes) {
        Matrix a, b, start;
        random_problem(d, K, a, b, start);
        dictlearn::OnlineUpdateOptions online;
        online.threads = options.threads;
        if (options.upper_only) {
          online.a_upper_only = true;
          a.triangularView<Eigen::StrictlyLower>().setConstant(std::nan(""));
        }
        online.row_split = &comm;
        Matrix unsplit = start, split = start;
        online.split = dictlearn::RowSplit::off;
        const auto alone = bench::time_calls(comm, options.reps, [&] {
          unsplit = start;
          dictlearn::online_dictionary_update(a, b, unsplit, online);
        });
        online.split = dictlearn::RowSplit::on;
        const auto split_update = [&] {
          split = start;
          dictlearn::online_dictionary_update(a, b, split, online);
        };
        const auto by_mpi = bench::time_calls(comm, options.reps, split_update);
        double difference = (unsplit - split).cwiseAbs().maxCoeff();
        // The trainer's path on one node: the split's steps through node shared memory.
        std::pair<double, double> by_memory{0.0, 0.0};  // timed if `memory` exists
        std::unique_ptr<dictlearn::NodeSharedMemory> memory;
        if (node->size() == comm.size() && comm.size() > 1) {
          try {  // thrown on every rank alike
            memory = std::make_unique<dictlearn::NodeSharedMemory>(
                comm, dictlearn::online_update_shared_bytes(d, K, comm.rank(), comm.size()));
          } catch (const dictlearn::NodeMemoryShortage& shortage) {
            if (comm.is_root())
              std::fprintf(stderr,
                           "online_update_bench: %ldx%ld not timed through shared "
                           "memory: %s\n",
                           long(d), long(K), shortage.what());
          }
        }
        if (memory) {
          online.shared = memory.get();
          by_memory = bench::time_calls(comm, options.reps, split_update);
          online.shared = nullptr;
          difference = std::max(difference, (unsplit - split).cwiseAbs().maxCoeff());
        }
        if (comm.is_root()) {
          char memory_columns[64] = "- | -";
          if (memory)
            std::snprintf(memory_columns, sizeof memory_columns, "%.4f | %.4f",
                          1e3 * by_memory.first, 1e3 * by_memory.second);
          std::printf("| %ldx%ld | %.4f | %.4f | %.4f | %.4f | %s | %.2f | %.1e |\n", long(d),
                      long(K), 1e3 * alone.first, 1e3 * alone.second, 1e3 * by_mpi.first,
                      1e3 * by_mpi.second, memory_columns,
                      alone.first / (memory ? by_memory.first : by_mpi.first), difference);
        }
        std::fflush(stdout);
      }
    } catch (const dictlearn::Error& error) {
      if (comm.is_root()) std::fprintf(stderr, "online_update_bench: error: %s\n", error.what());
      status = 1;
    }
  }
  MPI_Finalize();
  return status;
}
