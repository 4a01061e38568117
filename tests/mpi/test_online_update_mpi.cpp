// The online update with D's rows split over the ranks (OnlineUpdateOptions::row_split):
// every rank must end with bitwise the dictionary one process computes alone, for any
// rank count, for row counts that leave some ranks with a partial block or no rows at
// all, with several passes, nonnegativity, and OpenMP threads inside the ranks; through MPI
// collectives and through node shared memory.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <thread>

#include "../unit/test_support.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"
#include "dictlearn/update/online_update.hpp"
#include "mpi_helpers.hpp"

namespace {

using dictlearn::Communicator;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::OnlineUpdateOptions;
using dictlearn::Random;
using dictlearn::RowSplit;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

struct Problem {
  Matrix a, b, dictionary;
};

// The same problem on every rank (same seed).
Problem make_problem(Index d, Index K, bool positive, bool unused_atoms) {
  Random random(1234 + std::uint64_t(d) * 7 + std::uint64_t(K));
  const Index n = 3 * K;
  Matrix codes = sparse_codes(K, n, 0.2, random);
  if (unused_atoms) {  // without curvature, inside the first two blocks of 8 atoms
    codes.row(3).setZero();
    codes.row(K - 7).setZero();
  }
  Matrix x = gaussian(d, n, random);
  if (positive) x = x.cwiseAbs();
  Matrix dictionary = gaussian(d, K, random);
  if (positive) dictionary = dictionary.cwiseAbs();
  for (Index k = 0; k < K; ++k) dictionary.col(k).normalize();
  Matrix a = codes * codes.transpose() / double(n);
  // Exactly symmetric, as the trainer's A (a GEMM's C C^T may differ across the diagonal in
  // the last bit), so that the upper triangle alone gives the same D.
  a.triangularView<Eigen::StrictlyLower>() = a.transpose();
  return {a, x * codes.transpose() / double(n), dictionary};
}

}  // namespace

TEST_CASE("row-split online update equals the one-process update bitwise", "[mpi][online]") {
  const Communicator comm(MPI_COMM_WORLD);
  struct Case {
    Index d, K, passes;
    bool positive;
    int threads;
    bool unused_atoms;
  };
  // d = 8: one row block (ranks beyond the first own no rows); d = 37: a partial last
  // block; d = 300 and 600 with 2 threads: rows shared by ranks and threads (at 600, two
  // threads per rank on 2 ranks: the exchange runs inside the OpenMP team); atoms
  // without curvature inside blocks of atoms, with and without positivity.
  const Case cases[] = {{8, 12, 1, false, 1, false},   {37, 40, 1, false, 1, false},
                        {64, 96, 2, true, 1, false},   {300, 24, 1, false, 2, false},
                        {600, 16, 2, false, 2, false}, {129, 50, 3, false, 1, false},
                        {70, 21, 2, false, 2, true},   {45, 19, 1, true, 1, true}};
  for (const Case& c : cases) {
    CAPTURE(c.d, c.K, c.passes, c.positive, c.threads, c.unused_atoms, comm.size());
    const Problem p = make_problem(c.d, c.K, c.positive, c.unused_atoms);
    OnlineUpdateOptions options;
    options.passes = c.passes;
    options.positive = c.positive;
    options.threads = c.threads;
    Matrix alone = p.dictionary;
    dictlearn::online_dictionary_update(p.a, p.b, alone, options);
    REQUIRE_FALSE(alone == p.dictionary);  // the update did move the atoms

    options.row_split = &comm;
    options.split = RowSplit::on;
    CHECK(dictlearn::online_update_splits_rows(options) == (comm.size() > 1));
    Matrix shared = p.dictionary;
    dictlearn::online_dictionary_update(p.a, p.b, shared, options);
    CHECK(shared == alone);
    CHECK(mpi_test::identical_on_all_ranks(shared));

    // The same exchanges through node shared memory (all test ranks share one node), two
    // updates in a row: the second continues the first's sequence of counters and
    // alternating buffers.
    const std::unique_ptr<Communicator> node = dictlearn::node_communicator(comm);
    REQUIRE(node->size() == comm.size());
    dictlearn::NodeSharedMemory memory(
        *node, dictlearn::online_update_shared_bytes(c.d, c.K, node->rank(), node->size()));
    options.row_split = node.get();
    options.shared = &memory;
    Matrix through_memory = p.dictionary;
    dictlearn::online_dictionary_update(p.a, p.b, through_memory, options);
    CHECK(through_memory == alone);
    // The trainer's case: only A's upper triangle is current (NaN would reach D if the
    // lower one were read).
    Matrix upper = p.a;
    upper.triangularView<Eigen::StrictlyLower>().setConstant(std::nan(""));
    options.a_upper_only = true;
    Matrix from_upper = p.dictionary;
    dictlearn::online_dictionary_update(upper, p.b, from_upper, options);
    CHECK(from_upper == alone);
    options.a_upper_only = false;
    options.row_split = nullptr;
    options.shared = nullptr;
    dictlearn::online_dictionary_update(p.a, p.b, alone, options);
    options.row_split = node.get();
    options.shared = &memory;
    dictlearn::online_dictionary_update(p.a, p.b, through_memory, options);
    CHECK(through_memory == alone);
    node->barrier();  // the window is freed by all together
  }
}

