// Atom replacement: which atoms are flagged (unused, zero, near-duplicates: the less used
// one, the higher index on a tie), and the choice of the worst-represented samples on one
// rank (largest residual first, ties to the lower global row, normalised, zero-norm
// samples skipped).
#include <mpi.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "dictlearn/core/random.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/atom_replacement.hpp"

namespace {

using dictlearn::atoms_to_replace;
using dictlearn::Communicator;
using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::Random;
using dictlearn::ReplacementOptions;
using dictlearn::Vector;
using dictlearn::worst_represented_samples;
using Atoms = std::vector<Index>;

Matrix gaussian(Index rows, Index cols, Random& random) {
  Matrix m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = random.normal();
  return m;
}

Matrix unit_columns(Matrix m) {
  for (Index k = 0; k < m.cols(); ++k) m.col(k).normalize();
  return m;
}

// Max |cos| over distinct pairs.
double max_coherence(const Matrix& D) {
  const Matrix g = unit_columns(D).transpose() * unit_columns(D);
  double worst = 0.0;
  for (Index j = 0; j < g.cols(); ++j)
    for (Index i = 0; i < j; ++i) worst = std::max(worst, std::abs(g(i, j)));
  return worst;
}

// d_j replaced by a unit vector at |cos| = cosine from d_i (sign `sign`).
void make_near_copy(Matrix& D, Index i, Index j, double cosine, double sign, Random& random) {
  Vector other = gaussian(D.rows(), 1, random).col(0);
  other -= other.dot(D.col(i)) * D.col(i);
  other.normalize();
  D.col(j) = sign * (cosine * D.col(i) + std::sqrt(1.0 - cosine * cosine) * other);
}

}  // namespace

TEST_CASE("atoms_to_replace flags exactly the unused atoms", "[replacement]") {
  Random random(41);
  const Index d = 30, K = 12;
  const Matrix D = unit_columns(gaussian(d, K, random));
  REQUIRE(max_coherence(D) < 0.9);
  const Matrix gram = D.transpose() * D;
  Vector usage(K);
  for (Index k = 0; k < K; ++k) usage(k) = 1.0 + double(k % 5);
  CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}).empty());
  usage(3) = 0.0;
  usage(11) = 0.0;
  usage(0) = 0.0;
  CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}) == Atoms{0, 3, 11});
  // min_usage: used by <= min_usage * window samples.
  ReplacementOptions rare;
  rare.min_usage = 0.02;  // <= 2 of 100 samples
  Atoms expected;
  for (Index k = 0; k < K; ++k)
    if (usage(k) <= 2.0) expected.push_back(k);
  CHECK(atoms_to_replace(gram, usage, 100.0, rare) == expected);
  // Disabled: nothing, whatever the state.
  ReplacementOptions off;
  off.enabled = false;
  CHECK(atoms_to_replace(gram, usage, 100.0, off).empty());
  CHECK(atoms_to_replace(gram, Vector::Zero(K), 100.0, off).empty());
  // A zero atom (G_kk = 0) is replaced even when counted as used, and does not produce a
  // NaN cosine that would disturb the others.
  Matrix Z = D;
  Z.col(5).setZero();
  usage.setConstant(4.0);
  CHECK(atoms_to_replace(Z.transpose() * Z, usage, 100.0, ReplacementOptions{}) == Atoms{5});
}

TEST_CASE("of a near-duplicate pair exactly the less used atom is flagged", "[replacement]") {
  Random random(42);
  const Index d = 40, K = 10;
  for (double sign : {1.0, -1.0}) {  // |cos|: an atom and its negative are duplicates
    Matrix D = unit_columns(gaussian(d, K, random));
    REQUIRE(max_coherence(D) < 0.9);
    make_near_copy(D, 2, 7, 0.995, sign, random);
    const Matrix gram = D.transpose() * D;
    REQUIRE(std::abs(gram(2, 7)) == Approx(0.995).epsilon(1e-12));
    Vector usage = Vector::Constant(K, 10.0);
    INFO("sign=" << sign);
    usage(2) = 5.0;
    CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}) == Atoms{2});
    usage(2) = 15.0;
    CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}) == Atoms{7});
    usage(2) = 10.0;  // tie: the lower index is kept
    CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}) == Atoms{7});
    // One of the pair unused: only that one (not its partner as well).
    usage(7) = 0.0;
    CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}) == Atoms{7});
    usage(7) = 10.0;
    usage(2) = 0.0;
    CHECK(atoms_to_replace(gram, usage, 100.0, ReplacementOptions{}) == Atoms{2});
    // The threshold is strict and configurable.
    usage(2) = 10.0;
    ReplacementOptions loose;
    loose.duplicate_cosine = 0.996;
    CHECK(atoms_to_replace(gram, usage, 100.0, loose).empty());
    // Scaling the atoms (G not from unit atoms) does not change the cosine test.
    Matrix scaled = D;
    scaled.col(2) *= 3.0;
    scaled.col(7) *= 0.25;
    CHECK(atoms_to_replace(scaled.transpose() * scaled, usage, 100.0, ReplacementOptions{}) ==
          Atoms{7});
  }
}

