// The ScaLAPACK MOD update against the LAPACK one on 1, 2, 3 (and 4) ranks: the same
// dictionary to rounding on random SPD statistics (systems smaller than one block, not a
// multiple of the block size, some atoms unused, positive on and off), bitwise the same
// on every rank, on the world and on sub-communicators; and a non-positive-definite
// system throws on every rank instead of hanging.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "../unit/test_support.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/distributed_mod_update.hpp"
#include "dictlearn/update/mod_update.hpp"

using namespace dictlearn;

namespace {

/// MOD statistics of n = 2K + 7 random samples (the same on every rank for one seed):
/// A = C C^T / n (K x K, SPD on the used atoms), B = X C^T / n (d x K); the atoms in
/// `unused` have a zero row of C, hence zero rows and columns in A and B.
struct Statistics {
  Matrix a, b;
};

Statistics random_statistics(Index K, Index d, const std::vector<Index>& unused,
                             std::uint64_t seed) {
  Random random(seed);
  const Index n = 2 * K + 7;
  Matrix c = testing::sparse_codes(K, n, 0.3, random);
  for (Index k : unused) c.row(k).setZero();
  const Matrix x = testing::gaussian(d, n, random);
  return {c * c.transpose() / double(n), x * c.transpose() / double(n)};
}

/// True on every rank iff `matrix` is bitwise equal on all ranks of `comm`.
bool identical_on_all_ranks(const Communicator& comm, const Matrix& matrix) {
  Matrix root = matrix;
  comm.broadcast(root.data(), int(root.size()), 0);
  long long differs = root == matrix ? 0 : 1;
  comm.allreduce_max(&differs, 1);
  return differs == 0;
}

/// The message of the dictlearn::Error thrown by `solve`, or "" if none was thrown.
template <typename Solve>
std::string error_of(Solve solve) {
  try {
    solve();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

/// Both paths on the same statistics: equal to 1e-10 (the columns have unit norm), unused
/// atoms untouched, the distributed result bitwise equal on every rank.
void compare_paths(const Communicator& comm, Index K, Index d, const std::vector<Index>& unused,
                   bool positive, double ridge, std::uint64_t seed) {
  const Statistics s = random_statistics(K, d, unused, seed);
  Random random(seed + 1);
  const Matrix d0 = testing::gaussian(d, K, random);
  ModUpdateOptions options;
  options.positive = positive;
  options.ridge = ridge;
  Matrix lapack = d0, scalapack = d0;
  mod_dictionary_update(s.a, s.b, lapack, options);
  mod_dictionary_update_distributed(comm, s.a, s.b, scalapack, options);
  INFO("ranks=" << comm.size() << " K=" << K << " d=" << d << " unused=" << unused.size()
                << " positive=" << positive << " ridge=" << ridge);
  CHECK((scalapack - lapack).cwiseAbs().maxCoeff() <= 1e-10);
  for (Index k : unused) CHECK(scalapack.col(k) == d0.col(k));
  std::vector<bool> is_unused(size_t(K), false);
  for (Index k : unused) is_unused[size_t(k)] = true;
  for (Index k = 0; k < K; ++k)
    if (positive && !is_unused[size_t(k)]) CHECK(scalapack.col(k).minCoeff() >= 0.0);
  CHECK(identical_on_all_ranks(comm, scalapack));
}

}  // namespace

TEST_CASE("ScaLAPACK MOD equals LAPACK MOD on random SPD statistics", "[mpi][scalapack]") {
  Communicator comm(MPI_COMM_WORLD);
  // Blocks are multiples of 8: an odd number of used atoms is never a multiple of the
  // block size, K = 5 is smaller than one block (most ranks own nothing), K = 300 spreads
  // several 32- or 64-blocks over every process row and column.
  struct Case {
    Index K, d;
    std::vector<Index> unused;
  };
  const std::vector<Case> cases = {{1, 3, {}},     {5, 4, {}},
                                   {5, 7, {0, 3}}, {37, 12, {4, 5, 36}},
                                   {131, 20, {}},  {203, 9, {0, 17, 18, 100, 202}},
                                   {300, 33, {}},  {300, 16, {2, 150, 299}}};
  std::uint64_t seed = 100;
  for (const Case& c : cases)
    for (bool positive : {false, true})
      for (double ridge : {1e-7, 1e-2})
        compare_paths(comm, c.K, c.d, c.unused, positive, ridge, ++seed);
}

TEST_CASE("ScaLAPACK MOD on sub-communicators solves each group's own system", "[mpi][scalapack]") {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, world_rank, &half);
  {
    Communicator comm(half);
    // The even and the odd ranks solve different systems at the same time.
    compare_paths(comm, 150 + 11 * (world_rank % 2), 10, {3, 7}, false, 1e-7,
                  7 + std::uint64_t(world_rank % 2));
  }
  MPI_Comm_free(&half);
}

TEST_CASE("ScaLAPACK MOD with no used atom leaves the dictionary unchanged", "[mpi][scalapack]") {
  Communicator comm(MPI_COMM_WORLD);
  Random random(3);
  const Matrix d0 = testing::gaussian(4, 3, random);
  Matrix D = d0;
  mod_dictionary_update_distributed(comm, Matrix::Zero(3, 3), Matrix::Zero(4, 3), D,
                                    ModUpdateOptions{});
  CHECK(D == d0);
}

TEST_CASE("a system that is not positive definite throws on every rank in both paths",
          "[mpi][scalapack][errors]") {
  Communicator comm(MPI_COMM_WORLD);
  ModUpdateOptions options;
  options.ridge = 0.0;
  SECTION("indefinite, failing at a pivot past the first block") {
    // Atoms 70 and 71 made more than perfectly correlated: their 2 x 2 principal minor is
    // negative, so the factorisation fails at pivot 72 at the latest.
    Statistics s = random_statistics(100, 8, {}, 21);
    const double big = 2.0 * std::sqrt(s.a(70, 70) * s.a(71, 71));
    s.a(70, 71) = s.a(71, 70) = big;
    Matrix lapack = Matrix::Ones(8, 100), scalapack = lapack;
    const std::string serial = error_of([&] { mod_dictionary_update(s.a, s.b, lapack, options); });
    const std::string distributed =
        error_of([&] { mod_dictionary_update_distributed(comm, s.a, s.b, scalapack, options); });
    INFO("LAPACK: " << serial << "\nScaLAPACK: " << distributed);
    CHECK_THAT(serial, Catch::Contains("not positive definite") && Catch::Contains("LAPACK potrf"));
    CHECK_THAT(distributed,
               Catch::Contains("not positive definite") && Catch::Contains("ScaLAPACK pdpotrf"));
    // The same failing pivot: the message ends with "info <pivot>); increase mod-ridge".
    CHECK(serial.substr(serial.find(" info ")) == distributed.substr(distributed.find(" info ")));
  }
  SECTION("exactly singular") {
    Matrix a(2, 2);
    a << 1.0, 1.0, 1.0, 1.0;  // pivot 2 is 1 - 1 = 0
    const Matrix b = Matrix::Ones(3, 2);
    Matrix D = Matrix::Ones(3, 2);
    CHECK_THROWS_AS(mod_dictionary_update(a, b, D, options), Error);
    // Every rank sees the same global info: the error is agreed without another collective.
    CHECK_THROWS_AS(mod_dictionary_update_distributed(comm, a, b, D, options), AgreedError);
    CHECK_THROWS_WITH(mod_dictionary_update_distributed(comm, a, b, D, options),
                      Catch::Contains("info 2"));
  }
  // The grid of the failed solve was released: the next one works.
  compare_paths(comm, 64, 8, {}, false, 1e-7, 5);
}
