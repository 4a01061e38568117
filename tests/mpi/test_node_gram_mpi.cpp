// The Gram matrix formed by the ranks of a node (parallel/node_gram.hpp): bitwise what one
// process forms alone (gram_matrix), on every rank, over several calls with changing
// dictionaries (the alternating buffers), with more ranks than tiles, and with threads.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "dictlearn/core/gram_tiles.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_gram.hpp"
#include "mpi_helpers.hpp"

namespace {

using dictlearn::Communicator;
using dictlearn::Index;
using dictlearn::Matrix;

Matrix random_dictionary(Index d, Index K, std::uint64_t seed) {
  dictlearn::Random random(seed);
  Matrix dictionary(d, K);
  for (Index k = 0; k < K; ++k)
    for (Index i = 0; i < d; ++i) dictionary(i, k) = random.normal();
  return dictionary;
}

}  // namespace

TEST_CASE("the node's ranks form the Gram matrix of one process, bitwise", "[mpi][gram]") {
  Communicator world(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(world);
  // K = 30: one tile, so all ranks but one have none; K = 130: 6 tiles of unequal sizes.
  for (const auto& [d, K] : {std::pair<Index, Index>{9, 30}, {70, 130}, {3, 200}}) {
    dictlearn::NodeGram shared(*node, K);
    for (int call = 0; call < 5; ++call) {
      // The same D on every rank (same seed), a new one per call.
      const Matrix dictionary = random_dictionary(d, K, 100 + std::uint64_t(call));
      Matrix alone;
      dictlearn::gram_matrix(dictionary, alone, 1);
      Matrix gram = Matrix::Constant(K, K, -1.0);  // stale values must not survive
      shared.compute(dictionary, gram, 1 + call % 2);
      INFO("d=" << d << " K=" << K << " call=" << call);
      CHECK(gram == alone);
      CHECK(mpi_test::identical_on_all_ranks(gram));
    }
  }
}

TEST_CASE("a rank that runs ahead never overwrites tiles a slower rank still copies",
          "[mpi][gram]") {
  // The ranks run out of step: one sleeps before some calls, so a fast rank forms call
  // k + 1's tiles while a slow one may still copy call k's (K = 768: 4.5 MiB per array, so
  // the copy takes long enough to overlap). Each call's G is checked against one process's.
  Communicator world(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(world);
  const Index d = 16, K = 768;
  dictlearn::NodeGram shared(*node, K);
  Matrix gram;
  for (int call = 0; call < 12; ++call) {
    const Matrix dictionary = random_dictionary(d, K, 300 + std::uint64_t(call));
    if (node->rank() == call % node->size())
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * (call % 3)));
    shared.compute(dictionary, gram, 1);
    Matrix alone;
    dictlearn::gram_matrix(dictionary, alone, 1);
    INFO("call=" << call);
    CHECK(gram == alone);
  }
}