TEST_CASE("a cluster of near-duplicates keeps only its most used atom", "[replacement]") {
  Random random(43);
  const Index d = 40, K = 9;
  Matrix D = unit_columns(gaussian(d, K, random));
  REQUIRE(max_coherence(D) < 0.9);
  make_near_copy(D, 4, 1, 0.998, 1.0, random);
  make_near_copy(D, 4, 6, 0.998, -1.0, random);
  make_near_copy(D, 3, 8, 0.999, 1.0, random);  // a separate pair
  const Matrix gram = D.transpose() * D;
  REQUIRE(std::abs(gram(1, 6)) > 0.99);
  Vector usage = Vector::Constant(K, 7.0);
  usage(1) = 3.0;
  usage(4) = 9.0;
  usage(6) = 5.0;
  usage(3) = 2.0;
  usage(8) = 2.0;  // tie in the second pair: 8 goes
  CHECK(atoms_to_replace(gram, usage, 50.0, ReplacementOptions{}) == Atoms{1, 6, 8});
  usage(6) = 20.0;  // now 6 is the most used of the cluster
  CHECK(atoms_to_replace(gram, usage, 50.0, ReplacementOptions{}) == Atoms{1, 4, 8});
}

TEST_CASE("an atom already flagged no longer makes others duplicates", "[replacement]") {
  // Chains: with cos(theta) = 0.993, u rotated by +theta and -theta are at |cos| 0.972 of
  // each other, below the threshold, but each is a duplicate of u.
  Random random(48);
  const Index d = 30, K = 8;
  const double cosine = 0.993, sine = std::sqrt(1.0 - cosine * cosine);
  Matrix D = unit_columns(gaussian(d, K, random));
  REQUIRE(max_coherence(D) < 0.9);
  const auto make_chain = [&](Index left, Index middle, Index right) {
    Vector w = gaussian(d, 1, random).col(0);
    w -= w.dot(D.col(middle)) * D.col(middle);
    w.normalize();
    D.col(left) = cosine * D.col(middle) + sine * w;
    D.col(right) = cosine * D.col(middle) - sine * w;
  };
  {
    // Middle atom 1 loses to atom 3 (more used) ...
    make_chain(3, 1, 5);
    const Matrix gram = D.transpose() * D;
    REQUIRE(std::abs(gram(3, 5)) < 0.98);
    Vector usage = Vector::Constant(K, 4.0);
    usage(1) = 5.0;
    usage(3) = 10.0;
    usage(5) = 3.0;
    // ... and once it is gone, atom 5 (less used than 1) has no duplicate left.
    CHECK(atoms_to_replace(gram, usage, 50.0, ReplacementOptions{}) == Atoms{1});
  }
  {
    D = unit_columns(gaussian(d, K, random));
    REQUIRE(max_coherence(D) < 0.9);
    make_chain(2, 6, 4);  // middle atom 6, neighbours 2 and 4
    const Matrix gram = D.transpose() * D;
    Vector usage = Vector::Constant(K, 4.0);
    usage(2) = 10.0;
    usage(4) = 3.0;
    usage(6) = 5.0;
    // 6 loses to 2; then 4 keeps its place although it was less used than 6.
    CHECK(atoms_to_replace(gram, usage, 50.0, ReplacementOptions{}) == Atoms{6});
  }
}

