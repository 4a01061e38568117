// allreduce_gradients on 1, 2 and 3 ranks: several blocks packed into one collective give,
// on every rank, bitwise the same scaled sums, equal to the serial sum over the ranks.
#include <catch2/catch.hpp>
#include <cstdint>
#include <utility>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/gradient/gradient_allreduce.hpp"
#include "dictlearn/gradient/optimizer.hpp"
#include "dictlearn/parallel/communicator.hpp"

using namespace dictlearn;

namespace {

/// True on every rank iff `values` is bitwise equal on all ranks of MPI_COMM_WORLD.
bool identical_on_all_ranks(const std::vector<double>& values) {
  std::vector<double> root = values;
  MPI_Bcast(root.data(), int(root.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  int same = root == values ? 1 : 0, all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_same == 1;
}

// Blocks of different sizes, one of them empty (a bias-free model, say).
const std::vector<Index> kSizes = {3, 0, 5, 1, 4};

/// The local gradient of `rank` for block `b`: dyadic values, so every partial sum over
/// at most 3 ranks is exact whatever the reduction order (exact == comparison below).
std::vector<double> dyadic_block(int rank, std::size_t b) {
  std::vector<double> out(std::size_t(kSizes[b]));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = 0.25 * (rank + 1) + 0.5 * double(i) - double(b) + (rank % 2 ? 0.125 : -0.375);
  return out;
}

/// A random local gradient (sums depend on the order only by rounding).
std::vector<double> random_block(int rank, std::size_t b) {
  Random rng(derive_seed({99, std::uint64_t(rank), std::uint64_t(b)}));
  std::vector<double> out(std::size_t(kSizes[b]));
  for (double& value : out) value = rng.normal();
  return out;
}

template <typename Make>
void check_allreduce(const Make& make, double scale, bool exact) {
  Communicator comm(MPI_COMM_WORLD);
  std::vector<std::vector<double>> local;
  std::vector<std::pair<double*, Index>> blocks;
  for (std::size_t b = 0; b < kSizes.size(); ++b) local.push_back(make(comm.rank(), b));
  for (std::size_t b = 0; b < kSizes.size(); ++b) blocks.push_back({local[b].data(), kSizes[b]});

  allreduce_gradients(comm, blocks, scale);

  std::vector<double> flat;  // all blocks, to compare across ranks
  for (std::size_t b = 0; b < kSizes.size(); ++b) {
    // The serial reference: scale * (block of rank 0 + block of rank 1 + ...).
    std::vector<double> expected(std::size_t(kSizes[b]), 0.0);
    for (int r = 0; r < comm.size(); ++r) {
      const std::vector<double> part = make(r, b);
      for (std::size_t i = 0; i < expected.size(); ++i) expected[i] += part[i];
    }
    for (std::size_t i = 0; i < expected.size(); ++i) {
      expected[i] *= scale;
      INFO("ranks " << comm.size() << ", block " << b << ", entry " << i);
      if (exact)
        CHECK(local[b][i] == expected[i]);
      else
        CHECK(local[b][i] == Approx(expected[i]).epsilon(1e-14).margin(1e-15));
    }
    flat.insert(flat.end(), local[b].begin(), local[b].end());
  }
  CHECK(flat.size() == 13u);
  CHECK(identical_on_all_ranks(flat));
}

}  // namespace

TEST_CASE("allreduce_gradients sums packed blocks exactly, identically on every rank",
          "[mpi][gradient]") {
  check_allreduce(dyadic_block, 0.5, true);  // scale by a power of two: still exact
  check_allreduce(dyadic_block, 1.0, true);
}

TEST_CASE("allreduce_gradients of random gradients equals the serial sum times the scale",
          "[mpi][gradient]") {
  check_allreduce(random_block, 1.0 / 300.0, false);  // e.g. 1 / global batch
}

TEST_CASE("data-parallel Adam steps keep the parameters bitwise equal on every rank",
          "[mpi][gradient]") {
  // Each rank holds different local gradients; after the allreduce every rank steps with
  // the same global gradient, so the replicated parameters never drift apart.
  Communicator comm(MPI_COMM_WORLD);
  Optimizer adam(OptimizerOptions{}, kSizes);
  std::vector<std::vector<double>> parameters;
  for (Index size : kSizes) parameters.emplace_back(std::size_t(size), 0.5);
  for (int step = 0; step < 5; ++step) {
    std::vector<std::vector<double>> gradients;
    std::vector<std::pair<double*, Index>> blocks;
    for (std::size_t b = 0; b < kSizes.size(); ++b)
      gradients.push_back(random_block(comm.rank() + 7 * step, b));
    for (std::size_t b = 0; b < kSizes.size(); ++b)
      blocks.push_back({gradients[b].data(), kSizes[b]});
    allreduce_gradients(comm, blocks, 1.0 / comm.size());
    std::vector<double*> p;
    std::vector<const double*> g;
    for (std::size_t b = 0; b < kSizes.size(); ++b) {
      p.push_back(parameters[b].data());
      g.push_back(gradients[b].data());
    }
    adam.step(p, g);
  }
  std::vector<double> flat;
  for (const auto& block : parameters) flat.insert(flat.end(), block.begin(), block.end());
  CHECK(identical_on_all_ranks(flat));
  CHECK(identical_on_all_ranks(adam.state()));
}
