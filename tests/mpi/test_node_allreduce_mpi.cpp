// Sums through node shared memory (parallel/node_allreduce.hpp): bitwise the rank-ordered
// sums on every rank, for vectors shorter than a rank count, of several chunks and empty;
// many calls in a row (the alternating buffers); a rank that arrives late.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_allreduce.hpp"
#include "mpi_helpers.hpp"

namespace {

using dictlearn::Communicator;
using dictlearn::Index;
using dictlearn::NodeAllreduce;

// Values of very different magnitudes, so that the order of the additions shows in the
// last bits.
std::vector<double> values_of(int rank, Index count, int call) {
  dictlearn::Random random(1000 + std::uint64_t(rank) * 31 + std::uint64_t(call));
  std::vector<double> values(static_cast<std::size_t>(count));
  for (double& value : values) value = random.normal() * (rank % 2 == 0 ? 1e8 : 1e-3);
  return values;
}

// Every rank's vector, then the sums in rank order (rank 0 first).
std::vector<double> rank_ordered_sums(const Communicator& node, const std::vector<double>& mine) {
  const auto count = mine.size();
  std::vector<double> all(count * std::size_t(node.size()));
  MPI_Allgather(mine.data(), int(count), MPI_DOUBLE, all.data(), int(count), MPI_DOUBLE,
                node.get());
  std::vector<double> sums(all.begin(), all.begin() + std::ptrdiff_t(count));
  for (int r = 1; r < node.size(); ++r)
    for (std::size_t i = 0; i < count; ++i) sums[i] += all[std::size_t(r) * count + i];
  return sums;
}

}  // namespace

TEST_CASE("node shared memory sums are the rank-ordered sums, bitwise", "[mpi][reduce]") {
  Communicator world(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(world);
  NodeAllreduce sums(*node);
  const Index counts[] = {0,
                          1,
                          2,
                          5,
                          1000,
                          NodeAllreduce::kChunk,
                          NodeAllreduce::kChunk + 3,
                          2 * NodeAllreduce::kChunk + 17};
  int call = 0;
  for (int round = 0; round < 3; ++round)
    for (const Index count : counts) {
      std::vector<double> data = values_of(node->rank(), count, ++call);
      const std::vector<double> expected = rank_ordered_sums(*node, data);
      sums.sum(data.data(), count);
      CHECK(data == expected);
      if (node->size() <= 2) {  // a + b == b + a: MPI's sums too
        std::vector<double> mpi = values_of(node->rank(), count, call);
        MPI_Allreduce(MPI_IN_PLACE, mpi.data(), int(count), MPI_DOUBLE, MPI_SUM, node->get());
        CHECK(data == mpi);
      }
    }
}

TEST_CASE("node shared memory sums wait for a late rank", "[mpi][reduce]") {
  Communicator world(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(world);
  NodeAllreduce sums(*node);
  for (int call = 0; call < 4; ++call) {
    const int late = call % node->size();
    if (node->rank() == late) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::vector<double> data(300, double(node->rank() + 1));
    sums.sum(data.data(), Index(data.size()));
    const double expected = double(node->size() * (node->size() + 1) / 2);
    CHECK(data.front() == expected);
    CHECK(data.back() == expected);
  }
}
