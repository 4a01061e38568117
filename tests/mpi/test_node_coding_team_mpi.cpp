// The ranks of a node coding each other's samples (coding/node_coding_team.hpp): the codes
// must be bitwise those a rank computes alone, for every coder family that reads different
// inputs (D^T X only, ||x||^2, the samples themselves), in double and float, with ranks
// holding different numbers of samples (none included); and a rank that is late must
// really have its samples coded by the others.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "../unit/test_support.hpp"
#include "dictlearn/coding/minibatch_coder.hpp"
#include "dictlearn/coding/node_coding_team.hpp"
#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "mpi_helpers.hpp"

namespace {

using dictlearn::CoderKind;
using dictlearn::CoderOptions;
using dictlearn::Communicator;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::MinibatchCoder;
using dictlearn::Precision;
using dictlearn::Random;
using dictlearn::Vector;
using dictlearn::testing::gaussian;

constexpr Index kDim = 20, kAtoms = 48;

// Unit-norm atoms, the same on every rank for the same seed.
Matrix unit_dictionary(std::uint64_t seed) {
  Random random(seed);
  Matrix dictionary = gaussian(kDim, kAtoms, random);
  dictionary.colwise().normalize();
  return dictionary;
}

// This rank's samples of round `round`: a different count per rank and round (0 for the
// last rank in round 1), different values.
Matrix samples_of_rank(int rank, int ranks, int round) {
  const Index n = round == 1 && rank == ranks - 1 ? 0 : 5 + 7 * rank + 3 * round;
  Random random(100 + std::uint64_t(rank) * 10 + std::uint64_t(round));
  return gaussian(kDim, n, random);
}

}  // namespace

TEST_CASE("shared coding gives bitwise the codes of coding alone", "[mpi][coding]") {
  Communicator world(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(world);
  struct Case {
    CoderKind kind;
    Precision precision;
  };
  const Case cases[] = {{CoderKind::lars, Precision::float64},
                        {CoderKind::omp, Precision::float64},
                        {CoderKind::cd, Precision::float64},
                        {CoderKind::fista, Precision::float64},
                        {CoderKind::lars, Precision::float32}};
  for (const Case& c : cases) {
    CoderOptions options;
    options.kind = c.kind;
    options.lambda = 0.2;
    options.nonzeros = 6;
    CAPTURE(dictlearn::to_string(c.kind), dictlearn::to_string(c.precision), world.rank());
    MinibatchCoder alone(options, c.precision, kAtoms, kDim, 1);
    MinibatchCoder shared(options, c.precision, kAtoms, kDim, 2);  // 2 threads claim too
    shared.share_coding(*node, 64);
    for (int round = 0; round < 4; ++round) {
      const Matrix dictionary = unit_dictionary(7 + std::uint64_t(round / 2));  // changes
      alone.set_dictionary(dictionary);
      shared.set_dictionary(dictionary);
      const Matrix x = samples_of_rank(world.rank(), world.size(), round);
      Matrix codes_alone, codes_shared;
      Vector residuals_alone, residuals_shared;
      const Index nonzeros_alone = alone.encode(x, codes_alone, nullptr, &residuals_alone);
      const Index nonzeros_shared = shared.encode(x, codes_shared, nullptr, &residuals_shared);
      CHECK(nonzeros_shared == nonzeros_alone);
      REQUIRE(codes_shared.rows() == kAtoms);
      REQUIRE(codes_shared.cols() == x.cols());
      CHECK(codes_shared == codes_alone);
      CHECK(residuals_shared == residuals_alone);  // computed by whichever rank coded
      REQUIRE(residuals_alone.size() == x.cols());
      if (x.cols() > 0) CHECK(nonzeros_alone > 0);  // the comparison is not of zeros
    }
    CHECK(alone.coded_for_others() == 0);
  }
}

TEST_CASE("a late rank's samples are coded by the other ranks of its node", "[mpi][coding]") {
  Communicator world(MPI_COMM_WORLD);
  const std::unique_ptr<Communicator> node = dictlearn::node_communicator(world);
  if (node->size() < 2) return;  // nobody to help
  CoderOptions options;
  options.lambda = 0.1;
  const Matrix dictionary = unit_dictionary(3);
  const Matrix gram = dictionary.transpose() * dictionary;
  const bool late = node->rank() == 0;
  const Index n = late ? 60 : 2;
  Random random(50 + std::uint64_t(world.rank()));
  const Matrix x = gaussian(kDim, n, random);

  dictlearn::NodeCodingTeam<double> team(*node, kDim, kAtoms, 64);
  dictlearn::BatchEncoder encoder(options, kAtoms, kDim, 1);
  auto mine = team.mine(n);
  mine.dtx = dictionary.transpose() * x;
  mine.x_sqnorms = x.colwise().squaredNorm().transpose();
  team.publish(n);
  // A rank claims from those that have published when it looks (it never waits for
  // them): here all have.
  node->barrier();
  // The late rank has published but does not code for a while: the others, done with
  // their own two samples, keep claiming and code all of its 60.
  if (late) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Index nonzeros = encoder.encode_shared(team, dictionary, gram);
  const Matrix codes = mine.codes;

  Matrix expected;
  const Matrix dtx = dictionary.transpose() * x;
  const dictlearn::Vector sqnorms = x.colwise().squaredNorm().transpose();
  const Index expected_nonzeros = encoder.encode(dictionary, gram, x, dtx, sqnorms, expected);
  CHECK(codes == expected);
  CHECK(nonzeros == expected_nonzeros);
  long long helped[2] = {team.coded_for_others(), late ? n : 0};
  MPI_Allreduce(MPI_IN_PLACE, helped, 2, MPI_LONG_LONG, MPI_SUM, node->get());
  if (late) CHECK(team.coded_for_others() == 0);  // it only waited
  // All of the late rank's samples, plus any the others took from each other.
  CHECK(helped[0] >= helped[1]);
  CHECK(helped[1] == 60);
  node->barrier();  // no rank leaves (freeing the window) while another still reads
}