TEST_CASE("row split: auto is resolved by timing, the same on every rank", "[mpi][online]") {
  const Communicator comm(MPI_COMM_WORLD);
  const bool many = comm.size() > 1;
  OnlineUpdateOptions options;
  CHECK_FALSE(dictlearn::online_update_splits_rows(options));  // no communicator
  CHECK(dictlearn::choose_row_split(options, 784, 256, 1e3) == RowSplit::off);
  options.row_split = &comm;
  CHECK_FALSE(dictlearn::online_update_splits_rows(options));  // unresolved
  // A sweep of 1000 s always pays for 33 small collectives; one of 0 s never does.
  CHECK(dictlearn::choose_row_split(options, 784, 256, 1e3) ==
        (many ? RowSplit::on : RowSplit::off));
  CHECK(dictlearn::choose_row_split(options, 784, 256, 0.0) == RowSplit::off);
  // The slowest rank's time decides: a long sweep on one rank is enough.
  const double mine = comm.rank() == comm.size() - 1 ? 1e3 : 0.0;
  CHECK(dictlearn::choose_row_split(options, 784, 256, mine) ==
        (many ? RowSplit::on : RowSplit::off));
  CHECK(dictlearn::choose_row_split(options, 16, 256, 1e3) == RowSplit::off);  // one row block
  options.split = RowSplit::off;
  CHECK_FALSE(dictlearn::online_update_splits_rows(options));
  options.split = RowSplit::on;
  CHECK(dictlearn::online_update_splits_rows(options) == many);
  CHECK(dictlearn::parse_row_split("auto") == RowSplit::automatic);
  CHECK(dictlearn::to_string(RowSplit::on) == "on");
  CHECK_THROWS_WITH(dictlearn::parse_row_split("sometimes"),
                    Catch::Contains("update-split") && Catch::Contains("sometimes"));
}

TEST_CASE("row split through node shared memory with ranks out of step", "[mpi][online]") {
  // Updates in a row with one rank sleeping before some of them, so the others run ahead
  // into the next exchange while it still reads the last one's buffers (the alternating
  // buffers must keep them apart): bitwise the one-process dictionaries, every time.
  const Communicator comm(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(comm);
  const Index d = 200, K = 48;
  const Problem p = make_problem(d, K, false, false);
  dictlearn::NodeSharedMemory memory(
      *node, dictlearn::online_update_shared_bytes(d, K, node->rank(), node->size()));
  OnlineUpdateOptions options;
  Matrix alone = p.dictionary, shared = p.dictionary;
  for (int update = 0; update < 10; ++update) {
    options.row_split = nullptr;
    options.shared = nullptr;
    options.split = RowSplit::off;
    dictlearn::online_dictionary_update(p.a, p.b, alone, options);
    options.row_split = node.get();
    options.shared = &memory;
    options.split = RowSplit::on;
    if (node->rank() == update % node->size())
      std::this_thread::sleep_for(std::chrono::milliseconds(update % 3));
    dictlearn::online_dictionary_update(p.a, p.b, shared, options);
    CAPTURE(update, comm.size());
    CHECK(shared == alone);
  }
}