TEST_CASE("worst_represented_samples: largest residuals first, normalised", "[replacement]") {
  const Communicator comm(MPI_COMM_SELF);
  Random random(44);
  const Index d = 5, n = 12;
  const Matrix x = gaussian(d, n, random);
  Vector residuals(n);
  for (Index j = 0; j < n; ++j) residuals(j) = random.uniform();
  std::vector<Index> rows(static_cast<size_t>(n));
  for (Index j = 0; j < n; ++j) rows[size_t(j)] = 1000 - 3 * j;  // arbitrary global rows
  std::vector<Index> by_residual(static_cast<size_t>(n));
  std::iota(by_residual.begin(), by_residual.end(), Index(0));
  std::sort(by_residual.begin(), by_residual.end(),
            [&](Index p, Index q) { return residuals(p) > residuals(q); });
  for (Index count : {0, 1, 4, 12, 20}) {
    INFO("count=" << count);
    const Matrix chosen = worst_represented_samples(comm, x, residuals, rows, count);
    REQUIRE(chosen.rows() == d);
    REQUIRE(chosen.cols() == std::min(count, n));
    for (Index c = 0; c < chosen.cols(); ++c)
      CHECK((chosen.col(c) - x.col(by_residual[size_t(c)]).normalized()).norm() <= 1e-14);
  }
}

TEST_CASE("worst_represented_samples: ties go to the lower global row", "[replacement]") {
  const Communicator comm(MPI_COMM_SELF);
  Random random(45);
  const Index d = 3, n = 8;
  const Matrix x = gaussian(d, n, random);
  // Residuals 2, 5, 5, 1, 5, 2, 0, 5 with rows that are not in column order.
  Vector residuals(n);
  residuals << 2, 5, 5, 1, 5, 2, 0, 5;
  const std::vector<Index> rows = {70, 40, 90, 10, 20, 60, 30, 50};
  // Expected order: residual 5 by row (20, 40, 50, 90) = columns 4, 1, 7, 2; then residual
  // 2 by row (60, 70) = columns 5, 0; then 3, 6.
  const std::vector<Index> expected = {4, 1, 7, 2, 5, 0, 3, 6};
  for (Index count = 1; count <= n; ++count) {
    const Matrix chosen = worst_represented_samples(comm, x, residuals, rows, count);
    REQUIRE(chosen.cols() == count);
    for (Index c = 0; c < count; ++c) {
      INFO("count=" << count << " c=" << c);
      CHECK((chosen.col(c) - x.col(expected[size_t(c)]).normalized()).norm() <= 1e-14);
    }
  }
}

TEST_CASE("worst_represented_samples skips zero samples and then returns fewer", "[replacement]") {
  const Communicator comm(MPI_COMM_SELF);
  Random random(46);
  const Index d = 4, n = 6;
  Matrix x = gaussian(d, n, random);
  x.col(1).setZero();
  x.col(4).setZero();
  Vector residuals(n);
  residuals << 3, 0, 2, 5, 0, 1;  // a zero sample has no residual
  const std::vector<Index> rows = {0, 1, 2, 3, 4, 5};
  const Matrix chosen = worst_represented_samples(comm, x, residuals, rows, n);
  REQUIRE(chosen.cols() == 4);
  const std::vector<Index> expected = {3, 0, 2, 5};
  for (Index c = 0; c < 4; ++c) {
    CHECK((chosen.col(c) - x.col(expected[size_t(c)]).normalized()).norm() <= 1e-14);
    CHECK(chosen.col(c).allFinite());
  }
  // All samples zero: nothing to offer.
  CHECK(worst_represented_samples(comm, Matrix::Zero(d, 3), Vector::Zero(3), {7, 8, 9}, 2).cols() ==
        0);
  // No samples on this rank at all.
  CHECK(worst_represented_samples(comm, Matrix(d, 0), Vector(0), {}, 3).cols() == 0);
}

TEST_CASE("worst_represented_samples: zero samples do not take the place of usable ones",
          "[replacement]") {
  // Documented: m < count only "if there are fewer samples with a nonzero norm". With
  // every sample perfectly represented (residual 0, e.g. a dictionary that already fits)
  // and a zero sample at the lowest row, the local partial sort picks rows {0, 1}, then
  // drops row 0 as zero-norm, and only one column comes back although four usable
  // samples exist.
  const Communicator comm(MPI_COMM_SELF);
  Random random(47);
  const Index d = 3, n = 5;
  Matrix x = gaussian(d, n, random);
  x.col(0).setZero();
  const Vector residuals = Vector::Zero(n);
  const std::vector<Index> rows = {0, 1, 2, 3, 4};
  const Matrix chosen = worst_represented_samples(comm, x, residuals, rows, 2);
  REQUIRE(chosen.cols() == 2);
  CHECK((chosen.col(0) - x.col(1).normalized()).norm() <= 1e-14);
  CHECK((chosen.col(1) - x.col(2).normalized()).norm() <= 1e-14);
}
